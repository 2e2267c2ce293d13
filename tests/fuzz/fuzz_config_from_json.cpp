// config_from_json on arbitrary JSON. Bad keys or values must be refused with
// omniq::Error(invalid_config); an accepted config must survive config_to_json ->
// config_from_json unchanged (documented in config.hpp), and redaction must not throw.
#include <cstddef>
#include <cstdint>

#include <nlohmann/json.hpp>

#include "fuzz_model.hpp"
#include "omniq/config.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const auto j = nlohmann::json::parse(data, data + size, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return 0;  // not JSON: the file loader's concern, not this target's
  omniq::Config config;
  try {
    config = omniq::config_from_json(j);
  } catch (const omniq::Error& e) {
    if (e.kind() != omniq::errc::invalid_config) omniq_fuzz::broken("threw other than invalid_config", e.what());
    return 0;
  }
  const auto dumped = omniq::config_to_json(config);
  omniq::Config again;
  try {
    again = omniq::config_from_json(dumped);
  } catch (const omniq::Error& e) {
    omniq_fuzz::broken("config_to_json output is refused by config_from_json", dumped.dump(), e.what());
  }
  if (!(again == config))
    omniq_fuzz::broken("config_from_json(config_to_json(c)) != c", dumped.dump(), omniq::config_to_json(again).dump());
  (void)omniq::config_to_json_redacted(config);
  (void)config.tls_enabled();
  return 0;
}
