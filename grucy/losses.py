"""Losses: each returns ``(loss, grad)``, the scalar loss (a Python float) and its gradient
with respect to the prediction/logits (same shape and dtype), averaged like torch's
``reduction="mean"`` (or summed with ``reduction="sum"``).

``mask=`` (a bool array of target's shape, labels' for cross_entropy; True where an element
counts) leaves out padded steps and missing values: "mean" is then the sum over the kept
elements divided by their number, so batches with more padding weigh no less, and the
gradient is exactly 0 at every element left out, whatever its prediction or target (NaN and
inf included: NaN marks a missing target). cross_entropy also takes torch's
``ignore_index``, ``label_smoothing`` and per-class ``weight``.

Logit losses never form log(sigmoid) or log(softmax) naively:

    bce_with_logits(x, t) = max(x, 0) - x t + log1p(exp(-|x|))        d/dx = sigmoid(x) - t
    cross_entropy(x, y)   = logsumexp(x) - x[y]                        d/dx = softmax(x) - onehot(y)
"""
import numpy as np

from ._checks import as_float_array, asarray, check_choice, check_float, check_int

__all__ = ["mse", "mae", "bce_with_logits", "cross_entropy", "sigmoid", "softmax", "log_softmax"]

_REDUCTIONS = ("mean", "sum")


def _mask(mask, shape, of):
    """``mask`` checked as a bool array of ``shape`` (that of the argument named ``of``); None
    stays None. Not broadcast: numpy aligns trailing axes, so a (T, B) mask for a (T, B, 1)
    prediction would be read along the wrong axes wherever the sizes happened to allow it."""
    if mask is None:
        return None
    m = asarray(mask, "mask")
    if m.dtype != np.bool_:
        # 0/1 integers are refused, not cast: an int array reads as indices in numpy
        # (x[[0, 1]] picks rows 0 and 1), so which was meant is a guess
        raise TypeError(f"mask must be a bool array, True where an element counts, got dtype "
                        f"{m.dtype} (for 0/1 values pass mask.astype(bool))")
    if m.shape != shape:
        raise ValueError(f"mask must have the shape of {of} {shape}, got {m.shape}")
    return m


def _kept(arr, mask):
    """arr with 0 wherever mask is False, so a NaN or inf left out reaches no sum."""
    return arr if mask is None else np.where(mask, arr, arr.dtype.type(0))


def _pair(pred, target, pred_name="pred", mask=None):
    """(pred, target, mask) checked; pred and target are 0 wherever mask is False."""
    # numpy needs no C order: not copied, so that a huge zero-strided view of the wrong shape
    # is refused below rather than copied first (numpy's MemoryError, naming nothing)
    pred = as_float_array(pred, pred_name, contiguous=False)
    target = as_float_array(target, "target", contiguous=False)
    if target.shape != pred.shape:
        raise ValueError(f"target must have the shape of {pred_name} {pred.shape}, got {target.shape}")
    if pred.size == 0:
        raise ValueError(f"{pred_name} must not be empty")
    mask = _mask(mask, pred.shape, pred_name)
    # before the narrowing check: a value left out need not fit pred's dtype either
    pred, target = _kept(pred, mask), _kept(target, mask)
    if target.dtype.itemsize <= pred.dtype.itemsize:
        return pred, target.astype(pred.dtype, copy=False), mask
    with np.errstate(over="ignore"):                 # checked below, naming the argument
        narrow = target.astype(pred.dtype)
    if np.isinf(narrow).sum() != np.isinf(target).sum():
        raise ValueError(f"target must fit {pred_name}'s dtype {pred.dtype}: it holds finite "
                         f"values beyond +-{np.finfo(pred.dtype).max:.3g}, which would become inf")
    return pred, narrow, mask


def _scale(n, reduction, counted=None, empty="mask must have at least one True element"):
    """The factor of a sum over the elements counted (all n, or ``counted``'s True ones):
    1/count for "mean", 1 for "sum". A mean over no element is refused with ``empty``
    (torch's is nan, which the runner would take for a diverged model); a sum over none is
    0."""
    check_choice(reduction, "reduction", _REDUCTIONS)
    if reduction == "sum":
        return 1.0
    n = n if counted is None else int(np.count_nonzero(counted))
    if n == 0:
        raise ValueError(f"{empty} for reduction='mean': a mean over no element is undefined")
    return 1.0 / n


