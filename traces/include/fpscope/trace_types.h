// fpscope trace records: what the probe writes and every reader (CLI, GUI, tests) sees.
// The byte encoding is specified in traces/FORMAT.md; these are the in-memory forms.
//
// How to add a record type (docs/design.md "How to add one"); a new kind is a MINOR format
// version (FORMAT.md section 7: older readers skip an unknown tag by its length):
//  1. FORMAT.md first: the next free tag in the table of section 5, a subsection with its body
//     (fields in order, encodings, which fields reference a TENSOR), the footer's K (section 6:
//     one more record-kind total) and the minor version (trace_io.h kFormatMinor).
//  2. Here: the in-memory struct (a `step` field if it belongs to a step: the footer index and
//     TraceFile's step ranges use it). New enumerations: append-only numbering, as below.
//  3. traces/src/codec.h: the RecordTag (kTag...) and kNumTags. writer.cpp: a TraceWriter method
//     (trace_io.h) that encodes the body (append_small for fixed-size bodies, append_sink for
//     variable ones). reader_internal.h: its decode_...() and a case in RecordDecoder::decode,
//     which bounds-checks every length and calls the chunk malformed on a short body.
//  4. The containers: a vector in Trace (trace_io.h) and in ChunkRecords plus a RecordKind value
//     (trace_file.h, numbered as the tag), the footer totals check in reader.cpp, and
//     ChunkRecords::step_of / clear in trace_file.cpp.
//  5. Tests: a round trip (tests/traces/test_roundtrip.cpp), the every-kind fixture
//     (tests/traces/trace_fixture.h) so that truncation at every byte and the bit flips cover
//     it, and the fuzz target's consumer (tests/fuzz/fuzz_read_trace.cpp).
//  6. Producers and consumers: the probe's recorder writes it; analysis/ (and the summary JSON,
//     docs/summary-json.md) and the GUI read it from Trace / TraceModel.
#pragma once

#include <algorithm>
#include <compare>
#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <iterator>
#include <memory>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "fpscope/formats.h"
#include "fpscope/stats.h"
#include "fpscope/update_loss.h"

