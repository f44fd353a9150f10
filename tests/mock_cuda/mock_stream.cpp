// The strict mock CUDA driver's entry points for streams, events and stream capture. Each rule
// cites the CUDA Driver API reference (docs.nvidia.com/cuda/cuda-driver-api, the doxygen of the
// toolkit's cuda.h).
#include "mock_state.h"

using mock::state;

namespace {

// Events recorded on s are complete once s is synchronized.
void complete_events_of(CUstream_st* s) {
  for (CUevent_st* e : state().events)
    if (e->stream == s) e->lag = 0;
}

// An event last recorded in a capture that is still going on.
mock::Capture* live_capture_of(CUevent_st* e) {
  return e->capture && e->capture->active ? e->capture : nullptr;
}

// cuda.h, CU_STREAM_CAPTURE_MODE_RELAXED: "the thread is still prohibited from API calls which
// necessarily conflict with stream capture, for example, attempting cuEventQuery on an event that
// was last recorded inside a capture sequence" -> CUDA_ERROR_CAPTURED_EVENT ("the operation is not
// permitted on an event which was last recorded in a capturing stream"). The mock also invalidates
// that capture (Programming Guide, "Prohibited and Unhandled Operations": "Synchronizing or
// querying the execution status of a stream which is being captured or a captured event is
// invalid", and "Invalidation": invalid operations invalidate the associated capture graphs).
CUresult captured_event_check(CUevent_st* e) {
  if (mock::Capture* c = live_capture_of(e)) {
    mock::invalidate(c);
    state().counters.unsafe_calls++;
    return CUDA_ERROR_CAPTURED_EVENT;
  }
  return CUDA_SUCCESS;
}

}  // namespace

