// The scheduler: makes sure a cron schedule and an interval schedule exist (an existing one is
// kept as it is), then runs the Scheduler, which enqueues each due occurrence exactly once
// even when several schedulers run, until SIGINT or SIGTERM (or --run-for). At exit it prints
// what each schedule has done.
//
//   omniq_scheduler --cron '*/5 * * * *' --interval 10 --func add --args '[1, 2]'
#include <chrono>
#include <future>
#include <iostream>
#include <optional>
#include <string>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/use_future.hpp>

#include "cli.hpp"

namespace {

namespace asio = boost::asio;

constexpr std::string_view usage = R"(usage: omniq_scheduler [options]

Creates the schedules <id-prefix>-cron and <id-prefix>-interval unless they exist (an
existing schedule is kept unchanged), then enqueues their tasks when due until SIGINT or
SIGTERM, or for --run-for seconds. Schedules stay in the schedule store after it stops.

options:
  --config <file>      JSON configuration file (instead of OMNIQ_CONFIG); NATS_SERVERS and
                       the other NATS_* variables still apply on top
  --cron <expr>        5-field cron expression of the cron schedule (default: */5 * * * *)
  --time-zone <zone>   IANA time zone the cron expression is read in (default: UTC)
  --interval <s>       period of the interval schedule in seconds, at least 1 (default: 10)
  --func <name>        function the scheduled tasks call (default: add)
  --args <json>        their arguments (default: [1, 2])
  --queue <name>       queue they are enqueued on (default: default)
  --id-prefix <p>      schedule ids are <p>-cron and <p>-interval (default: example)
  --run-for <s>        stop after this many seconds instead of waiting for a signal
  --help               this text

exit status: 0 stopped, 1 failed (e.g. no server), 64 bad command line or configuration
)";

std::string describe(const omniq::Schedule& s) {
  std::string what = s.type == omniq::ScheduleType::cron
                         ? "cron \"" + s.cron_expression.value_or("") + "\" (" + s.time_zone + ")"
                         : "every " + example::format_seconds(s.interval.value_or(omniq::Duration::zero()));
  what += ", " + s.func + " " + s.args.dump() + " on queue " + s.queue_name + ", " + std::string(to_string(s.status)) +
          ", runs " + std::to_string(s.run_count);
  if (s.last_run) what += ", last " + omniq::format_timestamp(*s.last_run);
  if (s.next_run) what += ", next " + omniq::format_timestamp(*s.next_run);
  return what;
}

// Creates the schedule unless one with its id exists; says which happened.
void create_or_keep(omniq::SyncScheduleStore& store, omniq::Schedule schedule) {
  try {
    store.create_schedule(schedule);
    std::cout << "created schedule " << schedule.id << ": " << describe(schedule) << "\n";
  } catch (const omniq::Error& e) {
    if (e.kind() != omniq::errc::already_exists) throw;
    const auto existing = store.get_schedule(schedule.id);
    std::cout << "kept schedule " << schedule.id << ": "
              << (existing ? describe(existing->schedule) : std::string("(deleted meanwhile)")) << "\n";
  }
}

}  // namespace

int main(int argc, char** argv) {
  return example::run_main(
      argc, argv, usage,
      {"config", "cron", "time-zone", "interval", "func", "args", "queue", "id-prefix", "run-for"}, {},
      [](const example::Args& args) {
        if (!args.positional().empty()) throw example::UsageError("unexpected argument \"" + args.positional()[0] + "\"");
        const std::string prefix = args.value_or("id-prefix", "example");
        const std::string func = args.value_or("func", "add");
        const nlohmann::json task_args = example::parse_args(args.value_or("args", "[1, 2]"), "--args");
        const std::string queue = args.value_or("queue", "default");
        // Both schedules are built (and so checked) before connecting.
        omniq::Schedule cron = omniq::Schedule::from_cron(args.value_or("cron", "*/5 * * * *"), func, task_args,
                                                          nlohmann::json::object(), queue,
                                                          args.value_or("time-zone", "UTC"));
        cron.id = prefix + "-cron";
        omniq::Schedule interval = omniq::Schedule::from_interval(
            args.seconds("interval").value_or(std::chrono::seconds(10)), func, task_args, nlohmann::json::object(), queue);
        interval.id = prefix + "-interval";
        cron.validate();
        interval.validate();
        const auto run_for = args.seconds("run-for");

        example::setup_logging(spdlog::level::info);
        omniq::NatsBackend backend(example::load_config(args));
        omniq::ConnectionScope connected(backend);
        auto& store = backend.sync_schedule_store();
        create_or_keep(store, cron);
        create_or_keep(store, interval);

        omniq::Scheduler scheduler(backend);
        example::StopOnSignal on_signal(backend, [&](int signal) {
          spdlog::info("scheduler: received signal {}; stopping", signal);
          scheduler.stop();
        });
        std::cout << "scheduler running" << (run_for ? " for " + example::format_seconds(*run_for) : std::string())
                  << "; SIGINT or SIGTERM stops it" << std::endl;
        // On the backend's io thread: run until stop(), which --run-for's timer also calls.
        auto run = [&]() -> asio::awaitable<void> {
          asio::steady_timer deadline(co_await asio::this_coro::executor);
          if (run_for) {
            deadline.expires_after(*run_for);
            deadline.async_wait([&](boost::system::error_code ec) {
              if (!ec) scheduler.stop();
            });
          }
          co_await scheduler.async_run();
          deadline.cancel();
        };
        asio::co_spawn(backend.get_executor(), run(), asio::use_future).get();

        for (const auto& id : {cron.id, interval.id}) {
          const auto record = store.get_schedule(id);
          std::cout << "schedule " << id << ": " << (record ? describe(record->schedule) : std::string("(deleted)"))
                    << "\n";
        }
        return example::exit_ok;
      });
}
