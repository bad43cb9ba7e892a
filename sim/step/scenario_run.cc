#include "sim/step/scenario_run.h"

#include <cmath>
#include <filesystem>
#include <memory>

#include "models/send_matrices.h"
#include "proto/checked.h"
#include "sim/compute/profile_predict.h"
#include "sim/moe/critical_path.h"
#include "sim/moe/moe_layer.h"
#include "sim/moe/replay.h"
#include "sim/step/step_report.h"
#include "sim/step/step_trace.h"

namespace moesim::sim {

StatusOr<std::optional<pb::HardwareProfile>> ScenarioHardware(const LoadedScenario& scenario,
                                                              const std::string& override_path) {
  std::string path = override_path;
  if (path.empty() && !scenario.spec.hardware_profile().empty()) {
    path = (std::filesystem::path(scenario.file.path()).parent_path() /
            scenario.spec.hardware_profile())
               .string();
    if (!std::filesystem::exists(path)) {
      return InputError(scenario.file.Locate("hardware_profile"), "hardware_profile",
                        "\"" + scenario.spec.hardware_profile() + "\"",
                        "no such file (" + path + ")",
                        "a HardwareProfile .pbtxt path relative to the scenario file");
    }
  }
  if (path.empty()) return std::optional<pb::HardwareProfile>();
  MOESIM_ASSIGN_OR_RETURN(pb::HardwareProfile p, LoadHardwareProfile(path));
  return std::optional<pb::HardwareProfile>(std::move(p));
}

StatusOr<ScenarioStep> SimulateScenarioStep(const LoadedScenario& s, Fidelity fidelity,
                                            const std::optional<pb::HardwareProfile>& hardware,
                                            FlowOptions flow) {
  const models::Workload& w = s.workload;
  MOESIM_ASSIGN_OR_RETURN(StepConfig config, StepConfigFromSpec(s.spec.step(), s.file, fidelity));
  config.hardware = hardware;
  config.flow = flow;
  // The expert GEMM API against the GPU and dtype (DeepGEMM: FP8 on Hopper), located.
  if (auto kernels = KernelModel::Defaults(s.cluster.gpu_spec(), w.model.dtype(),
                                           config.expert_gemm, s.file.Locate("step.expert_gemm"));
      !kernels.ok()) {
    return kernels.error();
  }
  // A trace gives each MoE layer and micro-batch its own routing (sim/step/step_trace.h);
  // synthetic routing one layer for all.
  std::optional<StepTraceWork> trace;
  models::LayerWork layer;
  if (s.spec.routing().has_trace()) {
    MOESIM_ASSIGN_OR_RETURN(
        trace, StepTraceLayers(w.model, w.plan, s.spec.routing(), s.spec.plan().placement(),
                               s.cluster.gpus_per_node(), config, &s.file));
    layer = trace->by_step.front().front();
  } else {
    MOESIM_ASSIGN_OR_RETURN(
        layer, StepMoeLayer(w.model, w.plan, s.spec.routing(), s.spec.plan().placement(),
                            s.cluster.gpus_per_node(), config, &s.file));
  }
  MOESIM_ASSIGN_OR_RETURN(StepReport report, SimulateStep(s.cluster, w.model, w.plan, layer,
                                                                config, trace ? &*trace : nullptr));
  // Memory at its peak: with a trace, the layer whose busiest rank computes the most copies.
  const models::MemoryBreakdown memory = StepMemory(w.model, w.plan, config, report.micro_batches,
                                                    trace ? BusiestTraceLayer(*trace) : layer);
  pb::StepResult result =
      ToStepResult(report, w.plan, memory,
                   static_cast<uint64_t>(std::llround(s.cluster.gpu_spec().hbm_gb * 1e9)));
  result.set_scenario(w.name);
  result.set_model(w.model.name());
  result.set_fidelity(std::string(ToString(fidelity)));
  if (fidelity == Fidelity::kFlow) result.set_flow_tolerance(flow.tolerance);
  result.set_global_batch(config.global_batch);
  result.set_seq_len(config.seq_len);
  result.set_micro_batch(config.micro_batch);
  result.set_capacity_factor(config.capacity_factor);
  MOESIM_RETURN_IF_ERROR(CheckReportedFigures(result, "the step of scenario " + w.name));
  return ScenarioStep{std::move(config), std::move(result), std::move(report), std::move(layer)};
}

StatusOr<pb::Result> SimulateScenarioLayers(const LoadedScenario& s, Fidelity fidelity,
                                            const std::optional<pb::HardwareProfile>& hardware,
                                            std::vector<pb::Result>* replay_steps,
                                            FlowOptions flow) {
  MOESIM_RETURN_IF_ERROR(CheckMoeLayerSupport(s.workload, s.file));
  const models::Workload& w = s.workload;
  pb::Result result;
  if (hardware) {
    // The profile's per-rank model (sim/compute/profile_model.h), as `moesim validate` predicts.
    if (!w.replay.empty()) {
      return Error(
          "--hardware times the routing's MoE layers; a replay scenario is timed by the "
          "network model only");
    }
    MOESIM_ASSIGN_OR_RETURN(result, PredictWithProfile(s.cluster, w, *hardware));
    for (const models::LayerWork& layer : w.layers) {
      models::AddSendMatrices(result, layer.layer, models::SentTokens(layer, w.alltoall_algo),
                              models::WireTokenBytes(w.model, w.dispatch_dtype).value,
                              models::WireTokenBytes(w.model, w.combine_dtype).value);
    }
  } else {
    const std::unique_ptr<NetworkModel> net = MakeNetworkModel(s.cluster, fidelity, flow);
    result = w.replay.empty() ? SimulateMoeLayers(*net, w) : SimulateReplay(*net, w, replay_steps);
  }
  if (w.replay.empty()) AddCriticalPath(w.layers, result);
  return result;
}

}  // namespace moesim::sim
