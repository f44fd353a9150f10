/* fpscope C API: optional annotations for a program running under the fpscope probe.
 *
 * These functions are exported by libfpscope_probe.so. A program that wants to work with and
 * without the probe looks them up at run time (dlsym(RTLD_DEFAULT, "fpscope_step")) or uses
 * probe/python/fpscope.py; every call is cheap and never changes the program's results.
 * All functions are thread-safe. Scopes are per thread. Strings are copied.
 */
#ifndef FPSCOPE_H_
#define FPSCOPE_H_

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* dtype codes for fpscope_watch: the trace format's Format numbering. */
#define FPSCOPE_DTYPE_FP32 0
#define FPSCOPE_DTYPE_BF16 1
#define FPSCOPE_DTYPE_FP16 2

/* 1 when the probe is recording in this process, 0 when disabled (or after a write error). */
int fpscope_active(void);

/* Ends the current training step and begins the next one. Once called, steps come from the API
 * (the trace's step source is "api") and the automatic GEMM-period detection is off. */
void fpscope_step(void);

/* The same, for a framework integration that saw the end of an optimizer step (probe/python/
 * fpscope_hooks: PyTorch's Optimizer.step): the trace's step source is "framework". A program's own
 * fpscope_step() calls win over these (the first one takes the steps over). */
void fpscope_framework_step(void);
/* Makes "framework" the step source now, with no step boundary (when no source is in force yet):
 * called when the program creates its first optimizer, so that what ran before and the first
 * iteration are step 0 and no step is taken from the GEMM period. */
void fpscope_framework_claim_steps(void);

/* The current step (0 before the first boundary; provisional while the GEMM period is detected). */
uint64_t fpscope_current_step(void);

/* How many GEMM calls reached the probe's hooks so far (the next call's sequence number; those
 * FPSCOPE_OPS leaves out do not count). Unchanged across a module's forward: none of its matrix
 * multiplies was seen (the PyTorch integration's "not measured" check). */
uint64_t fpscope_gemm_calls(void);

/* 1 when the probe uses scope names (fpscope_scope_push) for the calls of `step`. 0 only while the
 * steps come from a framework (fpscope_framework_step), emulation is off and FPSCOPE_EVERY does
 * not sample `step`: the framework integration may then push no scopes, since those calls are
 * not recorded. 1 when disabled. */
int fpscope_scopes_wanted(uint64_t step);

/* A framework integration's step boundary in one call (it runs once per training step, where
 * every separate call costs): records the `n` loss values (fpscope_loss) for the step now ending,
 * ends it (fpscope_framework_step) and returns the state after it, packed:
 *   bits 0-2: FPSCOPE_FRAMEWORK_WANTED (fpscope_scopes_wanted(step)), _WANTED_NEXT (of step + 1),
 *             _MOVED (this boundary began a new step);
 *   step = value >> FPSCOPE_FRAMEWORK_STEP_SHIFT (the current step, as fpscope_current_step).
 * fpscope_framework_state(): the same without recording or ending anything (never _MOVED).
 * Disabled: step 0, both _WANTED bits set. */
#define FPSCOPE_FRAMEWORK_WANTED 1u
#define FPSCOPE_FRAMEWORK_WANTED_NEXT 2u
#define FPSCOPE_FRAMEWORK_MOVED 4u
#define FPSCOPE_FRAMEWORK_STEP_SHIFT 3
uint64_t fpscope_framework_boundary(const double* losses, uint64_t n);
uint64_t fpscope_framework_state(void);

/* Records a loss value (the scalar a backward pass started from) for the current step, or for an
 * earlier `step` (a value read later, e.g. from a device copy that completed since). Several per
 * step are kept (gradient accumulation: the step's loss is their sum). Not recorded while steps
 * come from the GEMM period and are still being detected. */
void fpscope_loss(double value);
void fpscope_loss_at(uint64_t step, double value);

/* Names the GEMMs issued by this thread until the matching pop: tensors get ids like
 * "l2.fwd.D" (the j-th GEMM of the same scope in a step: "l2.fwd#j.D") instead of "gemm#k.D". */
void fpscope_scope_push(const char* name);
void fpscope_scope_pop(void);

/* Records the loss scale in effect for the current step and whether its gradients held Inf/NaN
 * (a skipped step), for scalers that no kernel shows (CPU, custom scalers). */
void fpscope_loss_scale(double scale, int found_inf);

/* Watches master weights: at every sampled step boundary the probe copies the tensor and, at the
 * next boundary, records the update rounding loss for BF16 and FP16 master weights.
 * `ptr` must stay valid until fpscope_unwatch(name). Returns 0 on success, -1 on a bad argument. */
int fpscope_watch(const char* name, const void* ptr, uint64_t count, int dtype);

/* The same following `sample` positions of the tensor (0: all), a fixed uniform sample, so that
 * the records estimate the whole tensor's fractions; the probe follows fewer when its watch budget
 * (FPSCOPE_WATCH_BUDGET, 8 bytes per position) or FPSCOPE_WATCH_MAX_ELEMENTS requires, and none
 * (an event "watch: left out <name>: ...") when no budget is left. fpscope_watch is this with 0. */
int fpscope_watch_sampled(const char* name, const void* ptr, uint64_t count, int dtype,
                          uint64_t sample);
/* Bytes of FPSCOPE_WATCH_BUDGET that host watches do not hold now (0 when not recording). */
uint64_t fpscope_watch_budget_left(void);

/* The same for a tensor in CUDA device memory on device `device`, updated by work on `stream`
 * (a cudaStream_t as an integer; 0: the legacy default stream): at watch time the probe allocates
 * an FP32 snapshot on that device; at each sampled step boundary it enqueues, on its own stream
 * ordered after `stream`'s work so far, the update-loss kernel between the snapshot and the
 * current weights, then refreshes the snapshot; `stream`'s later work waits for that (no host
 * synchronization). BF16/FP16 weights are widened to FP32 on the device. The records are the ones
 * fpscope_watch writes. Returns 0 on success (and when recording is off), -1 on a bad argument,
 * -2 when this probe has no device statistics (built without CUDA, no usable device), -3 when
 * refused (too large, or the device's resources failed: reported on stderr and in the trace). */
int fpscope_watch_device(const char* name, const void* ptr, uint64_t count, int dtype, int device,
                         uint64_t stream);
/* Ends a host or device watch of that name. */
void fpscope_unwatch(const char* name);

/* A free-text annotation in the trace at the current step. */
void fpscope_event(const char* text);
/* The same at warning level: summary, report and viewer list it among the run's warnings. A text
 * starting "not measured: " (the PyTorch integration's matrix multiplies the probe cannot see)
 * is the analysis's reason for its verdict, and replaces the probe's exit warning that no GEMM
 * reached it. */
void fpscope_warning(const char* text);

/* Writes everything recorded so far to the trace file (e.g. before a checkpoint). */
void fpscope_flush(void);

#ifdef __cplusplus
}
#endif

#endif /* FPSCOPE_H_ */
