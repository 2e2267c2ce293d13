// The demo: connect to NATS (or start a local nats-server when none is configured), make sure
// omniq's streams and buckets exist with the configured settings, and print what the server
// reports about them.
//
//   examples/run-demo.sh                          # embedded local server
//   NATS_SERVERS=nats://127.0.0.1:4222 examples/run-demo.sh
#include <cstdlib>
#include <iomanip>
#include <iostream>
#include <memory>
#include <optional>

#include <spdlog/spdlog.h>

#include <omniq/omniq.hpp>

namespace {

std::string seconds(std::chrono::nanoseconds d) {
  if (d.count() == 0) return "none";
  const auto s = std::chrono::duration_cast<std::chrono::seconds>(d).count();
  if (s % 86400 == 0) return std::to_string(s / 86400) + " d";
  if (s % 3600 == 0) return std::to_string(s / 3600) + " h";
  return std::to_string(s) + " s";
}

std::string limit(std::int64_t v) { return v < 0 ? "unlimited" : std::to_string(v); }

void print(const omniq::StreamReport& r) {
  std::string subjects;
  for (const auto& s : r.subjects) subjects += (subjects.empty() ? "" : ",") + s;
  std::cout << "  stream " << std::left << std::setw(14) << r.name << " subjects " << subjects << ", retention "
            << r.retention << ", discard " << r.discard << ", storage " << r.storage << ", replicas " << r.replicas
            << ", max_msgs " << limit(r.max_msgs) << ", max_age " << seconds(r.max_age) << ", dedup window "
            << seconds(r.duplicate_window) << "; holds " << r.messages << " messages\n";
}

void print(const omniq::BucketReport& r) {
  std::cout << "  bucket " << std::left << std::setw(14) << r.name << " stream " << r.stream << ", ttl "
            << seconds(r.ttl) << ", history " << r.history << ", storage " << r.storage << ", replicas "
            << r.replicas << "; holds " << r.values << " values\n";
}

}  // namespace

int main() {
  try {
    spdlog::set_level(spdlog::level::info);
    omniq::Config config = omniq::config_from_env();
    std::unique_ptr<omniq::LocalServer> server;
    if (!std::getenv("NATS_SERVERS") && !std::getenv("OMNIQ_CONFIG")) {
      server = std::make_unique<omniq::LocalServer>();
      config.servers = {server->url()};
      std::cout << "omniq demo: started nats-server (pid " << server->pid() << ") on " << server->url()
                << ", store " << server->store_dir() << "\n";
    }

    omniq::NatsBackend backend(config);
    omniq::ConnectionScope connected(backend);
    std::cout << "omniq " << omniq::version << ": connected to " << backend.connection().connected_url()
              << " (max_payload " << backend.connection().max_payload() << " bytes)\n";

    std::cout << "streams and buckets, as the server reports them:\n";
    print(backend.sync_task_queue().info());
    print(backend.sync_event_log().info());
    print(backend.sync_result_store().info());
    print(backend.sync_schedule_store().info());

    // Real work through the task queue: a batch with mixed priorities and one delayed task,
    // drained in priority order with leases that are acked.
    auto& queue = backend.sync_task_queue();
    std::vector<omniq::Task> tasks;
    for (int i = 0; i < 1000; ++i)
      tasks.push_back(omniq::Task{.func = "demo.add", .args = {i, i}, .priority = i % 10 == 0 ? 50 : 0});
    omniq::Task later{.func = "demo.later"};
    later.run_at = omniq::now() + std::chrono::milliseconds(500);
    tasks.push_back(later);
    const auto started = std::chrono::steady_clock::now();
    queue.enqueue_batch(tasks);
    const auto enqueued = std::chrono::steady_clock::now();
    std::cout << "enqueued " << tasks.size() << " tasks in "
              << std::chrono::duration_cast<std::chrono::milliseconds>(enqueued - started).count()
              << " ms; queue size " << queue.get_queue_size("default") << "\n";
    std::size_t drained = 0, high_first = 0;
    bool low_seen = false;
    while (drained < tasks.size()) {
      auto batch = queue.dequeue_batch({"default"}, 256, std::chrono::seconds(2));
      if (batch.empty()) break;
      for (auto& lease : batch) {
        if (lease.task().priority > 0 && !low_seen) ++high_first;
        if (lease.task().priority == 0) low_seen = true;
        lease.ack();
        ++drained;
      }
    }
    const auto done = std::chrono::steady_clock::now();
    std::cout << "drained " << drained << " tasks (" << high_first << " of 100 high-priority ones before any normal one, "
              << "the delayed one after its time) in "
              << std::chrono::duration_cast<std::chrono::milliseconds>(done - enqueued).count()
              << " ms; queue size now " << queue.get_queue_size("default") << "\n";

    const omniq::Schedule every_5th_hour = omniq::Schedule::from_cron("0 */5 * * *", "report.daily");
    std::cout << "cron \"0 */5 * * *\" (minute 0 of every 5th hour) next fires at "
              << omniq::format_timestamp(*every_5th_hour.next_run) << "\n";
    std::cout << "omniq demo: done" << (server ? "; stopping the local nats-server" : "") << "\n";
    return 0;
  } catch (const std::exception& e) {
    std::cerr << "omniq demo failed: " << e.what() << "\n";
    return 1;
  }
}
