// decode_event on arbitrary bytes (events arrive from the event stream, written by anyone).
#include "fuzz_model.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const auto event = omniq_fuzz::decode_checked(omniq_fuzz::as_text(data, size), &omniq::decode_event);
  if (!event) return 0;
  (void)omniq_fuzz::validates(*event);
  return 0;
}
