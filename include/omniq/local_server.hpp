// A nats-server child process on loopback, for tests, benchmarks and the demo (the "embedded
// default" used when no server is configured). It listens on 127.0.0.1 only, on a free port,
// with JetStream storing into a temporary directory that is removed when the server stops.
#pragma once

#include <chrono>
#include <filesystem>
#include <string>
#include <vector>

#include <sys/types.h>

namespace omniq {

struct LocalServerOptions {
  std::string executable = "nats-server";  // looked up on PATH; env OMNIQ_NATS_SERVER overrides
  int port = 0;                            // 0 = pick a free loopback port
  bool jetstream = true;
  std::string config_text{};  // written to <dir>/nats.conf and passed with -c (auth, TLS, cluster)
  std::vector<std::string> extra_args{};
  std::filesystem::path directory{};  // empty = a new temporary directory, removed on destruction
  std::chrono::milliseconds startup_timeout{10'000};
  // Placeholders replaced in config_text: {dir} (the server directory) and {port}.
};

/// The child is killed when the thread that started it ends (PR_SET_PDEATHSIG follows the
/// forking thread): start servers from a thread that outlives them, such as main.
class LocalServer {
 public:
  explicit LocalServer(LocalServerOptions options = {});  // starts and waits until ready
  ~LocalServer();                                          // stops it and removes its directory
  LocalServer(const LocalServer&) = delete;
  LocalServer& operator=(const LocalServer&) = delete;

  void stop();     // SIGTERM, wait for exit (SIGKILL after 10 s); the store is kept for restart()
  void kill();     // SIGKILL: a crash; the store is kept for restart()
  void restart();  // start again on the same port with the same store
  bool running() noexcept;  // false once the process has exited, whoever stopped it

  std::string url() const;  // "nats://127.0.0.1:<port>"
  int port() const noexcept { return port_; }
  pid_t pid() const noexcept { return pid_; }
  const std::filesystem::path& directory() const noexcept { return dir_; }
  std::filesystem::path store_dir() const { return dir_ / "jetstream"; }
  std::filesystem::path log_file() const { return dir_ / "nats-server.log"; }

  /// A free TCP port on 127.0.0.1 (bound, read and released).
  static int free_port();

 private:
  void start();
  void wait_ready();

  LocalServerOptions options_;
  std::filesystem::path dir_;
  bool owns_dir_ = false;
  int port_ = 0;
  pid_t pid_ = -1;
  std::string executable_path_;
};

}  // namespace omniq
