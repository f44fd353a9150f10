"""Auto-watch: the master-weight update loss of every optimizer parameter, with no code change
(docs/metrics.md "Master-weight update loss"). fpscope_torch.py calls on_optimizer_step(opt) when
an optimizer's step() begins; the first time it sees a parameter it watches it (fpscope.watch:
the probe snapshots it now, so the step about to run is the first update measured).

Contract:
  - Which: FPSCOPE_WATCH (`fpscope record --watch`): `all` (default, also when unset or empty),
    `none`, or comma-separated shell patterns (fnmatch, case-sensitive) matched against the
    parameter's name (`encoder.layers.*.weight,out.*`). A value with no pattern (`,`) gets one
    warning and the default.
  - Names: the parameter's path in a root module (a module called with no module forward in
    progress: fpscope_torch's roots) from named_parameters() (`encoder.layers.0.linear1.weight`);
    a parameter of no root seen so far is `param#k` (k counts such parameters from 0), given in a
    step the integration names (in the others it waits: its root may not have been seen). A name
    another parameter had already (a second model with the same paths) is suffixed `#1`, `#2`...
  - Budget: each host watch keeps two FP32 copies of the positions it follows (8 bytes each); the
    probe's FPSCOPE_WATCH_BUDGET is shared across the parameters of the optimizer seen first
    ("water-filling": every parameter gets min(its size, c) positions, c as large as the budget
    left allows), so small tensors are watched whole and large ones follow a fixed uniform sample
    of c positions (probe/src/weight_watch.h). Parameters of a later optimizer share what is left.
  - Left out (never a warning on stderr: the run is not the problem): a parameter that is not
    contiguous, of another device, of a dtype other than float32/bfloat16/float16, already
    watched by the program itself (same memory), or for which no budget is left. Each gets an
    event `watch: left out <name>: <reason>` in the trace, which the analysis lists.
  - CUDA parameters go through the device watch (whole tensors, device memory).
  - Optimizer state: after an optimizer's step, the first time its state holds tensors (Adam's
    exp_avg / exp_avg_sq, SGD's momentum_buffer, ...: floating-point tensors of at least one
    dimension), each parameter whose state has a bfloat16/float16 tensor gets one event
    `optimizer state: <name>: <optimizer class>: <key> <dtype>, ...` (its low-precision entries;
    names as above, also with FPSCOPE_WATCH=none); the analysis turns them into the
    optimizer_state_low_precision finding. Checked again only when the optimizer's parameter count
    changes (cheap per step, as on_optimizer_step).
  - Lifetime: the watch holds a view of each parameter's storage (p.detach(): the memory the probe
    reads stays valid even if the program rebinds p.data) only while the optimizer lives: when it
    is collected, its parameters are unwatched and released, so a program that builds one model
    after another (a sweep) frees each as it would without fpscope.
"""

import fnmatch
import os
import weakref

BYTES_PER_ELEMENT = 8  # two FP32 copies per followed position (probe/src/weight_watch.h)
LEFT_OUT_PREFIX = "watch: left out "
STATE_PREFIX = "optimizer state: "  # analysis/src/findings_training.cpp parses it
LOW_PRECISION = ("torch.bfloat16", "torch.float16")


def parse_setting(value):
    """(mode, patterns) of an FPSCOPE_WATCH value; mode is 'all', 'none' or 'pattern'; a bad value
    gives ('all', []) and the warning text as a third element."""
    if value is None or value.strip() in ("", "all"):
        return "all", [], None
    if value.strip() == "none":
        return "none", [], None
    patterns = [p.strip() for p in value.split(",") if p.strip()]
    if not patterns:
        return "all", [], ("FPSCOPE_WATCH=%r: expected all, none or comma-separated patterns; "
                           "using all" % value)
    return "pattern", patterns, None


def water_fill(sizes, capacity):
    """Positions per tensor: min(size, c) with the largest c whose total fits `capacity` (every
    tensor whole when they all fit). 0 means no room at all."""
    if sum(sizes) <= capacity:
        return list(sizes)
    order = sorted(sizes)
    left, remaining = capacity, len(order)
    cap = 0
    for s in order:
        share = left // remaining
        if s <= share:
            left -= s
            remaining -= 1
            continue
        cap = share
        break
    return [min(s, cap) for s in sizes]


