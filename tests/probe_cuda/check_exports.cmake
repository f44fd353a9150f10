# probe_cuda_exports: the CUDA part's exports of the library under test, as
# `nm -D --with-symbol-versions --defined-only` prints them (name@@node, name@node), restricted to
# the nodes probe/cuda owns (libcublas*, libcupti*, FPSCOPE_CUDA_1), equal the reviewed list cuda_exports.txt.
# That list is kept by hand on purpose: it checks what the build generates from
# probe/cuda/cublas_hooks.def (a new hook adds its lines there).
#   cmake -DNM=<nm> -DLIB=<library> -DEXPECTED=<cuda_exports.txt> -P check_exports.cmake
execute_process(COMMAND ${NM} -D --with-symbol-versions --defined-only ${LIB}
                OUTPUT_VARIABLE out ERROR_VARIABLE err RESULT_VARIABLE rc)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "${NM} ${LIB} failed (${rc}): ${err}")
endif()
string(REPLACE "\n" ";" lines "${out}")
set(actual "")
foreach(line IN LISTS lines)
  if(line MATCHES "^[0-9a-fA-F]+ [A-Za-z] ([A-Za-z0-9_]+@@?(libcublas[A-Za-z]*\\.so\\.[0-9]+|libcupti\\.so\\.[0-9]+|FPSCOPE_CUDA_1))$")
    list(APPEND actual "${CMAKE_MATCH_1}")
  endif()
endforeach()
list(SORT actual)
file(STRINGS ${EXPECTED} expected)
list(SORT expected)
if(NOT actual STREQUAL expected)
  set(missing ${expected})
  list(REMOVE_ITEM missing ${actual})
  set(extra ${actual})
  list(REMOVE_ITEM extra ${expected})
  message(FATAL_ERROR "exports of ${LIB} differ from ${EXPECTED}\n  missing: ${missing}\n"
                      "  unexpected: ${extra}")
endif()
list(LENGTH actual n)
message(STATUS "${n} CUDA-part exports as expected")
