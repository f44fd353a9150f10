// Internal: byte-level constants and primitive encoders/decoders of the trace format
// (traces/FORMAT.md is the spec; keep the two in step).
#pragma once

#include <bit>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>

static_assert(std::endian::native == std::endian::little,
              "the trace codec memcpy's little-endian fields: port it before using a BE host");

namespace fpscope::trace::detail {

inline constexpr uint8_t kMagic[8] = {0x89, 'F', 'P', 'S', 'T', '\r', '\n', 0x1A};
inline constexpr size_t kHeaderFixed = 20;  // magic, major, minor, flags, metadata length
inline constexpr size_t kChunkHead = 12;    // type, flags, reserved, payload length, crc
inline constexpr uint32_t kMaxMetadata = 16u << 20;
inline constexpr uint32_t kMaxChunkRaw = 64u << 20;  // decompressed payload cap (reader)
inline constexpr size_t kMaxString = 64u << 10;      // writer truncates longer strings

// Chunk types.
inline constexpr uint8_t kChunkRecords = 1;
inline constexpr uint8_t kChunkFooter = 2;
// Chunk flags.
inline constexpr uint8_t kFlagZstd = 1;

// Record tags inside a RECORDS chunk.
enum RecordTag : uint8_t {
  kTagTensor = 1,
  kTagObservation = 2,
  kTagStep = 3,
  kTagLossScale = 4,
  kTagWeightUpdate = 5,
  kTagEvent = 6,
  kTagLoss = 7,    // format 1.1
  kTagSketch = 8,  // format 1.4: VALUE_SKETCH
};
inline constexpr int kNumTags = 9;  // index 0 unused
// The record tags a reader knows in a file of minor version `minor`: a tag the file's own minor
// did not define is an unknown record there (FORMAT.md 5), as it would be for that minor's reader.
inline constexpr int known_tags(uint16_t minor) {
  return minor >= 4 ? kNumTags : kTagSketch;
}
// VALUE_SKETCH (FORMAT.md 5.8): at most this many buckets.
inline constexpr uint64_t kMaxSketchBuckets = 4096;

inline constexpr uint8_t kFooterEnd[4] = {'F', 'E', 'N', 'D'};

// ---- encoding (caller guarantees capacity) ------------------------------------------------
inline uint8_t* put_varint(uint8_t* p, uint64_t v) {
  while (v >= 0x80) {
    *p++ = static_cast<uint8_t>(v | 0x80);
    v >>= 7;
  }
  *p++ = static_cast<uint8_t>(v);
  return p;
}
inline uint64_t zigzag(int64_t v) {
  return (static_cast<uint64_t>(v) << 1) ^ static_cast<uint64_t>(v >> 63);
}
inline int64_t unzigzag(uint64_t v) {
  return static_cast<int64_t>(v >> 1) ^ -static_cast<int64_t>(v & 1);
}
inline uint8_t* put_u8(uint8_t* p, uint8_t v) {
  *p = v;
  return p + 1;
}
template <typename T>
inline uint8_t* put_raw(uint8_t* p, T v) {
  std::memcpy(p, &v, sizeof v);
  return p + sizeof v;
}
inline uint8_t* put_f32(uint8_t* p, float v) {
  return put_raw(p, v);
}
inline uint8_t* put_f64(uint8_t* p, double v) {
  return put_raw(p, v);
}
inline constexpr size_t kMaxVarint = 10;

// Growable byte buffer for the rare variable-size records (tensor definitions, events).
struct ByteSink {
  std::string s;
  void varint(uint64_t v) {
    uint8_t b[kMaxVarint];
    s.append(reinterpret_cast<const char*>(b), static_cast<size_t>(put_varint(b, v) - b));
  }
  void svarint(int64_t v) { varint(zigzag(v)); }
  void u8(uint8_t v) { s.push_back(static_cast<char>(v)); }
  void f32(float v) { s.append(reinterpret_cast<const char*>(&v), 4); }
  void f64(double v) { s.append(reinterpret_cast<const char*>(&v), 8); }
  void str(std::string_view v) {
    if (v.size() > kMaxString) v = v.substr(0, kMaxString);
    varint(v.size());
    s.append(v.data(), v.size());
  }
};

// ---- decoding (bounds-checked; a failed read sets ok = false and returns 0) ---------------
struct Cursor {
  const uint8_t* p;
  const uint8_t* end;
  bool ok = true;

  size_t left() const { return static_cast<size_t>(end - p); }
  bool fail() {
    ok = false;
    p = end;
    return false;
  }
  uint64_t varint() {
    if (p != end && *p < 0x80) return *p++;  // one-byte fast path (most fields)
    if (left() >= 3) {           // two- and three-byte values (histogram counts) without the loop:
      const uint64_t b1 = p[1];  // 15 % of the load time (an unrolled 10-byte decode was slower)
      if (b1 < 0x80) {
        const uint64_t v = (p[0] & 0x7Fu) | b1 << 7;
        p += 2;
        return v;
      }
      const uint64_t b2 = p[2];
      if (b2 < 0x80) {
        const uint64_t v = (p[0] & 0x7Fu) | (b1 & 0x7F) << 7 | b2 << 14;
        p += 3;
        return v;
      }
    }
    return varint_slow();
  }
  uint64_t varint_slow() {
    uint64_t v = 0;
    for (int shift = 0; shift < 64; shift += 7) {
      if (p == end) return fail(), 0;
      const uint8_t b = *p++;
      if (shift == 63 && b > 1) return fail(), 0;  // more than 64 bits
      v |= static_cast<uint64_t>(b & 0x7F) << shift;
      if (!(b & 0x80)) return v;
    }
    return fail(), 0;
  }
  int64_t svarint() { return unzigzag(varint()); }
  uint8_t u8() {
    if (p == end) return fail(), 0;
    return *p++;
  }
  template <typename T>
  T raw() {
    T v{};
    if (left() < sizeof v) return fail(), v;
    std::memcpy(&v, p, sizeof v);
    p += sizeof v;
    return v;
  }
  float f32() { return raw<float>(); }
  double f64() { return raw<double>(); }
  std::string_view bytes(uint64_t n) {
    if (n > left()) return fail(), std::string_view();
    std::string_view v(reinterpret_cast<const char*>(p), static_cast<size_t>(n));
    p += n;
    return v;
  }
  std::string str() {
    const uint64_t n = varint();
    return std::string(bytes(n));
  }
};

}  // namespace fpscope::trace::detail
