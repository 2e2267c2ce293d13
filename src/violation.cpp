#include "omniq/detail/violation.hpp"

namespace omniq::detail {

std::optional<Violation> parse_violation(std::string_view text) {
  constexpr std::string_view marker = "Permissions Violation for ";
  const auto at = text.find(marker);
  if (at == std::string_view::npos) return std::nullopt;
  const std::string_view rest = text.substr(at + marker.size());
  Violation v;
  if (rest.starts_with("Publish with Reply")) v.kind = Violation::reply;
  else if (rest.starts_with("Subscription")) v.kind = Violation::subscription;
  const auto open = rest.find('"');
  if (open == std::string_view::npos) return std::nullopt;
  const auto close = rest.find('"', open + 1);
  v.truncated = close == std::string_view::npos;
  v.subject = std::string(rest.substr(open + 1, v.truncated ? std::string_view::npos : close - open - 1));
  return v;
}

std::string describe_violation(const Violation& v, const std::string& who, std::string_view server_text) {
  const char* action = v.kind == Violation::subscription ? "subscribe to"
                       : v.kind == Violation::reply      ? "publish with the reply subject"
                                                         : "publish to";
  return who + " may not " + action + " \"" + v.subject + (v.truncated ? "..." : "") +
         "\" (the NATS server refused it: " + std::string(server_text) + ")";
}

}  // namespace omniq::detail
