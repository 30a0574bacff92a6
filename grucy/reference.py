"""Pure-numpy reference GRU kernels (and optimizer steps): the readable twins of the compiled ones.

Same three functions and arguments as ``grucy.gru_forward``, ``grucy.gru_backward`` and
``grucy.gru_cell`` (grucy.kernels), written for clarity, not speed: the tests check the compiled
kernels against this module, and this module against finite differences and PyTorch. The cache
format is this module's own; do not mix caches between the two back ends.

Notation (one layer, one direction, time-major)
-----------------------------------------------
    T, B, I, H        time steps, batch rows, input features, hidden units
    x_t     (B, I)    input at time step t
    h       (B, H)    state before a step (h_{t-1});  h'  the state after it (h_t)
    w_ih    (3H, I)   row blocks [W_ir | W_iz | W_in], each (H, I)
    w_hh    (3H, H)   row blocks [W_hr | W_hz | W_hn], each (H, H)
    b_ih    (3H,)     blocks [b_ir | b_iz | b_in];   b_hh (3H,) blocks [b_hr | b_hz | b_hn]
    a_r, a_z, a_n     pre-activations of r, z, n;  g = W_hn h + b_hn (reset_after=True)
    σ logistic sigmoid, ⊙ element-wise product, "W x" means x @ W.T on row batches,
    dY = ∂L/∂Y for the scalar loss L being differentiated.

Forward, one step (the numbering the compiled code uses too)
-------------------------------------------------------------
    (1) r  = σ(W_ir x + b_ir + W_hr h + b_hr)
    (2) z  = σ(W_iz x + b_iz + W_hz h + b_hz)
    (3) n  = tanh(W_in x + b_in + W_hn (r⊙h) + b_hn)        reset_after=False (seed, default)
        n  = tanh(W_in x + b_in + r⊙(W_hn h + b_hn))        reset_after=True  (cuDNN / PyTorch)
    (4) h' = (1 − z)⊙h + z⊙n

Backward, one step: each block undoes the forward equation with the same number, last first
---------------------------------------------------------------------------------------------
    (4) dz = dh'⊙(n − h);   dn = dh'⊙z;   dh = dh'⊙(1 − z)
    (3) da_n = dn⊙(1 − n²);   dx = da_n W_in;   dW_in += da_nᵀ x;   db_in += Σ_rows da_n
        reset_after=False:  d(r⊙h) = da_n W_hn;   dr = d(r⊙h)⊙h;   dh += d(r⊙h)⊙r
                            dW_hn += da_nᵀ (r⊙h);   db_hn += Σ_rows da_n
        reset_after=True:   dr = da_n⊙g;   dg = da_n⊙r;   dh += dg W_hn
                            dW_hn += dgᵀ h;   db_hn += Σ_rows dg
    (2) da_z = dz⊙z⊙(1 − z);  dx += da_z W_iz;  dh += da_z W_hz;  dW_iz += da_zᵀ x;  dW_hz += da_zᵀ h
                              db_iz += Σ_rows da_z;  db_hz += Σ_rows da_z
    (1) da_r = dr⊙r⊙(1 − r);  and the same five lines with r for z

Sequences
---------
Row b runs lengths[b] steps (all T when lengths is None). Forward order processes x[0], x[1], ...;
reverse=True processes x[lengths[b]-1], ..., x[0]. Either way out[t, b] is the state right after
processing x[t, b]; out rows of padded steps (t >= lengths[b]) are zero and leave the state alone,
so h_n[b] is the state after the row's last valid step (h0[b] when lengths[b] == 0). Backward
walks the same steps in the opposite order; a padded step is the identity, so its gradient
passes straight through.
"""

import math

import numpy as np

__all__ = ["gru_forward", "gru_backward", "gru_cell", "adam_update", "sgd_update",
           "rmsprop_update"]

_FLOATS = (np.dtype(np.float32), np.dtype(np.float64))


# --------------------------------------------------------------------------------------------
# loose argument checks (the compiled kernels' validating layer is the strict one)
# --------------------------------------------------------------------------------------------

