// Routing trace benchmark (not a test): a 10-million-token top-8 trace over 64 experts (8 ranks x
// 1,250,000 tokens, one step, one layer), timed stage by stage, in tokens per second:
//   generate     UniformRouting and ZipfRouting (models/synthetic.h), into memory; the ranks are
//                drawn on every core (models/parallel.h), the rest on one
//   write        TraceWriter, one record per rank
//   read         TraceReader, streaming every record (parse + range check)
//   stats        CountTrace + ComputeLoadStats (read again, count per expert, summarize)
//   npy import   ImportTrace of the same ids as a [tokens, 8] <i4 .npy, then CountTrace of the
//   result
// The bars: > 10 M tokens/s generating, > 5 M tokens/s import + stats. Run a Release build:
//
//   cmake --build build --target moesim_bench_trace && build/tests/moesim_bench_trace [tokens]
//
// Files go to the system temp folder and are removed at the end (the .npy is 4 bytes x 8 per
// token).
#include <fmt/format.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "bench_util.h"
#include "models/synthetic.h"
#include "models/trace.h"
#include "models/trace_import.h"

namespace {

using moesim::bench::Clock;
using moesim::bench::PeakRssMiB;
using moesim::bench::Seconds;
namespace models = moesim::models;
namespace pb = moesim::pb;

void Row(const char* stage, uint64_t tokens, double seconds) {
  fmt::print("  {:<22} {:>10.3f} s {:>12.2f} M tokens/s\n", stage, seconds, tokens / seconds / 1e6);
}

[[noreturn]] void Die(const moesim::Error& e) {
  fmt::print(stderr, "moesim_bench_trace: {}\n", e.message());
  std::exit(1);
}

void WriteNpy(const std::string& path, const models::LayerRouting& routing, uint64_t tokens) {
  std::string dict = "{'descr': '<i4', 'fortran_order': False, 'shape': (" +
                     std::to_string(tokens) + ", " + std::to_string(routing.top_k) + "), }";
  while ((10 + dict.size() + 1) % 64 != 0) dict += ' ';
  dict += '\n';
  std::ofstream out(path, std::ios::binary);
  out.write("\x93NUMPY\x01\x00", 8);
  const char len[2] = {static_cast<char>(dict.size() & 0xff), static_cast<char>(dict.size() >> 8)};
  out.write(len, 2);
  out << dict;
  for (const auto& rank : routing.experts) {  // little-endian host: uint32 ids are <i4 as they are
    out.write(reinterpret_cast<const char*>(rank.data()),
              static_cast<std::streamsize>(rank.size() * sizeof(uint32_t)));
  }
}

}  // namespace

int main(int argc, char** argv) {
  const uint64_t total = argc > 1 ? std::strtoull(argv[1], nullptr, 10) : 10'000'000;
  const uint32_t ranks = 8;
  const models::RoutingShape shape{
      .ranks = ranks, .layers = 1, .tokens_per_rank = total / ranks, .num_experts = 64, .top_k = 8};
  const uint64_t tokens = shape.tokens_per_rank * ranks;
  const auto dir = std::filesystem::temp_directory_path();
  const std::string trace =
      (dir / ("moesim_bench_" + std::to_string(::getpid()) + ".trace")).string();
  const std::string npy = (dir / ("moesim_bench_" + std::to_string(::getpid()) + ".npy")).string();
  const std::string imported = trace + ".imported";

  fmt::print("moesim_bench_trace: {} tokens, top-8 of 64 experts, {} ranks\n", tokens, ranks);
  auto start = Clock::now();
  models::LayerRouting zipf = models::ZipfRouting(shape, {.alpha = 1.2}, 1, 0);
  Row("generate zipf", tokens, Seconds(start));
  start = Clock::now();
  models::LayerRouting routing = models::UniformRouting(shape, 1, 0);
  Row("generate uniform", tokens, Seconds(start));
  zipf = {};

  start = Clock::now();
  {
    pb::TraceHeader header;
    header.set_num_experts(64);
    header.set_top_k(8);
    auto w = models::TraceWriter::Create(trace, header);
    if (!w.ok()) Die(w.error());
    pb::TraceRecord record;
    for (uint32_t r = 0; r < ranks; ++r) {
      record.Clear();
      record.set_rank(r);
      record.set_tokens(shape.tokens_per_rank);
      record.mutable_experts()->Add(routing.experts[r].begin(), routing.experts[r].end());
      if (const auto s = w->Write(record); !s.ok()) Die(s.error());
    }
    if (const auto s = w->Close(); !s.ok()) Die(s.error());
  }
  const double write_s = Seconds(start);
  Row("write", tokens, write_s);
  fmt::print("  (trace file {:.1f} MB, {:.2f} bytes per token)\n",
             std::filesystem::file_size(trace) / 1e6,
             static_cast<double>(std::filesystem::file_size(trace)) / tokens);

  start = Clock::now();
  {
    auto r = models::TraceReader::Open(trace);
    if (!r.ok()) Die(r.error());
    pb::TraceRecord record;
    uint64_t seen = 0;
    for (;;) {
      auto got = r->Next(&record);
      if (!got.ok()) Die(got.error());
      if (!*got) break;
      seen += record.tokens();
    }
    if (seen != tokens) fmt::print(stderr, "read {} tokens?\n", seen);
  }
  Row("read", tokens, Seconds(start));

  start = Clock::now();
  {
    auto counted = models::CountTrace(trace);
    if (!counted.ok()) Die(counted.error());
    const models::LoadStats s = models::ComputeLoadStats(counted->counts[0], counted->tokens[0], 8);
    fmt::print("  (uniform: max/mean {:.4f}, entropy {:.4f} bits)\n", s.max_over_mean,
               s.entropy_bits);
  }
  Row("read + stats", tokens, Seconds(start));

  WriteNpy(npy, routing, tokens);
  routing = {};
  start = Clock::now();
  {
    models::TraceImportOptions options;
    options.num_experts = 64;
    auto summary = models::ImportTrace("npy", npy, imported, options);
    if (!summary.ok()) Die(summary.error());
    auto counted = models::CountTrace(imported);
    if (!counted.ok()) Die(counted.error());
    (void)models::ComputeLoadStats(counted->counts[0], counted->tokens[0], 8);
  }
  Row("npy import + stats", tokens, Seconds(start));
  fmt::print("  peak RSS {:.0f} MiB\n", PeakRssMiB());
  std::filesystem::remove(trace);
  std::filesystem::remove(npy);
  std::filesystem::remove(imported);
  return 0;
}
