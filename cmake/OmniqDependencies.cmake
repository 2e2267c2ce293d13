# The one place omniq's dependencies are found; cmake/omniqConfig.cmake.in mirrors it for
# consumers of an installed omniq.
include(GNUInstallDirs)
find_package(PkgConfig REQUIRED)
# nats.c: Debian's shipped CMake config is broken, pkg-config is reliable.
pkg_check_modules(NATS REQUIRED IMPORTED_TARGET libnats)
find_package(Boost 1.81 REQUIRED CONFIG)
find_package(nlohmann_json 3.10 REQUIRED)
find_package(spdlog REQUIRED)
find_package(date REQUIRED)
find_package(Threads REQUIRED)
