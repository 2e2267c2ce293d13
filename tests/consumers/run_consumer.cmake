# Builds and runs tests/consumers/consumer.cpp the way a user would consume omniq.
#   MODE=find_package     install omniq into a prefix, then find_package(omniq) from it
#   MODE=pkg_config       install omniq into a prefix, then compile with `pkg-config omniq`
#   MODE=add_subdirectory add omniq's source tree to the consumer's build
# Inputs: OMNIQ_SOURCE_DIR, OMNIQ_BINARY_DIR, WORK_DIR, CXX.
cmake_minimum_required(VERSION 3.25)

include("${CMAKE_CURRENT_LIST_DIR}/../cmake/RunChecked.cmake")
function(run)
  omniq_run(${ARGN})
  message(STATUS "${OMNIQ_RUN_OUTPUT}")
endfunction()

file(REMOVE_RECURSE "${WORK_DIR}")
set(prefix "${WORK_DIR}/prefix")
set(consumers "${OMNIQ_SOURCE_DIR}/tests/consumers")

if(MODE STREQUAL "find_package" OR MODE STREQUAL "pkg_config")
  run(${CMAKE_COMMAND} --install "${OMNIQ_BINARY_DIR}" --prefix "${prefix}")
endif()

if(MODE STREQUAL "find_package")
  run(${CMAKE_COMMAND} -S "${consumers}/find_package" -B "${WORK_DIR}/build"
      -DCMAKE_PREFIX_PATH=${prefix} -DCMAKE_CXX_COMPILER=${CXX} -DCMAKE_BUILD_TYPE=Release)
  run(${CMAKE_COMMAND} --build "${WORK_DIR}/build" -j 2)
  run("${WORK_DIR}/build/consumer")
elseif(MODE STREQUAL "add_subdirectory")
  run(${CMAKE_COMMAND} -S "${consumers}/add_subdirectory" -B "${WORK_DIR}/build"
      -DOMNIQ_SOURCE_DIR=${OMNIQ_SOURCE_DIR} -DCMAKE_CXX_COMPILER=${CXX} -DCMAKE_BUILD_TYPE=)
  run(${CMAKE_COMMAND} --build "${WORK_DIR}/build" -j 2)
  run("${WORK_DIR}/build/consumer")
elseif(MODE STREQUAL "pkg_config")
  set(ENV{PKG_CONFIG_PATH} "${prefix}/lib/pkgconfig:${prefix}/lib/x86_64-linux-gnu/pkgconfig")
  execute_process(COMMAND pkg-config --cflags --libs omniq OUTPUT_VARIABLE flags RESULT_VARIABLE rc
                  OUTPUT_STRIP_TRAILING_WHITESPACE)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "pkg-config cannot find omniq in ${prefix}")
  endif()
  separate_arguments(flags UNIX_COMMAND "${flags}")
  file(MAKE_DIRECTORY "${WORK_DIR}/build")
  run(${CXX} -O1 -o "${WORK_DIR}/build/consumer" "${consumers}/consumer.cpp" ${flags})
  run("${WORK_DIR}/build/consumer")
else()
  message(FATAL_ERROR "unknown MODE ${MODE}")
endif()
file(REMOVE_RECURSE "${WORK_DIR}")
