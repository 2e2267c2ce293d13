#include "omniq/detail/server_version.hpp"

#include <netdb.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <memory>

#include <nlohmann/json.hpp>

namespace omniq::detail {

std::optional<ServerVersion> parse_server_version(std::string_view text) {
  if (!text.empty() && (text.front() == 'v' || text.front() == 'V')) text.remove_prefix(1);
  ServerVersion v{};
  const char* p = text.data();
  const char* end = text.data() + text.size();
  for (std::size_t i = 0; i < v.size(); ++i) {
    auto [next, ec] = std::from_chars(p, end, v[i]);
    if (ec != std::errc() || v[i] < 0) return std::nullopt;
    p = next;
    if (i + 1 < v.size()) {
      if (p == end || *p != '.') return std::nullopt;
      ++p;
    }
  }
  if (p != end && *p != '-' && *p != '+') return std::nullopt;
  return v;
}

namespace {
struct Fd {
  int fd = -1;
  ~Fd() {
    if (fd >= 0) ::close(fd);
  }
};

// host and port of "scheme://[user[:pass]@]host[:port]"; IPv6 hosts in brackets.
std::optional<std::pair<std::string, std::string>> host_port(std::string_view url) {
  if (const auto scheme = url.find("://"); scheme != std::string_view::npos) url.remove_prefix(scheme + 3);
  if (const auto at = url.rfind('@'); at != std::string_view::npos) url.remove_prefix(at + 1);
  if (const auto slash = url.find('/'); slash != std::string_view::npos) url = url.substr(0, slash);
  std::string_view host = url, port = "4222";
  if (!url.empty() && url.front() == '[') {
    const auto close = url.find(']');
    if (close == std::string_view::npos) return std::nullopt;
    host = url.substr(1, close - 1);
    if (close + 1 < url.size() && url[close + 1] == ':') port = url.substr(close + 2);
  } else if (const auto colon = url.rfind(':'); colon != std::string_view::npos) {
    host = url.substr(0, colon);
    port = url.substr(colon + 1);
  }
  if (host.empty() || port.empty()) return std::nullopt;
  return std::make_pair(std::string(host), std::string(port));
}

int left_ms(std::chrono::steady_clock::time_point deadline) {
  const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
  return static_cast<int>(std::max<std::chrono::milliseconds::rep>(0, left.count()));
}
}  // namespace

std::optional<std::string> read_server_version(const std::string& url, std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  const auto where = host_port(url);
  if (!where) return std::nullopt;
  addrinfo hints{};
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* found = nullptr;
  if (getaddrinfo(where->first.c_str(), where->second.c_str(), &hints, &found) != 0 || !found) return std::nullopt;
  std::unique_ptr<addrinfo, void (*)(addrinfo*)> addresses(found, freeaddrinfo);
  Fd sock{::socket(found->ai_family, found->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, found->ai_protocol)};
  if (sock.fd < 0) return std::nullopt;
  if (::connect(sock.fd, found->ai_addr, found->ai_addrlen) != 0 && errno != EINPROGRESS) return std::nullopt;
  std::string line;
  char buffer[1024];
  while (line.find("\r\n") == std::string::npos && line.size() < 64 * 1024) {
    pollfd p{sock.fd, POLLIN, 0};
    if (::poll(&p, 1, left_ms(deadline)) <= 0) return std::nullopt;
    const ssize_t n = ::recv(sock.fd, buffer, sizeof buffer, 0);
    if (n <= 0) return std::nullopt;
    line.append(buffer, static_cast<std::size_t>(n));
  }
  const auto end = line.find("\r\n");
  if (end == std::string::npos || line.rfind("INFO ", 0) != 0) return std::nullopt;
  const auto info = nlohmann::json::parse(line.substr(5, end - 5), nullptr, false);
  if (!info.is_object() || !info.contains("version") || !info["version"].is_string()) return std::nullopt;
  return info["version"].get<std::string>();
}

std::optional<std::string> server_version_warning(std::string_view version, const Config& c) {
  const auto v = parse_server_version(version);
  if (!v || *v >= ServerVersion{2, 9, 21}) return std::nullopt;
  const int replicas = std::max({c.tasks_stream.replicas, c.events_stream.replicas, c.dead_letter_stream.replicas,
                                 c.results_bucket.replicas, c.schedules_bucket.replicas,
                                 c.task_state_bucket.replicas, c.workers_bucket.replicas});
  if (replicas <= 1) return std::nullopt;
  return "nats-server " + std::string(version) + " is older than 2.9.21 and streams or buckets are configured with " +
         std::to_string(replicas) +
         " replicas: after a leader change such servers can number the same message differently on different "
         "replicas (nats-server PR #4365), which breaks the compare-and-set writes task claims rely on. Use "
         "nats-server 2.10 or later (docs/reliability.md)";
}

}  // namespace omniq::detail
