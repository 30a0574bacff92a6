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
"""
import numpy as np

from grucy._blas cimport real, gemm
from grucy._math cimport sigmoid, tanh_


# ---- per-row point functions (forward) ----------------------------------------------------

cdef inline void _row_rz(Py_ssize_t H, const real *a, real *hp, const real *h,
                         real *rh) noexcept nogil:
    """reset_after=False, first half: (1), (2) in place of hp's r|z blocks, and rh = r ⊙ h."""
    cdef Py_ssize_t j
    for j in range(2 * H):
        hp[j] = sigmoid(a[j] + hp[j])                  # (1), (2)
    for j in range(H):
        rh[j] = hp[j] * h[j]


cdef inline void _row_n_seed(Py_ssize_t H, const real *a, const real *hp, real *h,
                             real *out, real *g) noexcept nogil:
    """reset_after=False, second half: (3), (4). hp holds [r | z | W_hn(r ⊙ h)]; a has b_hn."""
    cdef Py_ssize_t j
    cdef real z, n
    for j in range(H):
        z = hp[H + j]
        n = tanh_(a[2 * H + j] + hp[2 * H + j])        # (3)
        h[j] = h[j] + z * (n - h[j])                   # (4) (1-z)h + zn, one rounding fewer
        out[j] = h[j]
        if g != NULL:
            g[j] = hp[j]
            g[H + j] = z
            g[2 * H + j] = n


cdef inline void _row_after(Py_ssize_t H, const real *a, const real *hp, const real *b_hn,
                            real *h, real *out, real *g, real *hn_out) noexcept nogil:
    """reset_after=True: (1)-(4) for one row. hp = W_hh h (G,); hn_out keeps W_hn h + b_hn."""
    cdef Py_ssize_t j
    cdef real r, z, n, hn
    for j in range(H):
        r = sigmoid(a[j] + hp[j])                      # (1)
        z = sigmoid(a[H + j] + hp[H + j])              # (2)
        hn = hp[2 * H + j] + b_hn[j]
        n = tanh_(a[2 * H + j] + r * hn)               # (3)
        h[j] = h[j] + z * (n - h[j])                   # (4)
        out[j] = h[j]
        if g != NULL:
            g[j] = r
            g[H + j] = z
            g[2 * H + j] = n
            hn_out[j] = hn


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
                   real[:, :, ::1] out,            # OUT (T, B, H), zero on entry
                   real[:, :, ::1] xp,             # SCRATCH (T, B, G)
                   real[:, ::1] hp,                # SCRATCH (B, G)
                   real[:, ::1] rh,                # SCRATCH (B, H)
                   bint training,
                   real[:, :, ::1] gates,          # CACHE (T, B, G) [r | z | n]
                   real[:, :, ::1] hprev,          # CACHE (T, B, H) h before each step
                   real[:, :, ::1] extra,          # CACHE (T, B, H) W_hn h + b_hn | r ⊙ h
                   ) noexcept nogil:
    cdef Py_ssize_t T = x.shape[0], B = x.shape[1], I = x.shape[2], H = h.shape[1]
    cdef Py_ssize_t G = 3 * H, s, t, b, j, k
    cdef real *g = NULL
    cdef real *ex = NULL

    # xp = x @ w_ihᵀ + bias, all steps in one GEMM accumulating onto the bias rows. The
    # recurrent biases that are not multiplied by r join here, once, instead of every step.
    for k in range(T * B):
        t = k // B
        b = k % B
        for j in range(G):
            xp[t, b, j] = b_ih[j]
        for j in range(2 * H):
            xp[t, b, j] += b_hh[j]
        if not reset_after:
            for j in range(2 * H, G):
                xp[t, b, j] += b_hh[j]
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
                    for j in range(H):
                        hprev[t, b, j] = h[b, j]
                    g = &gates[t, b, 0]
                    ex = &extra[t, b, 0]
                _row_after(H, &xp[t, b, 0], &hp[b, 0], &b_hh[2 * H], &h[b, 0],
                           &out[t, b, 0], g, ex)
        else:
            # hp[:, :2H] (B, 2H) = h @ w_hh[:2H]ᵀ
            gemm(False, True, <int>B, <int>(2 * H), <int>H, <real>1, &h[0, 0], <int>H,
                 &w_hh[0, 0], <int>H, <real>0, &hp[0, 0], <int>G)
            for b in range(B):
                if s >= lengths[b]:
                    for j in range(H):
                        rh[b, j] = 0                       # keeps the next GEMM finite
                    continue
                t = _time(s, lengths[b], reverse)
                _row_rz(H, &xp[t, b, 0], &hp[b, 0], &h[b, 0], &rh[b, 0])
            # hp[:, 2H:] (B, H) = rh @ w_hh[2H:]ᵀ
            gemm(False, True, <int>B, <int>H, <int>H, <real>1, &rh[0, 0], <int>H,
                 &w_hh[2 * H, 0], <int>H, <real>0, &hp[0, 2 * H], <int>G)
            for b in range(B):
                if s >= lengths[b]:
                    continue
                t = _time(s, lengths[b], reverse)
                if training:
                    for j in range(H):
                        hprev[t, b, j] = h[b, j]
                        extra[t, b, j] = rh[b, j]
                    g = &gates[t, b, 0]
                _row_n_seed(H, &xp[t, b, 0], &hp[b, 0], &h[b, 0], &out[t, b, 0], g)


