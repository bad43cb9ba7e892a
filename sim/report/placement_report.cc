#include "sim/report/placement_report.h"

#include <fmt/format.h>

#include <algorithm>
#include <string>
#include <vector>

namespace moesim::sim {

namespace {

pb::LayerPlacementReport LayerToProto(const models::LayerPlacement& layer, uint32_t index) {
  pb::LayerPlacementReport r;
  r.set_layer(index);
  std::vector<std::vector<uint32_t>> physical(layer.num_experts());
  uint32_t next = 0;
  for (const std::vector<uint32_t>& slots : layer.slots()) {
    r.add_slots_per_rank(static_cast<uint32_t>(slots.size()));
    for (uint32_t expert : slots) {
      r.add_phy2log(expert);
      physical[expert].push_back(next++);
    }
  }
  size_t max_replicas = 0;
  for (const auto& p : physical) max_replicas = std::max(max_replicas, p.size());
  r.set_max_replicas(static_cast<uint32_t>(max_replicas));
  for (const auto& p : physical) {
    r.add_logcnt(static_cast<uint32_t>(p.size()));
    for (uint32_t phys : p) r.add_log2phy(phys);
  }
  return r;
}

bool SameLayer(const pb::LayerPlacementReport& a, const pb::LayerPlacementReport& b) {
  return std::equal(a.phy2log().begin(), a.phy2log().end(), b.phy2log().begin(),
                    b.phy2log().end()) &&
         std::equal(a.slots_per_rank().begin(), a.slots_per_rank().end(),
                    b.slots_per_rank().begin(), b.slots_per_rank().end());
}

}  // namespace

pb::PlacementReport PlacementToProto(const models::ExpertPlacement& placement, uint32_t layers) {
  pb::PlacementReport report;
  report.set_description(placement.description());
  report.set_ep(placement.ep());
  report.set_num_experts(placement.num_experts());
  for (uint32_t l = 0; l < std::max<uint32_t>(layers, 1); ++l) {
    *report.add_layers() = LayerToProto(placement.layer(l), l);
  }
  const bool same = std::all_of(report.layers().begin(), report.layers().end(),
                                [&](const pb::LayerPlacementReport& l) {
                                  return SameLayer(l, report.layers(0));
                                });
  report.set_same_for_every_layer(same);
  if (same) report.mutable_layers()->DeleteSubrange(1, report.layers_size() - 1);
  return report;
}

void PrintPlacement(const pb::PlacementReport& report, uint32_t max_ranks, std::ostream& out) {
  out << "Placement: " << report.description() << "; ep " << report.ep() << ", "
      << report.num_experts() << " experts\n";
  for (const pb::LayerPlacementReport& layer : report.layers()) {
    out << "  " << (report.same_for_every_layer() ? std::string("every layer")
                                                  : "layer " + std::to_string(layer.layer()))
        << ": " << layer.phy2log_size() << " physical experts (phy2log by EP rank; * = "
        << "replicated)\n";
    int p = 0;
    const int ranks = layer.slots_per_rank_size();
    for (int r = 0; r < ranks; ++r) {
      const uint32_t slots = layer.slots_per_rank(r);
      if (max_ranks != 0 && static_cast<uint32_t>(r) >= max_ranks) {
        out << "    ... " << ranks - r << " more EP ranks (moesim placement show lists all)\n";
        break;
      }
      std::string line = fmt::format("    ep{:<4}", r);
      for (uint32_t s = 0; s < slots; ++s, ++p) {
        const uint32_t e = layer.phy2log(p);
        line += fmt::format(" {}{}", e, layer.logcnt(e) > 1 ? "*" : "");
      }
      out << line << "\n";
    }
    // Each replicated expert and the EP ranks that hold it (log2phy, as ranks).
    std::vector<uint32_t> rank_of;
    for (int r = 0; r < ranks; ++r) rank_of.insert(rank_of.end(), layer.slots_per_rank(r), r);
    std::string replicated;
    int first = 0;  // expert e's physical experts start here in log2phy
    for (int e = 0; e < layer.logcnt_size(); first += layer.logcnt(e), ++e) {
      if (layer.logcnt(e) < 2) continue;
      replicated += fmt::format("{} {} x{} (ep", replicated.empty() ? "" : ";", e, layer.logcnt(e));
      for (uint32_t i = 0; i < layer.logcnt(e); ++i) {
        replicated += fmt::format("{}{}", i == 0 ? " " : ",", rank_of.at(layer.log2phy(first + i)));
      }
      replicated += ")";
    }
    out << "    replicated experts (logcnt > 1):" << (replicated.empty() ? " none" : replicated)
        << "\n";
  }
}

}  // namespace moesim::sim
