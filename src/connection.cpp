#include "omniq/detail/connection.hpp"
#include "omniq/detail/fetch_table.hpp"
#include "omniq/detail/request_table.hpp"
#include "omniq/detail/violation.hpp"
#include "omniq/detail/server_version.hpp"
#include "omniq/detail/socket_loop.hpp"

#include <algorithm>
#include <charconv>
#include <cstdint>
#include <condition_variable>
#include <iterator>
#include <mutex>
#include <unordered_map>
#include <unordered_set>

#include <boost/asio/error.hpp>
#include <boost/asio/steady_timer.hpp>

#include "nats_util.hpp"

namespace omniq::detail {

namespace {
using SteadyClock = std::chrono::steady_clock;
constexpr auto kSweepInterval = std::chrono::milliseconds(25);

bool subject_is_publishable(std::string_view s) {
  if (s.empty() || s.front() == '.' || s.back() == '.') return false;
  char prev = 0;
  for (unsigned char c : s) {
    if (c <= 0x20 || c == 0x7F) return false;  // the server closes the connection on these
    if (c == '.' && prev == '.') return false;  // empty token: matches no stream
    prev = static_cast<char>(c);
  }
  return true;
}
Headers read_headers(natsMsg* msg) {
  Headers out;
  const char** keys = nullptr;
  int count = 0;
  if (natsMsgHeader_Keys(msg, &keys, &count) == NATS_OK) {
    for (int i = 0; i < count; ++i) {
      const char** values = nullptr;
      int nvalues = 0;
      if (natsMsgHeader_Values(msg, keys[i], &values, &nvalues) == NATS_OK) {
        for (int j = 0; j < nvalues; ++j) out.push_back({keys[i], values[j]});
        free(values);
      }
    }
    free(keys);
  }
  return out;
}

template <class T>
bool to_number(std::string_view text, T& out) {
  auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), out);
  return ec == std::errc{} && ptr == text.data() + text.size();
}

std::string slot_key(std::string_view stream, std::string_view consumer) {
  std::string key(stream);
  key += '.';
  key += consumer;
  return key;
}

// ---- permission violations (parsed in src/violation.cpp) ----------------------------------
constexpr std::string_view kPullSubjectPrefix = "$JS.API.CONSUMER.MSG.NEXT.";
constexpr std::size_t kMaxViolationsLogged = 256;  // distinct texts logged at error level

// The user as error messages name it.
std::string describe_user(const Config& c) {
  if (!c.user.empty()) return "user \"" + c.user + "\"";
  if (!c.token.empty()) return "the user of the configured token";
  if (!c.tls_cert.empty()) return "the user of client certificate " + c.tls_cert;
  return "this connection's user";
}

}  // namespace

bool parse_ack_subject(std::string_view ack, JsMessage& into) {
  constexpr std::string_view prefix = "$JS.ACK.";
  if (ack.substr(0, prefix.size()) != prefix) return false;
  std::vector<std::string_view> t;
  for (std::size_t pos = prefix.size();;) {
    const auto dot = ack.find('.', pos);
    t.push_back(ack.substr(pos, dot == std::string_view::npos ? std::string_view::npos : dot - pos));
    if (dot == std::string_view::npos) break;
    pos = dot + 1;
  }
  // Old form: stream consumer delivered sseq cseq ts pending (7 tokens); the newer one adds
  // domain and account hash in front (and a random token at the end).
  std::size_t base = 0;
  if (t.size() == 7) base = 0;
  else if (t.size() >= 9) base = 2;
  else return false;
  into.stream = std::string(t[base]);
  into.consumer = std::string(t[base + 1]);
  return to_number(t[base + 2], into.delivered) && to_number(t[base + 3], into.stream_sequence) &&
         to_number(t[base + 4], into.consumer_sequence) && to_number(t[base + 5], into.timestamp_ns) &&
         to_number(t[base + 6], into.pending);
}

// State shared between the Connection and nats.c's callback threads. nats.c callbacks hold
// their own shared_ptr (freed in the subscription's completion and the closed callback), so
// the state outlives any callback still running after close.
struct ConnectionState : std::enable_shared_from_this<ConnectionState> {
  using Requests = RequestTable<ReplyHandler>;
  using Pending = Requests::Pending;

  std::shared_ptr<spdlog::logger> logger;

  std::mutex mu;
  Requests pending;  // guarded by mu
  bool open = false;                                   // guarded by mu
  std::uint64_t next_id = 1;                           // guarded by mu

  ConnectionPtr conn;  // destroyed last: members go in reverse order
  JsCtxPtr js;
  SubscriptionPtr mux;
  std::string inbox_base;  // "<inbox prefix>.<nuid>." — the reply subject is this + id
  std::atomic<std::int64_t> max_payload{0};
  std::atomic<bool> closing{false};
  std::chrono::milliseconds request_timeout{5000};
  int blocking_in_flight = 0;  // guarded by mu: blocking nats.c calls using the handles
  std::condition_variable blocking_idle;

  // Permission violations (on_permission_violation).
  std::string who;                                     // the user, for messages; set before connecting
  std::uint64_t unmatched_violations = 0;              // guarded by mu: none of our requests matched
  std::string last_unmatched_violation;                // guarded by mu
  std::unordered_set<std::string> violations_logged;   // guarded by mu: texts logged at error level

