# Warnings and sanitizers for this project's own targets only (never for consumers).

function(mqttx_target_defaults target)
  target_compile_options(${target} PRIVATE -Wall -Wextra -Wpedantic)
  if(MQTTX_SANITIZE)
    list(JOIN MQTTX_SANITIZE "," _san)
    # No recovery: a UBSan finding fails the test instead of scrolling past.
    target_compile_options(${target} PRIVATE -fsanitize=${_san} -fno-sanitize-recover=all
                                             -fno-omit-frame-pointer)
    target_link_options(${target} PRIVATE -fsanitize=${_san})
  endif()
endfunction()