namespace fpscope::trace {

// Numbering is part of the trace format: append only.
enum class Role : uint8_t { A = 0, B = 1, C = 2, D = 3, Weight = 4 };
const char* role_name(Role r);  // "A", "B", "C", "D", "W"

// Who defined step boundaries (docs/design.md "Steps"). Append only.
enum class StepSource : uint8_t {
  None = 0,             // no step boundaries seen: everything is step 0
  Api = 1,              // fpscope_step() / fpscope.py
  Nvtx = 2,             // NVTX range named like FPSCOPE_STEP_RANGE
  LossScaleKernel = 3,  // PyTorch's amp_update_scale_cuda_kernel
  OptimizerKernel = 4,  // kernel name matched FPSCOPE_OPTIMIZER_PATTERN
  GemmPeriod = 5,       // period of the repeating GEMM-signature sequence (unmodified CPU run)
  // The end of each optimizer step, from a framework integration (probe/python/fpscope_hooks:
  // PyTorch's Optimizer.step). Format 1.1: stored as `api` plus a refined source (FORMAT.md 5.3),
  // so that 1.0 readers still read the step marks (as "api").
  Framework = 6,
};
const char* step_source_name(StepSource s);  // "none", "api", ..., "framework"

enum class LossScaleSource : uint8_t { Api = 0, Kernel = 1 };
enum class EventLevel : uint8_t { Info = 0, Warning = 1, Error = 2 };

// GEMM signature, recorded once per tensor (the operand's call site).
struct GemmSignature {
  char transa = 'N';
  char transb = 'N';
  int64_t m = 0, n = 0, k = 0;
  int64_t lda = 0, ldb = 0, ldc = 0;
  double alpha = 1.0;
  double beta = 0.0;
  int64_t batch = 1;
};

// Defines a tensor identity once; observations refer to it by `index`.
// Identity across steps: (id, role, dtype, shape) - see docs/design.md "Tensor identity".
struct TensorInfo {
  uint32_t index = 0;  // assigned by TraceWriter::define_tensor, dense from 0
  std::string id;      // "gemm#3.D", or "<scope>.D" when named; for watched weights the name
  std::string name;    // human name from fpscope scopes / NVTX, empty when none
  std::string op;  // "sgemm", "cblas_sgemm", "sbgemm", "cublasGemmEx", "cublasLtMatmul", "watch"
  Role role = Role::D;
  Format dtype = Format::FP32;
  uint64_t rows = 0;  // 2-D view as stored, column-major: rows is the contiguous extent
  uint64_t cols = 0;
  uint64_t ld = 0;
  int32_t device = -1;  // -1 = host
  GemmSignature gemm;
};

// One observation of one tensor. Writer side: the full dense accumulator.
struct Observation {
  uint32_t tensor = 0;  // TensorInfo::index
  uint64_t step = 0;
  uint64_t seq = 0;      // global sequence number of the intercepted call (orders ops in a step)
  uint64_t stream = 0;   // 0 for host
  uint64_t time_ns = 0;  // since the trace started
  TensorStats stats;
  // Format 1.4: the value sketch's buckets (kernels value_sketch.h), written as a VALUE_SKETCH
  // record right after the observation; empty: none.
  std::vector<float> sketch;
};

// Reader side: the scalar statistics plus a slice of the trace's sparse histogram pool.
struct ObservationRecord {
  uint32_t tensor = 0;
  uint64_t step = 0;
  uint64_t seq = 0;
  uint64_t stream = 0;
  uint64_t time_ns = 0;
  StatsScalars stats;
  uint32_t hist_begin = 0;  // into Trace::hist_bins / Trace::hist_counts
  uint32_t hist_len = 0;
};

// The counts of a trace's sparse histogram pool (Trace::hist_counts). Reads like a
// std::vector<uint64_t> of exact values (operator[], size(), push_back, range-for), but stores
// 32 bits per entry: a count >= 2^32 - 1 (a tensor of 4G+ elements in one bin) keeps the escape
// value 0xFFFFFFFF there and its exact value in a side table sorted by index. Loading 1M
// observations with 35 entries each takes 140 MB less memory than 64-bit counts (see
// docs/benchmarks/traces.md). Values, not references, are returned: write through set().
class HistCounts {
 public:
  using value_type = uint64_t;
  using size_type = size_t;
  static constexpr uint32_t kEscape = 0xFFFFFFFFu;

  class const_iterator {
   public:
    using iterator_category = std::random_access_iterator_tag;
    using value_type = uint64_t;
    using difference_type = std::ptrdiff_t;
    using pointer = void;
    using reference = uint64_t;
    const_iterator() = default;
    const_iterator(const HistCounts* c, size_t i) : c_(c), i_(i) {}
    uint64_t operator*() const { return (*c_)[i_]; }
    uint64_t operator[](difference_type d) const { return (*c_)[i_ + static_cast<size_t>(d)]; }
    const_iterator& operator++() { return ++i_, *this; }
    const_iterator operator++(int) { return {c_, i_++}; }
    const_iterator& operator--() { return --i_, *this; }
    const_iterator operator--(int) { return {c_, i_--}; }
    const_iterator& operator+=(difference_type d) { return i_ += static_cast<size_t>(d), *this; }
    const_iterator& operator-=(difference_type d) { return i_ -= static_cast<size_t>(d), *this; }
    friend const_iterator operator+(const_iterator a, difference_type d) { return a += d; }
    friend const_iterator operator+(difference_type d, const_iterator a) { return a += d; }
    friend const_iterator operator-(const_iterator a, difference_type d) { return a -= d; }
    friend difference_type operator-(const const_iterator& a, const const_iterator& b) {
      return static_cast<difference_type>(a.i_) - static_cast<difference_type>(b.i_);
    }
    friend bool operator==(const const_iterator& a, const const_iterator& b) {
      return a.i_ == b.i_;
    }
    friend auto operator<=>(const const_iterator& a, const const_iterator& b) {
      return a.i_ <=> b.i_;
    }

   private:
    const HistCounts* c_ = nullptr;
    size_t i_ = 0;
  };
  using iterator = const_iterator;

  HistCounts() = default;
  HistCounts(std::initializer_list<uint64_t> v) { append(v.begin(), v.size()); }

