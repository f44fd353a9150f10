#include "held_calls.h"

#include <cstring>
#include <memory>

namespace fpscope::probe {

void HeldCalls::hold(uint64_t seq, uint64_t time_ns, const GemmDesc& d,
                     const bool measured[kMaxOperands]) {
  if (held_.empty()) base_ = seq;
  Held h;
  h.seq = seq;
  h.time_ns = time_ns;
  h.desc = d;
  for (int i = 0; i < kMaxOperands; ++i) h.pending[i] = measured[i];
  held_.push_back(std::move(h));
}

HeldCalls::Held* HeldCalls::find(uint64_t seq) {
  if (held_.empty() || seq < base_ || seq - base_ >= held_.size()) return nullptr;
  return &held_[seq - base_];
}

void HeldCalls::set_batch(uint64_t seq, int64_t batch) {
  Held* h = find(seq);
  if (h != nullptr && h->seq == seq) h->desc.sig.batch = batch;
}

bool HeldCalls::keep(uint64_t seq, int i, const TensorStats& s, std::span<const float> sketch) {
  Held* h = find(seq);
  if (h == nullptr) return false;
  if (h->seq == seq && h->pending[i]) {
    h->pending[i] = false;
    h->have[i] = true;
    CompactStats& c = h->stats[i];
    c.scalars = s;
    c.hist.clear();
    for (int b = 0; b < kHistBins; ++b)
      if (s.hist[b] != 0) c.hist.emplace_back(static_cast<uint16_t>(b), s.hist[b]);
    c.sketch.assign(sketch.begin(), sketch.end());
    c.blocks = trace::BlockStatsRecord{};
    c.blocks.mask = s.blocks.mask;
    c.blocks.axis = s.blocks.axis;
    c.blocks.nvfp4_tensor_scale = s.blocks.nvfp4_tensor_scale;
    for (int f = 0; f < kNumBlockFormats && s.blocks.mask != 0; ++f) {
      c.blocks.fmt[f] = s.blocks.fmt[f];
      for (int b = 0; b < kBlockScaleBins; ++b)
        if (s.blocks.scale_hist[f][b] != 0)
          c.blocks.scale_hist[f].emplace_back(static_cast<uint8_t>(b), s.blocks.scale_hist[f][b]);
    }
  }
  return true;
}

void HeldCalls::release(size_t index, const uint32_t tensor[kMaxOperands], uint64_t step,
                        const Emit& emit) {
  const Held& h = held_[index];
  Late late;
  for (int k = 0; k < h.desc.num_operands; ++k) {
    if (tensor[k] == kUnresolved) continue;
    if (h.have[k]) {
      if (!expanded_) expanded_ = std::make_unique<TensorStats>();
      static_cast<StatsScalars&>(*expanded_) = h.stats[k].scalars;
      std::memset(expanded_->hist, 0, sizeof expanded_->hist);
      for (const auto& [b, c] : h.stats[k].hist) expanded_->hist[b] = c;
      h.stats[k].blocks.expand_into(&expanded_->blocks);
      emit(StatsTarget{tensor[k], step, h.seq, h.desc.stream, h.time_ns}, *expanded_,
           h.stats[k].sketch);
    } else if (h.pending[k]) {
      late.tensor[k] = tensor[k];
      ++late.pending;
    }
  }
  if (late.pending > 0) {
    late.step = step;
    late.stream = h.desc.stream;
    late.time_ns = h.time_ns;
    late_.emplace(h.seq, late);
  }
}

std::optional<StatsTarget> HeldCalls::take_late(uint64_t seq, int i) {
  auto it = late_.find(seq);
  if (it == late_.end() || it->second.tensor[i] == kUnresolved) return std::nullopt;
  Late& l = it->second;
  const StatsTarget t{l.tensor[i], l.step, seq, l.stream, l.time_ns};
  l.tensor[i] = kUnresolved;
  if (--l.pending == 0) late_.erase(it);
  return t;
}

void HeldCalls::abandon(uint64_t seq, int i) {
  if (Held* h = find(seq)) {
    h->pending[i] = false;
    return;
  }
  auto it = late_.find(seq);
  if (it != late_.end() && it->second.tensor[i] != kUnresolved) {
    it->second.tensor[i] = kUnresolved;
    if (--it->second.pending == 0) late_.erase(it);
  }
}

void HeldCalls::clear_held() {
  held_.clear();
  records_.clear();
}

void HeldCalls::clear_late() {
  late_.clear();
}

}  // namespace fpscope::probe
