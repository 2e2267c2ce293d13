// The blocking API only, from a plain main(): enqueue one task, wait for its result, print it.
// No coroutine in sight: NatsBackend runs its own io thread and the Sync* parts block.
//
//   omniq_sync_client add '[20, 22]'          # prints the task's outcome: ... 42
//   omniq_sync_client --json --timeout 5 sleep 1000
#include <chrono>
#include <iostream>
#include <string>

#include "cli.hpp"

namespace {

constexpr std::string_view usage = R"(usage: omniq_sync_client [options] <func> [json-args]

Enqueues one task that calls <func> with [json-args] (a JSON array, or one JSON value taken
as the only argument), waits for a worker to store its result and prints it.

options:
  --config <file>      JSON configuration file (instead of OMNIQ_CONFIG); NATS_SERVERS and
                       the other NATS_* variables still apply on top
  --queue <name>       queue to enqueue on (default: default)
  --timeout <s>        how long to wait for the result (default: 30)
  --json               print the whole result as JSON instead of one line
  --help               this text

exit status: 0 the task succeeded, 1 it failed (error result), 2 no result in time,
             3 could not run (e.g. no server), 64 bad command line or configuration
)";

constexpr int exit_error_result = 1;
constexpr int exit_timeout = 2;
constexpr int exit_cannot_run = 3;

}  // namespace

int main(int argc, char** argv) {
  return example::run_main(
      argc, argv, usage, {"config", "queue", "timeout"}, {"json"}, [](const example::Args& args) {
        omniq::Task task = example::task_from_command_line(args);
        const omniq::Duration timeout = args.seconds("timeout").value_or(std::chrono::seconds(30));
        task.validate();

        example::setup_logging(spdlog::level::warn);
        omniq::NatsBackend backend(example::load_config(args));
        omniq::ConnectionScope connected(backend);

        const std::string id = backend.sync_task_queue().enqueue(task);
        backend.sync_event_log().log_event(omniq::events::enqueued(id, task.queue_name));
        const std::optional<omniq::TaskResult> result = backend.sync_result_store().wait_for_result(id, timeout);

        if (!result) {
          std::cout << "task " << id << " (" << task.func << " on queue " << task.queue_name << "): no result within "
                    << example::format_seconds(timeout) << "\n";
          return exit_timeout;
        }
        if (args.flag("json")) {
          std::cout << nlohmann::json(*result).dump(2) << "\n";
        } else {
          std::cout << "task " << id << " " << task.func << task.args.dump() << ": " << to_string(result->status);
          if (result->status == omniq::ResultStatus::success) std::cout << ", result " << result->result.dump();
          if (result->error_type || result->error)
            std::cout << ", error " << result->error_type.value_or("") << ": " << result->error.value_or("");
          if (result->worker_id) std::cout << " (worker " << *result->worker_id;
          if (result->execution_time) std::cout << ", ran " << example::format_seconds(*result->execution_time);
          if (result->worker_id) std::cout << ")";
          std::cout << "\n";
        }
        return result->status == omniq::ResultStatus::success ? example::exit_ok : exit_error_result;
      },
      exit_cannot_run);
}
