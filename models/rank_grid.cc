#include "models/rank_grid.h"

#include <algorithm>
#include <cctype>
#include <stdexcept>

namespace moesim::models {

RankGrid::RankGrid(std::vector<Dim> dims_fastest_first) : dims_(std::move(dims_fastest_first)) {
  size_ = 1;
  for (const Dim& d : dims_) {
    stride_.push_back(size_);
    size_ *= d.size;
  }
}

std::string RankGrid::Order() const {
  std::vector<std::string> names;
  for (const Dim& d : dims_) names.push_back(d.name);
  return Join(names, "-");
}

size_t RankGrid::IndexOf(std::string_view dim) const {
  for (size_t i = 0; i < dims_.size(); ++i) {
    if (dims_[i].name == dim) return i;
  }
  throw std::logic_error("RankGrid has no dimension " + std::string(dim));
}

uint32_t RankGrid::Coordinate(uint32_t rank, std::string_view dim) const {
  const size_t i = IndexOf(dim);
  return (rank / stride_[i]) % dims_[i].size;
}

std::vector<uint32_t> RankGrid::Group(uint32_t rank, std::string_view dim) const {
  return GroupOver(rank, {dim});
}

std::vector<bool> RankGrid::Mask(const std::vector<std::string_view>& dims) const {
  std::vector<bool> mask(dims_.size(), false);
  for (std::string_view d : dims) mask[IndexOf(d)] = true;
  return mask;
}

std::vector<uint32_t> RankGrid::GroupFrom(uint32_t base, const std::vector<bool>& mask) const {
  // generate_masked_orthogonal_rank_groups: the i-th rank of a group decomposes i over the masked
  // dimensions, fastest first, and adds each coordinate times that dimension's global stride.
  uint32_t group_size = 1;
  for (size_t d = 0; d < dims_.size(); ++d) group_size *= mask[d] ? dims_[d].size : 1;
  std::vector<uint32_t> group(group_size);
  for (uint32_t i = 0; i < group_size; ++i) {
    uint32_t rest = i, rank = base;
    for (size_t d = 0; d < dims_.size(); ++d) {
      if (!mask[d]) continue;
      rank += (rest % dims_[d].size) * stride_[d];
      rest /= dims_[d].size;
    }
    group[i] = rank;
  }
  return group;
}

std::vector<uint32_t> RankGrid::GroupOver(uint32_t rank,
                                          const std::vector<std::string_view>& dims) const {
  const std::vector<bool> mask = Mask(dims);
  uint32_t base = rank;
  for (size_t d = 0; d < dims_.size(); ++d) {
    if (mask[d]) base -= ((rank / stride_[d]) % dims_[d].size) * stride_[d];
  }
  return GroupFrom(base, mask);
}

std::vector<std::vector<uint32_t>> RankGrid::AllGroups(
    const std::vector<std::string_view>& dims) const {
  const std::vector<bool> mask = Mask(dims);
  uint32_t group_size = 1;
  for (size_t d = 0; d < dims_.size(); ++d) group_size *= mask[d] ? dims_[d].size : 1;
  std::vector<std::vector<uint32_t>> groups;
  // Group g decomposes g over the unmasked dimensions, fastest first (Megatron's group index).
  for (uint32_t g = 0; g < size_ / group_size; ++g) {
    uint32_t rest = g, base = 0;
    for (size_t d = 0; d < dims_.size(); ++d) {
      if (mask[d]) continue;
      base += (rest % dims_[d].size) * stride_[d];
      rest /= dims_[d].size;
    }
    groups.push_back(GroupFrom(base, mask));
  }
  return groups;
}

StatusOr<std::vector<std::string>> ParseOrder(std::string_view order, const Location& where,
                                              std::string_view field) {
  std::string lower(order);
  for (char& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  const std::string valid =
      "names from tp, cp, ep, dp, pp joined by '-', each at most once, "
      "fastest-varying first (default \"" +
      std::string(kDefaultOrder) + "\")";
  std::vector<std::string> names;
  for (size_t start = 0;;) {
    const size_t dash = lower.find('-', start);
    const std::string name = lower.substr(start, dash - start);
    const bool known = name == "tp" || name == "cp" || name == "ep" || name == "dp" || name == "pp";
    if (!known) {
      return InputError(where, field, "\"" + std::string(order) + "\"",
                        name.empty() ? "an empty name" : "unknown name \"" + name + "\"", valid);
    }
    if (std::find(names.begin(), names.end(), name) != names.end()) {
      return InputError(where, field, "\"" + std::string(order) + "\"",
                        "\"" + name + "\" appears twice", valid);
    }
    names.push_back(name);
    if (dash == std::string::npos) break;
    start = dash + 1;
  }
  return names;
}

StatusOr<RankGrid> GridFromOrder(const std::vector<std::string>& order,
                                 const std::vector<NamedSize>& sizes, const Location& where,
                                 std::string_view field) {
  std::vector<RankGrid::Dim> dims;
  auto add = [&](const NamedSize& s) {
    if (!s.grid_name.empty()) dims.push_back({s.grid_name, s.size});
  };
  for (const std::string& name : order) {
    for (const NamedSize& s : sizes) {
      if (s.order_name == name) add(s);
    }
  }
  // RankGenerator appends the names the order leaves out; they must have size 1.
  for (const NamedSize& s : sizes) {
    if (std::find(order.begin(), order.end(), s.order_name) != order.end()) continue;
    if (s.size != 1) {
      const std::string name = s.grid_name.empty() ? s.order_name : s.grid_name;
      return InputError(
          where, field, "\"" + Join(order, "-") + "\"",
          "leaves out " + s.order_name + ", but " + name + " is " + std::to_string(s.size),
          "an order that names every dimension of size > 1");
    }
    add(s);
  }
  return RankGrid(std::move(dims));
}

}  // namespace moesim::models
