# cython: language_level=3
"""GRU forward and backpropagation through time: typed loops and BLAS, GIL released.

Notation (DESIGN §1; the same names and numbers as grucy/reference.py)
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
gradients with respect to the pre-activations, so the weight gradients are whole-sequence
GEMMs after the loop: dW_ih = dAᵀ X, dW_hh = dAᵀ Hprev (n block: see below).

Layers (scikit-learn's layout): per-row point functions (`_row_*`), typed loops that run
entirely inside `with nogil:` (`_forward`, `_backward`), and `def` entry points that only
allocate. Validation lives one level up, in grucy/kernels.py; nothing here checks shapes.
Every buffer is allocated before a loop starts; no time loop allocates.

Performance notes (issue 5, measured with benchmarks/run.py)
-------------------------------------------------------------
- The gate loops are branch-free and vectorised: sigmoid/tanh are grucy._math's polynomial
  point functions (libm calls made the gate math cost several times the GEMMs), training
  and inference have their own loops (no per-element `if training`), and every row loop
  writes to at most three arrays so that gcc's runtime alias checks stay within its limit
  (copies such as out = h and hprev = h are separate loops).
- Training writes the input projection straight into the cache's `gates` buffer and the
  gate pass turns it into [r | z | n] in place: no (T, B, 3H) scratch in a training forward.
- Scratch (inference projections, per-step rows, backward's dA) comes from a per-thread
  workspace that grows and is reused across calls; returned arrays and caches are always
  fresh, so no result ever aliases a later call's buffers.
- `Cell` is the streaming entry point: weights bound once, scratch owned, one step
  writes into a caller's array (see its docstring).
"""
import threading

import numpy as np
cimport numpy as cnp
from libc.string cimport memcpy, memset

from grucy._blas cimport real, gemm
from grucy._math cimport sigmoid, tanh_

cnp.import_array()


# ---- per-row point loops (forward) --------------------------------------------------------
# Each writes at most three arrays (see the header); pointers: a row of G = 3H or H values.

cdef inline void _copy(Py_ssize_t n, const real *src, real *dst) noexcept nogil:
    memcpy(dst, src, n * sizeof(real))


cdef inline void _after_infer(Py_ssize_t H, const real *a, const real *hp, const real *b_hn,
                              real *h, real *out) noexcept nogil:
    """reset_after=True, inference: (1)-(4) for one row; a = xp row, hp = W_hh h (G,)."""
    cdef Py_ssize_t j
    cdef real r, z, n, hj
    for j in range(H):
        r = sigmoid(a[j] + hp[j])                              # (1)
        z = sigmoid(a[H + j] + hp[H + j])                      # (2)
        n = tanh_(a[2 * H + j] + r * (hp[2 * H + j] + b_hn[j]))  # (3)
        hj = h[j] + z * (n - h[j])                             # (4) (1-z)h + zn
        h[j] = hj
        out[j] = hj


cdef inline void _after_train(Py_ssize_t H, real *g, const real *hp, const real *b_hn,
                              real *h, real *hn) noexcept nogil:
    """reset_after=True, training: g holds the xp row on entry and [r | z | n] on exit;
    hn keeps W_hn h + b_hn for backward."""
    cdef Py_ssize_t j
    cdef real r, z, n, q
    for j in range(H):
        r = sigmoid(g[j] + hp[j])                              # (1)
        z = sigmoid(g[H + j] + hp[H + j])                      # (2)
        q = hp[2 * H + j] + b_hn[j]
        n = tanh_(g[2 * H + j] + r * q)                        # (3)
        g[j] = r
        g[H + j] = z
        g[2 * H + j] = n
        hn[j] = q
        h[j] = h[j] + z * (n - h[j])                           # (4)


cdef inline void _seed_rz(Py_ssize_t H, const real *a, real *rz, const real *h,
                          real *rh) noexcept nogil:
    """reset_after=False, first half: rz (2H,) := σ(a + rz) in place [(1), (2)]; rh = r ⊙ h.
    Inference: a = xp row, rz = hp row; training: a = hp row, rz = the gates row."""
    cdef Py_ssize_t j
    for j in range(2 * H):
        rz[j] = sigmoid(a[j] + rz[j])                          # (1), (2)
    for j in range(H):
        rh[j] = rz[j] * h[j]