  size_t size() const { return low_.size(); }
  bool empty() const { return low_.empty(); }
  size_t capacity() const { return low_.capacity(); }
  // Entries holding an escaped (>= 2^32 - 1) count.
  size_t escaped_entries() const { return high_.size(); }
  // The 32-bit array itself (escaped entries hold kEscape), e.g. for madvise.
  const uint32_t* low_data() const { return low_.data(); }
  // Bytes of heap memory held (the 32-bit array plus the side table), for benchmarks.
  size_t memory_bytes() const {
    return low_.capacity() * sizeof(uint32_t) + high_.capacity() * sizeof(high_[0]);
  }

  uint64_t operator[](size_t i) const {
    const uint32_t v = low_[i];
    return v != kEscape ? v : escaped(i);
  }
  uint64_t at(size_t i) const {
    if (i >= size()) throw std::out_of_range("HistCounts::at");
    return (*this)[i];
  }
  uint64_t front() const { return (*this)[0]; }
  uint64_t back() const { return (*this)[size() - 1]; }
  const_iterator begin() const { return {this, 0}; }
  const_iterator end() const { return {this, size()}; }
  const_iterator cbegin() const { return begin(); }
  const_iterator cend() const { return end(); }

  void reserve(size_t n) { low_.reserve(n); }
  void clear() {
    low_.clear();
    high_.clear();
  }
  void push_back(uint64_t v) {
    if (v >= kEscape) high_.emplace_back(low_.size(), v);
    low_.push_back(v >= kEscape ? kEscape : static_cast<uint32_t>(v));
  }
  void emplace_back(uint64_t v) { push_back(v); }
  void pop_back() { resize(size() - 1); }
  // Appends n values (one capacity check, no zero-fill first).
  void append(const uint64_t* v, size_t n) {
    const size_t at = low_.size();
    low_.resize(at + n);  // default-init allocator: no zeroing
    uint32_t* out = low_.data() + at;
    for (size_t i = 0; i < n; ++i) {
      if (v[i] < kEscape) {
        out[i] = static_cast<uint32_t>(v[i]);
      } else {
        out[i] = kEscape;
        high_.emplace_back(at + i, v[i]);
      }
    }
  }
  // New entries are 0; shrinking drops the escaped values past the end.
  void resize(size_t n) {
    const size_t old = low_.size();
    low_.resize(n);
    if (n > old) {
      std::fill(low_.begin() + static_cast<std::ptrdiff_t>(old), low_.end(), 0u);
    } else {
      while (!high_.empty() && high_.back().first >= n) high_.pop_back();
    }
  }
  void set(size_t i, uint64_t v) {
    auto it = std::lower_bound(
        high_.begin(), high_.end(), i,
        [](const std::pair<size_t, uint64_t>& e, size_t k) { return e.first < k; });
    const bool had = it != high_.end() && it->first == i;
    if (v >= kEscape) {
      if (had) {
        it->second = v;
      } else {
        high_.insert(it, {i, v});
      }
      low_[i] = kEscape;
    } else {
      if (had) high_.erase(it);
      low_[i] = static_cast<uint32_t>(v);
    }
  }

  friend bool operator==(const HistCounts& a, const HistCounts& b) {
    return a.low_.size() == b.low_.size() &&
           std::equal(a.low_.begin(), a.low_.end(), b.low_.begin()) && a.high_ == b.high_;
  }

 private:
  // Lets the trace reader size the pool without zeroing memory it overwrites at once.
  template <typename T>
  struct DefaultInitAllocator : std::allocator<T> {
    template <typename U>
    struct rebind {
      using other = DefaultInitAllocator<U>;
    };
    DefaultInitAllocator() = default;
    template <typename U>
    DefaultInitAllocator(const DefaultInitAllocator<U>&) noexcept {}
    template <typename U>
    void construct(U* p) noexcept {
      ::new (static_cast<void*>(p)) U;
    }
    template <typename U, typename... Args>
    void construct(U* p, Args&&... args) {
      ::new (static_cast<void*>(p)) U(std::forward<Args>(args)...);
    }
  };

  uint64_t escaped(size_t i) const {
    auto it = std::lower_bound(
        high_.begin(), high_.end(), i,
        [](const std::pair<size_t, uint64_t>& e, size_t k) { return e.first < k; });
    return it != high_.end() && it->first == i ? it->second : kEscape;
  }