def _array(name, a, dtype, shape):
    """Return ``a`` as an ndarray of ``dtype`` and ``shape`` (None entries match anything)."""
    a = np.asarray(a)
    if a.dtype != dtype:
        raise TypeError(f"{name} has dtype {a.dtype}, expected {dtype} like the other arrays")
    if a.ndim != len(shape) or any(want is not None and want != got
                                   for want, got in zip(shape, a.shape)):
        want = tuple("?" if s is None else s for s in shape)
        raise ValueError(f"{name} has shape {a.shape}, expected {want}")
    return a


def _dtype_of(name, a):
    dtype = np.asarray(a).dtype
    if dtype not in _FLOATS:
        raise TypeError(f"{name} has dtype {dtype}, expected float32 or float64")
    return dtype


def _check_params(dtype, I, w_ih, w_hh, b_ih, b_hh):
    w_ih = _array("w_ih", w_ih, dtype, (None, I))
    H = w_ih.shape[0] // 3
    if H == 0 or w_ih.shape[0] != 3 * H:
        raise ValueError(f"w_ih has shape {w_ih.shape}, expected (3H, {I}) with H >= 1")
    w_hh = _array("w_hh", w_hh, dtype, (3 * H, H))
    b_ih = _array("b_ih", b_ih, dtype, (3 * H,))
    b_hh = _array("b_hh", b_hh, dtype, (3 * H,))
    return H, w_ih, w_hh, b_ih, b_hh


def _check_lengths(lengths, T, B):
    if lengths is None:
        return np.full(B, T, dtype=np.intp)
    lengths = np.asarray(lengths)
    if lengths.dtype.kind not in "iu":
        raise TypeError(f"lengths has dtype {lengths.dtype}, expected an integer dtype")
    if lengths.shape != (B,):
        raise ValueError(f"lengths has shape {lengths.shape}, expected ({B},)")
    if B and (lengths.min() < 0 or lengths.max() > T):
        raise ValueError(f"lengths must lie in [0, T={T}], got min {lengths.min()} "
                         f"max {lengths.max()}")
    return lengths.astype(np.intp)


def _sigmoid(a):
    # σ(a) without overflow warnings: exp only ever sees -|a|
    e = np.exp(-np.abs(a))
    return np.where(a >= 0, 1 / (1 + e), e / (1 + e))


def _blocks(a, H):
    """The [r | z | n] row blocks of a (3H, ...) array, as views."""
    return a[:H], a[H:2 * H], a[2 * H:]


# --------------------------------------------------------------------------------------------
# one step on a set of rows
# --------------------------------------------------------------------------------------------

def _step_forward(x, h, w_ih, w_hh, b_ih, b_hh, reset_after):
    """One GRU step for rows x (R, I), h (R, H); returns h' and what backward needs."""
    H = h.shape[1]
    W_ir, W_iz, W_in = _blocks(w_ih, H)
    W_hr, W_hz, W_hn = _blocks(w_hh, H)
    b_ir, b_iz, b_in = _blocks(b_ih, H)
    b_hr, b_hz, b_hn = _blocks(b_hh, H)

    r = _sigmoid(x @ W_ir.T + b_ir + h @ W_hr.T + b_hr)            # (1)
    z = _sigmoid(x @ W_iz.T + b_iz + h @ W_hz.T + b_hz)            # (2)
    if reset_after:
        g = h @ W_hn.T + b_hn
        n = np.tanh(x @ W_in.T + b_in + r * g)                      # (3) reset after
    else:
        g = None
        n = np.tanh(x @ W_in.T + b_in + (r * h) @ W_hn.T + b_hn)    # (3) reset before
    h_new = (1 - z) * h + z * n                                     # (4)
    return h_new, (x, h, r, z, n, g)


