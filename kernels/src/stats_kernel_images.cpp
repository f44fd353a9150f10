// The statistics kernels' images (stats_kernel_images.h), embedded in the library by the
// assembler: the files kernels/CMakeLists.txt builds (FPSCOPE_STATS_FATBIN_PATH,
// FPSCOPE_STATS_PTX_PATH) are pulled in with .incbin into read-only data, the PTX followed by a
// NUL (cuModuleLoadData reads PTX as a C string). The symbols are hidden: the probe exports none.
#include "fpscope/stats_kernel_images.h"

#if !defined(FPSCOPE_STATS_FATBIN_PATH) || !defined(FPSCOPE_STATS_PTX_PATH)
#error \
    "FPSCOPE_STATS_FATBIN_PATH and FPSCOPE_STATS_PTX_PATH name the images (kernels/CMakeLists.txt)"
#endif

// A fatbin starts with an 8-byte-aligned header; 16 is what nvcc gives its own embedded ones.
asm(".pushsection .rodata.fpscope_stats_kernels,\"a\",@progbits\n"
    ".balign 16\n"
    ".globl fpscope_stats_fatbin_begin\n"
    ".hidden fpscope_stats_fatbin_begin\n"
    "fpscope_stats_fatbin_begin:\n"
    ".incbin \"" FPSCOPE_STATS_FATBIN_PATH
    "\"\n"
    ".globl fpscope_stats_fatbin_end\n"
    ".hidden fpscope_stats_fatbin_end\n"
    "fpscope_stats_fatbin_end:\n"
    ".balign 16\n"
    ".globl fpscope_stats_ptx_begin\n"
    ".hidden fpscope_stats_ptx_begin\n"
    "fpscope_stats_ptx_begin:\n"
    ".incbin \"" FPSCOPE_STATS_PTX_PATH
    "\"\n"
    ".byte 0\n"
    ".globl fpscope_stats_ptx_end\n"
    ".hidden fpscope_stats_ptx_end\n"
    "fpscope_stats_ptx_end:\n"
    ".popsection\n");

extern "C" {
extern const unsigned char fpscope_stats_fatbin_begin[] __attribute__((visibility("hidden")));
extern const unsigned char fpscope_stats_fatbin_end[] __attribute__((visibility("hidden")));
extern const unsigned char fpscope_stats_ptx_begin[] __attribute__((visibility("hidden")));
extern const unsigned char fpscope_stats_ptx_end[] __attribute__((visibility("hidden")));
}

namespace fpscope {

KernelImage stats_kernels_fatbin() {
  return {fpscope_stats_fatbin_begin,
          static_cast<size_t>(fpscope_stats_fatbin_end - fpscope_stats_fatbin_begin)};
}

KernelImage stats_kernels_ptx() {
  return {fpscope_stats_ptx_begin,
          static_cast<size_t>(fpscope_stats_ptx_end - fpscope_stats_ptx_begin)};
}

}  // namespace fpscope
