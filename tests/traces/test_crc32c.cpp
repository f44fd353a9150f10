// CRC32C: the standard check value, known vectors (RFC 3720 B.4), hardware == table path.
#include <gtest/gtest.h>

#include <random>
#include <vector>

#include "crc32c.h"  // traces/src (internal)
#include "trace_test_util.h"

namespace fpscope::trace::detail {
namespace {

TEST(Crc32c, CheckValue) {
  const char* s = "123456789";
  EXPECT_EQ(crc32c(s, 9), 0xE3069283u);
  EXPECT_EQ(crc32c_extend_sw(0, s, 9), 0xE3069283u);
  EXPECT_EQ(crc32c(s, 0), 0u);
}

TEST(Crc32c, Rfc3720Vectors) {
  std::vector<uint8_t> zeros(32, 0), ones(32, 0xFF), inc(32), dec(32);
  for (int i = 0; i < 32; ++i) {
    inc[i] = static_cast<uint8_t>(i);
    dec[i] = static_cast<uint8_t>(31 - i);
  }
  EXPECT_EQ(crc32c(zeros.data(), 32), 0x8A9136AAu);
  EXPECT_EQ(crc32c(ones.data(), 32), 0x62A8AB43u);
  EXPECT_EQ(crc32c(inc.data(), 32), 0x46DD794Eu);
  EXPECT_EQ(crc32c(dec.data(), 32), 0x113FDB5Cu);
}

TEST(Crc32c, AllPathsAgreeWithTheBitwiseDefinition) {
  std::mt19937_64 rng(7);
  std::vector<uint8_t> buf(4099);
  for (auto& b : buf) b = static_cast<uint8_t>(rng());
  for (size_t off : {0, 1, 3, 7}) {
    for (size_t n : {0, 1, 7, 8, 9, 63, 64, 65, 1000, 4091}) {
      const uint32_t want = test::ref_crc32c(buf.data() + off, n);
      EXPECT_EQ(crc32c(buf.data() + off, n), want) << off << " " << n;
      EXPECT_EQ(crc32c_extend_sw(0, buf.data() + off, n), want) << off << " " << n;
      // Extending in two pieces equals one pass.
      const size_t half = n / 3;
      EXPECT_EQ(crc32c_extend(crc32c(buf.data() + off, half), buf.data() + off + half, n - half),
                want);
    }
  }
  RecordProperty("hardware_crc", crc32c_hw_available() ? "sse4.2" : "none");
}

}  // namespace
}  // namespace fpscope::trace::detail
