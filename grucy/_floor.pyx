# cython: language_level=3
"""The GEMM floor: the GEMMs of grucy's GRU kernels, timed alone (benchmarks only).

`Floor(T, B, I, H, reset_after, dtype)` owns buffers of the kernels' shapes; `.forward()`
and `.training()` issue exactly the GEMM sequence of `_gru._forward` and of `_forward`
followed by `_gru._backward` (same shapes, transposes, leading dimensions, beta), and
nothing else: no gate math, no allocation, GIL released. Where the kernels run a step as
row blocks on grucy's pool (_gru.step_blocks), so does this: each block's GEMMs, at once,
on the same pool. A kernel's time divided by this is the overhead of everything that is not
a matrix product. Keep it in step with _gru.pyx.

`.activations()` is the floor's counterpart for the gate math: each step's sigmoids and
tanhs alone (2·B·H and B·H of them, as the gate passes take them), with nothing else. A
gate pass also reads and writes its rows, so floor + activations is the least any kernel
using grucy's sigmoid and tanh could take (benchmarks/run.py prints it as `act bound`).
"""
from types import MappingProxyType

import numpy as np

from grucy._blas cimport real, gemm, grucy_call_enter, grucy_call_leave, grucy_exit_guard
from grucy._math cimport map_sigmoid, map_tanh, grucy_simd_select, GRUCY_SIMD_AVX512
from grucy._gru import (chunk_steps, proj_steps, serial_run_address, step_blocks,
                        transpose_w_hh)


# grucy's pool, reached through _gru (whose module holds it): the serial run that row-block
# steps use, fn(i, arg) for i < njobs at once with OpenBLAS at one thread (grucy/_pool.h,
# grucy_pool_run_serial).
ctypedef void (*_job_fn)(int, void *) noexcept nogil
ctypedef int (*_run_fn)(int, _job_fn, void *) noexcept nogil
cdef _run_fn _serial_run = <_run_fn><size_t>serial_run_address()

if grucy_exit_guard() != 0:
    raise ImportError("grucy: could not register the exit and fork handlers (grucy/_exit.h)")

# The point functions' best copy for this CPU, as the kernels pick theirs (grucy/_gates.h)
grucy_simd_select(GRUCY_SIMD_AVX512)


ctypedef struct _Step:
    # one step's per-step GEMMs, for _step_gemms (pointers are real *)
    Py_ssize_t B, H
    int blocks
    bint reset_after, backward, dbl
    const void *w_hh
    const void *w_rec                              # what the forward's GEMMs read, as the
    bint w_rec_t                                   #   kernels': w_hhᵀ (H, G) if w_rec_t
    void *h
    void *hp
    void *rh
    void *dgs
    void *drh
    void *dh