cdef inline void _seed_n_infer(Py_ssize_t H, const real *a, const real *hp, real *h,
                               real *out) noexcept nogil:
    """reset_after=False, inference, second half: (3), (4); hp = [r | z | W_hn(r ⊙ h)]."""
    cdef Py_ssize_t j
    cdef real z, n, hj
    for j in range(H):
        z = hp[H + j]
        n = tanh_(a[2 * H + j] + hp[2 * H + j])                # (3)
        hj = h[j] + z * (n - h[j])                             # (4)
        h[j] = hj
        out[j] = hj


cdef inline void _seed_n_train(Py_ssize_t H, real *g, const real *hpn, real *h) noexcept nogil:
    """reset_after=False, training, second half: g = [r | z | xp_n] -> [r | z | n]; (3), (4)."""
    cdef Py_ssize_t j
    cdef real z, n
    for j in range(H):
        z = g[H + j]
        n = tanh_(g[2 * H + j] + hpn[j])                       # (3)
        g[2 * H + j] = n
        h[j] = h[j] + z * (n - h[j])                           # (4)


cdef inline Py_ssize_t _time(Py_ssize_t s, Py_ssize_t L, bint reverse) noexcept nogil:
    return L - 1 - s if reverse else s


# ---- forward loop -------------------------------------------------------------------------

cdef void _forward(const real[:, :, ::1] x,        # IN  (T, B, I)
                   const real[:, ::1] w_ih,        # IN  (G, I)
                   const real[:, ::1] w_hh,        # IN  (G, H)
                   const real[::1] b_ih,           # IN  (G,)
                   const real[::1] b_hh,           # IN  (G,)
                   const int[::1] lengths,         # IN  (B,) in [0, T]
                   bint reset_after, bint reverse,
                   real[:, ::1] h,                 # IN/OUT (B, H): h0 in, h_n out
                   real[:, :, ::1] out,            # OUT (T, B, H), zero where padded
                   real[:, :, ::1] xp,             # SCRATCH (T, B, G); the gates when training
                   real[:, ::1] hp,                # SCRATCH (B, G)
                   real[:, ::1] rh,                # SCRATCH (B, H)
                   bint training,
                   real[:, :, ::1] hprev,          # CACHE (T, B, H) h before each step
                   real[:, :, ::1] extra,          # CACHE (T, B, H) W_hn h + b_hn | r ⊙ h
                   ) noexcept nogil:
    """Training: xp is the cache's gates buffer and leaves holding [r | z | n] (T, B, G)."""
    cdef Py_ssize_t T = x.shape[0], B = x.shape[1], I = x.shape[2], H = h.shape[1]
    cdef Py_ssize_t G = 3 * H, s, t, b, j, k
    cdef real *row

    # xp = x @ w_ihᵀ + bias, all steps in one GEMM accumulating onto the bias rows. The
    # recurrent biases that are not multiplied by r join here, once, instead of every step.
    row = &hp[0, 0]                                        # hp's first row: the bias row
    for j in range(G):
        row[j] = b_ih[j] + b_hh[j]
    if reset_after:
        for j in range(2 * H, G):
            row[j] = b_ih[j]
    for k in range(T * B):
        _copy(G, row, &xp[0, 0, 0] + k * G)
    # xp (T·B, G) += x (T·B, I) @ w_ihᵀ
    gemm(False, True, <int>(T * B), <int>G, <int>I, <real>1, &x[0, 0, 0], <int>I,
         &w_ih[0, 0], <int>I, <real>1, &xp[0, 0, 0], <int>G)

    for s in range(T):
        if reset_after:
            # hp (B, G) = h @ w_hhᵀ
            gemm(False, True, <int>B, <int>G, <int>H, <real>1, &h[0, 0], <int>H,
                 &w_hh[0, 0], <int>H, <real>0, &hp[0, 0], <int>G)
            for b in range(B):
                if s >= lengths[b]:
                    continue                               # padding: state unchanged
                t = _time(s, lengths[b], reverse)
                if training:
                    _copy(H, &h[b, 0], &hprev[t, b, 0])
                    _after_train(H, &xp[t, b, 0], &hp[b, 0], &b_hh[2 * H], &h[b, 0],
                                 &extra[t, b, 0])
                    _copy(H, &h[b, 0], &out[t, b, 0])
                else:
                    _after_infer(H, &xp[t, b, 0], &hp[b, 0], &b_hh[2 * H], &h[b, 0],
                                 &out[t, b, 0])
        else:
            # hp[:, :2H] (B, 2H) = h @ w_hh[:2H]ᵀ
            gemm(False, True, <int>B, <int>(2 * H), <int>H, <real>1, &h[0, 0], <int>H,
                 &w_hh[0, 0], <int>H, <real>0, &hp[0, 0], <int>G)
            for b in range(B):
                if s >= lengths[b]:
                    memset(&rh[b, 0], 0, H * sizeof(real))   # keeps the next GEMM finite
                    continue
                t = _time(s, lengths[b], reverse)
                if training:                                 # r|z into the gates row
                    _seed_rz(H, &hp[b, 0], &xp[t, b, 0], &h[b, 0], &rh[b, 0])
                else:                                        # r|z into hp's row
                    _seed_rz(H, &xp[t, b, 0], &hp[b, 0], &h[b, 0], &rh[b, 0])
            # hp[:, 2H:] (B, H) = rh @ w_hh[2H:]ᵀ
            gemm(False, True, <int>B, <int>H, <int>H, <real>1, &rh[0, 0], <int>H,
                 &w_hh[2 * H, 0], <int>H, <real>0, &hp[0, 2 * H], <int>G)
            for b in range(B):
                if s >= lengths[b]:
                    continue
                t = _time(s, lengths[b], reverse)
                if training:
                    _copy(H, &h[b, 0], &hprev[t, b, 0])
                    _copy(H, &rh[b, 0], &extra[t, b, 0])
                    _seed_n_train(H, &xp[t, b, 0], &hp[b, 2 * H], &h[b, 0])
                    _copy(H, &h[b, 0], &out[t, b, 0])
                else:
                    _seed_n_infer(H, &xp[t, b, 0], &hp[b, 0], &h[b, 0], &out[t, b, 0])