class AutoWatch:
    def __init__(self, fp, roots, environ=None, named_now=None):
        """fp: the fpscope module; roots(): the root modules seen, in the order first seen;
        named_now(): whether the integration names modules in this step (its hooks are on only
        around sampled steps): a parameter of no known root is then deferred to a step that does
        (watches are measured at sampled steps only, so nothing is lost)."""
        env = os.environ if environ is None else environ
        self.fp = fp
        self.roots = roots
        self.named_now = named_now if named_now is not None else (lambda: True)
        self.mode, self.patterns, self.warning = parse_setting(env.get("FPSCOPE_WATCH"))
        self.seen = set()  # id() of parameters watched or left out
        self.names = set()  # names given
        self.anonymous = 0
        # optimizer -> number of its parameters at its last step (weak: ids are reused)
        self.sizes = weakref.WeakKeyDictionary()
        # optimizer -> number of its parameters when its state was last checked
        self.state_checked = weakref.WeakKeyDictionary()
        self.given = {}  # id(param) -> the name on_optimizer_step gave it

    def wanted(self, name):
        if self.mode == "all":
            return True
        if self.mode == "none":
            return False
        return any(fnmatch.fnmatchcase(name, p) for p in self.patterns)

    def _name_map(self):
        """id(param) -> path, in the first root that has it."""
        out = {}
        for root in self.roots():
            for path, p in root.named_parameters():
                out.setdefault(id(p), path)
        return out

    def _unique(self, path):
        name = path
        base, n = name, 1
        while name in self.names:
            name = "%s#%d" % (base, n)
            n += 1
        self.names.add(name)
        return name

    def _left_out(self, name, why):
        self.fp.event(LEFT_OUT_PREFIX + "%s: %s" % (name, why))

    def on_optimizer_step(self, opt):
        if self.mode == "none":
            return
        groups = getattr(opt, "param_groups", None) or []
        count = sum(len(g.get("params", ())) for g in groups)
        if self.sizes.get(opt) == count:
            return  # nothing new since its last step (cheap: no per-parameter work)
        self.sizes[opt] = count
        new = []
        for g in groups:
            for p in g.get("params", ()):
                if id(p) not in self.seen:
                    new.append(p)
        if not new:
            return
        names = self._name_map()
        if not self.named_now() and any(id(p) not in names for p in new):
            new = [p for p in new if id(p) in names]  # the others wait for a named step
            self.sizes.pop(opt, None)  # look again at its next step
        for p in new:
            self.seen.add(id(p))
        if not new:
            return
        user = {id(t) for t in self.fp._watched.values()}
        user_ptrs = set()
        for t in self.fp._watched.values():
            try:
                user_ptrs.add(int(t.data_ptr()))
            except Exception:  # noqa: BLE001 - a numpy array: no data_ptr
                pass
        host, device = [], []  # [(name, param, count)]
        for p in new:
            path = names.get(id(p))
            if path is None:
                path = "param#%d" % self.anonymous
                self.anonymous += 1
            name = self._unique(path)
            self.given[id(p)] = name
            if not self.wanted(name):
                continue
            if id(p) in user or int(p.data_ptr()) in user_ptrs:
                self._left_out(name, "the program watches it itself")
                continue
            ptr, n, dtype = self.fp._describe(p)
            if ptr is None:
                self._left_out(name, n)
                continue
            if dtype not in self.fp._DTYPES:
                self._left_out(name, "dtype %s (watched: float32, bfloat16, float16)" % dtype)
                continue
            (device if self.fp._cuda_index(p) is not None else host).append((name, p, n))
        watched = []
        for name, p, _ in device:
            if self.fp.watch(name, p.detach()):
                watched.append(name)
        if host:
            capacity = self.fp._watch_budget_left() // BYTES_PER_ELEMENT
            plan = water_fill([n for _, _, n in host], capacity)
            for (name, p, n), k in zip(host, plan):
                if k == 0:
                    self._left_out(name, "no FPSCOPE_WATCH_BUDGET left")
                    continue
                if self.fp.watch(name, p.detach(), sample=k):
                    watched.append(name)
        done = weakref.finalize(opt, self._release, watched, [id(p) for p in new])
        done.atexit = False  # at exit the probe closes the trace itself

    def after_optimizer_step(self, opt):
        """The optimizer's step ended: its state, once it exists, checked for BF16/FP16 tensors."""
        groups = getattr(opt, "param_groups", None) or []
        count = sum(len(g.get("params", ())) for g in groups)
        if self.state_checked.get(opt) == count:
            return
        state = getattr(opt, "state", None)
        if not state:
            return  # no state yet (or none at all: plain SGD): look again after the next step
        self.state_checked[opt] = count
        names = None
        kind = type(opt).__name__
        for g in groups:
            for p in g.get("params", ()):
                entries = state.get(p) if hasattr(state, "get") else None
                if not isinstance(entries, dict):
                    continue  # no state for p, or an optimizer's own kind of state: not checked
                low = []
                for key, v in sorted(entries.items(), key=lambda kv: str(kv[0])):
                    dtype = str(getattr(v, "dtype", ""))
                    if dtype in LOW_PRECISION and getattr(v, "dim", lambda: 0)() >= 1:
                        low.append("%s %s" % (key, dtype.replace("torch.", "")))
                if not low:
                    continue
                name = self.given.get(id(p))
                if name is None:
                    if names is None:
                        names = self._name_map()
                    name = names.get(id(p), "param#?")
                self.fp.event(STATE_PREFIX + "%s: %s: %s" % (name, kind, ", ".join(low)))

    def _release(self, names, ids):
        """The optimizer is gone: its parameters' watches end and their memory is released; their
        ids may be reused, and every optimizer left looks at its parameters again."""
        try:
            for name in names:
                self.fp.unwatch(name)
            self.seen.difference_update(ids)
            for i in ids:
                self.given.pop(i, None)
            self.sizes.clear()
        except Exception:  # noqa: BLE001 - a finalizer must not raise into the program
            pass
