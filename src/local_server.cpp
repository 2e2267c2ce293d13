#include "omniq/local_server.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <random>
#include <sstream>
#include <thread>

#include "omniq/detail/spawn.hpp"
#include "omniq/error.hpp"

namespace omniq {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

namespace {

std::string find_on_path(const std::string& name) {
  if (name.find('/') != std::string::npos) return name;
  const char* path = std::getenv("PATH");
  std::stringstream dirs(path ? path : "/usr/local/bin:/usr/bin:/bin");
  std::string dir;
  while (std::getline(dirs, dir, ':')) {
    fs::path candidate = fs::path(dir.empty() ? "." : dir) / name;
    if (::access(candidate.c_str(), X_OK) == 0) return candidate.string();
  }
  throw_error(errc::server_error, "cannot find \"" + name +
                                      "\" on PATH; install nats-server (cmake/setup-deps.sh does) or set OMNIQ_NATS_SERVER");
}

fs::path make_temp_dir() {
  std::random_device rd;
  for (int attempt = 0; attempt < 100; ++attempt) {
    fs::path dir = fs::temp_directory_path() / ("omniq-nats-" + std::to_string(rd()));
    std::error_code ec;
    if (fs::create_directory(dir, ec)) return dir;
  }
  throw_error(errc::server_error, "cannot create a temporary directory for nats-server");
}

void replace_all(std::string& text, const std::string& from, const std::string& to) {
  for (auto pos = text.find(from); pos != std::string::npos; pos = text.find(from, pos + to.size()))
    text.replace(pos, from.size(), to);
}

bool port_accepts(int port) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return false;
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  const bool ok = ::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
  ::close(fd);
  return ok;
}

std::string read_file(const fs::path& p) {
  std::ifstream in(p);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

pid_t wait_child(pid_t pid, int options) {
  int status = 0;
  pid_t r;
  do {
    r = ::waitpid(pid, &status, options);
  } while (r < 0 && errno == EINTR);
  return r;
}

std::string tail(const std::string& text, std::size_t lines) {
  std::size_t pos = text.size();
  for (std::size_t n = 0; n <= lines && pos != std::string::npos && pos > 0; ++n) pos = text.rfind('\n', pos - 1);
  return pos == std::string::npos ? text : text.substr(pos + 1);
}

}  // namespace

int LocalServer::free_port() {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) throw_error(errc::server_error, std::string("socket(): ") + std::strerror(errno));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = 0;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof addr;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    ::close(fd);
    throw_error(errc::server_error, std::string("cannot find a free loopback port: ") + std::strerror(errno));
  }
  ::close(fd);
  return ntohs(addr.sin_port);
}

LocalServer::LocalServer(LocalServerOptions options) : options_(std::move(options)) {
  const char* env = std::getenv("OMNIQ_NATS_SERVER");
  executable_path_ = find_on_path(env && *env ? env : options_.executable);
  if (options_.directory.empty()) {
    dir_ = make_temp_dir();
    owns_dir_ = true;
  } else {
    dir_ = options_.directory;
    fs::create_directories(dir_);
  }
  // A port picked by free_port() can be taken by someone else before the server binds it;
  // retry with a new one.
  for (int attempt = 0;; ++attempt) {
    port_ = options_.port != 0 ? options_.port : free_port();
    try {
      start();
      return;
    } catch (const Error&) {
      if (options_.port != 0 || attempt >= 2) {
        if (owns_dir_) {
          std::error_code ec;
          fs::remove_all(dir_, ec);
        }
        throw;
      }
    }
  }
}

LocalServer::~LocalServer() {
  try {
    stop();
  } catch (...) {
  }
  if (owns_dir_) {
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }
}