cdef void _step_gemms(const _Step *a, real *h, Py_ssize_t b_lo, Py_ssize_t b_hi) noexcept nogil:
    """The per-step GEMMs of _gru._fwd_rows (or _bwd_rows) for rows [b_lo, b_hi); h is
    the state (forward only; it also fixes the float type)."""
    cdef Py_ssize_t H = a.H, G = 3 * H, m = b_hi - b_lo
    cdef const real *w_hh = <const real *>a.w_hh
    cdef const real *w = <const real *>a.w_rec
    cdef bint wt = a.w_rec_t
    cdef int ldw = <int>(G if wt else H)
    cdef Py_ssize_t n_off = 2 * H if wt else 2 * H * H       # where w's W_hn block starts
    cdef real *hp = <real *>a.hp
    cdef real *rh = <real *>a.rh
    cdef real *dgs = <real *>a.dgs
    cdef real *drh = <real *>a.drh
    cdef real *dh = <real *>a.dh
    if not a.backward:
        if a.reset_after:
            # hp[b_lo:b_hi] (m, G) = h[b_lo:b_hi] @ w_hhᵀ
            gemm(False, not wt, <int>m, <int>G, <int>H, <real>1, h + b_lo * H, <int>H, w,
                 ldw, <real>0, hp + b_lo * G, <int>G)
            return
        # hp[b_lo:b_hi, :2H] (m, 2H) = h[b_lo:b_hi] @ w_hh[:2H]ᵀ
        gemm(False, not wt, <int>m, <int>(2 * H), <int>H, <real>1, h + b_lo * H, <int>H, w,
             ldw, <real>0, hp + b_lo * G, <int>G)
        # hp[b_lo:b_hi, 2H:] (m, H) = rh[b_lo:b_hi] @ w_hh[2H:]ᵀ
        gemm(False, not wt, <int>m, <int>H, <int>H, <real>1, rh + b_lo * H, <int>H,
             w + n_off, ldw, <real>0, hp + b_lo * G + 2 * H, <int>G)
        return
    if a.reset_after:
        # dh[b_lo:b_hi] (m, H) += dgs[b_lo:b_hi] (m, G) @ w_hh (G, H)
        gemm(False, False, <int>m, <int>H, <int>G, <real>1, dgs + b_lo * G, <int>G, w_hh,
             <int>H, <real>1, dh + b_lo * H, <int>H)
        return
    # drh[b_lo:b_hi] (m, H) = dgs[b_lo:b_hi, 2H:] (m, H) @ w_hh[2H:] (H, H)
    gemm(False, False, <int>m, <int>H, <int>H, <real>1, dgs + b_lo * G + 2 * H, <int>G,
         w_hh + 2 * H * H, <int>H, <real>0, drh + b_lo * H, <int>H)
    # dh[b_lo:b_hi] (m, H) += dgs[b_lo:b_hi, :2H] (m, 2H) @ w_hh[:2H] (2H, H)
    gemm(False, False, <int>m, <int>H, <int>(2 * H), <real>1, dgs + b_lo * G, <int>G, w_hh,
         <int>H, <real>1, dh + b_lo * H, <int>H)


cdef void _block(int i, void *arg) noexcept nogil:
    """Pool job i: the step's GEMMs for row block i of a.blocks."""
    cdef const _Step *a = <const _Step *>arg
    cdef Py_ssize_t lo = a.B * i // a.blocks, hi = a.B * (i + 1) // a.blocks
    if a.dbl:
        _step_gemms(a, <double *>a.h, lo, hi)
    else:
        _step_gemms(a, <float *>a.h, lo, hi)


cdef void _step(_Step *a, real *h, bint backward) noexcept nogil:
    """One step's GEMMs: all rows at once, or a.blocks row blocks at once on the pool, as a
    serial run (the kernels' row-block steps)."""
    a.backward = backward
    if a.blocks <= 1:
        _step_gemms(a, h, 0, a.B)
    else:
        _serial_run(a.blocks, _block, a)


cdef void _fwd(Py_ssize_t T, Py_ssize_t B, Py_ssize_t I, Py_ssize_t H, bint reset_after,
               Py_ssize_t KF, const real *x, const real *w_ih, const real *w_hh, real *xp,
               real *h, _Step *a) noexcept nogil:
    """_gru._forward's GEMMs: the input projection of each chunk of KF steps (into one
    chunk-sized block, as inference does) before that chunk's per-step GEMMs."""
    cdef Py_ssize_t G = 3 * H, s, s_hi = -1, k
    for s in range(T):
        if s > s_hi:
            s_hi = s + KF - 1 if s + KF - 1 < T - 1 else T - 1
            k = s_hi - s + 1
            # xp[s:s+k] (k·B, G) += x[s:s+k] (k·B, I) @ w_ihᵀ
            gemm(False, True, <int>(k * B), <int>G, <int>I, <real>1, x + s * B * I, <int>I,
                 w_ih, <int>I, <real>1, xp, <int>G)
        _step(a, h, False)


