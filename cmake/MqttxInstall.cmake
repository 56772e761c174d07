# Installs headers, the library and a relocatable package config with a version file,
# so that applications can `find_package(mqttx CONFIG REQUIRED)`.
include(CMakePackageConfigHelpers)

set(MQTTX_CMAKE_DIR ${CMAKE_INSTALL_LIBDIR}/cmake/mqttx)

set(mqttx_installed_targets mqttx)
if(MQTTX_BUILD_HTTP)
  list(APPEND mqttx_installed_targets mqttx_http)
endif()
install(TARGETS ${mqttx_installed_targets} EXPORT mqttxTargets
        ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR}
        LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR}
        RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR}
        INCLUDES DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
install(DIRECTORY include/mqttx DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
install(EXPORT mqttxTargets NAMESPACE mqttx:: DESTINATION ${MQTTX_CMAKE_DIR})

configure_package_config_file(cmake/mqttxConfig.cmake.in
  ${PROJECT_BINARY_DIR}/mqttxConfig.cmake
  INSTALL_DESTINATION ${MQTTX_CMAKE_DIR})
write_basic_package_version_file(${PROJECT_BINARY_DIR}/mqttxConfigVersion.cmake
  COMPATIBILITY SameMinorVersion)
install(FILES ${PROJECT_BINARY_DIR}/mqttxConfig.cmake ${PROJECT_BINARY_DIR}/mqttxConfigVersion.cmake
        DESTINATION ${MQTTX_CMAKE_DIR})
