// Config: seed defaults, JSON file / environment loading, validation messages, round-trip.
#include <catch2/catch.hpp>

#include <atomic>
#include <fstream>
#include <map>
#include <random>
#include <string>
#include <unistd.h>

#include <nlohmann/json.hpp>

#include "omniq/config.hpp"
#include "omniq/error.hpp"

using namespace std::chrono_literals;
using Catch::Matchers::Contains;
using nlohmann::json;
using omniq::Config;

namespace {

// A fresh directory under the system temp dir, removed with everything in it.
struct TempDir {
  std::filesystem::path path;
  TempDir() {
    static std::atomic<int> counter{0};
    path = std::filesystem::temp_directory_path() /
           ("omniq_config_test_" + std::to_string(::getpid()) + "_" + std::to_string(counter++) + "_" +
            std::to_string(std::random_device{}()));
    std::filesystem::create_directories(path);
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path, ec);
  }
  std::filesystem::path write(const std::string& name, const std::string& text) const {
    const auto file = path / name;
    std::ofstream(file) << text;
    return file;
  }
};

// Runs f, which must throw omniq::Error(invalid_config); returns its message.
template <class F>
std::string config_error(F&& f) {
  try {
    f();
  } catch (const omniq::Error& e) {
    CHECK(e.kind() == omniq::errc::invalid_config);
    return e.what();
  }
  FAIL("no omniq::Error thrown");
  return {};
}

std::string json_error(const json& j) {
  return config_error([&] { omniq::config_from_json(j); });
}

omniq::EnvGetter env(std::map<std::string, std::string> vars) {
  return [vars = std::move(vars)](const std::string& name) -> std::optional<std::string> {
    const auto it = vars.find(name);
    if (it == vars.end()) return std::nullopt;
    return it->second;
  };
}

}  // namespace

TEST_CASE("config defaults match the seed", "[config]") {
  const Config c;
  CHECK(c.servers == std::vector<std::string>{"nats://127.0.0.1:4222"});
  CHECK(c.user.empty());
  CHECK(c.password.empty());
  CHECK(c.token.empty());
  CHECK_FALSE(c.tls);
  CHECK_FALSE(c.tls_enabled());
  CHECK(c.connect_timeout == 2s);
  CHECK(c.reconnect_time_wait == 2s);
  CHECK(c.max_reconnect_attempts == 60);
  CHECK(c.tasks_subject == "omniq.tasks");
  CHECK(c.results_subject == "omniq.results");
  CHECK(c.events_subject == "omniq.events");
  CHECK(c.schedules_subject == "omniq.schedules");
  CHECK(c.queue_group == "omniq_workers");
  CHECK_FALSE(c.verbose);
  CHECK_FALSE(c.pedantic);
  CHECK(c.tasks_stream.name == "OMNIQ_TASKS");
  CHECK(c.tasks_stream.storage == omniq::StorageType::file);
  CHECK(c.events_stream.name == "OMNIQ_EVENTS");
  CHECK(c.events_stream.max_age == std::chrono::hours(24 * 30));
  CHECK(c.events_stream.max_msgs == 10'000'000);
  CHECK(c.results_bucket.name == "omniq_results");
  CHECK(c.results_bucket.ttl == std::chrono::hours(24 * 7));
  CHECK(c.schedules_bucket.name == "omniq_schedules");
  CHECK(c.schedules_bucket.ttl == 0s);
  CHECK(c.task_state_bucket.name == "omniq_tasks");
  CHECK(c.prefetch == 256);
  CHECK(c.task_state_bucket.ttl == 7 * 24h);
  CHECK_NOTHROW(c.validate());
  // The empty JSON object and an empty environment change nothing.
  CHECK(omniq::config_from_json(json::object()) == c);
  CHECK(omniq::config_from_env({}, env({})) == c);
}

