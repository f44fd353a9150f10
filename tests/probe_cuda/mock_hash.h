// The integer hash the test programs' data is generated from (mock_gpu_data.h, mock_lt_data.h):
// one definition, so that a program and its checker cannot drift apart.
#pragma once

#include <cstdint>

namespace mock_data {

inline uint32_t mix(uint32_t x) {
  x ^= x >> 16;
  x *= 0x7feb352dU;
  x ^= x >> 15;
  x *= 0x846ca68bU;
  x ^= x >> 16;
  return x;
}

}  // namespace mock_data
