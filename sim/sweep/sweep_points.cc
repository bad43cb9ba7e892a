#include "sim/sweep/sweep_points.h"

#include <fmt/format.h>

#include <cmath>
#include <cstdlib>

#include "models/model_spec.h"
#include "topology/presets.h"

namespace moesim::sim {
namespace {

using google::protobuf::FieldDescriptor;

std::optional<double> Number(const std::string& text) {
  if (text.empty()) return std::nullopt;
  char* end = nullptr;
  const double v = std::strtod(text.c_str(), &end);
  if (end != text.c_str() + text.size() || !std::isfinite(v)) return std::nullopt;
  return v;
}

// Digits after the point as written ("0.25": 2, "100": 0); none for a number with an exponent.
std::optional<int> Decimals(const std::string& text) {
  if (text.find_first_of("eE") != std::string::npos) return std::nullopt;
  const size_t dot = text.find('.');
  return dot == std::string::npos ? 0 : static_cast<int>(text.size() - dot - 1);
}

// `v` with `decimals` digits, trailing zeros cut ("0.50" -> "0.5", "-0" -> "0"); the shortest
// round-trip form without them.
std::string Format(double v, std::optional<int> decimals) {
  std::string s = decimals ? fmt::format("{:.{}f}", v, *decimals) : fmt::format("{}", v);
  if (s.find('.') != std::string::npos && s.find_first_of("eE") == std::string::npos) {
    s.erase(s.find_last_not_of('0') + 1);
    if (s.back() == '.') s.pop_back();
  }
  if (s == "-0") s = "0";
  return s;
}

// Every piece between separators, empty ones kept ("a,,b" is three).
std::vector<std::string> Split(std::string_view text, char separator) {
  std::vector<std::string> out;
  size_t at = 0;
  while (true) {
    const size_t end = std::min(text.find(separator, at), text.size());
    out.emplace_back(text.substr(at, end - at));
    if (end == text.size()) return out;
    at = end + 1;
  }
}

bool IsNumber(const FieldDescriptor* f) {
  switch (f->cpp_type()) {
    case FieldDescriptor::CPPTYPE_INT32:
    case FieldDescriptor::CPPTYPE_INT64:
    case FieldDescriptor::CPPTYPE_UINT32:
    case FieldDescriptor::CPPTYPE_UINT64:
    case FieldDescriptor::CPPTYPE_DOUBLE:
    case FieldDescriptor::CPPTYPE_FLOAT:
      return true;
    default:
      return false;
  }
}

}  // namespace

Location SweepAxis::Where(const std::string& value) const {
  return Location{"--set " + path.text + "=" + Printable(value)};
}

StatusOr<std::vector<std::string>> ExpandRange(const std::string& item, bool integer,
                                               const Location& where) {
  if (item.find(':') == std::string::npos) return std::vector<std::string>{item};
  const std::vector<std::string> parts = Split(item, ':');
  const std::string form = "start:stop:step or start:stop:xFACTOR, e.g. 0:1.5:0.25 or 100:800:x2";
  auto bad = [&](std::string_view problem) -> Error {
    return InputError(where, "range", item, problem, form);
  };
  if (parts.size() != 3) return bad("not a range");
  const std::optional<double> start = Number(parts[0]), stop = Number(parts[1]);
  if (!start || !stop) return bad("start and stop must be finite numbers");
  if (*stop < *start) return bad("stop is below start");
  std::vector<std::string> values;
  auto add = [&](double v, std::optional<int> decimals) -> Status {
    if (values.size() >= kMaxSweepPoints) {
      return bad("more than " + std::to_string(kMaxSweepPoints) + " values");
    }
    if (integer && v != std::floor(v)) {
      return bad("gives " + Format(v, decimals) +
                 ", not a whole number, for a field of whole numbers");
    }
    values.push_back(Format(v, decimals));
    return Status::Ok();
  };
  if (parts[2].starts_with("x")) {
    const std::optional<double> factor = Number(parts[2].substr(1));
    if (!factor || *factor <= 1) return bad("the factor after x must be a number above 1");
    if (*start <= 0) return bad("a geometric range starts above 0");
    // start x factor^i, each from start (no drift), up to stop within 1e-9 of it.
    for (int i = 0;; ++i) {
      const double v = *start * std::pow(*factor, i);
      if (v > *stop * (1 + 1e-9)) break;
      MOESIM_RETURN_IF_ERROR(add(v, std::nullopt));
    }
    return values;
  }
  const std::optional<double> step = Number(parts[2]);
  if (!step || *step <= 0) return bad("the step must be a number above 0");
  std::optional<int> decimals = Decimals(parts[0]);
  if (const std::optional<int> d = Decimals(parts[2]); !decimals || !d) {
    decimals = std::nullopt;
  } else {
    decimals = std::max(*decimals, *d);
  }
  // Steps that fit, counting a stop within 1e-9 of a step as landing on it.
  const double steps = std::floor((*stop - *start) / *step + 1e-9);
  if (steps >= static_cast<double>(kMaxSweepPoints)) {
    return bad("more than " + std::to_string(kMaxSweepPoints) + " values");
  }
  for (int64_t i = 0; i <= static_cast<int64_t>(steps); ++i) {
    MOESIM_RETURN_IF_ERROR(add(*start + static_cast<double>(i) * *step, decimals));
  }
  return values;
}

StatusOr<SweepAxis> ParseSetFlag(std::string_view text) {
  // The flag as errors echo it: escaped and cut, as any value a user typed (proto/status.h).
  const Location flag{"--set " + Printable(text, 2 * kMaxEchoedChars)};
  const size_t eq = text.find('=');
  if (eq == std::string_view::npos) {
    return InputError(flag, "", "", "no '=' between the field and its values",
                      "FIELD=V1,V2,... e.g. plan.ep=8,16");
  }
  // Deeper than any scenario's fields go: refused before a path of that size is echoed.
  constexpr size_t kMaxPathChars = 256;
  if (eq > kMaxPathChars) {
    return InputError(Location{"--set"}, "", "",
                      "a field path of " + std::to_string(eq) + " characters",
                      "a path of the scenario's field names, at most " +
                          std::to_string(kMaxPathChars) + " characters");
  }
  SweepAxis axis;
  MOESIM_ASSIGN_OR_RETURN(axis.path,
                          ParseFieldPath(text.substr(0, eq), pb::Scenario::descriptor(), flag));
  const bool number = IsNumber(axis.path.leaf());
  const FieldDescriptor::CppType type = axis.path.leaf()->cpp_type();
  const bool integer =
      number && type != FieldDescriptor::CPPTYPE_DOUBLE && type != FieldDescriptor::CPPTYPE_FLOAT;
  for (const std::string& item : Split(text.substr(eq + 1), ',')) {
    if (item.empty()) {
      return InputError(flag, axis.path.text, "", "an empty value in the list",
                        "V1,V2,... with no empty item");
    }
    std::vector<std::string> expanded{item};
    if (number) {
      MOESIM_ASSIGN_OR_RETURN(expanded, ExpandRange(item, integer, flag));
    }
    for (std::string& v : expanded) {
      if (axis.values.size() >= kMaxSweepPoints) {
        return InputError(flag, axis.path.text, "",
                          "more than " + std::to_string(kMaxSweepPoints) + " values",
                          "fewer values");
      }
      MOESIM_RETURN_IF_ERROR(CheckFieldValue(axis.path, v, axis.Where(v)));
      // Names the loader looks up: known before any point runs.
      if (axis.path.bare() == "cluster.node_preset") {
        const auto preset = topology::FindNodePreset(v, axis.Where(v));
        if (!preset.ok()) return preset.error();
      }
      if (axis.path.bare() == "model") {
        MOESIM_ASSIGN_OR_RETURN(const std::string catalog, models::CatalogDir());
        const auto model = models::LoadCatalogModel(v, axis.Where(v), catalog);
        if (!model.ok()) return model.error();
      }
      axis.values.push_back(std::move(v));
    }
  }
  return axis;
}

StatusOr<size_t> PointCount(const std::vector<SweepAxis>& axes) {
  size_t n = 1;
  for (size_t k = 0; k < axes.size(); ++k) {
    const SweepAxis& a = axes[k];
    for (size_t j = 0; j < k; ++j) {
      if (axes[j].path.text == a.path.text) {
        return InputError(Location{"--set " + a.path.text}, "", "",
                          "the field is swept by an earlier --set too",
                          "each field in one --set, its values as a list");
      }
    }
    n *= a.values.size();
    if (n > kMaxSweepPoints) {
      return InputError(
          {}, "--set", "",
          "the cross product has more than " + std::to_string(kMaxSweepPoints) + " points",
          "fewer values per field");
    }
  }
  return n;
}

std::vector<size_t> PointValues(const std::vector<SweepAxis>& axes, size_t point) {
  std::vector<size_t> index(axes.size(), 0);
  for (size_t k = axes.size(); k-- > 0;) {
    index[k] = point % axes[k].values.size();
    point /= axes[k].values.size();
  }
  return index;
}

StatusOr<PointSpec> MakePoint(const SweepBase& base, const std::vector<SweepAxis>& axes,
                              size_t point) {
  PointSpec p{base.spec, base.file};
  const std::vector<size_t> index = PointValues(axes, point);
  for (size_t k = 0; k < axes.size(); ++k) {
    const SweepAxis& axis = axes[k];
    const std::string& value = axis.values[index[k]];
    const Location where = axis.Where(value);
    pb::Cluster& cluster = *p.spec.mutable_cluster();
    if (axis.path.Below("cluster.node") && !cluster.node_preset().empty()) {
      // The preset written out as the node block it stands for, located where it is named.
      const Location named = p.file.Locate("cluster.node_preset");
      MOESIM_ASSIGN_OR_RETURN(const topology::NodePreset preset,
                              topology::FindNodePreset(cluster.node_preset(), named));
      *cluster.mutable_node() = topology::NodeSpecOf(preset);
      cluster.clear_node_preset();
      p.file = p.file.WithValueFrom("cluster.node", named);
    }
    if (axis.path.Below("model_spec") && p.spec.has_model()) {
      const Location named = p.file.Locate("model");
      MOESIM_ASSIGN_OR_RETURN(const std::string catalog, models::CatalogDir());
      MOESIM_ASSIGN_OR_RETURN(*p.spec.mutable_model_spec(),
                              models::LoadCatalogModel(p.spec.model(), named, catalog));
      p.file = p.file.WithValueFrom("model_spec", named);
    }
    MOESIM_RETURN_IF_ERROR(SetField(p.spec, axis.path, value, where));
    if (axis.path.bare() == "cluster.node_preset") {
      cluster.clear_node();
      cluster.clear_nccl_topology();
    }
    p.file = p.file.WithValueFrom(axis.path.text, where);
  }
  return p;
}

}  // namespace moesim::sim
