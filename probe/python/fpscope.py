"""fpscope: optional annotations for a training run recorded by the fpscope probe.

Pure Python (ctypes), no dependencies. Every function is a no-op when the probe is not loaded
into the process (run without `fpscope record` / LD_PRELOAD), so the same script runs anywhere.

    import fpscope
    fpscope.watch("fc1.weight", model.fc1.weight)   # master-weight update rounding loss
    for step in range(n):
        with fpscope.scope("fc1.fwd"):             # tensors "fc1.fwd.A/B/D" instead of gemm#k
            y = model.fc1(x)
        ...
        fpscope.loss_scale(scaler.get_scale(), found_inf)
        fpscope.loss(loss.item())                   # the step's loss (summary: "loss")
        fpscope.step()                              # steps from the API, not from GEMM periods

Under `fpscope record`, PyTorch programs need none of this: the integration in fpscope_hooks/
(loaded through PYTHONPATH's sitecustomize) takes steps from Optimizer.step(), names tensors by
module path and records the loss of each backward(). A program that calls step() itself keeps
its own steps (the integration then leaves steps to it).
"""

import contextlib
import ctypes
import os
import sys

__all__ = ["active", "step", "scope", "scope_push", "scope_pop", "loss_scale", "loss", "watch",
           "unwatch", "event", "flush"]

# Trace format numbering (kernels/include/fpscope/formats.h: Format).
_DTYPES = {"float32": 0, "bfloat16": 1, "float16": 2}

_lib = None
_watched = {}  # name -> the tensor/array: keeps the watched memory alive
# For the framework integration (fpscope_hooks/fpscope_torch.py): whether the program calls step()
# itself, and what to run right after each of its steps: fn(ending_step, next_step).
_user_steps = False
_step_listeners = []


def _c_string(value):
    """Names and texts as the probe receives them, the same with or without the probe: str(value)
    encoded as UTF-8; surrogate escapes (bytes from os.fsdecode, sys.argv) become their original
    bytes again, any other unencodable character "?". Never raises: a debugging aid must not stop
    the run (the analysis shows bytes that are not UTF-8 as U+FFFD)."""
    try:
        text = str(value)
    except Exception:  # noqa: BLE001 - an object whose __str__ fails
        text = "<%s>" % type(value).__name__
    try:
        return text.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:
        return text.encode("utf-8", "replace")


def _find_probe():
    """The probe's exported API, or None. Looks in the global symbol scope first (LD_PRELOAD),
    then for a libfpscope_probe.so already mapped into the process (loaded RTLD_LOCAL, e.g. by
    CUDA_INJECTION64_PATH); never loads the library itself."""
    try:
        lib = ctypes.CDLL(None)
        if hasattr(lib, "fpscope_step"):
            return lib
    except OSError:
        pass
    try:
        with open("/proc/self/maps") as maps:
            paths = {line.split()[-1] for line in maps if "libfpscope_probe" in line}
    except OSError:
        return None
    mode = getattr(os, "RTLD_NOLOAD", 4) | getattr(os, "RTLD_LAZY", 1)
    for path in sorted(paths):
        try:
            lib = ctypes.CDLL(path, mode=mode)
            if hasattr(lib, "fpscope_step"):
                return lib
        except OSError:
            continue
    return None


