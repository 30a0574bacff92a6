"""The kernel contract: validate, make contiguous, call the compiled loops.

    out, h_n, cache = gru_forward(x, h0, w_ih, w_hh, b_ih, b_hh, *, reset_after=False,
                                  lengths=None, reverse=False, training=True)
    dx, dh0, dw_ih, dw_hh, db_ih, db_hh = gru_backward(dout, dh_n, cache)
    h_next = gru_cell(x_t, h, w_ih, w_hh, b_ih, b_hh, *, reset_after=False)

Everything a caller can get wrong is caught here, before compiled code runs, with an
exception that names the argument and says what was expected; the loops in _gru.pyx
trust their inputs and check nothing. Two checks live in _gru.pyx's entry points instead,
before its loops: the compiled backward's of the cache (its shapes, alignment and lengths,
cheapest in C; gru_backward names the cache in the error), and Cell.step's of its
arguments (the streaming path: a step takes about 2 µs, so checks there are C-level).
The compiled forward and backward also recheck the shapes their loops index by, tersely,
so that calling grucy._gru directly cannot make them read out of bounds.
Arrays are made C-contiguous only once every shape is checked: a zero-strided view
(np.broadcast_to) of a wrong, huge shape is refused, not copied.

Empty batches: T = 0 steps or B = 0 rows are allowed everywhere (gru_forward, gru_backward,
gru_cell, Cell.step, the layers above), I and H must be >= 1. Empty in, empty out of the
usual shapes: out (T, B, H) holds no state, h_n is a copy of h0 (T = 0 runs no step, as for
a row of length 0), backward gives dx (T, B, I), dh0 = dh_n and zero weight gradients.
torch.nn.GRU and GRUCell take B = 0 the same way; torch.nn.GRU refuses T = 0.
"""
from typing import NamedTuple

import numpy as np

from grucy import _gru
from grucy._checks import (FLOAT_DTYPES, asarray, c_aligned, check_bool, check_lengths,
                           check_rows, check_sizes)
from grucy._gru import Cell

__all__ = ["gru_forward", "gru_backward", "gru_cell", "GRUCache", "Cell"]

# The compiled entry points' float32 and float64 versions, picked here by dtype: calling the
# fused function makes Cython match the arguments against both signatures, about 5 µs a
# call, half the cost of a small problem's compiled forward.
_FORWARD = {np.dtype(np.float32): _gru.forward["float"],
            np.dtype(np.float64): _gru.forward["double"]}
_BACKWARD = {np.dtype(np.float32): _gru.backward["float"],
             np.dtype(np.float64): _gru.backward["double"]}


class GRUCache(NamedTuple):
    """What gru_forward(training=True) keeps for gru_backward. Treat as opaque."""
    x: np.ndarray            # (T, B, I)
    w_ih: np.ndarray         # (3H, I)
    w_hh: np.ndarray         # (3H, H)
    b_hh: np.ndarray         # (3H,) (b_hn: backward recomputes W_hn h + b_hn)
    lengths: np.ndarray      # (B,) int32
    reset_after: bool
    reverse: bool
    gates: np.ndarray        # (T, B, 3H) [r | z | n]
    out: np.ndarray          # (T, B, H) the returned out: backward reads each step's
                             #   previous state from it (out[t - 1], or h0)
    h0: np.ndarray           # (B, H) a copy of the caller's, or the zeros made for None