  // Requests and publishes made during one turn of the io executor go out together at the
  // end of it (send_outbox), with one socket write (SocketLoop::flush_here) instead of one
  // each: docs/architecture.md, the outbox.
  struct Outgoing {
    std::uint64_t id = 0;  // the pending request's, 0 for a plain publish
    std::string subject;
    std::string reply;
    std::string data;
    MsgPtr msg;  // only when there are headers
  };
  // What a request (`reply` set) or plain publish sends. Throws what nats.c would refuse:
  // payload_too_large over the server's max_payload (headers counted as nats.c encodes
  // them), a header nats.c cannot add.
  Outgoing outgoing(std::uint64_t id, std::string subject, std::string reply, std::string data,
                    const Headers& headers) const {
    std::size_t bytes = data.size();
    for (const auto& h : headers) bytes += h.name.size() + h.value.size() + 4;  // "name: value\r\n"
    if (!headers.empty()) bytes += 12;                                           // "NATS/1.0\r\n", CRLF
    if (const auto limit = max_payload.load(); limit > 0 && bytes > static_cast<std::size_t>(limit))
      throw_error(errc::payload_too_large, "message on " + subject + " is " + std::to_string(bytes) +
                                               " bytes (data + headers), over the server's max_payload of " +
                                               std::to_string(limit) + " bytes");
    // A message object only when there are headers: without, nats.c publishes straight from
    // our buffers (no allocation, nothing for its garbage-collector thread).
    MsgPtr msg;
    if (!headers.empty()) {
      natsMsg* raw = nullptr;
      check(natsMsg_Create(&raw, subject.c_str(), reply.empty() ? nullptr : reply.c_str(), data.data(),
                           static_cast<int>(data.size())),
            "creating a message on " + subject);
      msg.reset(raw);
      for (const auto& h : headers)
        if (natsMsgHeader_Add(msg.get(), h.name.c_str(), h.value.c_str()) != NATS_OK)
          throw_error(errc::invalid_argument,
                      "header \"" + h.name + "\" on " + subject + ": " + nats_error_text(NATS_ERR));
    }
    return Outgoing{id, std::move(subject), std::move(reply), std::move(data), std::move(msg)};
  }
  std::mutex out_mu;
  std::vector<Outgoing> outbox;  // guarded by out_mu

  // One send at a time: with an io_context run by several threads, two sends (or close's)
  // must not write their batches side by side, or a later one could overtake.
  std::mutex send_mu;
  bool flush_each_turn = true;  // Config::send_asap; false leaves the writes to nats.c's flusher
  SocketLoop loop;              // nats.c's socket reads and writes

  // The handles are released only when nothing can use them any more: the last holder of
  // the state may be a nats.c callback, a blocking call or a request completing. The socket
  // loop stops first; the handle members then go in reverse order (subscription, JetStream
  // context, connection).
  ~ConnectionState() {
    loop.stop();  // no read event may run into a destroyed connection
  }

  // Pulls: one active per consumer ("<stream>.<consumer>"), the rest wait in order.
  struct Fetch {
    FetchHandler handler;
    std::vector<JsMessage> got;
    int batch = 0;
    std::function<void(JsMessage&&)> on_message;  // streaming pulls
    int received = 0;
    std::shared_ptr<const void> tag;  // FetchRequest::tag, kept alive (the table compares its address)
  };
  using Fetches = FetchTable<Fetch, std::pair<FetchRequest, FetchHandler>>;
  Fetches fetches;  // guarded by mu

  static void complete(Pending&& p, std::exception_ptr ep, Reply reply) {
    std::move(p.handler)(std::move(ep), std::move(reply));
  }

  static void complete_fetch(Fetch&& f, std::exception_ptr ep) {
    std::move(f.handler)(std::move(ep), std::move(f.got));
  }

  // Sends a pull request, or queues it behind the consumer's active pull.
  void start_fetch(FetchRequest request, FetchHandler handler);

  // Starts the next waiting pull of `key`, if any (caller does not hold mu).
  void start_next_fetch(const std::string& key) {
    std::optional<std::pair<FetchRequest, FetchHandler>> next;
    {
      std::lock_guard lock(mu);
      next = fetches.next(key);
    }
    if (!next) return;
    start_fetch(std::move(next->first), std::move(next->second));
  }

  void finish_fetch(const std::string& key, Fetch&& f, std::exception_ptr ep) {
    complete_fetch(std::move(f), std::move(ep));
    start_next_fetch(key);
  }

  std::optional<Pending> take(std::uint64_t id) {
    std::lock_guard lock(mu);
    return pending.take(id);
  }

  // Adds `o` to the outbox; the first one of a turn schedules the send on `io`.
  void queue(const asio::any_io_executor& io, Outgoing o) {
    bool first = false;
    {
      std::lock_guard lock(out_mu);
      first = outbox.empty();
      outbox.push_back(std::move(o));
    }
    if (first) asio::post(io, [self = shared_from_this()] { self->send_outbox(); });
  }

  // Publishes what was queued (see outbox), in order. A request whose publish fails completes
  // with the error; a plain publish that fails is logged (an ack or progress signal lost that
  // way only means a redelivery).
  void send_outbox() {
    std::lock_guard sending(send_mu);
    std::vector<Outgoing> batch;
    {
      std::lock_guard lock(out_mu);
      batch.swap(outbox);
    }
    if (batch.empty()) return;
    SocketLoop::flushing_here = flush_each_turn;
    write(batch);  // into nats.c's buffer
    SocketLoop::flushing_here = false;
    if (flush_each_turn) loop.flush_here();  // one send for the turn
  }