# ---- per-row point loops (backward) -------------------------------------------------------

cdef inline void _back_after(Py_ssize_t H, const real *g, const real *hprev, const real *hn,
                             real *dh, real *da) noexcept nogil:
    """reset_after=True, one row: undo (4), (3), (2), (1).

    dh (H,) comes in as dL/dh' (dout already added) and leaves as the direct part of dL/dh;
    the part through W_hh is added by the step's GEMM. da (G,) = [da_r | da_z | da_n].
    """
    cdef Py_ssize_t j
    cdef real r, z, n, d, dan
    for j in range(H):
        r = g[j]
        z = g[H + j]
        n = g[2 * H + j]
        d = dh[j]
        dan = d * z * (1 - n * n)                      # (4) h' = (1-z)h + zn, (3) tanh
        da[2 * H + j] = dan
        da[H + j] = d * (n - hprev[j]) * z * (1 - z)   # (4), (2) z = σ(a_z)
        da[j] = dan * hn[j] * r * (1 - r)              # (3) through r, (1) r = σ(a_r)
        dh[j] = d - d * z


cdef inline void _rn_da(Py_ssize_t H, const real *g, const real *da, real *dhn,
                        real *dgs) noexcept nogil:
    """reset_after=True: dhn = r ⊙ da_n (for dW_hn, db_hn) and the step's GEMM row
    dgs = [da_r | da_z | r ⊙ da_n]."""
    cdef Py_ssize_t j
    cdef real v
    for j in range(H):
        v = g[j] * da[2 * H + j]
        dhn[j] = v
        dgs[2 * H + j] = v
    _copy(2 * H, da, dgs)


cdef inline void _back_seed_nz(Py_ssize_t H, const real *g, const real *hprev,
                               real *dh, real *da) noexcept nogil:
    """reset_after=False, first half: undo (4), (3), (2). Writes da_n and da_z."""
    cdef Py_ssize_t j
    cdef real z, n, d
    for j in range(H):
        z = g[H + j]
        n = g[2 * H + j]
        d = dh[j]
        da[2 * H + j] = d * z * (1 - n * n)            # (4), (3) n = tanh(a_n + W_hn(r ⊙ h))
        da[H + j] = d * (n - hprev[j]) * z * (1 - z)   # (4), (2) z = σ(a_z)
        dh[j] = d - d * z