def _load():
    global _lib
    lib = _find_probe()
    if lib is None:
        return None
    lib.fpscope_active.restype = ctypes.c_int
    lib.fpscope_active.argtypes = []
    lib.fpscope_step.restype = None
    lib.fpscope_step.argtypes = []
    lib.fpscope_scope_push.restype = None
    lib.fpscope_scope_push.argtypes = [ctypes.c_char_p]
    lib.fpscope_scope_pop.restype = None
    lib.fpscope_scope_pop.argtypes = []
    lib.fpscope_loss_scale.restype = None
    lib.fpscope_loss_scale.argtypes = [ctypes.c_double, ctypes.c_int]
    lib.fpscope_watch.restype = ctypes.c_int
    lib.fpscope_watch.argtypes = [ctypes.c_char_p, ctypes.c_void_p, ctypes.c_uint64, ctypes.c_int]
    if hasattr(lib, "fpscope_watch_sampled"):  # probes before the watch budget lack these
        lib.fpscope_watch_sampled.restype = ctypes.c_int
        lib.fpscope_watch_sampled.argtypes = [ctypes.c_char_p, ctypes.c_void_p, ctypes.c_uint64,
                                              ctypes.c_int, ctypes.c_uint64]
        lib.fpscope_watch_budget_left.restype = ctypes.c_uint64
        lib.fpscope_watch_budget_left.argtypes = []
    if hasattr(lib, "fpscope_watch_device"):  # probes before the device watch lack it
        lib.fpscope_watch_device.restype = ctypes.c_int
        lib.fpscope_watch_device.argtypes = [ctypes.c_char_p, ctypes.c_void_p, ctypes.c_uint64,
                                             ctypes.c_int, ctypes.c_int, ctypes.c_uint64]
    lib.fpscope_unwatch.restype = None
    lib.fpscope_unwatch.argtypes = [ctypes.c_char_p]
    lib.fpscope_event.restype = None
    lib.fpscope_event.argtypes = [ctypes.c_char_p]
    if hasattr(lib, "fpscope_gemm_calls"):  # probes before the "not measured" check lack it
        lib.fpscope_gemm_calls.restype = ctypes.c_uint64
        lib.fpscope_gemm_calls.argtypes = []
    if hasattr(lib, "fpscope_warning"):  # probes before warning events lack it
        lib.fpscope_warning.restype = None
        lib.fpscope_warning.argtypes = [ctypes.c_char_p]
    lib.fpscope_flush.restype = None
    lib.fpscope_flush.argtypes = []
    if hasattr(lib, "fpscope_loss"):  # probes before trace format 1.1 lack these
        lib.fpscope_framework_step.restype = None
        lib.fpscope_framework_step.argtypes = []
        lib.fpscope_framework_claim_steps.restype = None
        lib.fpscope_framework_claim_steps.argtypes = []
        lib.fpscope_current_step.restype = ctypes.c_uint64
        lib.fpscope_current_step.argtypes = []
        lib.fpscope_loss.restype = None
        lib.fpscope_loss.argtypes = [ctypes.c_double]
        lib.fpscope_loss_at.restype = None
        lib.fpscope_loss_at.argtypes = [ctypes.c_uint64, ctypes.c_double]
    if hasattr(lib, "fpscope_scopes_wanted"):  # probes before the lean naming lack it
        lib.fpscope_scopes_wanted.restype = ctypes.c_int
        lib.fpscope_scopes_wanted.argtypes = [ctypes.c_uint64]
    if hasattr(lib, "fpscope_framework_boundary"):  # probes before the one-call boundary lack it
        lib.fpscope_framework_boundary.restype = ctypes.c_uint64
        lib.fpscope_framework_boundary.argtypes = [ctypes.POINTER(ctypes.c_double),
                                                   ctypes.c_uint64]
        lib.fpscope_framework_state.restype = ctypes.c_uint64
        lib.fpscope_framework_state.argtypes = []
    _lib = lib
    return lib


_load()


def active():
    """True when the probe is loaded and recording."""
    return _lib is not None and _lib.fpscope_active() != 0


def step():
    """Ends the current training step (call it after optimizer.step())."""
    global _user_steps
    _user_steps = True
    if _lib is not None:
        before = current_step()
        _lib.fpscope_step()
        after = current_step()
        for fn in list(_step_listeners):
            fn(before, after)


def current_step():
    """The probe's current step (0 without the probe)."""
    if _lib is not None and hasattr(_lib, "fpscope_current_step"):
        return int(_lib.fpscope_current_step())
    return 0


def _scopes_wanted(step):
    """Whether the probe names the calls of `step` by their scope (a sampled step, or emulation);
    True with a probe that cannot tell."""
    if _lib is not None and hasattr(_lib, "fpscope_scopes_wanted"):
        return _lib.fpscope_scopes_wanted(int(step)) != 0
    return True


def _framework_step():
    """Ends the current step for a framework integration (step source "framework"); returns
    (step before, step after): equal when the probe kept the step (steps from elsewhere)."""
    if _lib is None or not hasattr(_lib, "fpscope_framework_step"):
        return 0, 0
    before = current_step()
    _lib.fpscope_framework_step()
    return before, current_step()


