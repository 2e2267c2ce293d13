#include "omniq/error.hpp"

#include <boost/asio/multiple_exceptions.hpp>

namespace omniq {

bool is_transient(const error_code& ec) noexcept {
  return ec && ec.category() == omniq_category() && is_transient(static_cast<errc>(ec.value()));
}

void throw_if_failed(const error_code& ec, const Diagnostics& diagnostics) {
  if (!ec) return;
  const std::string& message = diagnostics.message.empty() ? ec.message() : diagnostics.message;
  if (ec.category() == omniq_category()) throw Error(static_cast<errc>(ec.value()), message);
  throw boost::system::system_error(ec, diagnostics.message);
}

namespace detail {

bool is_transient(const std::exception_ptr& failure) noexcept {
  if (!failure) return false;
  try {
    std::rethrow_exception(failure);
  } catch (const Error& e) {
    return omniq::is_transient(e.kind());
  } catch (const boost::asio::multiple_exceptions& e) {
    return is_transient(e.first_exception());
  } catch (...) {
    return false;
  }
}

error_code to_error_code(const std::exception_ptr& failure, Diagnostics* diagnostics) noexcept {
  if (!failure) return {};
  auto note = [diagnostics](const char* what) {
    if (!diagnostics) return;
    try {
      diagnostics->message = what;
    } catch (...) {
    }
  };
  try {
    std::rethrow_exception(failure);
  } catch (const Error& e) {
    note(e.what());
    return make_error_code(e.kind());
  } catch (const boost::system::system_error& e) {
    note(e.what());
    return e.code();
  } catch (const boost::asio::multiple_exceptions& e) {
    return to_error_code(e.first_exception(), diagnostics);
  } catch (const std::exception& e) {
    note(e.what());
    return make_error_code(errc::unexpected);
  } catch (...) {
    note("an exception of unknown type");
    return make_error_code(errc::unexpected);
  }
}

}  // namespace detail
}  // namespace omniq