# ---- per-row point functions (backward) ---------------------------------------------------

cdef inline void _row_back_after(Py_ssize_t H, const real *g, const real *hprev,
                                 const real *hn, real *dh, const real *dout,
                                 real *dgs, real *da, real *dhn) noexcept nogil:
    """reset_after=True, one row: undo (4), (3), (2), (1).

    dh (H,) comes in as dL/dh' and leaves as the direct part of dL/dh; the part through
    W_hh is added by the step's GEMM. dgs (G,) = [da_r | da_z | r ⊙ da_n] feeds that GEMM,
    da (G,) = [da_r | da_z | da_n] is kept for dx and dW_ih, dhn (H,) = r ⊙ da_n for dW_hn.
    """
    cdef Py_ssize_t j
    cdef real r, z, n, d, dn, dz, dan, dr
    for j in range(H):
        r = g[j]
        z = g[H + j]
        n = g[2 * H + j]
        d = dh[j]
        if dout != NULL:
            d = d + dout[j]
        dn = d * z                                     # (4) h' = (1-z)h + zn
        dz = d * (n - hprev[j])
        dh[j] = d - d * z
        dan = dn * (1 - n * n)                         # (3) n = tanh(a_n + r (W_hn h + b_hn))
        dr = dan * hn[j]
        da[2 * H + j] = dan
        dgs[2 * H + j] = dan * r
        dhn[j] = dan * r
        da[H + j] = dz * z * (1 - z)                   # (2) z = σ(a_z)
        dgs[H + j] = da[H + j]
        da[j] = dr * r * (1 - r)                       # (1) r = σ(a_r)
        dgs[j] = da[j]


cdef inline void _row_back_seed_nz(Py_ssize_t H, const real *g, const real *hprev,
                                   real *dh, const real *dout, real *dgs, real *da) noexcept nogil:
    """reset_after=False, first half: undo (4), (3), (2). Writes da_n and da_z."""
    cdef Py_ssize_t j
    cdef real z, n, d, dan, daz
    for j in range(H):
        z = g[H + j]
        n = g[2 * H + j]
        d = dh[j]
        if dout != NULL:
            d = d + dout[j]
        dan = d * z * (1 - n * n)                      # (4), (3) n = tanh(a_n + W_hn(r ⊙ h))
        daz = d * (n - hprev[j]) * z * (1 - z)         # (4), (2) z = σ(a_z)
        dh[j] = d - d * z
        da[2 * H + j] = dan
        dgs[2 * H + j] = dan
        da[H + j] = daz
        dgs[H + j] = daz