cdef void _bwd(Py_ssize_t T, Py_ssize_t B, Py_ssize_t I, Py_ssize_t H, bint reset_after,
               Py_ssize_t K, const real *x, const real *w_ih, const real *w_hh,
               const real *hprev, const real *da, real *dhn, real *dh, real *dx, real *dw_ih,
               real *dw_hh, _Step *a) noexcept nogil:
    """_gru._backward's GEMMs: per step the recurrent ones; per chunk of K steps (rows
    [s_lo, s_lo + k) of the cache's planes) W_hn h recomputed when it starts (reset_after)
    and the weight-gradient GEMMs over its rows when it ends, accumulating (beta = 1) after
    the first; da and dhn hold one chunk, dhn also standing in for r ⊙ h (seed)."""
    cdef Py_ssize_t G = 3 * H, s, s_lo = 0, k = T, o, rows
    cdef real beta = 0
    for s in range(T - 1, -1, -1):
        if s == T - 1 or s < s_lo:                      # a new chunk: steps [s_lo, s]
            s_lo = s - K + 1 if s - K + 1 > 0 else 0
            k = s - s_lo + 1
            if reset_after:
                # dhn (k·B, H) = hprev[s_lo:s_lo+k] @ w_hh[2H:]ᵀ   (W_hn h, recomputed)
                gemm(False, True, <int>(k * B), <int>H, <int>H, <real>1, hprev + s_lo * B * H,
                     <int>H, w_hh + 2 * H * H, <int>H, <real>0, dhn, <int>H)
        _step(a, dh, True)
        if s != s_lo:
            continue
        o = s_lo * B
        rows = k * B
        # dx (rows, I) = da (rows, G) @ w_ih (G, I)
        gemm(False, False, <int>rows, <int>I, <int>G, <real>1, da, <int>G, w_ih, <int>I,
             <real>0, dx + o * I, <int>I)
        # dw_ih (G, I) += daᵀ (G, rows) @ x (rows, I)
        gemm(True, False, <int>G, <int>I, <int>rows, <real>1, da, <int>G, x + o * I, <int>I,
             beta, dw_ih, <int>I)
        # dw_hh[:2H] (2H, H) += da[:, :2H]ᵀ @ hprev (rows, H)
        gemm(True, False, <int>(2 * H), <int>H, <int>rows, <real>1, da, <int>G,
             hprev + o * H, <int>H, beta, dw_hh, <int>H)
        if reset_after:
            # dw_hh[2H:] (H, H) += dhnᵀ (H, rows) @ hprev (rows, H)
            gemm(True, False, <int>H, <int>H, <int>rows, <real>1, dhn, <int>H, hprev + o * H,
                 <int>H, beta, dw_hh + 2 * H * H, <int>H)
        else:
            # dw_hh[2H:] (H, H) += da[:, 2H:]ᵀ (H, rows) @ (r ⊙ h) (rows, H)
            gemm(True, False, <int>H, <int>H, <int>rows, <real>1, da + 2 * H, <int>G,
                 dhn, <int>H, beta, dw_hh + 2 * H * H, <int>H)
        beta = 1