  // Never throws: it also runs in close. An item that cannot be handled
  // is completed with the error (a request) or logged (a plain publish).
  void write(std::vector<Outgoing>& batch) noexcept {
    for (auto& o : batch) {
      try {
        write_one(o);
      } catch (const std::exception& e) {
        if (auto p = o.id ? take(o.id) : std::nullopt)
          complete(std::move(*p), std::current_exception(), {});
        else
          logger->error("omniq: a publish on {} was not sent: {}", o.subject, e.what());
      } catch (...) {
        logger->error("omniq: a publish on {} was not sent", o.subject);
      }
    }
  }

  void write_one(Outgoing& o) {
    const int size = static_cast<int>(o.data.size());
    const natsStatus s = o.msg           ? natsConnection_PublishMsg(conn.get(), o.msg.get())
                         : o.reply.empty() ? natsConnection_Publish(conn.get(), o.subject.c_str(), o.data.data(), size)
                                           : natsConnection_PublishRequest(conn.get(), o.subject.c_str(), o.reply.c_str(),
                                                                           o.data.data(), size);
    if (s == NATS_OK) return;
    if (o.id == 0) {
      logger->log(s == NATS_CONNECTION_CLOSED ? spdlog::level::debug : spdlog::level::warn,
                  "omniq: a publish on {} was not sent: {}", o.subject, nats_error_text(s));
      return;
    }
    const std::string text = nats_error_text(s);
    auto error = std::make_exception_ptr(Error(errc_from_status(s, text), "publishing on " + o.subject + ": " + text));
    if (auto p = take(o.id)) complete(std::move(*p), std::move(error), {});  // else completed by close or timeout
  }

  void fail_all(errc kind, const std::string& why) {
    std::vector<Pending> failed;
    Fetches::Taken pulls;
    {
      std::lock_guard lock(mu);
      failed = pending.take_all();
      pulls = fetches.take_all();
    }
    for (auto& p : failed)
      complete(std::move(p), std::make_exception_ptr(Error(kind, "request on " + p.subject + ": " + why)), {});
    fail_pulls(std::move(pulls), kind, why);
  }

  // Completes every pull of `pulls` with the error `kind` (the waiting ones are not started).
  static void fail_pulls(Fetches::Taken pulls, errc kind, const std::string& why) {
    auto error = [&](const std::string& key) {
      return std::make_exception_ptr(Error(kind, "pull from consumer " + key + ": " + why));
    };
    for (auto& [key, f] : pulls.active) complete_fetch(std::move(f), error(key));
    for (auto& [key, w] : pulls.waiting) std::move(w.second)(error(key), std::vector<JsMessage>{});
  }

  void expire(SteadyClock::time_point now) {
    std::vector<Pending> expired;
    std::vector<std::pair<std::string, Fetch>> expired_fetches;
    {
      std::lock_guard lock(mu);
      expired_fetches = fetches.take_expired(now);
      expired = pending.take_expired(now);
    }
    for (auto& [key, f] : expired_fetches) {
      // Messages already received are returned; a pull that got nothing is a timeout.
      auto error = f.received == 0 ? std::make_exception_ptr(Error(
                                       errc::timeout, "no answer to a pull from consumer " + key + " in time"))
                                 : nullptr;
      finish_fetch(key, std::move(f), error);
    }
    for (auto& p : expired) {
      auto subject = p.subject;
      complete(std::move(p),
               std::make_exception_ptr(Error(errc::timeout, "no reply to request on " + subject +
                                                                " within the request timeout")),
               {});
    }
  }

  // --- nats.c callbacks: never throw, never resume a coroutine here. ---

  static void on_reply(natsConnection*, natsSubscription*, natsMsg* raw, void* closure) noexcept {
    MsgPtr msg(raw);
    auto* self = static_cast<std::shared_ptr<ConnectionState>*>(closure)->get();
    try {
      if (const char* ack = natsMsg_GetReply(msg.get()); ack && std::string_view(ack).starts_with("$JS.ACK.")) {
        self->on_delivery(msg.get(), ack);
        return;
      }
      std::string_view subject = natsMsg_GetSubject(msg.get());
      const auto dot = subject.rfind('.');
      std::uint64_t id = 0;
      if (dot == std::string_view::npos) return;
      auto [ptr, ec] = std::from_chars(subject.data() + dot + 1, subject.data() + subject.size(), id);
      if (ec != std::errc{}) return;
      if (self->on_fetch_status(id, msg.get())) return;
      auto p = self->take(id);
      if (!p) return;  // timed out or failed already
      complete(std::move(*p), nullptr, to_reply(msg.get()));
    } catch (const std::exception& e) {
      self->logger->error("omniq: dropping a reply that could not be handled: {}", e.what());
    } catch (...) {
      self->logger->error("omniq: dropping a reply that could not be handled");
    }
  }

