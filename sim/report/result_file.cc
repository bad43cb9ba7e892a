#include "sim/report/result_file.h"

#include <google/protobuf/util/json_util.h>

#include <string_view>

#include "proto/input_file.h"
#include "proto/protobuf_log.h"

namespace moesim::sim {

StatusOr<ResultFile> ReadResultFile(const std::string& path) {
  MOESIM_ASSIGN_OR_RETURN(const std::string bytes, ReadInputFile(path));
  std::string why;
  if (path.ends_with(".json")) {
    MOESIM_RETURN_IF_ERROR(CheckJsonDepth(bytes, Location{path, 1, 1}));
    pb::Result result;
    const auto as_result = google::protobuf::util::JsonStringToMessage(bytes, &result);
    if (as_result.ok()) return ResultFile(std::move(result));
    pb::PlanTable table;
    if (google::protobuf::util::JsonStringToMessage(bytes, &table).ok()) {
      return ResultFile(std::move(table));
    }
    pb::StepResult step;
    if (google::protobuf::util::JsonStringToMessage(bytes, &step).ok()) {
      return ResultFile(std::move(step));
    }
    const std::string said(as_result.message());
    why = ": " + Printable(std::string_view(said).substr(0, said.find('\n')), 200);
  } else {
    ProtobufLogCapture protobuf_says;
    pb::Result result;
    if (result.ParseFromString(bytes)) return ResultFile(std::move(result));
    why = protobuf_says.Reason();
  }
  return InputError(Location{path}, "", "", "not a Result (proto/result.proto)" + why,
                    "what `moesim simulate --json` prints (a Result or a step's StepResult), in a "
                    "file ending .json, a binary Result (`moebench run --out`), or `moesim plan "
                    "--json` in a .json file");
}

}  // namespace moesim::sim
