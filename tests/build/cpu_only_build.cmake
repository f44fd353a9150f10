# CPU-only build check (issue 2: "a configure with -DCMAKE_CUDA_COMPILER=/nonexistent still builds
# the CPU parts"): configures the source tree with no usable CUDA compiler into a fresh folder,
# builds the kernels, traces, probe and CLI targets, and checks that the probe library exists.
#   cmake -DSRC=<source dir> -DBIN=<scratch build dir> [-DGENERATOR=<generator>]
#         [-DBUILD_TYPE=<type>] [-DJOBS=<n>] [-DKEEP=ON] -P cpu_only_build.cmake
# Exits non-zero (FATAL_ERROR) on any failed step; removes BIN after a success unless KEEP.
foreach(v SRC BIN)
  if(NOT ${v})
    message(FATAL_ERROR "cpu_only_build: ${v} not given")
  endif()
endforeach()
if(NOT JOBS)
  set(JOBS 2)
endif()
set(gen_args "")
if(GENERATOR)
  list(APPEND gen_args -G "${GENERATOR}")
endif()
if(BUILD_TYPE)
  list(APPEND gen_args "-DCMAKE_BUILD_TYPE=${BUILD_TYPE}")
endif()

file(REMOVE_RECURSE "${BIN}")
execute_process(
  COMMAND "${CMAKE_COMMAND}" -S "${SRC}" -B "${BIN}" ${gen_args}
          -DCMAKE_CUDA_COMPILER=/nonexistent -DFPSCOPE_BUILD_GUI=OFF -DFPSCOPE_BUILD_BENCH=OFF
          -DFPSCOPE_BUILD_TESTS=OFF
  RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "cpu_only_build: configure failed (exit ${rc}):\n${out}\n${err}")
endif()
if(NOT out MATCHES "fpscope: CUDA parts OFF")
  message(FATAL_ERROR "cpu_only_build: configure did not turn the CUDA parts off:\n${out}")
endif()
message(STATUS "cpu_only_build: configured without CUDA in ${BIN}")

set(targets fpscope_kernels fpscope_traces fpscope_probe fpscope)
execute_process(
  COMMAND "${CMAKE_COMMAND}" --build "${BIN}" --parallel ${JOBS} --target ${targets}
  RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
if(NOT rc EQUAL 0)
  string(LENGTH "${out}" n)
  if(n GREATER 20000)
    math(EXPR start "${n} - 20000")
    string(SUBSTRING "${out}" ${start} -1 out)
  endif()
  message(FATAL_ERROR "cpu_only_build: building ${targets} failed (exit ${rc}):\n${out}\n${err}")
endif()

file(GLOB_RECURSE probe_lib "${BIN}/libfpscope_probe.so")
file(GLOB_RECURSE cli "${BIN}/fpscope")
if(NOT probe_lib)
  message(FATAL_ERROR "cpu_only_build: the build succeeded but libfpscope_probe.so is missing")
endif()
if(NOT cli)
  message(FATAL_ERROR "cpu_only_build: the build succeeded but the fpscope CLI is missing")
endif()
message(STATUS "cpu_only_build: built ${targets}: ${probe_lib}, ${cli}")
if(NOT KEEP)
  file(REMOVE_RECURSE "${BIN}")
endif()