  // A consumer delivery: it belongs to the active pull of its consumer.
  void on_delivery(natsMsg* raw, const char* ack) {
    JsMessage m;
    if (!parse_ack_subject(ack, m)) return;
    m.subject = natsMsg_GetSubject(raw);
    m.reply = ack;
    if (const char* d = natsMsg_GetData(raw)) m.data.assign(d, static_cast<std::size_t>(natsMsg_GetDataLength(raw)));
    m.headers = read_headers(raw);
    const std::string key = slot_key(m.stream, m.consumer);
    std::optional<Fetch> done;
    std::function<void(JsMessage&&)> stream_to;
    bool orphan = false;
    {
      std::lock_guard lock(mu);
      if (Fetch* f = fetches.active(key); f == nullptr) {
        orphan = true;
      } else {
        ++f->received;
        if (f->on_message) stream_to = f->on_message;
        else f->got.push_back(std::move(m));
        if (f->received >= f->batch) done = fetches.take_active(key);
      }
    }
    if (orphan) {
      // A delivery for a pull that already ended (timed out): hand it back at once rather
      // than let it wait for ack_wait.
      natsConnection_PublishString(conn.get(), ack, "-NAK");
      logger->debug("omniq: returned a late delivery from consumer {}", key);
      return;
    }
    if (stream_to) stream_to(std::move(m));
    if (done) finish_fetch(key, std::move(*done), nullptr);
  }

  // A status message ending a pull (404 no messages, 408 request expired, 409 ...).
  bool on_fetch_status(std::uint64_t id, natsMsg* raw) {
    {
      std::lock_guard lock(mu);
      if (!fetches.is_pull(id)) return false;  // an ordinary reply: not copied twice
    }
    const Reply status = to_reply(raw);
    if (status.status == 100) return true;  // idle heartbeat
    std::optional<std::pair<std::string, Fetch>> taken;
    {
      std::lock_guard lock(mu);
      taken = fetches.take_by_id(id);
    }
    if (!taken) return true;
    auto& [key, f] = *taken;
    std::exception_ptr error;
    if (status.status != 404 && status.status != 408) {
      errc kind = status.status == 503 ? errc::jetstream_unavailable : errc::nats_error;
      error = std::make_exception_ptr(Error(kind, "pull from consumer " + key + " refused: " +
                                                      std::to_string(status.status) + " " + status.description));
    }
    const bool got_some = f.received > 0;
    finish_fetch(key, std::move(f), got_some ? nullptr : error);
    return true;
  }

  static Reply to_reply(natsMsg* msg) {
    Reply r;
    r.subject = natsMsg_GetSubject(msg);
    if (const char* d = natsMsg_GetData(msg)) r.data.assign(d, static_cast<std::size_t>(natsMsg_GetDataLength(msg)));
    r.headers = read_headers(msg);
    if (auto s = r.headers.find("Status")) std::from_chars(s->data(), s->data() + s->size(), r.status);
    if (natsMsg_IsNoResponders(msg)) r.status = 503;
    if (auto d = r.headers.find("Description")) r.description = std::string(*d);
    return r;
  }

  static void on_mux_complete(void* closure) noexcept {
    delete static_cast<std::shared_ptr<ConnectionState>*>(closure);
  }

  static void on_disconnected(natsConnection*, void* closure) noexcept {
    auto* self = static_cast<ConnectionState*>(closure);
    if (self->closing.load()) return;  // our own close, not an outage
    self->logger->warn("omniq: disconnected from NATS; reconnecting");
  }
  static void on_reconnected(natsConnection* nc, void* closure) noexcept {
    char url[256] = {0};
    natsConnection_GetConnectedUrl(nc, url, sizeof url);
    static_cast<ConnectionState*>(closure)->logger->info("omniq: reconnected to {}", url);
  }
  static void on_async_error(natsConnection* nc, natsSubscription*, natsStatus s, void* closure) noexcept {
    auto* self = static_cast<ConnectionState*>(closure);
    try {
      // nats.c 3.4.1 sets the server's text, when there is one, as this thread's last error
      // for the handler (and clears it after).
      const char* last = nats_GetLastError(nullptr);
      std::string text = last != nullptr ? last : "";
      if (s == NATS_NOT_PERMITTED) {
        if (text.empty() && nc != nullptr && natsConnection_GetLastError(nc, &last) == NATS_NOT_PERMITTED && last)
          text = last;
        self->on_permission_violation(text);
        return;
      }
      self->logger->error("omniq: asynchronous NATS error: {}{}", natsStatus_GetText(s),
                          text.empty() ? std::string() : ": " + text);
    } catch (...) {
      // Nothing may escape into nats.c.
    }
  }

  void on_permission_violation(const std::string& server_text);
  static void on_closed(natsConnection*, void* closure) noexcept {
    auto* holder = static_cast<std::shared_ptr<ConnectionState>*>(closure);
    (*holder)->logger->debug("omniq: NATS connection closed");
    delete holder;
  }
};

