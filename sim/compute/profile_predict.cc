#include "sim/compute/profile_predict.h"

#include <algorithm>
#include <cmath>

#include "models/model_spec.h"
#include "proto/text_file.h"
#include "sim/compute/compute_model.h"
#include "sim/compute/profile_model.h"

namespace moesim::sim {
namespace {

// The profile's compute figures with the datasheet's where it is silent, in ns, FLOPs, bytes.
struct Compute {
  double flops_per_ns = 0;  // GEMM rate R
  double n_half = 0;
  double bytes_per_ns = 0;  // memory bandwidth M
  double launch_ns = 0;
};

// `r` in the units of sim/compute/profile_model.h.
Compute InUnits(const ComputeRates& r) {
  return Compute{static_cast<double>(r.flops.per_second()) / 1e9, r.n_half,
                 static_cast<double>(r.memory.per_second()) / 1e9,
                 static_cast<double>(r.launch.picoseconds()) / 1e3};
}

struct PhaseCost {
  std::vector<double> rank_ns;
  std::vector<uint64_t> flops, bytes;
  std::vector<const char*> bound;
};

// Appends the phase: its time is its slowest rank's (ties: the lowest), rounded up to whole ns.
int64_t AddPhase(pb::Result& result, const char* name, uint32_t layer, const PhaseCost& c,
                 uint64_t link_bytes, bool communication) {
  pb::Phase* phase = result.add_phases();
  phase->set_name(name);
  phase->set_layer(layer);
  uint32_t critical = 0;
  for (uint32_t r = 0; r < c.rank_ns.size(); ++r) {
    phase->add_rank_time_ns(static_cast<int64_t>(std::ceil(c.rank_ns[r])));
    if (c.rank_ns[r] > c.rank_ns[critical]) critical = r;
  }
  const int64_t t = static_cast<int64_t>(std::ceil(c.rank_ns[critical]));
  phase->set_time_ns(t);
  phase->set_critical_rank(critical);
  phase->set_bound(c.bound[critical]);
  phase->set_bytes(communication ? link_bytes : c.bytes[critical]);
  phase->set_flops(c.flops[critical]);
  return t;
}

StatusOr<const pb::LinkProfile*> FindLink(const pb::HardwareProfile& profile,
                                          const std::string& link_class,
                                          const std::string& collective) {
  if (const pb::LinkProfile* l = FindLinkProfile(profile, link_class, collective)) return l;
  std::vector<std::string> have;
  for (const pb::LinkProfile& l : profile.links())
    have.push_back(l.link_class() + " " + l.collective());
  return InputError({}, "hardware profile " + profile.name() + ": links",
                    link_class + " " + collective, "no entry for the all-to-all's link class",
                    have.empty() ? std::string("a calibrated entry (none present)") : Join(have));
}

}  // namespace

StatusOr<pb::Result> PredictWithProfile(const topology::Cluster& cluster,
                                        const models::Workload& workload,
                                        const pb::HardwareProfile& profile) {
  const pb::ModelSpec& model = workload.model;
  // The profile over the datasheet (sim/compute/compute_model.h).
  const ComputeRates rates =
      ComputeRates::Datasheet(cluster.gpu_spec(), model.dtype()).With(profile.gpu());
  const Compute c = InUnits(rates);
  const uint32_t world = workload.plan.world();
  pb::Result result;
  result.set_scenario(workload.name);
  result.set_executor("profile " + profile.name());
  result.set_gpus(world);
  result.set_model(model.name());
  int64_t total = 0;
  for (const models::LayerWork& layer : workload.layers) {
    PhaseCost router, expert;
    for (PhaseCost* p : {&router, &expert}) {
      p->rank_ns.resize(world);
      p->flops.resize(world);
      p->bytes.resize(world);
      p->bound.assign(world, "none");
    }
    for (uint32_t r = 0; r < world; ++r) {
      const models::OpCost rc = models::RouterCost(model, layer.tokens_in[r]);
      router.rank_ns[r] = c.launch_ns + static_cast<double>(rc.bytes.value) / c.bytes_per_ns;
      router.bytes[r] = rc.bytes.value;
      router.flops[r] = rc.flops;
      router.bound[r] = "memory";
      const ExpertWork w = ExpertWorkOf(model, layer.expert_tokens[r]);
      uint64_t bytes = 0;
      for (uint64_t n : layer.expert_tokens[r])
        bytes += models::ExpertFfnCost(model, n).bytes.value;
      const Compute g = InUnits(rates.ForGemm(static_cast<uint64_t>(w.flops)));
      const double gemm = (w.flops + w.active * g.n_half) / g.flops_per_ns;
      const double memory = static_cast<double>(bytes) / g.bytes_per_ns;
      expert.rank_ns[r] = g.launch_ns + std::max(gemm, memory);
      expert.flops[r] = static_cast<uint64_t>(w.flops);
      expert.bytes[r] = bytes;
      expert.bound[r] = gemm >= memory ? "flops" : "memory";
    }
    total += AddPhase(result, "router", layer.layer, router, 0, false);
    for (const char* name : {"dispatch", "combine"}) {
      const bool dispatch = std::string(name) == "dispatch";
      // What a direct exchange sends (per_rank: distinct tokens per GPU), in the phase's dtype.
      const models::TrafficMatrix& sent = models::SentTokens(layer, workload.alltoall_algo);
      const models::TrafficMatrix tokens = dispatch ? sent : sent.Transposed();
      const uint64_t token_bytes =
          models::WireTokenBytes(model, dispatch ? workload.dispatch_dtype : workload.combine_dtype)
              .value;
      PhaseCost comm{std::vector<double>(world, 0.0), std::vector<uint64_t>(world, 0),
                     std::vector<uint64_t>(world, 0), std::vector<const char*>(world, "none")};
      uint64_t off = 0, own = 0;
      for (uint32_t r = 0; r < world; ++r) {
        off += tokens.SentOffRank(r);
        own += tokens.at(r, r);
      }
      if (off + own > 0) {  // rows kept on their rank are copied too (link class "local")
        MOESIM_ASSIGN_OR_RETURN(const std::string link_class, AllToAllLinkClass(cluster, tokens));
        MOESIM_ASSIGN_OR_RETURN(const pb::LinkProfile* link, FindLink(profile, link_class, name));
        for (uint32_t r = 0; r < world; ++r) {
          const AllToAllWork work = AllToAllWorkOf(tokens, token_bytes, r);
          comm.bytes[r] = std::max(tokens.SentOffRank(r), tokens.ReceivedOffRank(r)) * token_bytes;
          comm.rank_ns[r] = AllToAllRankNs(*link, work);
          if (comm.rank_ns[r] > 0) comm.bound[r] = "link";
        }
      }
      total += AddPhase(result, name, layer.layer, comm, off * token_bytes, true);
      if (dispatch) total += AddPhase(result, "expert", layer.layer, expert, 0, false);
    }
  }
  result.set_total_ns(total);
  return result;
}

StatusOr<pb::HardwareProfile> LoadHardwareProfile(const std::string& path) {
  pb::HardwareProfile p;
  MOESIM_ASSIGN_OR_RETURN(TextFile file, TextFile::Parse(path, &p));
  auto positive = [&](const std::string& field, bool has, double v) -> Status {
    if (!has || v > 0) return Status::Ok();
    return InputError(file.Locate(field), field, std::to_string(v), "must be", "> 0");
  };
  const pb::GpuProfile& g = p.gpu();
  MOESIM_RETURN_IF_ERROR(
      positive("gpu.gemm_peak_tflops", g.has_gemm_peak_tflops(), g.gemm_peak_tflops()));
  MOESIM_RETURN_IF_ERROR(positive("gpu.memory_bandwidth_gbps", g.has_memory_bandwidth_gbps(),
                                  g.memory_bandwidth_gbps()));
  if (g.gemm_n_half() < 0 || g.launch_overhead_ns() < 0) {
    const bool half = g.gemm_n_half() < 0;
    const std::string field = half ? "gpu.gemm_n_half" : "gpu.launch_overhead_ns";
    return InputError(file.Locate(field), field,
                      std::to_string(half ? g.gemm_n_half() : g.launch_overhead_ns()), "must be",
                      ">= 0");
  }
  if (g.has_large_gemms()) {
    const pb::GpuProfile::GemmBand& b = g.large_gemms();
    MOESIM_RETURN_IF_ERROR(positive("gpu.large_gemms.min_flops", true, b.min_flops()));
    MOESIM_RETURN_IF_ERROR(
        positive("gpu.large_gemms.gemm_peak_tflops", true, b.gemm_peak_tflops()));
    if (b.gemm_n_half() < 0 || b.launch_overhead_ns() < 0) {
      const bool half = b.gemm_n_half() < 0;
      const std::string field =
          half ? "gpu.large_gemms.gemm_n_half" : "gpu.large_gemms.launch_overhead_ns";
      return InputError(file.Locate(field), field,
                        std::to_string(half ? b.gemm_n_half() : b.launch_overhead_ns()), "must be",
                        ">= 0");
    }
  }
  for (int i = 0; i < p.links_size(); ++i) {
    const std::string at = "links[" + std::to_string(i) + "]";
    MOESIM_RETURN_IF_ERROR(positive(at + ".bandwidth_gbps",
                                    p.links(i).link_class() != kLocalLinkClass,
                                    p.links(i).bandwidth_gbps()));
    MOESIM_RETURN_IF_ERROR(positive(at + ".local_bandwidth_gbps",
                                    p.links(i).has_local_bandwidth_gbps(),
                                    p.links(i).local_bandwidth_gbps()));
    if (p.links(i).latency_ns() < 0) {
      return InputError(file.Locate(at + ".latency_ns"), at + ".latency_ns",
                        std::to_string(p.links(i).latency_ns()), "must be", ">= 0");
    }
  }
  return p;
}

}  // namespace moesim::sim
