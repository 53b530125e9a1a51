# Installs <SIMACCEL_ALIAS_DIR>/qatengine.so as a copy of the simaccel.so installed there, unless
# a qatengine.so that is not simaccel's is already there: the alias must never shadow Intel's
# engine silently. simaccel's own (an earlier install) is recognised by the alias's engine name,
# which every simaccel.so carries, and is replaced.
# Used by install(CODE) in engine/CMakeLists.txt; also runs as `cmake -DSIMACCEL_ALIAS_DIR=<dir>
# -P InstallQatAlias.cmake` (tests/qat).
if(NOT SIMACCEL_ALIAS_DIR)
  message(FATAL_ERROR "simaccel: InstallQatAlias.cmake needs SIMACCEL_ALIAS_DIR")
endif()
set(_src "${SIMACCEL_ALIAS_DIR}/simaccel.so")
set(_dst "${SIMACCEL_ALIAS_DIR}/qatengine.so")
if(NOT EXISTS "${_src}")
  message(FATAL_ERROR "simaccel: cannot install the qatengine alias: ${_src} is not installed")
endif()
if(EXISTS "${_dst}" OR IS_SYMLINK "${_dst}")
  file(STRINGS "${_dst}" _ours REGEX "simaccel as qatengine" LIMIT_COUNT 1)
  if(NOT _ours)
    message(FATAL_ERROR "simaccel: refusing to install the qatengine alias over ${_dst}, which "
                        "is not simaccel's (Intel's QAT_Engine?). Remove it, or configure with "
                        "-DSIMACCEL_QATENGINE_ALIAS=OFF.")
  endif()
  file(REMOVE "${_dst}")
endif()
message(STATUS "Installing: ${_dst} (simaccel as qatengine)")
file(COPY_FILE "${_src}" "${_dst}")
