# The probe's linker version script, written at BUILD time from its parts, one of which is
# generated from the one hook table cublas_hooks.def (no cuBLAS symbol is listed in a .map file).
#
#   include(probe/cuda/version_script.cmake)
#   fpscope_version_script(<target> <output> PARTS <part>...)
#     Writes <output> before <target> links (and again whenever a part or the table changes) and
#     links <target> with --version-script=<output>. A part is a file, copied as is, or the word
#     CUBLAS_NODES: the version nodes of the cuBLAS/cuBLASLt hooks. Parts keep their order, which
#     is the order of the version definitions in the library (.gnu.version_d).
#
# CUBLAS_NODES: the C++ compiler preprocesses cublas_exports.in, which expands cublas_hooks.def
# with the same macros (FPSCOPE_CUBLAS_NODES_SINCE_*) that hooks_cublas.cpp's .symver bindings use,
# into one "<library|major|symbol>" triple per binding; this script groups them into one node per
# library and major, libraries in table order, majors ascending:
#   libcublas.so.11 {
#     global:
#       cublasGemmEx;
#       ...
#   };
# Those nodes carry no "local: *" (the probe's own node does).
#
# Script mode (cmake -P, run by the build): -DOUT=<file> -DPARTS=<parts, '|'-separated>
#   -DCXX=<C++ compiler>.
set(_fpscope_vs_dir ${CMAKE_CURRENT_LIST_DIR})

if(CMAKE_SCRIPT_MODE_FILE)
  string(REPLACE "|" ";" parts "${PARTS}")
  set(script "")
  foreach(part IN LISTS parts)
    if(NOT part STREQUAL "CUBLAS_NODES")
      file(READ ${part} text)
      string(APPEND script "${text}\n")
      continue()
    endif()
    execute_process(
      COMMAND ${CXX} -E -P -x c++ ${_fpscope_vs_dir}/cublas_exports.in
      OUTPUT_VARIABLE expanded ERROR_VARIABLE err RESULT_VARIABLE rc)
    if(NOT rc EQUAL 0)
      message(FATAL_ERROR "preprocessing ${_fpscope_vs_dir}/cublas_exports.in failed:\n${err}")
    endif()
    string(REGEX MATCHALL "<[ ]*[A-Za-z0-9_]+[ ]*\\|[ ]*[0-9]+[ ]*\\|[ ]*[A-Za-z0-9_]+[ ]*>"
           triples "${expanded}")
    if(NOT triples)
      message(FATAL_ERROR "cublas_hooks.def expanded to no version binding:\n${expanded}")
    endif()
    string(APPEND script "/* generated from probe/cuda/cublas_hooks.def (version_script.cmake) */\n")
    set(libs "")
    foreach(t IN LISTS triples)
      string(REGEX REPLACE "[<> ]" "" t "${t}")
      string(REPLACE "|" ";" f "${t}")
      list(GET f 0 lib)
      list(GET f 1 major)
      list(GET f 2 sym)
      list(APPEND libs ${lib})
      list(APPEND majors_${lib} ${major})
      list(APPEND syms_${lib}_${major} ${sym})
    endforeach()
    list(REMOVE_DUPLICATES libs)
    foreach(lib IN LISTS libs)
      list(REMOVE_DUPLICATES majors_${lib})
      list(SORT majors_${lib} COMPARE NATURAL)
      foreach(major IN LISTS majors_${lib})
        list(JOIN syms_${lib}_${major} ";\n    " names)
        string(APPEND script "${lib}.so.${major} {\n  global:\n    ${names};\n};\n")
      endforeach()
    endforeach()
  endforeach()
  # Rewrite only on change: the library relinks when the script really differs.
  set(old "")
  if(EXISTS ${OUT})
    file(READ ${OUT} old)
  endif()
  if(NOT old STREQUAL script)
    file(WRITE ${OUT} "${script}")
  endif()
  return()
endif()

function(fpscope_version_script target output)
  cmake_parse_arguments(V "" "" "PARTS" ${ARGN})
  set(deps ${_fpscope_vs_dir}/version_script.cmake)
  foreach(part IN LISTS V_PARTS)
    if(part STREQUAL "CUBLAS_NODES")
      list(APPEND deps ${_fpscope_vs_dir}/cublas_hooks.def ${_fpscope_vs_dir}/cublas_exports.in)
    else()
      list(APPEND deps ${part})
    endif()
  endforeach()
  list(JOIN V_PARTS "|" parts)
  add_custom_command(
    OUTPUT ${output}
    COMMAND ${CMAKE_COMMAND} -DOUT=${output} -DPARTS=${parts} -DCXX=${CMAKE_CXX_COMPILER}
            -P ${_fpscope_vs_dir}/version_script.cmake
    DEPENDS ${deps}
    COMMENT "Generating version script ${output}"
    VERBATIM)
  add_custom_target(${target}_version_script DEPENDS ${output})
  add_dependencies(${target} ${target}_version_script)
  set_property(TARGET ${target} APPEND PROPERTY LINK_DEPENDS ${output})
  target_link_options(${target} PRIVATE "LINKER:--version-script=${output}")
endfunction()