cdef inline void _back_seed_r(Py_ssize_t H, const real *g, const real *hprev,
                              const real *drh, real *dh, real *da) noexcept nogil:
    """reset_after=False, second half: undo (1) given drh = dL/d(r ⊙ h) = da_n @ W_hn."""
    cdef Py_ssize_t j
    cdef real r
    for j in range(H):
        r = g[j]
        dh[j] += drh[j] * r                            # (3) through r ⊙ h
        da[j] = drh[j] * hprev[j] * r * (1 - r)        # (1) r = σ(a_r)


cdef inline void _add(Py_ssize_t n, const real *src, real *dst) noexcept nogil:
    cdef Py_ssize_t j
    for j in range(n):
        dst[j] += src[j]


# ---- backward loop ------------------------------------------------------------------------

cdef void _colsum(const real *a, Py_ssize_t rows, Py_ssize_t cols, Py_ssize_t lda,
                  real *out) noexcept nogil:
    """out (cols,) += a (rows, cols; leading dimension lda) summed over rows."""
    cdef Py_ssize_t i
    for i in range(rows):
        _add(cols, a + i * lda, out)


cdef void _backward(const real[:, :, ::1] dout,    # IN  (T, B, H), unused if not has_dout
                    bint has_dout,
                    real[:, ::1] dh,               # IN/OUT (B, H): dh_n in, dh0 out
                    const real[:, :, ::1] x,       # CACHE (T, B, I)
                    const real[:, ::1] w_ih,       # CACHE (G, I)
                    const real[:, ::1] w_hh,       # CACHE (G, H)
                    const int[::1] lengths,        # CACHE (B,)
                    bint reset_after, bint reverse,
                    const real[:, :, ::1] gates,   # CACHE (T, B, G)
                    const real[:, :, ::1] hprev,   # CACHE (T, B, H), zero where padded
                    const real[:, :, ::1] extra,   # CACHE (T, B, H), zero where padded
                    real[:, :, ::1] da,            # SCRATCH (T, B, G) dL/d(xp), zero where padded
                    real[:, :, ::1] dhn,           # SCRATCH (T, B, H) r ⊙ da_n, zero where padded
                    real[:, ::1] dgs,              # SCRATCH (B, G) this step's GEMM rows
                    real[:, ::1] drh,              # SCRATCH (B, H)
                    real[:, :, ::1] dx,            # OUT (T, B, I)
                    real[:, ::1] dw_ih,            # OUT (G, I)
                    real[:, ::1] dw_hh,            # OUT (G, H)
                    real[::1] db_ih,               # OUT (G,), zero on entry
                    real[::1] db_hh,               # OUT (G,), zero on entry
                    ) noexcept nogil:
    cdef Py_ssize_t T = x.shape[0], B = x.shape[1], I = x.shape[2], H = dh.shape[1]
    cdef Py_ssize_t G = 3 * H, s, t, b, j, TB = T * B

    for s in range(T - 1, -1, -1):
        for b in range(B):
            if s >= lengths[b]:
                memset(&dgs[b, 0], 0, G * sizeof(real))    # padding: dh passes through
                continue
            t = _time(s, lengths[b], reverse)
            if has_dout:
                _add(H, &dout[t, b, 0], &dh[b, 0])          # out[t] is this step's h'
            if reset_after:
                _back_after(H, &gates[t, b, 0], &hprev[t, b, 0], &extra[t, b, 0],
                            &dh[b, 0], &da[t, b, 0])
                _rn_da(H, &gates[t, b, 0], &da[t, b, 0], &dhn[t, b, 0], &dgs[b, 0])
            else:
                _back_seed_nz(H, &gates[t, b, 0], &hprev[t, b, 0], &dh[b, 0], &da[t, b, 0])
                _copy(H, &da[t, b, 2 * H], &dgs[b, 2 * H])
        if reset_after:
            # dh (B, H) += dgs (B, G) @ w_hh (G, H)
            gemm(False, False, <int>B, <int>H, <int>G, <real>1, &dgs[0, 0], <int>G,
                 &w_hh[0, 0], <int>H, <real>1, &dh[0, 0], <int>H)
        else:
            # drh (B, H) = dgs[:, 2H:] (B, H) @ w_hh[2H:] (H, H)
            gemm(False, False, <int>B, <int>H, <int>H, <real>1, &dgs[0, 2 * H], <int>G,
                 &w_hh[2 * H, 0], <int>H, <real>0, &drh[0, 0], <int>H)
            for b in range(B):
                if s >= lengths[b]:
                    continue
                t = _time(s, lengths[b], reverse)
                _back_seed_r(H, &gates[t, b, 0], &hprev[t, b, 0], &drh[b, 0],
                             &dh[b, 0], &da[t, b, 0])
                _copy(2 * H, &da[t, b, 0], &dgs[b, 0])
            # dh (B, H) += dgs[:, :2H] (B, 2H) @ w_hh[:2H] (2H, H)
            gemm(False, False, <int>B, <int>H, <int>(2 * H), <real>1, &dgs[0, 0], <int>G,
                 &w_hh[0, 0], <int>H, <real>1, &dh[0, 0], <int>H)

    # Whole-sequence GEMMs: padded (t, b) rows of da, dhn, hprev and extra are zero.
    # dx (T·B, I) = da (T·B, G) @ w_ih (G, I)
    gemm(False, False, <int>TB, <int>I, <int>G, <real>1, &da[0, 0, 0], <int>G,
         &w_ih[0, 0], <int>I, <real>0, &dx[0, 0, 0], <int>I)
    # dw_ih (G, I) = daᵀ (G, T·B) @ x (T·B, I)
    gemm(True, False, <int>G, <int>I, <int>TB, <real>1, &da[0, 0, 0], <int>G,
         &x[0, 0, 0], <int>I, <real>0, &dw_ih[0, 0], <int>I)
    # dw_hh[:2H] (2H, H) = da[:, :2H]ᵀ @ hprev (T·B, H)
    gemm(True, False, <int>(2 * H), <int>H, <int>TB, <real>1, &da[0, 0, 0], <int>G,
         &hprev[0, 0, 0], <int>H, <real>0, &dw_hh[0, 0], <int>H)
    _colsum(&da[0, 0, 0], TB, G, G, &db_ih[0])
    if reset_after:
        # dw_hh[2H:] (H, H) = dhnᵀ (H, T·B) @ hprev (T·B, H)
        gemm(True, False, <int>H, <int>H, <int>TB, <real>1, &dhn[0, 0, 0], <int>H,
             &hprev[0, 0, 0], <int>H, <real>0, &dw_hh[2 * H, 0], <int>H)
        _copy(2 * H, &db_ih[0], &db_hh[0])
        _colsum(&dhn[0, 0, 0], TB, H, H, &db_hh[2 * H])
    else:
        # dw_hh[2H:] (H, H) = da[:, 2H:]ᵀ (H, T·B) @ (r ⊙ h) (T·B, H)
        gemm(True, False, <int>H, <int>H, <int>TB, <real>1, &da[0, 0, 2 * H], <int>G,
             &extra[0, 0, 0], <int>H, <real>0, &dw_hh[2 * H, 0], <int>H)
        _copy(G, &db_ih[0], &db_hh[0])                     # b_hh enters like b_ih here


