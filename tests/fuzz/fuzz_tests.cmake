# Included from tests/CMakeLists.txt. One ctest test configures and builds the clang/libFuzzer
# project in tests/fuzz into this build tree; one test per target then fuzzes for a bounded
# time (OMNIQ_FUZZ_SECONDS, default 20) from a copy of its seed corpus (tests/fuzz/corpus/<target>),
# so the source tree is never written. All carry the label "security". A missing clang fails
# the build test, and so every run test, with a message saying what to install.
set(OMNIQ_FUZZ_TARGETS decode_task decode_result decode_event decode_schedule cron config_from_json)

set(OMNIQ_FUZZ_CXX "" CACHE STRING "clang++ for the libFuzzer targets (empty: looked up when the test runs)")

set(fuzz_dir "${CMAKE_CURRENT_BINARY_DIR}/fuzz")
set(fuzz_script "${CMAKE_CURRENT_LIST_DIR}/run_fuzz.cmake")

add_test(NAME "security: fuzz build"
  COMMAND ${CMAKE_COMMAND} -DSTEP=build -DSOURCE_DIR=${CMAKE_CURRENT_LIST_DIR} -DWORK_DIR=${fuzz_dir}
          "-DCXX=${OMNIQ_FUZZ_CXX}" -P ${fuzz_script})
set_tests_properties("security: fuzz build" PROPERTIES
  LABELS security TIMEOUT 900 FIXTURES_SETUP omniq_fuzz_build)

# The time limit per run test is read when ctest runs; the ctest timeout is fixed here, from
# OMNIQ_FUZZ_SECONDS at configure time when it is set (at least 10 minutes).
set(fuzz_timeout 600)
if(DEFINED ENV{OMNIQ_FUZZ_SECONDS} AND "$ENV{OMNIQ_FUZZ_SECONDS}" MATCHES "^[0-9]+$")
  math(EXPR fuzz_timeout "$ENV{OMNIQ_FUZZ_SECONDS} + 120")
  if(fuzz_timeout LESS 600)
    set(fuzz_timeout 600)
  endif()
endif()

foreach(target IN LISTS OMNIQ_FUZZ_TARGETS)
  add_test(NAME "security: fuzz ${target}"
    COMMAND ${CMAKE_COMMAND} -DSTEP=run -DTARGET=${target} -DSOURCE_DIR=${CMAKE_CURRENT_LIST_DIR}
            -DWORK_DIR=${fuzz_dir} -P ${fuzz_script})
  set_tests_properties("security: fuzz ${target}" PROPERTIES
    LABELS security TIMEOUT ${fuzz_timeout} FIXTURES_REQUIRED omniq_fuzz_build)
endforeach()
