#include "proto/serialize.h"

#include <google/protobuf/descriptor.h>
#include <google/protobuf/io/coded_stream.h>
#include <google/protobuf/io/zero_copy_stream_impl_lite.h>
#include <google/protobuf/util/json_util.h>
#include <google/protobuf/util/type_resolver.h>
#include <google/protobuf/util/type_resolver_util.h>

#include <memory>

namespace moesim {
namespace {

constexpr char kTypeUrlPrefix[] = "type.googleapis.com";

}  // namespace

std::string DeterministicBytes(const google::protobuf::Message& message) {
  std::string bytes;
  {
    google::protobuf::io::StringOutputStream stream(&bytes);
    google::protobuf::io::CodedOutputStream coded(&stream);
    coded.SetSerializationDeterministic(true);
    message.SerializeToCodedStream(&coded);
  }  // the coded stream flushes into `bytes` as it goes out of scope
  return bytes;
}

StatusOr<std::string> DeterministicJson(const google::protobuf::Message& message) {
  const google::protobuf::DescriptorPool* pool = message.GetDescriptor()->file()->pool();
  const std::unique_ptr<google::protobuf::util::TypeResolver> resolver(
      google::protobuf::util::NewTypeResolverForDescriptorPool(kTypeUrlPrefix, pool));
  google::protobuf::util::JsonPrintOptions options;
  options.add_whitespace = true;
  options.always_print_primitive_fields = true;
  std::string json;
  const auto status = google::protobuf::util::BinaryToJsonString(
      resolver.get(), std::string(kTypeUrlPrefix) + "/" + message.GetDescriptor()->full_name(),
      DeterministicBytes(message), &json, options);
  if (!status.ok())
    return Error("cannot print " + message.GetTypeName() + " as JSON: " + status.ToString());
  return json;
}

}  // namespace moesim
