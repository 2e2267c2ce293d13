#include "nats_util.hpp"

namespace omniq::detail {

std::string nats_error_text(natsStatus s) {
  const char* last = nats_GetLastError(nullptr);
  if (last != nullptr && *last != '\0') return last;
  return natsStatus_GetText(s);
}

errc errc_from_status(natsStatus s, std::string_view text) {
  auto contains = [&](std::string_view needle) { return text.find(needle) != std::string_view::npos; };
  if (contains("Authorization Violation") || contains("Authentication")) return errc::auth_failed;
  if (contains("Permissions Violation")) return errc::permission_denied;
  switch (s) {
    case NATS_CONNECTION_AUTH_FAILED: return errc::auth_failed;
    case NATS_NOT_PERMITTED: return errc::permission_denied;
    case NATS_SSL_ERROR:
    case NATS_SECURE_CONNECTION_WANTED:
    case NATS_SECURE_CONNECTION_REQUIRED: return errc::tls_error;
    case NATS_NO_SERVER:
    case NATS_IO_ERROR:
    case NATS_STALE_CONNECTION: return errc::connection_failed;
    case NATS_CONNECTION_CLOSED: return errc::closed;
    case NATS_CONNECTION_DISCONNECTED:
    case NATS_NOT_YET_CONNECTED: return errc::not_connected;
    case NATS_TIMEOUT: return errc::timeout;
    case NATS_MAX_PAYLOAD: return errc::payload_too_large;
    case NATS_INVALID_SUBJECT: return errc::invalid_name;
    case NATS_INVALID_ARG: return errc::invalid_argument;
    default: return errc::nats_error;
  }
}

void throw_nats(natsStatus s, std::string_view what) {
  const std::string text = nats_error_text(s);
  throw_error(errc_from_status(s, text), std::string(what) + ": " + text);
}

void throw_js(natsStatus s, jsErrCode code, std::string_view what) {
  std::string text = nats_error_text(s);
  if (code != 0) text += " (JetStream error " + std::to_string(static_cast<int>(code)) + ")";
  errc kind = errc_from_status(s, text);
  if (code == JSNotEnabledErr || code == JSNotEnabledForAccountErr) kind = errc::jetstream_unavailable;
  throw_error(kind, std::string(what) + ": " + text);
}

}  // namespace omniq::detail
