// Figures the node presets and importers fall back on when a datasheet gives none. The bandwidths
// follow from the PCIe specification; the latencies are order-of-magnitude assumptions (vendors do
// not publish per-hop figures) that calibration (HardwareProfile) is meant to replace with
// measurements.
#pragma once

#include "proto/units.h"

namespace moesim::topology::defaults {

// PCIe x16 per direction: GT/s x 16 lanes x 128/130 encoding / 8 bits.
// Gen4: 16 x 16 x 128/130 / 8 = 31.5 GB/s; Gen5: 32 x 16 x 128/130 / 8 = 63.0 GB/s.
inline constexpr Rate kPcieGen4x16 = Rate::GigaPerSecond(31.5);
inline constexpr Rate kPcieGen5x16 = Rate::GigaPerSecond(63.0);
// CPU to CPU (UPI / xGMI), per direction. Assumption: of the order of 2-3 UPI links.
inline constexpr Rate kInterSocket = Rate::GigaPerSecond(40);

// GPU <-> NVSwitch hop. GPU-to-GPU NVLink latencies measured with CUDA's p2pBandwidthLatencyTest
// are of order 1 us; half of that per hop. Assumption.
inline constexpr Duration kNvLinkHop = Duration::Nanoseconds(500);
// One PCIe hop (device <-> switch, switch <-> root complex). Assumption.
inline constexpr Duration kPcieHop = Duration::Nanoseconds(250);
// CPU <-> CPU. Assumption.
inline constexpr Duration kInterSocketHop = Duration::Nanoseconds(300);
// NIC <-> its first switch, NIC processing included. Assumption.
inline constexpr Duration kNicHop = Duration::Nanoseconds(500);
// Switch <-> switch, switch traversal included. Assumption.
inline constexpr Duration kSwitchHop = Duration::Nanoseconds(300);

}  // namespace moesim::topology::defaults
