#include "sim/network/collective_time.h"

#include <algorithm>
#include <array>
#include <limits>
#include <map>
#include <optional>
#include <span>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "sim/network/group_comm.h"
#include "sim/network/link_bound.h"
#include "sim/network/ring_lockstep.h"

namespace moesim::sim {
namespace {

// A transfer's bytes on one link of its route (ring_lockstep.h).
using Use = LinkUse;

// The bound for one protocol, and the link that set it (if a link did).
struct Bound {
  Duration total, latency;
  std::optional<uint32_t> bottleneck;  // an index into ScheduleBound::edges()
  // What set it when no link did: a transfer held to its rate_cap (NCCL's channels to a network
  // peer, CapNetPeers), that rate.
  Rate capped = Rate();
};

// NCCL's step latency class of a hop (HopKind), from what its route crosses.
StepLinkKind KindOf(bool across_nodes, bool all_nvlink) {
  if (across_nodes) return StepLinkKind::kNetwork;
  return all_nvlink ? StepLinkKind::kNvLink : StepLinkKind::kPcie;
}

// Offsets of a compressed list: counts[k] entries for key k become [first[k], first[k + 1]).
std::vector<uint32_t> Offsets(const std::vector<uint32_t>& counts) {
  std::vector<uint32_t> first(counts.size() + 1, 0);
  for (size_t k = 0; k < counts.size(); ++k) first[k + 1] = first[k] + counts[k];
  return first;
}

// What the bound needs of a schedule whatever the protocol: routes, hops, who waits for whom.
// Routes are walked once; a million-transfer all-to-all holds about 20 bytes per link it crosses.
class ScheduleBound {
 public:
  // `ring`: the schedule is one step of a ring (TimeRing), each transfer's hop kind and drain kept;
  // its chains worked exactly up to `ring_exact_work` ranks x steps (RingChains).
  ScheduleBound(const topology::Cluster& cluster, const Schedule& schedule, bool ring = false,
                uint64_t ring_exact_work = kRingChainWork)
      : schedule_(schedule),
        n_(static_cast<uint32_t>(schedule.transfers.size())),
        ring_(ring),
        ring_exact_work_(ring_exact_work) {
    independent_ =
        std::all_of(schedule.transfers.begin(), schedule.transfers.end(),
                    [](const Transfer& x) { return x.after.empty() && x.after_sent.empty(); });
    if (independent_) {
      PoolByKind(cluster);
      return;
    }
    const topology::Graph& g = cluster.graph();
    const topology::Router& router = cluster.router();
    bandwidth_.resize(boost::num_edges(g));
    edges_.resize(boost::num_edges(g));
    for (auto [it, end] = boost::edges(g); it != end; ++it) {
      bandwidth_[g[*it].id] = g[*it].achieved;
      edges_[g[*it].id] = *it;
    }
    first_.reserve(n_ + 1);
    hop_.reserve(n_);
    std::vector<uint32_t> per_link(bandwidth_.size(), 0), waiting(n_, 0), streaming(n_, 0);
    for (uint32_t t = 0; t < n_; ++t) {
      const Transfer& x = schedule.transfers[t];
      first_.push_back(static_cast<uint32_t>(uses_.size()));
      bool nvlink = true;
      router.ForEachShare(x.src, x.dst, [&](topology::Edge e, double share) {
        uses_.push_back({g[e].id, t, static_cast<double>(x.bytes) * share});
        ++per_link[g[e].id];
        nvlink = nvlink && g[e].link_class == topology::LinkClass::kNvLink;
      });
      hop_.push_back(KindOf(router.NodeOf(x.src) != router.NodeOf(x.dst), nvlink));
      if (x.rate_cap > Rate()) {
        if (capped_.empty()) capped_.resize(n_);
        capped_[t] = LinkDrain{x.rate_cap, 1.0}.Time(static_cast<double>(x.bytes));
      }
      if (x.paced) {
        if (pace_kind_.empty()) pace_kind_.resize(n_, StepLinkKind::kNvLink);
        pace_kind_[t] = PaceOf(cluster, x.src);
      }
      // Transfers of a collective cross about as many links each: room for all, as the first.
      if (t == 0) uses_.reserve(size_t{n_} * uses_.size());
      for (uint32_t before : x.after) ++waiting[before];
      for (uint32_t before : x.after_sent) ++streaming[before];
    }
    first_.push_back(static_cast<uint32_t>(uses_.size()));
    // Every link's uses together, and every transfer's waiters (counting sorts).
    link_first_ = Offsets(per_link);
    link_uses_.resize(uses_.size());
    for (uint32_t u = 0; u < uses_.size(); ++u)
      link_uses_[link_first_[uses_[u].edge] + --per_link[uses_[u].edge]] = u;
    if (schedule.algo == CollectiveAlgo::kRing) shared_bytes_ = LockstepShares(uses_, schedule);
    waiter_first_ = Offsets(waiting);
    waiters_.resize(waiter_first_.back());
    streamer_first_ = Offsets(streaming);
    streamers_.resize(streamer_first_.back());
    for (uint32_t t = 0; t < n_; ++t) {
      for (uint32_t before : schedule.transfers[t].after)
        waiters_[waiter_first_[before] + --waiting[before]] = t;
      for (uint32_t before : schedule.transfers[t].after_sent)
        streamers_[streamer_first_[before] + --streaming[before]] = t;
    }
  }

  // TimeCollective's bound with protocol `p`, links delivering `efficiency` of their bandwidth.
  Bound For(const NcclLatencyModel& model, NcclProtocol p, double efficiency) {
    if (independent_) return Pooled(model, p, efficiency, 1);
    Bound bound = General(model, p, efficiency, /*caps=*/true);
    // A rate_cap that lengthened some transfer sets the time where the bound without the caps
    // is shorter: it is named then, as Pooled names it.
    if (const Rate cap = cap_binds_; cap > Rate()) {
      if (General(model, p, efficiency, /*caps=*/false).total < bound.total) {
        bound.bottleneck.reset();
        bound.capped = cap;
      }
    }
    return bound;
  }