_LOSS_SLOTS = 16
_loss_buf = (ctypes.c_double * _LOSS_SLOTS)()
_WANTED, _WANTED_NEXT, _MOVED, _STEP_SHIFT = 1, 2, 4, 3  # fpscope.h FPSCOPE_FRAMEWORK_*


def _unpack_state(v):
    return v >> _STEP_SHIFT, bool(v & _WANTED), bool(v & _WANTED_NEXT)


def _framework_boundary(losses):
    """_framework_step with the `losses` (floats) of the step that ends recorded first, in one call
    into the probe where it has fpscope_framework_boundary. Returns (step before, step after,
    scopes wanted in the step after, in the one after it)."""
    if _lib is None or not hasattr(_lib, "fpscope_framework_boundary"):
        before = current_step()
        for v in losses:
            loss(v)
        _, after = _framework_step()
        return before, after, _scopes_wanted(after), _scopes_wanted(after + 1)
    n = min(len(losses), _LOSS_SLOTS)
    for i in range(n):
        _loss_buf[i] = losses[i]
    for v in losses[_LOSS_SLOTS:]:  # more backward passes in a step than slots: before the rest
        _lib.fpscope_loss(float(v))
    v = _lib.fpscope_framework_boundary(_loss_buf, n)
    after, wanted, wanted_next = _unpack_state(v)
    return (after - 1 if v & _MOVED else after), after, wanted, wanted_next


def _framework_state():
    """(current step, scopes wanted in it, in the step after it): one call where the probe can."""
    if _lib is None or not hasattr(_lib, "fpscope_framework_state"):
        step = current_step()
        return step, _scopes_wanted(step), _scopes_wanted(step + 1)
    return _unpack_state(_lib.fpscope_framework_state())


def _framework_claim_steps():
    """Makes "framework" the step source now, without a boundary (unless a source is in force)."""
    if _lib is not None and hasattr(_lib, "fpscope_framework_claim_steps"):
        _lib.fpscope_framework_claim_steps()


def loss(value, step=None):
    """Records a loss value for the current step (or an earlier `step`); the summary shows it.
    Several per step are kept and summed (gradient accumulation)."""
    if _lib is None or not hasattr(_lib, "fpscope_loss"):
        return
    if step is None:
        _lib.fpscope_loss(float(value))
    else:
        _lib.fpscope_loss_at(int(step), float(value))


def scope_push(name):
    name = _c_string(name)  # with or without the probe: the same checks, never an exception
    if _lib is not None:
        _lib.fpscope_scope_push(name)


def scope_pop():
    if _lib is not None:
        _lib.fpscope_scope_pop()


@contextlib.contextmanager
def scope(name):
    """Names the GEMMs issued in the block (this thread): "<name>.D" instead of "gemm#k.D"."""
    scope_push(name)
    try:
        yield
    finally:
        scope_pop()


def loss_scale(scale, found_inf=False):
    """Records the loss scale of the current step (for scalers no kernel shows)."""
    if _lib is not None:
        _lib.fpscope_loss_scale(float(scale), 1 if found_inf else 0)


def _cuda_index(tensor):
    """The CUDA device index of a torch tensor, None for a CPU tensor, -1 for another device."""
    device = getattr(tensor, "device", None)
    if device is None or str(device) == "cpu":
        return None
    if getattr(device, "type", None) == "cuda" or str(device).startswith("cuda"):
        index = getattr(device, "index", None)
        return 0 if index is None else int(index)
    return -1


def _cuda_stream(tensor, index):
    """The torch current stream of the tensor's device as an integer (0: the legacy default)."""
    try:
        import torch  # only reached with a CUDA tensor, so torch is loaded already
        return int(torch.cuda.current_stream(index).cuda_stream)
    except Exception:  # noqa: BLE001 - a debugging aid must not stop the run
        return 0


def _describe(tensor):
    """(address, element count, dtype name) of a contiguous CPU or CUDA torch tensor or numpy
    array, or (None, reason, None) when it cannot be watched."""
    if hasattr(tensor, "data_ptr") and hasattr(tensor, "numel"):  # torch.Tensor
        if _cuda_index(tensor) == -1:
            return None, "only CPU and CUDA tensors can be watched (got %s)" % tensor.device, None
        if hasattr(tensor, "is_contiguous") and not tensor.is_contiguous():
            return None, "the tensor must be contiguous", None
        dtype = str(tensor.dtype).replace("torch.", "")
        return tensor.data_ptr(), int(tensor.numel()), dtype
    if hasattr(tensor, "ctypes") and hasattr(tensor, "dtype"):  # numpy.ndarray
        if not tensor.flags["C_CONTIGUOUS"]:
            return None, "the array must be contiguous", None
        return tensor.ctypes.data, int(tensor.size), str(tensor.dtype)
    return None, "expected a torch tensor or a numpy array, got %s" % type(tensor).__name__, None