pid_t detail::spawn_child(std::vector<std::string> args, const fs::path& log, bool append) {
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  const std::string log_path = log.string();
  const int log_flags = O_WRONLY | O_CREAT | (append ? O_APPEND : O_TRUNC);
  const pid_t parent = ::getpid();

  const pid_t pid = ::fork();
  if (pid < 0) throw_error(errc::server_error, std::string("fork(): ") + std::strerror(errno));
  if (pid == 0) {
    // Child: only async-signal-safe calls until exec. Die with the parent.
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (::getppid() != parent) ::_exit(127);
    int fd = ::open(log_path.c_str(), log_flags, 0644);
    if (fd >= 0) {
      ::dup2(fd, STDOUT_FILENO);
      ::dup2(fd, STDERR_FILENO);
    }
    int devnull = ::open("/dev/null", O_RDONLY);
    if (devnull >= 0) ::dup2(devnull, STDIN_FILENO);
    // No inherited sockets (nats.c does not mark them close-on-exec): a client connection
    // held open by the child would outlive its close in the parent.
    ::close_range(3, ~0U, 0);
    // Nor blocked or ignored signals: stopping relies on SIGTERM.
    sigset_t none;
    sigemptyset(&none);
    ::sigprocmask(SIG_SETMASK, &none, nullptr);
    ::signal(SIGTERM, SIG_DFL);
    ::signal(SIGINT, SIG_DFL);
    ::signal(SIGPIPE, SIG_DFL);
    ::execv(argv[0], argv.data());
    ::_exit(127);
  }
  return pid;
}

std::string LocalServer::url() const { return "nats://127.0.0.1:" + std::to_string(port_); }

void LocalServer::start() {
  std::vector<std::string> args{executable_path_, "-a", "127.0.0.1", "-p", std::to_string(port_)};
  if (options_.jetstream) {
    args.insert(args.end(), {"-js", "-sd", store_dir().string()});
  }
  if (!options_.config_text.empty()) {
    std::string text = options_.config_text;
    replace_all(text, "{dir}", dir_.string());
    replace_all(text, "{port}", std::to_string(port_));
    const fs::path conf = dir_ / "nats.conf";
    std::ofstream(conf) << text;
    args.insert(args.end(), {"-c", conf.string()});
  }
  args.insert(args.end(), options_.extra_args.begin(), options_.extra_args.end());

  pid_ = detail::spawn_child(std::move(args), log_file(), /*append=*/true);
  wait_ready();
}

void LocalServer::wait_ready() {
  const auto deadline = std::chrono::steady_clock::now() + options_.startup_timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    if (wait_child(pid_, WNOHANG) == pid_) {
      pid_ = -1;
      throw_error(errc::server_error, "nats-server exited during start-up on port " + std::to_string(port_) +
                                          "; its log ends with:\n" + tail(read_file(log_file()), 10));
    }
    // Ready = the port accepts and the server logged readiness (JetStream is up by then).
    if (port_accepts(port_) && read_file(log_file()).find("Server is ready") != std::string::npos) return;
    std::this_thread::sleep_for(20ms);
  }
  kill();
  throw_error(errc::server_error, "nats-server on port " + std::to_string(port_) + " was not ready within " +
                                      std::to_string(options_.startup_timeout.count()) + " ms; its log ends with:\n" +
                                      tail(read_file(log_file()), 10));
}

bool LocalServer::running() noexcept {
  if (pid_ > 0 && wait_child(pid_, WNOHANG) == pid_) pid_ = -1;  // exited (or was killed) by itself
  return pid_ > 0;
}

void LocalServer::stop() {
  if (pid_ <= 0) return;
  ::kill(pid_, SIGTERM);
  const auto deadline = std::chrono::steady_clock::now() + 10s;
  while (wait_child(pid_, WNOHANG) == 0) {
    if (std::chrono::steady_clock::now() > deadline) {
      ::kill(pid_, SIGKILL);
      wait_child(pid_, 0);
      break;
    }
    std::this_thread::sleep_for(10ms);
  }
  pid_ = -1;
}

void LocalServer::kill() {
  if (pid_ <= 0) return;
  ::kill(pid_, SIGKILL);
  wait_child(pid_, 0);
  pid_ = -1;
}

void LocalServer::restart() {
  stop();
  // The log is appended to; readiness must be judged on the new run's lines only.
  std::error_code ec;
  fs::rename(log_file(), dir_ / "nats-server.previous.log", ec);
  start();
}

}  // namespace omniq