cdef class Floor:
    """Buffers of one problem size and the kernels' GEMM sequence over them."""
    cdef readonly Py_ssize_t steps, batch, inputs, hidden, chunk, proj
    cdef readonly bint reset_after
    cdef readonly object dtype
    cdef readonly object bufs # name -> array, read-only mapping (a replaced array would
                              #   leave `data` dangling); keeps them alive
    cdef void *data[19]       # the buffers' first elements, in _ORDER
    cdef int blocks           # row blocks per step (_gru.step_blocks)
    cdef bint w_t             # the forward reads w_hh transposed (_gru.transpose_w_hh)

    def __init__(self, Py_ssize_t T, Py_ssize_t B, Py_ssize_t I, Py_ssize_t H,
                 bint reset_after, dtype=np.float32):
        if min(T, B, I, H) < 1:          # the loops index the first element of every buffer
            raise ValueError(f"Floor sizes T, B, I, H must be >= 1, got {(T, B, I, H)}")
        self.steps, self.batch, self.inputs, self.hidden = T, B, I, H
        self.chunk = chunk_steps(T, B, False, True)        # the kernels' backward chunk
        self.proj = proj_steps(T, B, I, False, True)       # and input-projection chunk
        self.blocks = step_blocks(B, H)
        self.w_t = transpose_w_hh(T, H)
        self.reset_after = reset_after
        self.dtype = np.dtype(dtype)
        if self.dtype not in (np.float32, np.float64):
            raise TypeError(f"dtype must be float32 or float64, got {self.dtype}")
        rng = np.random.default_rng(0)
        G = 3 * H
        shapes = dict(x=(T, B, I), w_ih=(G, I), w_hh=(G, H), xp=(self.proj, B, G), h=(B, H),
                      hp=(B, G), rh=(B, H), hprev=(T, B, H),
                      da=(self.chunk, B, G),
                      dhn=(self.chunk, B, H), dgs=(B, G), drh=(B, H), dh=(B, H), dx=(T, B, I),
                      dw_ih=(G, I), dw_hh=(G, H),
                      w_hh_t=(H if self.w_t else 1, G if self.w_t else 1),  # read if w_t
                      pre=(B, G), act=(B, G))          # activations(): in and out
        # Values of order 0.1: no denormals, no overflow, like a real layer's.
        self.bufs = MappingProxyType({k: (0.1 * rng.standard_normal(s)).astype(self.dtype)
                                      for k, s in shapes.items()})
        # Pointers taken once: a call is then the GEMMs and nothing else, no Python per call
        # beyond the method's own (at B = 1 the floor is a few tens of microseconds).
        for i, k in enumerate(_ORDER):
            self.data[i] = <void *><size_t>self.bufs[k].ctypes.data

    def forward(self):
        """The GEMMs of gru_forward (training or not: the same GEMMs)."""
        self._go(False)

    def training(self):
        """The GEMMs of gru_forward followed by gru_backward."""
        self._go(True)

    def activations(self):
        """The forward's sigmoids and tanhs alone: for each of T steps, σ over 2·B·H and
        tanh over B·H pre-activations, with the kernels' own point functions in their best
        copy, on the calling thread. Each step reads one (B, 3H) block that stays in cache,
        with its sigmoid and tanh inputs contiguous (two long loops, the best case for the
        vectoriser), and writes another: a lower bound on a gate pass, not a model of one."""
        cdef Py_ssize_t T = self.steps, n = self.batch * self.hidden, s
        cdef bint dbl = self.dtype == np.float64
        cdef void *pre = self.data[17]
        cdef void *act = self.data[18]
        with nogil:
            for s in range(T):
                if dbl:
                    map_sigmoid(2 * n, <const double *>pre, <double *>act)
                    map_tanh(n, <const double *>pre + 2 * n, <double *>act + 2 * n)
                else:
                    map_sigmoid(2 * n, <const float *>pre, <float *>act)
                    map_tanh(n, <const float *>pre + 2 * n, <float *>act + 2 * n)

    cdef void _go(self, bint backward):
        cdef Py_ssize_t T = self.steps, B = self.batch, I = self.inputs, H = self.hidden
        cdef Py_ssize_t K = self.chunk, KF = self.proj
        cdef bint reset_after = self.reset_after, dbl = self.dtype == np.float64
        cdef int blocks = self.blocks
        cdef bint w_t = self.w_t
        cdef void **p = self.data
        grucy_call_enter()              # interpreter exit waits for it (grucy/_exit.h)
        with nogil:
            if dbl:
                _run(T, B, I, H, reset_after, K, KF, blocks, w_t, backward, <double *>p[0], p)
            else:
                _run(T, B, I, H, reset_after, K, KF, blocks, w_t, backward, <float *>p[0], p)
            grucy_call_leave()


_ORDER = ("x", "w_ih", "w_hh", "xp", "h", "hp", "rh", "hprev", "da", "dhn", "dgs",
          "drh", "dh", "dx", "dw_ih", "dw_hh", "w_hh_t", "pre", "act")


cdef void _run(Py_ssize_t T, Py_ssize_t B, Py_ssize_t I, Py_ssize_t H, bint reset_after,
               Py_ssize_t K, Py_ssize_t KF, int blocks, bint w_t, bint backward, real *x,
               void **p) noexcept nogil:
    """The GEMMs over the buffers p (in _ORDER; x = p[0], typed: it picks the float type)."""
    cdef _Step a
    a.B, a.H, a.blocks, a.reset_after, a.w_hh = B, H, blocks, reset_after, p[2]
    a.w_rec, a.w_rec_t = (p[16], True) if w_t else (p[2], False)
    a.dbl = real is double
    a.h, a.hp, a.rh, a.dgs, a.drh, a.dh = p[4], p[5], p[6], p[10], p[11], p[12]
    _fwd(T, B, I, H, reset_after, KF, x, <real *>p[1], <real *>p[2], <real *>p[3],
         <real *>p[4], &a)
    if backward:
        _bwd(T, B, I, H, reset_after, K, x, <real *>p[1], <real *>p[2], <real *>p[7],
             <real *>p[8], <real *>p[9], <real *>p[12], <real *>p[13], <real *>p[14],
             <real *>p[15], &a)
