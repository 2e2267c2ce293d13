// The completion tokens omniq's asynchronous operations take, and the two adapters of its own.
//
// Every asynchronous operation is an initiating function in the Asio style:
//   template <class CompletionToken = omniq::default_token>
//   auto async_xxx(args..., CompletionToken&& token = {});
// completing with void(omniq::error_code, T) (void(omniq::error_code) when there is no value).
// Any Asio token works: asio::use_awaitable, asio::deferred, asio::use_future, a callback,
// asio::as_tuple(...), asio::redirect_error(...), asio::bind_cancellation_slot(...). The
// completion handler runs on its associated executor (the backend's when it has none), never
// on a nats.c thread.
//
// Two adapters carry the detail an error code cannot hold (the message naming the task, key or
// limit, the server's text: see Diagnostics):
//  - with_diagnostics(token): the error becomes an exception, as omniq::Error with that message
//    (boost::system::system_error for codes of other categories, e.g. operation_aborted). The
//    default token behaves as with_diagnostics(asio::use_awaitable): `co_await
//    q.async_enqueue(task)` throws the same omniq::Error the blocking form throws. (It awaits
//    the compiled coroutine in place: no spawn, no type-erased handler on the common path.)
//  - bind_diagnostics(diagnostics, token): the completion is unchanged and `diagnostics` holds
//    the message once the handler runs (the error-code forms).
#pragma once

#include <exception>
#include <memory>
#include <type_traits>
#include <utility>

#include <boost/asio/any_completion_handler.hpp>
#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/associator.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "omniq/error.hpp"

namespace omniq {

namespace asio = boost::asio;

/// The completion signature of an operation yielding T.
template <class T>
struct completion_of {
  using type = void(error_code, T);
};
template <>
struct completion_of<void> {
  using type = void(error_code);
};
template <class T>
using completion_t = typename completion_of<T>::type;

template <class Token>
struct with_diagnostics_t {
  Token token;
};
/// Turns an error completion into an exception carrying the diagnostics (see above).
template <class Token>
with_diagnostics_t<std::decay_t<Token>> with_diagnostics(Token&& token) {
  return {std::forward<Token>(token)};
}

/// The default token of every omniq operation: co_await in an asio::awaitable coroutine, failures
/// thrown as omniq::Error with the full message. (Not asio::deferred: in Boost 1.81, co_await of
/// a deferred operation completing with an exception_ptr does not compile, and a deferred error
/// code would be thrown without its message.)
using default_token = with_diagnostics_t<asio::use_awaitable_t<>>;

template <class Token>
struct diagnostics_bound_t {
  Diagnostics* diagnostics;
  Token token;
};
/// Leaves the completion as it is and fills `diagnostics` before the handler runs; `diagnostics`
/// must outlive the operation.
template <class Token>
diagnostics_bound_t<std::decay_t<Token>> bind_diagnostics(Diagnostics& diagnostics, Token&& token) {
  return {&diagnostics, std::forward<Token>(token)};
}

namespace detail {

template <class Handler>
struct throwing_handler {
  std::unique_ptr<Diagnostics> diagnostics;
  Handler handler;

  template <class... Ts>
  void operator()(error_code ec, Ts&&... values) {
    std::exception_ptr failure;
    if (ec) {
      try {
        throw_if_failed(ec, *diagnostics);
      } catch (...) {
        failure = std::current_exception();
      }
    }
    std::move(handler)(std::move(failure), std::forward<Ts>(values)...);
  }
};

template <class Handler>
struct diagnosing_handler {
  Diagnostics* diagnostics;
  Handler handler;

