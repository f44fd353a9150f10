"""Runs a tests/models program unchanged (argv[1], as __main__) and writes, for each backward()
or torch.autograd.grad() call, whether global module forward hooks were registered when it began
(so while the forward it differentiates ran), to the file named by HOOK_STATE_OUT: "1,0,0,1,...".
The programs print one "loss <optimizer step> ..." line per such call, which gives each state its
step. Prints nothing itself: the program's output is untouched. Any torch of the integration
(1.13 to 2.x)."""
import os
import runpy
import sys

import torch  # the integration activates once torch is imported
from torch.nn.modules import module as mm

seen = []
_backward = torch.Tensor.backward


def backward(self, *args, **kwargs):
    seen.append("1" if mm._global_forward_pre_hooks else "0")
    return _backward(self, *args, **kwargs)


torch.Tensor.backward = backward
_grad = torch.autograd.grad  # the integration's wrapper (installed when torch was imported)


def grad(*args, **kwargs):
    seen.append("1" if mm._global_forward_pre_hooks else "0")
    return _grad(*args, **kwargs)


torch.autograd.grad = grad
path = sys.argv[1]
sys.argv = sys.argv[1:]
try:
    runpy.run_path(path, run_name="__main__")
finally:
    with open(os.environ["HOOK_STATE_OUT"], "w") as f:
        f.write(",".join(seen))
