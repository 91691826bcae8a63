# ctest -P script: builds TARGET (a file compiled with every misuse in it), which must fail, and
# requires, for each misuse, an error located in its block and its reason in the compiler's output. EXPECTED holds one `DEFINE=regex` per
# line (a newline inside a regex written as <newline>).
execute_process(COMMAND ${CMAKE_COMMAND} --build ${BUILD_DIR} --target ${TARGET}
                RESULT_VARIABLE result OUTPUT_VARIABLE output ERROR_VARIABLE output)
if(result EQUAL 0)
  message(FATAL_ERROR "${TARGET} compiled: each misuse in it must be refused")
endif()
file(STRINGS ${EXPECTED} rules)
set(missing 0)
foreach(rule IN LISTS rules)
  string(FIND "${rule}" "=" at)
  string(SUBSTRING "${rule}" 0 ${at} define)
  math(EXPR at "${at} + 1")
  string(SUBSTRING "${rule}" ${at} -1 expected)
  string(REPLACE "<newline>" "\n" expected "${expected}")
  # Each misuse's block names itself (#line "misuse_<DEFINE>"): an error located there shows the
  # block itself was refused, not only that its message appeared somewhere.
  string(FIND "${output}" "misuse_${define}:" located)
  if(located EQUAL -1)
    message(SEND_ERROR "${define}: no error located in its block (misuse_${define})")
    math(EXPR missing "${missing} + 1")
  elseif(output MATCHES "${expected}")
    message(STATUS "refused as expected: ${define}")
  else()
    message(SEND_ERROR "${define}: the compiler did not say \"${expected}\"")
    math(EXPR missing "${missing} + 1")
  endif()
endforeach()
if(missing GREATER 0)
  message(FATAL_ERROR "${missing} misuse(s) not refused with their reason; the compiler said:\n${output}")
endif()
