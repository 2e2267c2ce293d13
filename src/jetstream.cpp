#include "omniq/detail/jetstream.hpp"

#include <algorithm>
#include <charconv>

#include <boost/asio/experimental/concurrent_channel.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "omniq/error.hpp"

namespace omniq::detail {

using nlohmann::json;

namespace {

std::uint64_t to_u64(std::optional<std::string_view> text) {
  std::uint64_t v = 0;
  if (text) std::from_chars(text->data(), text->data() + text->size(), v);
  return v;
}

[[noreturn]] void throw_js_error(const JsError& e, const std::string& what) {
  errc kind = errc::nats_error;
  switch (e.err_code) {
    case 10077:  // maximum messages exceeded
    case 10078:  // maximum bytes exceeded
    case 10047:  // insufficient resources
      kind = errc::stream_full;
      break;
    case 10054:  // message size exceeds maximum allowed
      kind = errc::payload_too_large;
      break;
    case 10076:
    case 10039:
      kind = errc::jetstream_unavailable;
      break;
    default:
      if (e.code == 503) kind = errc::jetstream_unavailable;
      if (e.code == 408) kind = errc::timeout;
  }
  std::string text = what + ": " + e.description;
  if (e.err_code != 0) text += " (JetStream error " + std::to_string(e.err_code) + ")";
  throw_error(kind, text);
}

// The settings of a durable pull consumer omniq uses for a queue lane.
// g++ 12 cannot build JSON initializer lists with string literals inside a coroutine
// ("array used as initializer"): JSON bodies are built in plain functions like these.
json durable_config(const DurableConsumer& d) {
  return {{"durable_name", d.name},
          {"filter_subject", d.filter_subject},
          {"ack_policy", "explicit"},
          {"deliver_policy", "all"},
          {"replay_policy", "instant"},
          {"ack_wait", std::chrono::duration_cast<std::chrono::nanoseconds>(d.ack_wait).count()},
          {"max_deliver", d.max_deliver},
          {"max_ack_pending", d.max_ack_pending}};
}

// The error a status-only reply stands for (no responders, a timeout status); nullopt when the
// reply has a body to read.
std::optional<JsError> status_error(const Reply& reply) {
  if (reply.status == 503)
    return JsError{503, 0, "no responders (no stream or JetStream service answers this subject)"};
  if (reply.status >= 400 && reply.data.empty())
    return JsError{reply.status, 0, reply.description.empty() ? "status " + std::to_string(reply.status)
                                                               : reply.description};
  return std::nullopt;
}

// The error of a parsed API reply, or nullopt when it carries none.
std::optional<JsError> error_in(const json& j) {
  if (!j.is_object() || !j.contains("error")) return std::nullopt;
  const json& e = j["error"];
  return JsError{e.value("code", 0), e.value("err_code", 0), e.value("description", std::string("unknown error"))};
}

// An API reply parsed once: its error (status or body) is thrown as `what`, except one whose
// err_code is `tolerated` (non-zero), for which nullopt is returned; otherwise the JSON object.
std::optional<json> api_answer(const Reply& reply, const std::string& what, int tolerated = 0) {
  if (auto e = status_error(reply)) throw_js_error(*e, what);
  json j = json::parse(reply.data, nullptr, false);
  if (auto e = error_in(j)) {
    if (tolerated != 0 && e->err_code == tolerated) return std::nullopt;
    throw_js_error(*e, what);
  }
  if (j.is_discarded() || !j.is_object())
    throw_error(errc::nats_error, what + ": unexpected answer \"" + reply.data.substr(0, 200) + "\"");
  return j;
}

}  // namespace

std::optional<JsError> js_error(const Reply& reply) {
  if (auto e = status_error(reply)) return e;
  if (reply.data.empty() || reply.data.front() != '{') return std::nullopt;
  return error_in(json::parse(reply.data, nullptr, false));
}

std::optional<PubAck> parse_pub_ack(const Reply& reply, const std::string& what, bool allow_conflict) {
  // An ack is either {"stream","seq",...} or {"error":{...}}.
  const auto j = api_answer(reply, what, allow_conflict ? kErrWrongLastSequence : 0);
  if (!j) return std::nullopt;
  if (!j->contains("seq"))
    throw_error(errc::nats_error, what + ": unexpected acknowledgement \"" + reply.data.substr(0, 200) + "\"");
  return PubAck{j->value("stream", std::string()), j->value("seq", std::uint64_t{0}), j->value("duplicate", false)};
}

asio::awaitable<BatchFailures> publish_batch(Connection& c, std::vector<Request> requests, std::size_t window,
                                             std::function<std::string(std::size_t)> what) {
  const std::vector<RequestOutcome> outcomes = co_await request_all(c, std::move(requests), window);
  BatchFailures out;
  for (std::size_t i = 0; i < outcomes.size(); ++i) {
    try {
      if (outcomes[i].error) std::rethrow_exception(outcomes[i].error);
      parse_pub_ack(outcomes[i].reply, what(i));
    } catch (...) {
      auto failure = std::current_exception();
      if (!out.first) out.first = failure;
      if (!out.worst || (is_transient(out.worst) && !is_transient(failure))) out.worst = failure;
      out.failed.push_back(i);
    }
  }
  co_return out;
}

asio::awaitable<std::vector<RequestOutcome>> request_all(Connection& c, std::vector<Request> requests,
                                                         std::size_t window) {
  const std::size_t n = requests.size();
  auto outcomes = std::make_shared<std::vector<RequestOutcome>>(n);
  if (n == 0) co_return std::move(*outcomes);
  window = std::max<std::size_t>(1, std::min(window, n));
  // Completions report their index here; the channel holds `window` so sends never block,
  // and receiving from it orders each outcome's write before its read.
  using Done = asio::experimental::concurrent_channel<void(boost::system::error_code, std::size_t)>;
  auto done = std::make_shared<Done>(co_await asio::this_coro::executor, window);
  std::size_t next = 0;
  auto launch = [&](std::size_t i) {
    c.async_request(std::move(requests[i]), [outcomes, done, i](std::exception_ptr ep, Reply reply) {
      (*outcomes)[i] = RequestOutcome{std::move(ep), std::move(reply)};
      done->try_send(boost::system::error_code{}, i);
    });
  };
  while (next < window) launch(next++);
  for (std::size_t completed = 0; completed < n; ++completed) {
    co_await done->async_receive(asio::use_awaitable);
    if (next < n) launch(next++);
  }
  co_return std::move(*outcomes);
}

asio::awaitable<json> api_request(Connection& c, std::string api, json body, std::string what) {
  Request req{.subject = "$JS.API." + api, .data = body.is_null() ? std::string() : body.dump()};
  const Reply reply = co_await c.async_request(std::move(req), asio::use_awaitable);
  co_return std::move(*api_answer(reply, what));
}

asio::awaitable<std::optional<PubAck>> js_publish(Connection& c, std::string subject, std::string data,
                                                  Headers headers, std::string what,
                                                  bool allow_conflict) {
  Request req{.subject = std::move(subject), .data = std::move(data), .headers = std::move(headers)};
  const Reply reply = co_await c.async_request(std::move(req), asio::use_awaitable);
  co_return parse_pub_ack(reply, what, allow_conflict);
}

namespace {
std::optional<StoredMessage> to_stored(const Reply& reply, const std::string& what) {
  if (reply.status == 404) return std::nullopt;
  if (reply.status != 0) {
    if (auto e = js_error(reply)) throw_js_error(*e, what);
  }
  StoredMessage m;
  m.data = reply.data;
  m.headers = reply.headers;
  m.subject = std::string(m.headers.find("Nats-Subject").value_or(""));
  m.sequence = to_u64(m.headers.find("Nats-Sequence"));
  return m;
}
}  // namespace

asio::awaitable<std::optional<StoredMessage>> direct_get_last(Connection& c, std::string stream, std::string subject) {
  Request req{.subject = "$JS.API.DIRECT.GET." + stream + "." + subject};
  const Reply reply = co_await c.async_request(std::move(req), asio::use_awaitable);
  co_return to_stored(reply, "reading " + subject + " from " + stream);
}

std::optional<std::string> decode_base64(std::string_view text) {
  auto value = [](char ch) -> int {
    if (ch >= 'A' && ch <= 'Z') return ch - 'A';
    if (ch >= 'a' && ch <= 'z') return ch - 'a' + 26;
    if (ch >= '0' && ch <= '9') return ch - '0' + 52;
    if (ch == '+') return 62;
    if (ch == '/') return 63;
    return -1;
  };
  while (!text.empty() && text.back() == '=') text.remove_suffix(1);
  if (text.size() % 4 == 1) return std::nullopt;
  std::string out;
  out.reserve(text.size() * 3 / 4);
  std::uint32_t bits = 0;
  int count = 0;
  for (char ch : text) {
    const int v = value(ch);
    if (v < 0) return std::nullopt;
    bits = (bits << 6) | static_cast<std::uint32_t>(v);
    if (++count == 4) {
      out.push_back(static_cast<char>((bits >> 16) & 0xFF));
      out.push_back(static_cast<char>((bits >> 8) & 0xFF));
      out.push_back(static_cast<char>(bits & 0xFF));
      bits = 0;
      count = 0;
    }
  }
  if (count == 2) out.push_back(static_cast<char>((bits >> 4) & 0xFF));
  if (count == 3) {
    out.push_back(static_cast<char>((bits >> 10) & 0xFF));
    out.push_back(static_cast<char>((bits >> 2) & 0xFF));
  }
  return out;
}

Headers parse_header_block(std::string_view block) {
  Headers out;
  bool first = true;
  while (!block.empty()) {
    const auto end = block.find("\r\n");
    const std::string_view line = block.substr(0, end);
    block = end == std::string_view::npos ? std::string_view() : block.substr(end + 2);
    if (first) {  // "NATS/1.0[ status description]"
      first = false;
      continue;
    }
    const auto colon = line.find(':');
    if (line.empty() || colon == std::string_view::npos) continue;
    std::string_view value = line.substr(colon + 1);
    while (!value.empty() && value.front() == ' ') value.remove_prefix(1);
    out.push_back(Header{std::string(line.substr(0, colon)), std::string(value)});
  }
  return out;
}

namespace {
json last_by_subject(const std::string& subject) { return json{{"last_by_subj", subject}}; }
}  // namespace

asio::awaitable<std::optional<StoredMessage>> leader_get_last(Connection& c, std::string stream, std::string subject) {
  const std::string what = "reading " + subject + " from " + stream + " through its leader";
  Request req{.subject = "$JS.API.STREAM.MSG.GET." + stream, .data = last_by_subject(subject).dump()};
  const Reply reply = co_await c.async_request(std::move(req), asio::use_awaitable);
  const std::optional<json> answer = api_answer(reply, what, kErrNoMessageFound);
  if (!answer) co_return std::nullopt;
  const json* message = answer->contains("message") ? &(*answer)["message"] : nullptr;
  if (!message || !message->is_object())
    throw_error(errc::nats_error, what + ": unexpected answer \"" + reply.data.substr(0, 200) + "\"");
  StoredMessage m;
  m.subject = message->value("subject", std::string());
  m.sequence = message->value("seq", std::uint64_t{0});
  std::optional<std::string> data = decode_base64(message->value("data", std::string()));
  std::optional<std::string> headers = decode_base64(message->value("hdrs", std::string()));
  if (!data || !headers) throw_error(errc::nats_error, what + ": the answer's data or headers are not base64");
  m.data = std::move(*data);
  m.headers = parse_header_block(*headers);
  co_return m;
}

asio::awaitable<std::optional<StoredMessage>> direct_get_next(Connection& c, std::string stream, std::string filter,
                                                              std::uint64_t sequence) {
  Request req{.subject = "$JS.API.DIRECT.GET." + stream,
              .data = json{{"seq", sequence}, {"next_by_subj", filter}}.dump()};
  const Reply reply = co_await c.async_request(std::move(req), asio::use_awaitable);
  co_return to_stored(reply, "reading " + filter + " from " + stream);
}

asio::awaitable<bool> delete_message(Connection& c, std::string stream, std::uint64_t sequence) {
  Request req{.subject = "$JS.API.STREAM.MSG.DELETE." + stream, .data = json{{"seq", sequence}}.dump()};
  const Reply reply = co_await c.async_request(std::move(req), asio::use_awaitable);
  if (auto e = js_error(reply)) {
    if (e->err_code == 10057 || e->code == 404) co_return false;  // no message found
    throw_js_error(*e, "deleting message " + std::to_string(sequence) + " from " + stream);
  }
  co_return true;
}

asio::awaitable<std::vector<JsMessage>> scan(Connection& c, std::string stream, std::string filter,
                                             bool last_per_subject) {
  ReaderOptions options{.stream = stream, .filter = std::move(filter),
                        .from = last_per_subject ? ReadFrom::last_per_subject : ReadFrom::all};
  const Reader reader = co_await create_reader(c, std::move(options));
  std::uint64_t remaining = reader.num_pending;
  std::vector<JsMessage> out;
  std::exception_ptr failure;
  try {
    while (remaining > 0) {
      FetchRequest pull{.stream = stream, .consumer = reader.name,
                        .batch = static_cast<int>(std::min<std::uint64_t>(remaining, 1000)), .no_wait = true};
      auto got = co_await c.async_fetch(std::move(pull), asio::use_awaitable);
      if (got.empty()) break;
      remaining = got.back().pending;
      for (auto& m : got) out.push_back(std::move(m));
    }
  } catch (...) {
    failure = std::current_exception();
  }
  co_await delete_reader(c, stream, reader.name);  // it also expires by itself
  if (failure) std::rethrow_exception(failure);
  co_return out;
}

namespace {
// The consumer's info ($JS.API.CONSUMER.INFO), nullopt when it does not exist.
asio::awaitable<std::optional<json>> consumer_info(Connection& c, std::string stream, std::string name) {
  Request req{.subject = "$JS.API.CONSUMER.INFO." + stream + "." + name};
  const Reply reply = co_await c.async_request(std::move(req), asio::use_awaitable);
  co_return api_answer(reply, "reading consumer " + name + " of " + stream, kErrConsumerNotFound);
}

// Whether an existing consumer already has every setting omniq would give it.
bool has_settings(const json& info, const DurableConsumer& d) {
  if (!info.contains("config") || !info["config"].is_object()) return false;
  const json& have = info["config"];
  const json want = durable_config(d);
  for (const auto& [key, value] : want.items())
    if (!have.contains(key) || have[key] != value) return false;
  return true;
}
}  // namespace

asio::awaitable<void> ensure_consumer(Connection& c, DurableConsumer d) {
  // Looked at first: a consumer as configured needs nothing, so a least-privilege user (who
  // may read consumer info but not create consumers) never asks for what it may not do.
  std::optional<json> existing;
  bool looked = false;
  try {
    existing = co_await consumer_info(c, d.stream, d.name);
    looked = true;
  } catch (const Error& e) {
    if (e.kind() != errc::permission_denied) throw;  // without the info, creating may still be allowed
  }
  if (existing && has_settings(*existing, d)) co_return;
  json body = {{"stream_name", d.stream}, {"config", durable_config(d)}};
  std::string api = "CONSUMER.DURABLE.CREATE." + d.stream + "." + d.name;
  std::string what = (existing ? "updating consumer " : "creating consumer ") + d.name + " on " + d.stream;
  std::string denied;
  try {
    co_await api_request(c, std::move(api), std::move(body), std::move(what));
    co_return;
  } catch (const Error& e) {
    if (e.kind() != errc::permission_denied || !looked) throw;
    denied = e.what();
  }
  if (!existing)
    throw_error(errc::permission_denied, "consumer " + d.name + " of stream " + d.stream +
                                             " does not exist and this user may not create it (provision it with an "
                                             "admin user first): " + denied);
  // It exists with other settings (ack_wait, max_ack_pending) that this user may not change.
  c.log().warn("omniq: consumer {} of {} keeps the settings it was provisioned with: {}", d.name, d.stream, denied);
}

asio::awaitable<std::optional<ConsumerState>> consumer_state(Connection& c, std::string stream, std::string name) {
  std::optional<json> j = co_await consumer_info(c, stream, name);
  if (!j) co_return std::nullopt;
  co_return consumer_counts(*j, stream, name);
}

// ---- ephemeral readers ----------------------------------------------------------------------

namespace {
json reader_body(const ReaderOptions& o) {
  json config = {{"ack_policy", "none"},
                 {"replay_policy", "instant"},
                 {"mem_storage", true},
                 {"num_replicas", 1},
                 {"inactive_threshold", std::chrono::duration_cast<std::chrono::nanoseconds>(o.inactive_threshold).count()}};
  if (!o.filter.empty()) config["filter_subject"] = o.filter;
  switch (o.from) {
    case ReadFrom::all: config["deliver_policy"] = "all"; break;
    case ReadFrom::new_only: config["deliver_policy"] = "new"; break;
    case ReadFrom::last_per_subject: config["deliver_policy"] = "last_per_subject"; break;
    case ReadFrom::start_time:
      config["deliver_policy"] = "by_start_time";
      config["opt_start_time"] = format_timestamp(o.start_time);
      break;
    case ReadFrom::start_sequence:
      config["deliver_policy"] = "by_start_sequence";
      config["opt_start_seq"] = std::max<std::uint64_t>(1, o.start_sequence);
      break;
  }
  return {{"stream_name", o.stream}, {"config", std::move(config)}};
}

json purge_body(std::uint64_t keep_from) { return {{"seq", keep_from}}; }
}  // namespace

asio::awaitable<Reader> create_reader(Connection& c, ReaderOptions o) {
  Request req{.subject = "$JS.API.CONSUMER.CREATE." + o.stream, .data = reader_body(o).dump(), .timeout = o.timeout};
  const Reply reply = co_await c.async_request(std::move(req), asio::use_awaitable);
  const std::string what = "creating a reader on " + o.stream + (o.filter.empty() ? "" : " for " + o.filter);
  const json j = std::move(*api_answer(reply, what));
  if (!j.contains("name"))
    throw_error(errc::nats_error, what + ": unexpected answer \"" + reply.data.substr(0, 200) + "\"");
  Reader r{.stream = o.stream, .name = j["name"].get<std::string>(),
           .num_pending = j.value("num_pending", std::uint64_t{0})};
  if (j.contains("delivered") && j["delivered"].is_object())
    r.start_after = j["delivered"].value("stream_seq", std::uint64_t{0});
  co_return r;
}

asio::awaitable<bool> delete_reader(Connection& c, std::string stream, std::string name) {
  Request req{.subject = "$JS.API.CONSUMER.DELETE." + stream + "." + name};
  bool deleted = false;
  try {
    const Reply reply = co_await c.async_request(std::move(req), asio::use_awaitable);
    deleted = !js_error(reply).has_value();
  } catch (const Error&) {
  }
  co_return deleted;
}

asio::awaitable<std::uint64_t> purge_below(Connection& c, std::string stream, std::uint64_t keep_from) {
  if (keep_from <= 1) co_return 0;  // nothing is below sequence 1 ("seq": 0 would purge everything)
  std::string api = "STREAM.PURGE." + stream;
  std::string what = "purging " + stream + " below sequence " + std::to_string(keep_from);
  const json j = co_await api_request(c, std::move(api), purge_body(keep_from), std::move(what));
  co_return j.value("purged", std::uint64_t{0});
}


}  // namespace omniq::detail
