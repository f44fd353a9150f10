# Shared compile settings for fpscope's own targets (never applied to third-party code).
#   fpscope_defaults(<target>)     warnings (as errors with FPSCOPE_WERROR), sanitizers.
#   fpscope_add_component(<dir>)   add_subdirectory of a required folder: missing = configure error.
set(FPSCOPE_SANITIZER_FLAGS "")
if(FPSCOPE_SANITIZE AND FPSCOPE_TSAN)
  message(FATAL_ERROR "FPSCOPE_SANITIZE and FPSCOPE_TSAN are exclusive")
endif()
if(FPSCOPE_SANITIZE)
  set(FPSCOPE_SANITIZER_FLAGS -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined)
elseif(FPSCOPE_TSAN)
  set(FPSCOPE_SANITIZER_FLAGS -fsanitize=thread -fno-omit-frame-pointer)
endif()
if(FPSCOPE_SANITIZER_FLAGS)
  # Applied globally so that tests, libraries and executables agree on the runtime.
  add_compile_options("$<$<COMPILE_LANGUAGE:C,CXX>:${FPSCOPE_SANITIZER_FLAGS}>")
  add_link_options(${FPSCOPE_SANITIZER_FLAGS})
  # No per-ISA clones: their ifunc resolvers run during relocation, before the sanitizer runtime
  # is initialized (a preloaded TSan probe crashed there), and one code path is what we check.
  add_compile_definitions(FPSCOPE_NO_TARGET_CLONES)
endif()

function(fpscope_defaults target)
  set(warn -Wall -Wextra -Wpedantic -Wshadow -Wconversion -Wno-sign-conversion)
  if(FPSCOPE_WERROR)
    list(APPEND warn -Werror)
  endif()
  # C and C++ (same warning set: every flag is valid for both).
  target_compile_options(${target} PRIVATE "$<$<COMPILE_LANGUAGE:C,CXX>:${warn}>")
  if(FPSCOPE_HAVE_CUDA)
    set(cuwarn -Xcompiler=-Wall,-Wextra)
    if(FPSCOPE_WERROR)
      list(APPEND cuwarn -Werror=all-warnings -Xcompiler=-Werror)
    endif()
    target_compile_options(${target} PRIVATE "$<$<COMPILE_LANGUAGE:CUDA>:${cuwarn}>")
  endif()
endfunction()

# A component folder of the source tree (relative to the current CMakeLists.txt). Required: a
# missing one stops the configure with a message naming it, instead of building without it.
function(fpscope_add_component dir)
  if(NOT EXISTS ${CMAKE_CURRENT_SOURCE_DIR}/${dir}/CMakeLists.txt)
    message(FATAL_ERROR "fpscope: component '${dir}' is missing "
                        "(${CMAKE_CURRENT_SOURCE_DIR}/${dir}/CMakeLists.txt): the source tree is "
                        "incomplete")
  endif()
  add_subdirectory(${dir})
endfunction()
