// The table of requests waiting for their reply: what the reply inbox, the timeout sweep,
// a cancellation, a permission violation and close() each take out of it. No I/O and no lock
// of its own (the connection guards it with its mutex), so it is unit-tested on its own
// (tests/unit/test_connection_parts.cpp): a reply taken once is not taken again (a late reply
// after a timeout or a cancellation finds nothing), expiry takes exactly the overdue ones,
// close takes everything.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

namespace omniq::detail {

template <class Handler>
class RequestTable {
 public:
  using Clock = std::chrono::steady_clock;
  struct Pending {
    Handler handler;
    Clock::time_point deadline{};
    std::string subject{};  // what it was published on (matched against permission violations)
  };

  void add(std::uint64_t id, Pending pending) { entries_.emplace(id, std::move(pending)); }

  // The request `id`, removed; nullopt when it is no longer waiting (answered, expired,
  // cancelled or failed): a late reply is dropped.
  std::optional<Pending> take(std::uint64_t id) {
    auto it = entries_.find(id);
    if (it == entries_.end()) return std::nullopt;
    Pending p = std::move(it->second);
    entries_.erase(it);
    return p;
  }

  // Every request whose deadline is at or before `now`, removed.
  std::vector<Pending> take_expired(Clock::time_point now) {
    return take_if([now](const Pending& p) { return p.deadline <= now; });
  }

  // Every request published on a subject `matches` accepts, removed.
  std::vector<Pending> take_if(const std::function<bool(const Pending&)>& matches) {
    std::vector<Pending> out;
    for (auto it = entries_.begin(); it != entries_.end();) {
      if (matches(it->second)) {
        out.push_back(std::move(it->second));
        it = entries_.erase(it);
      } else {
        ++it;
      }
    }
    return out;
  }

  // Everything, removed (the connection closes).
  std::vector<Pending> take_all() {
    std::vector<Pending> out;
    out.reserve(entries_.size());
    for (auto& [id, p] : entries_) out.push_back(std::move(p));
    entries_.clear();
    return out;
  }

  std::size_t size() const noexcept { return entries_.size(); }
  bool empty() const noexcept { return entries_.empty(); }

 private:
  std::unordered_map<std::uint64_t, Pending> entries_;
};

}  // namespace omniq::detail
