# cython: language_level=3
"""GRU forward and backpropagation through time: typed loops and BLAS, GIL released.

Notation (README, "The maths"; the same names and numbers as grucy/reference.py)
-----------------------------------------------------------------------
    T, B, I, H   steps, batch rows, input features, hidden units; G = 3H
    s            processing step 0..T-1; row b reads time t = s, or L_b-1-s when reverse
    L_b          lengths[b]; row b is active at step s while s < L_b
    x_t          input row (I,);  h = h_{t-1}: state before the step;  h' = h_t: after it
    xp[t]        x_t W_ihᵀ + b_ih (+ the parts of b_hh that sit outside r ⊙ ·)   (G,)
    hp           h W_hhᵀ for this step (reset_after) or its r|z part and W_hn(r ⊙ h)
    gates[t]     [r | z | n] saved for backward                                    (G,)

    (1) r  = σ(W_ir x + b_ir + W_hr h + b_hr)
    (2) z  = σ(W_iz x + b_iz + W_hz h + b_hz)
    (3) n  = tanh(W_in x + b_in + W_hn (r ⊙ h) + b_hn)       reset_after=False (seed)
        n  = tanh(W_in x + b_in + r ⊙ (W_hn h + b_hn))       reset_after=True
    (4) h' = (1 − z) ⊙ h + z ⊙ n

Backward undoes (4), (3), (2), (1) in that order for each step, last step first; da_* are
gradients with respect to the pre-activations, so the weight gradients are GEMMs over many
(t, b) rows at once: dW_ih = dAᵀ X, dW_hh = dAᵀ Hprev (n block: see below), taken per
chunk of steps (see the notes).

Layers (scikit-learn's layout): the gate passes over the rows of one step (C, in
grucy/_gates.h, declared in grucy/_math.pxd), typed loops that run entirely inside
`with nogil:` (`_forward`, `_backward`), and `def` entry points that only allocate.
Validation lives one level up, in grucy/kernels.py; the checks here are backward's of the
cache, which is cheapest in C, and Cell.step's, which run on every streamed step. Every
buffer is allocated before a loop starts; no time loop allocates.

Performance notes (issue 5, measured with benchmarks/run.py)
-------------------------------------------------------------
- The gate passes are branch-free C with `restrict` pointers, vectorised, each compiled
  three times (baseline, AVX2+FMA, AVX-512; picked at import: grucy/_gates.h); sigmoid/tanh
  are polynomial point functions (libm calls made the gate math cost several times the
  GEMMs).
  Without padding one call covers all B rows of a step; copies (out, dgs) happen
  inside the passes. The time loops use raw pointers, not memoryview indexing.
- Training writes the input projection straight into the cache's `gates` buffer and the
  gate pass turns it into [r | z | n] in place: no (T, B, 3H) scratch in a training forward.
- The cache's only plane of its own is gates. The state before each step is out shifted
  by one step (h0 before the first), so backward reads it from out and h0 (the caller's
  out is referenced, like x: a chunk of it is used in place, or gathered when it starts
  at h0 or rows are padded); reset_after's W_hn h + b_hn is recomputed in backward with
  one GEMM per chunk, the seed variant's r ⊙ h from r and that state. Each (T, B, H) plane
  the cache stored was a fifth more memory than the recomputation costs time.
- Backward keeps dA for a chunk of CHUNK_ROWS // B steps, not all T, and runs the
  weight-gradient GEMMs per chunk with beta = 1 (the textbook way is one GEMM each after
  the loop; a (T, B, 3H) dA was the largest allocation of a training step, and 128-row
  GEMMs run at about the same rate).
- A forward of 32 steps or more (H <= 512) multiplies by a transposed copy of w_hh made
  per call: OpenBLAS packs an untransposed right operand faster, and small products then
  take its small-matrix kernel (transpose_w_hh).
- Scratch (inference projections, per-step rows, backward's dA chunk) comes from a
  per-thread workspace that grows and is reused across calls; returned arrays and caches
  are always fresh, so no result ever aliases a later call's buffers.
- With more than one thread, one pool (grucy/_pool.h) runs both OpenBLAS's share of each
  GEMM and the gate passes: a step's rows are split into blocks, one per thread, when each
  block gets at least PAR_MIN_UNITS units (gate_blocks). Before, the passes ran on the caller
  while OpenBLAS's idle worker spun on the other core. Steps up to H = 128 instead run as
  row blocks that each do their own GEMMs and passes, one pool run per step, with OpenBLAS
  held at one thread meanwhile (step_blocks, grucy_pool_run_serial): at those sizes
  OpenBLAS's split of a GEMM gains little or nothing over one thread.
- `Cell` is the streaming entry point: weights bound once, scratch owned, one step
  writes into a caller's array (see its docstring).
"""
import threading

import numpy as np
cimport numpy as cnp
from libc.string cimport memcpy, memset

from grucy._blas cimport (real, gemm, get_num_threads, set_num_threads,
                          openblas_threads_callback,
                          use_threads_callback, grucy_call_enter, grucy_call_leave,
                          grucy_exit_guard)
from grucy._math cimport (after_infer, after_train, seed_rz, seed_n_infer, seed_n_train,
                          back_after, back_seed_nz, back_seed_r, reset_state, colsum,
                          grucy_simd_select, GRUCY_SIMD_AVX512, grucy_pool_init,
                          grucy_pool_reserve, grucy_pool_blas, grucy_pool_runs, grucy_pool_nested,
                          grucy_pool_serial, grucy_pool_taken, grucy_pool_hold,
                          grucy_pool_run, grucy_pool_run_serial,
                          grucy_pool_run_gemms, grucy_pool_threads, grucy_pool_set_threads,
                          grucy_pool_blas_shared, grucy_pool_set_shared_top)
from grucy._checks import BLAS_INT_MAX, refuse_masked

cnp.import_array()


# The gate passes' copies (grucy/_gates.h), by level: the CPU's best runs unless a test asks
SIMD_NAMES = ("baseline (SSE2 on x86-64)", "AVX2+FMA", "AVX-512")


def _set_simd(int most=GRUCY_SIMD_AVX512):
    """Run the gate passes' best copy this CPU has, up to level `most` (an index into
    SIMD_NAMES; the default is the CPU's best); returns the level now in force."""
    return grucy_simd_select(most)


SIMD = _set_simd()


# ---- helpers ------------------------------------------------------------------------------

cdef inline void _copy(Py_ssize_t n, const real *src, real *dst) noexcept nogil:
    memcpy(dst, src, n * sizeof(real))


cdef inline void _fill_rows(real *a, Py_ssize_t rows, Py_ssize_t cols) noexcept nogil:
    """Copy a's first row (cols,) into its other rows: doubling memcpy, log2(rows) calls."""
    cdef Py_ssize_t done = 1, k
    while done < rows:
        k = done if 2 * done <= rows else rows - done
        memcpy(a + done * cols, a, k * cols * sizeof(real))
        done += k


cdef void _transpose(Py_ssize_t rows, Py_ssize_t cols, const real *a, real *t) noexcept nogil:
    """t (cols, rows) := aᵀ for a (rows, cols), in 32 x 32 tiles, so that a tile's reads and
    writes each stay on 32 cache lines (a plain double loop writes a new line of t per
    element)."""
    cdef Py_ssize_t i0, j0, i, j, i1, j1
    for i0 in range(0, rows, 32):
        i1 = i0 + 32 if i0 + 32 < rows else rows
        for j0 in range(0, cols, 32):
            j1 = j0 + 32 if j0 + 32 < cols else cols
            for j in range(j0, j1):
                for i in range(i0, i1):
                    t[j * rows + i] = a[i * cols + j]


cdef inline void _bias_row(Py_ssize_t H, const real *b_ih, const real *b_hh, bint reset_after,
                           real *row) noexcept nogil:
    """The bias every xp row starts from: b_ih + b_hh, except b_hh's n block when r
    multiplies it (reset_after), which the gate pass adds per step instead."""
    cdef Py_ssize_t j
    for j in range(3 * H):
        row[j] = b_ih[j] + b_hh[j]
    if reset_after:
        for j in range(2 * H, 3 * H):
            row[j] = b_ih[j]


cdef inline Py_ssize_t _time(Py_ssize_t s, Py_ssize_t L, bint reverse) noexcept nogil:
    return L - 1 - s if reverse else s


# ---- forward loop -------------------------------------------------------------------------

cdef inline Py_ssize_t _rows(Py_ssize_t s, Py_ssize_t b, Py_ssize_t b_hi, Py_ssize_t T,
                             bint full, const int *lengths, bint reverse,
                             Py_ssize_t *t) noexcept nogil:
    """How many rows from row b (up to b_hi) the gate passes take together at step s, and
    their time t.

    Without padding all rows share one time and form one block; with padding rows go one
    by one, and a row whose sequence has ended (padding: its state is left alone) gives 0.
    """
    if full:
        t[0] = T - 1 - s if reverse else s
        return b_hi - b
    if s >= lengths[b]:
        return 0
    t[0] = _time(s, lengths[b], reverse)
    return 1