  // For()'s bound of a schedule with dependencies, with or without the transfers' rate_caps.
  Bound General(const NcclLatencyModel& model, NcclProtocol p, double efficiency, bool caps) {
    Prepare(model, p, efficiency, caps);
    Bound bound;
    // Forward, in schedule order (a transfer waits only for earlier ones): the earliest a transfer
    // can start (release_) and be through (done_); empty_ is the same with no bytes. What it waits
    // to arrive (`after`) adds its step latency; what it waits to have left its sender
    // (`after_sent`) adds none, or for a paced transfer its intra-node step latency: the flow model
    // starts it when that one's last byte has left (and the pace after), which is no earlier than
    // that one's done_ here. A transfer that waits only for such is not held to the call's base
    // and its own step latency either (the flow model's stream chunks).
    const Duration base = model.Base(p);
    release_.resize(n_);
    done_.resize(n_);
    empty_.resize(n_);
    for (uint32_t t = 0; t < n_; ++t) {
      const std::vector<uint32_t>& after = schedule_.transfers[t].after;
      Duration ready = base, ready_empty = base;
      for (uint32_t before : after) {
        ready = std::max(ready, done_[before]);
        ready_empty = std::max(ready_empty, empty_[before]);
      }
      if (after.size() > 1) {
        ready = std::max(ready, SharedLinks(after, [&](uint32_t before, double bytes) {
                           return LinkJob{release_[before], bytes, Duration()};
                         }));
      }
      const std::vector<uint32_t>& sent = schedule_.transfers[t].after_sent;
      const bool streams_only = after.empty() && !sent.empty();
      release_[t] = streams_only ? Duration() : ready + step_[t];
      empty_[t] = streams_only ? Duration() : ready_empty + step_[t];
      const Duration pace = pace_.empty() ? Duration() : pace_[t];
      for (uint32_t before : sent) {
        release_[t] = std::max(release_[t], done_[before] + pace);
        empty_[t] = std::max(empty_[t], empty_[before] + pace);
      }
      done_[t] = release_[t] + solo_[t];
      bound.latency = std::max(bound.latency, empty_[t]);
    }
    // Backward: the least time the run lasts once a transfer is through (tail_), by the same
    // reasoning with time reversed (what waits for it starts a step latency later).
    tail_.assign(n_, Duration());
    for (uint32_t t = n_; t-- > 0;) {
      const std::span<const uint32_t> waiters(waiters_.data() + waiter_first_[t],
                                              waiters_.data() + waiter_first_[t + 1]);
      for (uint32_t next : waiters)
        tail_[t] = std::max(tail_[t], step_[next] + solo_[next] + tail_[next]);
      for (uint32_t i = streamer_first_[t]; i < streamer_first_[t + 1]; ++i) {
        const uint32_t next = streamers_[i];
        const Duration pace = pace_.empty() ? Duration() : pace_[next];
        tail_[t] = std::max(tail_[t], pace + solo_[next] + tail_[next]);
      }
      if (waiters.size() > 1) {
        tail_[t] = std::max(tail_[t], SharedLinks(waiters, [&](uint32_t next, double bytes) {
                              return LinkJob{tail_[next], bytes, step_[next]};
                            }));
      }
      bound.total = std::max(bound.total, done_[t] + tail_[t]);
    }
    // Every link: all its jobs, each from its release, each with its tail behind it.
    Duration worst;
    links_.clear();
    for (uint32_t e = 0; e + 1 < link_first_.size(); ++e) {
      if (link_first_[e] == link_first_[e + 1]) continue;
      jobs_.clear();
      double bytes = 0;
      for (uint32_t i = link_first_[e]; i < link_first_[e + 1]; ++i) {
        const Use& u = uses_[link_uses_[i]];
        jobs_.push_back({release_[u.transfer], u.bytes, tail_[u.transfer]});
        bytes += u.bytes;
      }
      const Duration link = LinkMakespan(jobs_, drain_[e]);
      links_.push_back({link, drain_[e].Time(bytes), e});
      worst = std::max(worst, link);
    }
    // The bottleneck: of the links whose bound comes within 0.1 % of the worst (drains that end
    // with the same last transfers: a gather after the network legs ends an NVLink's and a NIC's
    // alike), the one busy the longest; the first in edge order of equals.
    Duration busiest;
    for (const LinkBound& l : links_) {
      if (l.makespan.picoseconds() < worst.picoseconds() - worst.picoseconds() / 1000) continue;
      if (!bound.bottleneck || l.busy > busiest) {
        busiest = l.busy;
        bound.bottleneck = l.edge;
      }
    }
    bound.total = std::max(bound.total, worst);
    return bound;
  }

  // The links Bound::bottleneck indexes.
  const std::vector<topology::Edge>& edges() const { return edges_; }

  // The busiest link's bytes at its whole bandwidth, no latency, the schedule run `steps` times:
  // what the links alone take, however the transfers overlap or wait.
  Duration BusiestLink(uint32_t steps = 1) const {
    Duration worst;
    for (size_t e = 0; e < bandwidth_.size(); ++e) {
      double bytes = 0;
      if (independent_) {
        for (size_t k = 0; k < kKinds; ++k) bytes += kind_bytes_[e * kKinds + k];
      } else {
        for (uint32_t i = link_first_[e]; i < link_first_[e + 1]; ++i)
          bytes += uses_[link_uses_[i]].bytes;
      }
      if (bytes > 0) worst = std::max(worst, LinkDrain{bandwidth_[e], 1.0}.Time(steps * bytes));
    }
    return worst;
  }

  // Each transfer's time on the wire, in place of its drain alone at `efficiency` in the ring's
  // chains (TimeRingOnWire); nullptr: the drains. Must outlive the Ring() calls.
  void set_wire(const std::vector<Duration>* wire) {
    if (wire && wire->size() != n_) throw std::logic_error("TimeRingOnWire: a time per transfer");
    wire_ = wire;
  }

  // TimeRing's closed form, the schedule being one step of the ring (no dependencies).
  Bound Ring(const NcclLatencyModel& model, NcclProtocol p, double efficiency, uint32_t steps) {
    if (!independent_) throw std::logic_error("TimeRing: a ring step has no dependencies");
    return Pooled(model, p, efficiency, steps);
  }