# ---- workspace ----------------------------------------------------------------------------

_local = threading.local()


def _scratch(name, shape, dtype):
    """A per-thread scratch array of `shape` for `name`, reused across calls (grown when too
    small). Only ever used inside one kernel call: never returned, never cached."""
    cdef Py_ssize_t n = 1
    for d in shape:
        n *= d
    pool = getattr(_local, "pool", None)
    if pool is None:
        pool = _local.pool = {}
    key = (name, dtype)
    buf = pool.get(key)
    if buf is None or buf.shape[0] < n:
        buf = pool[key] = np.empty(max(n, 1), dtype=dtype)
    return buf[:n].reshape(shape)


# ---- entry points (called by grucy/kernels.py with validated, contiguous arrays) ----------

def forward(const real[:, :, ::1] x, const real[:, ::1] h0, const real[:, ::1] w_ih,
            const real[:, ::1] w_hh, const real[::1] b_ih, const real[::1] b_hh,
            const int[::1] lengths, bint reset_after, bint reverse, bint training):
    """Allocate, run the forward loop without the GIL.

    Returns out (T, B, H), h_n (B, H) and, when training, the cache arrays gates (T, B, G),
    hprev (T, B, H) and extra (T, B, H); otherwise three Nones.
    """
    cdef Py_ssize_t T = x.shape[0], B = x.shape[1], H = w_hh.shape[1], b
    dtype = np.float32 if real is float else np.float64
    cdef bint full = True                                   # no padding anywhere
    for b in range(B):
        if lengths[b] != T:
            full = False
    new = np.empty if full else np.zeros                    # padding must read as zero
    cdef real[:, ::1] h = np.array(h0, dtype=dtype)                 # (B, H) -> h_n
    cdef real[:, :, ::1] out = new((T, B, H), dtype=dtype)
    cdef real[:, ::1] hp = _scratch("hp", (B, 3 * H), dtype)
    cdef real[:, ::1] rh = _scratch("rh", (B, H), dtype)
    cdef real[:, :, ::1] xp
    cdef real[:, :, ::1] hprev = None
    cdef real[:, :, ::1] extra = None
    if training:
        xp = np.empty((T, B, 3 * H), dtype=dtype)          # becomes the cache's gates
        hprev = new((T, B, H), dtype=dtype)                 # zero padding keeps dW GEMMs exact
        extra = new((T, B, H), dtype=dtype)
    else:
        xp = _scratch("xp", (T, B, 3 * H), dtype)
    with nogil:
        _forward(x, w_ih, w_hh, b_ih, b_hh, lengths, reset_after, reverse,
                 h, out, xp, hp, rh, training, hprev, extra)
    if not training:
        return np.asarray(out), np.asarray(h), None, None, None
    return (np.asarray(out), np.asarray(h), np.asarray(xp), np.asarray(hprev),
            np.asarray(extra))


