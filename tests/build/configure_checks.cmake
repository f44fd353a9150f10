# Configure-only checks of the top-level CMakeLists.txt (issue 14): each case configures the source
# tree (or a partial copy of it) into a fresh folder and checks the outcome.
#   cmake -DSRC=<source dir> -DBIN=<scratch dir> -DCHECK=werror|missing [-DGENERATOR=<g>]
#         -P configure_checks.cmake
#  werror:  FPSCOPE_WERROR defaults OFF for a Release build (a user's build: a new compiler's new
#           warning must not break it), ON for RelWithDebInfo and Debug, ON for Release when CI=true;
#           <fpscope/version.h> carries the version of project(fpscope VERSION ...).
#  missing: a source tree without one component folder (analysis) fails to configure, naming it.
# Exits non-zero (FATAL_ERROR) on any failed check; removes BIN afterwards.
foreach(v SRC BIN CHECK)
  if(NOT ${v})
    message(FATAL_ERROR "configure_checks: ${v} not given")
  endif()
endforeach()
set(gen_args "")
if(GENERATOR)
  list(APPEND gen_args -G "${GENERATOR}")
endif()
# The smallest configure: no CUDA, tests, benchmarks or GUI.
set(lean -DFPSCOPE_ENABLE_CUDA=OFF -DFPSCOPE_BUILD_TESTS=OFF -DFPSCOPE_BUILD_BENCH=OFF
         -DFPSCOPE_BUILD_GUI=OFF)

# configure(<name> <source> <env args...> -- <cmake args...>): rc, out in ${name}_rc, ${name}_out.
function(configure name source)
  cmake_parse_arguments(C "" "" "ENV;ARGS" ${ARGN})
  execute_process(
    COMMAND "${CMAKE_COMMAND}" -E env ${C_ENV} "${CMAKE_COMMAND}" -S "${source}"
            -B "${BIN}/${name}" ${gen_args} ${lean} ${C_ARGS}
    RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
  set(${name}_rc "${rc}" PARENT_SCOPE)
  set(${name}_out "${out}\n${err}" PARENT_SCOPE)
endfunction()

function(expect_werror name want)
  file(STRINGS "${BIN}/${name}/CMakeCache.txt" line REGEX "^FPSCOPE_WERROR:BOOL=")
  if(NOT line STREQUAL "FPSCOPE_WERROR:BOOL=${want}")
    message(FATAL_ERROR "configure_checks: ${name}: expected FPSCOPE_WERROR=${want}, "
                        "the cache has '${line}'")
  endif()
  message(STATUS "configure_checks: ${name}: FPSCOPE_WERROR=${want}")
endfunction()

file(REMOVE_RECURSE "${BIN}")
if(CHECK STREQUAL "werror")
  # CI is unset for the user's cases: the test itself may run under CI=true.
  foreach(c "release;Release;--unset=CI;OFF" "relwithdebinfo;RelWithDebInfo;--unset=CI;ON"
            "debug;Debug;--unset=CI;ON" "release_ci;Release;CI=true;ON")
    list(GET c 0 name)
    list(GET c 1 type)
    list(GET c 2 env)
    list(GET c 3 want)
    configure(${name} "${SRC}" ENV ${env} ARGS -DCMAKE_BUILD_TYPE=${type})
    if(NOT ${name}_rc EQUAL 0)
      message(FATAL_ERROR "configure_checks: ${name}: configure failed:\n${${name}_out}")
    endif()
    expect_werror(${name} ${want})
  endforeach()

  # The generated version header carries project(fpscope VERSION x.y.z).
  file(STRINGS "${SRC}/CMakeLists.txt" project_line REGEX "^project\\(fpscope VERSION ")
  string(REGEX MATCH "VERSION ([0-9]+\\.[0-9]+\\.[0-9]+)" _ "${project_line}")
  set(version "${CMAKE_MATCH_1}")
  set(header "${BIN}/release/generated/include/fpscope/version.h")
  if(NOT version OR NOT EXISTS "${header}")
    message(FATAL_ERROR "configure_checks: no project version ('${project_line}') or no ${header}")
  endif()
  file(STRINGS "${header}" define REGEX "^#define FPSCOPE_VERSION ")
  if(NOT define STREQUAL "#define FPSCOPE_VERSION \"${version}\"")
    message(FATAL_ERROR "configure_checks: ${header}: '${define}', expected version ${version}")
  endif()
  message(STATUS "configure_checks: version.h: ${version}")
elseif(CHECK STREQUAL "missing")
  # A copy of the tree without analysis/ (tests/ and bench/ are off, so they need not be there).
  set(partial "${BIN}/src")
  file(MAKE_DIRECTORY "${partial}")
  file(COPY "${SRC}/CMakeLists.txt" "${SRC}/cmake" "${SRC}/kernels" "${SRC}/traces" "${SRC}/probe"
            "${SRC}/samples" DESTINATION "${partial}")
  configure(partial "${partial}" ENV --unset=CI)
  if(partial_rc EQUAL 0)
    message(FATAL_ERROR "configure_checks: a tree without analysis/ configured:\n${partial_out}")
  endif()
  if(NOT partial_out MATCHES "component 'analysis' is missing")
    message(FATAL_ERROR "configure_checks: the failed configure does not name the missing "
                        "component:\n${partial_out}")
  endif()
  message(STATUS "configure_checks: a tree without analysis/ fails to configure, naming it")
else()
  message(FATAL_ERROR "configure_checks: unknown CHECK '${CHECK}' (werror, missing)")
endif()
file(REMOVE_RECURSE "${BIN}")
