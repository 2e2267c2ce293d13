// The compiled side of every initiating function: detail::launch instantiated once for each
// value type an operation completes with, so user translation units never instantiate the
// coroutine machinery behind them.
#include "launch.hpp"

#include "omniq/event_log.hpp"
#include "omniq/result_store.hpp"
#include "omniq/schedule_store.hpp"
#include "omniq/task_queue.hpp"

namespace omniq::detail {

#define OMNIQ_LAUNCH(...)                                                                                     \
  template void launch<__VA_ARGS__>(const asio::any_io_executor&, asio::awaitable<__VA_ARGS__>, Diagnostics*, \
                                    asio::any_completion_handler<completion_t<__VA_ARGS__>>);

OMNIQ_LAUNCH(void)
OMNIQ_LAUNCH(bool)
OMNIQ_LAUNCH(std::uint64_t)
OMNIQ_LAUNCH(std::string)
OMNIQ_LAUNCH(std::optional<std::uint64_t>)
OMNIQ_LAUNCH(std::vector<std::string>)
OMNIQ_LAUNCH(StreamReport)
OMNIQ_LAUNCH(BucketReport)
OMNIQ_LAUNCH(Task)
OMNIQ_LAUNCH(std::vector<Task>)
OMNIQ_LAUNCH(std::optional<Lease>)
OMNIQ_LAUNCH(std::vector<Lease>)
OMNIQ_LAUNCH(std::optional<TaskRecord>)
OMNIQ_LAUNCH(std::vector<DeadLetter>)
OMNIQ_LAUNCH(std::optional<TaskResult>)
OMNIQ_LAUNCH(std::optional<ResultRecord>)
OMNIQ_LAUNCH(std::vector<TaskResult>)
OMNIQ_LAUNCH(std::optional<ScheduleRecord>)
OMNIQ_LAUNCH(std::vector<ScheduleRecord>)
OMNIQ_LAUNCH(std::optional<TaskEvent>)
OMNIQ_LAUNCH(std::vector<TaskEvent>)
OMNIQ_LAUNCH(EventFollower)

#undef OMNIQ_LAUNCH

}  // namespace omniq::detail
