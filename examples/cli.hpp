// What the example programs share: a small command-line parser, configuration from --config
// and the environment, logging setup, stop-on-signal, and one main() wrapper that turns errors
// into a message and an exit code. Copy it along with an example you use as a template.
#pragma once

#include <charconv>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <iostream>
#include <map>
#include <optional>
#include <set>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include <boost/asio/post.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/use_future.hpp>
#include <nlohmann/json.hpp>
#include <spdlog/cfg/env.h>
#include <spdlog/spdlog.h>

#include <omniq/omniq.hpp>

namespace example {

// Exit codes shared by the examples (sysexits.h's EX_USAGE for a bad command line).
inline constexpr int exit_ok = 0;
inline constexpr int exit_failure = 1;
inline constexpr int exit_usage = 64;

// A bad command line: reported with a pointer to --help, exit code 64.
struct UsageError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// The command line: `--name value`, `--name=value`, flags, and positional arguments.
class Args {
 public:
  // `valued`: options that take a value; `flags`: options that do not. --help is always known.
  Args(int argc, char** argv, std::set<std::string> valued, std::set<std::string> flags) {
    flags.insert("help");
    bool positional_only = false;
    for (int i = 1; i < argc; ++i) {
      std::string arg = argv[i];
      if (positional_only || arg.size() < 2 || arg[0] != '-' || (arg[1] != '-' && arg != "-h")) {
        positional_.push_back(arg);  // "-" and negative numbers are values too
        continue;
      }
      if (arg == "--") {
        positional_only = true;
        continue;
      }
      if (arg == "-h") arg = "--help";
      std::string name = arg.substr(2);
      std::optional<std::string> value;
      if (const auto eq = name.find('='); eq != std::string::npos) {
        value = name.substr(eq + 1);
        name.resize(eq);
      }
      if (flags.count(name)) {
        if (value) throw UsageError("option --" + name + " takes no value");
        flags_.insert(name);
      } else if (valued.count(name)) {
        if (!value) {
          if (i + 1 >= argc) throw UsageError("option --" + name + " needs a value");
          value = argv[++i];
        }
        values_[name] = *value;
      } else {
        throw UsageError("unknown option --" + name);
      }
    }
  }

  bool flag(const std::string& name) const { return flags_.count(name) > 0; }
  std::optional<std::string> value(const std::string& name) const {
    auto it = values_.find(name);
    return it == values_.end() ? std::nullopt : std::optional<std::string>(it->second);
  }
  std::string value_or(const std::string& name, std::string fallback) const {
    return value(name).value_or(std::move(fallback));
  }
  // An integer option within [min, max], or `fallback` when absent.
  long long integer(const std::string& name, long long fallback, long long min, long long max) const {
    const auto text = value(name);
    if (!text) return fallback;
    long long v = 0;
    const auto [end, ec] = std::from_chars(text->data(), text->data() + text->size(), v);
    if (ec != std::errc{} || end != text->data() + text->size() || v < min || v > max)
      throw UsageError("--" + name + " must be an integer from " + std::to_string(min) + " to " + std::to_string(max) +
                       ", got \"" + *text + "\"");
    return v;
  }
  // A duration in seconds (fractions allowed), > 0 unless `allow_zero`.
  std::optional<omniq::Duration> seconds(const std::string& name, bool allow_zero = false) const {
    const auto text = value(name);
    if (!text) return std::nullopt;
    char* end = nullptr;
    const double s = std::strtod(text->c_str(), &end);
    if (text->empty() || *end != '\0' || !(s >= 0) || (s == 0 && !allow_zero) || s > 1e9)
      throw UsageError("--" + name + " must be a number of seconds" + (allow_zero ? " (0 or more)" : " above 0") +
                       ", got \"" + *text + "\"");
    return std::chrono::duration_cast<omniq::Duration>(std::chrono::duration<double>(s));
  }
  const std::vector<std::string>& positional() const noexcept { return positional_; }

