// Config loading: one table of (key, member) per struct drives JSON reading, writing and the
// unknown-key check, so a new key is one line; per-kind readers give uniform error texts.
#include "omniq/config.hpp"

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <limits>
#include <sstream>
#include <string_view>
#include <tuple>
#include <type_traits>
#include <utility>

#include <nlohmann/json.hpp>

#include "omniq/error.hpp"

namespace omniq {
namespace {

using nlohmann::json;
using namespace std::string_literals;

// ---- key tables -------------------------------------------------------------------------

template <class S, class T>
struct Field {
  std::string_view key;
  T S::*member;
};
template <class S, class T>
Field(std::string_view, T S::*) -> Field<S, T>;

template <class S>
constexpr auto fields();

template <>
constexpr auto fields<StreamSettings>() {
  using S = StreamSettings;
  return std::tuple{Field{"name", &S::name},
                    Field{"replicas", &S::replicas},
                    Field{"storage", &S::storage},
                    Field{"max_age", &S::max_age},
                    Field{"max_msgs", &S::max_msgs},
                    Field{"max_bytes", &S::max_bytes},
                    Field{"max_msg_size", &S::max_msg_size},
                    Field{"duplicate_window", &S::duplicate_window}};
}

template <>
constexpr auto fields<BucketSettings>() {
  using S = BucketSettings;
  return std::tuple{Field{"name", &S::name},
                    Field{"replicas", &S::replicas},
                    Field{"storage", &S::storage},
                    Field{"ttl", &S::ttl},
                    Field{"history", &S::history},
                    Field{"max_value_size", &S::max_value_size},
                    Field{"max_bytes", &S::max_bytes}};
}

template <>
constexpr auto fields<Config>() {
  using S = Config;
  return std::tuple{Field{"servers", &S::servers},
                    Field{"user", &S::user},
                    Field{"password", &S::password},
                    Field{"token", &S::token},
                    Field{"tls", &S::tls},
                    Field{"tls_cert", &S::tls_cert},
                    Field{"tls_key", &S::tls_key},
                    Field{"tls_ca", &S::tls_ca},
                    Field{"connect_timeout", &S::connect_timeout},
                    Field{"reconnect_time_wait", &S::reconnect_time_wait},
                    Field{"max_reconnect_attempts", &S::max_reconnect_attempts},
                    Field{"verbose", &S::verbose},
                    Field{"pedantic", &S::pedantic},
                    Field{"name", &S::name},
                    Field{"inbox_prefix", &S::inbox_prefix},
                    Field{"tasks_subject", &S::tasks_subject},
                    Field{"results_subject", &S::results_subject},
                    Field{"events_subject", &S::events_subject},
                    Field{"schedules_subject", &S::schedules_subject},
                    Field{"dead_letter_subject", &S::dead_letter_subject},
                    Field{"queue_group", &S::queue_group},
                    Field{"tasks_stream", &S::tasks_stream},
                    Field{"events_stream", &S::events_stream},
                    Field{"dead_letter_stream", &S::dead_letter_stream},
                    Field{"results_bucket", &S::results_bucket},
                    Field{"schedules_bucket", &S::schedules_bucket},
                    Field{"task_state_bucket", &S::task_state_bucket},
                    Field{"workers_bucket", &S::workers_bucket},
                    Field{"ack_wait", &S::ack_wait},
                    Field{"max_deliver", &S::max_deliver},
                    Field{"max_ack_pending", &S::max_ack_pending},
                    Field{"send_asap", &S::send_asap},
                    Field{"prefetch", &S::prefetch},
                    Field{"blocking_threads", &S::blocking_threads},
                    Field{"request_timeout", &S::request_timeout},
                    Field{"publish_timeout", &S::publish_timeout}};
}

template <class S, class F>
void for_each_field(F&& f) {
  std::apply([&](const auto&... field) { (f(field), ...); }, fields<S>());
}

template <class T>
struct is_duration : std::false_type {};
template <class R, class P>
struct is_duration<std::chrono::duration<R, P>> : std::true_type {};

template <class T>
constexpr bool is_section = std::is_same_v<T, StreamSettings> || std::is_same_v<T, BucketSettings>;

// ---- small helpers ----------------------------------------------------------------------

// JSON-style quoting, so odd characters in a bad value stay visible in the message.
std::string quote(std::string_view s) {
  return json(std::string(s)).dump(-1, ' ', false, json::error_handler_t::replace);
}

std::string seconds_text(std::chrono::nanoseconds d) {
  return json(std::chrono::duration<double>(d).count()).dump();
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
  return s;
}

// "a, b,,c" -> {"a","b","c"}: empty entries (a trailing comma) are dropped.
std::vector<std::string> split_servers(std::string_view s) {
  std::vector<std::string> out;
  while (true) {
    const auto comma = s.find(',');
    if (auto item = trim(s.substr(0, comma)); !item.empty()) out.emplace_back(item);
    if (comma == std::string_view::npos) break;
    s.remove_prefix(comma + 1);
  }
  return out;
}

std::size_t edit_distance(std::string_view a, std::string_view b) {
  std::vector<std::size_t> row(b.size() + 1);
  for (std::size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (std::size_t i = 1; i <= a.size(); ++i) {
    std::size_t diag = row[0];
    row[0] = i;
    for (std::size_t j = 1; j <= b.size(); ++j) {
      const std::size_t up = row[j];
      const bool same = std::tolower(static_cast<unsigned char>(a[i - 1])) ==
                        std::tolower(static_cast<unsigned char>(b[j - 1]));
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diag + (same ? 0 : 1)});
      diag = up;
    }
  }
  return row[b.size()];
}

bool is_token_char(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-';
}
bool is_token(std::string_view s) { return !s.empty() && std::all_of(s.begin(), s.end(), is_token_char); }

bool is_subject(std::string_view s) {
  if (s.empty()) return false;
  while (true) {
    const auto dot = s.find('.');
    if (!is_token(s.substr(0, dot))) return false;
    if (dot == std::string_view::npos) return true;
    s.remove_prefix(dot + 1);
  }
}

// True if `a` equals `b` or is a token-wise prefix of it ("omniq.tasks" of "omniq.tasks.x").
bool subject_covers(std::string_view a, std::string_view b) {
  return b == a || (b.size() > a.size() && b.starts_with(a) && b[a.size()] == '.');
}

bool iequals(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) == std::tolower(static_cast<unsigned char>(y));
         });
}