// A permission violation fails at once, with errc::permission_denied, what is waiting for an
// answer that will never come: the requests and pulls published on the refused subject, or
// everything when the refused subject is our reply inbox. It is logged once per distinct text.
// JetStream API violations no request matched are counted for blocking nats.c calls (HandleLease).
void ConnectionState::on_permission_violation(const std::string& server_text) {
  const std::optional<Violation> v = parse_violation(server_text);
  if (!v) {
    logger->error("omniq: the NATS server refused an operation of {}: {}", who, server_text);
    return;
  }
  const std::string why = describe_violation(*v, who, server_text);
  std::vector<Pending> requests;
  Fetches::Taken pulls;
  bool replies_denied = false;
  bool first = false;
  {
    std::lock_guard lock(mu);
    if (v->kind == Violation::subscription) {
      replies_denied = v->matches(inbox_base + "*");
    } else if (v->kind == Violation::reply) {
      replies_denied = v->subject.starts_with(inbox_base);  // every request uses this reply prefix
    } else {
      requests = pending.take_if([&v](const Pending& p) { return v->matches(p.subject); });
      if (v->subject.starts_with(kPullSubjectPrefix))
        pulls = fetches.take_if(
            [&v](const std::string& key) { return v->matches(std::string(kPullSubjectPrefix) + key); });
    }
    // Blocking calls (stream and bucket admin) are JetStream API requests of nats.c's own.
    if (requests.empty() && pulls.size() == 0 && !replies_denied && v->subject.starts_with("$JS.API.")) {
      ++unmatched_violations;
      last_unmatched_violation = why;
    }
    first = violations_logged.size() < kMaxViolationsLogged && violations_logged.insert(server_text).second;
  }
  const std::size_t failed = requests.size() + pulls.size();
  const std::string note = replies_denied ? "; no reply can reach this connection"
                           : failed > 0   ? "; failed " + std::to_string(failed) + " pending operation(s)"
                                          : "";
  if (first) logger->error("omniq: {}{}", why, note);
  else logger->debug("omniq: {}{}", why, note);
  for (auto& p : requests) complete(std::move(p), std::make_exception_ptr(Error(errc::permission_denied, why)), {});
  fail_pulls(std::move(pulls), errc::permission_denied, why);
  if (replies_denied)
    fail_all(errc::permission_denied,
             why + "; replies to this connection arrive on \"" + inbox_base +
                 "*\": set inbox_prefix to a prefix the user may subscribe to (\"<prefix>.>\")");
}

void ConnectionState::start_fetch(FetchRequest request, FetchHandler handler) {
  const std::string key = slot_key(request.stream, request.consumer);
  auto fail = [&](errc kind, const std::string& msg) {
    std::move(handler)(std::make_exception_ptr(Error(kind, msg)), std::vector<JsMessage>{});
  };
  std::uint64_t id = 0;
  {
    std::lock_guard lock(mu);
    if (!open) return fail(errc::closed, "pull from consumer " + key + ": the backend was closed");
    if (fetches.busy(key)) {
      const void* tag = request.tag.get();
      fetches.wait(key, tag, {std::move(request), std::move(handler)});
      return;
    }
    id = next_id++;
    const auto wait = request.no_wait ? request_timeout : request.expires + request_timeout;
    const void* tag = request.tag.get();
    fetches.activate(key, id, SteadyClock::now() + wait, tag,
                     Fetch{std::move(handler), {}, std::max(1, request.batch), std::move(request.on_message), 0,
                           std::move(request.tag)});
  }
  std::string body = "{\"batch\":" + std::to_string(std::max(1, request.batch));
  if (request.no_wait) body += ",\"no_wait\":true";
  else body += ",\"expires\":" + std::to_string(to_ns(request.expires));
  body += "}";
  const std::string subject = "$JS.API.CONSUMER.MSG.NEXT." + key;
  const std::string reply = inbox_base + std::to_string(id);
  const natsStatus s = natsConnection_PublishRequest(conn.get(), subject.c_str(), reply.c_str(), body.data(),
                                                     static_cast<int>(body.size()));
  if (s != NATS_OK) {
    std::optional<std::pair<std::string, Fetch>> f;
    {
      std::lock_guard lock(mu);
      f = fetches.take_by_id(id);
    }
    if (f)
      finish_fetch(key, std::move(f->second),
                          std::make_exception_ptr(Error(errc_from_status(s, nats_error_text(s)),
                                                        "pull from consumer " + key + ": " + nats_error_text(s))));
  }
}

Connection::Connection(asio::any_io_executor io, Config config, std::shared_ptr<spdlog::logger> logger)
    : io_(std::move(io)),
      config_(std::move(config)),
      logger_(std::move(logger)),
      pool_(static_cast<std::size_t>(std::max(1, config_.blocking_threads))),
      admin_(1) {}

Connection::~Connection() {
  close_blocking();
  pool_.join();
  admin_.join();
}

namespace {

struct SweepTimer {
  // Expires requests whose deadline passed; one timer for all requests is cheaper than one each.
  static void arm(std::shared_ptr<asio::steady_timer> timer, std::weak_ptr<ConnectionState> weak) {
    timer->expires_after(kSweepInterval);
    timer->async_wait([timer, weak](boost::system::error_code ec) {
      auto state = weak.lock();
      if (ec || !state) return;
      {
        std::lock_guard lock(state->mu);
        if (!state->open) return;
      }
      state->expire(SteadyClock::now());
      arm(timer, weak);
    });
  }
};

// A subscription the user may not make is refused after the fact, by an -ERR that arrives
// before the flush's PONG. Without the reply inbox every request would time out: say so now.
void throw_if_inbox_denied(natsConnection* nc, const ConnectionState& state) {
  const char* text = nullptr;
  if (natsConnection_GetLastError(nc, &text) != NATS_NOT_PERMITTED || text == nullptr) return;
  const std::optional<Violation> v = parse_violation(text);
  if (!v || v->kind != Violation::subscription || !v->matches(state.inbox_base + "*")) return;
  throw_error(errc::permission_denied,
              describe_violation(*v, state.who, text) + "; replies to omniq's requests arrive there: set inbox_prefix "
              "to a prefix the user may subscribe to (permissions: subscribe allow \"<prefix>.>\")");
}

std::string servers_text(const Config& c) {
  std::string out;
  for (const auto& s : c.servers) out += (out.empty() ? "" : ", ") + s;
  return out;
}

}  // namespace

