# SIMACCEL_SANITIZE=address adds ASan + UBSan; =thread adds TSan. Applied to everything we build,
# so the modules loaded into an uninstrumented `openssl` need the runtime preloaded (see
# tests/run-with-sanitizer.sh).
if(SIMACCEL_SANITIZE STREQUAL "address")
  add_compile_options(-fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined)
  add_link_options(-fsanitize=address,undefined)
elseif(SIMACCEL_SANITIZE STREQUAL "thread")
  add_compile_options(-fsanitize=thread -fno-omit-frame-pointer)
  add_link_options(-fsanitize=thread)
elseif(NOT SIMACCEL_SANITIZE STREQUAL "")
  message(FATAL_ERROR "SIMACCEL_SANITIZE must be '', 'address' or 'thread', not '${SIMACCEL_SANITIZE}'")
endif()
