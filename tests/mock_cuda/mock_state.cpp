// The strict mock driver's shared state, knobs, per-thread state and stream-capture rules.
// Documentation quoted below is the CUDA Driver API reference
// (docs.nvidia.com/cuda/cuda-driver-api), whose text is the doxygen of the toolkit's cuda.h;
// "cuda.h, <function>" names where it stands.
#include "mock_state.h"

#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace mock {

State& state() {
  static State* s = new State();  // never destroyed: entry points may run during exit
  return *s;
}

static long long env_int(const char* name, long long dflt) {
  const char* v = std::getenv(name);
  if (!v || !*v) return dflt;
  char* end = nullptr;
  long long x = std::strtoll(v, &end, 10);
  if (end == v) {
    std::fprintf(stderr, "mock libcuda: %s=%s is not a number; using %lld\n", name, v, dflt);
    return dflt;
  }
  return x;
}

void read_knobs(Knobs& k) {
  k = Knobs{};
  k.driver_version = static_cast<int>(env_int("MOCK_CUDA_DRIVER_VERSION", 13000));
  long long devices = env_int("MOCK_CUDA_DEVICES", 1);
  if (devices < 0 || devices > MOCK_CUDA_MAX_DEVICES) {
    std::fprintf(stderr, "mock libcuda: MOCK_CUDA_DEVICES=%lld outside 0..%d; using 1\n", devices,
                 MOCK_CUDA_MAX_DEVICES);
    devices = 1;
  }
  k.devices = static_cast<int>(devices);
  k.sm_count = static_cast<int>(env_int("MOCK_CUDA_SM_COUNT", 132));
  k.mempools = env_int("MOCK_CUDA_NO_MEMPOOLS", 0) == 0;
  k.event_lag = static_cast<int>(env_int("MOCK_CUDA_EVENT_LAG", 0));
  k.fail_alloc_after = env_int("MOCK_CUDA_FAIL_ALLOC_AFTER", -1);
  long long reject = env_int("MOCK_CUDA_REJECT_FATBIN", 0);
  if (reject == 209)
    k.reject_fatbin = CUDA_ERROR_NO_BINARY_FOR_GPU;
  else if (reject != 0)
    k.reject_fatbin = CUDA_ERROR_UNSUPPORTED_PTX_VERSION;
  if (const char* isa = std::getenv("MOCK_CUDA_MAX_PTX_ISA"); isa && *isa) {
    int major = 0, minor = 0;
    if (std::sscanf(isa, "%d.%d", &major, &minor) >= 1) {
      k.max_ptx_major = major;
      k.max_ptx_minor = minor;
    }
  }
  k.proc_not_found_error = env_int("MOCK_CUDA_PROC_NOT_FOUND_ERROR", 0) != 0;
}

namespace {
struct KnobLoader {
  KnobLoader() { read_knobs(state().knobs); }
} knob_loader;
}  // namespace

ThreadState& thread_state() {
  thread_local ThreadState ts;
  if (ts.generation != state().generation) ts = ThreadState{state().generation, {}, {}};
  return ts;
}

// cuda.h, cuCtxGetCurrent: "Returns in *pctx the CUDA context bound to the calling CPU thread.
// If no context is bound to the calling CPU thread then *pctx is set to NULL".
CUctx_st* current_context() {
  auto& ts = thread_state();
  return ts.stack.empty() ? nullptr : ts.stack.back();
}

template <class T>
static bool in(const std::vector<T*>& v, T* p) {
  if (!p) return false;
  for (T* x : v)
    if (x == p) return true;
  return false;
}
bool valid(CUctx_st* c) {
  return in(state().contexts, c) && c->alive;
}
bool valid(CUstream_st* s) {
  return in(state().streams, s) && s->alive && valid(s->ctx);
}
bool valid(CUevent_st* e) {
  return in(state().events, e) && e->alive && valid(e->ctx);
}
bool valid(CUmod_st* m) {
  return in(state().modules, m) && m->alive && valid(m->ctx);
}
bool valid(CUfunc_st* f) {
  return in(state().functions, f) && valid(f->mod);
}

