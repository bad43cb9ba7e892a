#include "sim/moe/replay.h"

namespace moesim::sim {

pb::Result SimulateReplay(const NetworkModel& net, const models::Workload& workload,
                          std::vector<pb::Result>* every_step) {
  models::Workload step = workload;
  pb::Result slowest;
  std::vector<pb::StepTime> times;
  for (const models::Workload::Step& s : workload.replay) {
    step.layers = s.layers;
    pb::Result r = SimulateMoeLayers(net, step);
    pb::StepTime t;
    t.set_step(s.step);
    t.set_total_ns(r.total_ns());
    times.push_back(t);
    if (every_step) {
      every_step->push_back(r);
      every_step->back().set_replayed_step(s.step);
    }
    // The first of equally slow steps.
    if (times.size() == 1 || r.total_ns() > slowest.total_ns()) {
      slowest = std::move(r);
      slowest.set_replayed_step(s.step);
    }
  }
  for (const pb::StepTime& t : times) *slowest.add_steps() = t;
  return slowest;
}

}  // namespace moesim::sim