def gru_forward(x, h0, w_ih, w_hh, b_ih, b_hh, *, reset_after=False, lengths=None,
                reverse=False, training=True):
    """Run a GRU layer over a whole (padded) batch of sequences.

    x (T, B, I), T and B >= 0 (an empty batch: see grucy.kernels), I >= 1;
    h0 (B, H) or None for zeros; w_ih (3H, I); w_hh (3H, H); b_ih, b_hh (3H,),
    row blocks [r | z | n]; all float32 or all float64. lengths (B,) integers in [0, T] or
    None (all T): row b's steps t >= lengths[b] leave its state unchanged and its out rows
    zero. reverse=True runs each row backwards from its own last valid step.

    Returns out (T, B, H) (every h_t), h_n (B, H) and a cache for gru_backward, or None
    when training=False. Like autograd's saved tensors, the cache refers to x, w_ih, w_hh,
    b_hh and the returned out rather than copying them: change them in place only after
    gru_backward.
    """
    reset_after = check_bool(reset_after, "reset_after")
    reverse = check_bool(reverse, "reverse")
    training = check_bool(training, "training")
    if isinstance(x, np.ndarray) and x.ndim == 3:
        # before the copy (x could be a broadcast view): the projection and weight-gradient
        # GEMMs take up to T·B rows, an int of the 32-bit BLAS, which would wrap
        check_rows("x", x.shape, x.shape[0] * x.shape[1], "T·B",
                   "; split the batch or the sequence")
    x = _floating("x", x)
    dtype = x.dtype
    if x.ndim != 3:
        raise ValueError(f"x must be 3-D (T, B, I), got shape {x.shape}")
    T, B, I = x.shape
    if I < 1:                              # T = 0 or B = 0 is an empty batch, I = 0 no input
        raise ValueError(f"x must have I >= 1 features, got shape {x.shape}")
    w_ih, w_hh, b_ih, b_hh = _check_params(w_ih, w_hh, b_ih, b_hh, dtype, I)
    H = w_hh.shape[1]
    own_h0 = h0 is None                    # built here: nobody else can change it
    h0 = np.zeros((B, H), dtype) if own_h0 else _shaped("h0", h0, (B, H), dtype, "(B, H)")
    lengths = _lengths(lengths, T, B)
    x = c_aligned(x)                       # copied only now that every argument agrees
    out, h_n, gates = _FORWARD[dtype](x, h0, w_ih, w_hh, b_ih, b_hh, lengths,
                                      reset_after, reverse, training)
    if not training:
        return out, h_n, None
    if B and lengths.min() < T:
        # dW_ih = dAᵀ X runs over every (t, b) row; dA is zero on padding, but 0 · NaN is
        # NaN, and padding is often np.empty garbage. Keep a copy with zeroed padding.
        x = x.copy()
        x[np.arange(T)[:, None] >= lengths[None, :]] = 0
    return out, h_n, GRUCache(x, w_ih, w_hh, b_hh, lengths, reset_after, reverse, gates, out,
                              h0 if own_h0 else h0.copy())


def gru_backward(dout, dh_n, cache):
    """Backpropagation through time for one gru_forward call.

    dout (T, B, H) or None: gradient of the loss with respect to out (padded positions are
    ignored); dh_n (B, H) or None: with respect to h_n. cache: from gru_forward with
    training=True. Returns fresh arrays dx (T, B, I), dh0 (B, H), dw_ih (3H, I),
    dw_hh (3H, H), db_ih (3H,), db_hh (3H,) in the forward pass's dtype; for an empty batch
    (T = 0 or B = 0) dh0 is dh_n and the rest zeros.
    """
    if not isinstance(cache, GRUCache):
        raise TypeError("cache must be the cache returned by gru_forward(..., training=True), "
                        f"got {type(cache).__name__}")
    x, out, h0 = cache.x, cache.out, cache.h0      # dout must match out: sizes from there
    if not all(isinstance(a, np.ndarray) for a in (x, out, h0)) or out.dtype not in FLOAT_DTYPES \
            or x.dtype != out.dtype or h0.dtype != out.dtype \
            or out.ndim != 3 or x.shape[:2] != out.shape[:2] or h0.shape != out.shape[1:]:
        raise ValueError("cache.x, cache.out and cache.h0 disagree: cache must be "
                         "gru_forward's, unedited")
    T, B, H = out.shape
    dtype = out.dtype
    has_dout = dout is not None
    if has_dout:
        # the dtype is the forward pass's: "x" would name an argument backward does not take
        dout = _shaped("dout", dout, (T, B, H), dtype, "(T, B, H)", ref="the forward pass")
    dh_n = (np.zeros((B, H), dtype) if dh_n is None
            else _shaped("dh_n", dh_n, (B, H), dtype, "(B, H)", ref="the forward pass"))
    # The compiled backward checks that the cache's shapes agree, its arrays are aligned and
    # its lengths lie in [0, T] (C comparisons; a GRUCache is a NamedTuple, so
    # cache._replace(...) is one call away, and its arrays can be edited in place). Dtype and
    # layout errors surface from its typed arguments; dout and dh_n are already checked, so
    # they are the cache's.
    try:
        return _BACKWARD[dtype](x, cache.w_ih, cache.w_hh, cache.b_hh, cache.lengths,
                                check_bool(cache.reset_after, "cache.reset_after"),
                                check_bool(cache.reverse, "cache.reverse"), cache.gates,
                                out, h0, dh_n, dout, has_dout)
    except (ValueError, TypeError) as e:
        if str(e).startswith("cache."):
            raise
        raise ValueError(f"cache is not gru_forward's, unedited: {e}") from None


