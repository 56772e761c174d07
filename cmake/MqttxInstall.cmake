# Installs headers, the library and a relocatable package config with a version file,
# so that applications can `find_package(mqttx CONFIG REQUIRED)`.
include(CMakePackageConfigHelpers)

set(MQTTX_CMAKE_DIR ${CMAKE_INSTALL_LIBDIR}/cmake/mqttx)

install(TARGETS mqttx EXPORT mqttxTargets
        ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR}
        LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR}
        RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR}
        INCLUDES DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
install(DIRECTORY include/mqttx DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
install(EXPORT mqttxTargets NAMESPACE mqttx:: DESTINATION ${MQTTX_CMAKE_DIR})
# mqttx::http in an export set of its own: mqttxConfig.cmake loads it (and looks for
# cpp-httplib) only for find_package(mqttx COMPONENTS http).
if(MQTTX_BUILD_HTTP)
  install(TARGETS mqttx_http EXPORT mqttxHttpTargets
          ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR}
          LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR}
          RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR}
          INCLUDES DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
  install(EXPORT mqttxHttpTargets NAMESPACE mqttx:: DESTINATION ${MQTTX_CMAKE_DIR})
endif()

# pkg-config files, relocatable: the prefix is found from where the .pc file is.
file(RELATIVE_PATH MQTTX_PC_TO_PREFIX "/prefix/${CMAKE_INSTALL_LIBDIR}/pkgconfig" "/prefix")
configure_file(cmake/mqttx.pc.in ${PROJECT_BINARY_DIR}/mqttx.pc @ONLY)
install(FILES ${PROJECT_BINARY_DIR}/mqttx.pc DESTINATION ${CMAKE_INSTALL_LIBDIR}/pkgconfig)
if(MQTTX_BUILD_HTTP)
  configure_file(cmake/mqttx-http.pc.in ${PROJECT_BINARY_DIR}/mqttx-http.pc @ONLY)
  install(FILES ${PROJECT_BINARY_DIR}/mqttx-http.pc DESTINATION ${CMAKE_INSTALL_LIBDIR}/pkgconfig)
endif()

configure_package_config_file(cmake/mqttxConfig.cmake.in
  ${PROJECT_BINARY_DIR}/mqttxConfig.cmake
  INSTALL_DESTINATION ${MQTTX_CMAKE_DIR})
write_basic_package_version_file(${PROJECT_BINARY_DIR}/mqttxConfigVersion.cmake
  COMPATIBILITY SameMinorVersion)
install(FILES ${PROJECT_BINARY_DIR}/mqttxConfig.cmake ${PROJECT_BINARY_DIR}/mqttxConfigVersion.cmake
        DESTINATION ${MQTTX_CMAKE_DIR})
