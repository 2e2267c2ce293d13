// Shared helpers for omniq's integration tests: a real nats-server per test (LocalServer), a
// Config pointing at it, and a way to run a coroutine to completion on a fresh io_context.
#pragma once

#include <chrono>
#include <cstdlib>
#include <exception>
#include <filesystem>
#include <string>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_future.hpp>

#include "omniq/config.hpp"
#include "omniq/local_server.hpp"

namespace omniq::test {

namespace asio = boost::asio;

inline Config config_for(const LocalServer& server) {
  Config c;
  c.servers = {server.url()};
  c.connect_timeout = std::chrono::milliseconds(2000);
  c.reconnect_time_wait = std::chrono::milliseconds(100);
  return c;
}

// Runs `op` on `io` until it completes and returns its value (or rethrows).
template <class T>
T run(asio::io_context& io, asio::awaitable<T> op) {
  auto future = asio::co_spawn(io, std::move(op), asio::use_future);
  io.restart();
  io.run();
  return future.get();
}

// Runs a backend coroutine from the test thread on the backend's own executor.
template <class Backend, class T>
T run_sync(Backend& backend, asio::awaitable<T> op) {
  return asio::co_spawn(backend.get_executor(), std::move(op), asio::use_future).get();
}

// A temporary directory removed at scope exit.
struct TempDir {
  std::filesystem::path path;
  TempDir() {
    path = std::filesystem::temp_directory_path() /
           ("omniq-test-" + std::to_string(std::chrono::steady_clock::now().time_since_epoch().count()));
    std::filesystem::create_directories(path);
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path, ec);
  }
};

// Runs a shell command; returns its exit status.
inline int sh(const std::string& command) { return std::system(command.c_str()); }

}  // namespace omniq::test