 private:
  std::map<std::string, std::string> values_;
  std::set<std::string> flags_;
  std::vector<std::string> positional_;
};

// JSON given on the command line, e.g. the task's arguments.
inline nlohmann::json parse_json(std::string_view what, const std::string& text) {
  try {
    return nlohmann::json::parse(text);
  } catch (const nlohmann::json::parse_error& e) {
    throw UsageError(std::string(what) + " is not valid JSON (" + text + "): " + e.what());
  }
}

// Task arguments: a JSON array, or a single JSON value taken as the only argument.
inline nlohmann::json parse_args(const std::string& text, std::string_view what = "json-args") {
  nlohmann::json args = parse_json(what, text);
  return args.is_array() ? args : nlohmann::json::array({args});
}

// The task `<func> [json-args]` named by the positional arguments, on --queue (default
// "default"); checked (Task::validate) by the caller once it set the rest.
inline omniq::Task task_from_command_line(const Args& args) {
  const auto& positional = args.positional();
  if (positional.empty()) throw UsageError("missing <func>");
  if (positional.size() > 2) throw UsageError("too many arguments: expected <func> [json-args]");
  omniq::Task task{.func = positional[0]};
  if (positional.size() > 1) task.args = parse_args(positional[1]);
  task.queue_name = args.value_or("queue", "default");
  return task;
}

// "a,b,c" -> {"a", "b", "c"}; empty items are dropped.
inline std::vector<std::string> split_list(const std::string& text) {
  std::vector<std::string> out;
  std::size_t start = 0;
  while (start <= text.size()) {
    const auto comma = std::min(text.find(',', start), text.size());
    if (comma > start) out.push_back(text.substr(start, comma - start));
    start = comma + 1;
  }
  return out;
}

// The configuration: the file named by --config (instead of OMNIQ_CONFIG), then NATS_SERVERS,
// NATS_USER, ... from the environment on top (omniq::config_from_env).
inline omniq::Config load_config(const Args& args) {
  const auto file = args.value("config");
  if (!file) return omniq::config_from_env();
  const omniq::Config base = omniq::load_config_file(*file);
  return omniq::config_from_env(base, [](const std::string& name) -> std::optional<std::string> {
    if (name == "OMNIQ_CONFIG") return std::nullopt;
    const char* v = std::getenv(name.c_str());
    return v ? std::optional<std::string>(v) : std::nullopt;
  });
}

// "2.5 s", or "1.23 ms" under a second.
inline std::string format_seconds(omniq::Duration d) {
  const double s = std::chrono::duration<double>(d).count();
  char text[32];
  if (s < 1) std::snprintf(text, sizeof text, "%.3g ms", s * 1000);
  else std::snprintf(text, sizeof text, "%.6g s", s);
  return text;
}

// Log level `fallback` unless SPDLOG_LEVEL says otherwise (e.g. SPDLOG_LEVEL=debug).
inline void setup_logging(spdlog::level::level_enum fallback) {
  spdlog::set_level(fallback);
  spdlog::cfg::load_env_levels();
}

// Calls `stop` on the backend's io thread at the first SIGINT or SIGTERM, while it lives.
class StopOnSignal {
 public:
  StopOnSignal(omniq::NatsBackend& backend, std::function<void(int)> stop)
      : signals_(backend.get_executor(), SIGINT, SIGTERM) {
    signals_.async_wait([stop = std::move(stop)](boost::system::error_code ec, int signal) {
      if (!ec) stop(signal);
    });
  }
  // The set belongs to the io thread: it is cancelled there.
  ~StopOnSignal() {
    try {
      boost::asio::post(signals_.get_executor(), boost::asio::use_future([this] {
                          boost::system::error_code ignored;
                          signals_.cancel(ignored);
                        })).get();
    } catch (...) {
    }
  }

 private:
  boost::asio::signal_set signals_;
};

// Runs `body` with the parsed command line and returns its exit status. Prints `usage` for
// --help; turns a UsageError (or an omniq error about bad input) into a message and exit
// status 64, and any other error into a message and `failure_status`.
inline int run_main(int argc, char** argv, std::string_view usage, std::set<std::string> valued,
                    std::set<std::string> flags, const std::function<int(const Args&)>& body,
                    int failure_status = exit_failure) {
  std::string program = argc > 0 ? argv[0] : "example";
  if (const auto slash = program.rfind('/'); slash != std::string::npos) program.erase(0, slash + 1);
  try {
    const Args args(argc, argv, std::move(valued), std::move(flags));
    if (args.flag("help")) {
      std::cout << usage;
      return exit_ok;
    }
    return body(args);
  } catch (const UsageError& e) {
    std::cerr << program << ": " << e.what() << " (see " << program << " --help)\n";
    return exit_usage;
  } catch (const omniq::Error& e) {
    // A bad configuration, name or cron expression is bad input too.
    std::cerr << program << ": " << e.what() << "\n";
    switch (e.kind()) {
      case omniq::errc::invalid_config:
      case omniq::errc::invalid_name:
      case omniq::errc::invalid_argument:
      case omniq::errc::invalid_cron:
        return exit_usage;
      default:
        return failure_status;
    }
  } catch (const std::exception& e) {
    std::cerr << program << ": " << e.what() << "\n";
    return failure_status;
  }
}

}  // namespace example
