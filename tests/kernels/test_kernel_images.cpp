// The statistics kernels' embedded images (stats_kernel_images.h): a fatbin (its magic, sized),
// and PTX text declared at ISA 8.0 for sm_80 holding an entry for every FPSCOPE_STATS_KERNELS
// name, NUL-terminated (ptxas -arch=sm_80 assembled it at build time: kernels/CMakeLists.txt).
#include <gtest/gtest.h>

#include <cstdint>
#include <cstring>
#include <string>

#include "fpscope/stats_kernel_abi.h"
#include "fpscope/stats_kernel_images.h"

namespace {

TEST(KernelImages, FatbinIsAFatbin) {
  const fpscope::KernelImage f = fpscope::stats_kernels_fatbin();
  ASSERT_NE(f.data, nullptr);
  ASSERT_GT(f.size, 4096u);
  EXPECT_EQ(reinterpret_cast<uintptr_t>(f.data) % 8, 0u);  // the header's alignment
  uint32_t magic = 0;
  std::memcpy(&magic, f.data, 4);
  EXPECT_EQ(magic, 0xBA55ED50u);  // fatbinary.h's FATBIN_MAGIC (fatbin header, little endian)
  // Its header's header_size + fat_size is the file: nothing cut or added by the embedding.
  uint16_t header_size = 0;
  uint64_t fat_size = 0;
  std::memcpy(&header_size, static_cast<const char*>(f.data) + 6, 2);
  std::memcpy(&fat_size, static_cast<const char*>(f.data) + 8, 8);
  EXPECT_EQ(header_size + fat_size, f.size);
}

TEST(KernelImages, PtxDeclaresIsa80Sm80AndEveryEntry) {
  const fpscope::KernelImage p = fpscope::stats_kernels_ptx();
  ASSERT_NE(p.data, nullptr);
  ASSERT_GT(p.size, 1u);
  const char* text = static_cast<const char*>(p.data);
  ASSERT_EQ(text[p.size - 1], '\0');
  ASSERT_EQ(std::strlen(text), p.size - 1);  // one C string: no NUL inside
  const std::string ptx(text);
  EXPECT_NE(ptx.find(std::string("\n.version ") + fpscope::kStatsPtxIsa + "\n"), std::string::npos);
  EXPECT_EQ(std::string(fpscope::kStatsPtxIsa), "8.0");
  EXPECT_NE(ptx.find(std::string("\n.target ") + fpscope::kStatsPtxTarget + "\n"),
            std::string::npos);
  EXPECT_EQ(ptx.find("\n.version 9"), std::string::npos);
  for (int k = 0; k < fpscope::kNumStatsKernels; ++k) {
    const char* name = fpscope::stats_kernel_name(static_cast<fpscope::StatsKernel>(k));
    ASSERT_NE(name, nullptr) << k;
    const size_t at = ptx.find(std::string(".entry ") + name + "(");
    ASSERT_NE(at, std::string::npos) << name;
    // ONE parameter, the argument block, as large as the host's (what kernelParams = {&args}
    // hands over): `.param .align 8 .b8 <name>_param_0[<size>]` then `)`.
    const size_t size = fpscope::stats_kernel_args_size(static_cast<fpscope::StatsKernel>(k));
    const std::string param =
        std::string(".param .align 8 .b8 ") + name + "_param_0[" + std::to_string(size) + "]";
    const size_t close = ptx.find(')', at);
    const std::string decl = ptx.substr(at, close - at);
    EXPECT_NE(decl.find(param), std::string::npos) << decl;
    EXPECT_EQ(decl.find("_param_1"), std::string::npos) << decl;
  }
  // Exactly the ABI's entries: no other kernel in the module.
  size_t entries = 0;
  for (size_t at = ptx.find(".entry "); at != std::string::npos; at = ptx.find(".entry ", at + 1))
    ++entries;
  EXPECT_EQ(entries, static_cast<size_t>(fpscope::kNumStatsKernels));
}

}  // namespace
