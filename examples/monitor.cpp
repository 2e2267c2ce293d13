// The monitor: follows the event log live and prints a queue's progress, how many tasks were
// enqueued, completed, retried and failed, every second, then a summary with the throughput
// and the dead letters. Everything it knows comes from the events producers, schedulers and
// workers log.
//
//   omniq_monitor --queue demo --expect 3000 --timeout 120
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <iostream>
#include <optional>
#include <string>
#include <unordered_set>

#include "cli.hpp"

namespace {

using Steady = std::chrono::steady_clock;

constexpr std::string_view usage = R"(usage: omniq_monitor [options]

Follows the event log from the moment it starts (or --since) and prints a progress line every --every
seconds: tasks enqueued, completed, retried and failed, and the queue's backlog. Stops at
SIGINT or SIGTERM, after --timeout, or once --expect tasks have finished, and prints a
summary: counts, throughput (first enqueue to last finish) and the dead letters.

options:
  --config <file>      JSON configuration file (instead of OMNIQ_CONFIG); NATS_SERVERS and
                       the other NATS_* variables still apply on top
  --queue <name>       count only this queue's tasks (default: every queue)
  --since <time>       count events stored from this ISO-8601 time on, e.g.
                       2026-01-31T12:00:00Z or $(date -u +%FT%T.%6NZ) (default: now)
  --expect <n>         stop once n tasks have finished (completed, failed, cancelled or expired)
  --timeout <s>        stop after this many seconds
  --every <s>          seconds between progress lines (default: 1)
  --help               this text

exit status: 0 done, 1 failed (e.g. no server), 2 stopped before --expect tasks finished,
             64 bad command line or configuration
)";

constexpr int exit_incomplete = 2;

// What the events told so far; each set holds task ids, so an event seen twice (a worker that
// stored an outcome again after a redelivery) is counted once.
struct Progress {
  std::unordered_set<std::string> enqueued, completed, failed, cancelled, retried;
  std::uint64_t retries = 0;
  std::optional<omniq::Timestamp> first_enqueue, last_finish;

  std::size_t finished() const { return completed.size() + failed.size() + cancelled.size(); }

  void add(const omniq::TaskEvent& e) {
    using omniq::EventType;
    switch (e.event_type) {
      case EventType::enqueued:
        enqueued.insert(e.task_id);
        if (!first_enqueue || e.timestamp < *first_enqueue) first_enqueue = e.timestamp;
        return;
      case EventType::retry:
        ++retries;
        retried.insert(e.task_id);
        return;
      case EventType::completed:
        completed.insert(e.task_id);
        break;
      case EventType::failed:
        failed.insert(e.task_id);
        break;
      case EventType::cancelled:
      case EventType::expired:
        cancelled.insert(e.task_id);
        break;
      default:
        return;
    }
    if (!last_finish || e.timestamp > *last_finish) last_finish = e.timestamp;
  }
};

double seconds_between(omniq::Timestamp from, omniq::Timestamp to) {
  return std::chrono::duration<double>(to - from).count();
}

