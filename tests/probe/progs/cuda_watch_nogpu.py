"""fpscope.watch() of a CUDA tensor on a machine without a GPU: a stand-in object that looks like
a contiguous CUDA torch tensor (device cuda:0, float32) goes down the device-watch path
(fpscope_watch_device). Here the probe has no device statistics, so watch() must return False
with one warning; without the probe it is a silent no-op (False). No GPU and no torch needed.

    cuda_watch_nogpu.py <fpscope/probe/python>

Prints "device_entry=<bool> watch=<bool> again=<bool> active=<bool>"."""
import sys

sys.path.insert(0, sys.argv[1])
import fpscope  # noqa: E402


class _Device:
    type = "cuda"
    index = 0

    def __str__(self):
        return "cuda:0"


class FakeCudaTensor:
    device = _Device()
    dtype = "torch.float32"

    def data_ptr(self):
        return 0x7f0000001000  # never dereferenced: the probe refuses before touching it

    def numel(self):
        return 1024

    def is_contiguous(self):
        return True


entry = fpscope._lib is not None and hasattr(fpscope._lib, "fpscope_watch_device")
ok = fpscope.watch("gpu.weight", FakeCudaTensor())
again = fpscope.watch("gpu.weight2", FakeCudaTensor())
fpscope.unwatch("gpu.weight")
fpscope.step()
print("device_entry=%s watch=%s again=%s active=%s" % (entry, ok, again, fpscope.active()),
      flush=True)
