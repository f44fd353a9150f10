// Helpers for the trace tests: deterministic records, file helpers, and an independent
// (bitwise, slow) CRC32C plus a raw chunk builder for crafting files byte by byte.
#pragma once

#include <fcntl.h>
#include <unistd.h>

#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <stdexcept>
#include <string>
#include <vector>

#include "fpscope/trace_io.h"

namespace fpscope::trace::test {

inline std::string temp_path(const std::string& name) {
  const char* tmp = std::getenv("TMPDIR");
  std::string dir =
      std::string(tmp && *tmp ? tmp : "/tmp") + "/fpscope-traces-" + std::to_string(::getpid());
  std::filesystem::create_directories(dir);
  return dir + "/" + name;
}

inline std::vector<uint8_t> read_file(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  return std::vector<uint8_t>(std::istreambuf_iterator<char>(f), {});
}

inline void write_file(const std::string& path, const std::vector<uint8_t>& bytes) {
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  f.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
}

// Rewrites single bytes in place (rewriting the whole file each time is slow on ext4, which
// flushes a file truncated and rewritten).
class FlipFile {
 public:
  explicit FlipFile(const std::string& path) : fd_(::open(path.c_str(), O_RDWR)) {
    if (fd_ < 0) throw std::runtime_error("cannot open " + path);
  }
  ~FlipFile() { ::close(fd_); }
  FlipFile(const FlipFile&) = delete;
  FlipFile& operator=(const FlipFile&) = delete;
  void set(size_t at, uint8_t v) {
    if (::pwrite(fd_, &v, 1, static_cast<off_t>(at)) != 1) throw std::runtime_error("pwrite");
  }

 private:
  int fd_;
};

// Bit-at-a-time CRC32C straight from the definition (reflected 0x82F63B78, init/xorout ~0).
inline uint32_t ref_crc32c(const uint8_t* p, size_t n, uint32_t crc = 0) {
  crc = ~crc;
  for (size_t i = 0; i < n; ++i) {
    crc ^= p[i];
    for (int k = 0; k < 8; ++k) crc = (crc & 1u) ? (crc >> 1) ^ 0x82F63B78u : crc >> 1;
  }
  return ~crc;
}

inline void put_le(std::vector<uint8_t>& b, uint64_t v, int bytes) {
  for (int i = 0; i < bytes; ++i) b.push_back(static_cast<uint8_t>(v >> (8 * i)));
}
inline void put_varint(std::vector<uint8_t>& b, uint64_t v) {
  while (v >= 0x80) {
    b.push_back(static_cast<uint8_t>(v | 0x80));
    v >>= 7;
  }
  b.push_back(static_cast<uint8_t>(v));
}

// A header exactly as FORMAT.md specifies it.
inline std::vector<uint8_t> make_header(uint16_t major, uint16_t minor, const std::string& meta) {
  std::vector<uint8_t> h = {0x89, 'F', 'P', 'S', 'T', '\r', '\n', 0x1A};
  put_le(h, major, 2);
  put_le(h, minor, 2);
  put_le(h, 0, 4);
  put_le(h, meta.size(), 4);
  h.insert(h.end(), meta.begin(), meta.end());
  put_le(h, ref_crc32c(h.data(), h.size()), 4);
  return h;
}

// Appends one chunk (type, flags, payload) with its CRC.
inline void append_chunk(std::vector<uint8_t>& f, uint8_t type, uint8_t flags,
                         const std::vector<uint8_t>& payload) {
  std::vector<uint8_t> head = {type, flags, 0, 0};
  put_le(head, payload.size(), 4);
  uint32_t crc = ref_crc32c(head.data(), 8);
  crc = ref_crc32c(payload.data(), payload.size(), crc);
  put_le(head, crc, 4);
  f.insert(f.end(), head.begin(), head.end());
  f.insert(f.end(), payload.begin(), payload.end());
}

// Deterministic, fully populated records (every field distinct from its default).
inline TensorInfo make_tensor(uint32_t k) {
  TensorInfo t;
  t.id = "gemm#" + std::to_string(k) + ".D";
  t.name = k % 2 ? "layer" + std::to_string(k) + ".out" : "";
  t.op = k % 3 ? "sgemm" : "cublasLtMatmul";
  t.role = static_cast<Role>(k % 5);
  t.dtype = static_cast<Format>(k % kNumFormats);
  t.rows = 512 + k;
  t.cols = 256 + 3 * k;
  t.ld = 520 + k;
  t.device = static_cast<int32_t>(k % 3) - 1;
  t.gemm.transa = k % 2 ? 'T' : 'N';
  t.gemm.transb = 'C';
  t.gemm.m = 512 + k;
  t.gemm.n = 256;
  t.gemm.k = -7 - static_cast<int64_t>(k);
  t.gemm.lda = 520;
  t.gemm.ldb = 1 << 20;
  t.gemm.ldc = int64_t{1} << 40;
  t.gemm.alpha = 0.5 + k;
  t.gemm.beta = -1.25;
  t.gemm.batch = 3 + k;
  return t;
}

// An observation whose every field depends on `i`; `nbins` non-empty histogram bins.
inline Observation make_obs(uint32_t tensor, uint64_t i, int nbins = 35) {
  Observation o;
  o.tensor = tensor;
  o.step = i / 16;
  o.seq = i;
  o.stream = i % 4 == 0 ? 0 : 0x7f00deadbeefULL + i;
  o.time_ns = 1000 * i + 7;
  TensorStats& s = o.stats;
  s.count = 1'000'000 + i;
  s.nan = i % 3;
  s.pos_inf = i % 5 == 0 ? i : 0;
  s.neg_inf = i % 7 == 0 ? 2 : 0;
  s.zero = 100 + i % 11;
  s.amax = 1.5f + static_cast<float>(i);
  s.min = -0.25f - static_cast<float>(i % 13);
  s.max = 3.0f + static_cast<float>(i % 17);
  s.sum = 123.456 + static_cast<double>(i);
  s.sum_sq = 1e9 + 0.125 * static_cast<double>(i);
  for (int k = 0; k < kNumTargets; ++k) {
    FormatCounts& f = s.fmt[k];
    f.overflow = (i + static_cast<uint64_t>(k)) % 4 == 0 ? i * 3 + 1 : 0;
    f.underflow = i % 2 ? 1000 + i : 0;
    f.subnormal = static_cast<uint64_t>(k) * 100 + i % 9;
    f.sum_err2 = k == 1 && i % 2 ? 0.0 : 1e-3 * static_cast<double>(i + 1) * (k + 1);
    f.scale = k >= 2 && i % 3 ? 0.0625f * static_cast<float>(k) : 1.0f;
  }
  for (int b = 0; b < nbins; ++b) {
    const int bin = static_cast<int>((i * 7 + static_cast<uint64_t>(b) * 29) % kHistBins);
    s.hist[bin] += static_cast<uint64_t>(b) * 1000 + i + 1;
  }
  return o;
}

}  // namespace fpscope::trace::test
