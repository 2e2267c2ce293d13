// decode_schedule on arbitrary bytes, then what the scheduler does with a stored schedule:
// compute occurrences, mark runs, pause/resume, and store it again (encode -> decode).
#include "fuzz_model.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  auto schedule = omniq_fuzz::decode_checked(omniq_fuzz::as_text(data, size), &omniq::decode_schedule);
  if (!schedule || !omniq_fuzz::validates(*schedule)) return 0;
  (void)schedule->is_ready(schedule->created_at);
  // A valid schedule has what its type needs, so computing occurrences must not throw.
  const auto first = schedule->compute_next_after(schedule->created_at);
  if (first && *first <= schedule->created_at)
    omniq_fuzz::broken("compute_next_after(t) is not after t", omniq::encode(*schedule));
  auto occurrence = schedule->next_run ? schedule->next_run : first;
  for (int run = 0; run < 3 && occurrence; ++run) {
    schedule->mark_run(*occurrence);
    omniq_fuzz::check_round_trip(*schedule, &omniq::decode_schedule, "a schedule after mark_run() does not store");
    if (schedule->next_run && *schedule->next_run <= *occurrence)
      omniq_fuzz::broken("mark_run() set next_run at or before the occurrence", omniq::encode(*schedule));
    occurrence = schedule->next_run;
  }
  schedule->status = omniq::ScheduleStatus::active;
  schedule->pause();
  schedule->resume(schedule->last_run.value_or(schedule->created_at));
  omniq_fuzz::check_round_trip(*schedule, &omniq::decode_schedule, "a schedule after resume() does not store");
  return 0;
}
