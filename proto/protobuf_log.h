// Protobuf's own log lines ("[libprotobuf ERROR google/protobuf/wire_format_lite.cc:618] String
// field 'moesim.pb.Result.scenario' contains invalid UTF-8 data ...") are never printed: a reader
// that lets protobuf parse user input holds a ProtobufLogCapture and folds what protobuf said into
// its own one-line error; whatever protobuf logs outside a capture is dropped.
//
//   ProtobufLogCapture capture;
//   if (!result.ParseFromString(bytes)) {
//     return Error(path + ": not a Result" + capture.Reason());   // ": String field ... UTF-8 ..."
//   }
//
// Protobuf has one process-wide log handler; it is installed once (the first capture, or
// SilenceProtobufLogs from main) and sends each line to the capture of the thread that logged it,
// so captures on different threads do not mix. A capture is not itself shared between threads.
#pragma once

#include <string>

namespace moesim {

// From now on protobuf's log lines go to the capture of the logging thread, or nowhere.
void SilenceProtobufLogs();

class ProtobufLogCapture {
 public:
  ProtobufLogCapture();
  ~ProtobufLogCapture();
  ProtobufLogCapture(const ProtobufLogCapture&) = delete;
  ProtobufLogCapture& operator=(const ProtobufLogCapture&) = delete;

  // ": <the first line protobuf logged>" (escaped, cut as Printable does at 200 characters), or ""
  // when it logged nothing: for appending to an error.
  std::string Reason() const;

 private:
  std::string first_;
  ProtobufLogCapture* outer_ = nullptr;  // the capture this one hides, restored when it ends
};

}  // namespace moesim
