"""Validated entry points to grucy's BLAS: matmul and the thread pool."""
import ctypes
import functools
import glob
import os
import re
import struct

import numpy as np

from grucy import _gru, _ops
from grucy._checks import (BLAS_INT_MAX, FLOAT_DTYPES, asarray, c_aligned, check_bool,
                           check_float, check_int, check_sizes)

__all__ = ["matmul", "set_num_threads", "get_num_threads", "share_threads_with_numpy",
           "blas_info"]

def matmul(a, b, out=None, *, trans_a=False, trans_b=False, alpha=1.0, beta=0.0):
    """C = alpha * op(a) @ op(b) + beta * C with grucy's OpenBLAS.

    a: (M, K), or (K, M) with trans_a; b: (K, N), or (N, K) with trans_b; out: (M, N) or
    None (a new array; beta must then be 0). All float32 or all float64; trans_a, trans_b
    bools; alpha, beta finite reals; every size below 2**31 (32-bit BLAS). Returns out.
    As in BLAS, a zero coefficient skips its term: beta = 0 overwrites out (NaN there
    included) and alpha = 0 reads neither a nor b, so NaN in them does not reach C.
    Use this instead of numpy's `@` inside a training step: numpy's `@` runs on numpy's own
    OpenBLAS threads, which then compete with grucy's (see share_threads_with_numpy).
    """
    trans_a = check_bool(trans_a, "trans_a")   # a truthy 'no' would transpose
    trans_b = check_bool(trans_b, "trans_b")
    alpha = check_float(alpha, "alpha")
    beta = check_float(beta, "beta")
    a = _matrix("a", a)
    b = _matrix("b", b)
    if a.dtype != b.dtype:
        raise TypeError(f"matmul: a is {a.dtype} but b is {b.dtype}; use one dtype")
    m, k = (a.shape[1], a.shape[0]) if trans_a else a.shape
    kb, n = (b.shape[1], b.shape[0]) if trans_b else b.shape
    if k != kb:
        raise ValueError(f"matmul: inner dimensions differ: op(a) is {(m, k)}, op(b) is {(kb, n)}")
    for name, value in (("alpha", alpha), ("beta", beta)):
        # the BLAS call takes them in the operands' dtype: 1e39 would be inf in float32, and
        # 1e-50 zero, which would silently drop its term
        if not _representable(value, a.dtype):
            raise ValueError(f"matmul: {name}={value!r} is not representable in {a.dtype}, "
                             "the operands' dtype")
    if out is None:
        if beta != 0:
            raise ValueError("matmul: beta != 0 needs an `out` array to accumulate into")
        out = np.empty((m, n), dtype=a.dtype)
    else:
        if not isinstance(out, np.ndarray) or out.dtype != a.dtype:
            swapped = isinstance(out, np.ndarray) and out.dtype.newbyteorder("=") == a.dtype
            raise TypeError(f"matmul: out must be a {a.dtype} ndarray" +
                            (f" in native byte order, got {out.dtype.str}" if swapped else ""))
        if out.shape != (m, n):
            raise ValueError(f"matmul: out must have shape {(m, n)}, got {out.shape}")
        if not (out.flags.c_contiguous and out.flags.writeable and out.flags.aligned):
            raise ValueError("matmul: out must be C-contiguous, aligned and writeable")
    if m == 0 or n == 0:
        return out
    if k == 0:                                  # op(a) @ op(b) is all zeros
        if beta == 0:                           # as BLAS, beta = 0 never reads out: 0 * the
            out.fill(0)                         #   NaN in np.empty's garbage would be NaN
        else:
            out *= beta
        return out
    # copied only now, with every shape checked and out in hand: a zero-strided view
    # (np.broadcast_to) could be gigabytes as a copy, and an empty product needs none
    a, b = c_aligned(a), c_aligned(b)
    # may_share_memory compares bounds only; shares_memory's exact test is the slow one
    if any(np.may_share_memory(out, v) and np.shares_memory(out, v) for v in (a, b)):
        raise ValueError("matmul: out must not overlap a or b")
    _ops.gemm_into(a, b, out, trans_a, trans_b, alpha, beta)
    return out


