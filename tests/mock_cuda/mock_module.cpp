// The strict mock CUDA driver's modules, functions and launches. A launch of a statistics kernel
// (kernels/include/fpscope/stats_kernel_abi.h) runs the kernels' CPU model,
// fpscope::run_stats_kernel_on_host (target fpscope_kernels_host_model), over the argument block
// kernelParams[0]: one source of truth for the math on the GPU and in CI.
#include <algorithm>
#include <cstdio>
#include <cstring>
#include <vector>

#include "fpscope/stats_kernel_abi.h"
#include "fpscope/stats_kernel_host.h"
#include "mock_state.h"

using mock::state;

namespace {

constexpr uint32_t kFatbinMagic = 0xBA55ED50u;  // fatbinary wrapper, little-endian u32 at offset 0

int kernel_id(const std::string& name) {
  for (int k = 0; k < fpscope::kNumStatsKernels; ++k)
    if (name == fpscope::stats_kernel_name(static_cast<fpscope::StatsKernel>(k))) return k;
  return -1;
}

// ".entry <name>" followed by a character that cannot continue an identifier.
bool ptx_has_entry(const std::string& ptx, const std::string& name) {
  const std::string key = ".entry " + name;
  for (size_t at = ptx.find(key); at != std::string::npos; at = ptx.find(key, at + 1)) {
    char next = at + key.size() < ptx.size() ? ptx[at + key.size()] : '\0';
    bool ident = (next >= 'a' && next <= 'z') || (next >= 'A' && next <= 'Z') ||
                 (next >= '0' && next <= '9') || next == '_' || next == '$';
    if (!ident) return true;
  }
  return false;
}

}  // namespace

