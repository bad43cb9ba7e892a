// "Did you mean": the known name nearest a mistyped one, for the errors that list what is valid
// (node presets, catalog models, text-format fields and enum values, subcommands).
//
//   DidYouMean("dgx-h10", {"dgx-a100", "dgx-h100"})   // " (did you mean \"dgx-h100\"?)"
//   DidYouMean("mixtral", {"dgx-a100", "dgx-h100"})   // "": nothing near
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace moesim {

// Edits from a to b: insert, delete or replace a character, or swap two neighbours (the optimal
// string alignment distance), case ignored.
size_t EditDistance(std::string_view a, std::string_view b);

// The candidate nearest `word` when it is near: at most 1 edit for a word of up to 4 characters,
// 2 up to 8, 3 beyond; the first of equally near ones. None when `word` is a candidate itself or
// nothing is near.
std::optional<std::string> ClosestName(std::string_view word,
                                       const std::vector<std::string>& candidates);

// " (did you mean \"NAME\"?)" for ClosestName's NAME, else "".
std::string DidYouMean(std::string_view word, const std::vector<std::string>& candidates);

}  // namespace moesim