 private:
  // A schedule without dependencies (a direct all-to-all; one step of a ring): every transfer is
  // released at base + its hop's step latency and leaves nothing behind it, so the jobs on a link
  // differ only by the kind of hop they belong to. Kept per (link, kind): the bytes; per kind: the
  // longest drain of a transfer alone on one link of its route, at full bandwidth. A 1,024-GPU
  // all-to-all's million transfers then need 3 numbers a link, not one a transfer and link.
  void PoolByKind(const topology::Cluster& cluster) {
    const topology::Graph& g = cluster.graph();
    const topology::Router& router = cluster.router();
    // The links the schedule crosses, numbered as first crossed (slot_of: edge id -> number).
    std::vector<int32_t> slot_of(boost::num_edges(g), -1);
    std::vector<uint32_t> ids;
    std::vector<double> bytes_of;  // per (number, kind)
    std::vector<bool> used;
    std::vector<double> most;  // per (number, kind): the most bytes one transfer puts on it
    std::vector<std::pair<uint32_t, double>> route;  // (number, bytes)
    std::vector<Use> ring_uses;  // ring_: every transfer's route, by link number
    bool nvlink = true;
    double bytes_of_transfer = 0;
    auto cross = [&](topology::Edge e, double share) {
      const uint32_t id = g[e].id;
      if (slot_of[id] < 0) {
        slot_of[id] = static_cast<int32_t>(ids.size());
        ids.push_back(id);
        edges_.push_back(e);
        bandwidth_.push_back(g[e].achieved);
        bytes_of.resize(bytes_of.size() + kKinds, 0.0);
        most.resize(most.size() + kKinds, 0.0);
        used.resize(used.size() + kKinds, false);
      }
      route.emplace_back(slot_of[id], bytes_of_transfer * share);
      nvlink = nvlink && g[e].link_class == topology::LinkClass::kNvLink;
    };
    // A fabric leg's links and shares are the same for every route between its two switches:
    // walked once per leg (a 2,048-GPU all-to-all has a few hundred legs, a million routes).
    std::map<std::pair<topology::Vertex, topology::Vertex>,
             std::vector<std::pair<topology::Edge, double>>>
        legs;
    std::vector<std::pair<uint32_t, double>> local;
    for (const Transfer& x : schedule_.transfers) {
      nvlink = true;
      bytes_of_transfer = static_cast<double>(x.bytes);
      route.clear();
      const bool across = router.NodeOf(x.src) != router.NodeOf(x.dst);
      if (!across) {
        router.ForEachShare(x.src, x.dst, cross);
      } else {
        // Across nodes no link comes twice in a route, so the order the links are visited in
        // changes no sum: the local links, then the leg's.
        local.clear();
        const auto leg = router.AppendLocalShares(x.src, x.dst, &local);
        for (const auto& [id, share] : local) cross(router.EdgeWithId(id), share);
        if (leg) {
          // Not a structured binding: clang 14 (the sanitized build) cannot capture one.
          const auto inserted = legs.try_emplace({leg->from, leg->to});
          std::vector<std::pair<topology::Edge, double>>& shares = inserted.first->second;
          if (inserted.second) {
            router.ForEachFabricShare(
                *leg, [&](topology::Edge e, double share) { shares.emplace_back(e, share); });
          }
          for (const auto& [e, share] : shares) cross(e, share);
        }
      }
      const size_t k = static_cast<size_t>(KindOf(across, nvlink));
      if (x.rate_cap > Rate()) {
        const Duration alone = LinkDrain{x.rate_cap, 1.0}.Time(bytes_of_transfer);
        if (alone > kind_capped_[k]) {
          kind_capped_[k] = alone;
          kind_cap_[k] = x.rate_cap;
        }
      }
      if (ring_) {
        const auto t = static_cast<uint32_t>(hop_.size());
        for (const auto& [slot, bytes] : route) ring_uses.push_back({slot, t, bytes});
        hop_.push_back(static_cast<StepLinkKind>(k));
        pace_kind_.push_back(PaceOf(cluster, x.src));
      }
      for (const auto& [slot, bytes] : route) {
        bytes_of[slot * kKinds + k] += bytes;
        most[slot * kKinds + k] = std::max(most[slot * kKinds + k], bytes);
        used[slot * kKinds + k] = true;
      }
      kind_present_[k] = true;
    }
    if (ring_) {
      // Each hop's drain: the longest, over its route, of its link carrying the step's transfers
      // in lockstep until its own is through (LockstepShares), at full bandwidth.
      const std::vector<double> shared = LockstepShares(ring_uses, schedule_);
      hop_drain_.resize(n_);
      for (uint32_t i = 0; i < ring_uses.size(); ++i) {
        const Use& u = ring_uses[i];
        hop_drain_[u.transfer] =
            std::max(hop_drain_[u.transfer], LinkDrain{bandwidth_[u.edge], 1.0}.Time(shared[i]));
      }
    }
    // The longest drain of a transfer alone on one link of its route, per kind: a link's drain
    // time only grows with its bytes, so each link's most bytes per kind give it.
    for (size_t slot = 0; slot < ids.size(); ++slot) {
      for (size_t k = 0; k < kKinds; ++k) {
        if (!used[slot * kKinds + k]) continue;
        kind_longest_[k] = std::max(kind_longest_[k],
                                    LinkDrain{bandwidth_[slot], 1.0}.Time(most[slot * kKinds + k]));
      }
    }
    // In edge id order, as the general form visits links (the first of equal bottlenecks wins).
    std::vector<uint32_t> order(ids.size());
    for (uint32_t i = 0; i < order.size(); ++i) order[i] = i;
    std::sort(order.begin(), order.end(), [&](uint32_t a, uint32_t b) { return ids[a] < ids[b]; });
    std::vector<topology::Edge> edges(order.size());
    std::vector<Rate> bandwidth(order.size());
    kind_bytes_.resize(bytes_of.size());
    kind_used_.resize(used.size());
    for (size_t i = 0; i < order.size(); ++i) {
      edges[i] = edges_[order[i]];
      bandwidth[i] = bandwidth_[order[i]];
      for (size_t k = 0; k < kKinds; ++k) {
        kind_bytes_[i * kKinds + k] = bytes_of[order[i] * kKinds + k];
        kind_used_[i * kKinds + k] = used[order[i] * kKinds + k];
      }
    }
    edges_ = std::move(edges);
    bandwidth_ = std::move(bandwidth);
  }