def _representable(value, dtype):
    """Whether the finite float value stays finite, and nonzero if it is, in dtype: struct's
    standard-size "<f" rounds to float32 as a numpy cast does and raises where the result
    overflows (native "f" is a bare C cast to inf), without the microseconds of a numpy
    scalar and np.errstate (matmul checks two per call)."""
    if dtype == np.float64:
        return True
    try:
        cast = struct.unpack("<f", struct.pack("<f", value))[0]
    except OverflowError:
        return False
    return value == 0 or cast != 0


def _matrix(name, arr):
    """arr checked, not yet copied to the C-contiguous layout the BLAS call needs."""
    arr = asarray(arr, f"matmul: {name}")
    if arr.dtype not in FLOAT_DTYPES:
        raise TypeError(f"matmul: {name} must be float32 or float64, got {arr.dtype}")
    if arr.ndim != 2:
        raise ValueError(f"matmul: {name} must be 2-D, got shape {arr.shape}")
    check_sizes(f"matmul: {name}", arr.shape)
    return arr


def set_num_threads(n):
    """Set how many threads grucy uses: OpenBLAS's GEMMs and the kernels' gate passes run on
    one pool of n - 1 workers and the caller (numpy's own pool is separate).

    n is capped at the CPUs this process may run on (os.sched_getaffinity; get_num_threads
    says what was set). A run's jobs (OpenBLAS's, a gate pass's row blocks) wait for one
    another, so they must all be on a core at once: with more threads than cores each wait
    lasted a scheduler time slice, not microseconds (a GRU forward took seconds, not
    milliseconds, at 3 threads on 2 cores).
    """
    n = check_int(n, "set_num_threads: n", minimum=1)     # TypeError for "2", as Python's own
    old = _gru.threads()
    # OpenBLAS caps n at its build's maximum; n past a C int would not even reach it. The
    # pool (grucy._gru, _pool.h) sets it between its runs: a row-block step holds it at one.
    _gru.set_threads(min(n, BLAS_INT_MAX, _cpus()))
    try:
        _gru.reserve_threads(_gru.threads())
    except RuntimeError:
        _gru.set_threads(old)
        raise


def _cpus():
    """The CPUs this process may run on."""
    try:
        return max(len(os.sched_getaffinity(0)), 1)
    except (AttributeError, OSError):      # no affinity call (macOS, Windows)
        return os.cpu_count() or 1


def get_num_threads():
    """The size of grucy's OpenBLAS thread pool."""
    return _gru.threads()


_numpy_shared = False        # numpy's OpenBLAS hands its jobs to grucy's pool (blas_info)


def share_threads_with_numpy(share=True):
    """Run numpy's OpenBLAS on grucy's thread pool too; share=False gives it its own back.

    Why: numpy's wheels bring a second OpenBLAS with its own worker threads, and after each
    parallel numpy product they spin for about 0.1 s, taking the cores grucy's next GEMM
    needs (the two-pool trap; `python benchmarks/run.py` measures it). Shared,
    numpy's parallel calls run as jobs on grucy's workers, which give their cores back
    within a millisecond. numpy keeps its own thread count (threadpoolctl still sets it);
    results are unchanged, as each call is split the same way.

    numpy's LU (np.linalg.solve, inv, det) still queues jobs to numpy's own threads, by
    their slots in OpenBLAS's per-thread arrays; the pool runs numpy's jobs in the top
    slots, clear of those threads (grucy/_pool.h). That needs numpy's thread count to be
    at most about half its OpenBLAS's MAX_THREADS (32 of 64 in numpy's wheels), here and
    later: raised past it while shared (threadpoolctl), an LU beside numpy products in
    another thread can hang again.

    Process-wide and opt-in, like any change to another library's threads. Returns True
    when done; False, changing nothing, where numpy's BLAS cannot hand its threads over
    (not OpenBLAS, one without a threading callback, or one whose MAX_THREADS is unknown
    or less than twice its thread count; then it also undoes an earlier sharing, as numpy
    was sharing unsafely) or, for share=False, is grucy's own. Raises
    RuntimeError if the pool cannot start numpy's thread count of workers.
    """
    share = check_bool(share, "share")
    found = _numpy_openblas()
    if found is None:
        return False
    from grucy import _blas_path
    path, set_callback, get_threads, get_config = found
    if os.path.samefile(path, _blas_path):     # numpy runs on grucy's OpenBLAS already
        return share
    global _numpy_shared
    if share:
        threads = max(get_threads(), 1)
        slots = _max_threads(get_config())
        # numpy's servers use slots 0..threads-2, the pool's jobs slots-threads..slots-1
        if slots is None or slots - threads <= threads - 2:
            if _numpy_shared:                  # numpy's count was raised while shared:
                set_callback(None)             # False must mean "not shared", not the hazard
                _numpy_shared = False
            return False
        _gru.reserve_threads(threads, "share_threads_with_numpy")
        set_callback(_gru.shared_callback_address(slots))
    else:
        set_callback(None)                     # OpenBLAS's own threads again
    _numpy_shared = share
    return True


