// Errors raised by omniq: one error code enum with its own boost::system category (usable as a
// std::error_code too), the Diagnostics that carry the detail an error code cannot (the
// server's text, the key, the limit), and the exception the throwing forms raise with both.
// Expected outcomes (an empty dequeue, a missing key, a lost compare-and-swap) are values,
// never these errors.
#pragma once

#include <exception>
#include <memory>
#include <string>
#include <system_error>
#include <type_traits>

#include <boost/system/error_code.hpp>
#include <boost/system/system_error.hpp>

namespace omniq {

enum class errc {
  invalid_argument = 1,  // a value the caller passed is not acceptable
  invalid_name,          // a queue name / id / key a NATS subject token or KV key cannot hold
  invalid_cron,          // a cron expression or time zone that cannot be parsed
  invalid_config,        // an unknown key or a wrong type in a configuration
  decode_error,          // stored bytes that are not a valid model
  connection_failed,     // no server reachable, or the connection was refused
  auth_failed,           // credentials refused by the server
  tls_error,             // TLS handshake or certificate verification failed
  not_connected,         // an operation before connect() or after close()
  closed,                // the backend was closed while the operation was pending
  timeout,               // the server did not answer in time
  payload_too_large,     // the message is larger than the server accepts
  stream_full,           // the stream refuses new messages (limits reached, discard new)
  permission_denied,     // the server refused a publish or subscribe
  jetstream_unavailable, // the server has no JetStream enabled
  wrong_thread,          // a blocking call made on the backend's own io thread
  nats_error,            // any other error nats.c reported
  server_error,          // the local test/demo server could not be started
  already_exists,        // create of something that exists (a schedule id)
  unexpected,            // a failure omniq did not foresee (a bug, out of memory): the message says which
};

using error_code = boost::system::error_code;

const boost::system::error_category& omniq_category() noexcept;

inline error_code make_error_code(errc e) noexcept { return {static_cast<int>(e), omniq_category()}; }

/// What an error code cannot hold: the message naming the thing at fault (the task id, the key,
/// the limit, the server's own text). The error-code forms fill it (Boost.MySQL style); the
/// throwing forms put it in the exception's what().
struct Diagnostics {
  std::string message{};
  void clear() noexcept { message.clear(); }
};

/// The exception every omniq operation throws on a real failure. what() is exactly the
/// message (naming the thing at fault); code() carries the errc for programs that branch on it.
class Error : public boost::system::system_error {
 public:
  Error(errc code, const std::string& what)
      : boost::system::system_error(make_error_code(code)), message_(std::make_shared<const std::string>(what)) {}
  const char* what() const noexcept override { return message_->c_str(); }
  errc kind() const noexcept { return static_cast<errc>(code().value()); }

 private:
  /// Shared, so copying cannot throw, as an exception's copy must not. Not std::runtime_error:
  /// its reference-counted string lives in libstdc++, whose atomics ThreadSanitizer cannot see,
  /// so an error made on one thread and read on another looked like a race.
  std::shared_ptr<const std::string> message_;
};

[[noreturn]] inline void throw_error(errc code, const std::string& what) { throw Error(code, what); }

/// Whether trying the same operation again may succeed: a timeout, a lost connection, no
/// responders or a leader election pass; a refusal on principle (bad input, permissions, a
/// closed backend, a payload over the limit) does not. The one classifier every retry uses.
constexpr bool is_transient(errc kind) noexcept {
  switch (kind) {
    case errc::invalid_argument:
    case errc::invalid_name:
    case errc::invalid_cron:
    case errc::invalid_config:
    case errc::decode_error:
    case errc::payload_too_large:
    case errc::stream_full:  // limits reached: waiting for a drain is the caller's choice
    case errc::permission_denied:
    case errc::auth_failed:
    case errc::tls_error:
    case errc::closed:
    case errc::wrong_thread:
    case errc::already_exists:
    case errc::unexpected:
      return false;
    default:
      return true;
  }
}

/// The same for the error code an operation completed with: an omniq code by its errc; any
/// other (operation_aborted from a cancellation, a system error) is not transient. The one
/// public classifier: a caller's retry loop asks it, as omniq's own retries do.
bool is_transient(const error_code& ec) noexcept;

/// Throws what an error-code form reported: an omniq::Error with the diagnostics' message for
/// an omniq code, a boost::system::system_error for any other. Nothing when `ec` is clear.
void throw_if_failed(const error_code& ec, const Diagnostics& diagnostics);

namespace detail {
/// The same for any failure a coroutine may end with: an omniq::Error by its kind; Asio's
/// multiple_exceptions (several operations run in parallel failed) by its first failure;
/// anything else (a cancellation, a bug, bad_alloc) is not transient.
bool is_transient(const std::exception_ptr& failure) noexcept;

/// The error code and diagnostics of a failure a coroutine ended with (what the error-code
/// forms report): an omniq::Error by its kind and message, a boost::system::system_error (a
/// cancellation: operation_aborted) by its code, multiple_exceptions by its first failure,
/// anything else as errc::unexpected with its what().
error_code to_error_code(const std::exception_ptr& failure, Diagnostics* diagnostics) noexcept;

class omniq_category_impl final : public boost::system::error_category {
 public:
  const char* name() const noexcept override { return "omniq"; }
  std::string message(int ev) const override {
    switch (static_cast<errc>(ev)) {
      case errc::invalid_argument: return "invalid argument";
      case errc::invalid_name: return "invalid name";
      case errc::invalid_cron: return "invalid cron expression";
      case errc::invalid_config: return "invalid configuration";
      case errc::decode_error: return "cannot decode stored value";
      case errc::connection_failed: return "connection failed";
      case errc::auth_failed: return "authentication failed";
      case errc::tls_error: return "TLS error";
      case errc::not_connected: return "not connected";
      case errc::closed: return "backend closed";
      case errc::timeout: return "timed out";
      case errc::payload_too_large: return "payload too large";
      case errc::stream_full: return "stream full";
      case errc::permission_denied: return "permission denied";
      case errc::jetstream_unavailable: return "JetStream not available";
      case errc::wrong_thread: return "blocking call on the backend's io thread";
      case errc::nats_error: return "NATS error";
      case errc::server_error: return "local server error";
      case errc::already_exists: return "already exists";
      case errc::unexpected: return "unexpected failure";
    }
    return "unknown omniq error";
  }
};
}  // namespace detail

inline const boost::system::error_category& omniq_category() noexcept {
  static const detail::omniq_category_impl category;
  return category;
}

}  // namespace omniq

/// @cond INTERNAL
template <>
struct boost::system::is_error_code_enum<omniq::errc> : std::true_type {};
template <>
struct std::is_error_code_enum<omniq::errc> : std::true_type {};
/// @endcond