def gru_cell(x_t, h, w_ih, w_hh, b_ih, b_hh, *, reset_after=False):
    """One GRU step: x_t (B, I), h (B, H) or None (zeros) -> h_next (B, H). Weights as in
    gru_forward, all in x_t's dtype (a list is read as float64, as numpy reads it); B = 0
    rows gives an empty (0, H)."""
    # the dtype messages name x_t, not gru_forward's x, which this call does not take; a list
    # is read as numpy reads it, float64, which the message says beside float32 weights
    ref = "x_t" if isinstance(x_t, np.ndarray) else f"x_t (from a {type(x_t).__name__})"
    x_t = _floating("x_t", x_t)
    if x_t.ndim != 2:
        raise ValueError(f"x_t must be 2-D (B, I), got shape {x_t.shape}")
    if x_t.shape[1] < 1:                   # here, not in gru_forward: it would name x (1, B, I)
        raise ValueError(f"x_t must have I >= 1 features, got shape {x_t.shape}")
    w_hh = _recurrent_weight(w_hh, x_t.dtype, ref)   # gru_forward copies it and h once all agree
    # here, not in gru_forward, which would name x (1, B, I); and before h = None's zeros
    check_rows("x_t", x_t.shape, x_t.shape[0], "B")
    if h is None:                       # as gru_forward's h0 and reference.gru_cell's h
        h = np.zeros((x_t.shape[0], w_hh.shape[1]), x_t.dtype)
    h = _shaped("h", h, (x_t.shape[0], w_hh.shape[1]), x_t.dtype, "(B, H)", ref, copy=False)
    for name, arr in (("w_ih", w_ih), ("b_ih", b_ih), ("b_hh", b_hh)):
        _floating(name, arr, x_t.dtype, ref)    # dtypes only: gru_forward checks the shapes
    _, h_next, _ = gru_forward(x_t[None], h, w_ih, w_hh, b_ih, b_hh, reset_after=reset_after,
                               training=False)
    return h_next


