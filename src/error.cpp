#include "omniq/error.hpp"

#include <boost/asio/multiple_exceptions.hpp>

namespace omniq {

bool is_transient(const std::exception_ptr& failure) noexcept {
  if (!failure) return false;
  try {
    std::rethrow_exception(failure);
  } catch (const Error& e) {
    return is_transient(e.kind());
  } catch (const boost::asio::multiple_exceptions& e) {
    return is_transient(e.first_exception());
  } catch (...) {
    return false;
  }
}

}  // namespace omniq
