# `cmake --install build --prefix PREFIX` (README "Install"): the commands, their data, and the
# simulator's libraries with a package config, so that another CMake project can
#
#   find_package(moesim 0.1 REQUIRED)          # CMAKE_PREFIX_PATH=PREFIX
#   target_link_libraries(app PRIVATE moesim::models)
#
# PREFIX/bin/moesim, moebench        the commands
# PREFIX/share/moesim/catalog        models/catalog/*.pbtxt
# PREFIX/share/moesim/scenarios      scenarios/ (clusters/, calibration/, traces/ ...)
# PREFIX/include/moesim/...          the libraries' headers (proto/ with the generated *.pb.h)
# PREFIX/lib/libmoesim_*.a           the libraries (static)
# PREFIX/lib/cmake/moesim/           moesimConfig.cmake, its version file, the exported targets
# PREFIX/lib/python3.X/dist-packages/moesim/   the Python module (`import moesim`), when built
#
# Nothing installed knows PREFIX or the source tree: the commands find share/moesim from their own
# location (proto/data_dir.h), so the prefix can be moved or copied whole.
include(CMakePackageConfigHelpers)

# The build tree's data layout, as installed: build/share/moesim/{catalog,scenarios}, links into
# the source tree (edits there show at once), which build/sim/moesim, build/backend/moebench and
# build/tests/* find at ../share/moesim as an installed PREFIX/bin/moesim does.
set(moesim_build_data "${PROJECT_BINARY_DIR}/share/moesim")
file(MAKE_DIRECTORY "${moesim_build_data}")
file(CREATE_LINK "${PROJECT_SOURCE_DIR}/models/catalog" "${moesim_build_data}/catalog" SYMBOLIC)
file(CREATE_LINK "${PROJECT_SOURCE_DIR}/scenarios" "${moesim_build_data}/scenarios" SYMBOLIC)

install(TARGETS moesim RUNTIME DESTINATION bin)
if(TARGET moebench)
  install(TARGETS moebench RUNTIME DESTINATION bin)
endif()
install(DIRECTORY models/catalog/ DESTINATION share/moesim/catalog)
install(DIRECTORY scenarios/ DESTINATION share/moesim/scenarios)

# The simulator's libraries, bottom to top, exported as moesim::NAME (moesim_models ->
# moesim::models). moebench's libraries (backend/) are not exported: their CUDA half exists only
# where CUDA was found, which a package config would have to repeat.
set(moesim_exported
  moesim_proto moesim_topology moesim_models moesim_maxmin moesim_engine moesim_network
  moesim_compute moesim_moe moesim_step moesim_sweep moesim_calibration moesim_report moesim_cli)
foreach(library IN LISTS moesim_exported)
  string(REGEX REPLACE "^moesim_" "" name "${library}")
  set_target_properties(${library} PROPERTIES EXPORT_NAME ${name})
endforeach()
# The headers are C++20; a project linking any library gets that through proto.
target_compile_features(moesim_proto PUBLIC cxx_std_20)
install(TARGETS ${moesim_exported} EXPORT moesimTargets
        ARCHIVE DESTINATION lib
        INCLUDES DESTINATION include/moesim)
install(DIRECTORY proto topology models sim DESTINATION include/moesim
        FILES_MATCHING PATTERN "*.h")
install(DIRECTORY "${PROJECT_BINARY_DIR}/proto/gen/proto/" DESTINATION include/moesim/proto
        FILES_MATCHING PATTERN "*.pb.h")

install(EXPORT moesimTargets NAMESPACE moesim:: DESTINATION lib/cmake/moesim)
configure_package_config_file(scripts/moesimConfig.cmake.in
  "${PROJECT_BINARY_DIR}/moesimConfig.cmake" INSTALL_DESTINATION lib/cmake/moesim)
# 0.x: a minor version may change the libraries' interfaces, so only the same 0.MINOR matches.
write_basic_package_version_file("${PROJECT_BINARY_DIR}/moesimConfigVersion.cmake"
  COMPATIBILITY SameMinorVersion)
install(FILES "${PROJECT_BINARY_DIR}/moesimConfig.cmake"
              "${PROJECT_BINARY_DIR}/moesimConfigVersion.cmake"
        DESTINATION lib/cmake/moesim)

# The Python module (`import moesim`, sim/python/), when built: PREFIX/${MOESIM_PYTHON_DIR}/moesim,
# four folders below PREFIX/share/moesim, which it finds from there as the commands do from bin/.
# tests/install_test.sh imports it from / against the moved prefix.
if(TARGET moesim_python)
  install(TARGETS moesim_python LIBRARY DESTINATION "${MOESIM_PYTHON_DIR}/moesim")
  install(DIRECTORY sim/python/moesim/ DESTINATION "${MOESIM_PYTHON_DIR}/moesim"
          FILES_MATCHING PATTERN "*.py" PATTERN "__pycache__" EXCLUDE)
endif()