struct ServerUrl {
  std::string_view scheme;    // "" when the entry is a bare host[:port]
  std::string_view userinfo;  // "" when absent
  std::string_view hostport;
};

std::optional<ServerUrl> split_url(std::string_view u) {
  ServerUrl r;
  if (const auto p = u.find("://"); p != std::string_view::npos) {
    r.scheme = u.substr(0, p);
    u.remove_prefix(p + 3);
  }
  if (const auto at = u.rfind('@'); at != std::string_view::npos) {
    r.userinfo = u.substr(0, at);
    if (r.userinfo.empty()) return std::nullopt;
    u.remove_prefix(at + 1);
  }
  r.hostport = u;
  return r;
}

// The forms nats.c 3.4 accepts: nats:// or tls:// URLs, or a bare host[:port]; IPv6 in [].
bool is_server_url(std::string_view u) {
  if (u.empty() || std::any_of(u.begin(), u.end(), [](char c) { return std::isspace(static_cast<unsigned char>(c)); }))
    return false;
  const auto url = split_url(u);
  if (!url) return false;
  if (!url->scheme.empty() && !iequals(url->scheme, "nats") && !iequals(url->scheme, "tls")) return false;
  std::string_view hp = url->hostport;
  if (hp.ends_with('/')) hp.remove_suffix(1);
  std::string_view host = hp, port;
  if (hp.starts_with('[')) {
    const auto close = hp.find(']');
    if (close == std::string_view::npos) return false;
    host = hp.substr(1, close - 1);
    const auto rest = hp.substr(close + 1);
    if (!rest.empty() && (rest[0] != ':' || rest.size() == 1)) return false;
    if (!rest.empty()) port = rest.substr(1);
    if (!std::all_of(host.begin(), host.end(), [](char c) { return std::isxdigit(static_cast<unsigned char>(c)) || c == ':' || c == '.'; }))
      return false;
  } else {
    if (const auto colon = hp.find(':'); colon != std::string_view::npos) {
      host = hp.substr(0, colon);
      port = hp.substr(colon + 1);
      if (port.empty()) return false;
    }
    if (!std::all_of(host.begin(), host.end(), [](char c) { return is_token_char(c) || c == '.'; })) return false;
  }
  if (host.empty()) return false;
  if (!port.empty()) {
    if (port.size() > 5 || !std::all_of(port.begin(), port.end(), [](char c) { return c >= '0' && c <= '9'; }))
      return false;
    const int n = std::stoi(std::string(port));
    if (n < 1 || n > 65535) return false;
  }
  return true;
}