def _check_params(w_ih, w_hh, b_ih, b_hh, dtype=None, I=None):
    """The four parameter arrays, C-contiguous, checked against each other and against
    dtype and I where given (gru_forward); without them the weights set both (Cell)."""
    w_ih_in, w_hh_in, b_ih_in, b_hh_in = w_ih, w_hh, b_ih, b_hh
    cell = dtype is None
    if cell:
        for name, arr in zip(("w_ih", "w_hh", "b_ih", "b_hh"), (w_ih, w_hh, b_ih, b_hh)):
            if not isinstance(arr, np.ndarray):     # a list would become a copy (see below)
                raise TypeError(f"{name} must be a numpy array (the Cell keeps a reference to "
                                f"it so that in-place updates are seen), got "
                                f"{type(arr).__name__}")
        dtype = _floating("w_ih", w_ih).dtype
    ref = "w_ih" if cell else "x"          # whose dtype the others must share
    w_hh = _recurrent_weight(w_hh, dtype, ref)
    H = w_hh.shape[1]
    w_ih = _floating("w_ih", w_ih, dtype, ref)
    if (w_ih.ndim != 2 or w_ih.shape[0] != 3 * H or w_ih.shape[1] < 1
            or (I is not None and w_ih.shape[1] != I)):
        raise ValueError(f"w_ih must have shape (3H, I) = ({3 * H}, {'I' if I is None else I}), "
                         f"got {w_ih.shape}")
    # the GEMMs take 3H and I as C ints, which would wrap (as T·B rows in gru_forward);
    # reachable with real memory (w_ih (3, 2**31) is 24 GiB) or views
    check_sizes("w_hh", w_hh.shape)
    check_sizes("w_ih", w_ih.shape)
    b_ih = _shaped("b_ih", b_ih, (3 * H,), dtype, "(3H,)", ref, copy=False)
    b_hh = _shaped("b_hh", b_hh, (3 * H,), dtype, "(3H,)", ref, copy=False)
    if cell:
        # The Cell keeps these and promises to see in-place updates of the caller's arrays;
        # a copy (of a list, a Fortran-ordered or strided array) would silently not.
        given = dict(w_ih=w_ih_in, w_hh=w_hh_in, b_ih=b_ih_in, b_hh=b_hh_in)
        # Not `arr is given`: np.asarray makes a base-class view of an ndarray subclass (the
        # np.memmap that np.load(..., mmap_mode=...) returns), and a view sees them too. arr
        # is that array, a view of it, or a fresh array (from a list), so sharing memory
        # tells them apart. Checked before any copy: one would be refused anyway.
        for name, arr in zip(given, (w_ih, w_hh, b_ih, b_hh)):
            if not (arr.flags.c_contiguous and arr.flags.aligned
                    and np.may_share_memory(arr, given[name])):
                raise ValueError(f"{name} must be a C-contiguous, aligned numpy array: the Cell "
                                 "keeps a reference to it so that in-place updates are seen")
        return w_ih, w_hh, b_ih, b_hh
    # copied only once all four agree: a huge zero-strided view (np.broadcast_to) with a
    # wrong shape is refused, not copied first (a MemoryError naming nothing, or the OOM killer)
    return tuple(map(c_aligned, (w_ih, w_hh, b_ih, b_hh)))


# ---- checks -------------------------------------------------------------------------------

def _floating(name, arr, dtype=None, ref="x"):
    """arr as a float32/float64 ndarray, not yet made C-contiguous and aligned (callers
    c_aligned it once its shape is checked); ref names the argument whose dtype it must share."""
    if arr is None:
        raise TypeError(f"{name} must be an array, got None")
    arr = asarray(arr, name)
    if arr.dtype not in FLOAT_DTYPES:
        native = arr.dtype.newbyteorder("=")
        if native in FLOAT_DTYPES:          # '>f8' is float64 to the eye: say what differs
            raise TypeError(f"{name} must have dtype float32 or float64 in native byte order, "
                            f"got {arr.dtype.str}; convert it with .astype(np.{native.name})")
        raise TypeError(f"{name} must have dtype float32 or float64, got {arr.dtype}")
    if dtype is not None and arr.dtype != dtype:
        raise TypeError(f"{name} has dtype {arr.dtype} but {ref} has {dtype}; "
                        "all arrays must share one dtype")
    return arr


def _recurrent_weight(w_hh, dtype, ref="x"):
    """w_hh checked, not yet copied (as _floating)."""
    w_hh = _floating("w_hh", w_hh, dtype, ref)
    if w_hh.ndim != 2 or w_hh.shape[1] < 1 or w_hh.shape[0] != 3 * w_hh.shape[1]:
        raise ValueError(f"w_hh must have shape (3H, H) with H >= 1, got {w_hh.shape}")
    return w_hh


def _shaped(name, arr, shape, dtype, symbolic, ref="x", copy=True):
    """arr checked against shape, then (copy=True) made C-contiguous and aligned."""
    arr = _floating(name, arr, dtype, ref)
    if arr.shape != shape:
        raise ValueError(f"{name} must have shape {symbolic} = {shape}, got {arr.shape}")
    return c_aligned(arr) if copy else arr


def _lengths(lengths, T, B):
    """lengths checked as the layers check them, as the int32 (B,) the loops read."""
    if lengths is None:      # (B = 0 with T past int32 is an empty batch like any other)
        return np.full(B, T if B else 0, dtype=np.int32)
    return check_lengths(lengths, B, T).astype(np.int32)