TEST_CASE("config loads every key from a JSON file", "[config]") {
  TempDir dir;
  const auto file = dir.write("omniq.json", R"({
    "servers": ["nats://a.example:4222", "tls://b.example:4443"],
    "user": "alice", "password": "s3cret", "token": "tok",
    "tls": true, "tls_cert": "/etc/omniq/cert.pem", "tls_key": "/etc/omniq/key.pem",
    "tls_ca": "/etc/omniq/ca.pem",
    "connect_timeout": 2.5, "reconnect_time_wait": 0.25, "max_reconnect_attempts": -1,
    "verbose": true, "pedantic": true, "name": "worker-7", "inbox_prefix": "_MY_INBOX.w7",
    "tasks_subject": "app.tasks", "results_subject": "app.results", "events_subject": "app.events",
    "schedules_subject": "app.schedules", "dead_letter_subject": "app.dlq",
    "queue_group": "app_workers",
    "tasks_stream": {"name": "APP_TASKS", "replicas": 3, "storage": "memory", "max_age": 86400,
                     "max_msgs": 500, "max_bytes": 1048576, "max_msg_size": 65536,
                     "duplicate_window": 60},
    "events_stream": {"name": "APP_EVENTS", "max_age": 3600.5, "duplicate_window": 0.5},
    "dead_letter_stream": {"name": "APP_DLQ", "replicas": 5},
    "results_bucket": {"name": "app_results", "replicas": 3, "storage": "memory", "ttl": 120,
                       "history": 5, "max_value_size": 4096, "max_bytes": 10000000},
    "schedules_bucket": {"name": "app_schedules", "history": 64},
    "task_state_bucket": {"name": "app_tasks", "ttl": 3600}, "prefetch": 32,
    "ack_wait": 45, "max_deliver": -1, "max_ack_pending": 10, "blocking_threads": 2,
    "request_timeout": 1.5
  })");
  const Config c = omniq::load_config_file(file);

  CHECK(c.servers == std::vector<std::string>{"nats://a.example:4222", "tls://b.example:4443"});
  CHECK(c.user == "alice");
  CHECK(c.password == "s3cret");
  CHECK(c.token == "tok");
  CHECK(c.tls);
  CHECK(c.tls_cert == "/etc/omniq/cert.pem");
  CHECK(c.tls_key == "/etc/omniq/key.pem");
  CHECK(c.tls_ca == "/etc/omniq/ca.pem");
  CHECK(c.connect_timeout == 2500ms);
  CHECK(c.reconnect_time_wait == 250ms);
  CHECK(c.max_reconnect_attempts == -1);
  CHECK(c.verbose);
  CHECK(c.pedantic);
  CHECK(c.name == "worker-7");
  CHECK(c.inbox_prefix == "_MY_INBOX.w7");
  CHECK(c.tasks_subject == "app.tasks");
  CHECK(c.results_subject == "app.results");
  CHECK(c.events_subject == "app.events");
  CHECK(c.schedules_subject == "app.schedules");
  CHECK(c.dead_letter_subject == "app.dlq");
  CHECK(c.queue_group == "app_workers");

  CHECK(c.tasks_stream.name == "APP_TASKS");
  CHECK(c.tasks_stream.replicas == 3);
  CHECK(c.tasks_stream.storage == omniq::StorageType::memory);
  CHECK(c.tasks_stream.max_age == 24h);
  CHECK(c.tasks_stream.max_msgs == 500);
  CHECK(c.tasks_stream.max_bytes == 1048576);
  CHECK(c.tasks_stream.max_msg_size == 65536);
  CHECK(c.tasks_stream.duplicate_window == 60s);
  CHECK(c.events_stream.name == "APP_EVENTS");
  CHECK(c.events_stream.max_age == 3600s + 500ms);
  CHECK(c.events_stream.duplicate_window == 500ms);
  CHECK(c.events_stream.max_msgs == 10'000'000);  // not in the file: default kept
  CHECK(c.dead_letter_stream.name == "APP_DLQ");
  CHECK(c.dead_letter_stream.replicas == 5);

  CHECK(c.results_bucket.name == "app_results");
  CHECK(c.results_bucket.replicas == 3);
  CHECK(c.results_bucket.storage == omniq::StorageType::memory);
  CHECK(c.results_bucket.ttl == 120s);
  CHECK(c.results_bucket.history == 5);
  CHECK(c.results_bucket.max_value_size == 4096);
  CHECK(c.results_bucket.max_bytes == 10'000'000);
  CHECK(c.schedules_bucket.name == "app_schedules");
  CHECK(c.schedules_bucket.history == 64);
  CHECK(c.task_state_bucket.name == "app_tasks");
  CHECK(c.task_state_bucket.ttl == 1h);
  CHECK(c.prefetch == 32);

  CHECK(c.ack_wait == 45s);
  CHECK(c.max_deliver == -1);
  CHECK(c.max_ack_pending == 10);
  CHECK(c.blocking_threads == 2);
  CHECK(c.request_timeout == 1500ms);
}