// ---- errors -----------------------------------------------------------------------------

// `origin` (a file path) prefixes every message when the config came from a file.
[[noreturn]] void fail(std::string_view origin, const std::string& msg) {
  std::string text = "config: ";
  if (!origin.empty()) text.append(origin).append(": ");
  throw_error(errc::invalid_config, text + msg);
}

// ---- JSON reading -----------------------------------------------------------------------

class Reader {
 public:
  explicit Reader(std::string_view origin) : origin_(origin) {}

  template <class S>
  void read_object(const json& j, const std::string& prefix, S& out) const {
    if (!j.is_object()) {
      if (prefix.empty()) fail(origin_, "the top level must be a JSON object, got "s + j.type_name());
      type_error(prefix, "an object", j);
    }
    for (const auto& item : j.items()) {
      // Not a structured binding: clang before 16 cannot capture one in the lambda below.
      const std::string& key = item.key();
      const json& value = item.value();
      const std::string path = prefix.empty() ? key : prefix + "." + key;
      bool found = false;
      for_each_field<S>([&](const auto& field) {
        if (!found && field.key == key) {
          found = true;
          read(value, path, out.*field.member);
        }
      });
      if (!found) unknown_key<S>(prefix, key, path);
    }
  }

 private:
  template <class T>
  void read(const json& v, const std::string& path, T& out) const {
    if constexpr (std::is_same_v<T, std::string>) {
      // null = "not set", as a Python config dump writes None.
      if (v.is_null()) out.clear();
      else if (v.is_string()) out = v.get<std::string>();
      else type_error(path, "a string", v);
    } else if constexpr (std::is_same_v<T, bool>) {
      if (!v.is_boolean()) type_error(path, "a boolean", v);
      out = v.get<bool>();
    } else if constexpr (std::is_integral_v<T>) {
      if (v.is_number_unsigned()) {
        if (!std::in_range<T>(v.get<std::uint64_t>())) range_error(path, v);
        out = static_cast<T>(v.get<std::uint64_t>());
      } else if (v.is_number_integer()) {
        const auto n = v.get<std::int64_t>();
        if (!std::in_range<T>(n)) range_error(path, v);
        out = static_cast<T>(n);
      } else {
        type_error(path, "an integer", v);
      }
    } else if constexpr (is_duration<T>::value) {
      if (!v.is_number()) type_error(path, "a number (seconds)", v);
      const double s = v.get<double>();
      if (s < 0) fail(origin_, quote(path) + " must not be negative, got " + v.dump());
      if (!(s < std::chrono::duration<double>(T::max()).count())) range_error(path, v);
      out = std::chrono::round<T>(std::chrono::duration<double>(s));
    } else if constexpr (std::is_same_v<T, StorageType>) {
      if (!v.is_string()) type_error(path, "a string (\"file\" or \"memory\")", v);
      const auto& s = v.get_ref<const std::string&>();
      if (s == "file") out = StorageType::file;
      else if (s == "memory") out = StorageType::memory;
      else fail(origin_, quote(path) + " must be \"file\" or \"memory\", got " + quote(s));
    } else if constexpr (std::is_same_v<T, std::vector<std::string>>) {
      if (v.is_string()) {
        out = split_servers(v.get_ref<const std::string&>());
      } else if (v.is_array()) {
        out.clear();
        for (std::size_t i = 0; i < v.size(); ++i) {
          if (!v[i].is_string()) type_error(path + "[" + std::to_string(i) + "]", "a string", v[i]);
          out.emplace_back(trim(v[i].get_ref<const std::string&>()));
        }
      } else {
        type_error(path, "a string or an array of strings", v);
      }
    } else {
      static_assert(is_section<T>);
      read_object(v, path, out);
    }
  }

  [[noreturn]] void type_error(const std::string& path, std::string_view expected, const json& v) const {
    fail(origin_, quote(path) + " must be " + std::string(expected) + ", got " + v.type_name());
  }
  [[noreturn]] void range_error(const std::string& path, const json& v) const {
    fail(origin_, quote(path) + " is out of range, got " + v.dump());
  }