  // The bound of an independent schedule repeated `steps` times (TimeRing; 1: TimeCollective):
  //   base + max(steps x max over transfers (step latency + its drain alone),
  //              max over links (the least step latency there + Jackson's bound of its bytes))
  // With steps = 1 the link term is LinkMakespan of the link's jobs, each released at base + its
  // step latency, no tail: exactly For()'s bound for a schedule without dependencies.
  Bound Pooled(const NcclLatencyModel& model, NcclProtocol p, double efficiency, uint32_t steps) {
    const Duration base = model.Base(p);
    std::array<Duration, kKinds> step{};
    Duration chain, hop_latency, capped_chain;
    Rate cap;
    for (size_t k = 0; k < kKinds; ++k) {
      if (!kind_present_[k]) continue;
      step[k] = model.Step(static_cast<StepLinkKind>(k), p);
      chain = std::max(chain, step[k] + AtEfficiency(kind_longest_[k], efficiency));
      hop_latency = std::max(hop_latency, step[k]);
      // A transfer held to its rate_cap (at the protocol's efficiency, as a link): its time alone.
      const Duration capped = AtEfficiency(kind_capped_[k], efficiency);
      if (kind_capped_[k] > Duration() && step[k] + capped > capped_chain) {
        capped_chain = step[k] + capped;
        cap = kind_cap_[k];
      }
    }
    Bound bound{base + int64_t{steps} * std::max(chain, capped_chain),
                base + int64_t{steps} * hop_latency, std::nullopt};
    if (ring_ && steps > 1) {
      const auto [ring_chain, ring_latency] = RingChains(step, efficiency, steps);
      bound.total = base + ring_chain;
      bound.latency = base + ring_latency;
    }
    Duration worst;
    for (size_t e = 0; e < bandwidth_.size(); ++e) {
      const LinkDrain drain{bandwidth_[e], efficiency};
      Duration link;
      if (steps == 1) {
        jobs_.clear();
        for (size_t k = 0; k < kKinds; ++k) {
          if (kind_used_[e * kKinds + k])
            jobs_.push_back({base + step[k], kind_bytes_[e * kKinds + k], Duration()});
        }
        if (jobs_.empty()) continue;
        link = LinkMakespan(jobs_, drain);
      } else {
        // A ring: from the least step latency of the hops crossing the link, steps x its bytes.
        std::optional<Duration> first;
        double bytes = 0;
        for (size_t k = 0; k < kKinds; ++k) {
          if (!kind_used_[e * kKinds + k]) continue;
          first = first ? std::min(*first, step[k]) : step[k];
          bytes += kind_bytes_[e * kKinds + k];
        }
        if (!first) continue;
        link = base + *first + drain.Time(steps * bytes);
      }
      if (!bound.bottleneck || link > worst) {
        worst = link;
        bound.bottleneck = static_cast<uint32_t>(e);
      }
    }
    // The cap sets the time where its chain outlasts every link's bound and the links' chain.
    if (capped_chain > chain && base + int64_t{steps} * capped_chain > worst) {
      bound.bottleneck.reset();
      bound.capped = cap;
    }
    bound.total = std::max(bound.total, worst);
    return bound;
  }

  // A ring's longest chain of `steps` transfers, with and without their bytes, the schedule being
  // one step of it listed channel by channel, each channel's `ranks` hops in ring order (hop p
  // into the sender of hop p + 1), as network_model.cc lists them. In Ring()'s schedule
  // (collectives.cc) step k's hop p waits for step k - 1's hop p - 1 to arrive (its own step
  // latency s_p after) and for its own step k - 1 to have left (its pace, an intra-node step
  // latency c_p, after), so, with d_p its drain alone:
  //   done(k, p) = max(done(k - 1, p - 1) + s_p, done(k - 1, p) + c_p) + d_p,
  //   done(0, p) = s_p + d_p
  // and the chain is the largest done(steps - 1, p): For()'s forward pass on the whole ring.
  // Channels with the same (s, c, d) round are worked once. Past ring_exact_work_ ranks x steps,
  // or a schedule not so listed, the two chains every ring has: a rank sending all its steps
  // (s_p + d_p + (steps - 1)(c_p + d_p)), and a chunk going `steps` hops round (the most s + d
  // over as many consecutive hops); a lower bound still.
  std::pair<Duration, Duration> RingChains(std::span<const Duration> step, double efficiency,
                                           uint32_t steps) const {
    const uint32_t n = schedule_.ranks;
    const size_t m = schedule_.transfers.size();
    bool listed = n >= 2 && m % n == 0;
    for (size_t t = 0; listed && t < m; ++t) {
      const size_t next = t / n * n + (t % n + 1) % n;
      listed = schedule_.transfers[t].dst == schedule_.transfers[next].src;
    }
    Duration chain, latency;
    struct Hop {
      Duration s, c, d;  // step latency, pace, drain
      bool operator==(const Hop&) const = default;
    };
    std::vector<std::pair<Duration, Duration>> done;  // (with bytes, without)
    std::vector<std::vector<Hop>> seen;               // rounds worked
    const bool dynamic = listed && uint64_t{n} * steps <= ring_exact_work_;
    for (size_t first = 0; first < m; first += listed ? n : m) {
      const size_t count = listed ? n : m;
      std::vector<Hop> round(count);
      for (size_t p = 0; p < count; ++p) {
        round[p] = {step[static_cast<size_t>(hop_[first + p])],
                    step[static_cast<size_t>(pace_kind_[first + p])],
                    wire_ ? (*wire_)[first + p] : AtEfficiency(hop_drain_[first + p], efficiency)};
      }
      if (std::find(seen.begin(), seen.end(), round) != seen.end()) continue;
      seen.push_back(round);
      if (dynamic) {
        done.resize(count);
        for (size_t p = 0; p < count; ++p) done[p] = {round[p].s + round[p].d, round[p].s};
        for (uint32_t k = 1; k < steps; ++k) {
          // In place from the last hop down would read an updated p - 1: keep hop 0's old value.
          const std::pair<Duration, Duration> last = done[count - 1];
          for (size_t p = count; p-- > 0;) {
            const std::pair<Duration, Duration> in = p == 0 ? last : done[p - 1];
            const Hop& h = round[p];
            done[p] = {std::max(in.first + h.s, done[p].first + h.c) + h.d,
                       std::max(in.second + h.s, done[p].second + h.c)};
          }
        }
        for (const auto& [with, without] : done) {
          chain = std::max(chain, with);
          latency = std::max(latency, without);
        }
        continue;
      }
      // A rank's own steps; a chunk's `steps` consecutive hops (whole rounds plus the most a
      // shorter run of them adds), when the schedule is a listed ring.
      for (const Hop& h : round) {
        chain = std::max(chain, h.s + h.d + int64_t{steps - 1} * (h.c + h.d));
        latency = std::max(latency, h.s + int64_t{steps - 1} * h.c);
      }
      if (!listed) continue;
      Duration lap, lap_latency;
      for (const Hop& h : round) {
        lap += h.s + h.d;
        lap_latency += h.s;
      }
      const uint32_t laps = steps / n, rest = steps % n;
      // The most `rest` consecutive hops add, a window sliding round the ring.
      Duration run, run_latency;
      for (uint32_t j = 0; j < rest; ++j) {
        run += round[j].s + round[j].d;
        run_latency += round[j].s;
      }
      Duration best = run, best_latency = run_latency;
      for (size_t p = 1; p < count && rest > 0; ++p) {
        const Hop& out = round[p - 1];
        const Hop& in = round[(p + rest - 1) % count];
        run += in.s + in.d - out.s - out.d;
        run_latency += in.s - out.s;
        best = std::max(best, run);
        best_latency = std::max(best_latency, run_latency);
      }
      chain = std::max(chain, int64_t{laps} * lap + best);
      latency = std::max(latency, int64_t{laps} * lap_latency + best_latency);
    }
    return {chain, latency};
  }