def _warn(text):
    sys.stderr.write("[fpscope] warning: %s\n" % text)


_DEVICE_REFUSALS = {
    -1: "the probe refused it (bad argument)",
    -2: "this probe has no device statistics (no CUDA part or no usable GPU); watch a CPU copy",
    -3: "the probe could not set it up on the device (see its warning)",
}


def _watch_budget_left():
    """Bytes of the probe's watch budget (FPSCOPE_WATCH_BUDGET) that host watches leave free."""
    if _lib is None:
        return 0
    if not hasattr(_lib, "fpscope_watch_budget_left"):
        return 1 << 62  # an older probe: no budget (it refuses what is too large itself)
    return int(_lib.fpscope_watch_budget_left())


def watch(name, tensor, sample=None):
    """Watches master weights (a torch tensor, CPU or CUDA, or a numpy array, of
    float32/bfloat16/float16): the probe records how much of each update would be lost to
    BF16/FP16 rounding. A CPU tensor is followed whole, or at `sample` positions (a fixed uniform
    sample: the records then estimate the tensor's fractions), or at fewer when the probe's watch
    budget (FPSCOPE_WATCH_BUDGET) requires. A CUDA tensor is measured on its device (an FP32
    snapshot there, the update-loss kernel at sampled step boundaries, ordered after the tensor
    device's current torch stream). The tensor is kept alive until unwatch(name); it must not be
    reallocated in between. Returns True when watched; a tensor that cannot be watched gets one
    warning on stderr and False (never an exception: a debugging aid must not stop the training
    run)."""
    if _lib is None:
        return False
    ptr, count, dtype = _describe(tensor)
    if ptr is None:
        _warn("watch(%r): %s; not watched" % (name, count))
        return False
    if dtype not in _DTYPES:
        _warn("watch(%r): unsupported dtype %s (float32, bfloat16, float16); not watched"
              % (name, dtype))
        return False
    index = _cuda_index(tensor)
    if index is not None:
        if not hasattr(_lib, "fpscope_watch_device"):
            _warn("watch(%r): this probe cannot watch CUDA tensors; not watched" % (name,))
            return False
        rc = _lib.fpscope_watch_device(_c_string(name), ptr, count, _DTYPES[dtype], index,
                                       _cuda_stream(tensor, index))
        if rc != 0:
            _warn("watch(%r): %s; not watched"
                  % (name, _DEVICE_REFUSALS.get(rc, "the probe refused it")))
            return False
    elif hasattr(_lib, "fpscope_watch_sampled"):
        if _lib.fpscope_watch_sampled(_c_string(name), ptr, count, _DTYPES[dtype],
                                      int(sample or 0)) != 0:
            _warn("watch(%r): the probe refused it; not watched" % (name,))
            return False
    elif _lib.fpscope_watch(_c_string(name), ptr, count, _DTYPES[dtype]) != 0:
        _warn("watch(%r): the probe refused it; not watched" % (name,))
        return False
    _watched[name] = tensor
    return True


def unwatch(name):
    encoded = _c_string(name)
    if _lib is not None:
        _lib.fpscope_unwatch(encoded)
    _watched.pop(name, None)


def event(text):
    """A free-text annotation at the current step."""
    text = _c_string(text)
    if _lib is not None:
        _lib.fpscope_event(text)


def _gemm_calls():
    """GEMM calls that reached the probe so far; None without the probe or on an older one."""
    f = getattr(_lib, "fpscope_gemm_calls", None) if _lib is not None else None
    return f() if f is not None else None


def _warning(text):
    """A warning in the trace at the current step (an event without that level on older probes)."""
    text = _c_string(text)
    if _lib is not None:
        (getattr(_lib, "fpscope_warning", None) or _lib.fpscope_event)(text)


def flush():
    """Writes everything recorded so far to the trace file."""
    if _lib is not None:
        _lib.fpscope_flush()