  template <class S>
  [[noreturn]] void unknown_key(const std::string& prefix, const std::string& key, const std::string& path) const {
    // Suggest the nearest known key of the same object when it is an obvious typo.
    const std::size_t limit = key.size() <= 4 ? 1 : 2;
    std::string_view best;
    std::size_t best_distance = limit + 1;
    for_each_field<S>([&](const auto& field) {
      if (const auto d = edit_distance(key, field.key); d < best_distance) {
        best_distance = d;
        best = field.key;
      }
    });
    std::string msg = "unknown key " + quote(path);
    if (!best.empty()) msg += " (did you mean " + quote(prefix.empty() ? std::string(best) : prefix + "." + std::string(best)) + "?)";
    fail(origin_, msg);
  }

  std::string_view origin_;
};

// ---- JSON writing -----------------------------------------------------------------------

template <class S>
json write_object(const S& s);

template <class T>
json write(const T& v) {
  if constexpr (is_duration<T>::value) return std::chrono::duration<double>(v).count();
  else if constexpr (std::is_same_v<T, StorageType>) return v == StorageType::memory ? "memory" : "file";
  else if constexpr (is_section<T>) return write_object(v);
  else return v;
}

template <class S>
json write_object(const S& s) {
  json j = json::object();
  for_each_field<S>([&](const auto& field) { j[std::string(field.key)] = write(s.*field.member); });
  return j;
}

// ---- validation -------------------------------------------------------------------------

class Validator {
 public:
  explicit Validator(std::string_view origin) : origin_(origin) {}

  void run(const Config& c) const {
    if (c.servers.empty()) fail(origin_, "\"servers\" must list at least one server");
    for (std::size_t i = 0; i < c.servers.size(); ++i) {
      if (!is_server_url(c.servers[i]))
        fail(origin_, quote("servers[" + std::to_string(i) + "]") +
                          " must be a nats:// or tls:// URL or host[:port], got " + quote(c.servers[i]));
    }
    if (!c.password.empty() && c.user.empty()) fail(origin_, "\"password\" is set but \"user\" is empty");
    if (c.tls_cert.empty() != c.tls_key.empty())
      fail(origin_, c.tls_cert.empty() ? "\"tls_key\" is set without \"tls_cert\": give both or neither"
                                       : "\"tls_cert\" is set without \"tls_key\": give both or neither");

    positive("connect_timeout", c.connect_timeout);
    positive("reconnect_time_wait", c.reconnect_time_wait);
    positive("ack_wait", c.ack_wait);
    positive("request_timeout", c.request_timeout);
    if (c.publish_timeout < std::chrono::milliseconds::zero())
      fail(origin_, "\"publish_timeout\" must be >= 0 seconds, got " + seconds_text(c.publish_timeout));
    if (c.max_reconnect_attempts < -1)
      fail(origin_, "\"max_reconnect_attempts\" must be -1 (forever) or >= 0, got " + std::to_string(c.max_reconnect_attempts));
    if (c.max_deliver < 1 && c.max_deliver != -1)
      fail(origin_, "\"max_deliver\" must be -1 (unlimited) or >= 1, got " + std::to_string(c.max_deliver));
    at_least("max_ack_pending", c.max_ack_pending, 1);
    at_least("prefetch", c.prefetch, 1);
    at_least("blocking_threads", c.blocking_threads, 1);

    if (!c.inbox_prefix.empty()) subject("inbox_prefix", c.inbox_prefix);
    const std::pair<const char*, const std::string*> subjects[] = {
        {"tasks_subject", &c.tasks_subject},         {"results_subject", &c.results_subject},
        {"events_subject", &c.events_subject},       {"schedules_subject", &c.schedules_subject},
        {"dead_letter_subject", &c.dead_letter_subject}};
    for (const auto& [key, value] : subjects) subject(key, *value);
    // Each subject roots its own space ("<subject>.>"); overlapping ones would mix messages
    // (and the server refuses streams with overlapping subjects).
    for (const auto& [ka, a] : subjects)
      for (const auto& [kb, b] : subjects)
        if (ka != kb && subject_covers(*a, *b) && (*a != *b || std::strcmp(ka, kb) < 0))
          fail(origin_, quote(kb) + " (" + quote(*b) + ") overlaps " + quote(ka) + " (" + quote(*a) +
                            "): each subject needs its own subject space");
    if (!is_token(c.queue_group))
      fail(origin_, "\"queue_group\" must be one token of [A-Za-z0-9_-], got " + quote(c.queue_group));

    stream("tasks_stream", c.tasks_stream);
    stream("events_stream", c.events_stream);
    stream("dead_letter_stream", c.dead_letter_stream);
    bucket("results_bucket", c.results_bucket);
    bucket("schedules_bucket", c.schedules_bucket);
    bucket("task_state_bucket", c.task_state_bucket);
    bucket("workers_bucket", c.workers_bucket);
    if (c.workers_bucket.ttl < std::chrono::seconds(3))
      fail(origin_, "\"workers_bucket.ttl\" must be at least 3 seconds (workers write their key every ttl / 3), got " +
                        seconds_text(c.workers_bucket.ttl));
    distinct({{"tasks_stream", &c.tasks_stream.name},
              {"events_stream", &c.events_stream.name},
              {"dead_letter_stream", &c.dead_letter_stream.name}});
    distinct({{"results_bucket", &c.results_bucket.name},
              {"schedules_bucket", &c.schedules_bucket.name},
              {"task_state_bucket", &c.task_state_bucket.name},
              {"workers_bucket", &c.workers_bucket.name}});
  }

