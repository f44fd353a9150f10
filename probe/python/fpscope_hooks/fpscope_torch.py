"""fpscope's PyTorch integration: what a recorded PyTorch program gets with no change to its code.
(~790 lines: steps, names, losses and the scaler share one hook state; the auto-watch and the
"not measured" check live beside it, the next part to move out would be the loss ring.)
sitecustomize.py (beside this file) calls activate(torch) once `import torch` has completed.

Contract (PyTorch 1.13 to 2.x; global hooks where the version has them, wrappers where not):
  - Steps: the end of an optimizer step (any torch.optim.Optimizer: the global step pre/post hooks
    of torch >= 2.0, else a wrapper of each optimizer class's step()), or of a GradScaler.update()
    (an iteration whose optimizer step the scaler skipped for Inf/NaN), makes a boundary due;
    it is marked (fpscope_framework_boundary: step source "framework") just before the next training
    work: the next forward of a root module in training mode with gradients enabled (and trainable
    parameters), or the next backward(). So gradient accumulation (several backward passes, one
    optimizer step) is one step; an evaluation pass after an optimizer step (no_grad or eval mode)
    belongs to the step it ran in, and the trace has exactly one step per optimizer step. Nested
    optimizer steps (an optimizer calling another's step()) count once. A program that calls
    fpscope.step() itself owns its steps: the integration then marks none.
  - Names: global module forward pre/post hooks push/pop the probe's scope with the module's path
    in its root model ("encoder.layers.0.linear1"), from named_modules() of the root (the module
    called with no module forward in progress on this thread), computed on the root's first
    forward (again when a module is not found). GEMMs issued by a root itself carry its class name
    (a root has no path). Backward GEMMs: a gradient hook on each module output (the innermost
    module's, when several modules return the same tensor) sets the scope "<path>.bwd" for the
    backward work that follows it on that thread, until the next such hook or the end of backward().
    Once the steps are ours (not the program's fpscope.step()), the module hooks are registered
    only around the steps the probe names (fpscope_scopes_wanted: sampled, or emulation): from
    the end of the step before such a step to the first training forward after it
    (_name_steps_around). Unnamed steps then mark their boundary at the next backward().
  - Loss: the value of each scalar that backward() is called on with an implicit gradient (the
    unscaled loss when it came from GradScaler.scale()), recorded for the step it belongs to.
    CPU: read at once (a CPU read is no synchronization), recorded by the step's boundary call.
    CUDA: copied with non_blocking=True into a pinned host slot, an event recorded after the copy
    on the current stream; the value is read at a later step boundary only when event.query()
    says the copy is done (never a wait), at the latest at exit. A value whose slot ring is full
    is dropped.
  - Not measured (fpscope_unhooked.py): CPU autocast to a 16-bit type, and modules that do matrix
    multiplies (Linear, Conv*, RNNs, attention) whose forward in a named step reached no GEMM of
    the probe (oneDNN, cuDNN), are said once: on stderr and as trace warnings "not measured: ...".
  - GradScaler: update() of a scaler whose scale lives on the CPU records the scale in effect and
    found_inf with fpscope_loss_scale (CUDA scalers: the probe's loss-scale kernel hook records
    them without synchronizing; reading them here would synchronize).
  - Master weights: when an optimizer's step begins, its parameters not seen before are watched
    (fpscope_autowatch.py: FPSCOPE_WATCH, names by module path, the watch budget); when it ends,
    optimizer state kept in BF16/FP16 is an event (fpscope_autowatch.py "Optimizer state").
  - The program's results stay bit-identical: hooks return None (never change inputs, outputs or
    gradients), nothing is synchronized, no RNG is drawn. Any exception inside the integration
    turns it off with ONE warning on stderr and never reaches the program.

Size: ~790 lines: steps, names, losses and the GradScaler share the activation state and the
error barrier that turns the whole integration off; split per concern if it grows.
"""

import atexit
import importlib.util
import os
import sys
import threading
import weakref

