// Internal state of the strict mock CUDA driver: the objects behind the handles, the knobs, the
// per-thread state and the stream-capture rules every entry point shares. Not a public header
// (test programs use mock_control.h).
//
// Model: one process-wide mutex serialises every entry point; objects are never freed (a destroyed
// handle stays readable and is refused as CUDA_ERROR_INVALID_HANDLE / _CONTEXT); work enqueued on a
// stream that is not capturing runs at once, in the calling thread, so stream order holds
// trivially; work on a capturing stream is recorded in the capture, never run (graphs are not
// launched).
#pragma once

#include <cuda.h>

#include <cstddef>
#include <cstdint>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "mock_control.h"

struct CUctx_st {
  int device = 0;
  bool primary = false;
  bool alive = true;
  CUstream_st* null_stream = nullptr;  // the legacy NULL stream of this context
};

namespace mock {
struct Capture;
}

struct CUstream_st {
  CUctx_st* ctx = nullptr;
  unsigned flags = 0;
  bool alive = true;
  bool is_null = false;              // the context's legacy stream
  mock::Capture* capture = nullptr;  // the capture sequence this stream takes part in
  bool unjoined = false;             // forked into a capture with work not joined back yet
  uint64_t seq = 0;                  // operations recorded into its capture so far
};

struct CUevent_st {
  CUctx_st* ctx = nullptr;
  unsigned flags = 0;
  bool alive = true;
  bool recorded = false;
  CUstream_st* stream = nullptr;     // where it was last recorded
  mock::Capture* capture = nullptr;  // last recorded inside this capture sequence
  int lag = 0;                       // cuEventQuery calls left that report NOT_READY
  uint64_t seq = 0;                  // stream->seq when recorded in a capture
};

struct CUmod_st {
  CUctx_st* ctx = nullptr;
  bool alive = true;
  bool fatbin = false;
  std::string ptx;  // PTX text (empty for a fatbin)
};

struct CUfunc_st {
  CUmod_st* mod = nullptr;
  std::string name;
  int kernel = -1;  // fpscope::StatsKernel id, -1: no CPU model
};

struct CUgraph_st {
  bool alive = true;
  size_t nodes = 0;
};

namespace mock {

struct Capture {
  uint64_t id = 0;
  CUstream_st* origin = nullptr;
  CUstreamCaptureMode mode = CU_STREAM_CAPTURE_MODE_GLOBAL;
  std::thread::id thread;
  bool active = true;  // false once ended
  bool invalidated = false;
  std::vector<std::function<void()>> ops;  // recorded, never run
};

struct Allocation {
  uintptr_t base = 0;
  size_t size = 0;
  CUctx_st* ctx = nullptr;
  bool host = false;   // cuMemHostAlloc (pinned)
  unsigned flags = 0;  // cuMemHostAlloc flags
  bool async = false;  // cuMemAllocAsync
};

struct Knobs {
  int driver_version = 13000;
  int devices = 1;
  int sm_count = 132;
  bool mempools = true;
  int event_lag = 0;
  long long fail_alloc_after = -1;  // -1: never
  CUresult reject_fatbin = CUDA_SUCCESS;
  int max_ptx_major = 1 << 20, max_ptx_minor = 0;
  bool proc_not_found_error = false;
};

struct State {
  std::mutex mu;
  bool initialized = false;
  uint64_t generation = 1;  // bumps on mock_cuda_reset: stale thread states reset
  Knobs knobs;
  MockCudaCounters counters{};
  std::vector<CUctx_st*> contexts;
  CUctx_st* primary[MOCK_CUDA_MAX_DEVICES] = {};
  int primary_refs[MOCK_CUDA_MAX_DEVICES] = {};
  std::vector<CUstream_st*> streams;
  std::vector<CUevent_st*> events;
  std::vector<CUmod_st*> modules;
  std::vector<CUfunc_st*> functions;
  std::vector<CUgraph_st*> graphs;
  std::vector<Capture*> captures;       // every capture ever begun (active flag tells)
  std::vector<Allocation> allocations;  // live ones
  uint64_t next_capture_id = 1;
};

State& state();
void read_knobs(Knobs& k);

// The calling thread's state: its context stack (top = current) and capture interaction mode.
struct ThreadState {
  uint64_t generation = 0;
  std::vector<CUctx_st*> stack;
  CUstreamCaptureMode mode = CU_STREAM_CAPTURE_MODE_GLOBAL;
};
ThreadState& thread_state();  // call with state().mu held
CUctx_st* current_context();  // nullptr when none

// Handle checks (state().mu held).
bool valid(CUctx_st* c);
bool valid(CUstream_st* s);
bool valid(CUevent_st* e);
bool valid(CUmod_st* m);
bool valid(CUfunc_st* f);

// Resolves a stream argument: NULL / CU_STREAM_LEGACY mean the current context's legacy stream
// (CUDA_ERROR_INVALID_CONTEXT without one); otherwise the stream must be live
// (CUDA_ERROR_INVALID_HANDLE) and, for work, belong to the current context
// (CUDA_ERROR_INVALID_HANDLE).
CUresult resolve_stream(CUstream in, bool same_context_as_current, CUstream_st** out);

// The stream-capture gate for a "potentially unsafe" call made by this thread (see mock_state.cpp
// for the rule and its documentation): CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED after invalidating
// the captures that prohibit it, else CUDA_SUCCESS. `exempt` is a capture the call belongs to
// (work enqueued into it), never counted against the call.
CUresult unsafe_call_gate(const Capture* exempt = nullptr);
void invalidate(Capture* c);

// Enqueue work on a resolved stream: recorded into the stream's capture when capturing, else run
// now. Enforces the legacy stream's implicit synchronisation with capturing blocking streams.
CUresult enqueue(CUstream_st* s, std::function<CUresult()> work);
// The legacy-stream half of enqueue alone (cuEventRecord, sync copies).
CUresult legacy_stream_check(CUstream_st* s);

// Fault injection + counting for every allocation call (state().mu held).
bool allocation_allowed();
const Allocation* find_allocation(uintptr_t p, size_t bytes, bool host);
// Counts an async copy whose host side is not pinned for ctx.
void note_host_side(const void* host, size_t bytes, CUctx_st* ctx);

}  // namespace mock

// Every entry point: cuInit first (cuda.h, cuInit: "If cuInit() has not been called, any function
// from the driver API will return CUDA_ERROR_NOT_INITIALIZED").
#define MOCK_LOCK_INIT()                                    \
  std::lock_guard<std::mutex> mock_lock_(mock::state().mu); \
  if (!mock::state().initialized) return CUDA_ERROR_NOT_INITIALIZED
// ... and a current context (cuda.h, CUDA_ERROR_INVALID_CONTEXT: "This most frequently indicates
// that there is no context bound to the current thread").
#define MOCK_NEED_CONTEXT(var)             \
  CUctx_st* var = mock::current_context(); \
  if (!var) return CUDA_ERROR_INVALID_CONTEXT