# The threading entry points of numpy's OpenBLAS under the names its builds have used
# (scipy-openblas64 for numpy 2 wheels; plain OpenBLAS, 64-bit-integer or not, elsewhere).
_SUFFIXES = ("64_", "", "_64")
_PREFIXES = ("scipy_openblas", "openblas")


def _max_threads(config):
    """MAX_THREADS from an OpenBLAS build's config string, or None: the size of its
    per-thread arrays (thread_status, blas_thread_buffer)."""
    found = re.search(r"\bMAX_THREADS=(\d+)", config or "")
    return int(found.group(1)) if found else None


@functools.cache
def _numpy_openblas():
    """(path, set_callback, get_num_threads, get_config) for the OpenBLAS numpy loaded, or
    None; get_config() is its build's config string ('' where it has none).

    numpy's wheels keep it next to the package (numpy.libs: auditwheel and delvewheel;
    numpy/.dylibs: delocate). On Linux only a library that is mapped into this process
    counts, so a stray file there is never loaded. Looked up once: numpy's BLAS is loaded
    with numpy and stays for the life of the process.
    """
    here = os.path.dirname(np.__file__)
    paths = sorted(glob.glob(os.path.join(here + ".libs", "*openblas*"))
                   + glob.glob(os.path.join(here, ".dylibs", "*openblas*")))
    try:
        with open("/proc/self/maps") as f:
            mapped = {line.split(None, 5)[-1].strip() for line in f if "/" in line}
        paths = [p for p in paths if os.path.realpath(p) in mapped]
    except OSError:
        pass
    for path in paths:
        try:
            lib = ctypes.CDLL(path)            # the copy numpy loaded: same file, same handle
        except OSError:
            continue
        for prefix in _PREFIXES:
            for suffix in _SUFFIXES:
                setter = getattr(lib, f"{prefix}_set_threads_callback_function{suffix}", None)
                getter = getattr(lib, f"{prefix}_get_num_threads{suffix}", None)
                if setter is not None and getter is not None:
                    setter.argtypes, setter.restype = [ctypes.c_void_p], None
                    getter.argtypes, getter.restype = [], ctypes.c_int
                    config = getattr(lib, f"{prefix}_get_config{suffix}", None)
                    if config is not None:
                        config.argtypes, config.restype = [], ctypes.c_char_p
                    return path, setter, getter, functools.partial(_text, config)
    return None


def _text(get_config):
    return (get_config() or b"").decode("ascii", "replace") if get_config else ""


def blas_info():
    """Which BLAS grucy uses: library file, version, CPU kernel, threads, build config,
    whose threads numpy's BLAS runs on (numpy_threads; see share_threads_with_numpy), and
    which copy of grucy's own gate passes runs (gate_passes: picked at import from the
    CPU's feature bits, grucy/_gates.h)."""
    import importlib.metadata as md
    from grucy import _blas_path
    if _numpy_shared:
        numpy_threads = "grucy's pool (share_threads_with_numpy)"
    elif _numpy_openblas() is None:
        numpy_threads = "its own (no OpenBLAS threading hook found in numpy's BLAS)"
    else:
        numpy_threads = "its own"
    return {
        "library": os.fspath(_blas_path),
        "package": "scipy-openblas32 " + md.version("scipy-openblas32"),
        "corename": _ops.get_corename(),
        "num_threads": _gru.threads(),
        "num_procs": _ops.get_num_procs(),
        "config": _ops.get_config(),
        "numpy_threads": numpy_threads,
        "gate_passes": _gru.SIMD_NAMES[_gru.SIMD],
    }

