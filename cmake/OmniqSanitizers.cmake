# OMNIQ_SANITIZE builds every target of this project (library, tests, examples, benchmarks)
# with a sanitizer: "" (default, none), "address,undefined" or "thread". Any UB report is fatal
# (-fno-sanitize-recover=undefined) so a test fails on it instead of printing and going on.
# tests/run-tests.sh builds build-asan and build-tsan trees with it; see docs/testing.md.
# nats.c (libnats) is not instrumented: TSan cannot see its locks, see tests/tsan.supp.
set(OMNIQ_SANITIZE "" CACHE STRING "Sanitizers for omniq's own targets: \"\", \"address,undefined\" or \"thread\"")
set_property(CACHE OMNIQ_SANITIZE PROPERTY STRINGS "" "address,undefined" "thread")

if(OMNIQ_SANITIZE)
  set(omniq_sanitizers_known "address" "undefined" "address,undefined" "undefined,address" "thread")
  if(NOT OMNIQ_SANITIZE IN_LIST omniq_sanitizers_known)
    message(FATAL_ERROR "OMNIQ_SANITIZE must be \"\", \"address,undefined\" or \"thread\", got \"${OMNIQ_SANITIZE}\"")
  endif()
  add_compile_options(-fsanitize=${OMNIQ_SANITIZE} -fno-omit-frame-pointer)
  if(OMNIQ_SANITIZE MATCHES "undefined")
    add_compile_options(-fno-sanitize-recover=undefined)
  endif()
  if(OMNIQ_SANITIZE STREQUAL "thread" AND CMAKE_CXX_COMPILER_ID STREQUAL "GNU")
    # g++ 12 warns at every std::atomic_thread_fence (Asio's fenced blocks) that TSan does not
    # model fences: hundreds of identical notes that would bury real output.
    add_compile_options(-Wno-tsan)
  endif()
  add_link_options(-fsanitize=${OMNIQ_SANITIZE})
  message(STATUS "omniq: building with -fsanitize=${OMNIQ_SANITIZE}")
endif()
