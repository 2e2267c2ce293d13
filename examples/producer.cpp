// The producer: enqueues tasks from the command line, one by one or as one batch, and logs an
// `enqueued` event for each so followers of the event log see them arrive.
//
//   omniq_producer add '[1, 2]'                       # one task, prints its id
//   omniq_producer --queue demo --count 1000 --batch flaky
#include <chrono>
#include <iostream>
#include <string>
#include <vector>

#include "cli.hpp"

namespace {

constexpr std::string_view usage = R"(usage: omniq_producer [options] <func> [json-args]

Enqueues tasks that call <func> with [json-args] (a JSON array, or one JSON value taken as
the only argument) and logs an `enqueued` event for each. Prints the task ids, or a summary
line when more than 10 tasks were enqueued.

options:
  --config <file>      JSON configuration file (instead of OMNIQ_CONFIG); NATS_SERVERS and
                       the other NATS_* variables still apply on top
  --queue <name>       queue to enqueue on (default: default)
  --priority <n>       priority, -1000..1000, higher runs first (default: 0)
  --count <n>          how many tasks (default: 1)
  --batch              enqueue all of them as one batch (publishes in flight together)
  --delay-ms <ms>      run no earlier than this many milliseconds from now
  --max-retries <n>    retries after a failed attempt (default: 3)
  --help               this text

exit status: 0 enqueued, 1 failed (e.g. no server), 64 bad command line or configuration
)";

}  // namespace

int main(int argc, char** argv) {
  return example::run_main(
      argc, argv, usage, {"config", "queue", "priority", "count", "delay-ms", "max-retries"}, {"batch"},
      [](const example::Args& args) {
        // The task every copy is made from; validated before connecting, so bad input fails fast.
        omniq::Task prototype = example::task_from_command_line(args);
        prototype.priority =
            static_cast<int>(args.integer("priority", 0, omniq::Task::min_priority, omniq::Task::max_priority));
        prototype.max_retries = static_cast<int>(args.integer("max-retries", 3, 0, 1000));
        const auto count = static_cast<std::size_t>(args.integer("count", 1, 1, 10'000'000));
        const auto delay = std::chrono::milliseconds(args.integer("delay-ms", 0, 0, 365LL * 24 * 3600 * 1000));
        prototype.validate();

        example::setup_logging(spdlog::level::warn);
        omniq::NatsBackend backend(example::load_config(args));
        omniq::ConnectionScope connected(backend);
        auto& queue = backend.sync_task_queue();
        auto& events = backend.sync_event_log();

        std::vector<omniq::Task> tasks;
        tasks.reserve(count);
        const auto run_at = delay.count() > 0 ? std::optional(omniq::now() + delay) : std::nullopt;
        for (std::size_t i = 0; i < count; ++i) {
          omniq::Task task = prototype;
          task.id = omniq::new_uuid();
          task.created_at = omniq::now();
          task.run_at = run_at;
          tasks.push_back(std::move(task));
        }

        const auto started = std::chrono::steady_clock::now();
        std::vector<std::string> ids;
        if (args.flag("batch")) {
          ids = queue.enqueue_batch(tasks);
          std::vector<omniq::TaskEvent> enqueued;
          enqueued.reserve(ids.size());
          for (const auto& id : ids) enqueued.push_back(omniq::events::enqueued(id, prototype.queue_name));
          events.log_events(std::move(enqueued));
        } else {
          for (auto& task : tasks) {
            ids.push_back(queue.enqueue(std::move(task)));
            events.log_event(omniq::events::enqueued(ids.back(), prototype.queue_name));
          }
        }
        const std::chrono::duration<double> took = std::chrono::steady_clock::now() - started;

        if (ids.size() <= 10) {
          for (const auto& id : ids) std::cout << id << "\n";
        } else {
          std::cout << "enqueued " << ids.size() << " " << prototype.func << " tasks on queue " << prototype.queue_name
                    << (args.flag("batch") ? " as one batch" : " one by one") << " in "
                    << static_cast<long>(took.count() * 1000) << " ms ("
                    << static_cast<long>(static_cast<double>(ids.size()) / std::max(took.count(), 1e-6))
                    << " tasks/s); first " << ids.front() << ", last " << ids.back() << "\n";
        }
        return example::exit_ok;
      });
}