CUresult resolve_stream(CUstream in_stream, bool same_context_as_current, CUstream_st** out) {
  CUctx_st* cur = current_context();
  // cuda.h, stream sync behavior: the NULL stream (and CU_STREAM_LEGACY) is the legacy default
  // stream "of the current context"; without one there is nothing to resolve it to
  // (cuMemAllocAsync: "CUDA_ERROR_INVALID_CONTEXT (default stream specified with no current
  // context)"). CU_STREAM_PER_THREAD is not modelled: treated as the legacy stream.
  if (in_stream == nullptr || in_stream == CU_STREAM_LEGACY || in_stream == CU_STREAM_PER_THREAD) {
    if (!cur) return CUDA_ERROR_INVALID_CONTEXT;
    *out = cur->null_stream;
    return CUDA_SUCCESS;
  }
  CUstream_st* s = in_stream;
  if (!valid(s)) return CUDA_ERROR_INVALID_HANDLE;
  // A stream belongs to the context it was created in (cuda.h, cuStreamCreate: "Creates a stream
  // ... in the current context"); work must be issued with that context current. The reference
  // states the rule for events (cuEventRecord: "hEvent and hStream must be from the same context
  // otherwise CUDA_ERROR_INVALID_HANDLE is returned"); the mock applies the same code to launches
  // and copies on another context's stream (the driver's "invalid resource handle").
  if (same_context_as_current) {
    if (!cur) return CUDA_ERROR_INVALID_CONTEXT;
    if (s->ctx != cur) return CUDA_ERROR_INVALID_HANDLE;
  }
  *out = s;
  return CUDA_SUCCESS;
}

void invalidate(Capture* c) {
  if (!c || c->invalidated) return;
  c->invalidated = true;
  state().counters.invalidated_captures++;
}

// cuda.h, cuThreadExchangeStreamCaptureMode: "stream capture places restrictions on API calls
// that can be made within or concurrently to a cuStreamBeginCapture-cuStreamEndCapture sequence."
//  - CU_STREAM_CAPTURE_MODE_GLOBAL: "If the local thread has an ongoing capture sequence that was
//    not initiated with CU_STREAM_CAPTURE_MODE_RELAXED at cuStreamBeginCapture, or if any other
//    thread has a concurrent capture sequence initiated with CU_STREAM_CAPTURE_MODE_GLOBAL, this
//    thread is prohibited from potentially unsafe API calls."
//  - CU_STREAM_CAPTURE_MODE_THREAD_LOCAL: "If the local thread has an ongoing capture sequence not
//    initiated with CU_STREAM_CAPTURE_MODE_RELAXED, it is prohibited from potentially unsafe API
//    calls. Concurrent capture sequences in other threads are ignored."
//  - CU_STREAM_CAPTURE_MODE_RELAXED: "The local thread is not prohibited from potentially unsafe
//    API calls."
// The refused call gets CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED ("the operation is not permitted
// when the stream is capturing") and the prohibiting capture is invalidated (cuStreamEndCapture:
// "If capture was invalidated, due to a violation of the rules of stream capture, then a NULL
// graph will be returned").
CUresult unsafe_call_gate(const Capture* exempt) {
  auto& ts = thread_state();
  if (ts.mode == CU_STREAM_CAPTURE_MODE_RELAXED) return CUDA_SUCCESS;
  const auto me = std::this_thread::get_id();
  bool refused = false;
  for (Capture* c : state().captures) {
    if (!c->active || c == exempt) continue;
    bool own = c->thread == me;
    bool prohibits = own ? c->mode != CU_STREAM_CAPTURE_MODE_RELAXED
                         : (c->mode == CU_STREAM_CAPTURE_MODE_GLOBAL &&
                            ts.mode == CU_STREAM_CAPTURE_MODE_GLOBAL);
    if (prohibits) {
      invalidate(c);
      refused = true;
    }
  }
  if (!refused) return CUDA_SUCCESS;
  state().counters.unsafe_calls++;
  return CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED;
}

CUresult legacy_stream_check(CUstream_st* s) {
  // cuda.h, cuStreamIsCapturing: "When a blocking stream is capturing, the legacy stream is in an
  // unusable state until the blocking stream capture is terminated. The legacy stream is not
  // supported for stream capture, but attempted use would have an implicit dependency on the
  // capturing stream(s)." -> CUDA_ERROR_STREAM_CAPTURE_IMPLICIT ("a disallowed implicit dependency
  // on a current capture sequence from cudaStreamLegacy"), which breaks that capture.
  if (s->is_null) {
    bool implicit = false;
    for (CUstream_st* t : state().streams) {
      if (t->alive && t->ctx == s->ctx && t->capture && t->capture->active &&
          !(t->flags & CU_STREAM_NON_BLOCKING)) {
        invalidate(t->capture);
        implicit = true;
      }
    }
    if (implicit) {
      state().counters.unsafe_calls++;
      return CUDA_ERROR_STREAM_CAPTURE_IMPLICIT;
    }
  }
  return CUDA_SUCCESS;
}