def _step_backward(dh_new, saved, w_ih, w_hh, grads, reset_after):
    """Undo one step: returns (dx, dh) for its rows and adds its share to grads (in place)."""
    x, h, r, z, n, g = saved
    H = h.shape[1]
    W_ir, W_iz, W_in = _blocks(w_ih, H)
    W_hr, W_hz, W_hn = _blocks(w_hh, H)
    dw_ih, dw_hh, db_ih, db_hh = grads
    dW_ir, dW_iz, dW_in = _blocks(dw_ih, H)
    dW_hr, dW_hz, dW_hn = _blocks(dw_hh, H)
    db_ir, db_iz, db_in = _blocks(db_ih, H)
    db_hr, db_hz, db_hn = _blocks(db_hh, H)

    # (4) h' = (1 − z)⊙h + z⊙n
    dz = dh_new * (n - h)
    dn = dh_new * z
    dh = dh_new * (1 - z)

    # (3) n = tanh(a_n)
    da_n = dn * (1 - n * n)
    dx = da_n @ W_in
    dW_in += da_n.T @ x
    db_in += da_n.sum(axis=0)
    if reset_after:          # a_n = W_in x + b_in + r⊙g,  g = W_hn h + b_hn
        dr = da_n * g
        dg = da_n * r
        dh += dg @ W_hn
        dW_hn += dg.T @ h
        db_hn += dg.sum(axis=0)
    else:                    # a_n = W_in x + b_in + W_hn (r⊙h) + b_hn
        drh = da_n @ W_hn
        dr = drh * h
        dh += drh * r
        dW_hn += da_n.T @ (r * h)
        db_hn += da_n.sum(axis=0)

    # (2) z = σ(a_z)
    da_z = dz * z * (1 - z)
    dx += da_z @ W_iz
    dh += da_z @ W_hz
    dW_iz += da_z.T @ x
    dW_hz += da_z.T @ h
    db_iz += da_z.sum(axis=0)
    db_hz += da_z.sum(axis=0)

    # (1) r = σ(a_r)
    da_r = dr * r * (1 - r)
    dx += da_r @ W_ir
    dh += da_r @ W_hr
    dW_ir += da_r.T @ x
    dW_hr += da_r.T @ h
    db_ir += da_r.sum(axis=0)
    db_hr += da_r.sum(axis=0)
    return dx, dh


# --------------------------------------------------------------------------------------------
# the kernel contract
# --------------------------------------------------------------------------------------------

class ReferenceCache:
    """What reference.gru_backward needs from reference.gru_forward."""

    def __init__(self, x_shape, h_shape, params, reset_after, steps):
        self.x_shape = x_shape          # (T, B, I)
        self.h_shape = h_shape          # (B, H)
        self.params = params            # copies of (w_ih, w_hh, b_ih, b_hh)
        self.reset_after = reset_after
        self.steps = steps              # per step s: (rows, ts, saved) as _step_forward saved it


def gru_forward(x, h0, w_ih, w_hh, b_ih, b_hh, *, reset_after=False, lengths=None,
                reverse=False, training=True):
    """Run a GRU over x (T, B, I); return out (T, B, H), h_n (B, H), cache (None if not training)."""
    dtype = _dtype_of("x", x)
    x = _array("x", x, dtype, (None, None, None))
    T, B, I = x.shape
    H, w_ih, w_hh, b_ih, b_hh = _check_params(dtype, I, w_ih, w_hh, b_ih, b_hh)
    h = np.zeros((B, H), dtype) if h0 is None else _array("h0", h0, dtype, (B, H)).copy()
    lengths = _check_lengths(lengths, T, B)

    out = np.zeros((T, B, H), dtype)
    steps = []
    for s in range(T):
        rows = np.flatnonzero(lengths > s)                  # rows with a valid step s
        ts = lengths[rows] - 1 - s if reverse else np.full(rows.size, s)   # time index per row
        h_new, saved = _step_forward(x[ts, rows], h[rows], w_ih, w_hh, b_ih, b_hh, reset_after)
        h[rows] = h_new
        out[ts, rows] = h_new
        if training:
            steps.append((rows, ts, saved))

    cache = None
    if training:
        params = tuple(p.copy() for p in (w_ih, w_hh, b_ih, b_hh))
        cache = ReferenceCache(x.shape, (B, H), params, bool(reset_after), steps)
    return out, h, cache