ctypedef struct _FwdStep:
    # One step of _forward, for _fwd_rows (pointers are real *, as in _forward's arguments)
    Py_ssize_t s, T, B, H, t_lo
    bint full, reset_after, reverse, training, xp_chunk
    bint dbl                                       # real is double
    int blocks                                     # row blocks on the pool (step_blocks)
    const int *lengths
    const void *w_rec                              # what the recurrent GEMMs read: w_hhᵀ
    bint w_rec_t                                   #   (H, G) if w_rec_t, else w_hh (G, H)
    const void *b_hh
    void *xp
    void *hp
    void *rh
    void *h
    void *out


cdef void _fwd_rows(const _FwdStep *a, real *h, Py_ssize_t b_lo, Py_ssize_t b_hi,
                    int parts) noexcept nogil:
    """Step a.s of _forward for rows [b_lo, b_hi) of the batch: their recurrent GEMMs and
    gate passes (each pass in `parts` row blocks). Rows never mix within a step, so any
    split of the batch computes the same function, but not always the same bits: OpenBLAS's
    products can round differently for a different number of rows (forward outputs in two
    row blocks differed from one block in the last bits here)."""
    cdef Py_ssize_t H = a.H, G = 3 * H, m = b_hi - b_lo, b, n, t, o, x_o
    cdef const real *w = <const real *>a.w_rec
    cdef bint wt = a.w_rec_t
    cdef int ldw = <int>(G if wt else H)
    cdef Py_ssize_t n_off = 2 * H if wt else 2 * H * H       # where w's W_hn block starts
    cdef const real *bhn = <const real *>a.b_hh + 2 * H
    cdef real *xp = <real *>a.xp
    cdef real *hp = <real *>a.hp
    cdef real *rh = <real *>a.rh
    cdef real *out = <real *>a.out
    if a.reset_after:
        # hp[b_lo:b_hi] (m, G) = h[b_lo:b_hi] @ w_hhᵀ
        gemm(False, not wt, <int>m, <int>G, <int>H, <real>1, h + b_lo * H, <int>H, w, ldw,
             <real>0, hp + b_lo * G, <int>G)
    else:
        # hp[b_lo:b_hi, :2H] (m, 2H) = h[b_lo:b_hi] @ w_hh[:2H]ᵀ
        gemm(False, not wt, <int>m, <int>(2 * H), <int>H, <real>1, h + b_lo * H, <int>H, w,
             ldw, <real>0, hp + b_lo * G, <int>G)
    # one block of rows at time t, or row by row (b, n = 1) where padding interferes
    b = b_lo
    while b < b_hi:
        n = _rows(a.s, b, b_hi, a.T, a.full, a.lengths, a.reverse, &t)
        if n == 0:                            # padding: state unchanged
            if not a.reset_after:
                # the next GEMM reads this rh row; its product row is never read, but stale
                # scratch there could be denormals (slow in the GEMM) or NaN: zeros instead
                memset(rh + b * H, 0, H * sizeof(real))
            b += 1
            continue
        o = t * a.B + b                                    # (t, b) row of the (T, B, ·) planes
        x_o = (t - a.t_lo) * a.B + b if a.xp_chunk else o  # and of xp
        if a.reset_after:
            if a.training:
                after_train(parts, n, H, xp + x_o * G, hp + b * G, bhn, h + b * H, out + o * H)
            else:
                after_infer(parts, n, H, xp + x_o * G, hp + b * G, bhn, h + b * H, out + o * H)
        elif a.training:                                   # r|z into the gates rows
            seed_rz(parts, n, H, hp + b * G, xp + x_o * G, h + b * H, rh + b * H)
        else:                                              # r|z into hp's rows
            seed_rz(parts, n, H, xp + x_o * G, hp + b * G, h + b * H, rh + b * H)
        b += n
    if a.reset_after:
        return
    # hp[b_lo:b_hi, 2H:] (m, H) = rh[b_lo:b_hi] @ w_hh[2H:]ᵀ
    gemm(False, not wt, <int>m, <int>H, <int>H, <real>1, rh + b_lo * H, <int>H, w + n_off,
         ldw, <real>0, hp + b_lo * G + 2 * H, <int>G)
    b = b_lo
    while b < b_hi:
        n = _rows(a.s, b, b_hi, a.T, a.full, a.lengths, a.reverse, &t)
        if n == 0:
            b += 1
            continue
        o = t * a.B + b
        x_o = (t - a.t_lo) * a.B + b if a.xp_chunk else o
        if a.training:
            seed_n_train(parts, n, H, xp + x_o * G, hp + b * G, h + b * H, out + o * H)
        else:
            seed_n_infer(parts, n, H, xp + x_o * G, hp + b * G, h + b * H, out + o * H)
        b += n


cdef void _fwd_block(int i, void *arg) noexcept nogil:
    """Pool job i of a forward step split into a.blocks row blocks."""
    cdef const _FwdStep *a = <const _FwdStep *>arg
    cdef Py_ssize_t lo = a.B * i // a.blocks, hi = a.B * (i + 1) // a.blocks
    if a.dbl:
        _fwd_rows(a, <double *>a.h, lo, hi, 1)
    else:
        _fwd_rows(a, <float *>a.h, lo, hi, 1)


cdef void _forward(Py_ssize_t T, Py_ssize_t B, Py_ssize_t I, Py_ssize_t H,
                   const real *x,                  # IN  (T, B, I)
                   const real *w_ih,               # IN  (G, I)
                   const real *w_hh,               # IN  (G, H)
                   const real *b_ih,               # IN  (G,)
                   const real *b_hh,               # IN  (G,)
                   const int *lengths,             # IN  (B,) in [0, T]
                   bint full,                      # IN  every lengths[b] == T
                   bint reset_after, bint reverse,
                   real *h,                        # IN/OUT (B, H): h0 in, h_n out
                   real *out,                      # OUT (T, B, H), zero where padded
                   int parts,                      # row blocks per gate pass (gate_blocks;
                                                   #   a pass over fewer rows uses fewer)
                   int blocks,                     # row blocks per step (step_blocks; > 1:
                                                   #   GEMMs and passes of a block together)
                   Py_ssize_t KF,                  # steps per input-projection chunk
                   bint xp_chunk,                  # xp holds one chunk (KF, B, G), not T steps
                   real *xp,                       # SCRATCH (KF, B, G); the gates (T, B, G)
                                                   #   when training
                   real *hp,                       # SCRATCH (B, G)
                   real *rh,                       # SCRATCH (B, H)
                   real *w_hh_t,                   # SCRATCH (H, G): w_hhᵀ, made here;
                                                   #   NULL: the GEMMs read w_hh (transpose_w_hh)
                   bint training,
                   ) noexcept nogil:
    """Training: xp is the cache's gates buffer and leaves holding [r | z | n] (T, B, G).

    Given w_hh_t, the recurrent GEMMs read w_hh through it, transposed once per call:
    OpenBLAS packs an untransposed right operand faster (see transpose_w_hh).

    Without padding a step's B rows are one block (time t for all of them) and each gate
    pass runs once over the block; with padding it runs row by row. With blocks > 1 each
    step runs as that many row blocks at once on the pool, each doing its rows' GEMMs and
    passes (_fwd_rows); otherwise the GEMMs take all rows (OpenBLAS threads them) and the
    passes run in `parts` blocks.

    The input projection runs in chunks of KF steps, each just before its steps, so that
    the rows the gate passes read are still in cache (and inference's xp is one chunk).
    A chunk is a contiguous range of times [t_lo, t_lo + k); reversed rows of unequal
    lengths break that, and get KF = T."""
    cdef Py_ssize_t G = 3 * H, s, s_hi = -1, k
    cdef real *dst
    cdef _FwdStep a
    a.T, a.B, a.H, a.t_lo = T, B, H, 0
    a.full, a.reset_after, a.reverse, a.training, a.xp_chunk = (full, reset_after, reverse,
                                                                training, xp_chunk)
    a.dbl, a.blocks, a.lengths, a.b_hh = real is double, blocks, lengths, b_hh
    a.xp, a.hp, a.rh, a.h, a.out = xp, hp, rh, h, out
    a.w_rec, a.w_rec_t = w_hh, False
    if w_hh_t != NULL:
        _transpose(G, H, w_hh, w_hh_t)
        a.w_rec, a.w_rec_t = w_hh_t, True

    for s in range(T):
        if s > s_hi:                                       # a new chunk: steps [s, s_hi]
            s_hi = s + KF - 1 if s + KF - 1 < T - 1 else T - 1
            k = s_hi - s + 1
            a.t_lo = T - 1 - s_hi if reverse else s
            dst = xp if xp_chunk else xp + a.t_lo * B * G
            # xp = x @ w_ihᵀ + bias, a chunk's steps in one GEMM accumulating onto the bias
            # rows. The recurrent biases that are not multiplied by r join here, once.
            _bias_row(H, b_ih, b_hh, reset_after, dst)
            _fill_rows(dst, k * B, G)
            # xp[t_lo:t_lo+k] (k·B, G) += x[t_lo:t_lo+k] (k·B, I) @ w_ihᵀ
            gemm(False, True, <int>(k * B), <int>G, <int>I, <real>1, x + a.t_lo * B * I,
                 <int>I, w_ih, <int>I, <real>1, dst, <int>G)
        a.s = s
        if blocks <= 1:
            _fwd_rows(&a, h, 0, B, parts)
        else:
            grucy_pool_run_serial(blocks, _fwd_block, &a)


