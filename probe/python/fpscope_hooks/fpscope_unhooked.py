"""Matrix multiplies the probe cannot see, said instead of silently missing (the PyTorch
integration, fpscope_torch.py, calls this in the root and module forward hooks of named steps).

The probe hooks the BLAS (and cuBLAS/cuBLASLt). PyTorch runs some matrix multiplies elsewhere:
its CPU convolutions and its bfloat16 CPU matmuls (torch.autocast("cpu"), BF16 weights) in oneDNN
(mkldnn), CUDA convolutions in cuDNN. Their tensors never reach the trace, and a run would read as
if those layers were fine. So:
  - CPU autocast: the first root forward under torch.autocast("cpu") to a 16-bit type warns once;
  - modules that do matrix multiplies (Linear, Bilinear, Conv*/ConvTranspose*, RNN/LSTM/GRU and
    MultiheadAttention: _matmul_types) are checked in named steps: when the probe's GEMM count
    (fpscope_gemm_calls) did not move across a module's forward, that module's matmuls were not
    seen. Each such module path is reported once per process: at the next step boundary, one
    warning event for the new ones (and one stderr line, the first time).
Warnings go into the trace prefixed NOT_MEASURED_PREFIX; the analysis gives the first as the
verdict's reason (analysis/src/causes.cpp) and the viewer shows it on an empty trace. Costs one
isinstance per module call in named steps, and two calls into the probe per matmul module.
"""

NOT_MEASURED_PREFIX = "not measured: "  # trace::kNotMeasuredPrefix (traces/FORMAT.md 5.6)
_SHOWN = 6  # module paths named in one warning; the rest counted


def _autocast_cpu_query(torch):
    """CPU autocast's state as a call, without the deprecated names where newer ones exist
    (torch >= 2.4: is_autocast_enabled("cpu"); a deprecated call would print a warning into the
    program's output). None when this torch has neither."""
    try:
        torch.is_autocast_enabled("cpu")
        return lambda: (torch.is_autocast_enabled("cpu"), torch.get_autocast_dtype("cpu"))
    except (TypeError, AttributeError):
        pass
    on, dtype = (getattr(torch, n, None) for n in ("is_autocast_cpu_enabled",
                                                   "get_autocast_cpu_dtype"))
    return (lambda: (on(), dtype())) if on is not None and dtype is not None else None


def _matmul_types(torch):
    nn = torch.nn
    names = ("Linear", "Bilinear", "Conv1d", "Conv2d", "Conv3d", "ConvTranspose1d",
             "ConvTranspose2d", "ConvTranspose3d", "RNN", "LSTM", "GRU", "MultiheadAttention")
    return tuple(t for t in (getattr(nn, n, None) for n in names) if isinstance(t, type))


class Unhooked:
    def __init__(self, torch, fp):
        self.torch = torch
        self.fp = fp
        self.autocast = _autocast_cpu_query(torch)  # None once said
        # A probe without the GEMM count: no module check.
        self.types = _matmul_types(torch) if fp._gemm_calls() is not None else ()
        self.reported = set()  # module paths already said
        self.new = []  # (path, type name) not measured since the last boundary
        self.warned = False  # the stderr line is printed once

    def say(self, text):
        if not self.warned:
            self.warned = True
            self.fp._warn(text)
        self.fp._warning(NOT_MEASURED_PREFIX + text)

    def root_forward(self):
        """A root module's forward in a named step: CPU autocast to a 16-bit type, once."""
        if self.autocast is None:
            return
        on, dtype = self.autocast()
        if not on or dtype == self.torch.float32:
            return
        self.autocast = None
        # The stderr line says why; the modules' warnings that follow go to the trace only.
        self.say("CPU autocast to %s was on (torch.autocast(\"cpu\")): the matmuls it casts run "
                 "in oneDNN (mkldnn), where the probe has no hook; only the GEMMs it leaves in "
                 "FP32 are measured" % str(dtype).replace("torch.", ""))

    def enter(self, module, inputs):
        """The token fwd_post hands to leave(): the GEMM count, for a matmul module (not for an
        empty input, which makes no GEMM anywhere)."""
        if not self.types or not isinstance(module, self.types):
            return None
        x = inputs[0] if inputs else None
        if isinstance(x, self.torch.Tensor) and x.numel() == 0:
            return None
        return self.fp._gemm_calls()

    def leave(self, module, path, token):
        if token is None or path in self.reported or self.fp._gemm_calls() != token:
            return
        self.reported.add(path)
        self.new.append((path, type(module).__name__))

    def boundary(self):
        """At a step boundary: one warning for the modules found since the last one."""
        if not self.new:
            return
        new, self.new = self.new, []
        shown = ["%s (%s)" % m for m in new[:_SHOWN]]
        if len(new) > _SHOWN:
            shown.append("%d more" % (len(new) - _SHOWN))
        listed = shown[0] if len(shown) == 1 else ", ".join(shown[:-1]) + " and " + shown[-1]
        convs = all(t.startswith("Conv") for _, t in new)
        where = ("PyTorch runs convolutions in oneDNN on the CPU and in cuDNN on the GPU" if convs
                 else "PyTorch runs CPU convolutions and bfloat16 CPU matmuls in oneDNN, and GPU "
                 "convolutions in cuDNN")
        self.say("%s %s ran no matrix multiply the probe sees: %s, where the probe has no hook; "
                 "their tensors are not in the trace"
                 % ("Module" if len(new) == 1 else "Modules", listed, where))
