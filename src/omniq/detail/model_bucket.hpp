// A KV bucket holding one model type under its own key: results by task id, schedules by
// schedule id. What the stores share lives here once: a value is the model's JSON, written
// only after the model's checks and the size limits; read back only if it decodes to that
// model under that key (any client allowed to publish on the bucket's subjects may have put
// anything there); listed with what cannot be read skipped.
//
// Traits says what differs between models:
//   static constexpr std::string_view kind;              // "result", in decode errors
//   static std::string label(const Model&);              // "result of task x", in size errors
//   static Model decode(std::string_view text, const std::string& key);  // throws omniq::Error
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <boost/asio/awaitable.hpp>
#include <spdlog/logger.h>

#include "omniq/config.hpp"
#include "omniq/detail/connection.hpp"
#include "omniq/detail/kv.hpp"
#include "omniq/error.hpp"
#include "omniq/models.hpp"

namespace omniq::detail {

template <class Model>
struct Stored {
  std::string key;
  Model model;
  std::uint64_t revision = 0;
};

template <class Model, class Traits>
class ModelBucket {
 public:
  ModelBucket(Connection& connection, const BucketSettings& settings)
      : connection_(connection), settings_(settings), bucket_(connection, settings.name) {}

  KvBucket& kv() noexcept { return bucket_; }

  // The value to store for `model`: validated, encoded, within the bucket's and the server's
  // size limits. Callers make it before any network call, so bad input fails first.
  std::string checked_value(const Model& model) const {
    model.validate();
    std::string value = encode(model);
    check_value_size(Traits::label(model), value.size(), settings_.max_value_size, connection_.max_payload());
    return value;
  }

  // The stored model, or errc::decode_error naming the key and the bucket.
  Model decode(const KvEntry& entry) const {
    return decode_entry(entry, Traits::kind, settings_.name,
                        [&](std::string_view text) { return Traits::decode(text, entry.key); });
  }

  asio::awaitable<std::optional<Stored<Model>>> read(std::string key, Served served = Served::by_any_replica) {
    auto entry = co_await bucket_.get(std::move(key), served);
    if (!entry) co_return std::nullopt;
    Model model = decode(*entry);  // before the key moves out: decode checks it
    co_return Stored<Model>{std::move(entry->key), std::move(model), entry->revision};
  }

  // Deletes the key; false when it held nothing.
  asio::awaitable<bool> remove(std::string key) {
    // Awaited into a variable: g++ 12 miscompiles `if (!co_await ...)` in a coroutine member
    // of a class template (the resumed frame hits an illegal instruction).
    std::optional<KvEntry> entry = co_await bucket_.get(key);
    if (!entry) co_return false;
    co_await bucket_.erase(std::move(key));
    co_return true;
  }

  // Every stored model that can be read, in key order, with its key and revision (not its
  // bytes). One that cannot is skipped, with a warning in `log` when given.
  asio::awaitable<std::vector<Stored<Model>>> list(spdlog::logger* log) {
    std::vector<Stored<Model>> out;
    for (auto& entry : co_await bucket_.list()) {
      std::optional<Model> model;
      try {
        model = decode(entry);
      } catch (const Error& e) {
        if (log) log->warn("omniq: skipping a stored value: {}", e.what());
        continue;
      }
      out.push_back(Stored<Model>{std::move(entry.key), std::move(*model), entry.revision});
    }
    co_return out;
  }

 private:
  Connection& connection_;
  const BucketSettings& settings_;
  KvBucket bucket_;
};

}  // namespace omniq::detail
