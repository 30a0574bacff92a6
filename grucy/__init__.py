"""grucy: a fast, readable GRU for CPUs.

Cython kernels (grucy.kernels) run the forward pass and backpropagation through time with
the GIL released, every matrix product an OpenBLAS call from the scipy-openblas32 wheel.
"""
import ctypes as _ctypes
import importlib.util as _importlib_util
import pathlib as _pathlib


def _load_openblas():
    """Load the wheel's libscipy_openblas.so before the extensions that link against it.

    The extensions carry no rpath (an isolated build's copy is deleted after `pip install .`),
    so the dynamic loader finds the library here, already loaded under its soname. RTLD_LOCAL
    keeps its symbols out of the global namespace.
    """
    spec = _importlib_util.find_spec("scipy_openblas32")
    if spec is None or spec.origin is None:
        raise ImportError("grucy needs the scipy-openblas32 package: pip install scipy-openblas32")
    libdir = _pathlib.Path(spec.origin).parent / "lib"
    candidates = sorted(libdir.glob("libscipy_openblas*.so*")) + sorted(libdir.glob("*.dylib"))
    if not candidates:
        raise ImportError(f"no libscipy_openblas shared library in {libdir}")
    _ctypes.CDLL(str(candidates[0]), mode=_ctypes.RTLD_LOCAL)
    return candidates[0]


_blas_path = _load_openblas()


def _check_extensions():
    """Say what is wrong when the compiled kernels cannot be imported, instead of the import
    machinery's words: a checkout's grucy/ (no extensions built in it) hiding an installed
    grucy read "cannot import name '_gru' from partially initialized module 'grucy' (most
    likely due to a circular import)", and an OpenBLAS too old for the thread pool's hook an
    undefined symbol."""
    here = _pathlib.Path(__file__).parent
    if _importlib_util.find_spec("grucy._gru") is None:
        raise ImportError(
            f"grucy's compiled kernels are not built in {here}: this is a source tree whose "
            "extensions were never built. Build them there (pip install -e ., or python "
            "setup.py build_ext --inplace), or, if grucy is installed, run from another "
            "directory: this one's grucy/ hides the installed package")
    try:
        from grucy import _gru  # noqa: F401
    except ImportError as exc:
        if "undefined symbol" not in str(exc):
            raise
        raise ImportError(f"{exc}: grucy needs scipy-openblas32 >= 0.3.30.443, the first to "
                          "export the threading hook its pool registers (pip install -U "
                          "scipy-openblas32)") from exc


_check_extensions()

from grucy.kernels import gru_forward, gru_backward, gru_cell, Cell  # noqa: E402
from grucy.ops import (matmul, set_num_threads, get_num_threads,  # noqa: E402
                       share_threads_with_numpy, blas_info)
from grucy import reference  # noqa: E402,F401
from grucy.layers import GRU, GRUStream, Linear  # noqa: E402
from grucy.models import SequenceModel  # noqa: E402
from grucy.io import save, load, Checkpoint  # noqa: E402
from grucy import init, losses, optim, interop  # noqa: E402,F401

__version__ = "0.1.0"

__all__ = [
    "gru_forward", "gru_backward", "gru_cell", "Cell",
    "matmul", "set_num_threads", "get_num_threads", "share_threads_with_numpy", "blas_info",
    "GRU", "GRUStream", "Linear", "SequenceModel", "save", "load", "Checkpoint",
    "init", "losses", "optim", "interop", "reference",
]
