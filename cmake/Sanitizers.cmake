# SIMACCEL_SANITIZE=address adds ASan + UBSan; =thread adds TSan. Applied to everything we build,
# so the modules loaded into an uninstrumented `openssl`, `haproxy` or `nginx` need the runtime
# preloaded (see tests/sanitizers/sanitizers.cmake).
if(SIMACCEL_SANITIZE STREQUAL "address")
  add_compile_options(-fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined)
  add_link_options(-fsanitize=address,undefined)
elseif(SIMACCEL_SANITIZE STREQUAL "thread")
  # GCC 12's -Wmaybe-uninitialized misfires on std::variant moves under -fsanitize=thread
  # (tests/common/frontend.cc), and -Werror would stop the build; GCC documents that sanitizers
  # make that warning unreliable. The other builds keep it.
  add_compile_options(-fsanitize=thread -fno-omit-frame-pointer -Wno-maybe-uninitialized)
  add_link_options(-fsanitize=thread)
elseif(NOT SIMACCEL_SANITIZE STREQUAL "")
  message(FATAL_ERROR "SIMACCEL_SANITIZE must be '', 'address' or 'thread', not '${SIMACCEL_SANITIZE}'")
endif()
