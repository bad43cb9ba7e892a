#include "models/eplb.h"

#include <algorithm>
#include <numeric>

namespace moesim::models {
namespace {

// inverse(perm) of the reference: inv[row][perm[row][i]] = i.
IndexMatrix Inverse(const IndexMatrix& perm) {
  IndexMatrix inv(perm.size());
  for (size_t r = 0; r < perm.size(); ++r) {
    inv[r].resize(perm[r].size());
    for (uint32_t i = 0; i < perm[r].size(); ++i) inv[r][perm[r][i]] = i;
  }
  return inv;
}

}  // namespace

Packing BalancedPacking(const LoadMatrix& weight, uint32_t num_packs) {
  Packing out;
  for (const std::vector<float>& row : weight) {
    const uint32_t n = static_cast<uint32_t>(row.size());
    const uint32_t per_pack = n / num_packs;
    std::vector<uint32_t> pack_index(n), rank_in_pack(n, 0);
    if (per_pack == 1) {  // the reference's shortcut: item i is pack i
      std::iota(pack_index.begin(), pack_index.end(), 0u);
    } else {
      std::vector<uint32_t> order(n);
      std::iota(order.begin(), order.end(), 0u);
      std::stable_sort(order.begin(), order.end(),
                       [&](uint32_t a, uint32_t b) { return row[a] > row[b]; });
      std::vector<float> pack_weight(num_packs, 0.0f);
      std::vector<uint32_t> pack_items(num_packs, 0);
      for (uint32_t item : order) {
        uint32_t best = num_packs;
        for (uint32_t p = 0; p < num_packs; ++p) {
          if (pack_items[p] < per_pack && (best == num_packs || pack_weight[p] < pack_weight[best]))
            best = p;
        }
        pack_index[item] = best;
        rank_in_pack[item] = pack_items[best];
        pack_weight[best] += row[item];
        ++pack_items[best];
      }
    }
    out.pack_index.push_back(std::move(pack_index));
    out.rank_in_pack.push_back(std::move(rank_in_pack));
  }
  return out;
}

Replication ReplicateExperts(const LoadMatrix& weight, uint32_t num_phy) {
  Replication out;
  for (const std::vector<float>& row : weight) {
    const uint32_t num_log = static_cast<uint32_t>(row.size());
    std::vector<uint32_t> phy2log(num_phy), rank(num_phy, 0), logcnt(num_log, 1);
    std::iota(phy2log.begin(), phy2log.begin() + num_log, 0u);
    for (uint32_t p = num_log; p < num_phy; ++p) {
      uint32_t best = 0;
      float best_load = row[0] / static_cast<float>(logcnt[0]);
      for (uint32_t e = 1; e < num_log; ++e) {
        const float load = row[e] / static_cast<float>(logcnt[e]);
        if (load > best_load) best = e, best_load = load;  // first maximum wins ties
      }
      phy2log[p] = best;
      rank[p] = logcnt[best]++;
    }
    out.phy2log.push_back(std::move(phy2log));
    out.rank.push_back(std::move(rank));
    out.logcnt.push_back(std::move(logcnt));
  }
  return out;
}

EplbResult RebalanceExpertsHierarchical(const LoadMatrix& weight, uint32_t num_physical_experts,
                                        uint32_t num_groups, uint32_t num_nodes,
                                        uint32_t num_gpus) {
  const size_t layers = weight.size();
  const uint32_t num_logical = static_cast<uint32_t>(weight.front().size());
  const uint32_t group_size = num_logical / num_groups;
  const uint32_t groups_per_node = num_groups / num_nodes;
  const uint32_t phy_per_gpu = num_physical_experts / num_gpus;
  const uint32_t log_per_node = num_logical / num_nodes;
  const uint32_t phy_per_node = num_physical_experts / num_nodes;

  // Step 1: pack expert groups onto nodes. log2mlog maps a logical expert to its "middle" index:
  // node-major, so node n holds middle experts [n * log_per_node, (n + 1) * log_per_node).
  LoadMatrix tokens_per_group(layers, std::vector<float>(num_groups, 0.0f));
  for (size_t l = 0; l < layers; ++l) {
    for (uint32_t e = 0; e < num_logical; ++e) tokens_per_group[l][e / group_size] += weight[l][e];
  }
  const Packing groups = BalancedPacking(tokens_per_group, num_nodes);
  IndexMatrix log2mlog(layers, std::vector<uint32_t>(num_logical));
  for (size_t l = 0; l < layers; ++l) {
    for (uint32_t e = 0; e < num_logical; ++e) {
      const uint32_t g = e / group_size;
      log2mlog[l][e] =
          (groups.pack_index[l][g] * groups_per_node + groups.rank_in_pack[l][g]) * group_size +
          e % group_size;
    }
  }
  const IndexMatrix mlog2log = Inverse(log2mlog);

  // Step 2: replicate experts inside each node; one row per (layer, node).
  LoadMatrix tokens_per_mlog(layers * num_nodes, std::vector<float>(log_per_node));
  for (size_t l = 0; l < layers; ++l) {
    for (uint32_t m = 0; m < num_logical; ++m) {
      tokens_per_mlog[l * num_nodes + m / log_per_node][m % log_per_node] =
          weight[l][mlog2log[l][m]];
    }
  }
  const Replication rep = ReplicateExperts(tokens_per_mlog, phy_per_node);

  // Step 3: pack each node's physical experts onto its GPUs, by load per replica.
  LoadMatrix tokens_per_phy(tokens_per_mlog.size(), std::vector<float>(phy_per_node));
  for (size_t r = 0; r < tokens_per_mlog.size(); ++r) {
    for (uint32_t p = 0; p < phy_per_node; ++p) {
      const uint32_t m = rep.phy2log[r][p];
      tokens_per_phy[r][p] = tokens_per_mlog[r][m] / static_cast<float>(rep.logcnt[r][m]);
    }
  }
  const Packing gpus = BalancedPacking(tokens_per_phy, num_gpus / num_nodes);
  IndexMatrix phy2pphy(tokens_per_phy.size(), std::vector<uint32_t>(phy_per_node));
  for (size_t r = 0; r < phy2pphy.size(); ++r) {
    for (uint32_t p = 0; p < phy_per_node; ++p) {
      phy2pphy[r][p] = gpus.pack_index[r][p] * phy_per_gpu + gpus.rank_in_pack[r][p];
    }
  }
  const IndexMatrix pphy2phy = Inverse(phy2pphy);

  EplbResult out;
  out.phy2log.assign(layers, std::vector<uint32_t>(num_physical_experts));
  IndexMatrix phyrank(layers, std::vector<uint32_t>(num_physical_experts));
  for (size_t l = 0; l < layers; ++l) {
    for (uint32_t node = 0; node < num_nodes; ++node) {
      const size_t r = l * num_nodes + node;
      for (uint32_t q = 0; q < phy_per_node; ++q) {
        const uint32_t mlog = rep.phy2log[r][pphy2phy[r][q]] + node * log_per_node;
        out.phy2log[l][node * phy_per_node + q] = mlog2log[l][mlog];
        phyrank[l][node * phy_per_node + q] = rep.rank[r][pphy2phy[r][q]];
      }
    }
  }
  out.logcnt.assign(layers, std::vector<uint32_t>(num_logical));
  out.log2phy.assign(layers, std::vector<std::vector<uint32_t>>(num_logical));
  for (size_t l = 0; l < layers; ++l) {
    for (uint32_t e = 0; e < num_logical; ++e) {
      const uint32_t m = log2mlog[l][e];
      out.logcnt[l][e] = rep.logcnt[l * num_nodes + m / log_per_node][m % log_per_node];
      out.log2phy[l][e].assign(out.logcnt[l][e], 0);
    }
    for (uint32_t p = 0; p < num_physical_experts; ++p) {
      out.log2phy[l][out.phy2log[l][p]][phyrank[l][p]] = p;
    }
  }
  return out;
}

StatusOr<EplbResult> RebalanceExperts(const LoadMatrix& weight, uint32_t num_replicas,
                                      uint32_t num_groups, uint32_t num_nodes, uint32_t num_gpus) {
  const Location none;
  if (weight.empty() || weight.front().empty()) {
    return InputError(none, "EPLB loads", "empty", "no layer or no expert", "[layers][experts]");
  }
  const uint32_t experts = static_cast<uint32_t>(weight.front().size());
  for (const std::vector<float>& row : weight) {
    if (row.size() != experts) {
      return InputError(none, "EPLB loads", std::to_string(row.size()) + " experts",
                        "layers with different numbers of experts",
                        std::to_string(experts) + " in every layer");
    }
  }
  const std::string gpus = std::to_string(num_gpus);
  if (num_gpus == 0 || num_nodes == 0 || num_gpus % num_nodes != 0) {
    return InputError(none, "EPLB num_nodes", std::to_string(num_nodes),
                      "does not divide the " + gpus + " GPUs", "a divisor of " + gpus);
  }
  if (num_replicas < experts || num_replicas % num_gpus != 0) {
    return InputError(none, "EPLB num_replicas", std::to_string(num_replicas),
                      "fewer than the " + std::to_string(experts) +
                          " experts or not a multiple of the " + gpus + " GPUs",
                      "a multiple of " + gpus + " >= " + std::to_string(experts));
  }
  const bool hierarchical = num_groups != 0 && num_groups % num_nodes == 0;
  if (hierarchical && experts % num_groups != 0) {
    return InputError(none, "EPLB num_groups", std::to_string(num_groups),
                      "does not divide the " + std::to_string(experts) + " experts",
                      "a divisor of " + std::to_string(experts));
  }
  EplbResult out =
      hierarchical
          ? RebalanceExpertsHierarchical(weight, num_replicas, num_groups, num_nodes, num_gpus)
          : RebalanceExpertsHierarchical(weight, num_replicas, 1, 1, num_gpus);
  out.hierarchical = hierarchical;
  return out;
}

}  // namespace moesim::models