TEST_CASE("config: partial JSON overrides only the keys given", "[config]") {
  Config base;
  base.user = "from_base";
  base.events_stream.replicas = 3;

  const Config c = omniq::config_from_json(
      json::parse(R"({"connect_timeout": 5, "events_stream": {"max_msgs": 42}, "user": null})"), base);
  CHECK(c.connect_timeout == 5s);
  CHECK(c.events_stream.max_msgs == 42);
  CHECK(c.events_stream.replicas == 3);                     // from base
  CHECK(c.events_stream.max_age == std::chrono::hours(720));  // default
  CHECK(c.events_stream.name == "OMNIQ_EVENTS");
  CHECK(c.user.empty());  // null = unset
  CHECK(c.reconnect_time_wait == 2s);
  CHECK(c.queue_group == "omniq_workers");
  CHECK(c.results_bucket.ttl == std::chrono::hours(168));
}

TEST_CASE("config: servers as a string or an array", "[config]") {
  CHECK(omniq::config_from_json({{"servers", "nats://one:4222"}}).servers ==
        std::vector<std::string>{"nats://one:4222"});
  CHECK(omniq::config_from_json({{"servers", " nats://one:4222, tls://two:4443 ,three:4222,"}}).servers ==
        std::vector<std::string>{"nats://one:4222", "tls://two:4443", "three:4222"});
  CHECK(omniq::config_from_json({{"servers", {"nats://one", "localhost", "nats://u:p@[::1]:4222"}}}).servers ==
        std::vector<std::string>{"nats://one", "localhost", "nats://u:p@[::1]:4222"});

  CHECK_THAT(json_error({{"servers", ""}}), Contains(R"("servers" must list at least one server)"));
  CHECK_THAT(json_error({{"servers", json::array()}}), Contains(R"("servers" must list at least one server)"));
  CHECK_THAT(json_error({{"servers", {"nats://ok:4222", 4222}}}),
             Contains(R"(config: "servers[1]" must be a string, got number)"));
  CHECK_THAT(json_error({{"servers", 4222}}),
             Contains(R"(config: "servers" must be a string or an array of strings, got number)"));
  CHECK_THAT(json_error({{"servers", "http://x:80"}}),
             Contains(R"(config: "servers[0]" must be a nats:// or tls:// URL or host[:port], got "http://x:80")"));
  CHECK_THAT(json_error({{"servers", "nats://host:99999"}}), Contains(R"("servers[0]")"));
  CHECK_THAT(json_error({{"servers", "nats://:4222"}}), Contains(R"("servers[0]")"));
}

TEST_CASE("config: environment overlay", "[config]") {
  TempDir dir;
  const auto file = dir.write("omniq.json", R"({"servers": ["nats://file:4222"], "user": "file_user",
    "queue_group": "file_group", "tasks_stream": {"replicas": 3}})");

  const Config c = omniq::config_from_env({}, env({
                                                  {"OMNIQ_BACKEND", "nats"},
                                                  {"OMNIQ_CONFIG", file.string()},
                                                  {"NATS_SERVERS", "nats://env1:4222,nats://env2:4222"},
                                                  {"NATS_PASSWORD", "pw"},
                                                  {"NATS_TOKEN", ""},  // empty: ignored
                                                  {"NATS_TLS_CA", "/ca.pem"},
                                              }));
  CHECK(c.servers == std::vector<std::string>{"nats://env1:4222", "nats://env2:4222"});  // env beats file
  CHECK(c.user == "file_user");            // file beats default
  CHECK(c.password == "pw");
  CHECK(c.token.empty());
  CHECK(c.queue_group == "file_group");
  CHECK(c.tasks_stream.replicas == 3);
  CHECK(c.tls_ca == "/ca.pem");
  CHECK_FALSE(c.tls);
  CHECK(c.tls_enabled());  // implied by the CA

  const Config all = omniq::config_from_env({}, env({{"NATS_SERVERS", "n1:4222"},
                                                     {"NATS_USER", "u"},
                                                     {"NATS_TOKEN", "t"},
                                                     {"NATS_TLS_CERT", "/c.pem"},
                                                     {"NATS_TLS_KEY", "/k.pem"},
                                                     {"OMNIQ_QUEUE_GROUP", "grp"}}));
  CHECK(all.servers == std::vector<std::string>{"n1:4222"});
  CHECK(all.user == "u");
  CHECK(all.token == "t");
  CHECK(all.tls_cert == "/c.pem");
  CHECK(all.tls_key == "/k.pem");
  CHECK(all.queue_group == "grp");
  CHECK(all.tls_enabled());

  // The base is kept where the environment says nothing.
  Config base;
  base.ack_wait = 7s;
  CHECK(omniq::config_from_env(base, env({{"NATS_USER", "u"}})).ack_wait == 7s);

  // Errors from the environment name the variable or the file.
  CHECK_THAT(config_error([] { omniq::config_from_env({}, env({{"NATS_SERVERS", " , "}})); }),
             Contains(R"(config: NATS_SERVERS " , " lists no server)"));
  CHECK_THAT(config_error([] { omniq::config_from_env({}, env({{"OMNIQ_QUEUE_GROUP", "a.b"}})); }),
             Contains(R"(config: "queue_group" must be one token of [A-Za-z0-9_-], got "a.b")"));
  CHECK_THAT(config_error([&] { omniq::config_from_env({}, env({{"OMNIQ_CONFIG", (dir.path / "nope.json").string()}})); }),
             Contains("nope.json"));
}

TEST_CASE("config: OMNIQ_BACKEND other than nats is rejected", "[config]") {
  CHECK_THAT(config_error([] { omniq::config_from_env({}, env({{"OMNIQ_BACKEND", "redis"}})); }),
             Contains(R"(config: OMNIQ_BACKEND is "redis", but this build only has the "nats" backend)"));
  CHECK_NOTHROW(omniq::config_from_env({}, env({{"OMNIQ_BACKEND", "nats"}})));
  CHECK_NOTHROW(omniq::config_from_env({}, env({{"OMNIQ_BACKEND", ""}})));
}

TEST_CASE("config: unknown keys are named with their path", "[config]") {
  CHECK_THAT(json_error({{"conect_timeout", 2}}),
             Contains(R"(config: unknown key "conect_timeout" (did you mean "connect_timeout"?))"));
  CHECK_THAT(json_error({{"tasks_stream", {{"replica", 3}}}}),
             Contains(R"(config: unknown key "tasks_stream.replica" (did you mean "tasks_stream.replicas"?))"));
  CHECK_THAT(json_error({{"results_bucket", {{"max_age", 3}}}}),
             Contains(R"(config: unknown key "results_bucket.max_age")"));
  const auto far = json_error({{"completely_unrelated", 1}});
  CHECK_THAT(far, Contains(R"(config: unknown key "completely_unrelated")"));
  CHECK_THAT(far, !Contains("did you mean"));
}

TEST_CASE("config: wrong types name the key and the expected type", "[config]") {
  CHECK_THAT(json_error({{"connect_timeout", "2s"}}),
             Contains(R"(config: "connect_timeout" must be a number (seconds), got string)"));
  CHECK_THAT(json_error({{"tls", "yes"}}), Contains(R"(config: "tls" must be a boolean, got string)"));
  CHECK_THAT(json_error({{"user", 5}}), Contains(R"(config: "user" must be a string, got number)"));
  CHECK_THAT(json_error({{"max_deliver", 2.5}}), Contains(R"(config: "max_deliver" must be an integer, got number)"));
  CHECK_THAT(json_error({{"max_deliver", 10'000'000'000LL}}),
             Contains(R"(config: "max_deliver" is out of range, got 10000000000)"));
  CHECK_THAT(json_error({{"tasks_stream", 3}}), Contains(R"(config: "tasks_stream" must be an object, got number)"));
  CHECK_THAT(json_error({{"events_stream", {{"storage", "disk"}}}}),
             Contains(R"(config: "events_stream.storage" must be "file" or "memory", got "disk")"));
  CHECK_THAT(json_error({{"events_stream", {{"storage", 1}}}}),
             Contains(R"(config: "events_stream.storage" must be a string ("file" or "memory"), got number)"));
  CHECK_THAT(json_error(json::array()), Contains("config: the top level must be a JSON object, got array"));
}

TEST_CASE("config: value checks", "[config]") {
  CHECK_THAT(json_error({{"connect_timeout", -1}}), Contains(R"(config: "connect_timeout" must not be negative, got -1)"));
  CHECK_THAT(json_error({{"results_bucket", {{"ttl", -0.5}}}}),
             Contains(R"(config: "results_bucket.ttl" must not be negative, got -0.5)"));
  CHECK_THAT(json_error({{"connect_timeout", 0}}), Contains(R"(config: "connect_timeout" must be > 0 seconds, got 0.0)"));
  CHECK_THAT(json_error({{"tasks_stream", {{"replicas", 7}}}}),
             Contains(R"(config: "tasks_stream.replicas" must be between 1 and 5, got 7)"));
  CHECK_THAT(json_error({{"schedules_bucket", {{"replicas", 0}}}}),
             Contains(R"(config: "schedules_bucket.replicas" must be between 1 and 5, got 0)"));
  CHECK_THAT(json_error({{"results_bucket", {{"history", 65}}}}),
             Contains(R"(config: "results_bucket.history" must be between 1 and 64, got 65)"));
  CHECK_THAT(json_error({{"max_deliver", 0}}), Contains(R"(config: "max_deliver" must be -1 (unlimited) or >= 1, got 0)"));
  CHECK_THAT(json_error({{"max_ack_pending", 0}}), Contains(R"(config: "max_ack_pending" must be >= 1, got 0)"));
  CHECK_THAT(json_error({{"prefetch", 0}}), Contains(R"(config: "prefetch" must be >= 1, got 0)"));
  CHECK_THAT(json_error({{"blocking_threads", 0}}), Contains(R"(config: "blocking_threads" must be >= 1, got 0)"));
  CHECK_THAT(json_error({{"tasks_stream", {{"max_msgs", 0}}}}),
             Contains(R"(config: "tasks_stream.max_msgs" must be -1 (unlimited) or >= 1, got 0)"));
  CHECK_THAT(json_error({{"events_stream", {{"max_age", 60}, {"duplicate_window", 120}}}}),
             Contains(R"(config: "events_stream.duplicate_window" (120.0 s) must not exceed "events_stream.max_age" (60.0 s))"));
  CHECK_NOTHROW(omniq::config_from_json({{"events_stream", {{"max_age", 60}, {"duplicate_window", 60}}}}));
}

TEST_CASE("config: subjects, names and queue group", "[config]") {
  CHECK_THAT(json_error({{"tasks_subject", "omniq.*"}}),
             Contains(R"(config: "tasks_subject" must be dot-separated tokens of [A-Za-z0-9_-] (no wildcards, spaces or empty tokens), got "omniq.*")"));
  CHECK_THAT(json_error({{"events_subject", "omniq.my events"}}), Contains(R"("events_subject" must be dot-separated tokens)"));
  CHECK_THAT(json_error({{"results_subject", "omniq..results"}}), Contains(R"("results_subject" must be dot-separated tokens)"));
  CHECK_THAT(json_error({{"schedules_subject", "omniq.>"}}), Contains(R"("schedules_subject" must be dot-separated tokens)"));
  CHECK_THAT(json_error({{"dead_letter_subject", ""}}), Contains(R"("dead_letter_subject" must be dot-separated tokens)"));
  CHECK_THAT(json_error({{"events_subject", "omniq.tasks.events"}}),
             Contains(R"(config: "events_subject" ("omniq.tasks.events") overlaps "tasks_subject" ("omniq.tasks"))"));
  CHECK_THAT(json_error({{"queue_group", "workers a"}}),
             Contains(R"(config: "queue_group" must be one token of [A-Za-z0-9_-], got "workers a")"));
  CHECK_THAT(json_error({{"tasks_stream", {{"name", "MY.TASKS"}}}}),
             Contains(R"(config: "tasks_stream.name" must be a non-empty name of [A-Za-z0-9_-], got "MY.TASKS")"));
  CHECK_THAT(json_error({{"results_bucket", {{"name", ""}}}}), Contains(R"("results_bucket.name" must be a non-empty name)"));
  CHECK_THAT(json_error({{"dead_letter_stream", {{"name", "OMNIQ_TASKS"}}}}),
             Contains(R"(config: "tasks_stream.name" and "dead_letter_stream.name" are both "OMNIQ_TASKS")"));
  CHECK_NOTHROW(omniq::config_from_json({{"tasks_subject", "a-b.c_d.E9"}, {"queue_group", "q-1_x"}}));
}

TEST_CASE("config: credentials and TLS pairs", "[config]") {
  CHECK_THAT(json_error({{"tls_cert", "/c.pem"}}),
             Contains(R"(config: "tls_cert" is set without "tls_key": give both or neither)"));
  CHECK_THAT(json_error({{"tls_key", "/k.pem"}}),
             Contains(R"(config: "tls_key" is set without "tls_cert": give both or neither)"));
  CHECK_THAT(json_error({{"password", "pw"}}), Contains(R"(config: "password" is set but "user" is empty)"));

  Config c;
  CHECK_FALSE(c.tls_enabled());
  c.servers = {"tls://secure:4443"};
  CHECK(c.tls_enabled());
  c = Config{};
  c.tls_cert = "/c.pem";
  c.tls_key = "/k.pem";
  CHECK(c.tls_enabled());
  CHECK_NOTHROW(c.validate());
}

TEST_CASE("config: file errors name the file", "[config]") {
  TempDir dir;
  const auto missing = dir.path / "missing.json";
  CHECK_THAT(config_error([&] { omniq::load_config_file(missing); }),
             Contains("config: cannot open config file \"" + missing.string() + "\": No such file or directory"));

  const auto bad = dir.write("bad.json", "{\n  \"user\": \"x\",\n}\n");
  const auto msg = config_error([&] { omniq::load_config_file(bad); });
  CHECK_THAT(msg, Contains("config: config file \"" + bad.string() + "\" is not valid JSON: parse error at line 3, column 1"));

  const auto typo = dir.write("typo.json", R"({"tasks_stream": {"replica": 3}})");
  CHECK_THAT(config_error([&] { omniq::load_config_file(typo); }),
             Contains("config: " + typo.string() + R"(: unknown key "tasks_stream.replica")"));

  CHECK_THAT(config_error([&] { omniq::load_config_file(dir.path); }), Contains("is a directory"));
}

TEST_CASE("config: config_to_json round-trips", "[config]") {
  Config c;
  c.servers = {"nats://a:1", "b:2"};
  c.user = "u";
  c.password = "p";
  c.token = "t";
  c.tls = true;
  c.tls_cert = "/c";
  c.tls_key = "/k";
  c.tls_ca = "/ca";
  c.connect_timeout = 1234ms;
  c.reconnect_time_wait = 1ms;
  c.max_reconnect_attempts = 0;
  c.verbose = true;
  c.name = "n";
  c.inbox_prefix = "_IN";
  c.tasks_subject = "x.tasks";
  c.queue_group = "g";
  c.tasks_stream.replicas = 3;
  c.tasks_stream.storage = omniq::StorageType::memory;
  c.tasks_stream.duplicate_window = 1234567891ns;
  c.events_stream.max_age = std::chrono::hours(24 * 90);
  c.dead_letter_stream.max_bytes = 1 << 30;
  c.results_bucket.ttl = 1500ms;
  c.results_bucket.history = 10;
  c.schedules_bucket.max_value_size = 1 << 20;
  c.ack_wait = 90s;
  c.max_deliver = -1;
  c.request_timeout = 250ms;
  c.validate();

  const json j = omniq::config_to_json(c);
  CHECK(j["connect_timeout"] == 1.234);
  CHECK(j["tasks_stream"]["storage"] == "memory");
  CHECK(j["results_bucket"]["ttl"] == 1.5);
  CHECK(j["servers"] == json{"nats://a:1", "b:2"});
  CHECK(j["password"] == "p");
  CHECK(omniq::config_from_json(j) == c);
  CHECK(omniq::config_from_json(json::parse(j.dump())) == c);  // through text, too
  CHECK(omniq::config_from_json(omniq::config_to_json(Config{})) == Config{});
}

TEST_CASE("config: redacted dump hides secrets", "[config]") {
  Config c;
  c.servers = {"nats://bob:hunter2@a:4222", "nats://sometoken@b:4222", "c:4222"};
  c.user = "bob";
  c.password = "hunter2";
  c.token = "sometoken";
  const json r = omniq::config_to_json_redacted(c);
  CHECK(r["password"] == "***");
  CHECK(r["token"] == "***");
  CHECK(r["user"] == "bob");
  CHECK(r["servers"] == json{"nats://bob:***@a:4222", "nats://***@b:4222", "c:4222"});
  CHECK(r.dump().find("hunter2") == std::string::npos);
  CHECK(r.dump().find("sometoken") == std::string::npos);
  // Empty secrets stay empty: "***" would suggest one is set.
  const json plain = omniq::config_to_json_redacted(Config{});
  CHECK(plain["password"] == "");
  CHECK(plain["token"] == "");
}