extern "C" {

// cuda.h, cuModuleLoadData: "Takes a pointer image and loads the corresponding module module into
// the current context. The image may be a cubin or fatbin as output by nvcc, or a NULL-terminated
// PTX". Returns include CUDA_ERROR_INVALID_PTX, CUDA_ERROR_UNSUPPORTED_PTX_VERSION ("the provided
// PTX was compiled with an unsupported toolchain") and CUDA_ERROR_NO_BINARY_FOR_GPU.
// MOCK_CUDA_REJECT_FATBIN models an old driver refusing a newer toolkit's cubins: the reference
// does not say which of those two codes a driver returns then (observed drivers return
// CUDA_ERROR_UNSUPPORTED_PTX_VERSION when the image's only usable code is newer PTX, and
// CUDA_ERROR_NO_BINARY_FOR_GPU when nothing in it fits), so the knob selects either; the probe must
// fall back to its PTX image on both. Module loading is treated as potentially unsafe during
// capture (the reference does not list it; strict choice: the probe loads before any capture).
CUresult cuModuleLoadData(CUmodule* module, const void* image) {
  MOCK_LOCK_INIT();
  MOCK_NEED_CONTEXT(cur);
  if (!module || !image) return CUDA_ERROR_INVALID_VALUE;
  if (CUresult r = mock::unsafe_call_gate(); r != CUDA_SUCCESS) return r;
  const auto& k = state().knobs;
  uint32_t magic = 0;
  std::memcpy(&magic, image, sizeof magic);
  const auto* bytes = static_cast<const unsigned char*>(image);
  bool elf = bytes[0] == 0x7f && bytes[1] == 'E' && bytes[2] == 'L' && bytes[3] == 'F';
  auto* m = new CUmod_st();
  m->ctx = cur;
  if (magic == kFatbinMagic || elf) {
    if (k.reject_fatbin != CUDA_SUCCESS) {
      delete m;
      return k.reject_fatbin;
    }
    m->fatbin = true;
  } else {
    std::string text(static_cast<const char*>(image));
    size_t v = text.find(".version");
    if (v == std::string::npos || text.find(".target") == std::string::npos) {
      delete m;
      return text.find(".entry") != std::string::npos ? CUDA_ERROR_INVALID_PTX
                                                      : CUDA_ERROR_INVALID_IMAGE;
    }
    int major = 0, minor = 0;
    if (std::sscanf(text.c_str() + v, ".version %d.%d", &major, &minor) != 2) {
      delete m;
      return CUDA_ERROR_INVALID_PTX;
    }
    if (major > k.max_ptx_major || (major == k.max_ptx_major && minor > k.max_ptx_minor)) {
      delete m;
      return CUDA_ERROR_UNSUPPORTED_PTX_VERSION;
    }
    m->ptx = std::move(text);
  }
  state().modules.push_back(m);
  state().counters.modules_loaded++;
  state().counters.live_modules++;
  *module = m;
  return CUDA_SUCCESS;
}

CUresult cuModuleUnload(CUmodule hmod) {
  MOCK_LOCK_INIT();
  if (!mock::valid(hmod)) return CUDA_ERROR_INVALID_HANDLE;
  hmod->alive = false;
  state().counters.live_modules--;
  return CUDA_SUCCESS;
}

// cuda.h, cuModuleGetFunction: "Returns in *hfunc the handle of the function of name name located
// in module hmod. If no function of that name exists, cuModuleGetFunction() returns
// CUDA_ERROR_NOT_FOUND." A PTX module has the functions its text declares with .entry; a fatbin
// (not parsed) has the statistics kernels of stats_kernel_abi.h.
CUresult cuModuleGetFunction(CUfunction* hfunc, CUmodule hmod, const char* name) {
  MOCK_LOCK_INIT();
  if (!hfunc || !name) return CUDA_ERROR_INVALID_VALUE;
  if (!mock::valid(hmod)) return CUDA_ERROR_INVALID_HANDLE;
  int id = kernel_id(name);
  if (hmod->fatbin ? id < 0 : !ptx_has_entry(hmod->ptx, name)) return CUDA_ERROR_NOT_FOUND;
  auto* f = new CUfunc_st();
  f->mod = hmod;
  f->name = name;
  f->kernel = id;
  state().functions.push_back(f);
  *hfunc = f;
  return CUDA_SUCCESS;
}

// A compute capability 9.0 SM: 2048 threads, 32 blocks, 228 KiB shared memory. Register use is not
// modelled.
CUresult cuOccupancyMaxActiveBlocksPerMultiprocessor(int* numBlocks, CUfunction func, int blockSize,
                                                     size_t dynamicSMemSize) {
  MOCK_LOCK_INIT();
  if (!numBlocks || blockSize <= 0 || blockSize > 1024) return CUDA_ERROR_INVALID_VALUE;
  if (!mock::valid(func)) return CUDA_ERROR_INVALID_HANDLE;
  int warps = (blockSize + 31) / 32;
  int blocks = std::min(32, 64 / warps);
  if (dynamicSMemSize > 0)
    blocks = std::min<int>(blocks, static_cast<int>((228u * 1024u) / dynamicSMemSize));
  *numBlocks = blocks;
  return CUDA_SUCCESS;
}

// cuda.h, cuLaunchKernel: "Invokes the kernel f on a gridDimX x gridDimY x gridDimZ grid of blocks
// ... Kernel parameters to f can be specified in one of two ways: 1) Kernel parameters can be
// specified via kernelParams ... 2) ... extra"; "Calling cuLaunchKernel() invalidates the
// persistent function state"; both kernelParams and extra given: CUDA_ERROR_INVALID_VALUE. Rules
// the mock adds, with the code the driver gives for a resource of another context ("invalid
// resource handle"): f's module must be loaded in the current context and hStream must be that
// context's (CUDA_ERROR_INVALID_HANDLE). Only 1-D launches with kernelParams are modelled
// (CUDA_ERROR_NOT_SUPPORTED otherwise); every entry takes one argument block (stats_kernel_abi.h).
CUresult cuLaunchKernel(CUfunction f, unsigned int gridDimX, unsigned int gridDimY,
                        unsigned int gridDimZ, unsigned int blockDimX, unsigned int blockDimY,
                        unsigned int blockDimZ, unsigned int sharedMemBytes, CUstream hStream,
                        void** kernelParams, void** extra) {
  MOCK_LOCK_INIT();
  MOCK_NEED_CONTEXT(cur);
  if (!mock::valid(f)) return CUDA_ERROR_INVALID_HANDLE;
  CUstream_st* s = nullptr;
  if (CUresult r = mock::resolve_stream(hStream, true, &s); r != CUDA_SUCCESS) return r;
  if (f->mod->ctx != cur) return CUDA_ERROR_INVALID_HANDLE;
  if (gridDimX == 0 || gridDimY == 0 || gridDimZ == 0 || blockDimX == 0 || blockDimY == 0 ||
      blockDimZ == 0 || static_cast<unsigned long long>(blockDimX) * blockDimY * blockDimZ > 1024 ||
      sharedMemBytes > 48 * 1024)
    return CUDA_ERROR_INVALID_VALUE;
  if (kernelParams && extra) return CUDA_ERROR_INVALID_VALUE;
  if (gridDimY != 1 || gridDimZ != 1 || blockDimY != 1 || blockDimZ != 1 || extra)
    return CUDA_ERROR_NOT_SUPPORTED;
  if (f->kernel < 0) return CUDA_ERROR_NOT_SUPPORTED;  // no CPU model for this entry
  if (!kernelParams || !kernelParams[0]) return CUDA_ERROR_INVALID_VALUE;
  auto k = static_cast<fpscope::StatsKernel>(f->kernel);
  const auto* block = static_cast<const unsigned char*>(kernelParams[0]);
  std::vector<unsigned char> args(block, block + fpscope::stats_kernel_args_size(k));
  return mock::enqueue(s, [k, gridDimX, blockDimX, args = std::move(args)]() -> CUresult {
    CUresult r = fpscope::run_stats_kernel_on_host(k, gridDimX, blockDimX, args.data());
    if (r == CUDA_SUCCESS) state().counters.kernels_run++;
    return r;
  });
}

}  // extern "C"
