#include "proto/protobuf_log.h"

#include <google/protobuf/stubs/logging.h>

#include <mutex>

#include "proto/status.h"

namespace moesim {
namespace {

// The innermost capture alive on this thread.
thread_local ProtobufLogCapture* active = nullptr;
thread_local std::string* active_first = nullptr;

void Route(google::protobuf::LogLevel, const char*, int, const std::string& message) {
  if (active_first != nullptr && active_first->empty()) *active_first = message;
}

}  // namespace

void SilenceProtobufLogs() {
  static std::once_flag installed;
  std::call_once(installed, [] { google::protobuf::SetLogHandler(&Route); });
}

ProtobufLogCapture::ProtobufLogCapture() : outer_(active) {
  SilenceProtobufLogs();
  active = this;
  active_first = &first_;
}

ProtobufLogCapture::~ProtobufLogCapture() {
  active = outer_;
  active_first = outer_ != nullptr ? &outer_->first_ : nullptr;
}

std::string ProtobufLogCapture::Reason() const {
  if (first_.empty()) return {};
  std::string line = first_;
  while (!line.empty() && (line.back() == ' ' || line.back() == '\n')) line.pop_back();
  return ": " + Printable(line, 200);
}

}  // namespace moesim