_off = False
_torch = None
_fp = None  # the fpscope module (probe/python/fpscope.py)
_compiling = None  # torch.compiler.is_compiling / torch._dynamo.is_compiling, when present
_handles = []  # removable hook handles (optimizer hooks)
_module_handles = []  # the naming hooks (global module forward pre/post), while registered
_gen = 0  # bumped at each registration of the naming hooks: older per-thread scope stacks are stale
_tls = threading.local()
_lock = threading.Lock()

# Step state (process-wide).
_due = False  # an optimizer step ended: a boundary is due before the next training work
_opt_depth = 0  # optimizer step() nesting on any thread (the outermost one counts)
_seen_optimizer_step = False
_cpu_losses = []  # CPU loss values of the current step, recorded at its boundary
_pending = []  # device losses whose copy may not be done: [(step, slot, event, dtype)]
# (step, scopes wanted in it, in the step after it) as the last boundary of ours left them; None
# when not known (before the first, or the program's own fpscope.step() moved the steps).
_state = None
_has_is_cpu = False  # Tensor.is_cpu (torch >= 1.13): much cheaper than t.device.type
_MAX_PENDING = 4096

_root_names = weakref.WeakKeyDictionary()  # root module -> {id(module): path}
_trainable = weakref.WeakKeyDictionary()  # root module -> has parameters requiring grad
_scaled = {}  # id(scaled loss) -> (weakref to it, the unscaled loss), GradScaler.scale()
_autowatch = None  # fpscope_autowatch.AutoWatch
_unhooked = None  # fpscope_unhooked.Unhooked: matmuls the probe cannot see, said


def _warn_off(e):
    global _off
    if _off:
        return
    _off = True
    try:
        sys.stderr.write("[fpscope] warning: the PyTorch integration is off after an internal "
                         "error (%s: %s); the program is not affected\n" % (type(e).__name__, e))
        for h in _handles + _module_handles:
            h.remove()
        _handles.clear()
        _module_handles.clear()
        for _ in range(getattr(_tls, "pushed", 0)):
            _fp.scope_pop()
        _tls.pushed = 0
    except Exception:  # noqa: BLE001
        pass


