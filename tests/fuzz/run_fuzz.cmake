# Driven by tests/fuzz/fuzz_tests.cmake (cmake -P):
#   STEP=build  configure + build the fuzz project (SOURCE_DIR) with CXX into WORK_DIR/build
#   STEP=run    fuzz TARGET for $OMNIQ_FUZZ_SECONDS (default 20) from a fresh copy of its seed
#               corpus in WORK_DIR/<TARGET>; crash inputs are written there too.
cmake_minimum_required(VERSION 3.25)

include("${CMAKE_CURRENT_LIST_DIR}/../cmake/RunChecked.cmake")
function(run)
  omniq_run(${ARGN})
endfunction()

if(STEP STREQUAL "build")
  if(NOT CXX)
    find_program(clangxx NAMES clang++ clang++-16 clang++-15 clang++-14 NO_CACHE)
    set(CXX "${clangxx}")
  endif()
  if(NOT CXX OR NOT EXISTS "${CXX}")
    message(FATAL_ERROR "fuzz: clang++ not found, so the libFuzzer targets cannot be built. "
                        "Install clang and libclang-rt-14-dev (cmake/setup-deps.sh does), or pass -DOMNIQ_FUZZ_CXX=<path> to cmake.")
  endif()
  # Incremental: the build directory is kept between runs.
  run(${CMAKE_COMMAND} -S "${SOURCE_DIR}" -B "${WORK_DIR}/build" -DCMAKE_CXX_COMPILER=${CXX}
      -DCMAKE_BUILD_TYPE=RelWithDebInfo)
  run(${CMAKE_COMMAND} --build "${WORK_DIR}/build" -j 2)
elseif(STEP STREQUAL "run")
  set(fuzzer "${WORK_DIR}/build/fuzz_${TARGET}")
  if(NOT EXISTS "${fuzzer}")
    message(FATAL_ERROR "fuzz: ${fuzzer} is missing: the \"security: fuzz build\" test did not build it")
  endif()
  set(seconds 20)
  if(DEFINED ENV{OMNIQ_FUZZ_SECONDS})
    if(NOT "$ENV{OMNIQ_FUZZ_SECONDS}" MATCHES "^[1-9][0-9]*$")
      message(FATAL_ERROR "fuzz: OMNIQ_FUZZ_SECONDS must be a positive number of seconds, got \"$ENV{OMNIQ_FUZZ_SECONDS}\"")
    endif()
    set(seconds $ENV{OMNIQ_FUZZ_SECONDS})
  endif()
  # Symbolized stacks in reports when LLVM's symbolizer is installed (package llvm-14).
  find_program(symbolizer NAMES llvm-symbolizer llvm-symbolizer-14 NO_CACHE)
  if(symbolizer)
    set(ENV{ASAN_SYMBOLIZER_PATH} "${symbolizer}")
  endif()
  set(work "${WORK_DIR}/${TARGET}")
  file(REMOVE_RECURSE "${work}")
  file(MAKE_DIRECTORY "${work}")
  file(COPY "${SOURCE_DIR}/corpus/${TARGET}/" DESTINATION "${work}/corpus")
  # Output goes straight to the ctest log; a crash, leak, sanitizer report, timeout (> 10 s for
  # one input) or 2 GB of RSS makes libFuzzer exit non-zero and leave the input in ${work}.
  execute_process(
    COMMAND "${fuzzer}" -max_total_time=${seconds} -timeout=10 -rss_limit_mb=2048 -max_len=4096
            -print_final_stats=1 -artifact_prefix=${work}/ "${work}/corpus"
    WORKING_DIRECTORY "${work}"
    RESULT_VARIABLE rc)
  if(NOT rc EQUAL 0)
    file(GLOB found "${work}/crash-*" "${work}/leak-*" "${work}/timeout-*" "${work}/oom-*")
    message(FATAL_ERROR "fuzz: ${TARGET} failed (${rc}); reproduce with: ${fuzzer} ${found}")
  endif()
else()
  message(FATAL_ERROR "run_fuzz.cmake: unknown STEP \"${STEP}\"")
endif()
