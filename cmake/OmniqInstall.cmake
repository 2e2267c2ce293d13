# install(): the library, its headers, an exported target set omniq::omniq, a package config
# with version file for find_package(omniq), and omniq.pc for pkg-config users.
include(GNUInstallDirs)
include(CMakePackageConfigHelpers)

install(TARGETS omniq EXPORT omniqTargets
  LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR}
  ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR}
  RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR}
  INCLUDES DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
install(DIRECTORY ${PROJECT_SOURCE_DIR}/include/omniq DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
install(FILES ${PROJECT_BINARY_DIR}/include/omniq/version.hpp DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}/omniq)

set(OMNIQ_CMAKE_DIR ${CMAKE_INSTALL_LIBDIR}/cmake/omniq)
install(EXPORT omniqTargets NAMESPACE omniq:: DESTINATION ${OMNIQ_CMAKE_DIR})
configure_package_config_file(${PROJECT_SOURCE_DIR}/cmake/omniqConfig.cmake.in
  ${PROJECT_BINARY_DIR}/omniqConfig.cmake INSTALL_DESTINATION ${OMNIQ_CMAKE_DIR})
write_basic_package_version_file(${PROJECT_BINARY_DIR}/omniqConfigVersion.cmake
  COMPATIBILITY SameMinorVersion)
install(FILES ${PROJECT_BINARY_DIR}/omniqConfig.cmake ${PROJECT_BINARY_DIR}/omniqConfigVersion.cmake
  DESTINATION ${OMNIQ_CMAKE_DIR})

# Relocatable: the prefix is found from the .pc file's own place, so `cmake --install
# --prefix X` works wherever X is.
file(RELATIVE_PATH OMNIQ_PC_TO_PREFIX "/prefix/${CMAKE_INSTALL_LIBDIR}/pkgconfig" "/prefix")
configure_file(${PROJECT_SOURCE_DIR}/cmake/omniq.pc.in ${PROJECT_BINARY_DIR}/omniq.pc @ONLY)
install(FILES ${PROJECT_BINARY_DIR}/omniq.pc DESTINATION ${CMAKE_INSTALL_LIBDIR}/pkgconfig)