cdef inline void _row_back_seed_r(Py_ssize_t H, const real *g, const real *hprev,
                                  const real *drh, real *dh, real *dgs, real *da) noexcept nogil:
    """reset_after=False, second half: undo (1) given drh = dL/d(r ⊙ h) = da_n @ W_hn."""
    cdef Py_ssize_t j
    cdef real r
    for j in range(H):
        r = g[j]
        dh[j] += drh[j] * r                            # (3) through r ⊙ h
        da[j] = drh[j] * hprev[j] * r * (1 - r)        # (1) r = σ(a_r)
        dgs[j] = da[j]


# ---- backward loop ------------------------------------------------------------------------

cdef void _colsum(const real *a, Py_ssize_t rows, Py_ssize_t cols, Py_ssize_t lda,
                  real *out) noexcept nogil:
    """out (cols,) += a (rows, cols; leading dimension lda) summed over rows."""
    cdef Py_ssize_t i, j
    for i in range(rows):
        for j in range(cols):
            out[j] += a[i * lda + j]


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
                    real[:, :, ::1] da,            # OUT (T, B, G) dL/d(xp), zero on entry
                    real[:, :, ::1] dhn,           # OUT (T, B, H) r ⊙ da_n, zero on entry
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
    cdef const real *do = NULL

    for s in range(T - 1, -1, -1):
        if reset_after:
            for b in range(B):
                if s >= lengths[b]:
                    for j in range(G):
                        dgs[b, j] = 0                      # padding: dh passes through
                    continue
                t = _time(s, lengths[b], reverse)
                if has_dout:
                    do = &dout[t, b, 0]
                _row_back_after(H, &gates[t, b, 0], &hprev[t, b, 0], &extra[t, b, 0],
                                &dh[b, 0], do, &dgs[b, 0], &da[t, b, 0], &dhn[t, b, 0])
            # dh (B, H) += dgs (B, G) @ w_hh (G, H)
            gemm(False, False, <int>B, <int>H, <int>G, <real>1, &dgs[0, 0], <int>G,
                 &w_hh[0, 0], <int>H, <real>1, &dh[0, 0], <int>H)
        else:
            for b in range(B):
                if s >= lengths[b]:
                    for j in range(G):
                        dgs[b, j] = 0
                    continue
                t = _time(s, lengths[b], reverse)
                if has_dout:
                    do = &dout[t, b, 0]
                _row_back_seed_nz(H, &gates[t, b, 0], &hprev[t, b, 0], &dh[b, 0], do,
                                  &dgs[b, 0], &da[t, b, 0])
            # drh (B, H) = dgs[:, 2H:] (B, H) @ w_hh[2H:] (H, H)
            gemm(False, False, <int>B, <int>H, <int>H, <real>1, &dgs[0, 2 * H], <int>G,
                 &w_hh[2 * H, 0], <int>H, <real>0, &drh[0, 0], <int>H)
            for b in range(B):
                if s >= lengths[b]:
                    continue
                t = _time(s, lengths[b], reverse)
                _row_back_seed_r(H, &gates[t, b, 0], &hprev[t, b, 0], &drh[b, 0],
                                 &dh[b, 0], &dgs[b, 0], &da[t, b, 0])
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
        _colsum(&da[0, 0, 0], TB, 2 * H, G, &db_hh[0])
        _colsum(&dhn[0, 0, 0], TB, H, H, &db_hh[2 * H])
    else:
        # dw_hh[2H:] (H, H) = da[:, 2H:]ᵀ (H, T·B) @ (r ⊙ h) (T·B, H)
        gemm(True, False, <int>H, <int>H, <int>TB, <real>1, &da[0, 0, 2 * H], <int>G,
             &extra[0, 0, 0], <int>H, <real>0, &dw_hh[2 * H, 0], <int>H)
        for j in range(G):
            db_hh[j] = db_ih[j]                            # b_hh enters like b_ih here


# ---- entry points (called by grucy/kernels.py with validated, contiguous arrays) ----------

