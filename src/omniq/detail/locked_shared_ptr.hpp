// A shared_ptr that several threads load, store and exchange: the std::atomic<std::shared_ptr>
// interface, under a mutex.
//
// Not std::atomic<std::shared_ptr> itself: libstdc++ 12 (Debian bookworm's) implements it
// with a lock bit in the control-block pointer, and load() reads the pointer under that lock
// but releases it with memory_order_relaxed, so the read is not ordered before the next
// store or exchange. ThreadSanitizer reports that as a data race (it is one by the C++ memory
// model, harmless on x86). A mutex costs about the same uncontended and is visible to TSan.
#pragma once

#include <memory>
#include <mutex>
#include <utility>

namespace omniq::detail {

template <class T>
class LockedSharedPtr {
 public:
  LockedSharedPtr() = default;
  LockedSharedPtr(const LockedSharedPtr&) = delete;
  LockedSharedPtr& operator=(const LockedSharedPtr&) = delete;

  std::shared_ptr<T> load() const {
    std::lock_guard lock(mu_);
    return ptr_;
  }
  void store(std::shared_ptr<T> p) { exchange(std::move(p)); }  // the old value dies unlocked
  std::shared_ptr<T> exchange(std::shared_ptr<T> p) {
    std::lock_guard lock(mu_);
    ptr_.swap(p);
    return p;
  }

 private:
  mutable std::mutex mu_;
  std::shared_ptr<T> ptr_;
};

}  // namespace omniq::detail
