#define CATCH_CONFIG_RUNNER
#include <catch2/catch.hpp>
#include <spdlog/spdlog.h>

int main(int argc, char* argv[]) {
  // Keep test output readable; failures print their own context.
  spdlog::set_level(spdlog::level::warn);
  return Catch::Session().run(argc, argv);
}
