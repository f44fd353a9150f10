#include "gemm_engine.h"

#include <mutex>
#include <string>
#include <unordered_set>

#include "../src/log.h"
#include "../src/recorder.h"
#include "cuda_backend.h"
#include "cupti_hooks.h"
#include "device_runtime.h"
#include "driver_api.h"
#include "lt_decode.h"

namespace fpscope::cuda {
namespace {

// The GEMM's device is that of the calling thread's current context: a cuBLAS handle works on the
// device that was current at cublasCreate and cuBLASLt on the current context, so the caller keeps
// it current (cuBLAS documentation, "cuBLAS context" / multi-GPU usage). Never asked of the
// stream: a stream query on a stream under capture invalidated a torch.cuda.graph capture on an
// H200 (tests/gpu/capture_check.py, 2026-12-04: cudaErrorStreamCaptureInvalidated with the stream
// query, a clean capture without it). -1 (no statistics) on a thread without a current context.
int device_of() {
  return current_device();
}

probe::GemmDesc to_desc(const GemmCall& c, int device) {
  probe::GemmDesc d;
  d.op = c.op;
  d.sig = c.sig;
  d.layout = c.layout;
  d.num_operands = c.num_operands;
  for (int i = 0; i < c.num_operands; ++i) {
    const DeviceOperand& o = c.operands[i];
    d.operands[i].role = o.role;
    // An unreadable type still needs an identity: FP32 is the storage placeholder (never sampled).
    d.operands[i].dtype = o.dtype.value_or(Format::FP32);
    d.operands[i].rows = o.rows;
    d.operands[i].cols = o.cols;
    d.operands[i].ld = o.ld;
  }
  d.device = device;
  d.stream = reinterpret_cast<uint64_t>(c.stream);
  return d;
}

// One trace event per (tensor, role, scale mode) of an FP8 operand with a cuBLASLt scale or a
// block scale mode: the trace says how its codes were read (or that they were not). Tensors not
// resolved yet (step detection) wait for a call that names them.
void note_fp8_scaling(probe::Recorder* rec, const DeviceOperand& o, uint32_t tensor,
                      bool measured) {
  if (tensor == probe::kUnresolved) return;
  static std::mutex mu;
  static std::unordered_set<uint64_t> seen;
  const uint64_t key = uint64_t{tensor} << 16 | static_cast<uint64_t>(o.role) << 8 |
                       (static_cast<uint64_t>(o.scale_mode) & 0xff);
  {
    std::lock_guard<std::mutex> lock(mu);
    if (!seen.insert(key).second) return;
  }
  const std::string what = std::string("cuda: FP8 operand ") + trace::role_name(o.role) +
                           " of tensor " + std::to_string(tensor) + ", cuBLASLt scale mode " +
                           scale_mode_name(o.scale_mode);
  if (!measured) {
    rec->event(trace::EventLevel::Warning,
               what + " (block scaled): block-scaled operand: not measured");
  } else {
    rec->event(trace::EventLevel::Info,
               what + " (per tensor): measured as code " +
                   (o.scale.op == ValueScaleOp::Divide ? "/ D scale" : "* scale") +
                   ", the scale read on the device");
  }
}

// FPSCOPE_FP8_SCALING's per-target scales for the statistics (Recorder::stats_scales, as on the
// host path). "current" needs the operand's amax before the pass, which the device path would get
// only by a second pass or a host synchronization: unsupported there (scales 1, said once).
void fp8_target_scales(probe::Recorder* rec, const probe::GemmTicket& t, int i, float* out) {
  if (rec->fp8_needs_amax()) {
    static std::once_flag once;
    std::call_once(once, [rec] {
      rec->event(trace::EventLevel::Warning,
                 "cuda: FPSCOPE_FP8_SCALING=current is not supported by the device statistics "
                 "(it needs the operand's amax before the pass): E4M3/E5M2 statistics use scale 1");
    });
    return;
  }
  rec->stats_scales(t, i, 0.0f, out);  // none: 1; delayed: from the tensor's earlier amaxes
}

// Enqueues the stats of operand i (or abandons it). Called before the GEMM for C aliasing D.
void submit_operand(const GemmCall& c, const GemmState& st, const probe::GemmTicket& t, int i,
                    int device) {
  const DeviceOperand& o = c.operands[i];
  Pipeline* p = pipeline();
  if (p == nullptr || !o.dtype || o.pointer_array || o.data == nullptr || device < 0) {
    if (p != nullptr) count_unsupported_operand();
    abandon_operand(st.cookie, i);
    return;
  }
  probe::Recorder* rec = probe::Recorder::get();
  const OperandReading reading = reading_of(o, rec != nullptr ? rec->block_formats() : 0);
  if (reading.skip_block_scaled) {
    count_block_scaled_operand();
    if (rec != nullptr) note_fp8_scaling(rec, o, t.tensor[i], false);
    abandon_operand(st.cookie, i);
    return;
  }
  StatsJob job;
  job.value_scale = reading.scale;
  if (rec != nullptr) {
    fp8_target_scales(rec, t, i, job.scales);
    if (reading.scale.ptr != nullptr) note_fp8_scaling(rec, o, t.tensor[i], true);
  }
  job.device = device;
  job.stream = c.stream;
  job.data = o.data;
  job.dtype = *o.dtype;
  job.rows = o.rows;
  job.cols = o.cols;
  job.ld = o.ld;
  job.batch = o.batch;
  job.batch_stride = o.batch_stride;
  job.block_formats = reading.block_formats;
  job.block_axis = device_block_axis(c.sig, o.role);
  ObsMeta meta;
  meta.cookie = st.cookie;
  meta.operand = i;
  meta.tensor = t.tensor[i];
  meta.step = t.step;
  meta.seq = t.seq;
  meta.stream = reinterpret_cast<uint64_t>(c.stream);
  meta.time_ns = t.time_ns;
  meta.device = device;
  std::string err;
  const Submit s = p->submit_stats(job, meta, &err);
  if (s != Submit::Ok) {
    if (s == Submit::Failed) FPSCOPE_LOG(Debug, "%s operand %d: %s", c.op, i, err.c_str());
    abandon_operand(st.cookie, i);
  }
}

}  // namespace

OperandReading reading_of(const DeviceOperand& o, uint32_t block_formats) {
  OperandReading r;
  if (o.block_scaled) {
    r.skip_block_scaled = true;
    return r;
  }
  if (o.scale.ptr != nullptr && o.scale.op != ValueScaleOp::None) r.scale = o.scale;
  // The block kernel's dtypes (stats_cuda.h launch_block_stats); codes with a scale are values
  // only after it, which the block kernel does not apply.
  const bool readable = o.dtype == Format::FP32 || o.dtype == Format::BF16 ||
                        o.dtype == Format::FP16 || o.dtype == Format::E4M3 ||
                        o.dtype == Format::E5M2;
  if (readable && r.scale.ptr == nullptr) r.block_formats = block_formats & kAllBlockFormats;
  return r;
}

BlockAxis device_block_axis(const trace::GemmSignature& sig, trace::Role role) {
  const char t = role == trace::Role::A ? sig.transa : role == trace::Role::B ? sig.transb : 'N';
  return probe::block_axis_of(role, t != 'N' && t != 'n');
}

DeviceOperand lt_device_operand(const LtMatmul& mm, trace::Role role, const void* data) {
  const LtLayout& l = role == trace::Role::A   ? mm.a
                      : role == trace::Role::B ? mm.b
                      : role == trace::Role::C ? mm.c
                                               : mm.d;
  const OperandScale sc = operand_scale(mm, role);
  return DeviceOperand{.role = role,
                       .data = data,
                       .dtype = l.order == CUBLASLT_ORDER_COL ? l.dtype : std::nullopt,
                       .rows = l.rows,
                       .cols = l.cols,
                       .ld = static_cast<uint64_t>(l.ld),
                       .batch = static_cast<uint64_t>(l.batch_count > 0 ? l.batch_count : 1),
                       .batch_stride = l.batch_stride,
                       .pointer_array = l.batch_mode == 1,
                       .scale = ValueScale{sc.ptr, sc.op},
                       .scale_mode = sc.mode,
                       .block_scaled = sc.block_scaled};
}

GemmState gemm_begin(const GemmCall& call) {
  GemmState st;
  probe::Recorder* rec = probe::Recorder::get();
  if (rec == nullptr) return st;
  on_gemm_issued();  // CUPTI: starts the subscriber; a pending optimizer step boundary lands here
  const int device = device_of();
  const probe::GemmTicket t = rec->begin_gemm(to_desc(call, device));
  if (!t.any) return st;
  int sampled = 0;
  for (int i = 0; i < call.num_operands; ++i) sampled += t.sampled[i] ? 1 : 0;
  if (sampled == 0) return st;
  st.active = true;
  st.cookie = register_call(t, sampled);
  st.device = device;
  st.ticket = t;
  // C is read by the GEMM and overwritten by D: its statistics must be taken before.
  for (int i = 0; i < call.num_operands; ++i) {
    if (t.sampled[i] && call.operands[i].role == trace::Role::C && call.c_aliases_d)
      submit_operand(call, st, t, i, device);
  }
  return st;
}

void gemm_end(const GemmCall& call, GemmState& st, int status) {
  if (!st.active) return;
  const probe::GemmTicket& t = st.ticket;
  const int device = st.device;
  for (int i = 0; i < call.num_operands; ++i) {
    if (!t.sampled[i]) continue;
    if (call.operands[i].role == trace::Role::C && call.c_aliases_d) continue;  // done before
    if (status != 0) {
      abandon_operand(st.cookie, i);  // the GEMM failed: D holds nothing of its own
      continue;
    }
    submit_operand(call, st, t, i, device);
  }
  st.active = false;
}

}  // namespace fpscope::cuda
