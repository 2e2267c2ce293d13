// decode_result on arbitrary bytes, then the result's expiry arithmetic.
#include "fuzz_model.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const auto result = omniq_fuzz::decode_checked(omniq_fuzz::as_text(data, size), &omniq::decode_result);
  if (!result) return 0;
  (void)omniq_fuzz::validates(*result);
  if (const auto expiry = result->expiry(); expiry && !result->is_expired(*expiry))
    omniq_fuzz::broken("a result is not expired at its own expiry()", omniq::encode(*result));
  return 0;
}