extern "C" {

// ---- streams ----------------------------------------------------------------------------------

// cuda.h, cuStreamCreate: "Creates a stream and returns a handle in phStream. The Flags argument
// determines behaviors of the stream": CU_STREAM_DEFAULT or CU_STREAM_NON_BLOCKING. In the current
// context (CUDA_ERROR_INVALID_CONTEXT without one).
CUresult cuStreamCreate(CUstream* phStream, unsigned int Flags) {
  MOCK_LOCK_INIT();
  MOCK_NEED_CONTEXT(cur);
  if (!phStream || (Flags & ~unsigned(CU_STREAM_NON_BLOCKING))) return CUDA_ERROR_INVALID_VALUE;
  auto* s = new CUstream_st();
  s->ctx = cur;
  s->flags = Flags;
  state().streams.push_back(s);
  *phStream = s;
  return CUDA_SUCCESS;
}

CUresult cuStreamDestroy(CUstream hStream) {
  MOCK_LOCK_INIT();
  if (!mock::valid(hStream) || hStream->is_null) return CUDA_ERROR_INVALID_HANDLE;
  if (hStream->capture && hStream->capture->active) mock::invalidate(hStream->capture);
  hStream->alive = false;
  return CUDA_SUCCESS;
}

// cuda.h, cuStreamSynchronize: "Waits until the device has completed all operations in the stream
// specified by hStream". Synchronising is potentially unsafe during capture, and a capturing stream
// cannot be synchronised at all (CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED, capture invalidated).
CUresult cuStreamSynchronize(CUstream hStream) {
  MOCK_LOCK_INIT();
  CUstream_st* s = nullptr;
  if (CUresult r = mock::resolve_stream(hStream, false, &s); r != CUDA_SUCCESS) return r;
  if (s->capture && s->capture->active) {
    mock::invalidate(s->capture);
    state().counters.unsafe_calls++;
    return CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED;
  }
  if (CUresult r = mock::unsafe_call_gate(); r != CUDA_SUCCESS) return r;
  if (CUresult r = mock::legacy_stream_check(s); r != CUDA_SUCCESS) return r;
  complete_events_of(s);
  return CUDA_SUCCESS;
}

// cuda.h, cuStreamWaitEvent: "Makes all future work submitted to hStream wait for all work
// captured in hEvent ... hEvent may be from a different context or device than hStream."
// During capture (CUDA C++ Programming Guide, "CUDA Graphs", "Cross-stream Dependencies and
// Events": waiting on an event recorded in a capturing stream makes the waiting stream join that
// capture, and every forked stream must be joined back to the origin stream before
// cuStreamEndCapture; "Prohibited and Unhandled Operations": "It is invalid to merge two separate
// capture graphs by waiting on a captured event from a stream which is being captured and is
// associated with a different capture graph than the event. It is invalid to wait on a
// non-captured event from a stream which is being captured without specifying the
// cudaEventWaitExternal flag.") the mock models:
//  - a stream waiting on an event of a live capture joins it (fork); a capture stream waiting on an
//    event recorded on a forked stream after its last work joins that stream back;
//  - a capturing stream waiting on an event from outside its capture:
//    CUDA_ERROR_STREAM_CAPTURE_ISOLATION ("a dependency would have been created which crosses the
//    capture sequence boundary"), unless CU_EVENT_WAIT_EXTERNAL;
//  - waiting on another capture's event: CUDA_ERROR_STREAM_CAPTURE_MERGE ("would have resulted in
//    a merge of two independent capture sequences").
// Both errors invalidate the waiting stream's capture (Programming Guide, "Invalidation": "When an
// invalid operation is attempted during stream capture, any associated capture graphs are
// invalidated").
CUresult cuStreamWaitEvent(CUstream hStream, CUevent hEvent, unsigned int Flags) {
  MOCK_LOCK_INIT();
  CUstream_st* s = nullptr;
  if (CUresult r = mock::resolve_stream(hStream, true, &s); r != CUDA_SUCCESS) return r;
  if (!mock::valid(hEvent)) return CUDA_ERROR_INVALID_HANDLE;
  if (Flags & ~unsigned(CU_EVENT_WAIT_EXTERNAL)) return CUDA_ERROR_INVALID_VALUE;
  if (CUresult r = mock::legacy_stream_check(s); r != CUDA_SUCCESS) return r;
  mock::Capture* mine = s->capture && s->capture->active ? s->capture : nullptr;
  mock::Capture* theirs = live_capture_of(hEvent);
  if (mine && mine->invalidated) return CUDA_ERROR_STREAM_CAPTURE_INVALIDATED;
  if (theirs) {
    if (!mine) {  // fork: s joins the capture
      s->capture = theirs;
      s->unjoined = true;
      s->seq = 0;
      return CUDA_SUCCESS;
    }
    if (mine != theirs) {
      mock::invalidate(mine);
      state().counters.unsafe_calls++;
      return CUDA_ERROR_STREAM_CAPTURE_MERGE;
    }
    CUstream_st* from = hEvent->stream;
    if (from != s && from->capture == mine && hEvent->seq == from->seq) from->unjoined = false;
    return CUDA_SUCCESS;
  }
  if (mine && hEvent->recorded && !(Flags & CU_EVENT_WAIT_EXTERNAL)) {
    mock::invalidate(mine);
    state().counters.unsafe_calls++;
    return CUDA_ERROR_STREAM_CAPTURE_ISOLATION;
  }
  return CUDA_SUCCESS;  // the work it waits for already ran (enqueue runs at once)
}

// ---- events -----------------------------------------------------------------------------------

CUresult cuEventCreate(CUevent* phEvent, unsigned int Flags) {
  MOCK_LOCK_INIT();
  MOCK_NEED_CONTEXT(cur);
  if (!phEvent) return CUDA_ERROR_INVALID_VALUE;
  auto* e = new CUevent_st();
  e->ctx = cur;
  e->flags = Flags;
  state().events.push_back(e);
  *phEvent = e;
  return CUDA_SUCCESS;
}

// cuda.h, cuEventRecord: "hEvent and hStream must be from the same context otherwise
// CUDA_ERROR_INVALID_HANDLE is returned." In a capturing stream the record is part of the capture
// (the event is then "last recorded in a capturing stream").
CUresult cuEventRecord(CUevent hEvent, CUstream hStream) {
  MOCK_LOCK_INIT();
  if (!mock::valid(hEvent)) return CUDA_ERROR_INVALID_HANDLE;
  CUstream_st* s = nullptr;
  if (CUresult r = mock::resolve_stream(hStream, false, &s); r != CUDA_SUCCESS) return r;
  if (s->ctx != hEvent->ctx) return CUDA_ERROR_INVALID_HANDLE;
  if (CUresult r = mock::legacy_stream_check(s); r != CUDA_SUCCESS) return r;
  hEvent->stream = s;
  if (mock::Capture* c = s->capture && s->capture->active ? s->capture : nullptr) {
    if (c->invalidated) return CUDA_ERROR_STREAM_CAPTURE_INVALIDATED;
    hEvent->capture = c;
    hEvent->seq = s->seq;
    return CUDA_SUCCESS;
  }
  hEvent->capture = nullptr;
  hEvent->recorded = true;
  hEvent->lag = state().knobs.event_lag;
  return CUDA_SUCCESS;
}

// cuda.h, cuEventQuery: "Returns CUDA_SUCCESS if all captured work has been completed, or
// CUDA_ERROR_NOT_READY if any captured work is incomplete" (MOCK_CUDA_EVENT_LAG queries report
// NOT_READY). Querying is potentially unsafe during another thread's global capture (a non-relaxed
// thread's query invalidates it), and an event recorded in a live capture cannot be queried.
CUresult cuEventQuery(CUevent hEvent) {
  MOCK_LOCK_INIT();
  if (!mock::valid(hEvent)) return CUDA_ERROR_INVALID_HANDLE;
  if (CUresult r = mock::unsafe_call_gate(); r != CUDA_SUCCESS) return r;
  if (CUresult r = captured_event_check(hEvent); r != CUDA_SUCCESS) return r;
  if (hEvent->lag > 0) {
    hEvent->lag--;
    return CUDA_ERROR_NOT_READY;
  }
  return CUDA_SUCCESS;
}

CUresult cuEventSynchronize(CUevent hEvent) {
  MOCK_LOCK_INIT();
  if (!mock::valid(hEvent)) return CUDA_ERROR_INVALID_HANDLE;
  if (CUresult r = mock::unsafe_call_gate(); r != CUDA_SUCCESS) return r;
  if (CUresult r = captured_event_check(hEvent); r != CUDA_SUCCESS) return r;
  hEvent->lag = 0;
  return CUDA_SUCCESS;
}

CUresult cuEventDestroy(CUevent hEvent) {
  MOCK_LOCK_INIT();
  if (!mock::valid(hEvent)) return CUDA_ERROR_INVALID_HANDLE;
  hEvent->alive = false;
  return CUDA_SUCCESS;
}

// ---- stream capture ---------------------------------------------------------------------------

// cuda.h, cuStreamBeginCapture: "Begin graph capture on hStream ... mode - Controls the
// interaction of this capture sequence with other API calls that are potentially unsafe"; "the
// legacy stream is not supported for stream capture" (cuStreamIsCapturing).
CUresult cuStreamBeginCapture(CUstream hStream, CUstreamCaptureMode mode) {
  MOCK_LOCK_INIT();
  CUstream_st* s = nullptr;
  if (CUresult r = mock::resolve_stream(hStream, true, &s); r != CUDA_SUCCESS) return r;
  if (mode != CU_STREAM_CAPTURE_MODE_GLOBAL && mode != CU_STREAM_CAPTURE_MODE_THREAD_LOCAL &&
      mode != CU_STREAM_CAPTURE_MODE_RELAXED)
    return CUDA_ERROR_INVALID_VALUE;
  if (s->is_null) return CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED;
  if (s->capture && s->capture->active) return CUDA_ERROR_ILLEGAL_STATE;
  auto& st = state();
  auto* c = new mock::Capture();
  c->id = st.next_capture_id++;
  c->origin = s;
  c->mode = mode;
  c->thread = std::this_thread::get_id();
  st.captures.push_back(c);
  s->capture = c;
  s->seq = 0;
  s->unjoined = false;
  return CUDA_SUCCESS;
}

// cuda.h, cuStreamEndCapture: "Capture must have been initiated on hStream via a call to
// cuStreamBeginCapture. If capture was invalidated, due to a violation of the rules of stream
// capture, then a NULL graph will be returned. If the mode argument to cuStreamBeginCapture was not
// CU_STREAM_CAPTURE_MODE_RELAXED, this call must be from the same thread as cuStreamBeginCapture."
// Errors: CUDA_ERROR_STREAM_CAPTURE_INVALIDATED, _UNMATCHED ("the capture was not initiated in this
// stream"), _UNJOINED ("contains a fork that was not joined to the primary stream"),
// _WRONG_THREAD.
CUresult cuStreamEndCapture(CUstream hStream, CUgraph* phGraph) {
  MOCK_LOCK_INIT();
  CUstream_st* s = nullptr;
  if (CUresult r = mock::resolve_stream(hStream, false, &s); r != CUDA_SUCCESS) return r;
  if (!phGraph) return CUDA_ERROR_INVALID_VALUE;
  mock::Capture* c = s->capture && s->capture->active ? s->capture : nullptr;
  if (!c) return CUDA_ERROR_ILLEGAL_STATE;
  if (c->origin != s) return CUDA_ERROR_STREAM_CAPTURE_UNMATCHED;
  if (c->mode != CU_STREAM_CAPTURE_MODE_RELAXED && c->thread != std::this_thread::get_id())
    return CUDA_ERROR_STREAM_CAPTURE_WRONG_THREAD;
  bool unjoined = false;
  for (CUstream_st* t : state().streams) {
    if (t->capture != c) continue;
    unjoined = unjoined || (t != s && t->unjoined);
    t->capture = nullptr;
    t->unjoined = false;
  }
  c->active = false;
  *phGraph = nullptr;
  if (c->invalidated) return CUDA_ERROR_STREAM_CAPTURE_INVALIDATED;
  if (unjoined) {
    mock::invalidate(c);
    return CUDA_ERROR_STREAM_CAPTURE_UNJOINED;
  }
  auto* g = new CUgraph_st();
  g->nodes = c->ops.size();
  state().graphs.push_back(g);
  *phGraph = g;
  return CUDA_SUCCESS;
}

// cuda.h, cuStreamIsCapturing: NONE / ACTIVE / INVALIDATED; "if this is called on CU_STREAM_LEGACY
// (the "null stream") while a blocking stream in the same context is capturing, it will return
// CUDA_ERROR_STREAM_CAPTURE_IMPLICIT ... The blocking stream capture is not invalidated."
CUresult cuStreamIsCapturing(CUstream hStream, CUstreamCaptureStatus* captureStatus) {
  MOCK_LOCK_INIT();
  CUstream_st* s = nullptr;
  if (CUresult r = mock::resolve_stream(hStream, false, &s); r != CUDA_SUCCESS) return r;
  if (!captureStatus) return CUDA_ERROR_INVALID_VALUE;
  if (s->is_null) {
    for (CUstream_st* t : state().streams)
      if (t->alive && t->ctx == s->ctx && t->capture && t->capture->active &&
          !(t->flags & CU_STREAM_NON_BLOCKING))
        return CUDA_ERROR_STREAM_CAPTURE_IMPLICIT;
    *captureStatus = CU_STREAM_CAPTURE_STATUS_NONE;
    return CUDA_SUCCESS;
  }
  mock::Capture* c = s->capture && s->capture->active ? s->capture : nullptr;
  *captureStatus = !c               ? CU_STREAM_CAPTURE_STATUS_NONE
                   : c->invalidated ? CU_STREAM_CAPTURE_STATUS_INVALIDATED
                                    : CU_STREAM_CAPTURE_STATUS_ACTIVE;
  return CUDA_SUCCESS;
}

// Status and id only: the graph, dependencies and edge data are not modelled (NULL / 0).
CUresult cuStreamGetCaptureInfo(CUstream hStream, CUstreamCaptureStatus* captureStatus_out,
                                cuuint64_t* id_out, CUgraph* graph_out,
                                const CUgraphNode** dependencies_out,
                                const CUgraphEdgeData** edgeData_out, size_t* numDependencies_out) {
  MOCK_LOCK_INIT();
  CUstream_st* s = nullptr;
  if (CUresult r = mock::resolve_stream(hStream, false, &s); r != CUDA_SUCCESS) return r;
  if (!captureStatus_out) return CUDA_ERROR_INVALID_VALUE;
  mock::Capture* c = s->capture && s->capture->active ? s->capture : nullptr;
  *captureStatus_out = !c               ? CU_STREAM_CAPTURE_STATUS_NONE
                       : c->invalidated ? CU_STREAM_CAPTURE_STATUS_INVALIDATED
                                        : CU_STREAM_CAPTURE_STATUS_ACTIVE;
  if (id_out) *id_out = c ? c->id : 0;
  if (graph_out) *graph_out = nullptr;
  if (dependencies_out) *dependencies_out = nullptr;
  if (edgeData_out) *edgeData_out = nullptr;
  if (numDependencies_out) *numDependencies_out = 0;
  return CUDA_SUCCESS;
}

// cuda.h, cuThreadExchangeStreamCaptureMode: "Sets the calling thread's stream capture interaction
// mode to the value contained in *mode, and overwrites *mode with the previous mode for the
// thread." The default is CU_STREAM_CAPTURE_MODE_GLOBAL.
CUresult cuThreadExchangeStreamCaptureMode(CUstreamCaptureMode* mode) {
  MOCK_LOCK_INIT();
  if (!mode) return CUDA_ERROR_INVALID_VALUE;
  if (*mode != CU_STREAM_CAPTURE_MODE_GLOBAL && *mode != CU_STREAM_CAPTURE_MODE_THREAD_LOCAL &&
      *mode != CU_STREAM_CAPTURE_MODE_RELAXED)
    return CUDA_ERROR_INVALID_VALUE;
  auto& ts = mock::thread_state();
  CUstreamCaptureMode previous = ts.mode;
  ts.mode = *mode;
  *mode = previous;
  return CUDA_SUCCESS;
}

CUresult cuGraphDestroy(CUgraph hGraph) {
  MOCK_LOCK_INIT();
  for (CUgraph_st* g : state().graphs)
    if (g == hGraph && g->alive) {
      g->alive = false;
      return CUDA_SUCCESS;
    }
  return CUDA_ERROR_INVALID_VALUE;
}

}  // extern "C"
