# Warnings are on for omniq's own targets and fatal when omniq is the top-level project;
# they are never forced on consumers (the flags are PRIVATE).
function(omniq_set_warnings target)
  target_compile_options(${target} PRIVATE -Wall -Wextra -Wpedantic)
  if(OMNIQ_WARNINGS_AS_ERRORS)
    target_compile_options(${target} PRIVATE -Werror)
  endif()
endfunction()