def _difference(pred, target):
    """pred - target in their dtype, without numpy's overflow warning: finite float32 values
    more than float32's max apart give inf, as in torch; the loss value is taken in float64
    (_wide) and stays finite."""
    with np.errstate(over="ignore"):
        return pred - target


def _wide(pred, target, diff):
    """pred - target in float64, for the loss value, to be overwritten (``diff`` itself when
    float64: call it once the gradient is taken). A float32 difference of finite inputs
    more than float32's max apart is inf, though the loss is finite in float64; the gradient
    stays the input dtype's difference, as torch's does, so training is unchanged. (asarray:
    the difference of 0-d arrays is a numpy scalar, which cannot be an ``out=``.)"""
    return np.asarray(diff if diff.dtype == np.float64
                      else np.subtract(pred, target, dtype=np.float64))


def _no_missing(target, loss):
    """Refuse a NaN target (a missing value), as bce_with_logits' range check refuses one: the
    loss and its gradient were NaN without a word. Looked for only once the loss is NaN,
    which any NaN target makes it, so a finite loss costs no extra pass over target. A NaN
    prediction is no input error but the model's, and the NaN loss says so (the runner
    stops on it, naming the epoch)."""
    if loss != loss and np.isnan(target).any():
        idx = tuple(int(i) for i in np.unravel_index(np.argmax(np.isnan(target)), target.shape))
        raise ValueError(f"target must not be NaN (a missing value; drop or fill it first), "
                         f"got nan at index {idx}")


def mse(pred, target, reduction="mean", *, mask=None):
    """Mean squared error. pred, target (any shape, same; a NaN target is refused as a missing
    value unless mask leaves it out); mask (pred's shape, bool) or None -> (loss, dpred)."""
    pred, target, mask = _pair(pred, target, mask=mask)     # left out: 0 - 0, no loss or grad
    s = _scale(pred.size, reduction, mask)
    diff = _difference(pred, target)
    grad = (diff * pred.dtype.type(2.0 * s)).astype(pred.dtype, copy=False)
    wide = _wide(pred, target, diff)
    loss = float(np.square(wide, out=wide).sum() * s)  # no np.dot: numpy's BLAS pool
    _no_missing(target, loss)
    return loss, grad


def mae(pred, target, reduction="mean", *, mask=None):
    """Mean absolute error. pred, target (same shape; a NaN target is refused as a missing
    value unless mask leaves it out); mask (pred's shape, bool) or None -> (loss, dpred);
    d|0| taken as 0 (torch)."""
    pred, target, mask = _pair(pred, target, mask=mask)     # left out: |0 - 0|, sign(0) = 0
    s = _scale(pred.size, reduction, mask)
    diff = _difference(pred, target)
    grad = (np.sign(diff) * pred.dtype.type(s)).astype(pred.dtype, copy=False)
    wide = _wide(pred, target, diff)
    loss = float(np.abs(wide, out=wide).sum() * s)
    _no_missing(target, loss)
    return loss, grad


def sigmoid(x):
    """Logistic sigmoid of x (any shape, same shape out): 1 / (1 + e) for x >= 0 and
    e / (1 + e) below, e = exp(-|x|) in (0, 1]. Nothing overflows, and a small result keeps
    its relative accuracy: (1 + tanh(x/2)) / 2, used before, cancelled to 0 below x = -17 in
    float32 (-38 in float64), so bce_with_logits' gradient of a confident negative was 0."""
    x = as_float_array(x, "x")
    e = np.exp(-np.abs(x))
    return np.where(x < 0, e, x.dtype.type(1)) / (1 + e)


def _along(x, axis):
    """x checked for a softmax along axis: numpy's max over an empty axis fails naming nothing,
    and a non-int axis failed comparing it here ("'<=' not supported between ...")."""
    x = as_float_array(x, "x")
    axis = check_int(axis, "axis")
    if not -x.ndim <= axis < x.ndim:
        # numpy's own AxisError, raised here: numpy's for 10**400 was an OverflowError
        # ("Python int too large to convert to C long"), naming nothing
        raise np.exceptions.AxisError(axis, x.ndim)
    if x.shape[axis] == 0:
        raise ValueError(f"x must have at least one element along axis {axis}, got shape {x.shape}")
    return x