def backward(const real[:, :, ::1] x, const real[:, ::1] w_ih, const real[:, ::1] w_hh,
             const int[::1] lengths, bint reset_after, bint reverse,
             const real[:, :, ::1] gates, const real[:, :, ::1] hprev,
             const real[:, :, ::1] extra, const real[:, ::1] dh_n,
             const real[:, :, ::1] dout, bint has_dout):
    """Allocate, run BPTT without the GIL, return (dx, dh0, dw_ih, dw_hh, db_ih, db_hh)."""
    cdef Py_ssize_t T = x.shape[0], B = x.shape[1], I = x.shape[2], H = w_hh.shape[1], b
    dtype = np.float32 if real is float else np.float64
    cdef bint full = True
    for b in range(B):
        if lengths[b] != T:
            full = False
    cdef real[:, ::1] dh = np.array(dh_n, dtype=dtype)              # (B, H) -> dh0
    cdef real[:, :, ::1] da = _scratch("da", (T, B, 3 * H), dtype)
    cdef real[:, :, ::1] dhn = _scratch("dhn", (T if reset_after else 1, B, H), dtype)
    cdef real[:, ::1] dgs = _scratch("dgs", (B, 3 * H), dtype)
    cdef real[:, ::1] drh = _scratch("drh", (B, H), dtype)
    cdef real[:, :, ::1] dx = np.empty((T, B, I), dtype=dtype)
    cdef real[:, ::1] dw_ih = np.empty((3 * H, I), dtype=dtype)
    cdef real[:, ::1] dw_hh = np.empty((3 * H, H), dtype=dtype)
    cdef real[::1] db_ih = np.zeros(3 * H, dtype=dtype)
    cdef real[::1] db_hh = np.zeros(3 * H, dtype=dtype)
    if not full:                                            # padded rows of dA must be zero
        np.asarray(da).fill(0)
        np.asarray(dhn).fill(0)
    with nogil:
        _backward(dout, has_dout, dh, x, w_ih, w_hh, lengths, reset_after, reverse, gates, hprev,
                  extra, da, dhn, dgs, drh, dx, dw_ih, dw_hh, db_ih, db_hh)
    return (np.asarray(dx), np.asarray(dh), np.asarray(dw_ih), np.asarray(dw_hh),
            np.asarray(db_ih), np.asarray(db_hh))


# ---- streaming: one step, weights bound once ----------------------------------------------

cdef inline void _after_step(Py_ssize_t H, const real *a, const real *hp, const real *b_hn,
                             const real *h, real *hnew) noexcept nogil:
    """reset_after=True, one row of one step: hnew = h' from xp row a and hp = W_hh h."""
    cdef Py_ssize_t j
    cdef real r, z, n
    for j in range(H):
        r = sigmoid(a[j] + hp[j])                              # (1)
        z = sigmoid(a[H + j] + hp[H + j])                      # (2)
        n = tanh_(a[2 * H + j] + r * (hp[2 * H + j] + b_hn[j]))  # (3)
        hnew[j] = h[j] + z * (n - h[j])                        # (4)