# ---- backward loop ------------------------------------------------------------------------

cdef void _weight_grads(Py_ssize_t rows, Py_ssize_t I, Py_ssize_t H, bint reset_after,
                        const real *da,            # IN  (rows, G)
                        const real *aux,           # IN  (rows, H) r ⊙ da_n | r ⊙ h (seed)
                        const real *x,             # IN  (rows, I)
                        const real *w_ih,          # IN  (G, I)
                        const real *hprev,         # IN  (rows, H)
                        real beta,                 # 0 for the first chunk, then 1
                        real *dx,                  # OUT (rows, I)
                        real *dw_ih,               # OUT (G, I), accumulated
                        real *dw_hh,               # OUT (G, H), accumulated
                        double *db_ih,             # OUT (G,), accumulated
                        double *db_hh,             # OUT (G,), accumulated (n block)
                        ) noexcept nogil:
    """The GEMMs over a chunk of (t, b) rows; zero rows (padding) contribute nothing."""
    cdef Py_ssize_t G = 3 * H
    # dx (rows, I) = da (rows, G) @ w_ih (G, I)
    gemm(False, False, <int>rows, <int>I, <int>G, <real>1, da, <int>G, w_ih, <int>I,
         <real>0, dx, <int>I)
    # dw_ih (G, I) += daᵀ (G, rows) @ x (rows, I)
    gemm(True, False, <int>G, <int>I, <int>rows, <real>1, da, <int>G, x, <int>I,
         beta, dw_ih, <int>I)
    # dw_hh[:2H] (2H, H) += da[:, :2H]ᵀ @ hprev (rows, H)
    gemm(True, False, <int>(2 * H), <int>H, <int>rows, <real>1, da, <int>G, hprev, <int>H,
         beta, dw_hh, <int>H)
    colsum(rows, G, G, da, db_ih)                  # db_ih (G,) += da summed over rows
    if reset_after:
        # dw_hh[2H:] (H, H) += (r ⊙ da_n)ᵀ (H, rows) @ hprev (rows, H)
        gemm(True, False, <int>H, <int>H, <int>rows, <real>1, aux, <int>H, hprev, <int>H,
             beta, dw_hh + 2 * H * H, <int>H)
        colsum(rows, H, H, aux, db_hh + 2 * H)     # db_hn (H,) += r ⊙ da_n summed
    else:
        # dw_hh[2H:] (H, H) += da[:, 2H:]ᵀ (H, rows) @ (r ⊙ h) (rows, H)
        gemm(True, False, <int>H, <int>H, <int>rows, <real>1, da + 2 * H, <int>G, aux,
             <int>H, beta, dw_hh + 2 * H * H, <int>H)


ctypedef struct _BwdStep:
    # One step of _backward, for _bwd_rows (pointers are real *, as in _backward's)
    Py_ssize_t s, T, B, H, t_lo
    bint full, reset_after, reverse
    bint dbl                                       # real is double
    int blocks                                     # row blocks on the pool (step_blocks)
    const int *lengths
    const void *w_hh
    const void *b_hh
    const void *gates
    const void *dout
    const void *hprev
    void *aux
    void *da
    void *dgs
    void *drh
    void *dh


cdef void _bwd_rows(const _BwdStep *a, real *dh, Py_ssize_t b_lo, Py_ssize_t b_hi,
                    int parts) noexcept nogil:
    """Step a.s of _backward for rows [b_lo, b_hi): their gate passes (each in `parts` row
    blocks) and recurrent GEMMs into dh's rows."""
    cdef Py_ssize_t H = a.H, G = 3 * H, B = a.B, m = b_hi - b_lo, b, n, t, o, c
    cdef const real *w_hh = <const real *>a.w_hh
    cdef const real *bhn = <const real *>a.b_hh + 2 * H
    cdef const real *gates = <const real *>a.gates
    cdef const real *dout = <const real *>a.dout
    cdef const real *hprev = <const real *>a.hprev
    cdef const real *do_
    cdef real *aux = <real *>a.aux
    cdef real *da = <real *>a.da
    cdef real *dgs = <real *>a.dgs
    cdef real *drh = <real *>a.drh
    b = b_lo
    while b < b_hi:
        n = _rows(a.s, b, b_hi, a.T, a.full, a.lengths, a.reverse, &t)
        if n == 0:
            memset(dgs + b * G, 0, G * sizeof(real))   # padding: dh passes through
            b += 1
            continue
        o = t * B + b                            # (t, b) row of the cache's planes
        c = (t - a.t_lo) * B + b                 # and of the chunk's (da, aux, hprev)
        do_ = dout + o * H if dout != NULL else NULL
        if a.reset_after:
            back_after(parts, n, H, gates + o * G, hprev + c * H, bhn, do_, dh + b * H,
                       aux + c * H, da + c * G, dgs + b * G)
        else:
            back_seed_nz(parts, n, H, gates + o * G, hprev + c * H, do_, dh + b * H,
                         da + c * G, dgs + b * G)
        b += n
    if a.reset_after:
        # dh[b_lo:b_hi] (m, H) += dgs[b_lo:b_hi] (m, G) @ w_hh (G, H)
        gemm(False, False, <int>m, <int>H, <int>G, <real>1, dgs + b_lo * G, <int>G, w_hh,
             <int>H, <real>1, dh + b_lo * H, <int>H)
        return
    # drh[b_lo:b_hi] (m, H) = dgs[b_lo:b_hi, 2H:] (m, H) @ w_hh[2H:] (H, H)
    gemm(False, False, <int>m, <int>H, <int>H, <real>1, dgs + b_lo * G + 2 * H, <int>G,
         w_hh + 2 * H * H, <int>H, <real>0, drh + b_lo * H, <int>H)
    b = b_lo
    while b < b_hi:
        n = _rows(a.s, b, b_hi, a.T, a.full, a.lengths, a.reverse, &t)
        if n == 0:
            b += 1
            continue
        o = t * B + b
        c = (t - a.t_lo) * B + b
        back_seed_r(parts, n, H, gates + o * G, hprev + c * H, drh + b * H, dh + b * H,
                    da + c * G, dgs + b * G)
        b += n
    # dh[b_lo:b_hi] (m, H) += dgs[b_lo:b_hi, :2H] (m, 2H) @ w_hh[:2H] (2H, H)
    gemm(False, False, <int>m, <int>H, <int>(2 * H), <real>1, dgs + b_lo * G, <int>G, w_hh,
         <int>H, <real>1, dh + b_lo * H, <int>H)


cdef void _bwd_block(int i, void *arg) noexcept nogil:
    """Pool job i of a backward step split into a.blocks row blocks."""
    cdef const _BwdStep *a = <const _BwdStep *>arg
    cdef Py_ssize_t lo = a.B * i // a.blocks, hi = a.B * (i + 1) // a.blocks
    if a.dbl:
        _bwd_rows(a, <double *>a.dh, lo, hi, 1)
    else:
        _bwd_rows(a, <float *>a.dh, lo, hi, 1)