def gru_backward(dout, dh_n, cache):
    """Backpropagate through time: dout (T, B, H) or None, dh_n (B, H) or None.

    Returns (dx, dh0, dw_ih, dw_hh, db_ih, db_hh), fresh arrays in the forward's dtype; dh0 is
    the gradient with respect to the initial state even when the forward was given h0=None.
    """
    if not isinstance(cache, ReferenceCache):
        raise TypeError("cache must come from reference.gru_forward(..., training=True), "
                        f"got {type(cache).__name__}")
    w_ih, w_hh, b_ih, b_hh = cache.params
    dtype = w_ih.dtype
    T, B, I = cache.x_shape
    H = cache.h_shape[1]
    if dout is not None:
        dout = _array("dout", dout, dtype, (T, B, H))
    dh = np.zeros((B, H), dtype) if dh_n is None else _array("dh_n", dh_n, dtype, (B, H)).copy()

    dx = np.zeros((T, B, I), dtype)
    grads = (np.zeros_like(w_ih), np.zeros_like(w_hh), np.zeros_like(b_ih), np.zeros_like(b_hh))
    for rows, ts, saved in reversed(cache.steps):
        if dout is not None:
            dh[rows] += dout[ts, rows]          # out[ts, rows] is this step's h'
        dx_s, dh_prev = _step_backward(dh[rows], saved, w_ih, w_hh, grads, cache.reset_after)
        dx[ts, rows] = dx_s
        dh[rows] = dh_prev
    return (dx, dh) + grads


def gru_cell(x_t, h, w_ih, w_hh, b_ih, b_hh, *, reset_after=False):
    """One GRU step: x_t (B, I), h (B, H) -> h' (B, H)."""
    dtype = _dtype_of("x_t", x_t)
    x_t = _array("x_t", x_t, dtype, (None, None))
    B, I = x_t.shape
    H, w_ih, w_hh, b_ih, b_hh = _check_params(dtype, I, w_ih, w_hh, b_ih, b_hh)
    h = np.zeros((B, H), dtype) if h is None else _array("h", h, dtype, (B, H))
    return _step_forward(x_t, h, w_ih, w_hh, b_ih, b_hh, reset_after)[0]


# --------------------------------------------------------------------------------------------
# the optimizer steps grucy/_optim.pyx compiles (its numbers); state arrays updated in place
# --------------------------------------------------------------------------------------------

def adam_update(p, g, m, v, t, lr, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0,
                decoupled=False, max_v=None):
    """Step t (from 1) of Adam (AdamW when decoupled) on p, m and v from g, as numpy
    operations on the arrays' dtype; grucy.optim.Adam's compiled step gives these bits.
    max_v: AMSGrad's running maximum of v (updated in place), or None for plain Adam."""
    b1, b2 = betas
    if weight_decay:
        if decoupled:
            p *= 1.0 - lr * weight_decay                                     # (0) AdamW
        else:
            g = g + weight_decay * p                                         # (0) Adam
    m *= b1                                                                  # (1)
    m += (1.0 - b1) * g
    v *= b2                                                                  # (2)
    v += (1.0 - b2) * g * g
    if max_v is not None:
        np.maximum(max_v, v, out=max_v)                                      # (2') AMSGrad
        v = max_v
    denom = np.sqrt(v) / math.sqrt(1.0 - b2 ** t) + eps                      # (3)
    p -= (lr / (1.0 - b1 ** t)) * m / denom                                  # (4)


def sgd_update(p, g, buf, lr, momentum=0.0, dampening=0.0, nesterov=False, weight_decay=0.0,
               first=False):
    """An SGD step on p (and buf, the momentum buffer, when momentum != 0) from g; first:
    the parameter's first step, which sets buf to g."""
    if weight_decay:
        g = g + weight_decay * p                                             # (0)
    if momentum:
        if first:                                                            # (1)
            buf[...] = g
        else:
            buf *= momentum
            buf += (1.0 - dampening) * g
        g = g + momentum * buf if nesterov else buf                          # (2)
    p -= lr * g                                                              # (3)


def rmsprop_update(p, g, v, c, buf, lr, alpha=0.99, eps=1e-8, weight_decay=0.0, momentum=0.0):
    """An RMSprop step on p and v (c, the gradient average, when not None: centered; buf
    when momentum > 0) from g."""
    if weight_decay:
        g = g + weight_decay * p                                             # (0)
    v *= alpha                                                               # (1)
    v += (1.0 - alpha) * g * g
    if c is not None:                                                        # (2)
        c *= alpha
        c += (1.0 - alpha) * g
        # torch's sqrt(v - c * c), NaN where rounding (a constant gradient) or a loaded state
        # leaves v - c * c < 0; in exact arithmetic it never is, and 0 is its value there
        avg = np.sqrt(np.maximum(v - c * c, 0.0)) + eps
    else:
        avg = np.sqrt(v) + eps
    if momentum > 0:                                                         # (3)
        buf *= momentum
        buf += g / avg
        p -= lr * buf
    else:
        p -= lr * g / avg
