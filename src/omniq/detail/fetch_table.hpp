// The table of pulls (JetStream "next message" requests): one active pull per consumer, the
// others of that consumer waiting behind it in order, so that each consumer's deliveries
// belong to exactly one pull. What a delivery, a status message, the timeout sweep, a
// cancellation, a permission violation and close() each take out of it. No I/O and no lock of
// its own (the connection guards it with its mutex), so it is unit-tested on its own
// (tests/unit/test_connection_parts.cpp), like the request table.
//
// `Pull` is what an active pull carries (its handler and what it received so far); `Queued` is
// a pull not yet sent. The table itself knows only consumer keys, pull ids, deadlines and the
// tags a caller cancels by.
#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <optional>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

namespace omniq::detail {

template <class Pull, class Queued>
class FetchTable {
 public:
  using Clock = std::chrono::steady_clock;

  // What a cancellation, a permission violation or close takes out: the active pulls and the
  // waiting ones, each with its consumer key.
  struct Taken {
    std::vector<std::pair<std::string, Pull>> active;
    std::vector<std::pair<std::string, Queued>> waiting;
    std::size_t size() const noexcept { return active.size() + waiting.size(); }
  };

  // True when `key` has an active pull: a new one must wait().
  bool busy(const std::string& key) const {
    auto it = slots_.find(key);
    return it != slots_.end() && it->second.active.has_value();
  }

  // Queues `queued` behind the active pull of `key` (see busy()).
  void wait(const std::string& key, const void* tag, Queued queued) {
    slots_[key].waiting.push_back(Waiting{tag, std::move(queued)});
  }

  // Makes `pull` the active pull of `key`, answered on pull id `id` until `deadline`. The
  // caller checked busy() first.
  void activate(const std::string& key, std::uint64_t id, Clock::time_point deadline, const void* tag, Pull pull) {
    slots_[key].active.emplace(Active{id, deadline, tag, std::move(pull)});
    ids_[id] = key;
  }

  // The active pull of `key`, left in place (a delivery adds to it); nullptr when there is
  // none: the delivery is late, for a pull that already ended.
  Pull* active(const std::string& key) {
    auto it = slots_.find(key);
    return it == slots_.end() || !it->second.active ? nullptr : &it->second.active->pull;
  }

  // True when `id` is the id of an active pull (its status messages end it).
  bool is_pull(std::uint64_t id) const { return ids_.count(id) != 0; }

  // The active pull of `key`, removed.
  std::optional<Pull> take_active(const std::string& key) {
    auto it = slots_.find(key);
    if (it == slots_.end() || !it->second.active) return std::nullopt;
    return take_active(it);
  }

  // The active pull answered on `id`, removed, with its consumer key; nullopt when it ended
  // already (a late status).
  std::optional<std::pair<std::string, Pull>> take_by_id(std::uint64_t id) {
    auto idit = ids_.find(id);
    if (idit == ids_.end()) return std::nullopt;
    std::string key = idit->second;
    auto it = slots_.find(key);
    if (it == slots_.end() || !it->second.active) {
      ids_.erase(idit);
      return std::nullopt;
    }
    return std::pair<std::string, Pull>(std::move(key), take_active(it));
  }

  // Every active pull whose deadline is at or before `now`, removed, with its consumer key.
  // The pulls waiting behind them stay: the caller starts them (next()).
  std::vector<std::pair<std::string, Pull>> take_expired(Clock::time_point now) {
    std::vector<std::pair<std::string, Pull>> out;
    for (auto it = slots_.begin(); it != slots_.end();) {
      auto next = std::next(it);
      if (it->second.active && it->second.active->deadline <= now) {
        std::string key = it->first;
        out.emplace_back(std::move(key), take_active(it));  // may erase `it`
      }
      it = next;
    }
    return out;
  }

  // The first pull waiting for `key`, removed, when `key` has no active pull (the caller then
  // starts it); nullopt when `key` is busy or nothing waits.
  std::optional<Queued> next(const std::string& key) {
    auto it = slots_.find(key);
    if (it == slots_.end() || it->second.active || it->second.waiting.empty()) return std::nullopt;
    Queued q = std::move(it->second.waiting.front().queued);
    it->second.waiting.pop_front();
    if (it->second.waiting.empty()) slots_.erase(it);
    return q;
  }

  // The pull of `key` tagged `tag`, removed: the active one, or else the first waiting one.
  Taken cancel(const std::string& key, const void* tag) {
    Taken out;
    auto it = slots_.find(key);
    if (it == slots_.end()) return out;
    if (it->second.active && it->second.active->tag == tag) {
      out.active.emplace_back(key, take_active(it));
      return out;
    }
    auto& queue = it->second.waiting;
    for (auto w = queue.begin(); w != queue.end(); ++w) {
      if (w->tag != tag) continue;
      out.waiting.emplace_back(key, std::move(w->queued));
      queue.erase(w);
      break;
    }
    if (!it->second.active && queue.empty()) slots_.erase(it);
    return out;
  }

  // Every pull, active or waiting, of the consumers `matches` accepts, removed.
  Taken take_if(const std::function<bool(const std::string& key)>& matches) {
    Taken out;
    for (auto it = slots_.begin(); it != slots_.end();) {
      if (!matches(it->first)) {
        ++it;
        continue;
      }
      take_slot(it->first, it->second, out);
      it = slots_.erase(it);
    }
    return out;
  }

  // Everything, removed (the connection closes).
  Taken take_all() {
    Taken out;
    for (auto& [key, slot] : slots_) take_slot(key, slot, out);
    slots_.clear();
    ids_.clear();
    return out;
  }

  // Consumers with a pull active or waiting.
  std::size_t consumers() const noexcept { return slots_.size(); }
  bool empty() const noexcept { return slots_.empty(); }

 private:
  struct Active {
    std::uint64_t id = 0;
    Clock::time_point deadline{};
    const void* tag = nullptr;
    Pull pull;
  };
  struct Waiting {
    const void* tag = nullptr;
    Queued queued;
  };
  struct Slot {
    std::optional<Active> active;
    std::deque<Waiting> waiting;
  };
  using Slots = std::unordered_map<std::string, Slot>;

  // Removes the active pull of the slot at `it`, and the slot when nothing waits behind it
  // (consumers come and go; their slots do not pile up).
  Pull take_active(typename Slots::iterator it) {
    Pull p = std::move(it->second.active->pull);
    ids_.erase(it->second.active->id);
    it->second.active.reset();
    if (it->second.waiting.empty()) slots_.erase(it);
    return p;
  }

  void take_slot(const std::string& key, Slot& slot, Taken& out) {
    if (slot.active) {
      ids_.erase(slot.active->id);
      out.active.emplace_back(key, std::move(slot.active->pull));
      slot.active.reset();
    }
    for (auto& w : slot.waiting) out.waiting.emplace_back(key, std::move(w.queued));
    slot.waiting.clear();
  }

  Slots slots_;
  std::unordered_map<std::uint64_t, std::string> ids_;  // pull id -> consumer key
};

}  // namespace omniq::detail
