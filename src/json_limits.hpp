// Limits on JSON that omniq reads from streams and buckets, where any client with publish
// rights can put bytes. Internal to the compiled library.
#pragma once

#include <cstddef>
#include <string_view>

namespace omniq::detail {

// nlohmann::json parses nested values iteratively but copies and dumps them recursively: a few
// kilobytes of "[[[[..." put on a task subject by another client would overflow the stack of
// the worker that decodes them. Nothing omniq stores is nested this deep; decoders refuse more.
inline constexpr std::size_t max_json_depth = 512;

// Whether `text` nests arrays and objects deeper than `limit` (strings are skipped).
inline bool json_nested_deeper_than(std::string_view text, std::size_t limit = max_json_depth) noexcept {
  std::size_t depth = 0;
  bool in_string = false;
  bool escaped = false;
  for (const char c : text) {
    if (in_string) {
      if (escaped) escaped = false;
      else if (c == '\\') escaped = true;
      else if (c == '"') in_string = false;
    } else if (c == '"') {
      in_string = true;
    } else if (c == '[' || c == '{') {
      if (++depth > limit) return true;
    } else if ((c == ']' || c == '}') && depth > 0) {
      --depth;
    }
  }
  return false;
}

}  // namespace omniq::detail
