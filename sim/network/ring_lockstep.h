// NCCL's ring channels in lockstep: what each transfer of a ring step takes on the wire when the
// step's transfers that cross a link share it, as NCCL's channels do. The analytical model
// (collective_time.h) takes it as a ring transfer's time in its chains; the flow model
// (flow_model.h) caps a ring transfer's rate by it.
#pragma once

#include <cstdint>
#include <vector>

#include "sim/network/collectives.h"
#include "topology/cluster.h"

namespace moesim::sim {

// A transfer's bytes on one link of its route: its bytes x the route's share of that link.
struct LinkUse {
  uint32_t edge;      // edge id (or any link number the caller keeps)
  uint32_t transfer;  // index into Schedule::transfers
  double bytes;
};

// The transfers of one ring step (Transfer::step) that cross a link together share it, each at an
// equal rate, so each is through once the link has carried its bytes and, of every other, as much
// (processor sharing). Per use: the bytes its link carries until it is through, the sum over the
// uses of its link and step of min(other, own).
std::vector<double> LockstepShares(const std::vector<LinkUse>& uses, const Schedule& schedule);

// Why: NCCL's tuner prices a ring at the channels' count x one channel's bandwidth (tuning.cc:
// busBw = nChannels x bw), a channel being one thread block that moves no more than its share of
// the links however idle the others are. Unbounded, the flow model's rings of 16-64 H800s at
// 1-64 MiB came in up to 24 % under the lockstep time, the analytical ones 11-31 %; on 1,440 GB200
// in 20 NVL72 racks at 8 GiB (72 channels sharing each GPU's NVLink, 2,878 steps of 83 KB a
// channel) the steps' latency hid behind the other channels' bytes (validation row C26).
//
// For a ring schedule (Schedule::algo kRing): per transfer, its LockstepShares time over the
// slowest link of its route at the links' whole bandwidth, in seconds; empty for any other
// schedule. The analytical model takes it (over the protocol's efficiency) as the transfer's time
// on the wire; the flow model caps the transfer's rate at its bytes over it.
std::vector<double> RingLockstepSeconds(const topology::Cluster& cluster, const Schedule& schedule);

}  // namespace moesim::sim
