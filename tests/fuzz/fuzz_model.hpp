// Shared by the model decoder targets. Bad input must be refused with
// omniq::Error(decode_error); any other exception, sanitizer report or broken property is a
// crash for libFuzzer to keep. What decodes must survive encode -> decode unchanged, since the
// library rewrites stored models (task state, schedules after each run) that way.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <optional>
#include <string>
#include <string_view>

#include "omniq/error.hpp"
#include "omniq/models.hpp"

namespace omniq_fuzz {

[[noreturn]] inline void broken(const char* property, std::string_view first, std::string_view second = {}) {
  std::fprintf(stderr, "omniq fuzz: %s\n  first:  %.*s\n  second: %.*s\n", property,
               static_cast<int>(first.size()), first.data(), static_cast<int>(second.size()), second.data());
  std::abort();
}

inline std::string_view as_text(const std::uint8_t* data, std::size_t size) {
  return {reinterpret_cast<const char*>(data), size};
}

// encode(m) decodes again, and that model encodes to the same text. encode itself must not
// throw for a model that decode produced (an escaping exception is a crash).
template <class Model>
void check_round_trip(const Model& model, Model (*decode)(std::string_view), const char* when) {
  const std::string first = omniq::encode(model);
  std::optional<Model> again;
  try {
    again = decode(first);
  } catch (const omniq::Error& e) {
    broken(when, first, e.what());
  }
  const std::string second = omniq::encode(*again);
  if (first != second) broken(when, first, second);
}

// The decoder's contract on arbitrary bytes: a model, or omniq::Error(decode_error).
template <class Model>
std::optional<Model> decode_checked(std::string_view text, Model (*decode)(std::string_view)) {
  std::optional<Model> model;
  try {
    model = decode(text);
  } catch (const omniq::Error& e) {
    if (e.kind() != omniq::errc::decode_error) broken("decode threw an error other than decode_error", e.what());
    return std::nullopt;
  }
  check_round_trip(*model, decode, "encode(decode(x)) does not decode to the same encoding");
  return model;
}

// validate() either passes or throws omniq::Error; returns whether it passed.
template <class Model>
bool validates(const Model& model) {
  try {
    model.validate();
    return true;
  } catch (const omniq::Error&) {
    return false;
  }
}

}  // namespace omniq_fuzz