 private:
  template <class D>
  void positive(const std::string& key, D d) const {
    if (d <= D::zero()) fail(origin_, quote(key) + " must be > 0 seconds, got " + seconds_text(d));
  }
  void at_least(const std::string& key, std::int64_t v, std::int64_t min) const {
    if (v < min) fail(origin_, quote(key) + " must be >= " + std::to_string(min) + ", got " + std::to_string(v));
  }
  void between(const std::string& key, std::int64_t v, std::int64_t lo, std::int64_t hi) const {
    if (v < lo || v > hi)
      fail(origin_, quote(key) + " must be between " + std::to_string(lo) + " and " + std::to_string(hi) +
                        ", got " + std::to_string(v));
  }
  // -1 = unlimited; 0 is refused because the server would read it as unlimited too.
  void limit(const std::string& key, std::int64_t v) const {
    if (v < 1 && v != -1) fail(origin_, quote(key) + " must be -1 (unlimited) or >= 1, got " + std::to_string(v));
  }
  void not_negative(const std::string& key, std::chrono::nanoseconds d) const {
    if (d < d.zero()) fail(origin_, quote(key) + " must not be negative, got " + seconds_text(d));
  }
  void subject(const std::string& key, const std::string& s) const {
    if (!is_subject(s))
      fail(origin_, quote(key) + " must be dot-separated tokens of [A-Za-z0-9_-] (no wildcards, spaces or empty tokens), got " + quote(s));
  }
  void resource_name(const std::string& key, const std::string& s) const {
    if (!is_token(s)) fail(origin_, quote(key) + " must be a non-empty name of [A-Za-z0-9_-], got " + quote(s));
  }
  void stream(const std::string& p, const StreamSettings& s) const {
    resource_name(p + ".name", s.name);
    between(p + ".replicas", s.replicas, 1, 5);
    not_negative(p + ".max_age", s.max_age);
    limit(p + ".max_msgs", s.max_msgs);
    limit(p + ".max_bytes", s.max_bytes);
    limit(p + ".max_msg_size", s.max_msg_size);
    positive(p + ".duplicate_window", s.duplicate_window);
    if (s.max_age > s.max_age.zero() && s.duplicate_window > s.max_age)
      fail(origin_, quote(p + ".duplicate_window") + " (" + seconds_text(s.duplicate_window) +
                        " s) must not exceed " + quote(p + ".max_age") + " (" + seconds_text(s.max_age) + " s)");
  }
  void bucket(const std::string& p, const BucketSettings& b) const {
    resource_name(p + ".name", b.name);
    between(p + ".replicas", b.replicas, 1, 5);
    not_negative(p + ".ttl", b.ttl);
    between(p + ".history", b.history, 1, 64);
    limit(p + ".max_value_size", b.max_value_size);
    limit(p + ".max_bytes", b.max_bytes);
  }
  void distinct(std::initializer_list<std::pair<const char*, const std::string*>> names) const {
    for (auto a = names.begin(); a != names.end(); ++a)
      for (auto b = a + 1; b != names.end(); ++b)
        if (*a->second == *b->second)
          fail(origin_, quote(std::string(a->first) + ".name") + " and " + quote(std::string(b->first) + ".name") +
                            " are both " + quote(*a->second) + ": each needs its own name");
  }