def log_softmax(x, axis=-1):
    """log(softmax(x)) along ``axis``, x (any shape, same shape out), as x - logsumexp(x) (stable)."""
    x = _along(x, axis)
    m = x.max(axis=axis, keepdims=True)
    shifted = x - m
    return shifted - np.log(np.exp(shifted).sum(axis=axis, keepdims=True))


def softmax(x, axis=-1):
    """softmax(x) along ``axis``, x (any shape, same shape out), max-shifted (stable)."""
    x = _along(x, axis)
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def bce_with_logits(logits, target, reduction="mean", *, mask=None):
    """Binary cross-entropy on logits. logits, target in [0, 1] (same shape; where mask is
    False, anything, NaN included); mask (logits' shape, bool) or None -> (loss, dlogits)."""
    logits, target, mask = _pair(logits, target, "logits", mask)
    # not target.min() < 0 or target.max() > 1: both are False for a NaN (a missing label),
    # which then made the loss and every gradient NaN without a word
    if not ((target >= 0) & (target <= 1)).all():
        bad = target[~((target >= 0) & (target <= 1))].flat[0]
        raise ValueError(f"target must lie in [0, 1], got {bad!r}")
    s = _scale(logits.size, reduction, mask)
    x = logits.astype(np.float64)
    # a left-out element is logit 0, target 0 here: log 2 and 1/2, so kept out of both
    per = _kept(np.maximum(x, 0) - x * target + np.log1p(np.exp(-np.abs(x))), mask)
    grad = _kept((sigmoid(logits) - target) * logits.dtype.type(s), mask)
    return float(per.sum() * s), grad.astype(logits.dtype, copy=False)


def _class_weight(weight, C):
    """torch's per-class ``weight`` checked: (C,), finite, >= 0; as float64, as the loss
    is taken. A negative weight would reward a wrong class and could make the weighted
    mean's total 0 or negative."""
    if isinstance(weight, (list, tuple)) and asarray(weight, "weight").dtype == bool:
        # the list rule casts numpy's bools to 1.0 and 0.0, where a bool array is refused
        # (torch refuses a bool weight): bools are no class weights, listed or not
        raise TypeError("weight must have dtype float32 or float64, got a list of bools")
    w = as_float_array(weight, "weight", contiguous=False)
    if w.shape != (C,):
        raise ValueError(f"weight must have shape (C,) = ({C},), one per class of logits, "
                         f"got {w.shape}")
    if not np.isfinite(w).all():
        raise ValueError(f"weight must be finite, got {w[~np.isfinite(w)][0]}")
    if (w < 0).any():
        raise ValueError(f"weight must be >= 0, got {w.min()}")
    return w.astype(np.float64)


