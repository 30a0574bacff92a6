# cython: language_level=3
"""grucy's BLAS for everything outside the GRU loops: GEMM, the thread pool, build info.

Layers above the kernels (the output head, say) multiply matrices here rather than with
numpy's `@`, so that a training step uses one OpenBLAS and one thread pool (the two-pool
trap: README, "Kernels").
"""
from grucy._blas cimport real, gemm, grucy_call_enter, grucy_call_leave, grucy_exit_guard
from grucy cimport _blas

if grucy_exit_guard() != 0:
    raise ImportError("grucy: could not register the exit and fork handlers (grucy/_exit.h)")


def gemm_into(const real[:, ::1] a, const real[:, ::1] b, real[:, ::1] c,
              bint trans_a, bint trans_b, double alpha, double beta):
    """c := alpha * op(a) @ op(b) + beta * c.

    Called by grucy.ops.matmul after it has checked shapes and dtypes and handled the
    empty cases (m, n or k zero); the shapes are checked again below for a direct call, so
    every pointer taken here is in bounds.
    """
    cdef Py_ssize_t m = c.shape[0], n = c.shape[1]
    cdef Py_ssize_t k = a.shape[0] if trans_a else a.shape[1]
    # matmul has checked these; checked again so that a direct call cannot make the BLAS
    # read or write out of bounds (C comparisons: matmul's per-call cost is watched)
    cdef Py_ssize_t a_rows = k if trans_a else m, a_cols = m if trans_a else k
    cdef Py_ssize_t b_rows = n if trans_b else k, b_cols = k if trans_b else n
    if (a.shape[0] != a_rows or a.shape[1] != a_cols
            or b.shape[0] != b_rows or b.shape[1] != b_cols):
        raise ValueError(f"gemm_into: a {(a.shape[0], a.shape[1])} and b "
                         f"{(b.shape[0], b.shape[1])} do not give c {(m, n)}")
    if m == 0 or n == 0 or k == 0 or m > 2**31 - 1 or n > 2**31 - 1 or k > 2**31 - 1:
        raise ValueError(f"gemm_into: sizes {(m, n, k)} must lie in [1, 2**31 - 1]")
    grucy_call_enter()                  # interpreter exit waits for it (grucy/_exit.h)
    with nogil:
        gemm(trans_a, trans_b, <int>m, <int>n, <int>k, <real>alpha, &a[0, 0], <int>a.shape[1],
             &b[0, 0], <int>b.shape[1], <real>beta, &c[0, 0], <int>n)
        grucy_call_leave()


def get_num_procs():
    return _blas.get_num_procs()


def get_config():
    return _blas.get_config().decode("ascii", "replace").strip()


def get_corename():
    return _blas.get_corename().decode("ascii", "replace").strip()


# ---- test hook ------------------------------------------------------------------------------

from grucy._math cimport map_sigmoid, map_tanh, grucy_simd_select, GRUCY_SIMD_AVX512


def _set_simd(int most=GRUCY_SIMD_AVX512):
    """For tests: _pointwise runs the best copy of the point functions this CPU has, up to
    level `most` (0 baseline, 1 AVX2+FMA, 2 AVX-512, as _gru.SIMD_NAMES); returns the level
    now in force."""
    return grucy_simd_select(most)


_set_simd()


def _pointwise(str name, const real[::1] a, real[::1] out):
    """out[i] = f(a[i]) with f the kernels' own point function `name` ('sigmoid' or 'tanh').

    For tests/test_math.py only: it checks grucy._math against libm through a loop compiled
    and dispatched like the gate passes (grucy/_gates.h).
    """
    cdef Py_ssize_t n = a.shape[0]
    if out.shape[0] != n:
        raise ValueError(f"out must have {n} elements, got {out.shape[0]}")
    if n == 0:
        return
    if name == "sigmoid":
        with nogil:
            map_sigmoid(n, &a[0], &out[0])
    elif name == "tanh":
        with nogil:
            map_tanh(n, &a[0], &out[0])
    else:
        raise ValueError(f"name must be 'sigmoid' or 'tanh', got {name!r}")
