// decode_task on arbitrary bytes, then the task's own arithmetic (expiry, backoff).
#include <algorithm>

#include "fuzz_model.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const auto task = omniq_fuzz::decode_checked(omniq_fuzz::as_text(data, size), &omniq::decode_task);
  if (!task) return 0;
  (void)omniq_fuzz::validates(*task);
  (void)task->is_expired(task->created_at);
  (void)task->is_ready(task->created_at);
  if (const auto backoff = task->retry_backoff();
      backoff < omniq::Duration::zero() || backoff > std::max(task->retry_delay, omniq::Task::max_retry_backoff))
    omniq_fuzz::broken("retry_backoff() out of [0, max(retry_delay, max_retry_backoff)]", omniq::encode(*task));
  return 0;
}