void Connection::connect_blocking() {
  std::lock_guard lifecycle(lifecycle_mu_);
  if (state_.load()) return;  // connected, or reconnecting by itself
  auto state = std::make_shared<ConnectionState>();
  state->request_timeout = config_.request_timeout;
  state->logger = logger_;

  natsOptions* raw_opts = nullptr;
  check(natsOptions_Create(&raw_opts), "creating NATS options");
  OptionsPtr opts(raw_opts);

  // Set before nats.c's threads exist: its error handler reads them.
  state->who = describe_user(config_);
  {
    // One wildcard inbox subscription (made below) serves every request's reply.
    InboxPtr inbox;
    check(natsInbox_Create(out(inbox)), "creating an inbox");
    std::string nuid = inbox.get();
    nuid = nuid.substr(nuid.rfind('.') + 1);
    const std::string prefix = config_.inbox_prefix.empty() ? "_INBOX" : config_.inbox_prefix;
    state->inbox_base = prefix + "." + nuid + ".";
  }

  std::vector<const char*> urls;
  for (const auto& s : config_.servers) urls.push_back(s.c_str());
  check(natsOptions_SetServers(opts.get(), urls.data(), static_cast<int>(urls.size())), "servers");
  if (!config_.user.empty() || !config_.password.empty())
    check(natsOptions_SetUserInfo(opts.get(), config_.user.c_str(), config_.password.c_str()), "user/password");
  if (!config_.token.empty()) check(natsOptions_SetToken(opts.get(), config_.token.c_str()), "token");
  const bool tls = config_.tls_enabled();
  if (tls) {
    check(natsOptions_SetSecure(opts.get(), true), "enabling TLS");
    if (!config_.tls_ca.empty())
      check(natsOptions_LoadCATrustedCertificates(opts.get(), config_.tls_ca.c_str()),
            "loading tls_ca \"" + config_.tls_ca + "\"");
    if (!config_.tls_cert.empty())
      check(natsOptions_LoadCertificatesChain(opts.get(), config_.tls_cert.c_str(), config_.tls_key.c_str()),
            "loading tls_cert \"" + config_.tls_cert + "\" / tls_key \"" + config_.tls_key + "\"");
  }
  check(natsOptions_SetTimeout(opts.get(), to_ms(config_.connect_timeout)), "connect_timeout");
  check(natsOptions_SetReconnectWait(opts.get(), to_ms(config_.reconnect_time_wait)), "reconnect_time_wait");
  check(natsOptions_SetMaxReconnect(opts.get(), config_.max_reconnect_attempts), "max_reconnect_attempts");
  check(natsOptions_SetVerbose(opts.get(), config_.verbose), "verbose");
  check(natsOptions_SetPedantic(opts.get(), config_.pedantic), "pedantic");
  check(natsOptions_SetName(opts.get(), config_.name.c_str()), "name");
  // Requests carry our work: with send_asap each goes out at once (a 1 ms flusher delay
  // would cap latency-bound callers); without, nats.c coalesces writes (bulk throughput).
  check(natsOptions_SetSendAsap(opts.get(), config_.send_asap), "send_asap");
  // Socket I/O through omniq's poll thread; each io turn's publishes are written together.
  state->flush_each_turn = config_.send_asap;
  check(natsOptions_SetEventLoop(opts.get(), &state->loop, &SocketLoop::attach, &SocketLoop::read,
                                 &SocketLoop::write, &SocketLoop::detach),
        "event loop");
  if (!config_.inbox_prefix.empty())
    check(natsOptions_SetCustomInboxPrefix(opts.get(), config_.inbox_prefix.c_str()), "inbox_prefix");
  check(natsOptions_SetDisconnectedCB(opts.get(), &ConnectionState::on_disconnected, state.get()), "callbacks");
  check(natsOptions_SetReconnectedCB(opts.get(), &ConnectionState::on_reconnected, state.get()), "callbacks");
  check(natsOptions_SetErrorHandler(opts.get(), &ConnectionState::on_async_error, state.get()), "callbacks");
  auto* closed_holder = new std::shared_ptr<ConnectionState>(state);
  check(natsOptions_SetClosedCB(opts.get(), &ConnectionState::on_closed, closed_holder), "callbacks");

  natsConnection* nc = nullptr;
  natsStatus s = natsConnection_Connect(&nc, opts.get());
  if (s != NATS_OK) {
    delete closed_holder;  // nats.c never calls back for a connection that was not made
    std::string text = nats_error_text(s);
    auto kind = errc_from_status(s, text);
    std::string msg;
    switch (kind) {
      case errc::auth_failed: msg = "NATS server at " + servers_text(config_) + " refused the credentials: " + text; break;
      case errc::tls_error: msg = "TLS connection to " + servers_text(config_) + " failed: " + text; break;
      default:
        kind = errc::connection_failed;
        msg = "cannot connect to NATS at " + servers_text(config_) + " within connect_timeout " +
              std::to_string(config_.connect_timeout.count()) + " ms: " + text;
        // With TLS 1.3 a server that requires a client certificate drops the connection only
        // after the handshake, which nats.c reports as a missing PONG.
        if (config_.tls_enabled() && config_.tls_cert.empty() && text.find("PONG") != std::string::npos)
          msg += " (the server closed the TLS connection; it may require a client certificate: set tls_cert and tls_key)";
    }
    throw_error(kind, msg);
  }
  state->conn.reset(nc);
  auto cleanup_on_error = [&] {
    state->closing = true;  // not an outage: no reconnect warning
    state->loop.close_connection(nc);  // the handles go with the state
    state->loop.stop();
  };
  try {
    state->max_payload = natsConnection_GetMaxPayload(nc);

    // The reply inbox first: a user who may not subscribe to it learns that at once, before
    // any request waits in vain for its reply.
    auto* mux_holder = new std::shared_ptr<ConnectionState>(state);
    s = natsConnection_Subscribe(out(state->mux), nc, (state->inbox_base + "*").c_str(), &ConnectionState::on_reply,
                                 mux_holder);
    if (s != NATS_OK) {
      delete mux_holder;
      throw_nats(s, "subscribing to the reply inbox " + state->inbox_base + "*");
    }
    natsSubscription_SetOnCompleteCB(state->mux.get(), &ConnectionState::on_mux_complete, mux_holder);
    check(natsSubscription_SetPendingLimits(state->mux.get(), -1, -1), "reply inbox limits");
    check(natsConnection_FlushTimeout(nc, to_ms(config_.request_timeout)), "registering the reply inbox");
    throw_if_inbox_denied(nc, *state);

    jsOptions jsopts;
    check(jsOptions_Init(&jsopts), "JetStream options");
    jsopts.Wait = to_ms(config_.request_timeout);
    check(natsConnection_JetStream(out(state->js), nc, &jsopts), "creating the JetStream context");

    AccountInfoPtr ai;
    jsErrCode jerr = static_cast<jsErrCode>(0);
    s = js_GetAccountInfo(out(ai), state->js.get(), nullptr, &jerr);
    if (s == NATS_NO_RESPONDERS || jerr == JSNotEnabledErr || jerr == JSNotEnabledForAccountErr) {
      char url[512] = {0};
      natsConnection_GetConnectedUrl(nc, url, sizeof url);
      throw_error(errc::jetstream_unavailable, std::string("NATS server at ") + url +
                                                   " has no JetStream enabled (start nats-server with -js): " +
                                                   nats_error_text(s));
    }
    if (s != NATS_OK) {
      // A user without $JS.API.INFO, or a cluster still electing its JetStream leader:
      // operations will say what is wrong when they run.
      logger_->warn("omniq: could not read the JetStream account at connect ({}); going on", nats_error_text(s));
    }
  } catch (...) {
    cleanup_on_error();
    throw;
  }
  {
    std::lock_guard lock(state->mu);
    state->open = true;
  }
  state_.store(state);
  // On the admin thread: timeouts must fire even when every blocking thread is busy.
  SweepTimer::arm(std::make_shared<asio::steady_timer>(admin_.get_executor()), state);
  const std::string url = connected_url();
  const std::optional<std::string> version =
      read_server_version(url, std::min<std::chrono::milliseconds>(config_.connect_timeout, std::chrono::seconds(2)));
  {
    std::lock_guard lock(version_mu_);
    server_version_ = version.value_or("");
  }
  logger_->info("omniq: connected to {} (nats-server {}, server id {}, max_payload {} bytes)", url,
                version.value_or("of unknown version"), server_id(), state->max_payload.load());
  if (version) {
    if (auto warning = server_version_warning(*version, config_)) logger_->warn("omniq: {}", *warning);
  }
}

