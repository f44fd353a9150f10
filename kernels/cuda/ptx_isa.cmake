# cmake -DIN=<ptx> -DOUT=<ptx> -DISA=<major.minor> -DTARGET=<sm_xx> -P ptx_isa.cmake
# Rewrites the PTX's one `.version` line to ISA (the statistics kernels' PTX image is declared at
# the lowest ISA an older driver can JIT; ptxas then proves the code needs nothing newer) and
# checks that it declares `.target TARGET`.
foreach(var IN ITEMS IN OUT ISA TARGET)
  if(NOT DEFINED ${var})
    message(FATAL_ERROR "ptx_isa.cmake: -D${var}= is required")
  endif()
endforeach()
file(READ "${IN}" ptx)
string(REGEX MATCHALL "\n\\.version [0-9]+\\.[0-9]+\n" versions "\n${ptx}")
list(LENGTH versions n)
if(NOT n EQUAL 1)
  message(FATAL_ERROR "ptx_isa.cmake: ${IN} has ${n} .version lines, expected 1")
endif()
string(REGEX MATCH "[0-9]+\\.[0-9]+" from "${versions}")
if(from VERSION_LESS ISA)
  message(FATAL_ERROR "ptx_isa.cmake: ${IN} is PTX ISA ${from}, below the ${ISA} it would be declared at")
endif()
if(NOT ptx MATCHES "\n\\.target ${TARGET}[\n,]")
  message(FATAL_ERROR "ptx_isa.cmake: ${IN} does not declare .target ${TARGET}")
endif()
string(REGEX REPLACE "\n\\.version [0-9]+\\.[0-9]+\n" "\n.version ${ISA}\n" ptx "${ptx}")
file(WRITE "${OUT}" "${ptx}")
