// A storage part's "streams or buckets already created or checked" flag, once per backend.
// What sets it (detail::ensure_once, src/omniq/detail/ensure.hpp) is private to the library.
#pragma once

#include <atomic>

namespace omniq::detail {

class Provisioned {
 public:
  bool done() const noexcept { return done_.load(std::memory_order_acquire); }
  void mark_done() noexcept { done_.store(true, std::memory_order_release); }

 private:
  std::atomic<bool> done_{false};
};

}  // namespace omniq::detail
