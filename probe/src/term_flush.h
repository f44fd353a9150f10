// A trace closed as on a normal exit when the process is ended by SIGTERM (issue 17: pool workers
// that Pool.terminate() ends left traces without a footer).
//
// arm_sigterm_flush(), called when this process starts writing a trace, installs a SIGTERM handler
// only while the program's disposition is SIG_DFL: a program's own handler (installed before or
// after) is never replaced or chained, and an inherited SIG_IGN stays. The handler does no work
// itself (it may interrupt a thread inside malloc or the recorder's lock): it wakes a flusher
// thread, which closes the trace (Recorder::shutdown()), restores SIG_DFL and
// re-raises SIGTERM, so the process ends by SIGTERM as it would have. A second SIGTERM while the
// trace is being closed ends the process at once. In a forked child the handler acts as SIG_DFL
// until that child arms it again (it records to its own trace). Idempotent; thread-safe.
#pragma once

namespace fpscope::probe {

void arm_sigterm_flush();
// For the _exit hook: while a SIGTERM's flush is under way in this process, waits for it (the
// flusher then ends the process by SIGTERM). Otherwise a thread leaving through _exit() at that
// moment (a pool worker whose task queue just closed) would find the recorder already shutting
// down, skip closing, and end the process before the footer is written.
void wait_for_sigterm_flush();

}  // namespace fpscope::probe
