# Warnings are on for omniq's own targets and fatal when omniq is the top-level project;
# they are never forced on consumers (the flags are PRIVATE).
function(omniq_set_warnings target)
  target_compile_options(${target} PRIVATE -Wall -Wextra -Wpedantic)
  if(CMAKE_CXX_COMPILER_ID STREQUAL "GNU")
    # g++ 12 at -O2 misreads Boost.Asio's coroutine frame allocator (operator new/delete of
    # awaitable_frame_base) as a mismatched pair: a known false positive.
    target_compile_options(${target} PRIVATE -Wno-mismatched-new-delete)
  endif()
  if(OMNIQ_WARNINGS_AS_ERRORS)
    target_compile_options(${target} PRIVATE -Werror)
  endif()
endfunction()