cdef void _backward(Py_ssize_t T, Py_ssize_t B, Py_ssize_t I, Py_ssize_t H,
                    const real *dout,              # IN  (T, B, H) or NULL
                    real *dh,                      # IN/OUT (B, H): dh_n in, dh0 out
                    const real *x,                 # CACHE (T, B, I)
                    const real *w_ih,              # CACHE (G, I)
                    const real *w_hh,              # CACHE (G, H)
                    const real *b_hh,              # CACHE (G,)
                    const int *lengths,            # CACHE (B,)
                    bint full,                     # every lengths[b] == T
                    bint reset_after, bint reverse,
                    const real *gates,             # CACHE (T, B, G)
                    const real *out,               # CACHE (T, B, H) the forward's out
                    const real *h0,                # CACHE (B, H)
                    int parts,                     # row blocks per gate pass (gate_blocks;
                                                   #   a pass over fewer rows uses fewer)
                    int blocks,                    # row blocks per step (step_blocks)
                    Py_ssize_t K,                  # steps per chunk (T: one chunk)
                    real *hc,                      # SCRATCH (K, B, H) a chunk's hprev, gathered
                    real *da,                      # SCRATCH (K, B, G) dL/d(xp) of a chunk
                    real *aux,                     # SCRATCH (K, B, H) W_hn h -> r ⊙ da_n|r ⊙ h
                    real *dgs,                     # SCRATCH (B, G) this step's GEMM rows
                    real *drh,                     # SCRATCH (B, H)
                    real *dx,                      # OUT (T, B, I)
                    real *dw_ih,                   # OUT (G, I)
                    real *dw_hh,                   # OUT (G, H)
                    double *db_ih,                 # OUT (G,), zero on entry (double:
                    double *db_hh,                 # OUT (G,), zero on entry  see colsum)
                    ) noexcept nogil:
    """BPTT with the weight gradients taken in chunks of K steps.

    dA of K steps at a time lives in the scratch; when a chunk's steps are done its rows go
    through the weight-gradient GEMMs (accumulating) and the scratch is reused. A chunk is a
    contiguous range of times [t_lo, t_lo + k) for every row, which holds unless rows run
    reversed with different lengths; that case (K = T) keeps one chunk indexed by t itself.

    The cache keeps [r | z | n], out and h0. A chunk's hprev (the state before each of its
    steps) comes from out and h0 (_chunk_hprev). reset_after recomputes W_hn h for a chunk
    with one GEMM when the chunk starts (aux), and the gate pass turns it into r ⊙ da_n;
    the seed variant rebuilds r ⊙ h from r and hprev when the chunk ends (aux again).
    """
    cdef Py_ssize_t G = 3 * H, s, o, t_lo = 0, k = T, s_lo = 0
    cdef bint chunked = K < T
    cdef bint first = True
    cdef const real *hprev = NULL                    # (k, B, H) the chunk's, row c
    cdef _BwdStep a
    a.T, a.B, a.H = T, B, H
    a.full, a.reset_after, a.reverse, a.blocks = full, reset_after, reverse, blocks
    a.dbl = real is double
    a.lengths, a.w_hh, a.b_hh, a.gates, a.dout = lengths, w_hh, b_hh, gates, dout
    a.aux, a.da, a.dgs, a.drh, a.dh = aux, da, dgs, drh, dh

    s = T - 1
    while s >= 0:
        if s == T - 1 or s < s_lo:                   # a new chunk: steps [s_lo, s]
            s_lo = s - K + 1 if s - K + 1 > 0 else 0
            k = s - s_lo + 1
            t_lo = (T - 1 - s if reverse else s_lo) if chunked else 0
            if not full:                             # padded rows of dA must read as zero
                memset(da, 0, k * B * G * sizeof(real))
            hprev = _chunk_hprev(k, B, H, T, t_lo, lengths, full, reverse, out, h0, hc)
            if reset_after:
                # aux (k·B, H) = hprev (k·B, H) @ w_hh[2H:]ᵀ   (zero rows where padded)
                gemm(False, True, <int>(k * B), <int>H, <int>H, <real>1, hprev,
                     <int>H, w_hh + 2 * H * H, <int>H, <real>0, aux, <int>H)
        a.s, a.t_lo, a.hprev = s, t_lo, hprev
        if blocks <= 1:
            _bwd_rows(&a, dh, 0, B, parts)
        else:
            grucy_pool_run_serial(blocks, _bwd_block, &a)
        if s == s_lo:                                # the chunk's rows are complete
            o = t_lo * B
            if not reset_after:
                _reset_state(k, B, H, t_lo, lengths, full, gates + o * G, hprev, aux)
            _weight_grads(k * B, I, H, reset_after, da, aux, x + o * I, w_ih, hprev,
                          <real>0 if first else <real>1, dx + o * I, dw_ih, dw_hh, db_ih,
                          db_hh)
            first = False
        s -= 1
    # b_hh's r and z blocks (and with the seed variant its n block) enter like b_ih's
    memcpy(db_hh, db_ih, (2 * H if reset_after else G) * sizeof(double))


cdef const real *_chunk_hprev(Py_ssize_t k, Py_ssize_t B, Py_ssize_t H, Py_ssize_t T,
                              Py_ssize_t t_lo, const int *lengths, bint full, bint reverse,
                              const real *out,     # IN  (T, B, H) the forward's out
                              const real *h0,      # IN  (B, H)
                              real *hc,            # SCRATCH (k, B, H)
                              ) noexcept nogil:
    """hprev of the chunk's times [t_lo, t_lo + k): (k, B, H), the state before each step.

    Forward leaves row b's state after time t in out[t, b], so the state before time t is
    out[t - 1, b] (out[t + 1, b] when reversed), or h0[b] at the row's first step. Without
    padding that is a block of out, used in place, except for the one chunk that holds a
    first step; that chunk, and every chunk of a padded batch, is gathered into hc, with
    zero rows where padded (the W_hn h GEMM and the dW GEMMs run over those rows too).
    """
    cdef Py_ssize_t i, b, t, L, BH = B * H
    cdef const real *src
    if full and not reverse:
        if t_lo >= 1:
            return out + (t_lo - 1) * BH
        _copy(BH, h0, hc)                                      # t = 0 starts from h0
        _copy((k - 1) * BH, out, hc + BH)
        return hc
    if full:
        if t_lo + k <= T - 1:
            return out + (t_lo + 1) * BH
        _copy((k - 1) * BH, out + (t_lo + 1) * BH, hc)
        _copy(BH, h0, hc + (k - 1) * BH)                       # t = T - 1 starts from h0
        return hc
    for i in range(k):
        t = t_lo + i
        for b in range(B):
            L = lengths[b]
            if t >= L:
                memset(hc + (i * B + b) * H, 0, H * sizeof(real))
                continue
            if reverse:
                src = h0 + b * H if t == L - 1 else out + ((t + 1) * B + b) * H
            else:
                src = h0 + b * H if t == 0 else out + ((t - 1) * B + b) * H
            _copy(H, src, hc + (i * B + b) * H)
    return hc


cdef void _reset_state(Py_ssize_t k, Py_ssize_t B, Py_ssize_t H, Py_ssize_t t_lo,
                       const int *lengths, bint full,
                       const real *gates,          # IN  (k, B, G) the chunk's rows
                       const real *hprev,          # IN  (k, B, H)
                       real *rh,                   # OUT (k, B, H) r ⊙ h, zero where padded
                       ) noexcept nogil:
    """r ⊙ h of a chunk's rows. Padded rows are zero, not 0 · r: a padded gates row holds
    whatever the padding of x made of it (NaN, say), and the dW_hn GEMM would spread it."""
    cdef Py_ssize_t i, b, G = 3 * H
    if full:
        reset_state(k * B, H, gates, hprev, rh)
        return
    for i in range(k):
        for b in range(B):
            if t_lo + i < lengths[b]:
                reset_state(1, H, gates + (i * B + b) * G, hprev + (i * B + b) * H,
                            rh + (i * B + b) * H)
            else:
                memset(rh + (i * B + b) * H, 0, H * sizeof(real))


# Rows of dA per backward chunk: big enough that the weight-gradient GEMMs run near full
# speed, small enough that dA stays a fraction of the cache (benchmarks/run.py's memory
# row: the (T, B, 3H) gradient buffer was the largest thing a training step allocated).
CHUNK_ROWS = 128


