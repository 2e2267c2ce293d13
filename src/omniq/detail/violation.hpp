// The server refuses a publish or subscription the user may not make with an asynchronous
// -ERR, which nats.c hands only to the error handler: 'Permissions Violation for Publish to
// "<subject>"', '... for Subscription to "<subject>"[ using queue "<q>"]' or '... for Publish
// with Reply of "<reply>"'. nats.c keeps 256 bytes of it, so a long subject can be cut short.
// Parsed here, with no I/O (unit-tested in tests/unit/test_connection_parts.cpp).
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace omniq::detail {

struct Violation {
  enum Kind { publish, reply, subscription } kind = publish;
  std::string subject{};
  bool truncated = false;  // the closing quote was cut off: `subject` is a prefix
  bool matches(std::string_view s) const { return truncated ? s.starts_with(subject) : s == subject; }
};

// nullopt when `text` is not a permission violation.
std::optional<Violation> parse_violation(std::string_view text);

// "<who> may not publish to "<subject>" (the NATS server refused it: <server text>)".
std::string describe_violation(const Violation& v, const std::string& who, std::string_view server_text);

}  // namespace omniq::detail