  // PaceKind of `gpu`, walked once a GPU.
  StepLinkKind PaceOf(const topology::Cluster& cluster, uint32_t gpu) {
    if (pace_of_gpu_.size() <= gpu) pace_of_gpu_.resize(gpu + 1);
    if (!pace_of_gpu_[gpu]) pace_of_gpu_[gpu] = PaceKind(cluster, gpu);
    return *pace_of_gpu_[gpu];
  }

  // Per protocol: every link's drain, every transfer's step latency and time alone on its route.
  void Prepare(const NcclLatencyModel& model, NcclProtocol p, double efficiency, bool caps) {
    drain_.resize(bandwidth_.size());
    for (size_t e = 0; e < bandwidth_.size(); ++e) drain_[e] = LinkDrain{bandwidth_[e], efficiency};
    step_.resize(n_);
    pace_.resize(pace_kind_.empty() ? 0 : n_);
    solo_.assign(n_, Duration());
    cap_binds_ = Rate();
    for (uint32_t t = 0; t < n_; ++t) {
      step_[t] = schedule_.transfers[t].streamed ? Duration() : model.Step(hop_[t], p);
      if (!pace_kind_.empty()) {
        pace_[t] = schedule_.transfers[t].paced ? model.Step(pace_kind_[t], p) : Duration();
      }
      for (uint32_t u = first_[t]; u < first_[t + 1]; ++u)
        solo_[t] = std::max(
            solo_[t],
            drain_[uses_[u].edge].Time(shared_bytes_.empty() ? uses_[u].bytes : shared_bytes_[u]));
      // Held to its rate_cap, at the protocol's efficiency as a link; noted where it is what
      // sets the transfer's time.
      if (caps && !capped_.empty() && capped_[t] > Duration()) {
        const Duration capped = AtEfficiency(capped_[t], efficiency);
        if (capped > solo_[t]) {
          solo_[t] = capped;
          cap_binds_ = schedule_.transfers[t].rate_cap;
        }
      }
    }
  }

  // The transfers of `set` that share a link drain through it one after another at best: the
  // largest LinkMakespan over the links two or more of them cross, each use made a job by
  // `job(transfer, bytes on the link)`.
  template <typename JobOf>
  Duration SharedLinks(std::span<const uint32_t> set, JobOf job) {
    shared_.clear();
    for (uint32_t t : set) {
      for (uint32_t u = first_[t]; u < first_[t + 1]; ++u)
        shared_.push_back({uses_[u].edge, job(t, uses_[u].bytes)});
    }
    std::sort(shared_.begin(), shared_.end(),
              [](const auto& a, const auto& b) { return a.first < b.first; });
    Duration worst;
    for (size_t i = 0; i < shared_.size();) {
      size_t j = i;
      jobs_.clear();
      for (; j < shared_.size() && shared_[j].first == shared_[i].first; ++j)
        jobs_.push_back(shared_[j].second);
      if (jobs_.size() > 1) worst = std::max(worst, LinkMakespan(jobs_, drain_[shared_[i].first]));
      i = j;
    }
    return worst;
  }