def forward(const real[:, :, ::1] x, const real[:, ::1] h0, const real[:, ::1] w_ih,
            const real[:, ::1] w_hh, const real[::1] b_ih, const real[::1] b_hh,
            const int[::1] lengths, bint reset_after, bint reverse, bint training):
    """Allocate, run the forward loop without the GIL.

    Returns out (T, B, H), h_n (B, H) and, when training, the cache arrays gates (T, B, G),
    hprev (T, B, H) and extra (T, B, H); otherwise three Nones.
    """
    cdef Py_ssize_t T = x.shape[0], B = x.shape[1], H = w_hh.shape[1]
    dtype = np.float32 if real is float else np.float64
    cdef real[:, ::1] h = np.array(h0, dtype=dtype)                 # (B, H) -> h_n
    cdef real[:, :, ::1] out = np.zeros((T, B, H), dtype=dtype)
    cdef real[:, :, ::1] xp = np.empty((T, B, 3 * H), dtype=dtype)
    cdef real[:, ::1] hp = np.empty((B, 3 * H), dtype=dtype)
    cdef real[:, ::1] rh = np.empty((B, H), dtype=dtype)
    cdef real[:, :, ::1] gates = None
    cdef real[:, :, ::1] hprev = None
    cdef real[:, :, ::1] extra = None
    if training:
        gates = np.empty((T, B, 3 * H), dtype=dtype)
        hprev = np.zeros((T, B, H), dtype=dtype)      # zero padding keeps the dW GEMMs exact
        extra = np.zeros((T, B, H), dtype=dtype)
    with nogil:
        _forward(x, w_ih, w_hh, b_ih, b_hh, lengths, reset_after, reverse,
                 h, out, xp, hp, rh, training, gates, hprev, extra)
    if not training:
        return np.asarray(out), np.asarray(h), None, None, None
    return (np.asarray(out), np.asarray(h), np.asarray(gates), np.asarray(hprev),
            np.asarray(extra))


def backward(const real[:, :, ::1] x, const real[:, ::1] w_ih, const real[:, ::1] w_hh,
             const int[::1] lengths, bint reset_after, bint reverse,
             const real[:, :, ::1] gates, const real[:, :, ::1] hprev,
             const real[:, :, ::1] extra, const real[:, ::1] dh_n,
             const real[:, :, ::1] dout, bint has_dout):
    """Allocate, run BPTT without the GIL, return (dx, dh0, dw_ih, dw_hh, db_ih, db_hh)."""
    cdef Py_ssize_t T = x.shape[0], B = x.shape[1], I = x.shape[2], H = w_hh.shape[1]
    dtype = np.float32 if real is float else np.float64
    cdef real[:, ::1] dh = np.array(dh_n, dtype=dtype)              # (B, H) -> dh0
    cdef real[:, :, ::1] da = np.zeros((T, B, 3 * H), dtype=dtype)
    cdef real[:, :, ::1] dhn = None
    cdef real[:, ::1] dgs = np.empty((B, 3 * H), dtype=dtype)
    cdef real[:, ::1] drh = np.empty((B, H), dtype=dtype)
    cdef real[:, :, ::1] dx = np.empty((T, B, I), dtype=dtype)
    cdef real[:, ::1] dw_ih = np.empty((3 * H, I), dtype=dtype)
    cdef real[:, ::1] dw_hh = np.empty((3 * H, H), dtype=dtype)
    cdef real[::1] db_ih = np.zeros(3 * H, dtype=dtype)
    cdef real[::1] db_hh = np.zeros(3 * H, dtype=dtype)
    if reset_after:
        dhn = np.zeros((T, B, H), dtype=dtype)
    with nogil:
        _backward(dout, has_dout, dh, x, w_ih, w_hh, lengths, reset_after, reverse, gates, hprev,
                  extra, da, dhn, dgs, drh, dx, dw_ih, dw_hh, db_ih, db_hh)
    return (np.asarray(dx), np.asarray(dh), np.asarray(dw_ih), np.asarray(dw_hh),
            np.asarray(db_ih), np.asarray(db_hh))