  std::vector<uint32_t, DefaultInitAllocator<uint32_t>> low_;
  std::vector<std::pair<size_t, uint64_t>> high_;  // (index, exact count), sorted by index
};

// Format 1.4: an observation's value sketch (VALUE_SKETCH record; kernels value_sketch.h), as the
// reader keeps it.
struct SketchRecord {
  uint32_t observation = 0;  // index of its observation in the reader's vector
  std::vector<float> v;      // the buckets (the writer: kSketchBuckets of them)
};

// Format 1.3: an observation's block-scaled-format statistics (stats.h BlockStatsSet) as the
// reader keeps them: the counts, and each format's block-scale histogram sparse.
struct BlockStatsRecord {
  uint32_t observation = 0;  // index of its observation in the reader's vector
  uint32_t mask = 0;         // bit f: kBlockFormats[f] measured
  BlockAxis axis = BlockAxis::Rows;
  float nvfp4_tensor_scale = 1.0f;
  BlockFormatCounts fmt[kNumBlockFormats];
  std::vector<std::pair<uint8_t, uint64_t>> scale_hist[kNumBlockFormats];  // (bin, count)

  // The dense form (into a TensorStats' `blocks`).
  void expand_into(BlockStatsSet* out) const {
    *out = BlockStatsSet{};
    out->mask = mask;
    out->axis = axis;
    out->nvfp4_tensor_scale = nvfp4_tensor_scale;
    for (int f = 0; f < kNumBlockFormats; ++f) {
      out->fmt[f] = fmt[f];
      for (const auto& [bin, count] : scale_hist[f]) out->scale_hist[f][bin] += count;
    }
  }
};

struct StepMark {
  uint64_t step = 0;  // the step that begins here
  StepSource source = StepSource::None;
  uint64_t time_ns = 0;
  uint64_t first_seq = 0;  // sequence number of the first call in this step
};

struct LossScaleRecord {
  uint64_t step = 0;
  double scale = 0.0;       // the scale in effect for this step (before the update)
  bool found_inf = false;   // this step's gradients held Inf/NaN (the optimizer step was skipped)
  double next_scale = 0.0;  // the scale after the update (0 when unknown)
  LossScaleSource source = LossScaleSource::Api;
  uint64_t time_ns = 0;
};

// Master-weight update rounding loss of one watched tensor between step-1 and step.
// docs/design.md: applied_F = cast_F(cast_F(w_prev) + delta) - cast_F(w_prev), over delta != 0.
struct WeightUpdateRecord {
  uint64_t step = 0;
  uint32_t tensor = 0;                 // TensorInfo::index (role Weight, op "watch")
  Format master_dtype = Format::FP32;  // not FP32: master weights are not FP32 (flagged)
  uint64_t elements = 0;
  uint64_t changed = 0;  // elements with delta != 0 (of the watched positions)
  UpdateLossCounts bf16;
  UpdateLossCounts fp16;
  // Sparse histogram of floor(log2(|delta| / |w_prev|)) over changed elements with w_prev != 0.
  std::vector<std::pair<int16_t, uint64_t>> ratio_hist;
  // Format 1.2: the positions the counts are over, a uniform sample of `elements` (FORMAT.md 5.5);
  // equal to `elements` for a whole-tensor watch and in older traces (read back so).
  uint64_t watched = 0;
};

// The value of one scalar that backward() was called on (the Python integration) or that
// fpscope_loss() recorded, at the step it belongs to. Gradient accumulation gives several per
// step (one per backward pass): the step's loss is their sum (each is the micro-batch loss
// divided by the accumulation count, as such programs call backward on it). Format 1.1.
struct LossRecord {
  uint64_t step = 0;
  double value = 0.0;
  uint64_t time_ns = 0;
};

struct EventRecord {
  uint64_t step = 0;
  uint64_t time_ns = 0;
  EventLevel level = EventLevel::Info;
  std::string text;
};

// A warning event whose text starts with this says matrix multiplies ran where the probe has no
// hook (FORMAT.md 5.6): written by the PyTorch integration (probe/python/fpscope_hooks/
// fpscope_unhooked.py, NOT_MEASURED_PREFIX), read by the analysis (the verdict's reason) and by
// the probe (then it gives no exit warning of its own).
inline constexpr const char* kNotMeasuredPrefix = "not measured: ";

}  // namespace fpscope::trace