def _load_fpscope():
    mod = sys.modules.get("fpscope")
    if mod is not None and hasattr(mod, "_framework_step"):
        return mod
    path = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "fpscope.py")
    spec = importlib.util.spec_from_file_location("fpscope", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    sys.modules.setdefault("fpscope", mod)  # the program's `import fpscope` finds this one
    return mod


def _load_sibling(name):
    """A module of this directory, loaded by path (it is not a package on sys.path)."""
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), name + ".py")
    spec = importlib.util.spec_from_file_location(name, path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _load_autowatch(fp):
    aw = _load_sibling("fpscope_autowatch").AutoWatch(
        fp, lambda: list(_root_names.keys()), named_now=lambda: bool(_module_handles))
    if aw.warning:
        sys.stderr.write("[fpscope] warning: %s\n" % aw.warning)
    return aw


def activate(torch):
    """Installs the integration; a no-op without a recording probe in this process."""
    global _torch, _fp, _compiling, _autowatch, _has_is_cpu, _unhooked
    fp = _load_fpscope()
    if not fp.active() or not hasattr(fp._lib, "fpscope_loss"):
        return False
    _torch, _fp = torch, fp
    _has_is_cpu = hasattr(torch.Tensor, "is_cpu")
    compiler = getattr(torch, "compiler", None)
    _compiling = getattr(compiler, "is_compiling", None)
    if _compiling is None:
        _compiling = getattr(getattr(torch, "_dynamo", None), "is_compiling", None)
    try:
        _unhooked = _load_sibling("fpscope_unhooked").Unhooked(torch, fp)
        _autowatch = _load_autowatch(fp)
        _install_module_hooks(torch)
        _install_optimizer_hooks(torch)
        _install_backward_wrapper(torch)
        _install_grad_scaler_wrappers(torch)
        fp._step_listeners.append(_on_user_step)
        atexit.register(_at_exit)
    except Exception as e:  # noqa: BLE001
        _warn_off(e)
        return False
    return True


# ---- per-thread scope state ----------------------------------------------------------------
def _stack():
    s = getattr(_tls, "stack", None)
    if s is None or _tls.gen != _gen:
        if s is not None:  # the naming hooks went away meanwhile: pops nobody will pop
            for _ in range(_tls.pushed):
                _fp.scope_pop()
        s = _tls.stack = []  # [(module, {id(module): path} of its root, its name)]
        _tls.gen = _gen
        _tls.pushed = 0  # scopes this thread pushed into the probe and not popped
        _tls.bwd = False  # a backward scope is pushed
        _tls.hooked = {}  # id(tensor) -> weakref: outputs given a backward-name hook
    return s


def _push(name):
    _fp.scope_push(name)
    _tls.pushed += 1


def _pop():
    if _tls.pushed > 0:
        _fp.scope_pop()
        _tls.pushed -= 1


def _clear_thread_scopes():
    """Pops every scope this thread pushed (stale after an exception inside a forward)."""
    s = _stack()
    while _tls.pushed > 0:
        _pop()
    s.clear()
    _tls.bwd = False
    _tls.hooked.clear()


# ---- names -----------------------------------------------------------------------------------
def _names_of(root):
    names = _root_names.get(root)
    if names is None:
        names = {id(m): path for path, m in root.named_modules()}
        _root_names[root] = names
    return names


def _is_trainable(root):
    t = _trainable.get(root)
    if t is None:
        t = any(p.requires_grad for p in root.parameters())
        _trainable[root] = t
    return t


def _fwd_pre(module, inputs):
    if _off or (_compiling is not None and _compiling()):
        return None
    try:
        s = _stack()
        if not s:  # a root
            if _due and module.training and _torch.is_grad_enabled() and _is_trainable(module):
                _boundary()
                if not _module_handles:  # a step the probe does not name: no scopes
                    _names_of(module)  # but its paths, for the auto-watch's names
                    return None
            if _tls.bwd:  # forward after a backward on this thread (no backward() wrapper end)
                _pop()
                _tls.bwd = False
            _unhooked.root_forward()
            names = _names_of(module)
            name = type(module).__name__
        else:
            names = s[-1][1]
            name = names.get(id(module))
            if name is None:
                root = s[0][0]
                _root_names.pop(root, None)  # a module added after the first forward: recompute
                names = _names_of(root)
                name = names.get(id(module))
                if name is None:  # not in the root's tree: under the caller's name
                    name = "%s.%s" % (s[-1][2], type(module).__name__)
                    names[id(module)] = name
        s.append((module, names, name, _unhooked.enter(module, inputs)))
        _push(name)
    except Exception as e:  # noqa: BLE001
        _warn_off(e)
    return None


def _fwd_post(module, inputs, output):
    if _off or (_compiling is not None and _compiling()):
        return None
    try:
        s = _stack()
        name = None
        while s:  # pop up to this module (an inner forward that raised left its entry)
            m, _, n, token = s.pop()
            _pop()
            if m is module:
                name = n
                _unhooked.leave(module, n, token)
                break
        if name is not None and _torch.is_grad_enabled():
            _hook_outputs(output, name)
        if not s:
            _tls.hooked.clear()
    except Exception as e:  # noqa: BLE001
        _warn_off(e)
    return None


def _bwd_hook_for(name):
    scope = name + ".bwd"

    def hook(grad):
        if not _off:
            try:
                _stack()
                if _tls.bwd:
                    _pop()
                _push(scope)
                _tls.bwd = True
            except Exception as e:  # noqa: BLE001
                _warn_off(e)
        return None  # the gradient is unchanged

    return hook


_bwd_hooks = {}


def _hook_outputs(output, name):
    Tensor = _torch.Tensor
    if isinstance(output, Tensor):
        outs = (output,)
    elif isinstance(output, (tuple, list)):
        outs = [o for o in output[:4] if isinstance(o, Tensor)]
    else:
        return
    hooked = _tls.hooked
    for t in outs:
        if not t.requires_grad or t.grad_fn is None:
            continue
        ref = hooked.get(id(t))
        if ref is not None and ref() is t:
            continue  # an inner module returned it already: the innermost name wins
        hook = _bwd_hooks.get(name)
        if hook is None:
            hook = _bwd_hooks[name] = _bwd_hook_for(name)
        t.register_hook(hook)
        hooked[id(t)] = weakref.ref(t)


_hooks_lock = threading.Lock()  # registration and removal of the naming hooks


def _install_module_hooks(torch):
    global _gen
    with _hooks_lock:
        if _module_handles:
            return
        _gen += 1
        mm = torch.nn.modules.module
        _module_handles.append(mm.register_module_forward_pre_hook(_fwd_pre))
        try:
            _module_handles.append(mm.register_module_forward_hook(_fwd_post, always_call=True))
        except TypeError:  # torch < 2.1: no always_call (a raising forward: see _fwd_post)
            _module_handles.append(mm.register_module_forward_hook(_fwd_post))


def _remove_module_hooks():
    """Safe inside a module hook: torch iterates over a copy of the global hooks (1.13 to 2.x).
    A thread inside a forward meanwhile keeps its pushed scopes until the hooks come back (the
    generation number then drops them): its calls are in a step the probe does not name."""
    with _hooks_lock:
        for h in _module_handles:
            h.remove()
        _module_handles.clear()


def _name_steps_around():
    """At the end of the current step: the naming hooks stay (or come) on when the probe names it
    (its boundary is marked at the next root forward, which needs the hook) or the step after it;
    else they go now. Their per-module cost (the global hooks take every module call off
    PyTorch's fast path) is then paid in about two steps of each FPSCOPE_EVERY. The probe decides
    (fpscope_scopes_wanted): only its framework steps without emulation may be unnamed. Once the
    boundaries are ours, the last one told (_state): no call into the probe here."""
    _, wanted, wanted_next = _state if _state is not None else _fp._framework_state()
    if wanted or wanted_next:
        _install_module_hooks(_torch)
    else:
        _remove_module_hooks()


# ---- steps -----------------------------------------------------------------------------------
def _opt_pre(opt=None, *_):
    global _opt_depth
    if not _off:
        with _lock:
            _opt_depth += 1
        if opt is not None and _autowatch is not None:
            try:
                _autowatch.on_optimizer_step(opt)  # before its update: the first one measured
            except Exception as e:  # noqa: BLE001
                _warn_off(e)


def _opt_post(opt=None, *_):
    global _opt_depth
    if _off:
        return
    try:
        with _lock:
            _opt_depth = max(0, _opt_depth - 1)
            outer = _opt_depth == 0
        if opt is not None and _autowatch is not None:
            _autowatch.after_optimizer_step(opt)  # its state exists now: low-precision moments
        if outer:
            _iteration_ended()
    except Exception as e:  # noqa: BLE001
        _warn_off(e)


_claimed = False


def _claim_steps():
    """At the first optimizer: steps are the framework's from now on (no boundary now)."""
    global _claimed
    if not _claimed:
        _claimed = True
        if not _fp._user_steps:
            _fp._framework_claim_steps()


def _iteration_ended():
    """An optimizer step (or a GradScaler update, which follows scaler.step() once per iteration,
    also when it skipped the optimizer step) ended: a boundary is due."""
    global _due, _seen_optimizer_step
    _claim_steps()
    _seen_optimizer_step = True
    if not _fp._user_steps:
        _due = True
    _clear_thread_scopes()
    _name_steps_around()


def _install_optimizer_hooks(torch):
    optim = sys.modules.get("torch.optim.optimizer")  # torch.optim deletes some submodule names
    pre = getattr(optim, "register_optimizer_step_pre_hook", None)
    post = getattr(optim, "register_optimizer_step_post_hook", None)
    global_hooks = pre is not None and post is not None  # torch >= 2.0
    if global_hooks:
        _handles.append(pre(_opt_pre))
        _handles.append(post(_opt_post))
    # When an optimizer is made or unpickled: the claim on the steps; torch 1.13 (no global step
    # hooks): also a wrapper of its class's step().
    Optimizer = torch.optim.Optimizer
    for method in ("__init__", "__setstate__"):
        orig = Optimizer.__dict__[method]

        def make(orig):
            def wrapper(self, *args, **kwargs):
                orig(self, *args, **kwargs)
                if not _off:
                    try:
                        _claim_steps()
                        if not global_hooks:
                            _wrap_step(type(self))
                    except Exception as e:  # noqa: BLE001
                        _warn_off(e)

            wrapper.__wrapped__ = orig
            wrapper.__name__ = orig.__name__
            wrapper.__doc__ = orig.__doc__
            return wrapper

        setattr(Optimizer, method, make(orig))


def _wrap_step(cls):
    step = cls.__dict__.get("step")
    if step is not None and getattr(step, "_fpscope_wrapped", False):
        return
    orig = getattr(cls, "step")

    def step_wrapper(self, *args, **kwargs):
        if _off:
            return orig(self, *args, **kwargs)
        _opt_pre(self)
        ok = False
        try:
            result = orig(self, *args, **kwargs)
            ok = True
            return result
        finally:
            if ok:
                _opt_post(self)
            else:
                _opt_pre_undo()

    step_wrapper._fpscope_wrapped = True
    step_wrapper.__wrapped__ = orig
    step_wrapper.__name__ = getattr(orig, "__name__", "step")
    step_wrapper.__doc__ = getattr(orig, "__doc__", None)
    for attr in ("hooked",):  # 1.13's profiling wrapper marks the class's step as hooked
        if hasattr(orig, attr):
            setattr(step_wrapper, attr, getattr(orig, attr))
    cls.step = step_wrapper


def _opt_pre_undo():
    global _opt_depth
    with _lock:
        _opt_depth = max(0, _opt_depth - 1)


def _boundary():
    """Marks the due step boundary: records the ending step's losses, then the new step (one call
    into the probe for both), then the device losses whose copy is done."""
    global _due, _state
    _due = False
    _unhooked.boundary()  # in the ending step, where the modules ran
    before, after, wanted, wanted_next = _fp._framework_boundary(_cpu_losses)
    _cpu_losses.clear()
    _state = (after, wanted, wanted_next) if after > before else None
    if _pending:
        _flush_losses(before, after, final=False)
    if after > before and not wanted:
        _remove_module_hooks()  # the new step is not named (_name_steps_around)


def _on_user_step(before, after):
    global _state
    if not _off:
        try:
            _state = None  # the program's steps: its boundaries are not ours to know
            _install_module_hooks(_torch)  # the program's steps: named throughout (_lean)
            _flush_losses(before, after, final=False)
        except Exception as e:  # noqa: BLE001
            _warn_off(e)


# ---- losses ----------------------------------------------------------------------------------
class _PinnedRing:
    """Pinned host slots for device losses, reused once their copy has completed. One buffer per
    loss dtype: a copy into a buffer of the loss's own dtype is a plain device-to-host memcpy; a
    converting copy would launch a conversion kernel on the program's stream at every step (seen
    as an extra kernel per step in torch.profiler on an H200)."""

    SIZE = 256

    def __init__(self):
        self.bufs = {}  # dtype -> pinned tensor of SIZE elements
        self.busy = [False] * self.SIZE
        self.next = 0

    def buf(self, dtype):
        b = self.bufs.get(dtype)
        if b is None:
            b = self.bufs[dtype] = _torch.empty(self.SIZE, dtype=dtype, pin_memory=True)
        return b

    def take(self):
        for k in range(self.SIZE):
            i = (self.next + k) % self.SIZE
            if not self.busy[i]:
                self.busy[i] = True
                self.next = (i + 1) % self.SIZE
                return i
        return None


_ring = None


def _capturing():
    """True while this thread's current CUDA stream is being captured into a graph
    (torch.cuda.graph). Then no event may be queried (an unsafe call in the default global capture
    mode invalidates the capture: CUDA runtime API, cudaStreamBeginCapture and
    cudaThreadExchangeStreamCaptureMode) and no copy may be enqueued (it would become a node of the
    program's graph and write into our slot at every replay)."""
    cuda = getattr(_torch, "cuda", None)
    if cuda is None or not cuda.is_initialized():
        return False
    f = getattr(cuda, "is_current_stream_capturing", None)
    return bool(f()) if f is not None else False


def _record_loss(t):
    """Keeps the value of the scalar `t` (detached) for the step it belongs to."""
    global _ring
    dev = ("cpu" if t.is_cpu else "cuda" if t.is_cuda else "") if _has_is_cpu else t.device.type
    if dev == "cpu":
        _cpu_losses.append(float(t.item()))
        if len(_cpu_losses) > _MAX_PENDING:
            del _cpu_losses[: len(_cpu_losses) - _MAX_PENDING]
        return
    if dev == "cuda":
        if _capturing():
            return  # a graph's loss is rewritten by every replay: not a value of this step
        if _ring is None:
            _ring = _PinnedRing()
        i = _ring.take()
        if i is None:
            return  # 256 device losses not copied yet: drop this one rather than wait
        stream = _torch.cuda.current_stream(t.device)
        _ring.buf(t.dtype)[i].copy_(t.reshape(()), non_blocking=True)
        ev = _torch.cuda.Event()
        ev.record(stream)
        _pending.append((_fp.current_step(), i, ev, t.dtype))
    else:
        return  # another device: reading it could force its execution
    if len(_pending) > _MAX_PENDING:
        del _pending[: len(_pending) - _MAX_PENDING]


def _flush_losses(before, after, final):
    """Records the pending losses: CPU values for the step that just ended (`before`, when the
    probe moved on to `after`; else the current step), device values once their copy is done."""
    for v in _cpu_losses:
        if after > before:
            _fp.loss(v, step=before)
        else:
            _fp.loss(v)
    _cpu_losses.clear()
    keep = []
    capturing = not final and bool(_pending) and _capturing()
    for p in _pending:
        step, i, ev, dtype = p
        if final:
            ev.synchronize()  # at exit: the program's work is done
        elif capturing or not ev.query():
            keep.append(p)
            continue
        _fp.loss(float(_ring.buf(dtype)[i]), step=step)
        _ring.busy[i] = False
    _pending[:] = keep


def _at_exit():
    if _off:
        return
    try:
        _unhooked.boundary()  # modules of the last named step not yet said
        if not (_pending or _cpu_losses):
            return
        if not _seen_optimizer_step and not _fp._user_steps:
            _pending.clear()  # no step boundaries of ours: the values' steps are not known
            _cpu_losses.clear()
            return
        step = _fp.current_step()
        _flush_losses(step, step, final=True)
    except Exception as e:  # noqa: BLE001
        _warn_off(e)


def _install_backward_wrapper(torch):
    autograd = torch.autograd
    orig = autograd.backward
    if getattr(orig, "_fpscope_wrapped", False):
        return

    def backward(tensors, grad_tensors=None, *args, **kwargs):
        if _off:
            return orig(tensors, grad_tensors, *args, **kwargs)
        scalars = _before_backward(tensors, grad_tensors, kwargs)
        try:
            return orig(tensors, grad_tensors, *args, **kwargs)
        finally:
            _after_backward(scalars)

    backward._fpscope_wrapped = True
    backward.__wrapped__ = orig
    backward.__doc__ = orig.__doc__
    autograd.backward = backward

    # torch.autograd.grad: no loss to record (the program takes the gradients itself), but the
    # due boundary, as backward() marks it: in a step the probe does not name, the module hooks
    # that would mark it at the next training forward are off (_name_steps_around).
    orig_grad = getattr(autograd, "grad", None)
    if orig_grad is None or getattr(orig_grad, "_fpscope_wrapped", False):
        return

    def grad(*args, **kwargs):
        if not _off and _due and getattr(_tls, "bwd_depth", 0) == 0:
            try:
                _boundary()
            except Exception as e:  # noqa: BLE001
                _warn_off(e)
        return orig_grad(*args, **kwargs)

    grad._fpscope_wrapped = True
    grad.__wrapped__ = orig_grad
    grad.__doc__ = orig_grad.__doc__
    grad.__name__ = getattr(orig_grad, "__name__", "grad")
    autograd.grad = grad


def _before_backward(tensors, grad_tensors, kwargs):
    try:
        depth = getattr(_tls, "bwd_depth", 0)
        _tls.bwd_depth = depth + 1
        if depth > 0:
            return ()
        if _due:
            _boundary()
        if grad_tensors is not None or kwargs.get("grad_variables") is not None:
            return ()
        ts = (tensors,) if isinstance(tensors, _torch.Tensor) else tuple(tensors)
        out = []
        for t in ts:
            if isinstance(t, _torch.Tensor) and t.numel() == 1:
                src = _scaled.pop(id(t), None)
                if src is not None and src[0]() is t:
                    t = src[1]
                out.append(t.detach())
        _scaled.clear()
        return out
    except Exception as e:  # noqa: BLE001
        _warn_off(e)
        return ()


def _after_backward(scalars):
    if _off:
        _tls.bwd_depth = max(0, getattr(_tls, "bwd_depth", 1) - 1)
        return
    try:
        _tls.bwd_depth = max(0, getattr(_tls, "bwd_depth", 1) - 1)
        if _tls.bwd_depth > 0:
            return
        for t in scalars:
            _record_loss(t)
        _stack()
        if _tls.bwd:
            _pop()
            _tls.bwd = False
    except Exception as e:  # noqa: BLE001
        _warn_off(e)


# ---- GradScaler ------------------------------------------------------------------------------
def _scaler_classes(torch):
    out = []
    for modname in ("torch.amp.grad_scaler", "torch.cuda.amp.grad_scaler",
                    "torch.cpu.amp.grad_scaler"):
        mod = sys.modules.get(modname)
        cls = getattr(mod, "GradScaler", None) if mod is not None else None
        if cls is not None and cls not in out:
            out.append(cls)
    return out


def _install_grad_scaler_wrappers(torch):
    for cls in _scaler_classes(torch):
        for name, make in (("scale", _wrap_scale), ("update", _wrap_update)):
            orig = cls.__dict__.get(name)
            if orig is None or getattr(orig, "_fpscope_wrapped", False):
                continue
            w = make(orig)
            w._fpscope_wrapped = True
            w.__wrapped__ = orig
            w.__name__ = orig.__name__
            w.__doc__ = orig.__doc__
            setattr(cls, name, w)


def _wrap_scale(orig):
    def scale(self, outputs):
        result = orig(self, outputs)
        if not _off and result is not outputs:
            try:
                if isinstance(outputs, _torch.Tensor) and outputs.numel() == 1:
                    if len(_scaled) > 64:
                        _scaled.clear()
                    _scaled[id(result)] = (weakref.ref(result), outputs.detach())
            except Exception as e:  # noqa: BLE001
                _warn_off(e)
        return result

    return scale


def _wrap_update(orig):
    def update(self, new_scale=None):
        if _off or getattr(_tls, "in_update", False):
            return orig(self, new_scale)
        before = None
        try:
            scale_t = getattr(self, "_scale", None)
            if (getattr(self, "_enabled", False) and scale_t is not None
                    and scale_t.device.type == "cpu"):
                found = 0.0
                if new_scale is None:
                    for state in self._per_optimizer_states.values():
                        for f in state["found_inf_per_device"].values():
                            if f.device.type != "cpu":
                                raise _Skip()
                            found += float(f.sum().item())
                before = (float(scale_t.item()), found != 0.0)
        except _Skip:
            before = None
        except Exception as e:  # noqa: BLE001
            _warn_off(e)
            before = None
        _tls.in_update = True
        try:
            result = orig(self, new_scale)
        finally:
            _tls.in_update = False
        if not _off:
            try:
                if before is not None:
                    _fp.loss_scale(before[0], before[1])
                _iteration_ended()  # also when scaler.step() skipped optimizer.step() (Inf/NaN)
            except Exception as e:  # noqa: BLE001
                _warn_off(e)
        return result

    return update


class _Skip(Exception):
    pass
