#include "topology/nccl_xml.h"

#include <tinyxml2.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <map>
#include <optional>
#include <sstream>

#include "proto/checked.h"
#include "proto/cluster.pb.h"
#include "proto/input_file.h"
#include "topology/defaults.h"

namespace moesim::topology {
namespace {

using tinyxml2::XMLElement;

// Per-link NVLink bandwidth per direction: NVLink 2-4 (sm 70-90) 25 GB/s, NVLink 5 (sm 100) 50
// GB/s.
Rate NvLinkPerLink(int sm) { return Rate::GigaPerSecond(sm >= 100 ? 50 : 25); }

// NIC line rate when the XML has no <net speed>: what the GPU generation shipped with.
Rate DefaultNic(const GpuSpec& gpu) {
  return gpu.name == "a100-sxm" ? Rate::GigaPerSecond(25) : Rate::GigaPerSecond(50);
}

// The widest PCIe link the PCIe base specification defines: 32 lanes (a file that claims more is
// not what it says; found by fuzzing). Speeds are checked against the ranges cluster files
// declare (proto/cluster.proto, proto/checked.h).
constexpr int kMaxPcieLanes = 32;

std::optional<std::string> Attr(const XMLElement* e, const char* name) {
  const char* v = e->Attribute(name);
  return v ? std::optional<std::string>(v) : std::nullopt;
}

// "0x030200" -> 0x030200.
std::optional<unsigned long> PciClass(const XMLElement* e) {
  auto c = Attr(e, "class");
  if (!c) return std::nullopt;
  char* end = nullptr;
  const unsigned long v = std::strtoul(c->c_str(), &end, 16);
  if (end == c->c_str()) return std::nullopt;
  return v;
}

struct XDevice {
  DeviceKind kind;
  std::string id;
  int parent = -1;  // index into devices; -1 for CPUs
  Rate uplink;      // PCIe bandwidth to the parent
  int line = 0;
  // GPUs
  std::optional<int> sm, rank, dev;
  double link_gts = 0;  // PCIe generation, for guessing the GPU model
  struct NvLink {
    std::string target;
    int count = 0;
    unsigned long tclass = 0;
    int line = 0;
  };
  std::vector<NvLink> nvlinks;
  // NICs
  std::optional<Rate> speed;
};

class Importer {
 public:
  Importer(std::string name, std::string gpu_override)
      : name_(std::move(name)), gpu_override_(std::move(gpu_override)) {}

  StatusOr<NodeTemplate> Run(const std::string& xml);

 private:
  Location Where(const XMLElement* e) const {
    return Location{name_, e ? e->GetLineNum() : 0, e ? 1 : 0};
  }
  Error At(const XMLElement* e, const std::string& what, const std::string& valid = {}) const {
    return InputError(Where(e), "", "", what, valid);
  }
  Status Walk(const XMLElement* e, int parent);
  StatusOr<Rate> PcieBandwidth(const XMLElement* e);
  // A <net speed="..."> in Mb/s, checked against the range a cluster file's nics.gbit_per_s takes.
  StatusOr<Rate> NetSpeed(const XMLElement* net, const std::string& text) const;
  Status AddPci(const XMLElement* e, int parent);