def cross_entropy(logits, labels, reduction="mean", *, ignore_index=None, mask=None,
                  label_smoothing=0.0, weight=None):
    """Softmax cross-entropy on logits.

    Args:
        logits: (..., C) unnormalised scores.
        labels: (...) integer class indices in [0, C) (where a label is left out, any int).
        ignore_index: an int or None: positions whose label equals it are left out (torch's
            ``ignore_index``, whose default -100 is None here: nothing is left out unasked).
        mask: (...) bool, labels' shape, or None: positions where it is False are left out.
        label_smoothing: eps in [0, 1], torch's: the target is (1 - eps) on the label plus
            eps / C on every class, so a position's loss is
            (1 - eps) (-log p[y]) + eps mean_c(-log p[c]).
        weight: (C,) finite floats >= 0, or None: torch's per-class weight. A position's
            loss is then (1 - eps) w[y] (-log p[y]) + eps/C sum_c w[c] (-log p[c]) (torch's
            smoothing term, weighted by every class's weight, not by w[y]), and "mean"
            divides the sum by the total of w[y] over the positions left in, not by their
            number, both terms alike (torch's). If that total is 0 (every weight 0, or
            every label left in of a zero-weight class), "mean" is refused, as a mean
            over no position is: torch's is nan (or inf), which the runner would take for
            a diverged model; "sum" is then 0 from the labels' term.
    Returns:
        (loss, dlogits (..., C)); the mean is over the label positions left in, and a
        left-out position has zero gradient, whatever its logits.
    """
    logits = as_float_array(logits, "logits", contiguous=False)     # as _pair's
    if logits.ndim < 1 or logits.shape[-1] < 1:
        raise ValueError(f"logits must be (..., C) with C >= 1, got shape {logits.shape}")
    labels = asarray(labels, "labels")
    if labels.dtype == np.bool_ or not np.issubdtype(labels.dtype, np.integer):
        raise TypeError(f"labels must be integer class indices, got dtype {labels.dtype}")
    if labels.shape != logits.shape[:-1]:
        raise ValueError(f"labels must have shape {logits.shape[:-1]}, got {labels.shape}")
    C = logits.shape[-1]
    if labels.size == 0:
        raise ValueError("labels must not be empty")
    eps = check_float(label_smoothing, "label_smoothing", 0.0, 1.0)
    w = None if weight is None else _class_weight(weight, C)
    kept = _mask(mask, labels.shape, "labels")
    if ignore_index is not None:
        ignore_index = check_int(ignore_index, "ignore_index")
        kept = (labels != ignore_index) if kept is None else kept & (labels != ignore_index)
    if kept is not None:         # left out: class 0 of all-zero logits, taken out of the sums
        labels = _kept(labels, kept)
        logits = _kept(logits, kept[..., None])
    if labels.min() < 0 or labels.max() >= C:
        raise ValueError(f"labels must lie in [0, {C}), got min {labels.min()} max {labels.max()}")
    s = _scale(labels.size, reduction, kept,
               "labels must have at least one position left in (not ignore_index, mask True)")
    x2 = logits.reshape(-1, C)
    y = labels.reshape(-1)
    logp = log_softmax(x2.astype(np.float64))
    rows = np.arange(y.size)
    picked = logp[rows, y]
    grad = np.exp(logp)
    if w is not None:
        # position i's target weights a = (1 - eps) w[y] onehot(y) + eps/C w: the loss is
        # -sum_c a_c log p_c and its gradient sum(a) p - a
        wy = w[y]                                                # (N,)
        if reduction == "mean":
            rows_kept = None if kept is None else kept.reshape(-1)
            with np.errstate(over="ignore"):      # an inf total is scaled below
                total = _kept(wy, rows_kept).sum()
            if not total > 0:
                raise ValueError("weight must give the labels left in a total above 0 for "
                                 "reduction='mean', got 0: a mean weighted by nothing is "
                                 "undefined (reduction='sum' gives the weighted sum)")
            if not 2.0 ** -1000 < total < 2.0 ** 1000:
                # 1 / total is inf (weights ~1e-310), or total itself (~1e307 each): a
                # weighted mean does not change when the weights are scaled by a power of
                # two, which brings the largest kept one to [0.5, 1) (torch's is inf or nan)
                w = np.ldexp(w, -np.frexp(_kept(wy, rows_kept).max())[1])
                wy = w[y]
                total = _kept(wy, rows_kept).sum()
            s = 1.0 / total
        picked = wy * picked
        if eps:      # (logp * w).sum, not np.dot: numpy's BLAS pool
            picked = (1.0 - eps) * picked + (eps / C) * (logp * w).sum(axis=1)
            grad *= ((1.0 - eps) * wy + (eps / C) * w.sum())[:, None]
            grad[rows, y] -= (1.0 - eps) * wy
            grad -= (eps / C) * w
        else:
            grad *= wy[:, None]
            grad[rows, y] -= wy
    elif eps:    # not taken at 0: the unsmoothed loss keeps its bits
        picked = (1.0 - eps) * picked + eps * logp.mean(axis=1)
        grad[rows, y] -= 1.0 - eps
        grad -= eps / C
    else:
        grad[rows, y] -= 1.0
    if kept is not None:
        picked = _kept(picked, kept.reshape(-1))
        grad = _kept(grad, kept.reshape(-1, 1))
    grad *= s
    # 0 - x, not -x: a sum over nothing left in (or every kept label certain) is 0.0, as
    # torch's, where -x gave -0.0
    return float(0.0 - picked.sum() * s), grad.astype(logits.dtype).reshape(logits.shape)
