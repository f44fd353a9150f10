// CRC32C (Castagnoli, reflected polynomial 0x82F63B78, init/xorout 0xFFFFFFFF), as used by
// iSCSI/ext4/LevelDB. Check value: crc32c("123456789") == 0xE3069283.
// Debian 12 packages no C/C++ CRC32C library (no libcrc32c-dev), so this is a small slicing-by-8
// table implementation (tables built at compile time: no static initializers) plus the SSE4.2
// instruction when the CPU has it.
#pragma once

#include <cstddef>
#include <cstdint>

namespace fpscope::trace::detail {

// Continues a CRC: crc32c_extend(crc32c_extend(0, a), b) == crc32c(a ++ b).
uint32_t crc32c_extend(uint32_t crc, const void* data, size_t n);
inline uint32_t crc32c(const void* data, size_t n) {
  return crc32c_extend(0, data, n);
}

// The portable table implementation (always available; tests compare both paths).
uint32_t crc32c_extend_sw(uint32_t crc, const void* data, size_t n);
// True when crc32c_extend uses the SSE4.2 instruction.
bool crc32c_hw_available();

}  // namespace fpscope::trace::detail
