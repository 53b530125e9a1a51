add_library(simaccel_warnings INTERFACE)
target_compile_options(simaccel_warnings INTERFACE -Wall -Wextra -Wshadow $<$<COMPILE_LANGUAGE:CXX>:-Wnon-virtual-dtor>
  -Wno-missing-field-initializers $<$<BOOL:${SIMACCEL_WERROR}>:-Werror>)