def chunk_steps(Py_ssize_t T, Py_ssize_t B, bint reverse, bint full):
    """Steps per backward chunk for this problem (T: a single chunk). grucy._floor uses it."""
    if reverse and not full:
        return T
    return max(1, min(T, CHUNK_ROWS // B))


# Rows of the input projection per forward chunk: enough rows for an efficient GEMM, few
# enough that a chunk of xp is still in cache when the gate passes read it. Measured
# (inference, 1 thread, interleaved medians): 5-13% faster at I <= 64, H <= 256; 5-8%
# slower at I = 128, H = 512, where the GEMM does 2I flops per xp element and is compute-
# bound, and re-packing w_ih per chunk costs more than the cache saves. Hence PROJ_MAX_I.
PROJ_ROWS = 256
PROJ_MAX_I = 64


def proj_steps(Py_ssize_t T, Py_ssize_t B, Py_ssize_t I, bint reverse, bint full):
    """Steps per input-projection chunk (T: a single chunk). grucy._floor uses it."""
    if (reverse and not full) or I > PROJ_MAX_I:
        return T
    return max(1, min(T, PROJ_ROWS // B))


# ---- threads ------------------------------------------------------------------------------

# A gate pass is split over the pool only if each block gets at least this many units
# (rows · H). Measured on 2 threads, split against whole, alternating in one process
# (benchmarks/pool_split.py, medians of 15 paired samples, reset_after, ranges over two or
# three runs; a shape that does not split reads 0.96-1.09 here, which is the noise):
# (100, 64, 32, 128) 0.89-0.95, (100, 64, 64, 256) 0.92-0.98, (50, 32, 128, 512) 0.95-0.99;
# (200, 16, 1, 32) in 256-unit blocks 1.20 / 1.22. (100, 32, 8, 64) in 1024-unit blocks
# read 0.95-1.09 (inference) and 0.87-1.00 (training), but the full benchmark run that tried
# 1024 had that shape's 2-thread inference at 1.80x its floor against 1.50x at 2048: not
# clear enough to change, so small steps stay whole until a quieter machine decides.
# (Those runs were on the AMD machine, before row-block steps reached H = 128; steps of at
# most H = 128 and 2048 units now run as blocks, so the passes split only past H = 128.)
PAR_MIN_UNITS = 2048


cpdef bint transpose_w_hh(Py_ssize_t T, Py_ssize_t H) noexcept:
    """Whether a forward of T steps and H units reads w_hh through a transposed copy (H, G)
    made per call (_forward's w_hh_t): from 32 steps on, up to H = 512.

    OpenBLAS packs an untransposed right operand faster, and at B = 8, 16 or 32 a small
    product can then take its small-matrix kernel, which packs nothing: h @ w_hh_t took
    0.68-0.96x the time of h @ w_hhᵀ at the benchmark grid's (B, H) (benchmarks/gemm.py
    --forms, one thread, Xeon with AVX-512). The copy is 3H² strided moves, worth it only
    over many steps: copying for every call made a one-step gru_cell at H = 256 take 220 µs
    instead of 34 (benchmarks/run.py's streaming table), about 1 ns per element copied.
    Shorter calls keep w_hh as it is, as does the backward, whose products read it
    untransposed already. Past H = 512 the copy gained 1-6% (0.94-0.99x at H = 768 and
    1024, gemm.py --forms), and it stays in each thread's workspace: 3H² elements, 200 MB
    at H = 4096 in float32."""
    return T >= 32 and H <= 512


cpdef int gate_blocks(Py_ssize_t B, Py_ssize_t H) noexcept:
    """Row blocks for a problem's per-step gate passes: one per BLAS thread, fewer when
    blocks would be smaller than PAR_MIN_UNITS (1: the calling thread alone)."""
    cdef Py_ssize_t n = grucy_pool_threads()
    if n <= 1:
        return 1
    return <int>max(1, min(n, B, (B * H) // PAR_MIN_UNITS))


# A step runs as row blocks at once on the pool, each block doing its own rows' GEMMs and gate
# passes (one run per step), instead of OpenBLAS splitting each per-step GEMM and the passes
# running after it, when the batch is big enough to split (STEP_MIN_UNITS) and H is at most
# STEP_MAX_H. The run is a serial one (grucy_pool_run_serial): OpenBLAS is held at one thread
# while it lasts, so each block's GEMMs run on its job's thread, however big.
#
# Why blocks: a block needs only its own rows of h, hp and the gates, so nothing crosses
# between cores within a step, and there is one synchronisation per step instead of one per
# GEMM and pass. Why only up to STEP_MAX_H: each block's GEMMs read all of w_hh (3H² values)
# where OpenBLAS's split gives each thread a part of it, and past H = 128 that cost more than
# the blocks saved. `python benchmarks/pool_split.py --split steps` (2 threads, Xeon with
# 2 MiB of L2 per core; medians of 15 paired ratios, blocks / OpenBLAS's split, two runs,
# both variants; the last three shapes are past STEP_MAX_H, blocked there for the test only):
#   (100, 32, 8, 64)     inference 0.91-1.08  training 0.82-0.86
#   (100, 64, 32, 128)   inference 0.84-0.97  training 0.91-1.05
#   (100, 128, 8, 32)    inference 0.61-0.73  training 0.60-0.76
#   (50, 16, 16, 128)    inference 0.68-0.75  training 0.74-0.79
#   (50, 32, 16, 128)    inference 0.59-0.68  training 0.67-0.76
#   (50, 32, 16, 192)    inference 0.83-0.91  training 0.90-0.98
#   (50, 64, 16, 256)    inference 1.05-1.09  training 1.05-1.07
#   (50, 32, 16, 512)    inference 1.21-1.24  training 1.08-1.11
# H = 192 gains a little at B = 32 but not at B = 64 (`--shapes 50,64,16,192`, 11 pairs:
# 0.95-1.00 inference, 1.02-1.05 training), nor H = 256 at B = 16 for reset_after (1.00,
# 1.03), so the limit stays at 128. Before the serial run, blocks were used only where
# OpenBLAS would not split a block's GEMMs anyway (H <= 64 or so); (200, 16, 1, 32), whose
# blocks would get 256 units, read 1.11 in a C prototype on the AMD machine (a run per step
# costs more than it saves): hence the minimum. One block per thread (min(threads, B)) is
# measured at 2 threads only; with many threads a block can be a row or two.
STEP_MIN_UNITS = 2048
STEP_MAX_H = 128


cpdef int step_blocks(Py_ssize_t B, Py_ssize_t H) noexcept:
    """Row blocks for a problem's steps (1: the GEMMs take all rows; see above)."""
    cdef Py_ssize_t n = grucy_pool_threads()
    if n <= 1 or B * H < STEP_MIN_UNITS or H > STEP_MAX_H:
        return 1
    return <int>min(n, B)


def reserve_threads(int n, who="set_num_threads"):
    """Start the pool's workers for n threads (grucy.set_num_threads calls this with the
    count OpenBLAS accepted). The pool lives here, compiled into the kernels' module: one
    instance serves OpenBLAS's callback and the gate passes."""
    if grucy_pool_reserve(n) != 0:
        raise RuntimeError(f"{who}: could not start {n - 1} worker threads")


def set_threads(int n):
    """Set OpenBLAS's thread count between the pool's runs (grucy.set_num_threads)."""
    grucy_pool_set_threads(n)


def threads():
    """The thread count the kernels plan with: OpenBLAS's, which a serial run (row-block
    steps) holds at one thread while it lasts, reported as it was (grucy.get_num_threads)."""
    return grucy_pool_threads()


def serial_run_address():
    """The address of grucy_pool_run_serial, the run that row-block steps use (_floor)."""
    return <size_t>&grucy_pool_run_serial


def blas_callback_address():
    """The address of the pool's OpenBLAS threading callback for grucy's own OpenBLAS
    (grucy_pool_blas: job i in thread slot i)."""
    return <size_t>&grucy_pool_blas


def shared_callback_address(int max_threads):
    """The address of the pool's callback for another OpenBLAS (grucy_pool_blas_shared, for
    grucy.share_threads_with_numpy), whose per-thread arrays hold max_threads slots: its job
    i runs in slot max_threads - 1 - i, clear of that library's server threads
    (grucy/_pool.h says why)."""
    if max_threads < 1:
        raise ValueError(f"max_threads must be >= 1, got {max_threads}")
    grucy_pool_set_shared_top(max_threads - 1)
    return <size_t>&grucy_pool_blas_shared


def pool_runs():
    """How many parallel runs (OpenBLAS calls or split gate passes) the pool has started."""
    return grucy_pool_runs()


def pool_nested_runs():
    """How many of those started inside another run's job (on threads of their own)."""
    return grucy_pool_nested()


def pool_serial_runs():
    """How many runs of row-block steps (OpenBLAS held at one thread) have started."""
    return grucy_pool_serial()


def pool_taken_jobs():
    """How many of grucy's own jobs a caller ran because no worker had started them."""
    return grucy_pool_taken()


def pool_hold(bint on):
    """Tests: workers leave grucy's own jobs to the caller while on (as workers kept off
    their cores by other processes would); OpenBLAS's jobs still run on them."""
    grucy_pool_hold(on)


ctypedef struct _InJob:
    # _matmul_in_a_job's operands, (n, n) each
    int n
    const double *a
    const double *b
    double *c


cdef void _product_job(int i, void *arg) noexcept nogil:
    cdef const _InJob *p = <const _InJob *>arg
    if i == 0:
        gemm(False, False, p.n, p.n, p.n, <double>1, p.a, p.n, p.b, p.n, <double>0, p.c, p.n)


def _matmul_in_a_job(const double[:, ::1] a, const double[:, ::1] b):
    """Test hook: a @ b for square (n, n) float64 operands, computed by job 0 of a two-job
    run on the pool (job 1 does nothing). OpenBLAS splits a big enough product, and so
    starts a run from inside a job (grucy/_pool.h: it must get threads of its own)."""
    cdef Py_ssize_t n = a.shape[0]
    out = np.empty((n, n))
    cdef double[:, ::1] c = out
    cdef _InJob p
    p.n, p.a, p.b, p.c = <int>n, &a[0, 0], &b[0, 0], &c[0, 0]
    grucy_call_enter()
    with nogil:
        grucy_pool_run_gemms(2, _product_job, &p)
        grucy_call_leave()
    return out


cdef int _blas_get_threads() noexcept nogil:
    return get_num_threads()


cdef void _blas_set_threads(int n) noexcept nogil:
    set_num_threads(n)


# One pool for OpenBLAS's parallel GEMMs and the gate passes (grucy/_pool.h explains why).
if grucy_pool_init(_blas_get_threads, _blas_set_threads) != 0:
    raise ImportError("grucy: could not register the thread pool's fork handler")
if grucy_exit_guard() != 0:
    raise ImportError("grucy: could not register the exit and fork handlers (grucy/_exit.h)")
use_threads_callback(<openblas_threads_callback>grucy_pool_blas)
reserve_threads(get_num_threads())


# ---- workspace ----------------------------------------------------------------------------

_local = threading.local()


def _workspace(Py_ssize_t n, dtype):
    """This thread's scratch array of at least n elements of dtype, reused across calls
    (grown when too small). One per thread and dtype, carved into a kernel call's buffers
    by _region: only ever used inside one call (a call never nests another), never returned.
    One array, not one per buffer: each lookup and typed view costs about a microsecond,
    which is a tenth of a small problem's call."""
    pool = getattr(_local, "pool", None)
    if pool is None:
        pool = _local.pool = {}
    buf = pool.get(dtype)
    if buf is None or buf.shape[0] < n:
        buf = pool[dtype] = np.empty(max(n, 1), dtype=dtype)
    return buf


cdef inline Py_ssize_t _region(Py_ssize_t n) noexcept nogil:
    """n elements rounded up to 16, so that each buffer carved from a workspace starts on a
    64-byte cache line (float32; two for float64) when the workspace does."""
    return (n + 15) & ~(<Py_ssize_t>15)


# ---- entry points (called by grucy/kernels.py with validated, contiguous arrays) ----------

def _check_shapes(prefix, checks, suffix=""):
    """Raise ValueError naming the first (name, got, want) whose shapes differ, as
    "<prefix><name> has shape <got>, not <want><suffix>"."""
    for name, got, want in checks:
        if got != want:
            raise ValueError(f"{prefix}{name} has shape {got}, not {want}{suffix}")


cdef bint _full(const int[::1] lengths, Py_ssize_t T, str name) except -1:
    """Whether every row has all T steps (no padding); ValueError naming `name`[b] for a
    length outside [0, T], which the loops would index out of bounds by."""
    cdef Py_ssize_t b
    cdef bint full = True
    for b in range(lengths.shape[0]):
        if lengths[b] < 0 or lengths[b] > T:
            raise ValueError(f"{name}[{b}] = {lengths[b]} lies outside [0, {T}]")
        if lengths[b] != T:
            full = False
    return full


def forward(const real[:, :, ::1] x, const real[:, ::1] h0, const real[:, ::1] w_ih,
            const real[:, ::1] w_hh, const real[::1] b_ih, const real[::1] b_hh,
            const int[::1] lengths, bint reset_after, bint reverse, bint training):
    """Allocate, run the forward loop without the GIL.

    Returns out (T, B, H), h_n (B, H) and, when training, the cache's gates (T, B, G);
    otherwise None.
    """
    cdef Py_ssize_t T = x.shape[0], B = x.shape[1], I = x.shape[2], H = w_hh.shape[1]
    dtype = np.float32 if real is float else np.float64
    # grucy.kernels has checked all of this with friendlier words; checked again here (a few
    # comparisons per call) so that a direct call cannot make the loops read out of bounds
    _check_shapes("forward: ", (
        ("w_hh", (w_hh.shape[0], H), (3 * H, H)), ("w_ih", (w_ih.shape[0], w_ih.shape[1]), (3 * H, I)),
        ("b_ih", (b_ih.shape[0],), (3 * H,)), ("b_hh", (b_hh.shape[0],), (3 * H,)),
        ("h0", (h0.shape[0], h0.shape[1]), (B, H)), ("lengths", (lengths.shape[0],), (B,))))
    if I < 1 or H < 1:
        raise ValueError(f"forward: x has I = {I} features and w_hh H = {H} units, not >= 1")
    cdef bint full = _full(lengths, T, "forward: lengths")      # no padding anywhere
    new = np.empty if full else np.zeros                    # padding must read as zero
    cdef real[:, ::1] h = np.array(h0, dtype=dtype)                 # (B, H) -> h_n
    if T == 0 or B == 0:
        # No step or no row: h_n is h0 (every row has length 0), out and gates are empty.
        # Returned here, before the loop's sizes (proj_steps divides by B) and the pointers
        # to element 0 of each array, which an empty one does not have.
        return (np.zeros((T, B, H), dtype=dtype), np.asarray(h),
                np.empty((T, B, 3 * H), dtype=dtype) if training else None)
    cdef real[:, :, ::1] out = new((T, B, H), dtype=dtype)
    cdef Py_ssize_t KF = proj_steps(T, B, I, reverse, full)
    cdef int parts = gate_blocks(B, H)
    cdef int blocks = step_blocks(B, H)
    cdef real[:, :, ::1] gates
    cdef bint wt = transpose_w_hh(T, H)
    # the workspace: hp (B, G), rh (B, H), w_hh_t (H, G) if wt and, for inference, xp
    # (KF, B, G); training's xp is the gates array it returns
    cdef Py_ssize_t n_hp = _region(B * 3 * H), n_rh = _region(B * H)
    cdef Py_ssize_t n_wt = _region(3 * H * H) if wt else 0
    cdef real[::1] ws = _workspace(n_hp + n_rh + n_wt + (0 if training else KF * B * 3 * H),
                                   dtype)
    cdef real *hp = &ws[0]
    cdef real *rh = hp + n_hp
    cdef real *w_hh_t = rh + n_rh
    cdef real *xp = w_hh_t + n_wt
    if training:
        gates = np.empty((T, B, 3 * H), dtype=dtype)       # becomes the cache's gates
        xp = &gates[0, 0, 0]
    grucy_call_enter()                  # interpreter exit waits for it (grucy/_exit.h)
    with nogil:
        _forward(T, B, I, H, &x[0, 0, 0], &w_ih[0, 0], &w_hh[0, 0], &b_ih[0], &b_hh[0],
                 &lengths[0], full, reset_after, reverse, &h[0, 0], &out[0, 0, 0], parts, blocks,
                 KF, not training, xp, hp, rh, w_hh_t if wt else NULL, training)
        grucy_call_leave()
    return np.asarray(out), np.asarray(h), np.asarray(gates) if training else None


def backward(const real[:, :, ::1] x, const real[:, ::1] w_ih, const real[:, ::1] w_hh,
             const real[::1] b_hh, const int[::1] lengths, bint reset_after, bint reverse,
             const real[:, :, ::1] gates, const real[:, :, ::1] out, const real[:, ::1] h0,
             const real[:, ::1] dh_n, const real[:, :, ::1] dout, bint has_dout):
    """Allocate, run BPTT without the GIL, return (dx, dh0, dw_ih, dw_hh, db_ih, db_hh)."""
    # H from out, which grucy.kernels has checked against h0 (and dout): an edited w_hh is
    # then named as such, not as a w_ih or an x that disagrees with it
    cdef Py_ssize_t T = x.shape[0], B = x.shape[1], I = x.shape[2], H = out.shape[2]
    dtype = np.float32 if real is float else np.float64
    # The loops index by these shapes and lengths: refuse a cache whose fields disagree
    # (edited, or in place) before they read out of bounds.
    if I < 1:
        raise ValueError(f"cache.x has shape {tuple(x.shape)[:3]}: cache must be gru_forward's")
    if H < 1:
        raise ValueError(f"cache.out has shape {tuple(out.shape)[:3]}: cache must be "
                         "gru_forward's")
    _check_shapes("cache.", (
        ("w_ih", (w_ih.shape[0], w_ih.shape[1]), (3 * H, I)),
        ("w_hh", (w_hh.shape[0], w_hh.shape[1]), (3 * H, H)),
        ("b_hh", (b_hh.shape[0],), (3 * H,)), ("lengths", (lengths.shape[0],), (B,)),
        ("gates", (gates.shape[0], gates.shape[1], gates.shape[2]), (T, B, 3 * H)),
        ("out", (out.shape[0], out.shape[1], out.shape[2]), (T, B, H)),
        ("h0", (h0.shape[0], h0.shape[1]), (B, H))), ": cache must be gru_forward's, unedited")
    # grucy.kernels has checked these two (they are the caller's, not the cache's); checked
    # again so that a direct call cannot make the loops read out of bounds
    _check_shapes("backward: ", (("dh_n", (dh_n.shape[0], dh_n.shape[1]), (B, H)),) + (
        (("dout", (dout.shape[0], dout.shape[1], dout.shape[2]), (T, B, H)),) if has_dout else ()))
    if T == 0 or B == 0:
        # Forward ran no step, so none runs back: dh0 = dh_n, every other gradient zero.
        # Returned here, before the checks and loops below take a pointer to element 0 of
        # each array, which an empty one does not have.
        _full(lengths, T, "cache.lengths")
        return (np.zeros((T, B, I), dtype=dtype), np.array(dh_n, dtype=dtype),
                np.zeros((3 * H, I), dtype=dtype), np.zeros((3 * H, H), dtype=dtype),
                np.zeros(3 * H, dtype=dtype), np.zeros(3 * H, dtype=dtype))
    # and aligned: the loops load elements as aligned. gru_forward's arrays always are; an
    # edited cache's (np.frombuffer at an odd offset) may not be, and the typed arguments
    # above do not check it
    for name, addr, size in (
            ("x", <size_t>&x[0, 0, 0], sizeof(real)), ("w_ih", <size_t>&w_ih[0, 0], sizeof(real)),
            ("w_hh", <size_t>&w_hh[0, 0], sizeof(real)), ("b_hh", <size_t>&b_hh[0], sizeof(real)),
            ("lengths", <size_t>&lengths[0], sizeof(int)),
            ("gates", <size_t>&gates[0, 0, 0], sizeof(real)),
            ("out", <size_t>&out[0, 0, 0], sizeof(real)), ("h0", <size_t>&h0[0, 0], sizeof(real))):
        if addr % size:
            raise ValueError(f"cache.{name} is not aligned: cache must be gru_forward's, unedited")
    cdef bint full = _full(lengths, T, "cache.lengths")
    cdef Py_ssize_t K = chunk_steps(T, B, reverse, full)
    cdef int parts = gate_blocks(B, H)
    cdef int blocks = step_blocks(B, H)
    cdef real[:, ::1] dh = np.array(dh_n, dtype=dtype)              # (B, H) -> dh0
    # the workspace: da (K, B, G), aux (K, B, H), hc (K, B, H), dgs (B, G), drh (B, H), and
    # for float32 the bias gradients' double sums, acc (2, G) (colsum says why double)
    cdef Py_ssize_t n_da = _region(K * B * 3 * H), n_aux = _region(K * B * H)
    cdef Py_ssize_t n_dgs = _region(B * 3 * H)
    # (+ 2: room to round the sums' start up to a double's alignment)
    cdef Py_ssize_t n_acc = _region(6 * H * sizeof(double) // sizeof(real) + 2) if real is float else 0
    cdef real[::1] ws = _workspace(n_acc + n_da + 2 * n_aux + n_dgs + B * H, dtype)
    cdef real *da = &ws[0] + n_acc
    cdef real *aux = da + n_da
    cdef real *hc = aux + n_aux
    cdef real *dgs = hc + n_aux
    cdef real *drh = dgs + n_dgs
    cdef real[:, :, ::1] dx = np.empty((T, B, I), dtype=dtype)
    cdef real[:, ::1] dw_ih = np.empty((3 * H, I), dtype=dtype)
    cdef real[:, ::1] dw_hh = np.empty((3 * H, H), dtype=dtype)
    cdef real[::1] db_ih = np.zeros(3 * H, dtype=dtype)
    cdef real[::1] db_hh = np.zeros(3 * H, dtype=dtype)
    cdef double *acc_ih                 # (G,) the sums: db's own memory in float64
    cdef double *acc_hh                 # (G,)
    cdef Py_ssize_t j
    cdef const real *dout_p = &dout[0, 0, 0] if has_dout else NULL
    grucy_call_enter()                  # interpreter exit waits for it (grucy/_exit.h)
    with nogil:
        if real is double:
            acc_ih, acc_hh = &db_ih[0], &db_hh[0]
        else:
            # ws[0] is a float's (4-byte) alignment: rounded up to a double's
            acc_ih = <double *>((<size_t>&ws[0] + 7) & ~(<size_t>7))
            acc_hh = acc_ih + 3 * H
            memset(acc_ih, 0, 6 * H * sizeof(double))
        _backward(T, B, I, H, dout_p, &dh[0, 0], &x[0, 0, 0], &w_ih[0, 0], &w_hh[0, 0],
                  &b_hh[0], &lengths[0], full, reset_after, reverse, &gates[0, 0, 0],
                  &out[0, 0, 0], &h0[0, 0], parts, blocks, K, hc, da, aux, dgs, drh,
                  &dx[0, 0, 0], &dw_ih[0, 0], &dw_hh[0, 0], acc_ih, acc_hh)
        if real is float:
            for j in range(3 * H):
                db_ih[j] = <float>acc_ih[j]
                db_hh[j] = <float>acc_hh[j]
        grucy_call_leave()
    return (np.asarray(dx), np.asarray(dh), np.asarray(dw_ih), np.asarray(dw_hh),
            np.asarray(db_ih), np.asarray(db_hh))


# ---- streaming: one step, weights bound once ----------------------------------------------

cdef void _step(Py_ssize_t B, Py_ssize_t I, Py_ssize_t H, bint reset_after,
                const real *x,          # IN  (B, I)
                const real *w_ih,       # IN  (G, I)
                const real *w_hh,       # IN  (G, H)
                const real *b_ih,       # IN  (G,)
                const real *b_hh,       # IN  (G,)
                const real *h,          # IN  (B, H)
                real *out,              # OUT (B, H); may be h
                real *xp,               # SCRATCH (B, G)
                real *hp,               # SCRATCH (B, G)
                real *rh,               # SCRATCH (B, H)
                real *hs,               # SCRATCH (B, H) the state being updated
                ) noexcept nogil:
    cdef Py_ssize_t G = 3 * H, b
    _bias_row(H, b_ih, b_hh, reset_after, xp)                  # read every step: the Cell
    _fill_rows(xp, B, G)                                       # sees in-place updates
    _copy(B * H, h, hs)                                        # out may be h: read h first
    # xp (B, G) += x (B, I) @ w_ihᵀ
    gemm(False, True, <int>B, <int>G, <int>I, <real>1, x, <int>I, w_ih, <int>I,
         <real>1, xp, <int>G)
    if reset_after:
        # hp (B, G) = h @ w_hhᵀ
        gemm(False, True, <int>B, <int>G, <int>H, <real>1, hs, <int>H, w_hh, <int>H,
             <real>0, hp, <int>G)
        after_infer(1, B, H, xp, hp, b_hh + 2 * H, hs, out)
    else:
        # hp[:, :2H] (B, 2H) = h @ w_hh[:2H]ᵀ
        gemm(False, True, <int>B, <int>(2 * H), <int>H, <real>1, hs, <int>H, w_hh, <int>H,
             <real>0, hp, <int>G)
        seed_rz(1, B, H, xp, hp, hs, rh)
        # hp[:, 2H:] (B, H) = rh @ w_hh[2H:]ᵀ
        gemm(False, True, <int>B, <int>H, <int>H, <real>1, rh, <int>H, w_hh + 2 * H * H,
             <int>H, <real>0, hp + 2 * H, <int>G)
        seed_n_infer(1, B, H, xp, hp, hs, out)


cdef class Cell:
    """Cell(w_ih, w_hh, b_ih, b_hh, *, reset_after=False)
--

One GRU step at a time with the weights bound once: grucy's streaming entry point.

        cell = grucy.kernels.Cell(w_ih, w_hh, b_ih, b_hh, reset_after=False)
        cell.step(x_t, h, out)        # out (B, H) := the state after x_t (B, I) from h (B, H)

    The same maths and weight layout as gru_cell, float32 or float64 (the weights' dtype).
    `step` allocates nothing (scratch is the Cell's own, grown to the largest B seen) and
    `out` may be `h` itself for an in-place update; it returns None. It checks types,
    shapes and contiguity cheaply and raises TypeError/ValueError naming the argument, as
    gru_cell does, with one difference: x_t, h, out and the weights must be numpy arrays (it
    writes into out and converts nothing; gru_cell also converts lists). B = 0 rows is allowed, as in
    gru_cell: an empty step. Non-contiguous or misaligned x_t/h are copied. The Cell keeps
    references to the weight arrays, so updating them in place (an optimizer step) is seen
    by the next step; replacing them needs a new Cell.
    Not for concurrent use from several threads (one Cell per stream): a step entered while
    another thread's is running on the same Cell raises RuntimeError.
    """
    cdef readonly cnp.ndarray w_ih, w_hh, b_ih, b_hh
    cdef readonly object dtype
    cdef readonly bint reset_after
    cdef readonly Py_ssize_t input_size, hidden_size
    cdef cnp.ndarray _scratch
    cdef int _typenum
    cdef bint _busy                                 # inside step (see step)

    def __init__(self, w_ih, w_hh, b_ih, b_hh, *, reset_after=False):
        from grucy._checks import check_bool
        from grucy.kernels import _check_params
        # all checked before any is set: step trusts that the sizes, dtype and weights agree,
        # and a refused __init__ called again on a live Cell left new weights under old sizes
        # (step then read past them)
        weights = _check_params(w_ih, w_hh, b_ih, b_hh)
        reset_after = check_bool(reset_after, "reset_after")
        self.w_ih, self.w_hh, self.b_ih, self.b_hh = weights
        self.reset_after = reset_after
        self.dtype = self.w_hh.dtype
        self._typenum = cnp.NPY_FLOAT32 if self.dtype == np.float32 else cnp.NPY_FLOAT64
        self.hidden_size = self.w_hh.shape[1]
        self.input_size = self.w_ih.shape[1]
        self._scratch = np.empty(0, self.dtype)

    def __reduce__(self):
        # Through __init__, which checks the weights and derives every size from them. The
        # pickle Cython writes for a cdef class restores sizes and scratch capacity as stored,
        # and a crafted one could make step read or write past its buffers.
        return (_cell, (self.w_ih, self.w_hh, self.b_ih, self.b_hh, self.reset_after))

    cdef _array(self, name, a, Py_ssize_t B, Py_ssize_t n, bint write, int typenum, dtype):
        """a checked as a (B, n) ndarray of the weights' dtype (typenum, dtype: step's own
        copies of the Cell's); `out`, written in place, must be C-contiguous and aligned too
        (an input that is not is copied by step, afterwards)."""
        cdef cnp.ndarray arr
        if not cnp.PyArray_Check(a):
            raise self._not_an_array(name, a, B, n)
        if not cnp.PyArray_CheckExact(a):
            refuse_masked(a, name)      # its data would be read without its mask
        arr = <cnp.ndarray>a
        # the type number leaves out byte order: a '>f8' array is NPY_DOUBLE too, and the
        # loops would read its bytes as native doubles
        if cnp.PyArray_TYPE(arr) != typenum or not cnp.PyArray_ISNOTSWAPPED(arr):
            raise TypeError(f"{name} must have dtype {dtype} (the weights'), got {a.dtype}")
        if cnp.PyArray_NDIM(arr) != 2 or arr.shape[0] != B or arr.shape[1] != n:
            raise ValueError(f"{name} must have shape ({B}, {n}), got {a.shape}")
        # aligned too: the loops load elements as aligned (an array at an odd byte offset, from
        # np.frombuffer or a memmap, is undefined behaviour there); ascontiguousarray keeps one
        if write and not (cnp.PyArray_IS_C_CONTIGUOUS(arr) and cnp.PyArray_ISWRITEABLE(arr)
                          and cnp.PyArray_ISALIGNED(arr)):
            raise ValueError(f"{name} must be C-contiguous, aligned and writeable")
        return arr

    cdef _not_an_array(self, name, a, B, n):
        """The TypeError for a list (or anything but an ndarray) given to step: what it must
        be instead, and why step does not convert it as gru_cell does."""
        return TypeError(f"{name} must be a ({B}, {n}) numpy array of {self.dtype}, got "
                         f"{type(a).__name__}: Cell.step converts nothing, it writes into out "
                         "without allocating (grucy.gru_cell converts lists)")

    def step(self, x_t, h, out):
        """out (B, H) := one GRU step from state h (B, H) on input x_t (B, I). Returns None."""
        cdef cnp.ndarray xa, ha, oa, sa
        # The weights, their sizes and dtype, taken once, together: the copies below can
        # release the GIL, and __init__ called meanwhile from another thread swapped in new
        # weights under the sizes checked here (step then read past them: a crash). A step
        # runs on the weights it started with.
        cdef cnp.ndarray w_ih = self.w_ih, w_hh = self.w_hh, b_ih = self.b_ih, b_hh = self.b_hh
        cdef Py_ssize_t I = self.input_size, H = self.hidden_size, G = 3 * H
        cdef int typenum = self._typenum
        cdef bint reset_after = self.reset_after
        dtype = self.dtype
        if w_hh is None:
            raise TypeError("this Cell was not initialised: make one with Cell(w_ih, w_hh, "
                            "b_ih, b_hh)")
        if not cnp.PyArray_Check(x_t):
            raise self._not_an_array("x_t", x_t, "B", I)
        if cnp.PyArray_NDIM(<cnp.ndarray>x_t) != 2:
            raise ValueError(f"x_t must be 2-D (B, {I}), got shape {x_t.shape}")
        cdef Py_ssize_t B = (<cnp.ndarray>x_t).shape[0]
        if B > BLAS_INT_MAX:            # before any copy; the GEMMs take B as a C int
            raise ValueError(f"x_t has {B} rows; grucy's BLAS takes up to {BLAS_INT_MAX} "
                             f"(32-bit ints): step fewer rows at a time")
        xa = self._array("x_t", x_t, B, I, False, typenum, dtype)
        ha = self._array("h", h, B, H, False, typenum, dtype)
        oa = self._array("out", out, B, H, True, typenum, dtype)
        # copied only now that all three agree: a huge zero-strided x_t or h (np.broadcast_to)
        # with a wrong out was copied first, gigabytes before the error
        if not (cnp.PyArray_IS_C_CONTIGUOUS(xa) and cnp.PyArray_ISALIGNED(xa)):
            xa = np.array(xa, order="C")
        if not (cnp.PyArray_IS_C_CONTIGUOUS(ha) and cnp.PyArray_ISALIGNED(ha)):
            ha = np.array(ha, order="C")
        if B == 0:                      # an empty step: the GEMMs would take no rows
            return
        # the scratch's own size and dtype decide, not the Cell's fields: __init__ from another
        # thread may have replaced it meanwhile
        sa = self._scratch
        if cnp.PyArray_SIZE(sa) < B * (2 * G + 2 * H) or cnp.PyArray_TYPE(sa) != typenum:
            sa = np.empty(B * (2 * G + 2 * H), dtype)
            self._scratch = sa
        # A large step releases the GIL, and a second thread's step on this Cell then wrote
        # the same scratch: results off by up to 0.8, silently. Checked and set under the GIL.
        if self._busy:
            raise RuntimeError("Cell.step was called from two threads at once: its scratch is "
                               "the Cell's own; use one Cell per thread (they can share weights)")
        self._busy = True
        try:
            if typenum == cnp.NPY_FLOAT32:
                _step_call[float](B, I, H, reset_after, xa, w_ih, w_hh, b_ih, b_hh, ha, oa, sa)
            else:
                _step_call[double](B, I, H, reset_after, xa, w_ih, w_hh, b_ih, b_hh, ha, oa, sa)
        finally:
            self._busy = False


def _cell(w_ih, w_hh, b_ih, b_hh, reset_after):
    """Cell's unpickler: a new Cell from the pickled weights (Cell.__reduce__)."""
    return Cell(w_ih, w_hh, b_ih, b_hh, reset_after=reset_after)


cdef inline void _step_call(Py_ssize_t B, Py_ssize_t I, Py_ssize_t H, bint reset_after,
                            cnp.ndarray x, cnp.ndarray w_ih, cnp.ndarray w_hh,
                            cnp.ndarray b_ih, cnp.ndarray b_hh, cnp.ndarray h,
                            cnp.ndarray out, cnp.ndarray scratch, real dummy=0):
    cdef real *s = <real *>cnp.PyArray_DATA(scratch)
    cdef Py_ssize_t G = 3 * H
    cdef bint big = B * G * (I + H) > 200000       # worth releasing the GIL for
    if big:
        grucy_call_enter()              # interpreter exit waits for it (grucy/_exit.h)
        with nogil:
            _step(B, I, H, reset_after, <real *>cnp.PyArray_DATA(x),
                  <real *>cnp.PyArray_DATA(w_ih), <real *>cnp.PyArray_DATA(w_hh),
                  <real *>cnp.PyArray_DATA(b_ih), <real *>cnp.PyArray_DATA(b_hh),
                  <real *>cnp.PyArray_DATA(h), <real *>cnp.PyArray_DATA(out),
                  s, s + B * G, s + 2 * B * G, s + 2 * B * G + B * H)
            grucy_call_leave()
    else:
        _step(B, I, H, reset_after, <real *>cnp.PyArray_DATA(x),
              <real *>cnp.PyArray_DATA(w_ih), <real *>cnp.PyArray_DATA(w_hh),
              <real *>cnp.PyArray_DATA(b_ih), <real *>cnp.PyArray_DATA(b_hh),
              <real *>cnp.PyArray_DATA(h), <real *>cnp.PyArray_DATA(out),
              s, s + B * G, s + 2 * B * G, s + 2 * B * G + B * H)