void print_summary(omniq::NatsBackend& backend, const std::optional<std::string>& queue, const Progress& p) {
  const std::string where = queue ? "queue " + *queue : std::string("all queues");
  const double span = p.first_enqueue && p.last_finish ? seconds_between(*p.first_enqueue, *p.last_finish) : 0;
  std::size_t completed_after_retry = 0;
  for (const auto& id : p.completed) completed_after_retry += p.retried.count(id);
  std::printf("summary for %s: %zu tasks enqueued, %zu finished", where.c_str(), p.enqueued.size(), p.finished());
  if (span > 0) std::printf(" in %.2f s (first enqueue to last finish)", span);
  std::printf("\n  completed      %zu (%zu of them on a retry)\n", p.completed.size(), completed_after_retry);
  std::printf("  retried        %zu tasks, %llu retries\n", p.retried.size(), static_cast<unsigned long long>(p.retries));
  std::printf("  failed         %zu", p.failed.size());
  if (!p.failed.empty()) {
    // The failed tasks' dead letters, as the task queue keeps them.
    std::size_t letters = 0;
    std::string example;
    for (const auto& letter : backend.sync_task_queue().list_dead_letters(queue, 100'000)) {
      if (!p.failed.count(letter.task_id)) continue;
      ++letters;
      if (example.empty()) example = "task " + letter.task_id + ": " + letter.reason;
    }
    std::printf(", %zu in the dead letters, e.g. %s", letters, example.c_str());
  }
  std::printf("\n");
  if (!p.cancelled.empty()) std::printf("  cancelled      %zu (or expired)\n", p.cancelled.size());
  if (span > 0)
    std::printf("  throughput     %.0f tasks/s (finished tasks over that span, retry backoff included)\n",
                static_cast<double>(p.finished()) / span);
  std::fflush(stdout);
}

}  // namespace

int main(int argc, char** argv) {
  return example::run_main(
      argc, argv, usage, {"config", "queue", "since", "expect", "timeout", "every"}, {}, [](const example::Args& args) {
        if (!args.positional().empty()) throw example::UsageError("unexpected argument \"" + args.positional()[0] + "\"");
        omniq::Timestamp since = omniq::now();
        if (const auto text = args.value("since")) {
          try {
            since = omniq::parse_timestamp(*text);
          } catch (const omniq::Error& e) {
            throw example::UsageError(std::string("--since: ") + e.what());
          }
        }
        const auto queue = args.value("queue");
        if (queue) omniq::validate_token("--queue", *queue);
        const auto expect = static_cast<std::size_t>(args.integer("expect", 0, 0, 1'000'000'000));
        const auto timeout = args.seconds("timeout");
        const auto every = args.seconds("every").value_or(std::chrono::seconds(1));

        example::setup_logging(spdlog::level::warn);
        omniq::NatsBackend backend(example::load_config(args));
        omniq::ConnectionScope connected(backend);
        std::atomic<bool> stop{false};
        example::StopOnSignal on_signal(backend, [&](int) { stop = true; });

        omniq::SyncEventFollower follower = backend.sync_event_log().follow(omniq::EventFilter{.start_time = since});
        Progress progress;
        const auto started = Steady::now();
        auto next_line = started + every;
        std::size_t finished_at_last_line = 0;
        const auto done = [&] { return expect > 0 && progress.finished() >= expect; };
        while (!stop && !done() && !(timeout && Steady::now() - started >= *timeout)) {
          const auto slice = std::clamp(std::chrono::duration_cast<omniq::Duration>(next_line - Steady::now()),
                                        omniq::Duration(std::chrono::milliseconds(10)),
                                        omniq::Duration(std::chrono::milliseconds(250)));
          if (const auto event = follower.next(slice)) {
            if (!queue || event->queue_name == queue) progress.add(*event);
          }
          if (Steady::now() < next_line) continue;
          const double elapsed = std::chrono::duration<double>(Steady::now() - started).count();
          const double rate = static_cast<double>(progress.finished() - finished_at_last_line) /
                              std::chrono::duration<double>(every).count();
          finished_at_last_line = progress.finished();
          std::printf("[%6.1f s] enqueued %zu  completed %zu  retried %zu  failed %zu", elapsed,
                      progress.enqueued.size(), progress.completed.size(), progress.retried.size(),
                      progress.failed.size());
          if (queue)
            std::printf("  backlog %llu",
                        static_cast<unsigned long long>(backend.sync_task_queue().get_queue_size(*queue)));
          std::printf("  %.0f tasks/s\n", rate);
          std::fflush(stdout);
          next_line += every;
          if (next_line <= Steady::now()) next_line = Steady::now() + every;  // fell behind: skip lines
        }
        follower.close();
        print_summary(backend, queue, progress);
        return expect > 0 && !done() ? exit_incomplete : example::exit_ok;
      });
}
