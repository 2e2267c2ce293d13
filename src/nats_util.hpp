// Internal helpers for the compiled nats.c glue: RAII handles and the one translation of
// nats.c statuses into omniq errors with a clear message.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include <nats/nats.h>

#include "omniq/error.hpp"

namespace omniq::detail {

template <class T, void (*Destroy)(T*)>
struct NatsDeleter {
  void operator()(T* p) const noexcept {
    if (p) Destroy(p);
  }
};
using OptionsPtr = std::unique_ptr<natsOptions, NatsDeleter<natsOptions, natsOptions_Destroy>>;
using MsgPtr = std::unique_ptr<natsMsg, NatsDeleter<natsMsg, natsMsg_Destroy>>;
using StreamInfoPtr = std::unique_ptr<jsStreamInfo, NatsDeleter<jsStreamInfo, jsStreamInfo_Destroy>>;
using KvStorePtr = std::unique_ptr<kvStore, NatsDeleter<kvStore, kvStore_Destroy>>;
using KvStatusPtr = std::unique_ptr<kvStatus, NatsDeleter<kvStatus, kvStatus_Destroy>>;
using ConnectionPtr = std::unique_ptr<natsConnection, NatsDeleter<natsConnection, natsConnection_Destroy>>;
using JsCtxPtr = std::unique_ptr<jsCtx, NatsDeleter<jsCtx, jsCtx_Destroy>>;
using SubscriptionPtr = std::unique_ptr<natsSubscription, NatsDeleter<natsSubscription, natsSubscription_Destroy>>;
using AccountInfoPtr = std::unique_ptr<jsAccountInfo, NatsDeleter<jsAccountInfo, jsAccountInfo_Destroy>>;
using InboxPtr = std::unique_ptr<natsInbox, NatsDeleter<natsInbox, natsInbox_Destroy>>;

// nats.c hands out handles through out-parameters: `js_GetStreamInfo(out(info), ...)` passes
// one whose value the smart pointer `info` owns at the end of the call's full expression (what
// C++23's std::out_ptr does).
template <class Ptr>
class OutParam {
 public:
  explicit OutParam(Ptr& owner) noexcept : owner_(owner) {}
  OutParam(const OutParam&) = delete;
  OutParam& operator=(const OutParam&) = delete;
  ~OutParam() { owner_.reset(raw_); }
  operator typename Ptr::pointer*() noexcept { return &raw_; }

 private:
  Ptr& owner_;
  typename Ptr::pointer raw_ = nullptr;
};
template <class Ptr>
OutParam<Ptr> out(Ptr& owner) noexcept {
  return OutParam<Ptr>(owner);
}

// The text nats.c recorded for the last error on this thread, or the status text.
std::string nats_error_text(natsStatus s);

// Maps a nats.c status to an omniq error kind.
errc errc_from_status(natsStatus s, std::string_view text);

// Throws omniq::Error for a failed nats.c call: "<what>: <nats.c text>".
[[noreturn]] void throw_nats(natsStatus s, std::string_view what);

// Same, for JetStream calls that also report a jsErrCode.
[[noreturn]] void throw_js(natsStatus s, jsErrCode code, std::string_view what);

inline void check(natsStatus s, std::string_view what) {
  if (s != NATS_OK) throw_nats(s, what);
}

// nats.c takes milliseconds for timeouts and nanoseconds for JetStream durations; these are
// the only conversions (units live in types).
template <class Rep, class Period>
std::int64_t to_ms(std::chrono::duration<Rep, Period> d) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(d).count();
}
template <class Rep, class Period>
std::int64_t to_ns(std::chrono::duration<Rep, Period> d) {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(d).count();
}

}  // namespace omniq::detail
