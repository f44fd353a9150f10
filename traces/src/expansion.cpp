// The decompression bound (traces/FORMAT.md 4.4), shared by read_trace() and TraceFile: a file's
// zstd chunks may declare at most max(floor, ratio x file size) decompressed bytes in total, so
// that a small hostile file (a "zstd bomb": 64 MiB chunks of identical records, ~10000x) cannot
// make a reader allocate and decode gigabytes. The check reads chunk headers only: R, the
// declared size, is the payload's first 4 bytes, and decompression must yield exactly R bytes
// (4.2), so the sum of R is what decoding the file would produce.
#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <string>

#include "codec.h"
#include "crc32c.h"
#include "reader_internal.h"

namespace fpscope::trace::detail {

namespace {

constexpr uint64_t kU64Max = std::numeric_limits<uint64_t>::max();

uint64_t sat_add(uint64_t a, uint64_t b) {
  return b > kU64Max - a ? kU64Max : a + b;
}
uint64_t sat_mul(uint64_t a, uint64_t b) {
  return a != 0 && b > kU64Max / a ? kU64Max : a * b;
}

// "64 MiB" for whole MiB, else the byte count.
std::string bytes_text(uint64_t n) {
  if (n == kU64Max) return "unlimited";
  if (n >= (uint64_t{1} << 20) && n % (uint64_t{1} << 20) == 0)
    return std::to_string(n >> 20) + " MiB";
  return std::to_string(n) + " bytes";
}

struct Declared {
  uint64_t total = 0;          // sum of R over the chunks the walk would decompress
  size_t crossing = SIZE_MAX;  // offset of the chunk that takes the sum past the limit
  uint64_t at_crossing = 0;    // the sum including that chunk
};

// Walks the chunk headers as the sequential walk does (FORMAT.md 4.3), stopping where it stops:
// a torn chunk, (with crc) a checksum mismatch, a chunk after a FOOTER, a zstd chunk without its
// size or with R over 64 MiB (the walk refuses it before decompressing). Without crc the walk
// may go further than the real one, never less: its sum is an upper bound.
Declared walk_declared(const uint8_t* base, size_t size, size_t header_end, bool crc,
                       uint64_t limit) {
  Declared d;
  size_t pos = header_end;
  bool footer_seen = false;
  while (pos < size && !footer_seen) {
    const size_t left = size - pos;
    if (left < kChunkHead) break;
    const uint8_t* h = base + pos;
    uint32_t len = 0;
    std::memcpy(&len, h + 4, 4);
    if (len > left - kChunkHead) break;
    if (crc) {
      uint32_t want = 0;
      std::memcpy(&want, h + 8, 4);
      if (crc32c_extend(crc32c(h, 8), h + kChunkHead, len) != want) break;
    }
    const uint8_t type = h[0], flags = h[1];
    const bool known = (flags & ~kFlagZstd) == 0 && (type == kChunkRecords || type == kChunkFooter);
    if (known && (flags & kFlagZstd)) {
      if (len < 4) break;
      uint32_t raw = 0;
      std::memcpy(&raw, h + kChunkHead, 4);
      if (raw > kMaxChunkRaw) break;
      d.total = sat_add(d.total, raw);
      if (d.total > limit && d.crossing == SIZE_MAX) {
        d.crossing = pos;
        d.at_crossing = d.total;
      }
    }
    footer_seen = known && type == kChunkFooter;
    pos += kChunkHead + len;
  }
  return d;
}

}  // namespace

bool expansion_budget(const std::string& path, uint64_t file_size, const ReadOptions& opt,
                      ExpansionBudget* b, ReadError* err) {
  b->ratio = opt.max_expansion;
  b->source = "ReadOptions::max_expansion";
  if (b->ratio == 0) {
    b->ratio = kDefaultMaxExpansion;
    b->source = "the default";
    if (const char* env = std::getenv(kMaxExpansionEnv); env && *env) {
      errno = 0;
      char* end = nullptr;
      const unsigned long long v = std::strtoull(env, &end, 10);
      if (*env == '-' || *end != '\0' || v == 0 || errno == ERANGE) {
        if (err) {
          err->kind = ReadErrorKind::ExpansionLimit;
          err->message = path + ": " + kMaxExpansionEnv + "='" + env +
                         "' is not a positive integer (decompressed bytes allowed per file byte; "
                         "default " +
                         std::to_string(kDefaultMaxExpansion) + ")";
        }
        return false;
      }
      b->ratio = v;
      b->source = kMaxExpansionEnv;
    }
  }
  b->floor = opt.expansion_floor_bytes;
  b->limit = b->ratio == kU64Max ? kU64Max : std::max(b->floor, sat_mul(b->ratio, file_size));
  return true;
}

bool check_expansion(const std::string& path, const uint8_t* base, size_t size, size_t header_end,
                     const ExpansionBudget& b, ReadError* err) {
  if (b.limit == kU64Max) return true;
  // Fast path: the headers alone declare no more than the limit (every legitimate trace).
  if (walk_declared(base, size, header_end, /*crc=*/false, b.limit).crossing == SIZE_MAX)
    return true;
  // Only chunks the real walk reaches count: a corrupt chunk's R is not the writer's.
  const Declared d = walk_declared(base, size, header_end, /*crc=*/true, b.limit);
  if (d.crossing == SIZE_MAX) return true;
  if (err) {
    const uint64_t need = size == 0 ? kU64Max : d.total / size + (d.total % size != 0);
    err->kind = ReadErrorKind::ExpansionLimit;
    err->message = path + ": chunk at offset " + std::to_string(d.crossing) +
                   ": zstd chunks decompress to more than the reader's limit of " +
                   std::to_string(b.limit) + " bytes (max(" + bytes_text(b.floor) + ", " +
                   std::to_string(b.ratio) + " x the file's " + std::to_string(size) +
                   " bytes), ratio from " + b.source + "; " + std::to_string(d.at_crossing) +
                   " bytes up to this chunk, " + std::to_string(d.total) +
                   " in the file): refused as a possible decompression bomb. " +
                   "If the trace is genuine, raise the limit: " + kMaxExpansionEnv + "=" +
                   std::to_string(need) + " (or ReadOptions::max_expansion)";
  }
  return false;
}

}  // namespace fpscope::trace::detail
