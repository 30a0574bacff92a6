"""Validated entry points to grucy's BLAS: matmul and the thread pool."""
import os

import numpy as np

from grucy import _gru, _ops
from grucy._checks import FLOAT_DTYPES

__all__ = ["matmul", "set_num_threads", "get_num_threads", "blas_info"]

def matmul(a, b, out=None, *, trans_a=False, trans_b=False, alpha=1.0, beta=0.0):
    """C = alpha * op(a) @ op(b) + beta * C with grucy's OpenBLAS.

    a: (M, K), or (K, M) with trans_a; b: (K, N), or (N, K) with trans_b; out: (M, N) or
    None (a new array; beta must then be 0). All float32 or all float64. Returns out.
    Use this instead of numpy's `@` inside a training step (DESIGN §4).
    """
    a = _matrix("a", a)
    b = _matrix("b", b)
    if a.dtype != b.dtype:
        raise TypeError(f"matmul: a is {a.dtype} but b is {b.dtype}; use one dtype")
    m, k = (a.shape[1], a.shape[0]) if trans_a else a.shape
    kb, n = (b.shape[1], b.shape[0]) if trans_b else b.shape
    if k != kb:
        raise ValueError(f"matmul: inner dimensions differ: op(a) is {(m, k)}, op(b) is {(kb, n)}")
    if out is None:
        if beta != 0:
            raise ValueError("matmul: beta != 0 needs an `out` array to accumulate into")
        out = np.empty((m, n), dtype=a.dtype)
    else:
        if not isinstance(out, np.ndarray) or out.dtype != a.dtype:
            raise TypeError(f"matmul: out must be a {a.dtype} ndarray")
        if out.shape != (m, n):
            raise ValueError(f"matmul: out must have shape {(m, n)}, got {out.shape}")
        if not out.flags.c_contiguous or not out.flags.writeable:
            raise ValueError("matmul: out must be C-contiguous and writeable")
        if np.shares_memory(out, a) or np.shares_memory(out, b):
            raise ValueError("matmul: out must not overlap a or b")
    if m == 0 or n == 0:
        return out
    if k == 0:                                  # op(a) @ op(b) is all zeros
        out *= beta
        return out
    _ops.gemm_into(a, b, out, bool(trans_a), bool(trans_b), float(alpha), float(beta))
    return out


def _matrix(name, arr):
    arr = np.asarray(arr)
    if arr.dtype not in FLOAT_DTYPES:
        raise TypeError(f"matmul: {name} must be float32 or float64, got {arr.dtype}")
    if arr.ndim != 2:
        raise ValueError(f"matmul: {name} must be 2-D, got shape {arr.shape}")
    return np.ascontiguousarray(arr)


def set_num_threads(n):
    """Set how many threads grucy uses: OpenBLAS's GEMMs and the kernels' gate passes run on
    one pool of n - 1 workers and the caller (numpy's own pool is separate)."""
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
        raise ValueError(f"set_num_threads: n must be a positive int, got {n!r}")
    old = _ops.get_num_threads()
    _ops.set_num_threads(int(n))               # OpenBLAS caps n at its build's maximum
    try:                                       # the pool lives in grucy._gru (_pool.h)
        _gru.reserve_threads(_ops.get_num_threads())
    except RuntimeError:
        _ops.set_num_threads(old)
        raise


def get_num_threads():
    """The size of grucy's OpenBLAS thread pool."""
    return _ops.get_num_threads()


def blas_info():
    """Which BLAS grucy uses: library file, version, CPU kernel, threads, build config."""
    import importlib.metadata as md
    from grucy import _blas_path
    return {
        "library": os.fspath(_blas_path),
        "package": "scipy-openblas32 " + md.version("scipy-openblas32"),
        "corename": _ops.get_corename(),
        "num_threads": _ops.get_num_threads(),
        "num_procs": _ops.get_num_procs(),
        "config": _ops.get_config(),
    }
