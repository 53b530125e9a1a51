# The Debian package: `cpack -G DEB` in a build tree (scripts/package.sh configures one for it)
# writes simaccel_<version>_<arch>.deb with
#   <enginesdir>/simaccel.so            the engine (pkg-config --variable=enginesdir libcrypto)
#   <modulesdir>/simaccel.so            the provider (pkg-config --variable=modulesdir libcrypto)
#   <libdir>/simaccel/libsimaccel-core.so.0
#                                       the core, private: found through the modules' RUNPATH,
#                                       exporting only bridge/simaccel-core.map's symbols
#   /usr/share/doc/simaccel/            README.md, docs/*.md
#   /usr/share/doc/simaccel/examples/   conf/*.cnf, conf/profiles/*.cnf
# (<libdir> = pkg-config --variable=libdir libcrypto.) With -DSIMACCEL_QATENGINE_ALIAS=ON the
# package also holds <enginesdir>/qatengine.so, and a preinst (deb/preinst.in) that refuses to
# install over a qatengine.so that is not simaccel's. tests/package checks the result.

install(FILES ${PROJECT_SOURCE_DIR}/README.md DESTINATION ${CMAKE_INSTALL_DOCDIR})
file(GLOB _simaccel_docs ${PROJECT_SOURCE_DIR}/docs/*.md)
install(FILES ${_simaccel_docs} DESTINATION ${CMAKE_INSTALL_DOCDIR})
file(GLOB _simaccel_confs ${PROJECT_SOURCE_DIR}/conf/*.cnf)
install(FILES ${_simaccel_confs} DESTINATION ${CMAKE_INSTALL_DOCDIR}/examples)
file(GLOB _simaccel_profiles ${PROJECT_SOURCE_DIR}/conf/profiles/*.cnf)
install(FILES ${_simaccel_profiles} DESTINATION ${CMAKE_INSTALL_DOCDIR}/examples/profiles)

set(SIMACCEL_PACKAGE_MAINTAINER "simaccel developers <simaccel@localhost>" CACHE STRING
    "The Maintainer field of the Debian package")

set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGE_NAME simaccel)
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_PACKAGE_CONTACT "${SIMACCEL_PACKAGE_MAINTAINER}")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "OpenSSL engine and provider emulating an async crypto accelerator")
set(CPACK_PACKAGE_DESCRIPTION
    "simaccel is an OpenSSL 3 ENGINE and PROVIDER that send RSA, ECDSA and ECDH private-key
operations to a simulated asynchronous crypto accelerator (in the style of Intel QAT): bounded
request rings, worker threads, a latency and capacity model, fault injection. Inside an OpenSSL
ASYNC job the caller pauses while the device works, so servers written for async offload can be
built, tested and sized without the card.")
# Everything has absolute paths in the package (libcrypto's directories are absolute): the
# staging install goes through DESTDIR, with the prefix the package installs under.
set(CPACK_SET_DESTDIR ON)
set(CPACK_INSTALL_PREFIX /usr)
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
set(CPACK_STRIP_FILES ON)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT) # simaccel_<version>_<arch>.deb
set(CPACK_DEBIAN_PACKAGE_SECTION libs)
set(CPACK_DEBIAN_PACKAGE_PRIORITY optional)
set(CPACK_DEBIAN_PACKAGE_HOMEPAGE "")
# Depends from the ELF files (libssl3, liburing2, libstdc++6, libc6); the core is the package's
# own, in its private directory.
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS_PRIVATE_DIRS "${SIMACCEL_INSTALL_CORE_DIR}")
if(SIMACCEL_QATENGINE_ALIAS AND SIMACCEL_BUILD_ENGINE)
  configure_file(${CMAKE_CURRENT_LIST_DIR}/deb/preinst.in ${PROJECT_BINARY_DIR}/deb/preinst @ONLY
                 FILE_PERMISSIONS OWNER_READ OWNER_WRITE OWNER_EXECUTE GROUP_READ GROUP_EXECUTE
                                  WORLD_READ WORLD_EXECUTE)
  set(CPACK_DEBIAN_PACKAGE_CONTROL_EXTRA ${PROJECT_BINARY_DIR}/deb/preinst)
endif()
include(CPack)