cdef inline void _seed_n_step(Py_ssize_t H, const real *a, const real *hp, const real *h,
                              real *hnew) noexcept nogil:
    """reset_after=False, second half of one step: hp = [r | z | W_hn(r ⊙ h)]."""
    cdef Py_ssize_t j
    cdef real z, n
    for j in range(H):
        z = hp[H + j]
        n = tanh_(a[2 * H + j] + hp[2 * H + j])                # (3)
        hnew[j] = h[j] + z * (n - h[j])                        # (4)


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
                real *hnew,             # SCRATCH (B, H)
                ) noexcept nogil:
    cdef Py_ssize_t G = 3 * H, b, j
    # the bias row, as in _forward: b_hh's n block joins here unless r multiplies it
    for j in range(G):
        xp[j] = b_ih[j] + b_hh[j]
    if reset_after:
        for j in range(2 * H, G):
            xp[j] = b_ih[j]
    for b in range(1, B):
        _copy(G, xp, xp + b * G)
    # xp (B, G) += x (B, I) @ w_ihᵀ
    gemm(False, True, <int>B, <int>G, <int>I, <real>1, x, <int>I, w_ih, <int>I,
         <real>1, xp, <int>G)
    if reset_after:
        # hp (B, G) = h @ w_hhᵀ
        gemm(False, True, <int>B, <int>G, <int>H, <real>1, h, <int>H, w_hh, <int>H,
             <real>0, hp, <int>G)
        for b in range(B):
            _after_step(H, xp + b * G, hp + b * G, b_hh + 2 * H, h + b * H, hnew + b * H)
    else:
        # hp[:, :2H] (B, 2H) = h @ w_hh[:2H]ᵀ
        gemm(False, True, <int>B, <int>(2 * H), <int>H, <real>1, h, <int>H, w_hh, <int>H,
             <real>0, hp, <int>G)
        for b in range(B):
            _seed_rz(H, xp + b * G, hp + b * G, h + b * H, rh + b * H)
        # hp[:, 2H:] (B, H) = rh @ w_hh[2H:]ᵀ
        gemm(False, True, <int>B, <int>H, <int>H, <real>1, rh, <int>H, w_hh + 2 * H * H,
             <int>H, <real>0, hp + 2 * H, <int>G)
        for b in range(B):
            _seed_n_step(H, xp + b * G, hp + b * G, h + b * H, hnew + b * H)
    _copy(B * H, hnew, out)                                    # out may be h: copy last


