#include "omniq/detail/provisioning.hpp"

#include <nats/nats.h>

#include "nats_util.hpp"

namespace omniq::detail {

namespace {

jsStorageType to_js(StorageType s) { return s == StorageType::memory ? js_MemoryStorage : js_FileStorage; }

StreamReport to_report(const jsStreamInfo& si) {
  const jsStreamConfig& c = *si.Config;
  StreamReport r;
  r.name = c.Name ? c.Name : "";
  for (int i = 0; i < c.SubjectsLen; ++i) r.subjects.emplace_back(c.Subjects[i]);
  r.retention = c.Retention == js_WorkQueuePolicy ? "workqueue" : c.Retention == js_InterestPolicy ? "interest" : "limits";
  r.storage = c.Storage == js_MemoryStorage ? "memory" : "file";
  r.discard = c.Discard == js_DiscardNew ? "new" : "old";
  r.replicas = static_cast<int>(c.Replicas);
  r.max_msgs = c.MaxMsgs;
  r.max_bytes = c.MaxBytes;
  r.max_msg_size = c.MaxMsgSize;
  r.max_age = std::chrono::nanoseconds(c.MaxAge);
  r.duplicate_window = std::chrono::nanoseconds(c.Duplicates);
  r.allow_direct = c.AllowDirect;
  r.messages = si.State.Msgs;
  r.bytes = si.State.Bytes;
  r.consumers = si.State.Consumers;
  return r;
}

// nullopt-like: returns false when the stream does not exist.
bool get_stream(jsCtx* js, const std::string& name, StreamInfoPtr& info) {
  jsErrCode jerr = static_cast<jsErrCode>(0);
  natsStatus s = js_GetStreamInfo(out(info), js, name.c_str(), nullptr, &jerr);
  if (s == NATS_NOT_FOUND || jerr == JSStreamNotFoundErr) return false;
  if (s != NATS_OK) throw_js(s, jerr, "reading stream " + name);
  return true;
}

std::string ns_text(std::int64_t ns) { return std::to_string(static_cast<double>(ns) / 1e9) + " s"; }

}  // namespace

StreamReport read_stream(jsCtx* js, const std::string& name) {
  StreamInfoPtr h;
  if (!get_stream(js, name, h)) throw_error(errc::nats_error, "stream " + name + " does not exist");
  return to_report(*h);
}

StreamReport ensure_stream(jsCtx* js, const StreamSpec& spec) {
  const auto& set = spec.settings;
  std::vector<const char*> subjects;
  for (const auto& s : spec.subjects) subjects.push_back(s.c_str());

  jsStreamConfig cfg;
  jsStreamConfig_Init(&cfg);
  cfg.Name = set.name.c_str();
  cfg.Subjects = subjects.data();
  cfg.SubjectsLen = static_cast<int>(subjects.size());
  cfg.Retention = spec.retention == Retention::workqueue ? js_WorkQueuePolicy : js_LimitsPolicy;
  cfg.Discard = spec.discard == Discard::new_messages ? js_DiscardNew : js_DiscardOld;
  cfg.Storage = to_js(set.storage);
  cfg.Replicas = set.replicas;
  cfg.MaxMsgs = set.max_msgs;
  cfg.MaxBytes = set.max_bytes;
  cfg.MaxMsgSize = set.max_msg_size;
  cfg.MaxAge = to_ns(set.max_age);
  cfg.Duplicates = to_ns(set.duplicate_window);
  cfg.AllowDirect = true;  // direct gets serve reads from any replica without the API leader

  StreamInfoPtr existing;
  jsErrCode jerr = static_cast<jsErrCode>(0);
  if (!get_stream(js, set.name, existing)) {
    StreamInfoPtr created;
    natsStatus s = js_AddStream(out(created), js, &cfg, nullptr, &jerr);
    if (s == NATS_OK) return to_report(*created);
    // Another process may have created it between our look and our create (the server then
    // answers "subjects overlap" or "name in use"): check what is there instead.
    const std::string failure = nats_error_text(s);
    if (!get_stream(js, set.name, existing)) {
      errc kind = errc_from_status(s, failure);
      if (jerr == JSNotEnabledErr || jerr == JSNotEnabledForAccountErr) kind = errc::jetstream_unavailable;
      throw_error(kind, "creating stream " + set.name + ": " + failure +
                            (jerr ? " (JetStream error " + std::to_string(jerr) + ")" : ""));
    }
  }

  const jsStreamConfig& have = *existing->Config;
  if (have.Retention != cfg.Retention)
    throw_error(errc::invalid_config, "stream " + set.name + " exists with a different retention policy than omniq "
                                      "needs; it cannot be changed (delete the stream or use another name)");
  if (have.Storage != cfg.Storage)
    throw_error(errc::invalid_config, "stream " + set.name + " exists with storage " +
                                          (have.Storage == js_MemoryStorage ? "memory" : "file") +
                                          " but the configuration says " +
                                          (cfg.Storage == js_MemoryStorage ? "memory" : "file") +
                                          "; storage cannot be changed");
  bool same_subjects = have.SubjectsLen == cfg.SubjectsLen;
  for (int i = 0; same_subjects && i < cfg.SubjectsLen; ++i)
    same_subjects = std::string_view(have.Subjects[i]) == cfg.Subjects[i];
  const bool same = same_subjects && have.Discard == cfg.Discard && have.Replicas == cfg.Replicas &&
                    have.MaxMsgs == cfg.MaxMsgs && have.MaxBytes == cfg.MaxBytes &&
                    have.MaxMsgSize == cfg.MaxMsgSize && have.MaxAge == cfg.MaxAge &&
                    have.Duplicates == cfg.Duplicates && have.AllowDirect == cfg.AllowDirect;
  if (same) return to_report(*existing);

  StreamInfoPtr updated;
  natsStatus s = js_UpdateStream(out(updated), js, &cfg, nullptr, &jerr);
  if (s != NATS_OK) throw_js(s, jerr, "updating stream " + set.name + " to the configured settings (max_age " +
                                          ns_text(cfg.MaxAge) + ", replicas " + std::to_string(cfg.Replicas) + ")");
  return to_report(*updated);
}

BucketReport read_bucket(jsCtx* js, const std::string& bucket) {
  const std::string stream = "KV_" + bucket;
  StreamInfoPtr h;
  if (!get_stream(js, stream, h)) throw_error(errc::nats_error, "bucket " + bucket + " does not exist");
  const jsStreamConfig& c = *h->Config;
  BucketReport r;
  r.name = bucket;
  r.stream = stream;
  r.values = h->State.Msgs;
  r.bytes = h->State.Bytes;
  r.ttl = std::chrono::nanoseconds(c.MaxAge);
  r.history = static_cast<int>(c.MaxMsgsPerSubject);
  r.replicas = static_cast<int>(c.Replicas);
  r.storage = c.Storage == js_MemoryStorage ? "memory" : "file";
  r.max_value_size = c.MaxMsgSize;
  r.max_bytes = c.MaxBytes;
  r.allow_direct = c.AllowDirect;
  return r;
}

BucketReport ensure_bucket(jsCtx* js, const BucketSettings& set) {
  const std::string stream = "KV_" + set.name;
  StreamInfoPtr existing;
  if (!get_stream(js, stream, existing)) {
    kvConfig kc;
    kvConfig_Init(&kc);
    kc.Bucket = set.name.c_str();
    kc.History = static_cast<uint8_t>(set.history);
    kc.TTL = to_ns(set.ttl);
    kc.MaxValueSize = set.max_value_size;
    kc.MaxBytes = set.max_bytes;
    kc.StorageType = to_js(set.storage);
    kc.Replicas = set.replicas;
    KvStorePtr kv;
    natsStatus s = js_CreateKeyValue(out(kv), js, &kc);
    if (s == NATS_OK) return read_bucket(js, set.name);
    // Created meanwhile by another process? Then bring it to the configuration below.
    const std::string failure = nats_error_text(s);
    if (!get_stream(js, stream, existing))
      throw_error(errc_from_status(s, failure), "creating bucket " + set.name + ": " + failure);
  }
  // The bucket exists: bring its stream's limits to the configuration (what KV allows to change).
  const jsStreamConfig& have = *existing->Config;
  if (have.Storage != to_js(set.storage))
    throw_error(errc::invalid_config, "bucket " + set.name + " exists with another storage type; storage cannot be changed");
  const bool same = have.MaxAge == to_ns(set.ttl) && have.MaxMsgsPerSubject == set.history &&
                    have.MaxMsgSize == set.max_value_size && have.MaxBytes == set.max_bytes &&
                    have.Replicas == set.replicas;
  if (!same) {
    jsStreamConfig cfg = have;  // shallow copy: pointers still owned by `existing`
    cfg.MaxAge = to_ns(set.ttl);
    cfg.MaxMsgsPerSubject = set.history;
    cfg.MaxMsgSize = set.max_value_size;
    cfg.MaxBytes = set.max_bytes;
    cfg.Replicas = set.replicas;
    StreamInfoPtr updated;
    jsErrCode jerr = static_cast<jsErrCode>(0);
    natsStatus s = js_UpdateStream(out(updated), js, &cfg, nullptr, &jerr);
    if (s != NATS_OK) throw_js(s, jerr, "updating bucket " + set.name + " to the configured settings");
  }
  return read_bucket(js, set.name);
}

}  // namespace omniq::detail
