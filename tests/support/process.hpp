// A child process for multi-process tests: its output to a log file, stopped with SIGTERM
// (graceful) or SIGKILL (a crash), reaped on destruction.
#pragma once

#include <signal.h>
#include <sys/wait.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "omniq/detail/spawn.hpp"

namespace omniq::test {

class Process {
 public:
  // Started with omniq's own spawn (LocalServer's): killed if the test process dies.
  Process(std::vector<std::string> argv, std::filesystem::path log)
      : log_(std::move(log)), pid_(detail::spawn_child(std::move(argv), log_, /*append=*/false)) {}
  ~Process() {
    if (pid_ > 0 && !reaped_) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, nullptr, 0);
    }
  }
  Process(const Process&) = delete;
  Process& operator=(const Process&) = delete;

  bool reaped() const noexcept { return reaped_; }
  // "running", or how it ended ("exited 1", "killed by signal 9"); reaps it if it ended.
  std::string state() {
    if (!reaped_) {
      int st = 0;
      if (::waitpid(pid_, &st, WNOHANG) != pid_) return "running";
      reaped_ = true;
      status_ = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
    }
    return status_ >= 128 ? "killed by signal " + std::to_string(status_ - 128) : "exited " + std::to_string(status_);
  }
  void signal(int sig) { ::kill(pid_, sig); }
  void kill9() {
    signal(SIGKILL);
    wait();
  }
  // Waits for the exit (up to `timeout`, then SIGKILL); returns the exit status, or 128 +
  // the signal that ended it.
  int wait(std::chrono::milliseconds timeout = std::chrono::milliseconds(30'000)) {
    if (reaped_) return status_;
    const auto until = std::chrono::steady_clock::now() + timeout;
    int st = 0;
    for (;;) {
      const pid_t r = ::waitpid(pid_, &st, WNOHANG);
      if (r == pid_) break;
      if (std::chrono::steady_clock::now() >= until) {
        ::kill(pid_, SIGKILL);
        ::waitpid(pid_, &st, 0);
        break;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    reaped_ = true;
    status_ = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
    return status_;
  }
  // Stops it gracefully (SIGTERM) and returns the exit status.
  int terminate(std::chrono::milliseconds timeout = std::chrono::milliseconds(30'000)) {
    signal(SIGTERM);
    return wait(timeout);
  }
  const std::filesystem::path& log_path() const noexcept { return log_; }
  std::string output() const {
    std::ifstream in(log_);
    std::stringstream s;
    s << in.rdbuf();
    return s.str();
  }

 private:
  std::filesystem::path log_;
  pid_t pid_ = -1;
  bool reaped_ = false;
  int status_ = -1;
};

}  // namespace omniq::test