  std::string name_;
  std::string gpu_override_;
  std::vector<XDevice> devices_;
  std::map<std::string, int> by_id_;
  std::vector<std::string> warnings_;
  bool warned_width_ = false;
};

StatusOr<Rate> Importer::PcieBandwidth(const XMLElement* e) {
  const auto speed = Attr(e, "link_speed");
  const auto width = Attr(e, "link_width");
  double gts = speed ? std::atof(speed->c_str()) : 0;
  int lanes = width ? std::atoi(width->c_str()) : 0;
  if (gts <= 0) gts = 32;  // unknown speed: assume Gen5, as the width default below
  if (lanes <= 0) {
    if (!warned_width_) {
      warnings_.push_back("line " + std::to_string(e->GetLineNum()) +
                          ": PCIe link_width 0 or missing (virtualised?): taken as x16");
      warned_width_ = true;
    }
    lanes = 16;
  }
  if (lanes > kMaxPcieLanes) {
    return At(e, "<pci link_width=\"" + *width + "\">: not a PCIe width", "lanes 1 to 32");
  }
  const double encoding = gts >= 8 ? 128.0 / 130.0 : 0.8;
  // The same range as a cluster file's pcie.bandwidth_gbps: link_speed="1e20" is refused, not
  // turned into a made-up bisection.
  return CheckedGigaPerSecond(gts * lanes * encoding / 8,
                              DeclaredRange<pb::PcieSpec>("bandwidth_gbps"), Where(e),
                              "<pci link_speed=\"" + speed.value_or("") + "\" link_width=\"" +
                                  width.value_or("") + "\"> (GB/s)");
}

StatusOr<Rate> Importer::NetSpeed(const XMLElement* net, const std::string& text) const {
  pb::Range mbps = DeclaredRange<pb::NicSpec>("gbit_per_s");  // Gb/s -> Mb/s as NCCL writes it
  mbps.set_min(mbps.min() * 1000);
  mbps.set_max(mbps.max() * 1000);
  mbps.set_unit("Mb/s");
  char* end = nullptr;
  const double value = std::strtod(text.c_str(), &end);
  if (end == text.c_str()) {
    return InputError(Where(net), "<net speed>", text, "not a number", DescribeRange(mbps));
  }
  MOESIM_RETURN_IF_ERROR(CheckFigure(value, mbps, Where(net), "<net speed>"));
  return Rate::GigaPerSecond(value / 8000);  // Mb/s -> GB/s
}

Status Importer::AddPci(const XMLElement* e, int parent) {
  const auto busid = Attr(e, "busid");
  if (!busid) return At(e, "<pci> without a busid attribute", "busid=\"0000:00:00.0\"");
  if (by_id_.count(*busid)) {
    return At(e,
              "duplicate PCI busid \"" + *busid + "\" (first at line " +
                  std::to_string(devices_[by_id_[*busid]].line) + ")",
              "each busid once");
  }
  const auto cls = PciClass(e);
  if (!cls) return At(e, "<pci busid=\"" + *busid + "\"> without a hex class attribute");
  MOESIM_ASSIGN_OR_RETURN(Rate bw, PcieBandwidth(e));
  const unsigned long base = *cls >> 8;  // class and subclass
  XDevice d;
  d.id = *busid;
  d.parent = parent;
  d.uplink = bw;
  d.line = e->GetLineNum();
  if (auto s = Attr(e, "link_speed")) d.link_gts = std::atof(s->c_str());
  if (base == 0x0604) {
    d.kind = DeviceKind::kPcieSwitch;
  } else if (base == 0x0300 || base == 0x0302) {
    d.kind = DeviceKind::kGpu;
    if (const XMLElement* g = e->FirstChildElement("gpu")) {
      if (auto v = Attr(g, "sm")) d.sm = std::atoi(v->c_str());
      if (auto v = Attr(g, "rank")) d.rank = std::atoi(v->c_str());
      if (auto v = Attr(g, "dev")) d.dev = std::atoi(v->c_str());
      for (const XMLElement* n = g->FirstChildElement("nvlink"); n;
           n = n->NextSiblingElement("nvlink")) {
        XDevice::NvLink link;
        link.target = Attr(n, "target").value_or("");
        // More than 1024 NVLinks between two GPUs is no hardware (H100: 18 per GPU in all).
        const long count = std::strtol(Attr(n, "count").value_or("0").c_str(), nullptr, 10);
        link.count = count > 1024 ? -1 : static_cast<int>(count);
        link.tclass = std::strtoul(Attr(n, "tclass").value_or("0").c_str(), nullptr, 16);
        link.line = n->GetLineNum();
        if (link.target.empty() || link.count <= 0) {
          return At(n, "<nvlink> needs a target bus id and a count from 1 to 1024");
        }
        d.nvlinks.push_back(link);
      }
    }
  } else if (base == 0x0200 || base == 0x0207) {
    d.kind = DeviceKind::kNic;
    const XMLElement* nic = e->FirstChildElement("nic");
    const XMLElement* net = nic ? nic->FirstChildElement("net") : nullptr;
    if (net == nullptr) {
      by_id_[d.id] = static_cast<int>(devices_.size());
      devices_.push_back(d);
      return Status::Ok();
    }
    // One NIC device per <net> port.
    for (; net; net = net->NextSiblingElement("net")) {
      XDevice port = d;
      port.id = Attr(net, "name").value_or(d.id + "/" + std::to_string(devices_.size()));
      port.line = net->GetLineNum();
      if (auto s = Attr(net, "speed")) {
        MOESIM_ASSIGN_OR_RETURN(port.speed, NetSpeed(net, *s));
      }
      if (by_id_.count(port.id)) return At(net, "duplicate NIC name \"" + port.id + "\"");
      by_id_[port.id] = static_cast<int>(devices_.size());
      devices_.push_back(port);
    }
    by_id_.emplace(*busid, static_cast<int>(devices_.size()) - 1);
    return Status::Ok();
  } else {
    // Storage and other endpoints carry no GPU traffic: skip them (and anything below).
    return Status::Ok();
  }
  const int self = static_cast<int>(devices_.size());
  by_id_[d.id] = self;
  devices_.push_back(d);
  for (const XMLElement* c = e->FirstChildElement("pci"); c; c = c->NextSiblingElement("pci")) {
    MOESIM_RETURN_IF_ERROR(AddPci(c, self));
  }
  return Status::Ok();
}

Status Importer::Walk(const XMLElement* cpu, int) {
  XDevice d;
  d.kind = DeviceKind::kCpu;
  d.id = "cpu" + Attr(cpu, "numaid").value_or(std::to_string(devices_.size()));
  d.line = cpu->GetLineNum();
  if (by_id_.count(d.id))
    return At(cpu, "duplicate <cpu numaid> \"" + d.id + "\"", "each numaid once");
  const int self = static_cast<int>(devices_.size());
  by_id_[d.id] = self;
  devices_.push_back(d);
  for (const XMLElement* c = cpu->FirstChildElement(); c; c = c->NextSiblingElement()) {
    const std::string tag = c->Name();
    if (tag == "pci") {
      MOESIM_RETURN_IF_ERROR(AddPci(c, self));
    } else if (tag == "nic") {
      // A NIC without PCI information, attached to the CPU.
      for (const XMLElement* net = c->FirstChildElement("net"); net;
           net = net->NextSiblingElement("net")) {
        XDevice nic;
        nic.kind = DeviceKind::kNic;
        nic.id = Attr(net, "name").value_or("nic" + std::to_string(devices_.size()));
        nic.parent = self;
        nic.uplink = defaults::kPcieGen5x16;
        nic.line = net->GetLineNum();
        if (auto s = Attr(net, "speed")) {
          MOESIM_ASSIGN_OR_RETURN(nic.speed, NetSpeed(net, *s));
        }
        by_id_[nic.id] = static_cast<int>(devices_.size());
        devices_.push_back(nic);
      }
    }
  }
  return Status::Ok();
}

StatusOr<NodeTemplate> Importer::Run(const std::string& xml) {
  tinyxml2::XMLDocument doc;
  if (doc.Parse(xml.data(), xml.size()) != tinyxml2::XML_SUCCESS) {
    return InputError(Location{name_, doc.ErrorLineNum(), 1}, "", "",
                      std::string("malformed XML: ") + doc.ErrorName(), "an NCCL topology XML");
  }
  const XMLElement* system = doc.RootElement();
  if (system == nullptr || std::string(system->Name()) != "system") {
    return At(system, std::string("root element is <") + (system ? system->Name() : "") + ">",
              "<system> as NCCL writes it");
  }
  for (const XMLElement* c = system->FirstChildElement("cpu"); c;
       c = c->NextSiblingElement("cpu")) {
    MOESIM_RETURN_IF_ERROR(Walk(c, -1));
  }

  // GPUs in rank order (or dev order, or file order).
  std::vector<int> gpus;
  for (int i = 0; i < static_cast<int>(devices_.size()); ++i) {
    if (devices_[i].kind == DeviceKind::kGpu) gpus.push_back(i);
  }
  if (gpus.empty()) return At(system, "no GPU found (no <pci> of class 0x0302 or 0x0300)");
  std::stable_sort(gpus.begin(), gpus.end(), [&](int a, int b) {
    const XDevice &x = devices_[a], &y = devices_[b];
    if (x.rank && y.rank) return *x.rank < *y.rank;
    if (x.dev && y.dev) return *x.dev < *y.dev;
    return false;
  });

  // GPU model.
  std::string model = gpu_override_;
  const XDevice& first = devices_[gpus.front()];
  if (model.empty()) {
    if (first.sm) {
      if (*first.sm >= 100)
        model = "b200";
      else if (*first.sm >= 90)
        model = "h100-sxm";
      else if (*first.sm >= 80)
        model = "a100-sxm";
      else
        return At(nullptr, "GPU sm " + std::to_string(*first.sm) + " is older than moesim models",
                  "set cluster.gpu");
      if (*first.sm == 90) {
        warnings_.push_back(
            "sm 90 is H100, H200 or H800: taken as h100-sxm (set cluster.gpu to choose)");
      }
    } else if (first.link_gts >= 32) {
      model = "h100-sxm";
      warnings_.push_back(
          "no <gpu sm=...>: GPU model guessed from PCIe Gen5 as h100-sxm (set cluster.gpu)");
    } else if (first.link_gts >= 16) {
      model = "a100-sxm";
      warnings_.push_back(
          "no <gpu sm=...>: GPU model guessed from PCIe Gen4 as a100-sxm (set cluster.gpu)");
    } else {
      return At(nullptr, "the XML does not say which GPU this is (no sm, no PCIe speed)",
                "set cluster.gpu");
    }
  }
  MOESIM_ASSIGN_OR_RETURN(GpuSpec gpu, FindGpu(model));

  NodeTemplate node;
  node.name = name_;
  node.gpu = gpu;
  node.nic_latency = defaults::kNicHop;
  std::vector<uint32_t> index(devices_.size(), 0);
  auto add = [&](DeviceKind kind, std::string id) {
    node.devices.push_back({kind, std::move(id)});
    return static_cast<uint32_t>(node.devices.size() - 1);
  };
  for (int g : gpus) index[g] = add(DeviceKind::kGpu, "gpu" + std::to_string(node.devices.size()));
  for (int i = 0; i < static_cast<int>(devices_.size()); ++i) {
    if (devices_[i].kind != DeviceKind::kGpu) index[i] = add(devices_[i].kind, devices_[i].id);
  }

  // PCIe tree. A bridge reporting less than what hangs below it is a virtual one (as in cloud VMs):
  // its link is raised to its fastest child's.
  std::vector<Rate> up(devices_.size());
  for (size_t i = 0; i < devices_.size(); ++i) up[i] = devices_[i].uplink;
  bool raised = false;
  for (int i = static_cast<int>(devices_.size()) - 1; i >= 0; --i) {
    const int p = devices_[i].parent;
    if (p >= 0 && devices_[p].kind == DeviceKind::kPcieSwitch && up[p] < up[i]) {
      up[p] = up[i];
      raised = true;
    }
  }
  if (raised) {
    warnings_.push_back(
        "PCIe bridges slower than the devices below them (virtualised): raised to "
        "their fastest child's bandwidth");
  }
  for (size_t i = 0; i < devices_.size(); ++i) {
    const int p = devices_[i].parent;
    if (p < 0) continue;
    node.links.push_back({index[i], index[p], Link{LinkClass::kPcie, up[i], defaults::kPcieHop}});
  }
  // NUMA domains of one host all reach each other (NCCL's SYS paths): a full mesh.
  const std::vector<uint32_t> cpus = node.IndicesOf(DeviceKind::kCpu);
  for (size_t i = 0; i < cpus.size(); ++i) {
    for (size_t j = i + 1; j < cpus.size(); ++j) {
      node.links.push_back(
          {cpus[i], cpus[j],
           Link{LinkClass::kInterSocket, defaults::kInterSocket, defaults::kInterSocketHop}});
    }
  }

  // NVLink.
  std::map<std::string, uint32_t> nvswitch;
  std::map<std::pair<int, int>, bool> gpu_pairs;
  int links = 0;
  for (int g : gpus) {
    const XDevice& d = devices_[g];
    for (const XDevice::NvLink& l : d.nvlinks) {
      const Rate bw = Rate::PerSecond(NvLinkPerLink(d.sm.value_or(90)).per_second() * l.count);
      const Link nvlink{LinkClass::kNvLink, bw, defaults::kNvLinkHop,
                        static_cast<uint32_t>(l.count)};
      ++links;
      if ((l.tclass >> 8) == 0x0680) {
        auto [it, inserted] = nvswitch.emplace(l.target, 0);
        if (inserted) it->second = add(DeviceKind::kNvSwitch, "nvswitch-" + l.target);
        node.links.push_back({index[g], it->second, nvlink});
      } else if ((l.tclass >> 8) == 0x0302 || (l.tclass >> 8) == 0x0300) {
        auto peer = by_id_.find(l.target);
        if (peer == by_id_.end() || devices_[peer->second].kind != DeviceKind::kGpu) {
          warnings_.push_back("line " + std::to_string(l.line) + ": NVLink to unknown GPU " +
                              l.target + " ignored");
          continue;
        }
        const auto key = std::minmax(g, peer->second);
        if (gpu_pairs.emplace(key, true).second)
          node.links.push_back({index[g], index[peer->second], nvlink});
      } else {
        warnings_.push_back("line " + std::to_string(l.line) + ": NVLink to a " +
                            "non-GPU, non-NVSwitch device ignored");
      }
    }
  }
  if (links == 0 && gpu.nvlink.per_second() > 0) {
    const uint32_t sw = add(DeviceKind::kNvSwitch, "nvswitch");
    for (int g : gpus) {
      node.links.push_back(
          {index[g], sw,
           Link{LinkClass::kNvLink, gpu.nvlink, defaults::kNvLinkHop, gpu.nvlink_links}});
    }
    std::ostringstream w;
    w << "no <nvlink> elements: NVLink taken from the GPU model " << gpu.name
      << ": all GPUs on one "
      << "NVSwitch at " << gpu.nvlink.giga() << " GB/s per direction";
    warnings_.push_back(w.str());
  }

  // NIC line rate: all NICs of a node alike; the first <net speed> found, else the GPU's
  // generation.
  std::optional<Rate> speed;
  for (const XDevice& d : devices_) {
    if (d.kind == DeviceKind::kNic && d.speed) {
      if (speed && *speed != *d.speed) {
        warnings_.push_back("NICs of different speeds: all taken at the first one's");
      }
      if (!speed) speed = d.speed;
    }
  }
  if (!speed && node.CountOf(DeviceKind::kNic) > 0) {
    speed = DefaultNic(gpu);
    std::ostringstream w;
    w << "no <net speed>: NICs taken as " << speed->giga() * 8 << " Gb/s, what " << gpu.name
      << " systems ship with";
    warnings_.push_back(w.str());
  }
  node.nic_bandwidth = speed.value_or(Rate());
  node.warnings = warnings_;
  MOESIM_RETURN_IF_ERROR(CheckNodeConnected(node, Location{name_}));
  return node;
}

}  // namespace

StatusOr<NodeTemplate> NodeFromNcclXmlString(const std::string& xml, const std::string& name,
                                             const std::string& gpu_override) {
  return Importer(name, gpu_override).Run(xml);
}

StatusOr<NodeTemplate> NodeFromNcclXml(const std::string& path, const std::string& gpu_override) {
  MOESIM_ASSIGN_OR_RETURN(const std::string text, ReadInputFile(path));
  return NodeFromNcclXmlString(text, path, gpu_override);
}

}  // namespace moesim::topology
