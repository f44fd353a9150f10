# probe_cuda_no_runtime (issue 16 item 1): the probe links no CUDA library. Its dynamic section
# needs no libcuda/libcudart/libcublas* (`readelf -d`), and its symbol table holds none of the CUDA
# runtime (`nm`: no cuda[A-Z]* function, no __cudaRegisterFatBinary: a statically linked
# cudart would bring both). Its CUDA work goes through the driver the program loaded
# (probe/cuda/driver_api.h). The check is known to fail on a probe linked with cudart_static.
#   cmake -DREADELF=<readelf> -DNM=<nm> -DLIB=<library> -P check_no_cuda_runtime.cmake
execute_process(COMMAND ${READELF} -d ${LIB} OUTPUT_VARIABLE dyn RESULT_VARIABLE rc)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "${READELF} -d ${LIB} failed (${rc})")
endif()
string(REGEX MATCHALL "\\(NEEDED\\)[^\n]*\\[[^]]*\\]" needed "${dyn}")
foreach(n IN LISTS needed)
  if(n MATCHES "libcuda|libcudart|libcublas|libcupti|libnvrtc")
    message(FATAL_ERROR "${LIB} needs a CUDA library: ${n}")
  endif()
endforeach()
execute_process(COMMAND ${NM} ${LIB} OUTPUT_VARIABLE syms RESULT_VARIABLE rc)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "${NM} ${LIB} failed (${rc})")
endif()
string(REGEX MATCHALL "[ \t][TtUuWw] (cuda[A-Z][A-Za-z0-9_]*|__cudaRegisterFatBinary[A-Za-z]*)\n"
       runtime "${syms}")
if(runtime)
  string(REPLACE "\n" "" runtime "${runtime}")
  message(FATAL_ERROR "${LIB} holds CUDA runtime symbols:${runtime}")
endif()
list(LENGTH needed n)
message(STATUS "${LIB}: ${n} NEEDED entries, none of CUDA; no CUDA runtime symbol")
