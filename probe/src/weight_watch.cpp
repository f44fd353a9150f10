#include "weight_watch.h"

#include <algorithm>
#include <cstring>
#include <new>
#include <utility>

#include "fpscope/numerics.h"

namespace fpscope::probe {
namespace {

// Widens a watched tensor to FP32 (BF16 and FP16 widen exactly; numerics.h's decode).
void widen(const void* src, Format dtype, uint64_t n, float* dst) {
  if (dtype == Format::FP32) {
    std::memcpy(dst, src, n * sizeof(float));
    return;
  }
  const auto* h = static_cast<const uint16_t*>(src);
  if (dtype == Format::BF16) {
    for (uint64_t i = 0; i < n; ++i) dst[i] = decode_storage_t<Format::BF16>(h[i]);
  } else {
    for (uint64_t i = 0; i < n; ++i) dst[i] = decode_storage_t<Format::FP16>(h[i]);
  }
}

float widen_one(const void* src, Format dtype, uint64_t i) {
  if (dtype == Format::FP32) return static_cast<const float*>(src)[i];
  const uint16_t h = static_cast<const uint16_t*>(src)[i];
  return dtype == Format::BF16 ? decode_storage_t<Format::BF16>(h)
                               : decode_storage_t<Format::FP16>(h);
}

// splitmix64's finalizer: a fixed hash, so a watch follows the same positions in every run.
uint64_t mix(uint64_t x) {
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

// Widens followed positions [j0, j0 + n) of a sample of `watched` out of `count` to FP32: the
// positions of sample_position, stepped without its 128-bit divisions (floor(j * count /
// watched) = j * q + floor(j * r / watched) with count = q * watched + r, the remainder carried).
void gather(const void* src, Format dtype, uint64_t count, uint64_t watched, uint64_t j0,
            uint64_t n, float* dst) {
  if (watched == count) {
    widen(dtype == Format::FP32 ? static_cast<const void*>(static_cast<const float*>(src) + j0)
                                : static_cast<const void*>(static_cast<const uint16_t*>(src) + j0),
          dtype, n, dst);
    return;
  }
  __extension__ typedef unsigned __int128 u128;
  const uint64_t q = count / watched, r = count % watched;
  uint64_t lo = static_cast<uint64_t>(u128{j0} * count / watched);
  uint64_t carry = static_cast<uint64_t>(u128{j0} * r % watched);  // (j * r) mod watched
  for (uint64_t k = 0; k < n; ++k) {
    carry += r;  // r < watched: at most one wrap
    const uint64_t wrap = carry >= watched ? 1 : 0;
    carry -= wrap * watched;
    const uint64_t hi = lo + q + wrap;
    dst[k] = widen_one(src, dtype, lo + mix(j0 + k) % (hi - lo));
    lo = hi;
  }
}

// Positions gathered at a time when the update is measured: a multiple of the update-loss
// pass's block (512), so the sums come out as from one call over the whole sample.
constexpr uint64_t kGatherBlock = 4096;

}  // namespace

uint64_t sample_position(uint64_t j, uint64_t watched, uint64_t count) {
  __extension__ typedef unsigned __int128 u128;  // j * count may pass 2^64
  const auto lo = static_cast<uint64_t>(u128{j} * count / watched);
  const auto hi = static_cast<uint64_t>(u128{j + 1} * count / watched);
  return lo + mix(j) % (hi - lo);  // hi > lo: watched <= count
}

uint64_t watch_sample_size(uint64_t count, uint64_t requested, uint64_t budget_left,
                           uint64_t max_elements) {
  uint64_t n = count;
  if (requested != 0 && requested < n) n = requested;
  if (max_elements < n) n = max_elements;
  const uint64_t fits = budget_left / kWatchBytesPerElement;
  return fits < n ? fits : n;
}

trace::WeightUpdateRecord weight_update_record(uint64_t step, uint32_t tensor, Format dtype,
                                               uint64_t elements, uint64_t watched,
                                               const UpdateLoss& loss) {
  trace::WeightUpdateRecord rec;
  rec.step = step;
  rec.tensor = tensor;
  rec.master_dtype = dtype;
  rec.elements = elements;
  rec.watched = watched;
  rec.bf16 = loss.bf16;
  rec.fp16 = loss.fp16;
  rec.changed = loss.changed;
  for (int b = 0; b < kRatioBins; ++b)
    if (loss.ratio_hist[b] != 0)
      rec.ratio_hist.emplace_back(static_cast<int16_t>(b + kRatioLog2Min), loss.ratio_hist[b]);
  return rec;
}

void HostWatch::snapshot() {
  if (prev_.empty()) prev_ = PooledBuffer(watched_ * sizeof(float));
  if (prev_.empty()) throw std::bad_alloc();
  gather(ptr_, dtype_, count_, watched_, 0, watched_, prev_.floats());
  have_prev_ = true;
}

bool HostWatch::take_update(uint64_t step, trace::WeightUpdateRecord* out) {
  if (!have_prev_) return false;
  UpdateLoss loss;
  if (dtype_ == Format::FP32 && watched_ == count_) {
    // The current weights are read in place: no second copy.
    add_update_loss(prev_.floats(), static_cast<const float*>(ptr_), watched_, &loss);
  } else {
    // Gathered and widened a block at a time, into a buffer that stays in cache.
    std::vector<float>& cur = cur_;
    cur.resize(kGatherBlock);
    for (uint64_t j = 0; j < watched_; j += kGatherBlock) {
      const uint64_t n = std::min(kGatherBlock, watched_ - j);
      gather(ptr_, dtype_, count_, watched_, j, n, cur.data());
      add_update_loss(prev_.floats() + j, cur.data(), n, &loss);
    }
  }
  *out = weight_update_record(step, tensor_, dtype_, count_, watched_, loss);
  have_prev_ = false;
  return true;
}

bool HostWatch::take_pending(uint64_t step, PendingUpdate* out) {
  if (!have_prev_) return false;
  out->step = step;
  out->tensor = tensor_;
  out->dtype = dtype_;
  out->elements = count_;
  out->watched = watched_;
  out->cur = PooledBuffer(watched_ * sizeof(float));
  if (out->cur.empty()) throw std::bad_alloc();
  gather(ptr_, dtype_, count_, watched_, 0, watched_, out->cur.floats());
  out->prev = std::move(prev_);  // the next snapshot takes a buffer of the pool
  have_prev_ = false;
  return true;
}

trace::WeightUpdateRecord PendingUpdate::measure() const {
  UpdateLoss loss;
  add_update_loss(prev.floats(), cur.floats(), watched, &loss);
  return weight_update_record(step, tensor, dtype, elements, watched, loss);
}

void HostWatches::add(const std::string& name, HostWatch w) {
  w.snapshot();
  watches_[name] = std::move(w);
}

uint64_t HostWatches::bytes() const {
  uint64_t b = 0;
  for (const auto& [name, w] : watches_) b += w.bytes();
  return b;
}

uint64_t HostWatches::bytes_except(const std::string& name) const {
  const auto it = watches_.find(name);
  return bytes() - (it == watches_.end() ? 0 : it->second.bytes());
}

void HostWatches::boundary(uint64_t ending, bool next_sampled,
                           const std::function<void(const trace::WeightUpdateRecord&)>& write,
                           const std::function<bool(PendingUpdate&&)>& defer) {
  for (auto& [name, w] : watches_) {
    PendingUpdate p;
    if (defer && w.take_pending(ending, &p)) {
      if (!defer(std::move(p))) write(p.measure());
    } else {
      trace::WeightUpdateRecord rec;
      if (w.take_update(ending, &rec)) write(rec);
    }
    if (next_sampled) w.snapshot();
  }
}

void HostWatches::forget_snapshots() {
  for (auto& [name, w] : watches_) w.forget_snapshot();
}

}  // namespace fpscope::probe