CUresult enqueue(CUstream_st* s, std::function<CUresult()> work) {
  if (CUresult r = legacy_stream_check(s); r != CUDA_SUCCESS) return r;
  if (Capture* c = s->capture; c && c->active) {
    // CUDA_ERROR_STREAM_CAPTURE_INVALIDATED: "the current capture sequence on the stream has been
    // invalidated due to a previous error."
    if (c->invalidated) return CUDA_ERROR_STREAM_CAPTURE_INVALIDATED;
    c->ops.push_back([w = std::move(work)] { (void)w(); });
    state().counters.captured_operations++;
    s->seq++;
    if (s != c->origin) s->unjoined = true;
    return CUDA_SUCCESS;
  }
  return work();
}

bool allocation_allowed() {
  auto& st = state();
  long long n = static_cast<long long>(st.counters.allocation_calls++);
  return st.knobs.fail_alloc_after < 0 || n < st.knobs.fail_alloc_after;
}

const Allocation* find_allocation(uintptr_t p, size_t bytes, bool host) {
  for (const Allocation& a : state().allocations)
    if (a.host == host && p >= a.base && p - a.base <= a.size && bytes <= a.size - (p - a.base))
      return &a;
  return nullptr;
}

// cuda.h, cuMemHostAlloc: "CU_MEMHOSTALLOC_PORTABLE: The memory returned by this call will be
// considered as pinned memory by all CUDA contexts, not just the one that performed the
// allocation." Anything else is pageable for ctx: the async copy is legal but synchronous with
// respect to the host, which the probe must never rely on; the mock counts it.
void note_host_side(const void* host, size_t bytes, CUctx_st* ctx) {
  const Allocation* a = find_allocation(reinterpret_cast<uintptr_t>(host), bytes, true);
  if (!a || (a->ctx != ctx && !(a->flags & CU_MEMHOSTALLOC_PORTABLE)))
    state().counters.pageable_async_copies++;
}

}  // namespace mock

extern "C" {

void mock_cuda_counters(MockCudaCounters* out) {
  std::lock_guard<std::mutex> lock(mock::state().mu);
  auto& st = mock::state();
  *out = st.counters;
  out->live_device_allocations = 0;
  out->live_host_allocations = 0;
  for (const auto& a : st.allocations)
    (a.host ? out->live_host_allocations : out->live_device_allocations)++;
}

void mock_cuda_reset(void) {
  std::lock_guard<std::mutex> lock(mock::state().mu);
  auto& st = mock::state();
  // Objects stay allocated and reachable (a stale handle reads stale memory, never freed memory).
  static std::vector<void*> graveyard;
  for (auto* c : st.contexts) c->alive = false, graveyard.push_back(c);
  for (auto* s : st.streams) s->alive = false, graveyard.push_back(s);
  for (auto* e : st.events) e->alive = false, graveyard.push_back(e);
  for (auto* m : st.modules) m->alive = false, graveyard.push_back(m);
  for (auto* f : st.functions) graveyard.push_back(f);
  for (auto* g : st.graphs) g->alive = false, graveyard.push_back(g);
  for (auto* c : st.captures) c->active = false, graveyard.push_back(c);
  for (const auto& a : st.allocations) std::free(reinterpret_cast<void*>(a.base));
  st.contexts.clear(), st.streams.clear(), st.events.clear(), st.modules.clear();
  st.functions.clear(), st.graphs.clear(), st.captures.clear(), st.allocations.clear();
  for (int d = 0; d < MOCK_CUDA_MAX_DEVICES; ++d) st.primary[d] = nullptr, st.primary_refs[d] = 0;
  st.counters = MockCudaCounters{};
  st.initialized = false;
  st.generation++;
  mock::read_knobs(st.knobs);
}

void mock_cuda_reload_knobs(void) {
  std::lock_guard<std::mutex> lock(mock::state().mu);
  mock::read_knobs(mock::state().knobs);
}

int mock_cuda_is_pinned(const void* p, unsigned long long bytes) {
  std::lock_guard<std::mutex> lock(mock::state().mu);
  return mock::find_allocation(reinterpret_cast<uintptr_t>(p), bytes, true) != nullptr;
}

}  // extern "C"
