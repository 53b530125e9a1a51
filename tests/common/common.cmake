# Shared helpers of the OpenSSL-level tests (engine and provider): the Frontend abstraction, the
# ASYNC job driver, key and certificate helpers, the software reference, the stats reader, the
# engine-level job pool of the model, stress and fork tests (model_util) and /proc readings
# (proc_usage.h).
# Included by each test folder that needs it; defines the library once.
if(NOT TARGET simaccel_test_common)
  add_library(simaccel_test_common STATIC
    ${CMAKE_CURRENT_LIST_DIR}/async_runner.cc
    ${CMAKE_CURRENT_LIST_DIR}/frontend.cc
    ${CMAKE_CURRENT_LIST_DIR}/json.cc
    ${CMAKE_CURRENT_LIST_DIR}/keys.cc
    ${CMAKE_CURRENT_LIST_DIR}/model_util.cc
    ${CMAKE_CURRENT_LIST_DIR}/stats.cc)
  # bridge/include for simaccel/ossl_ptr.h alone (header-only): the tests link no simaccel code.
  target_include_directories(simaccel_test_common PUBLIC ${CMAKE_CURRENT_LIST_DIR}
    ${PROJECT_SOURCE_DIR}/bridge/include)
  # The software reference uses the legacy RSA/EC_KEY methods and the engine frontend the ENGINE
  # API, both deprecated in OpenSSL 3 but exactly what these tests must exercise.
  target_compile_definitions(simaccel_test_common PUBLIC OPENSSL_SUPPRESS_DEPRECATED)
  target_link_libraries(simaccel_test_common PUBLIC GTest::gtest OpenSSL::SSL OpenSSL::Crypto
    Threads::Threads PRIVATE simaccel_warnings)
  # The tests' main(): gtest plus the process's frontend (frontend.h). Tests with a main() of
  # their own, or gtest's, link simaccel_test_common alone.
  add_library(simaccel_test_main STATIC ${CMAKE_CURRENT_LIST_DIR}/test_main.cc)
  target_link_libraries(simaccel_test_main PUBLIC simaccel_test_common PRIVATE simaccel_warnings)
endif()

# simaccel_discover_tests(TARGET PREFIX <prefix> LABEL <label> [TIMEOUT <s>] [RUN_SERIAL]
#                         [EXTRA_ARGS <arg>...]): the CTest tests of a GoogleTest executable, named
# <prefix><Suite>.<Test>; a parameterised test's name ends in its name generator's part alone
# (NO_PRETTY_VALUES: gtest's dump of the parameter bytes held pointers, so the names changed from
# build to build; PrintTo functions next to the parameter types make gtest's own output read).
# GTEST_SKIP shows as skipped. One label: gtest_discover_tests (CMake 3.25) keeps only the first
# entry of a list-valued property.
function(simaccel_discover_tests target)
  cmake_parse_arguments(PARSE_ARGV 1 T "RUN_SERIAL" "PREFIX;LABEL;TIMEOUT" "EXTRA_ARGS")
  if(NOT T_TIMEOUT)
    set(T_TIMEOUT 120)
  endif()
  set(serial)
  if(T_RUN_SERIAL)
    set(serial RUN_SERIAL TRUE)
  endif()
  set(extra)
  if(T_EXTRA_ARGS)
    set(extra EXTRA_ARGS ${T_EXTRA_ARGS})
  endif()
  gtest_discover_tests(${target}
    TEST_PREFIX "${T_PREFIX}"
    NO_PRETTY_VALUES
    ${extra}
    DISCOVERY_TIMEOUT 30
    PROPERTIES TIMEOUT ${T_TIMEOUT} LABELS "${T_LABEL}" ${serial}
      SKIP_REGULAR_EXPRESSION "\\[  SKIPPED \\]")
endfunction()
