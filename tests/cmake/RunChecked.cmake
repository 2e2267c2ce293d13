# omniq_run(<command> <args>...), for the tests' cmake -P scripts: runs the command; a non-zero
# exit stops the script with the command, its output and its errors. Its standard output is
# left in OMNIQ_RUN_OUTPUT.
function(omniq_run)
  execute_process(COMMAND ${ARGN} RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "command failed (${rc}): ${ARGN}\n${out}\n${err}")
  endif()
  set(OMNIQ_RUN_OUTPUT "${out}" PARENT_SCOPE)
endfunction()