  template <class... Ts>
  void operator()(Ts&&... values) {
    std::move(handler)(std::forward<Ts>(values)...);
  }
};

/// Where the operation writes its diagnostics: the adapters' object, or nowhere.
template <class Handler>
Diagnostics* diagnostics_of(Handler&) noexcept {
  return nullptr;
}
template <class Handler>
Diagnostics* diagnostics_of(throwing_handler<Handler>& h) noexcept {
  return h.diagnostics.get();
}
template <class Handler>
Diagnostics* diagnostics_of(diagnosing_handler<Handler>& h) noexcept {
  h.diagnostics->clear();
  return h.diagnostics;
}

/// Runs `op` on `executor` and completes `handler` with its value or its failure as an error
/// code (to_error_code, the message into `diagnostics` when given), on the handler's associated
/// executor (`executor` when it has none), whose outstanding work is tracked until then. The
/// handler's cancellation slot cancels `op` (terminal cancellation): the operations it awaits
/// complete with operation_aborted. Compiled: instantiated in src/launch.cpp for each T an
/// operation yields.
template <class T>
void launch(const asio::any_io_executor& executor, asio::awaitable<T> op, Diagnostics* diagnostics,
            asio::any_completion_handler<completion_t<T>> handler);

template <class T, class CompletionToken, class MakeOp>
auto initiate_spawned(CompletionToken&& token, asio::any_io_executor executor, MakeOp make_op);

/// The initiating function of an operation the compiled coroutine `make_op()` performs.
template <class T, class CompletionToken, class MakeOp>
auto initiate(CompletionToken&& token, asio::any_io_executor executor, MakeOp make_op) {
  if constexpr (std::is_same_v<std::decay_t<CompletionToken>, default_token>) {
    // The default token, co_awaited in a coroutine: the compiled coroutine itself, run in place
    // on the awaiting coroutine's executor and cancellation state, with no spawn and no
    // type-erased handler in between. It completes as with_diagnostics(use_awaitable) would:
    // the value, or the failure thrown (omniq::Error with its message).
    (void)token;
    (void)executor;
    return std::move(make_op)();
  } else {
    return initiate_spawned<T>(token, std::move(executor), std::move(make_op));
  }
}

template <class T, class CompletionToken, class MakeOp>
auto initiate_spawned(CompletionToken&& token, asio::any_io_executor executor, MakeOp make_op) {
  return asio::async_initiate<CompletionToken, completion_t<T>>(
      [executor = std::move(executor)](auto handler, MakeOp make) {
        Diagnostics* diagnostics = diagnostics_of(handler);
        launch<T>(executor, std::move(make)(), diagnostics,
                  asio::any_completion_handler<completion_t<T>>(std::move(handler)));
      },
      token, std::move(make_op));
}

/// The initiating function of an operation with a compiled starter of its own:
/// `start(Diagnostics*, asio::any_completion_handler<completion_t<T>>)`.
template <class T, class CompletionToken, class Start>
auto initiate_with(CompletionToken&& token, Start start) {
  return asio::async_initiate<CompletionToken, completion_t<T>>(
      [](auto handler, Start begin) {
        Diagnostics* diagnostics = diagnostics_of(handler);
        std::move(begin)(diagnostics, asio::any_completion_handler<completion_t<T>>(std::move(handler)));
      },
      token, std::move(start));
}

}  // namespace detail
}  // namespace omniq

/// @cond INTERNAL

/// The adapters' handlers keep the associated executor, allocator and cancellation slot of the
/// handler they wrap.
template <template <class, class> class Associator, class Handler, class Default>
struct boost::asio::associator<Associator, omniq::detail::throwing_handler<Handler>, Default>
    : Associator<Handler, Default> {
  static typename Associator<Handler, Default>::type get(const omniq::detail::throwing_handler<Handler>& h) noexcept {
    return Associator<Handler, Default>::get(h.handler);
  }
  static auto get(const omniq::detail::throwing_handler<Handler>& h, const Default& d) noexcept
      -> decltype(Associator<Handler, Default>::get(h.handler, d)) {
    return Associator<Handler, Default>::get(h.handler, d);
  }
};

template <template <class, class> class Associator, class Handler, class Default>
struct boost::asio::associator<Associator, omniq::detail::diagnosing_handler<Handler>, Default>
    : Associator<Handler, Default> {
  static typename Associator<Handler, Default>::type get(const omniq::detail::diagnosing_handler<Handler>& h) noexcept {
    return Associator<Handler, Default>::get(h.handler);
  }
  static auto get(const omniq::detail::diagnosing_handler<Handler>& h, const Default& d) noexcept
      -> decltype(Associator<Handler, Default>::get(h.handler, d)) {
    return Associator<Handler, Default>::get(h.handler, d);
  }
};

template <class Token, class... Ts>
struct boost::asio::async_result<omniq::with_diagnostics_t<Token>, void(omniq::error_code, Ts...)> {
  template <class Initiation>
  struct wrapped {
    Initiation initiation;
    template <class Handler, class... Args>
    void operator()(Handler&& handler, Args&&... args) && {
      std::move(initiation)(
          omniq::detail::throwing_handler<std::decay_t<Handler>>{std::make_unique<omniq::Diagnostics>(),
                                                                 std::forward<Handler>(handler)},
          std::forward<Args>(args)...);
    }
  };

  template <class Initiation, class RawToken, class... Args>
  static auto initiate(Initiation&& initiation, RawToken&& token, Args&&... args) {
    return boost::asio::async_initiate<Token, void(std::exception_ptr, Ts...)>(
        wrapped<std::decay_t<Initiation>>{std::forward<Initiation>(initiation)}, token.token,
        std::forward<Args>(args)...);
  }
};

template <class Token, class... Signatures>
struct boost::asio::async_result<omniq::diagnostics_bound_t<Token>, Signatures...> {
  template <class Initiation>
  struct wrapped {
    Initiation initiation;
    omniq::Diagnostics* diagnostics;
    template <class Handler, class... Args>
    void operator()(Handler&& handler, Args&&... args) && {
      std::move(initiation)(
          omniq::detail::diagnosing_handler<std::decay_t<Handler>>{diagnostics, std::forward<Handler>(handler)},
          std::forward<Args>(args)...);
    }
  };

  template <class Initiation, class RawToken, class... Args>
  static auto initiate(Initiation&& initiation, RawToken&& token, Args&&... args) {
    return boost::asio::async_initiate<Token, Signatures...>(
        wrapped<std::decay_t<Initiation>>{std::forward<Initiation>(initiation), token.diagnostics}, token.token,
        std::forward<Args>(args)...);
  }
};
/// @endcond