std::string Connection::server_version() const {
  std::lock_guard lock(version_mu_);
  return server_version_;
}

void Connection::close_blocking() noexcept {
  std::lock_guard lifecycle(lifecycle_mu_);
  auto state = state_.exchange(nullptr);
  if (!state) return;
  {
    std::unique_lock lock(state->mu);
    state->open = false;
    // nats.c 3.4.1 can crash when a connection closes under a running JetStream call
    // (nats-io/nats.c#637): let the blocking calls finish first (they end within their timeout).
    state->blocking_idle.wait_for(lock, config_.request_timeout + std::chrono::seconds(2),
                                  [&] { return state->blocking_in_flight == 0; });
  }
  state->closing = true;
  state->send_outbox();  // what was accepted goes out before the connection closes
  state->loop.close_connection(state->conn.get());
  state->loop.stop();  // detached by the close
  state->fail_all(errc::closed, "the backend was closed");
  logger_->info("omniq: connection closed");
}

HandleLease Connection::lease_handles() const {
  auto state = state_.load();
  if (!state) throw_error(errc::not_connected, "the backend is not connected (call connect() first)");
  {
    std::lock_guard lock(state->mu);
    if (!state->open) throw_error(errc::closed, "the backend was closed");
    ++state->blocking_in_flight;
  }
  return HandleLease(std::move(state));
}

HandleLease::~HandleLease() {
  if (!state_) return;
  {
    std::lock_guard lock(state_->mu);
    --state_->blocking_in_flight;
  }
  state_->blocking_idle.notify_all();
}

natsConnection* HandleLease::nats() const noexcept { return state_->conn.get(); }
jsCtx* HandleLease::js() const noexcept { return state_->js.get(); }

std::uint64_t HandleLease::unmatched_violations() const {
  std::lock_guard lock(state_->mu);
  return state_->unmatched_violations;
}

void HandleLease::throw_if_denied_since(std::uint64_t seen, const Error& timeout) const {
  std::string why;
  {
    std::lock_guard lock(state_->mu);
    if (state_->unmatched_violations == seen) return;
    why = state_->last_unmatched_violation;
  }
  throw_error(errc::permission_denied, std::string(timeout.what()) + ", because " + why);
}

