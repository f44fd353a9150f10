"""fpscope's Python entry point: `fpscope record` puts this directory first on PYTHONPATH, so the
interpreter imports this module at start-up (the `site` module imports `sitecustomize`).

What it does, and all it does at start-up:
  1. installs a meta-path finder that watches for ONE import, `torch`: when torch has finished
     importing, fpscope_torch.activate(torch) installs the PyTorch integration (steps from
     Optimizer.step(), tensor names from module paths, the loss of each backward()). A program
     that never imports torch pays one string comparison per import; nothing is imported here;
  2. runs the sitecustomize that Python would have found without this directory (the next one on
     sys.path), so a site's own customization still happens, in the same way.

FPSCOPE_PYTHON_HOOKS=0 turns step 1 off (`fpscope record --no-python-hooks` leaves this directory
off PYTHONPATH altogether). Nothing here may change the program: errors of the integration are
reported once on stderr and turn it off; errors of the chained sitecustomize propagate as they
would have without fpscope (site reports them).
"""

import os
import sys

_HERE = os.path.dirname(os.path.abspath(__file__))


class _TorchWatcher:
    """A meta-path finder that finds nothing itself: for `torch` it asks the finders after it and
    wraps the loader so that the integration starts once torch's own import has completed."""

    def find_spec(self, name, path=None, target=None):
        if name != "torch":
            return None
        _remove_watcher()
        try:
            import importlib.util

            spec = importlib.util.find_spec("torch")
        except Exception:  # noqa: BLE001 - let the normal import report it
            return None
        if spec is None or spec.loader is None or not hasattr(spec.loader, "exec_module"):
            return spec
        spec.loader = _ActivatingLoader(spec.loader)
        return spec

    def invalidate_caches(self):
        pass


class _ActivatingLoader:
    def __init__(self, loader):
        self._loader = loader

    def create_module(self, spec):
        return self._loader.create_module(spec)

    def exec_module(self, module):
        self._loader.exec_module(module)  # the program sees torch's own errors unchanged
        spec = getattr(module, "__spec__", None)
        if spec is not None and spec.loader is self:
            spec.loader = self._loader  # importlib.reload and friends see torch's own loader
        _activate(module)

    def __getattr__(self, name):  # get_resource_reader, is_package, ... of the real loader
        return getattr(self._loader, name)


_watcher = _TorchWatcher()


def _remove_watcher():
    try:
        sys.meta_path.remove(_watcher)
    except ValueError:
        pass


def _activate(torch):
    try:
        if _HERE not in sys.path:
            sys.path.append(_HERE)  # only to import fpscope_torch (PYTHONPATH may be gone)
        import fpscope_torch

        fpscope_torch.activate(torch)
    except Exception as e:  # noqa: BLE001 - never into the program
        sys.stderr.write("[fpscope] warning: the PyTorch integration is off (%s: %s); the "
                         "program is not affected\n" % (type(e).__name__, e))


def _chain_next_sitecustomize():
    """Runs the sitecustomize module that the rest of sys.path holds, as Python would have."""
    import importlib.machinery
    import importlib.util

    rest = [p for p in sys.path if os.path.abspath(p or ".") != _HERE]
    spec = importlib.machinery.PathFinder.find_spec("sitecustomize", rest)
    if spec is None or spec.loader is None:
        return
    module = importlib.util.module_from_spec(spec)
    sys.modules["sitecustomize"] = module  # `import sitecustomize` then yields the site's own
    spec.loader.exec_module(module)


if os.environ.get("FPSCOPE_PYTHON_HOOKS", "1") != "0":
    if "torch" in sys.modules:  # imported before site ran (an embedding program): now
        _activate(sys.modules["torch"])
    else:
        sys.meta_path.insert(0, _watcher)
_chain_next_sitecustomize()