  const Schedule& schedule_;
  const uint32_t n_;
  const bool ring_ = false;
  const uint64_t ring_exact_work_;
  std::vector<Duration> hop_drain_;   // ring_: each transfer's drain in lockstep, full bandwidth
  std::vector<double> shared_bytes_;  // a ring's, per use: LockstepShares; else empty
  const std::vector<Duration>* wire_ = nullptr;  // set_wire
  // Per link: its bandwidth and descriptor, by edge id (the general form), or in the pooled form
  // for the links the schedule crosses only, in edge id order. Bound::bottleneck indexes them.
  std::vector<Rate> bandwidth_;
  std::vector<topology::Edge> edges_;
  bool independent_ = false;  // no transfer waits for another: PoolByKind's form
  // PoolByKind: per (link, StepLinkKind) bytes and whether any transfer crosses; per kind.
  static constexpr size_t kKinds = 3;
  std::vector<double> kind_bytes_;
  std::vector<bool> kind_used_;
  std::array<bool, kKinds> kind_present_{};
  std::array<Duration, kKinds> kind_longest_{};
  // Per kind: the longest time a transfer takes alone at its rate_cap, and that cap.
  std::array<Duration, kKinds> kind_capped_{};
  std::array<Rate, kKinds> kind_cap_{};
  // The general form:
  std::vector<Use> uses_;  // transfer t's: uses_[first_[t] .. first_[t + 1])
  std::vector<uint32_t> first_;
  std::vector<StepLinkKind> hop_;                 // per transfer
  std::vector<Duration> capped_;  // per transfer, when any has a rate_cap: its time alone at it
  Rate cap_binds_;  // Prepare with caps: a rate_cap that set some transfer's time alone, or Rate()
  std::vector<StepLinkKind> pace_kind_;           // per transfer, when any is paced: PaceKind
  std::vector<std::optional<StepLinkKind>> pace_of_gpu_;
  std::vector<uint32_t> link_uses_, link_first_;  // edge e's uses: link_uses_[link_first_[e] ..]
  std::vector<uint32_t> waiters_, waiter_first_;  // transfer t's waiters: waiters_[first[t] ..]
  std::vector<uint32_t> streamers_, streamer_first_;  // those that wait for t to have left
  // Per protocol (For): per edge, per transfer, and scratch.
  std::vector<LinkDrain> drain_;
  std::vector<Duration> step_, pace_, solo_, release_, done_, empty_, tail_;
  std::vector<LinkJob> jobs_;
  std::vector<std::pair<uint32_t, LinkJob>> shared_;
  // Per link crossed: its bound, the time its bytes keep it busy, its index (For's bottleneck).
  struct LinkBound {
    Duration makespan, busy;
    uint32_t edge;
  };
  std::vector<LinkBound> links_;
};

// A bound set by a transfer's rate_cap, as the busiest link is named.
std::string CapName(Rate cap) {
  std::ostringstream name;
  name << "NCCL's channels to a network peer (" << cap.giga() << " GB/s)";
  return name.str();
}

std::string LinkName(const topology::Graph& g, topology::Edge e) {
  return g[boost::source(e, g)].name + " -> " + g[boost::target(e, g)].name;
}

// The nodes the schedule's ranks sit on.
uint32_t ScheduleNodes(const topology::Cluster& cluster, const Schedule& schedule) {
  std::vector<uint32_t> gpus;
  for (const Transfer& t : schedule.transfers) {
    gpus.push_back(t.src);
    gpus.push_back(t.dst);
  }
  return NodesSpanned(cluster, gpus);
}

// NCCL's tuner: the protocol with the least time among those `model` allows; ties go to the later
// protocol in the list (Simple), as NCCL prefers it for large messages. Links deliver the
// protocol's efficiency x `algo_efficiency` of their bandwidth, and LL in a ring or a tree no more
// bus bandwidth than NCCL's llMaxBw (NcclLlMaxBusGbps; all-to-alls are NCCL's point-to-point
// sends, outside its tuner's table): against the links' own bus bandwidth, size x busbw factor /
// `busiest` (the busiest link's bytes at its whole bandwidth), that ceiling is one more
// efficiency. (Not the Simple bound less its latency: a pipelined tree's chunks drain under its
// hops' latencies, which would make the links look hundreds of times faster.)
// `bound_for(model, protocol, efficiency)` gives the bound.
template <typename BoundFor>
CollectiveTiming Choose(const topology::Cluster& cluster, const Schedule& schedule,
                        const std::vector<topology::Edge>& edges, Duration busiest,
                        const NcclLatencyModel& model, double algo_efficiency, BoundFor bound_for) {
  const Bound full = bound_for(model, NcclProtocol::kSimple, 1.0);
  const Duration full_bandwidth = full.total - full.latency;
  CollectiveTiming timing;
  std::optional<Bound> best;
  for (NcclProtocol p : kNcclProtocols) {
    if (!model.Allows(p)) continue;
    double efficiency = NcclLatencyModel::Efficiency(p) * algo_efficiency;
    const bool ring_or_tree =
        schedule.algo == CollectiveAlgo::kRing || schedule.algo == CollectiveAlgo::kTree;
    if (p == NcclProtocol::kLL && ring_or_tree && busiest > Duration()) {
      const double links_bus_gbps = static_cast<double>(schedule.size) *
                                    BusBandwidthFactor(schedule.op, schedule.ranks) /
                                    static_cast<double>(busiest.picoseconds()) * 1e3;
      const double cap = NcclLlMaxBusGbps(cluster.gpu_spec().sm, ScheduleNodes(cluster, schedule));
      efficiency = std::min(efficiency, cap / links_bus_gbps);
    }
    // NCCL's tree correction at medium sizes (NcclTreeCorrection), after the LL ceiling as
    // ncclTopoGetAlgoTime applies it.
    if (schedule.op == CollectiveOp::kAllReduce &&
        (schedule.algo == CollectiveAlgo::kTree || schedule.algo == CollectiveAlgo::kNvlsTree)) {
      efficiency *= NcclTreeCorrection(p, schedule.size, schedule.algo == CollectiveAlgo::kNvlsTree,
                                       cluster.gpu_spec().sm);
    }
    const Bound b =
        p == NcclProtocol::kSimple && efficiency == 1.0 ? full : bound_for(model, p, efficiency);
    if (!best || b.total <= best->total) {
      best = b;
      timing.protocol = p;
      timing.efficiency = efficiency;
    }
  }
  timing.total = best->total;
  timing.latency = best->latency;
  timing.bandwidth = full_bandwidth;
  if (best->bottleneck)
    timing.bottleneck_link = LinkName(cluster.graph(), edges[*best->bottleneck]);
  else if (best->capped > Rate()) {
    timing.bottleneck_link = CapName(best->capped);
    timing.capped = true;
  }
  return timing;
}

bool HasNvSwitch(const topology::Cluster& cluster) {
  const topology::Graph& g = cluster.graph();
  for (auto [it, end] = boost::vertices(g); it != end; ++it) {
    if (g[*it].kind == topology::DeviceKind::kNvSwitch) return true;
  }
  return false;
}

}  // namespace

StepLinkKind HopKind(const topology::Cluster& cluster, uint32_t src, uint32_t dst) {
  const topology::Router& router = cluster.router();
  if (router.NodeOf(src) != router.NodeOf(dst)) return StepLinkKind::kNetwork;
  const topology::Graph& g = cluster.graph();
  bool nvlink = true;
  router.ForEachShare(src, dst, [&](topology::Edge e, double) {
    nvlink = nvlink && g[e].link_class == topology::LinkClass::kNvLink;
  });
  return KindOf(false, nvlink);
}

StepLinkKind PaceKind(const topology::Cluster& cluster, uint32_t gpu) {
  const uint32_t per_node = cluster.gpus_per_node();
  if (per_node < 2) return StepLinkKind::kNvLink;
  const uint32_t first = gpu / per_node * per_node;
  return HopKind(cluster, gpu, gpu == first ? first + 1 : first);
}

NcclLatencyModel LatencyModelFor(const topology::Cluster& cluster, const Schedule& schedule) {
  const CollectiveAlgo algo = schedule.algo;
  NcclLatencyModel model{algo == CollectiveAlgo::kTree, algo == CollectiveAlgo::kNvls,
                         algo == CollectiveAlgo::kNvlsTree, cluster.net_latency()};
  if (algo == CollectiveAlgo::kCollNet) {
    model.collnet = true;
    const uint32_t nodes = ScheduleNodes(cluster, schedule);
    model.local_ranks = nodes == 0 ? 1 : schedule.ranks / nodes;
  }
  if (algo == CollectiveAlgo::kRing) {
    const uint32_t nodes = ScheduleNodes(cluster, schedule);
    model.ring_across_nodes = nodes > 1;
    if (schedule.op == CollectiveOp::kAllReduce) {
      model.ring_plateau =
          NcclRingPlateau(cluster.gpu_spec().sm, nodes, schedule.ranks, schedule.size);
    }
  }
  return model;
}

double AlgorithmEfficiency(const topology::Cluster& cluster, const Schedule& schedule) {
  const CollectiveAlgo algo = schedule.algo;
  if (algo == CollectiveAlgo::kTree) return kNcclTreeEfficiency;
  if (algo == CollectiveAlgo::kCollNet) return CollNetEfficiency(cluster.gpu_spec().sm);
  if (algo != CollectiveAlgo::kNvls) return 1.0;
  // Across nodes the schedule's in-node bytes carry nvlsEfficiency, and the NICs run at their rate
  // (NCCL's tuner: min(intraBw x nvlsEfficiency, interBw)).
  if (ScheduleNodes(cluster, schedule) > 1) return 1.0;
  const double e = NvlsEfficiency(cluster.gpu_spec().sm);
  // Callers check CheckNvls first; an NVLS schedule on a GPU without it is a programming error.
  if (e <= 0) throw std::logic_error("NVLS on " + cluster.gpu_spec().name + ", which has none");
  return e;
}

Status CheckNvls(const topology::Cluster& cluster, const std::vector<uint32_t>& gpus,
                 CollectiveOp op) {
  const topology::GpuSpec& gpu = cluster.gpu_spec();
  const std::string valid =
      "--algo ring (all-reduce: or tree); nvls on one node of Hopper or newer GPUs behind "
      "NVSwitch (all-reduce: nvlstree across nodes, or nvls where the fabric has SHARP)";
  if (NvlsEfficiency(gpu.sm) <= 0) {
    return InputError({}, "--algo", "nvls",
                      gpu.name + " has no NVLink SHARP (NVLS needs Hopper or newer)", valid);
  }
  const topology::Router& router = cluster.router();
  if (!HasNvSwitch(cluster)) {
    return InputError({}, "--algo", "nvls", "the node has no NVSwitch to reduce in", valid);
  }
  for (uint32_t gpu_id : gpus) {
    if (router.NodeOf(gpu_id) == router.NodeOf(gpus.front())) continue;
    // Across nodes NCCL runs NVLS only with CollNet, the network's switches reducing.
    if (op != CollectiveOp::kAllReduce) {
      return InputError({}, "--algo", "nvls",
                        "the GPUs span nodes (NCCL runs NVLS across nodes for this collective only "
                        "with CollNet's own, which moesim does not model)",
                        valid);
    }
    if (!cluster.sharp()) {
      return InputError({}, "--algo", "nvls",
                        "the GPUs span nodes, and the fabric's switches do not reduce "
                        "(cluster.fabric.sharp is false; an all-reduce across nodes: --algo "
                        "nvlstree)",
                        valid);
    }
    if (GroupGpusPerNode(cluster, gpus) < 2) {
      return InputError({}, "--algo", "nvls",
                        "the GPUs span nodes, not as 2 or more on each node alike", valid);
    }
    return Status::Ok();
  }
  return Status::Ok();
}

Status CheckNvlsTree(const topology::Cluster& cluster, const std::vector<uint32_t>& gpus) {
  const std::string valid =
      "--algo nvlstree on 2 or more whole nodes of Hopper or newer GPUs behind NVSwitch";
  const topology::GpuSpec& gpu = cluster.gpu_spec();
  if (NvlsEfficiency(gpu.sm) <= 0) {
    return InputError({}, "--algo", "nvlstree",
                      gpu.name + " has no NVLink SHARP (NVLS needs Hopper or newer)", valid);
  }
  if (!HasNvSwitch(cluster)) {
    return InputError({}, "--algo", "nvlstree", "the nodes have no NVSwitch to reduce in", valid);
  }
  const uint32_t per_node = GroupGpusPerNode(cluster, gpus);
  if (per_node < 2 || per_node != cluster.gpus_per_node()) {
    return InputError({}, "--algo", "nvlstree",
                      "the GPUs are not 2 or more whole nodes (one node: --algo nvls)", valid);
  }
  return Status::Ok();
}

Status CheckCollNet(const topology::Cluster& cluster, const std::vector<uint32_t>& gpus) {
  const std::string valid =
      "--algo collnet on a fabric whose switches reduce (cluster.fabric.sharp: true), over 2 or "
      "more nodes of NVSwitch GPUs with as many GPUs (1 to 8) on each";
  if (!cluster.sharp()) {
    return InputError({}, "--algo", "collnet",
                      "the fabric's switches do not reduce (cluster.fabric.sharp is false)", valid);
  }
  if (!HasNvSwitch(cluster)) {
    return InputError({}, "--algo", "collnet",
                      "the nodes have no NVSwitch (NCCL runs CollNet Direct only behind one)",
                      valid);
  }
  const uint32_t per_node = GroupGpusPerNode(cluster, gpus);
  if (per_node == 0) {
    return InputError({}, "--algo", "collnet",
                      "the GPUs are not 2 or more nodes with as many GPUs on each", valid);
  }
  if (per_node > 8) {
    return InputError(
        {}, "--algo", "collnet",
        std::to_string(per_node) + " GPUs a node (NCCL runs CollNet Direct on at most 8 a node)",
        valid);
  }
  return Status::Ok();
}

std::vector<CollectiveAlgo> TunerAllReduceAlgorithms(const topology::Cluster& cluster,
                                                     const std::vector<uint32_t>& gpus,
                                                     std::string* described) {
  std::vector<CollectiveAlgo> algos = {CollectiveAlgo::kRing};
  const topology::Router& router = cluster.router();
  const bool across = !gpus.empty() && router.NodeOf(gpus.front()) != router.NodeOf(gpus.back());
  if (across) algos.push_back(CollectiveAlgo::kTree);
  if (across && CheckNvlsTree(cluster, gpus).ok()) algos.push_back(CollectiveAlgo::kNvlsTree);
  // In one node, or across nodes whose switches reduce.
  if (CheckNvls(cluster, gpus).ok()) algos.push_back(CollectiveAlgo::kNvls);
  if (across && CheckCollNet(cluster, gpus).ok()) algos.push_back(CollectiveAlgo::kCollNet);
  if (described) {
    // "ring", "ring or nvls (NCCL's tuner: the faster)", "ring, tree or nvlstree (... fastest)".
    std::string words;
    for (size_t i = 0; i < algos.size(); ++i) {
      words += i == 0 ? "" : i + 1 == algos.size() ? " or " : ", ";
      words += ToString(algos[i]);
    }
    if (algos.size() == 2) words += " (NCCL's tuner: the faster)";
    if (algos.size() > 2) words += " (NCCL's tuner: the fastest)";
    *described = words;
  }
  return algos;
}

std::vector<CollectiveAlgo> TunerAlgorithms(const topology::Cluster& cluster,
                                            const std::vector<uint32_t>& gpus, CollectiveOp op,
                                            std::string* described) {
  if (op == CollectiveOp::kAllReduce) return TunerAllReduceAlgorithms(cluster, gpus, described);
  std::vector<CollectiveAlgo> algos = {DefaultAlgo(op)};
  std::string words(ToString(algos.front()));
  const bool gathers = op == CollectiveOp::kAllGather || op == CollectiveOp::kReduceScatter;
  if (gathers && CheckNvls(cluster, gpus, op).ok()) {
    algos.push_back(CollectiveAlgo::kNvls);
    words = "ring or nvls (NCCL's tuner: the faster)";
  }
  if (described) *described = words;
  return algos;
}

uint32_t NodesSpanned(const topology::Cluster& cluster, const std::vector<uint32_t>& gpus) {
  std::vector<uint32_t> nodes;
  for (uint32_t g : gpus) nodes.push_back(cluster.router().NodeOf(g));
  std::sort(nodes.begin(), nodes.end());
  return static_cast<uint32_t>(std::unique(nodes.begin(), nodes.end()) - nodes.begin());
}

CollectiveTiming TimeCollective(const topology::Cluster& cluster, const Schedule& schedule) {
  ScheduleBound bound(cluster, schedule);
  CollectiveTiming timing =
      Choose(cluster, schedule, bound.edges(), bound.BusiestLink(),
             LatencyModelFor(cluster, schedule), AlgorithmEfficiency(cluster, schedule),
             [&](const NcclLatencyModel& model, NcclProtocol p, double efficiency) {
               return bound.For(model, p, efficiency);
             });
  timing.pipeline_fill = NvlsPipelineFill(cluster, schedule, timing.total - timing.latency);
  timing.total += timing.pipeline_fill;
  return timing;
}

Duration NvlsPipelineFill(const topology::Cluster& cluster, const Schedule& schedule,
                          Duration bytes_time) {
  // Across nodes the schedule's chunks are NCCL's loops already (NvlsAcrossNodes).
  if (schedule.algo != CollectiveAlgo::kNvls || schedule.size == 0 || schedule.ranks == 0 ||
      ScheduleNodes(cluster, schedule) > 1) {
    return Duration();
  }
  const uint32_t stages = schedule.op == CollectiveOp::kAllReduce ? 3 : 2;
  const uint64_t ops = uint64_t{NcclNvlsChannels(cluster.gpu_spec().sm, 1)} * schedule.ranks;
  const uint64_t loop = ops * NcclNvlsChunk(schedule.size, ops);
  const double share =
      std::min(1.0, static_cast<double>(loop) / static_cast<double>(schedule.size));
  return Duration::Picoseconds(static_cast<int64_t>(
      std::llround((stages - 1) * share * static_cast<double>(bytes_time.picoseconds()))));
}

CollectiveTiming TimeRing(const topology::Cluster& cluster, const Schedule& step, uint32_t steps,
                          uint64_t exact_work) {
  ScheduleBound bound(cluster, step, /*ring=*/true, exact_work);
  return Choose(cluster, step, bound.edges(), bound.BusiestLink(steps),
                LatencyModelFor(cluster, step), 1.0,
                [&](const NcclLatencyModel& model, NcclProtocol p, double efficiency) {
                  return bound.Ring(model, p, efficiency, steps);
                });
}

CollectiveTiming TimeRingOnWire(const topology::Cluster& cluster, const Schedule& step,
                                uint32_t steps, NcclProtocol protocol, double efficiency,
                                const std::vector<Duration>& wire) {
  ScheduleBound bound(cluster, step, /*ring=*/true);
  bound.set_wire(&wire);
  const Bound b = bound.Ring(LatencyModelFor(cluster, step), protocol, efficiency, steps);
  CollectiveTiming timing;
  timing.total = b.total;
  timing.latency = b.latency;
  timing.bandwidth = b.total - b.latency;
  timing.protocol = protocol;
  timing.efficiency = efficiency;
  if (b.bottleneck)
    timing.bottleneck_link = LinkName(cluster.graph(), bound.edges()[*b.bottleneck]);
  return timing;
}

}  // namespace moesim::sim