void Connection::cancel_request(std::uint64_t id) {
  auto state = state_.load();
  if (!state) return;
  if (auto p = state->take(id))
    ConnectionState::complete(std::move(*p),
                              std::make_exception_ptr(boost::system::system_error(asio::error::operation_aborted)), {});
}

void Connection::cancel_fetch(const std::string& key, const void* tag) {
  auto state = state_.load();
  if (!state) return;
  ConnectionState::Fetches::Taken cancelled;
  {
    std::lock_guard lock(state->mu);
    cancelled = state->fetches.cancel(key, tag);
  }
  auto aborted = std::make_exception_ptr(boost::system::system_error(asio::error::operation_aborted));
  for (auto& [k, waiting] : cancelled.waiting) std::move(waiting.second)(aborted, std::vector<JsMessage>{});
  for (auto& [k, active] : cancelled.active) {
    // What the cancelled pull received goes back at once; deliveries still on their way find
    // no pull and are handed back the same way (see on_delivery).
    std::vector<std::string> acks;
    for (auto& m : active.got) acks.push_back(std::move(m.reply));
    active.got.clear();
    hand_back(acks, "a cancelled pull from " + key);
    state->finish_fetch(key, std::move(active), aborted);
  }
}

std::uint64_t Connection::start_request(Request request, ReplyHandler handler) {
  auto state = state_.load();
  auto fail = [&](errc kind, std::string msg) -> std::uint64_t {
    ConnectionState::complete(ConnectionState::Pending{std::move(handler), {}, {}},
                              std::make_exception_ptr(Error(kind, msg)), {});
    return 0;
  };
  if (!subject_is_publishable(request.subject))
    return fail(errc::invalid_name, "subject \"" + request.subject +
                                        "\" cannot be published (empty token, whitespace or control character)");
  if (!state) return fail(errc::not_connected, "request on " + request.subject + ": the backend is not connected");

  std::uint64_t id = 0;
  {
    std::lock_guard lock(state->mu);
    if (!state->open) return fail(errc::closed, "request on " + request.subject + ": the backend was closed");
    id = state->next_id++;
  }
  ConnectionState::Outgoing out;
  try {
    out = state->outgoing(id, request.subject, state->inbox_base + std::to_string(id), std::move(request.data),
                          request.headers);
  } catch (const Error& e) {
    return fail(e.kind(), e.what());
  }
  const auto deadline = SteadyClock::now() + request.timeout.value_or(config_.request_timeout);
  {
    std::lock_guard lock(state->mu);
    state->pending.add(id, ConnectionState::Pending{std::move(handler), deadline, std::move(request.subject)});
  }
  // Registered before publishing: the reply can arrive before the publish returns.
  state->queue(io_, std::move(out));
  return id;
}

void Connection::start_fetch(FetchRequest request, FetchHandler handler) {
  auto state = state_.load();
  if (!state) {
    std::move(handler)(std::make_exception_ptr(Error(errc::not_connected, "pull from consumer " + request.consumer +
                                                                              ": the backend is not connected")),
                       std::vector<JsMessage>{});
    return;
  }
  state->start_fetch(std::move(request), std::move(handler));
}

void Connection::publish(const std::string& subject, std::string_view data, const Headers& headers) {
  auto state = state_.load();
  if (!state) throw_error(errc::not_connected, "publish on " + subject + ": the backend is not connected");
  if (!subject_is_publishable(subject))
    throw_error(errc::invalid_name, "subject \"" + subject + "\" cannot be published");
  // What nats.c would refuse is refused here, at once; the write itself joins the outbox.
  if (natsConnection_IsClosed(state->conn.get())) throw_error(errc::closed, "publish on " + subject + ": the backend was closed");
  state->queue(io_, state->outgoing(0, subject, {}, std::string(data), headers));
}

void Connection::hand_back(const std::vector<std::string>& ack_subjects, std::string_view why) noexcept {
  std::size_t failed = 0;
  std::string last;
  for (const auto& subject : ack_subjects) {
    try {
      publish(subject, "-NAK");
    } catch (const std::exception& e) {
      ++failed;
      last = e.what();
    }
  }
  if (failed > 0)
    logger_->warn("omniq: could not hand back {} of {} deliveries ({}): {}; the server redelivers them after ack_wait",
                  failed, ack_subjects.size(), why, last);
}

bool Connection::is_connected() const noexcept {
  auto state = state_.load();
  return state && state->conn && natsConnection_Status(state->conn.get()) == NATS_CONN_STATUS_CONNECTED;
}

std::int64_t Connection::max_payload() const noexcept {
  auto state = state_.load();
  return state ? state->max_payload.load() : 0;
}

std::string Connection::connected_url() const {
  auto state = state_.load();
  char url[512] = {0};
  if (state && state->conn) natsConnection_GetConnectedUrl(state->conn.get(), url, sizeof url);
  else if (!config_.servers.empty()) return config_.servers.front();
  return url;
}

std::string Connection::server_id() const {
  auto state = state_.load();
  char id[256] = {0};
  if (state && state->conn) natsConnection_GetConnectedServerId(state->conn.get(), id, sizeof id);
  return id;
}

void Connection::ensure_open() const {
  if (!state_.load()) throw_error(errc::not_connected, "the backend is not connected (call connect() first)");
}

}  // namespace omniq::detail
