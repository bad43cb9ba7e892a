// Reading what a user names: regular files only, whole files up to a size limit, lines up to a
// length limit, JSON nested up to a depth limit. Every reader of user input goes through these, so
// a directory, /dev/zero, a FIFO, a 50 GB file or a line of 20,000 '[' gets one clear error
// instead of a hang, an empty read or an abort.
//
//   MOESIM_ASSIGN_OR_RETURN(std::string text, ReadInputFile("counts.csv"));
//
//   MOESIM_RETURN_IF_ERROR(CheckRegularFile(path));      // before streaming a file
//   std::ifstream in(path);
//   std::string line;
//   for (int n = 1;; ++n) {
//     MOESIM_ASSIGN_OR_RETURN(bool got, ReadLine(in, &line, Location{path, n}));
//     if (!got) break;
//     MOESIM_RETURN_IF_ERROR(CheckJsonDepth(line, Location{path, n}));
//   }
//
// The limits are guards against input that is not what it claims to be, far above what real
// input needs (the figures beside each); they are not tuned and say nothing about the model.
// Thread-safe (no state).
#pragma once

#include <cstdint>
#include <istream>
#include <string>
#include <string_view>

#include "proto/status.h"

namespace moesim {

// The largest file read whole (scenarios, clusters, models, profiles, CSV tables, NCCL XML,
// measured Results, all-to-all(v) matrices): 1 GiB. A measured Result of 2,048 GPUs (the most
// whose send matrices a Result carries) holds 2 x 2,048^2 matrix cells per layer, about 80 MB of
// JSON at ~10 bytes a cell; protobuf itself refuses messages over 2 GiB.
inline constexpr uint64_t kMaxInputFileBytes = uint64_t{1} << 30;

// The longest line of a line-based input (router JSONL, CSV of top-k ids): 64 MiB. A Megatron
// router line holds one (step, layer, rank): 32,768 tokens x top-8 with ids and scores is about
// 7 MB of JSON (26 bytes per selection).
inline constexpr uint64_t kMaxInputLineBytes = uint64_t{64} << 20;

// The deepest JSON nesting accepted, counting every [ and {: 64. A router line nests 3 deep (the
// line, top_indices, one token's ids), a Result 5 (phases, a phase, its busiest links, a link).
inline constexpr int kMaxJsonDepth = 64;

// OK when `path` is a regular file (symbolic links followed). Otherwise "<path>: cannot open file:
// No such file or directory" (or its errno), or "<path>: is a directory; valid: a regular file",
// and the same for a character device (/dev/zero), block device, FIFO (named pipe), socket.
Status CheckRegularFile(const std::string& path);

// The whole of `path` after CheckRegularFile; a file larger than `max_bytes` is refused before it
// is read ("<path>: is 1073741825 bytes; valid: at most 1073741824 bytes (1 GiB), the limit on a
// file read whole").
StatusOr<std::string> ReadInputFile(const std::string& path,
                                    uint64_t max_bytes = kMaxInputFileBytes);

// Reads the next line of `in` into `line` (without its '\n'; a last line without '\n' counts).
// true: a line was read; false: the input ended. A line longer than `max_bytes` is an error at
// `where` (the file and this line's number) as soon as max_bytes + 1 bytes were read, so a line
// without end is never held whole.
StatusOr<bool> ReadLine(std::istream& in, std::string* line, const Location& where,
                        uint64_t max_bytes = kMaxInputLineBytes);

// Error when `json` nests [ and { deeper than `max_depth`, located at the bracket that goes one
// too deep: `where` is the position of json's first byte (line and column; a column of 0 is taken
// as 1; a line of 0 gives an error naming the file only); the error's line and column count from
// there. Strings are skipped (a '[' inside quotes is not
// nesting). Anything else is left to the JSON parser that follows: this only keeps a parser whose
// time grows faster than the depth from ever seeing a deep input. Linear in json.size().
Status CheckJsonDepth(std::string_view json, const Location& where, int max_depth = kMaxJsonDepth);

}  // namespace moesim