cdef class Cell:
    """One GRU step at a time with the weights bound once: grucy's streaming entry point.

        cell = grucy.kernels.Cell(w_ih, w_hh, b_ih, b_hh, reset_after=False)
        cell.step(x_t, h, out)        # out (B, H) := the state after x_t (B, I) from h (B, H)

    The same maths and weight layout as gru_cell, float32 or float64 (the weights' dtype).
    `step` allocates nothing (scratch is the Cell's own, grown to the largest B seen) and
    `out` may be `h` itself for an in-place update; it returns None. It checks types,
    shapes and contiguity cheaply and raises like gru_cell on a bad call; non-contiguous
    x_t/h are copied. The Cell keeps references to the weight arrays, so updating them in
    place (an optimizer step) is seen by the next step; replacing them needs a new Cell.
    Not for concurrent use from several threads (one Cell per stream).
    """
    cdef readonly object w_ih, w_hh, b_ih, b_hh, dtype
    cdef readonly bint reset_after
    cdef readonly Py_ssize_t input_size, hidden_size
    cdef object _scratch
    cdef int _typenum

    def __init__(self, w_ih, w_hh, b_ih, b_hh, *, reset_after=False):
        from grucy.kernels import _check_params
        self.w_ih, self.w_hh, self.b_ih, self.b_hh = _check_params(w_ih, w_hh, b_ih, b_hh)
        self.reset_after = _flag(reset_after)
        self.dtype = self.w_hh.dtype
        self._typenum = cnp.NPY_FLOAT32 if self.dtype == np.float32 else cnp.NPY_FLOAT64
        self.hidden_size = self.w_hh.shape[1]
        self.input_size = self.w_ih.shape[1]
        self._scratch = np.empty(0, self.dtype)

    cdef _array(self, name, a, Py_ssize_t B, Py_ssize_t n, bint write):
        """a as a C-contiguous (B, n) ndarray of the Cell's dtype (copied if it is not one)."""
        cdef cnp.ndarray arr
        if not cnp.PyArray_Check(a):
            raise TypeError(f"{name} must be a numpy array, got {type(a).__name__}")
        arr = <cnp.ndarray>a
        if cnp.PyArray_TYPE(arr) != self._typenum:
            raise TypeError(f"{name} must have dtype {self.dtype} (the weights'), got {a.dtype}")
        if cnp.PyArray_NDIM(arr) != 2 or arr.shape[0] != B or arr.shape[1] != n:
            raise ValueError(f"{name} must have shape ({B}, {n}), got {a.shape}")
        if write:
            if not cnp.PyArray_IS_C_CONTIGUOUS(arr) or not cnp.PyArray_ISWRITEABLE(arr):
                raise ValueError(f"{name} must be C-contiguous and writeable")
        elif not cnp.PyArray_IS_C_CONTIGUOUS(arr):
            arr = np.ascontiguousarray(arr)
        return arr

    def step(self, x_t, h, out):
        """out (B, H) := one GRU step from state h (B, H) on input x_t (B, I). Returns None."""
        cdef cnp.ndarray xa, ha, oa, sa
        if not cnp.PyArray_Check(x_t):
            raise TypeError(f"x_t must be a numpy array, got {type(x_t).__name__}")
        if cnp.PyArray_NDIM(<cnp.ndarray>x_t) != 2:
            raise ValueError(f"x_t must be 2-D (B, {self.input_size}), got shape {x_t.shape}")
        cdef Py_ssize_t B = (<cnp.ndarray>x_t).shape[0]
        cdef Py_ssize_t I = self.input_size, H = self.hidden_size, G = 3 * H
        xa = self._array("x_t", x_t, B, I, False)
        ha = self._array("h", h, B, H, False)
        oa = self._array("out", out, B, H, True)
        if B == 0:
            return
        if self._scratch.shape[0] < B * (2 * G + 2 * H):
            self._scratch = np.empty(B * (2 * G + 2 * H), self.dtype)
        sa = <cnp.ndarray>self._scratch
        if self._typenum == cnp.NPY_FLOAT32:
            _step_call[float](B, I, H, self.reset_after, xa, self.w_ih, self.w_hh,
                              self.b_ih, self.b_hh, ha, oa, sa)
        else:
            _step_call[double](B, I, H, self.reset_after, xa, self.w_ih, self.w_hh,
                               self.b_ih, self.b_hh, ha, oa, sa)


cdef inline void _step_call(Py_ssize_t B, Py_ssize_t I, Py_ssize_t H, bint reset_after,
                            cnp.ndarray x, cnp.ndarray w_ih, cnp.ndarray w_hh,
                            cnp.ndarray b_ih, cnp.ndarray b_hh, cnp.ndarray h,
                            cnp.ndarray out, cnp.ndarray scratch, real dummy=0):
    cdef real *s = <real *>cnp.PyArray_DATA(scratch)
    cdef Py_ssize_t G = 3 * H
    cdef bint big = B * G * (I + H) > 200000       # worth releasing the GIL for
    if big:
        with nogil:
            _step(B, I, H, reset_after, <real *>cnp.PyArray_DATA(x),
                  <real *>cnp.PyArray_DATA(w_ih), <real *>cnp.PyArray_DATA(w_hh),
                  <real *>cnp.PyArray_DATA(b_ih), <real *>cnp.PyArray_DATA(b_hh),
                  <real *>cnp.PyArray_DATA(h), <real *>cnp.PyArray_DATA(out),
                  s, s + B * G, s + 2 * B * G, s + 2 * B * G + B * H)
    else:
        _step(B, I, H, reset_after, <real *>cnp.PyArray_DATA(x),
              <real *>cnp.PyArray_DATA(w_ih), <real *>cnp.PyArray_DATA(w_hh),
              <real *>cnp.PyArray_DATA(b_ih), <real *>cnp.PyArray_DATA(b_hh),
              <real *>cnp.PyArray_DATA(h), <real *>cnp.PyArray_DATA(out),
              s, s + B * G, s + 2 * B * G, s + 2 * B * G + B * H)


def _flag(value):
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"reset_after must be a bool, got {type(value).__name__}")
    return bool(value)