  std::string_view origin_;
};

Config from_json(const json& j, Config base, std::string_view origin) {
  Reader(origin).read_object(j, "", base);
  Validator(origin).run(base);
  return base;
}

}  // namespace

bool Config::tls_enabled() const noexcept {
  return tls || !tls_cert.empty() || !tls_key.empty() || !tls_ca.empty() ||
         std::any_of(servers.begin(), servers.end(), [](const std::string& s) {
           const auto url = split_url(s);
           return url && iequals(url->scheme, "tls");
         });
}

void Config::validate() const { Validator("").run(*this); }

Config config_from_json(const nlohmann::json& j, Config base) { return from_json(j, std::move(base), ""); }

Config load_config_file(const std::filesystem::path& path, Config base) {
  const std::string where = path.string();
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec))
    fail("", "config file " + quote(where) + " is a directory");
  std::ifstream in(path, std::ios::binary);
  if (!in) fail("", "cannot open config file " + quote(where) + ": " + std::strerror(errno));
  std::ostringstream text;
  text << in.rdbuf();
  if (in.bad()) fail("", "cannot read config file " + quote(where));
  json j;
  try {
    j = json::parse(text.str());
  } catch (const json::parse_error& e) {
    // e.what() is "[json.exception.parse_error.101] parse error at line L, column C: ...".
    std::string_view msg = e.what();
    if (const auto p = msg.find("] "); p != std::string_view::npos) msg.remove_prefix(p + 2);
    fail("", "config file " + quote(where) + " is not valid JSON: " + std::string(msg));
  }
  return from_json(j, std::move(base), where);
}

Config config_from_env(Config base, const EnvGetter& getenv) {
  const auto get = [&](const char* name) -> std::optional<std::string> {
    std::optional<std::string> v;
    if (getenv) v = getenv(name);
    else if (const char* raw = std::getenv(name)) v = raw;
    if (v && v->empty()) v.reset();  // empty = unset, as shells leave "VAR=" around
    return v;
  };

  if (const auto backend = get("OMNIQ_BACKEND"); backend && *backend != kBackendName)
    fail("", "OMNIQ_BACKEND is " + quote(*backend) + ", but this build only has the \"nats\" backend");
  if (const auto file = get("OMNIQ_CONFIG")) base = load_config_file(*file, std::move(base));

  if (const auto servers = get("NATS_SERVERS")) {
    base.servers = split_servers(*servers);
    if (base.servers.empty()) fail("", "NATS_SERVERS " + quote(*servers) + " lists no server");
  }
  const std::pair<const char*, std::string Config::*> strings[] = {
      {"NATS_USER", &Config::user},         {"NATS_PASSWORD", &Config::password},
      {"NATS_TOKEN", &Config::token},       {"NATS_TLS_CERT", &Config::tls_cert},
      {"NATS_TLS_KEY", &Config::tls_key},   {"NATS_TLS_CA", &Config::tls_ca},
      {"OMNIQ_QUEUE_GROUP", &Config::queue_group}};
  for (const auto& [var, member] : strings)
    if (auto v = get(var)) base.*member = std::move(*v);

  base.validate();
  return base;
}

nlohmann::json config_to_json(const Config& c) { return write_object(c); }

nlohmann::json config_to_json_redacted(const Config& c) {
  json j = config_to_json(c);
  for (const char* key : {"password", "token"})
    if (!j[key].get_ref<const std::string&>().empty()) j[key] = "***";
  // nats://user:pass@host -> nats://user:***@host; nats://token@host -> nats://***@host.
  for (auto& s : j["servers"]) {
    const std::string& url = s.get_ref<const std::string&>();
    const auto parsed = split_url(url);
    if (!parsed || parsed->userinfo.empty()) continue;
    const auto colon = parsed->userinfo.find(':');
    const std::string user = colon == std::string_view::npos ? "" : std::string(parsed->userinfo.substr(0, colon + 1));
    const std::string scheme = parsed->scheme.empty() ? "" : std::string(parsed->scheme) + "://";
    s = scheme + user + "***@" + std::string(parsed->hostport);
  }
  return j;
}

}  // namespace omniq
