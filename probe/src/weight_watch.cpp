#include "weight_watch.h"

#include <cstring>
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

}  // namespace

trace::WeightUpdateRecord weight_update_record(uint64_t step, uint32_t tensor, Format dtype,
                                               uint64_t elements, const UpdateLoss& loss) {
  trace::WeightUpdateRecord rec;
  rec.step = step;
  rec.tensor = tensor;
  rec.master_dtype = dtype;
  rec.elements = elements;
  rec.bf16 = loss.bf16;
  rec.fp16 = loss.fp16;
  rec.changed = loss.changed;
  for (int b = 0; b < kRatioBins; ++b)
    if (loss.ratio_hist[b] != 0)
      rec.ratio_hist.emplace_back(static_cast<int16_t>(b + kRatioLog2Min), loss.ratio_hist[b]);
  return rec;
}

void HostWatch::snapshot() {
  prev_.resize(count_);
  widen(ptr_, dtype_, count_, prev_.data());
  have_prev_ = true;
}

bool HostWatch::take_update(uint64_t step, trace::WeightUpdateRecord* out) {
  if (!have_prev_) return false;
  cur_.resize(count_);
  widen(ptr_, dtype_, count_, cur_.data());
  UpdateLoss loss;
  compute_update_loss(prev_.data(), cur_.data(), count_, &loss.bf16, &loss.fp16, &loss.changed,
                      loss.ratio_hist);
  *out = weight_update_record(step, tensor_, dtype_, count_, loss);
  have_prev_ = false;
  return true;
}

void HostWatches::add(const std::string& name, HostWatch w) {
  w.snapshot();
  watches_[name] = std::move(w);
}

void HostWatches::boundary(uint64_t ending, bool next_sampled,
                           const std::function<void(const trace::WeightUpdateRecord&)>& write) {
  for (auto& [name, w] : watches_) {
    trace::WeightUpdateRecord rec;
    if (w.take_update(ending, &rec)) write(rec);
    if (next_sampled) w.snapshot();
  }
}

void HostWatches::forget_snapshots() {
  for (auto& [name, w] : watches_) w.forget_snapshot();
}

}  // namespace fpscope::probe
