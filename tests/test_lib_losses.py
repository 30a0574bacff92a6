"""grucy.losses: values and gradients vs torch and finite differences; stability at extremes."""
import numpy as np
import pytest

from grucy import losses


def _by_definition(name, pred, target):
    """Each loss per element, from its textbook formula (the log-sigmoids via logaddexp)."""
    if name == "mse":
        return (pred - target) ** 2
    if name == "mae":
        return np.abs(pred - target)
    if name == "bce_with_logits":    # -(t log s(x) + (1 - t) log(1 - s(x)))
        return target * np.logaddexp(0, -pred) + (1 - target) * np.logaddexp(0, pred)
    m = pred.max(axis=-1, keepdims=True)                  # cross_entropy: target = labels
    lse = (m + np.log(np.exp(pred - m).sum(axis=-1, keepdims=True)))[..., 0]
    return lse - np.take_along_axis(pred, target[..., None], axis=-1)[..., 0]


@pytest.mark.parametrize("reduction", ["mean", "sum"])
@pytest.mark.parametrize("name", ["mse", "mae", "bce_with_logits", "cross_entropy"])
def test_losses_match_their_definitions_and_finite_differences(name, reduction, numeric_grad):
    """Without torch: values against the formulas, gradients against five-point differences."""
    rng = np.random.default_rng(7)
    pred = rng.standard_normal((4, 3, 5))
    if name == "cross_entropy":                  # mean over the (4, 3) label positions
        target = rng.integers(0, 5, (4, 3))
    elif name == "bce_with_logits":
        target = rng.uniform(0, 1, pred.shape)
    else:
        target = rng.standard_normal(pred.shape)
    kw = {"reduction": reduction}
    fn = getattr(losses, name)
    loss, grad = fn(pred, target, **kw)
    each = _by_definition(name, pred, target)
    assert loss == pytest.approx(each.mean() if reduction == "mean" else each.sum(), rel=1e-12)
    np.testing.assert_allclose(grad, numeric_grad(lambda: fn(pred, target, **kw)[0], pred, 1e-4),
                               rtol=1e-7, atol=1e-10)


@pytest.mark.parametrize("reduction", ["mean", "sum"])
@pytest.mark.parametrize("name", ["mse", "mae", "bce_with_logits"])
def test_pointwise_losses_match_torch(name, reduction, numeric_grad):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(0)
    pred = rng.standard_normal((4, 3, 2))
    target = rng.uniform(0, 1, (4, 3, 2)) if name == "bce_with_logits" else rng.standard_normal((4, 3, 2))
    loss, grad = getattr(losses, name)(pred, target, reduction=reduction)
    tf = {"mse": torch.nn.functional.mse_loss, "mae": torch.nn.functional.l1_loss,
          "bce_with_logits": torch.nn.functional.binary_cross_entropy_with_logits}[name]
    p = torch.from_numpy(pred).requires_grad_()
    tl = tf(p, torch.from_numpy(target), reduction=reduction)
    tl.backward()
    assert isinstance(loss, float)
    np.testing.assert_allclose(loss, tl.item(), rtol=1e-12)
    np.testing.assert_allclose(grad, p.grad.numpy(), rtol=1e-12, atol=1e-15)
    fd = numeric_grad(lambda: getattr(losses, name)(pred, target, reduction)[0], pred, 1e-4)
    np.testing.assert_allclose(grad, fd, rtol=1e-5, atol=1e-8)


@pytest.mark.parametrize("shape", [(5, 4), (3, 2, 6)])
def test_cross_entropy_matches_torch(shape, numeric_grad):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(1)
    logits = rng.standard_normal(shape) * 3
    labels = rng.integers(0, shape[-1], shape[:-1])
    loss, grad = losses.cross_entropy(logits, labels)
    p = torch.from_numpy(logits).requires_grad_()
    tl = torch.nn.functional.cross_entropy(p.reshape(-1, shape[-1]), torch.from_numpy(labels).reshape(-1))
    tl.backward()
    np.testing.assert_allclose(loss, tl.item(), rtol=1e-12)
    np.testing.assert_allclose(grad, p.grad.numpy(), rtol=1e-10, atol=1e-14)
    fd = numeric_grad(lambda: losses.cross_entropy(logits, labels)[0], logits, 1e-4)
    np.testing.assert_allclose(grad, fd, rtol=1e-5, atol=1e-8)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_logit_losses_are_stable_at_extremes(dtype):
    big = np.array([[1e4, -1e4, 0.0]], dtype=dtype)
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        loss, grad = losses.bce_with_logits(big, np.array([[0.0, 1.0, 1.0]], dtype=dtype))
        assert np.isfinite(loss) and np.isfinite(grad).all()
        np.testing.assert_allclose(loss, (1e4 + 1e4 + np.log(2)) / 3, rtol=1e-6)
        loss, grad = losses.cross_entropy(np.array([[1e4, -1e4, 0.0]], dtype=dtype), np.array([1]))
        assert np.isfinite(loss) and np.isfinite(grad).all()
        np.testing.assert_allclose(loss, 2e4, rtol=1e-6)
        assert grad.dtype == dtype
        s = losses.softmax(np.array([1000.0, 0.0]))
        np.testing.assert_allclose(s, [1.0, 0.0])
        np.testing.assert_allclose(losses.sigmoid(np.array([-1e4, 1e4])), [0.0, 1.0])


def test_bce_of_confident_float32_logits_is_taken_in_float64():
    """bce_with_logits takes its loss in float64, as mse's and mae's is: for confident
    float32 logits max(x, 0) - x t cancels, and in float32 x t is rounded to 2**-10 near
    1e4, 2 to 4 % of these losses (a mutant taking it in the logits' dtype survived).
    Reference: the same formula in float64 on the same float32 values."""
    x = np.array([1e4, 3e4, -2e4], np.float32)
    t = np.array([1 - 2**-20, 1 - 2**-21, 2**-19], np.float32)
    xd, td = x.astype(np.float64), t.astype(np.float64)
    per = _by_definition("bce_with_logits", xd, td)
    loss, grad = losses.bce_with_logits(x, t)
    np.testing.assert_allclose(loss, per.mean(), rtol=1e-9)
    np.testing.assert_allclose(losses.bce_with_logits(x, t, "sum")[0], per.sum(), rtol=1e-9)
    assert grad.dtype == np.float32


def test_gradient_dtype_follows_prediction():
    p = np.ones((2, 2), np.float32)
    for fn in (losses.mse, losses.mae, losses.bce_with_logits):
        assert fn(p, np.zeros((2, 2)))[1].dtype == np.float32


def test_float64_target_beyond_float32_is_refused_not_inf():
    """A float64 target past float32's max would be cast to inf (loss inf, gradient inf)
    with only numpy's overflow warning; infinite targets stay the caller's own business."""
    p = np.zeros(3, np.float32)
    big = np.array([0.0, 1e39, 2.0])
    t = float(np.float32(3e38))                      # in range: kept, as float32 rounds it
    for fn, want in ((losses.mse, (t * t + 4) / 3), (losses.mae, (t + 2) / 3)):
        with pytest.raises(ValueError, match="target must fit pred's dtype float32"):
            fn(p, big)
        assert np.isinf(fn(p, np.array([0.0, np.inf, 2.0]))[0])   # inf in, inf out
        assert fn(p, np.array([0.0, 3e38, 2.0]))[0] == pytest.approx(want, rel=1e-12)
    with pytest.raises(ValueError, match="target must fit logits's dtype"):
        losses.bce_with_logits(p, big)


def test_bad_input_names_the_argument():
    with pytest.raises(ValueError, match="target"):
        losses.mse(np.zeros(3), np.zeros(4))
    with pytest.raises(TypeError, match="pred"):
        losses.mae("x", np.zeros(3))
    with pytest.raises(ValueError, match="reduction"):
        losses.mse(np.zeros(3), np.zeros(3), reduction="max")
    with pytest.raises(ValueError, match="target"):
        losses.bce_with_logits(np.zeros(3), np.array([0.0, 2.0, 1.0]))
    with pytest.raises(ValueError, match="labels"):
        losses.cross_entropy(np.zeros((2, 3)), np.array([0, 3]))
    with pytest.raises(TypeError, match="labels"):
        losses.cross_entropy(np.zeros((2, 3)), np.array([0.0, 1.0]))
    with pytest.raises(ValueError, match="labels"):
        losses.cross_entropy(np.zeros((2, 3)), np.array([0, 1, 2]))
    with pytest.raises(ValueError, match="pred"):
        losses.mse(np.zeros(0), np.zeros(0))


@pytest.mark.parametrize("fn", [losses.softmax, losses.log_softmax])
def test_softmax_over_an_empty_axis_names_x(fn):
    """Regression: numpy's 'zero-size array to reduction operation maximum which has no
    identity'; an empty array along another axis is fine."""
    with pytest.raises(ValueError, match="x must have at least one element along axis -1"):
        fn(np.zeros((3, 0)))
    assert fn(np.zeros((0, 3))).shape == (0, 3)


@pytest.mark.parametrize("name", ["mse", "mae", "bce_with_logits", "cross_entropy"])
def test_a_huge_view_of_the_wrong_shape_is_refused_before_any_copy(name):
    """Regression: pred (or logits) was made C-contiguous before its shape was compared with
    target's (labels'): a zero-strided view of 2**40 rows was numpy's MemoryError (12 TiB)."""
    huge = np.broadcast_to(np.zeros((1, 3), np.float32), (2**40, 3))
    if name == "cross_entropy":
        with pytest.raises(ValueError, match=r"^labels must have shape \(1099511627776,\), got"):
            losses.cross_entropy(huge, [0, 1])
        return
    with pytest.raises(ValueError, match=r"^target must have the shape of "):
        getattr(losses, name)(huge, np.zeros((2, 3), np.float32))


@pytest.mark.parametrize("fn", [losses.softmax, losses.log_softmax])
@pytest.mark.parametrize("axis, exc, match", [
    ("a", TypeError, "axis must be an int, got str"),
    (1.0, TypeError, "axis must be an int, got float"),
    ((0, 1), TypeError, "axis must be an int, got tuple"),
    (2, np.exceptions.AxisError, "axis 2 is out of bounds for array of dimension 2"),
    (-10**400, np.exceptions.AxisError, r"axis -10{400} is out of bounds for array of dim")])
def test_softmax_names_a_bad_axis(fn, axis, exc, match):
    """Regression: a str axis was "'<=' not supported between instances of 'int' and 'str'",
    and one past a C long numpy's OverflowError ("Python int too large to convert to C
    long"); out of range, numpy's AxisError names it."""
    with pytest.raises(exc, match=match):
        fn(np.zeros((3, 4)), axis=axis)


@pytest.mark.parametrize("name, expected", [("mse", lambda d: d * d), ("mae", abs)])
def test_float32_pointwise_loss_is_finite_when_the_difference_overflows_float32(name, expected):
    """Regression: pred - target was taken in float32, so finite inputs more than float32's
    max apart gave an inf loss, though the loss (accumulated in float64) is finite."""
    pred = np.array([3e38, 1.0, -2.5e38, 0.5], np.float32)
    target = np.array([-3e38, 1.0, 2.5e38, -0.5], np.float32)
    # the same sums in Python floats (float64) from the float32 inputs' exact values
    diffs = [float(p) - float(t) for p, t in zip(pred, target)]
    # The gradient stays float32 arithmetic (torch's), whose difference does overflow here
    with np.errstate(over="ignore"):
        loss, grad = getattr(losses, name)(pred, target)
        total = getattr(losses, name)(pred, target, reduction="sum")[0]
        scalar = getattr(losses, name)(np.float32(3e38), np.float32(-3e38))[0]
    assert loss == pytest.approx(sum(expected(d) for d in diffs) / 4, rel=1e-15)
    assert total == pytest.approx(sum(expected(d) for d in diffs), rel=1e-15)
    assert grad.dtype == np.float32                  # the gradient keeps the input dtype
    assert grad[1] == 0 and grad[3] == (0.5 if name == "mse" else 0.25)
    # 0-d inputs: the difference is a numpy scalar there
    assert scalar == pytest.approx(expected(2 * float(np.float32(3e38))), rel=1e-15)
    assert getattr(losses, name)(2.0, -1.0)[0] == expected(3.0)


@pytest.mark.parametrize("bad", [np.nan, -0.5, 1.5])
def test_bce_target_outside_0_1_or_nan_is_refused(bad):
    """A NaN target (a missing label) passed the range check (NaN compares False) and made
    the loss and the whole gradient NaN silently."""
    with pytest.raises(ValueError, match=r"target must lie in \[0, 1\], got") as e:
        losses.bce_with_logits(np.zeros(4), np.array([1.0, 0.0, bad, 1.0]))
    assert repr(np.float64(bad)) in str(e.value)     # the offending value, not a valid 0 or 1


@pytest.mark.parametrize("axis", [-1, 0, 1])
def test_softmax_sigmoid_and_log_softmax_match_their_formulas(axis):
    """Their values were only checked at saturation ([1000, 0] -> [1, 0]), which a softmax
    multiplying by the sum instead of dividing passed."""
    x = np.random.default_rng(2).standard_normal((3, 4)) * 2
    e = np.exp(x)
    want = e / e.sum(axis=axis, keepdims=True)
    np.testing.assert_allclose(losses.softmax(x, axis=axis), want, rtol=1e-13)
    np.testing.assert_allclose(losses.log_softmax(x, axis=axis), np.log(want), rtol=1e-13, atol=1e-14)
    np.testing.assert_allclose(losses.sigmoid(x), 1 / (1 + np.exp(-x)), rtol=1e-13)


def test_softmax_axis_bounds():
    """An empty axis named from the front (axis=-ndim) is refused by name; an axis out of range
    is numpy's AxisError (a ValueError), not an IndexError from the emptiness check."""
    with pytest.raises(ValueError, match="along axis -2"):
        losses.softmax(np.zeros((0, 3)), axis=-2)
    with pytest.raises(np.exceptions.AxisError):
        losses.softmax(np.zeros((2, 3)), axis=2)
    with pytest.raises(np.exceptions.AxisError):
        losses.log_softmax(np.zeros((2, 3)), axis=-3)


def test_cross_entropy_shapes_at_the_edges():
    """One sample with 1-D logits (C,) and a 0-d label, and a single class (C = 1), are
    valid; 0-d logits, C = 0, empty or negative labels are refused by name (a negative label
    indexed from the end: a silently wrong loss)."""
    x = np.array([0.3, -1.2, 2.0])
    loss, grad = losses.cross_entropy(x, np.int64(2))
    p = np.exp(x) / np.exp(x).sum()
    assert loss == pytest.approx(-np.log(p[2]), rel=1e-13)
    np.testing.assert_allclose(grad, p - np.eye(3)[2], rtol=1e-13, atol=1e-15)
    loss, grad = losses.cross_entropy(np.array([[5.0], [-3.0]]), np.array([0, 0]))
    assert loss == 0.0 and not grad.any()                       # log(softmax) of one class is 0
    for logits, labels, match in [
            (np.array(1.0), np.array(0), "logits must be"),
            (np.zeros((2, 3, 0)), np.zeros((2, 3), np.int64), "logits must be"),
            (np.zeros((0, 3)), np.zeros(0, np.int64), "labels must not be empty"),
            (np.zeros((2, 3)), np.array([-1, 2]), r"labels must lie in \[0, 3\)")]:
        with pytest.raises(ValueError, match=match):
            losses.cross_entropy(logits, labels)


@pytest.mark.parametrize("loss", [losses.mse, losses.mae])
def test_a_numpy_float32_scalar_keeps_its_dtype(loss):
    # numbers.Real went through float(): np.float32(1.5) came back with a float64 gradient
    _, grad = loss(np.float32(1.5), np.float32(0.0))
    assert grad.dtype == np.float32 and grad.shape == ()


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_sigmoid_keeps_its_relative_accuracy_far_below_zero(dtype):
    # (1 + tanh(x/2)) / 2 cancelled: 44% off at x = -17 and exactly 0 at -20 in float32,
    # so a confident negative's bce gradient was 0 (torch's is e^-20)
    x = np.concatenate([-np.geomspace(1e-3, 80 if dtype == np.float32 else 700, 400),
                        np.geomspace(1e-3, 80, 50)]).astype(dtype)
    exact = 1 / (1 + np.exp(-x.astype(np.longdouble)))
    got = losses.sigmoid(x)
    normal = exact >= np.finfo(dtype).tiny
    rel = np.abs(got[normal] - exact[normal]) / exact[normal]
    assert rel.max() <= 4 * np.finfo(dtype).eps, float(rel.max())
    _, grad = losses.bce_with_logits(np.array([-20.0], dtype), np.zeros(1, dtype))
    np.testing.assert_allclose(grad, np.exp(-20.0) / (1 + np.exp(-20.0)), rtol=4 * np.finfo(dtype).eps)


def test_a_sigmoid_head_is_accurate_far_below_zero():
    from grucy.layers import Linear
    head = Linear(1, 1, activation="sigmoid")
    head.set_parameters({"weight": np.ones((1, 1), np.float32), "bias": np.zeros(1, np.float32)})
    y = head.forward(np.float32([[-20.0], [-17.0]]))
    np.testing.assert_allclose(y[:, 0], 1 / (1 + np.exp([20.0, 17.0])), rtol=1e-6)


@pytest.mark.parametrize("loss", [losses.mse, losses.mae])
def test_finite_inputs_far_apart_raise_no_numpy_warning(loss):
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        value, _ = loss(np.float32([3e38, 0]), np.float32([-3e38, 0]))
    assert np.isfinite(value)


@pytest.mark.parametrize("name", ["mse", "mae"])
@pytest.mark.parametrize("reduction", ["mean", "sum"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_regression_target_nan_is_refused_as_a_missing_value(name, reduction, dtype):
    """Regression: a NaN target (a missing value) made the loss and its gradient NaN without
    a word, while bce_with_logits refused it. A NaN prediction is no input error: it is the
    model's, and the loss says so (NaN; the runner stops on a NaN loss, naming the epoch)."""
    fn = getattr(losses, name)
    pred = np.zeros((2, 3), dtype)
    target = np.ones((2, 3))
    target[1, 2] = np.nan
    for p in (pred, np.full((2, 3), np.nan, dtype)):     # refused whatever the prediction
        with pytest.raises(ValueError, match=r"^target must not be NaN \(a missing value; "
                                             r"drop or fill it first\), got nan at index \(1, 2\)$"):
            fn(p, target, reduction=reduction)
    with pytest.raises(ValueError, match=r"got nan at index \(\)$"):
        fn(dtype(0.0), np.nan)
    bad_pred = pred.copy()
    bad_pred[0, 1] = np.nan
    loss, grad = fn(bad_pred, np.ones((2, 3)), reduction=reduction)
    assert np.isnan(loss) and np.isnan(grad[0, 1]) and not np.isnan(np.delete(grad, 1)).any()
    # infinite targets are still the caller's own, as before: inf in, inf out
    assert np.isinf(fn(pred, np.array([[0, 0, np.inf], [0, 0, 0]]), reduction=reduction)[0])


# --- mask= and ignore_index: padded steps and missing values left out ---------------------

_TORCH_POINTWISE = {"mse": "mse_loss", "mae": "l1_loss",
                    "bce_with_logits": "binary_cross_entropy_with_logits"}
_LOOSE = {np.dtype(np.float64): dict(rtol=1e-12, atol=1e-15),
          np.dtype(np.float32): dict(rtol=2e-6, atol=1e-8)}


def _masked_problem(name, shape, dtype, seed):
    """pred, target and a mask of pred's (labels') shape, about 60% True, at least one."""
    rng = np.random.default_rng(seed)
    pred = rng.standard_normal(shape).astype(dtype)
    if name == "cross_entropy":
        target = rng.integers(0, shape[-1], shape[:-1])
    elif name == "bce_with_logits":
        target = rng.uniform(0, 1, shape).astype(dtype)
    else:
        target = rng.standard_normal(shape).astype(dtype)
    mask = rng.random(target.shape) < 0.6
    mask.flat[0] = True
    return pred, target, mask


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("reduction", ["mean", "sum"])
@pytest.mark.parametrize("name", ["mse", "mae", "bce_with_logits"])
def test_masked_pointwise_losses_match_torch(name, reduction, dtype):
    """torch's reduction="none", then the sum over the mask (divided by its count)."""
    torch = pytest.importorskip("torch")
    pred, target, mask = _masked_problem(name, (7, 4, 3), dtype, seed=11)
    loss, grad = getattr(losses, name)(pred, target, reduction, mask=mask)
    p = torch.from_numpy(pred).requires_grad_()
    per = getattr(torch.nn.functional, _TORCH_POINTWISE[name])(
        p, torch.from_numpy(target), reduction="none")
    m = torch.from_numpy(mask)
    tl = per[m].sum() / m.sum() if reduction == "mean" else per[m].sum()
    tl.backward()
    assert grad.dtype == dtype
    np.testing.assert_allclose(loss, tl.item(), rtol=1e-12 if dtype == np.float64 else 1e-6)
    np.testing.assert_allclose(grad, p.grad.numpy(), **_LOOSE[np.dtype(dtype)])
    assert not grad[~mask].any()


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("reduction", ["mean", "sum"])
@pytest.mark.parametrize("ignore_index", [-100, 2])
@pytest.mark.parametrize("shape", [(9, 4), (3, 5, 6)])
def test_cross_entropy_ignore_index_matches_torch(shape, ignore_index, reduction, dtype):
    torch = pytest.importorskip("torch")
    logits, labels, _ = _masked_problem("cross_entropy", shape, dtype, seed=12)
    rng = np.random.default_rng(13)
    labels[rng.random(labels.shape) < 0.4] = ignore_index
    labels.flat[0] = 0 if ignore_index != 0 else 1                # one position left in
    loss, grad = losses.cross_entropy(logits, labels, reduction, ignore_index=ignore_index)
    p = torch.from_numpy(logits).requires_grad_()
    C = shape[-1]
    tl = torch.nn.functional.cross_entropy(p.reshape(-1, C), torch.from_numpy(labels).reshape(-1),
                                           ignore_index=ignore_index, reduction=reduction)
    tl.backward()
    np.testing.assert_allclose(loss, tl.item(), rtol=1e-12 if dtype == np.float64 else 1e-6)
    np.testing.assert_allclose(grad, p.grad.numpy(), **_LOOSE[np.dtype(dtype)])
    assert not grad[labels == ignore_index].any()


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("reduction", ["mean", "sum"])
@pytest.mark.parametrize("eps", [0.1, 0.5, 1.0])
def test_cross_entropy_label_smoothing_matches_torch(eps, reduction, dtype):
    # with ignore_index too: torch leaves the smoothing term out at ignored positions
    torch = pytest.importorskip("torch")
    logits, labels, _ = _masked_problem("cross_entropy", (7, 3, 5), dtype, seed=21)
    labels[np.random.default_rng(22).random(labels.shape) < 0.3] = -100
    labels.flat[0] = 2
    loss, grad = losses.cross_entropy(logits, labels, reduction, ignore_index=-100,
                                      label_smoothing=eps)
    p = torch.from_numpy(logits).requires_grad_()
    tl = torch.nn.functional.cross_entropy(p.reshape(-1, 5), torch.from_numpy(labels).reshape(-1),
                                           ignore_index=-100, reduction=reduction,
                                           label_smoothing=eps)
    tl.backward()
    np.testing.assert_allclose(loss, tl.item(), rtol=1e-12 if dtype == np.float64 else 1e-6)
    # softmax - eps/C cancels where p is near eps/C: torch's float32 difference there is a
    # few float32 ulps of p (grucy's is taken in float64), so float32 is held to an
    # absolute bound of about 1e-7 as well
    tol = _LOOSE[np.dtype(dtype)] if dtype == np.float64 else {"rtol": 2e-6, "atol": 1e-7}
    np.testing.assert_allclose(grad, p.grad.numpy(), **tol)
    assert not grad[labels == -100].any()


def test_cross_entropy_label_smoothing_matches_its_definition_and_finite_differences():
    # float64: (1 - eps) (-log p[y]) + eps mean_c(-log p[c]), averaged, in numpy here, and
    # the gradient by five-point differences of the loss itself
    rng = np.random.default_rng(23)
    x, y, eps = rng.standard_normal((6, 4)), rng.integers(0, 4, 6), 0.2
    logp = x - np.log(np.exp(x).sum(axis=1, keepdims=True))
    want = np.mean((1 - eps) * -logp[np.arange(6), y] + eps * -logp.mean(axis=1))
    loss, grad = losses.cross_entropy(x, y, label_smoothing=eps)
    assert loss == pytest.approx(want, rel=1e-13)
    h, num = 1e-4, np.zeros_like(x)
    for i in np.ndindex(x.shape):
        f = []
        for k in (-2, -1, 1, 2):
            xk = x.copy()
            xk[i] += k * h
            f.append(losses.cross_entropy(xk, y, label_smoothing=eps)[0])
        num[i] = (f[0] - 8 * f[1] + 8 * f[2] - f[3]) / (12 * h)
    np.testing.assert_allclose(grad, num, rtol=1e-8, atol=1e-10)


@pytest.mark.parametrize("eps, error", [(-0.1, ValueError), (1.5, ValueError), (float("nan"), ValueError),
                                        ("0.1", TypeError), (True, TypeError)])
def test_cross_entropy_refuses_a_bad_label_smoothing_by_name(eps, error):
    with pytest.raises(error, match="label_smoothing"):
        losses.cross_entropy(np.zeros((2, 3)), np.array([0, 1]), label_smoothing=eps)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("reduction", ["mean", "sum"])
def test_cross_entropy_mask_with_ignore_index_matches_torch(reduction, dtype):
    """Both given: a position counts where mask is True and its label is not ignore_index;
    torch's reduction="none" (0 at ignored rows), summed over the mask, over that count."""
    torch = pytest.importorskip("torch")
    logits, labels, mask = _masked_problem("cross_entropy", (6, 3, 5), dtype, seed=14)
    labels[np.random.default_rng(15).random(labels.shape) < 0.3] = -1
    labels.flat[0] = 3
    loss, grad = losses.cross_entropy(logits, labels, reduction, ignore_index=-1, mask=mask)
    p = torch.from_numpy(logits).requires_grad_()
    per = torch.nn.functional.cross_entropy(p.reshape(-1, 5), torch.from_numpy(labels).reshape(-1),
                                            ignore_index=-1, reduction="none")
    m = torch.from_numpy(mask.reshape(-1))
    counted = m & torch.from_numpy(labels.reshape(-1) != -1)
    tl = per[m].sum() / counted.sum() if reduction == "mean" else per[m].sum()
    tl.backward()
    np.testing.assert_allclose(loss, tl.item(), rtol=1e-12 if dtype == np.float64 else 1e-6)
    np.testing.assert_allclose(grad, p.grad.numpy(), **_LOOSE[np.dtype(dtype)])


@pytest.mark.parametrize("reduction", ["mean", "sum"])
@pytest.mark.parametrize("name", ["mse", "mae", "bce_with_logits", "cross_entropy"])
def test_masked_losses_match_their_definitions_and_finite_differences(name, reduction, numeric_grad):
    """Without torch, float64: the formulas over the kept elements alone, and five-point
    differences of the masked loss. What is left out is NaN (a missing target, a diverged
    prediction): the differences there are 0, as the gradient must be."""
    pred, target, mask = _masked_problem(name, (6, 4, 3), np.float64, seed=16)
    each = _by_definition(name, pred[mask], target[mask])          # before the NaNs go in
    want = each.mean() if reduction == "mean" else each.sum()
    pred[~mask] = np.nan
    if name == "cross_entropy":
        target[~mask] = -1                          # no class: a padding label
    else:
        target[~mask] = np.nan
    fn = getattr(losses, name)
    with np.errstate(all="raise"):
        loss, grad = fn(pred, target, reduction, mask=mask)
    assert loss == pytest.approx(want, rel=1e-12)
    fd = numeric_grad(lambda: fn(pred, target, reduction, mask=mask)[0], pred, 1e-4)
    np.testing.assert_allclose(grad, fd, rtol=1e-7, atol=1e-10)
    assert not grad[~mask].any()


_DERIVATIVE = {"mse": lambda p, t: 2 * (p - t), "mae": lambda p, t: np.sign(p - t),
               "bce_with_logits": lambda p, t: 1 / (1 + np.exp(-p)) - t}


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name", ["mse", "mae", "bce_with_logits"])
def test_nan_and_inf_left_out_give_a_finite_loss_and_zero_gradient(name, dtype):
    """NaN and inf, in pred or target, where mask is False: the loss and gradient of the
    kept elements alone (float64 formulas), no numpy warning, and an exact 0 gradient."""
    pred = np.array([[0.5, np.nan, -1.0, 3.0], [np.inf, 2.0, -np.inf, -0.5]], dtype)
    target = np.array([[0.25, 1.0, np.nan, 0.0], [np.nan, 0.75, 1.0, -np.inf]])
    mask = np.isfinite(pred) & np.isfinite(target)
    if name == "bce_with_logits":
        target[1, 3] = -1.0                  # a padding value outside [0, 1] is left out too
    p, t = pred[mask].astype(np.float64), target[mask]
    for reduction, n in (("mean", mask.sum()), ("sum", 1)):
        with np.errstate(all="raise"):
            loss, grad = getattr(losses, name)(pred, target.astype(dtype), reduction, mask=mask)
        assert loss == pytest.approx(_by_definition(name, p, t).sum() / n, rel=1e-6)
        assert grad.dtype == dtype and np.isfinite(grad).all()
        np.testing.assert_allclose(grad[mask], _DERIVATIVE[name](p, t) / n, rtol=1e-6)
        assert not grad[~mask].any()


def test_cross_entropy_nan_and_inf_logits_left_out_give_zero_gradient():
    logits = np.array([[1.0, -2.0, 0.5], [np.nan, 0.0, 1.0], [np.inf, -np.inf, 0.0]])
    labels = np.array([2, 7, -5])            # out of range where left out: not refused
    for kw in ({"mask": np.array([True, False, False])}, {"mask": [True, False, True], "ignore_index": -5}):
        with np.errstate(all="raise"):
            loss, grad = losses.cross_entropy(logits, labels, **kw)
        p = np.exp(logits[0]) / np.exp(logits[0]).sum()
        assert loss == pytest.approx(-np.log(p[2]), rel=1e-13)
        np.testing.assert_allclose(grad[0], p - np.eye(3)[2], rtol=1e-13, atol=1e-15)
        assert not grad[1:].any()
    with pytest.raises(ValueError, match=r"labels must lie in \[0, 3\), got min -5 max 2"):
        losses.cross_entropy(logits, labels, mask=np.array([True, False, True]))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_masked_edges_of_the_pointwise_losses(dtype):
    """A NaN target where mask is True is still refused (at its index); a float64 target
    beyond float32 where mask is False is no overflow; a nested list of bools is a mask."""
    pred = np.zeros((2, 3), dtype)
    target = np.ones((2, 3))
    target[0, 1] = target[1, 2] = np.nan
    mask = np.array([[True, False, True], [True, True, True]])
    for fn in (losses.mse, losses.mae):
        with pytest.raises(ValueError, match=r"target must not be NaN .* at index \(1, 2\)$"):
            fn(pred, target, mask=mask)
    with pytest.raises(ValueError, match=r"target must lie in \[0, 1\], got np.float\d+\(nan\)"):
        losses.bce_with_logits(pred, target, mask=mask)
    loss, grad = losses.mse(np.zeros(2, dtype), np.array([1e39, 0.5]), mask=[False, True])
    assert loss == 0.25 and grad.tolist() == [0.0, -1.0]


@pytest.mark.parametrize("name", ["mse", "mae", "bce_with_logits", "cross_entropy"])
def test_all_false_mask_is_refused_for_a_mean_and_zero_for_a_sum(name):
    """A mean over no element is torch's nan, which reads as a diverged model: refused by
    name. A sum over none is 0, with a zero gradient."""
    pred, target, mask = _masked_problem(name, (4, 3), np.float64, seed=17)
    none = np.zeros_like(mask)
    fn = getattr(losses, name)
    want = "labels must have at least one position left in" if name == "cross_entropy" else \
        "mask must have at least one True element"
    with pytest.raises(ValueError, match=f"^{want}.*reduction='mean'"):
        fn(pred, target, mask=none)
    loss, grad = fn(pred, target, "sum", mask=none)
    assert loss == 0.0 and grad.shape == pred.shape and not grad.any()


def test_cross_entropy_every_label_ignored():
    with pytest.raises(ValueError, match=r"not ignore_index, mask True\) for reduction='mean'"):
        losses.cross_entropy(np.zeros((2, 3)), np.array([-100, -100]), ignore_index=-100)
    loss, grad = losses.cross_entropy(np.ones((2, 3)), np.array([-100, -100]), "sum", ignore_index=-100)
    assert loss == 0.0 and not grad.any()


@pytest.mark.parametrize("name", ["mse", "mae", "bce_with_logits", "cross_entropy"])
@pytest.mark.parametrize("bad, exc, match", [
    (np.ones((4, 3), np.int64), TypeError,
     r"^mask must be a bool array, True where an element counts, got dtype int64 \(for 0/1 "),
    (np.ones((4, 3)), TypeError, "^mask must be a bool array.*got dtype float64"),
    (np.ones(3, bool), ValueError, r"^mask must have the shape of \w+ \(4, 3\), got \(3,\)$"),
    (np.ones((3, 4), bool), ValueError, r"^mask must have the shape of \w+ \(4, 3\), got \(3, 4\)$"),
    ([[True], [True, False]], ValueError, "^mask must be an array or a rectangular nested list")])
def test_a_bad_mask_is_refused_by_name(name, bad, exc, match):
    """Int 0/1 is refused, not cast (numpy reads an int array as indices); a mask of another
    shape is refused, not broadcast, even where it would broadcast."""
    pred = np.zeros((4, 3, 2)) if name == "cross_entropy" else np.zeros((4, 3))
    target = np.zeros((4, 3), np.int64) if name == "cross_entropy" else np.zeros((4, 3))
    # the shape named is the argument the mask goes with: labels' for cross_entropy
    of = {"mse": "pred", "mae": "pred", "bce_with_logits": "logits", "cross_entropy": "labels"}[name]
    with pytest.raises(exc, match=match.replace(r"\w+", of)):
        getattr(losses, name)(pred, target, mask=bad)
    if name != "cross_entropy":    # (4, 1) broadcasts against (4, 3): still refused
        with pytest.raises(ValueError, match=r"mask must have the shape of (pred|logits) \(4, 3\)"):
            getattr(losses, name)(pred, target, mask=np.ones((4, 1), bool))


@pytest.mark.parametrize("bad, exc", [(1.0, TypeError), (True, TypeError), ("-100", TypeError)])
def test_cross_entropy_ignore_index_must_be_an_int(bad, exc):
    with pytest.raises(exc, match="ignore_index must be an int"):
        losses.cross_entropy(np.zeros((2, 3)), np.array([0, 1]), ignore_index=bad)


@pytest.mark.parametrize("kw, labels, logits", [
    ({"ignore_index": -100, "reduction": "sum"}, [-100, -100], np.ones((2, 3))),
    ({"mask": np.zeros(2, bool), "reduction": "sum"}, [0, 1], np.ones((2, 3))),
    ({}, [0, 0], np.array([[0.0, -1000.0, -1000.0], [0.0, -1000.0, -1000.0]])),   # certain
])
def test_cross_entropy_of_zero_is_positive_zero_as_torchs(kw, labels, logits):
    """A loss of exactly 0 (nothing left in to sum, or every kept label certain) is 0.0
    as torch's, not -0.0 (printed "-0.0")."""
    torch = pytest.importorskip("torch")
    labels = np.array(labels)
    loss, _ = losses.cross_entropy(logits, labels, **kw)
    tl = labels.copy()
    if "mask" in kw:
        tl[~kw["mask"]] = -100
    want = float(torch.nn.functional.cross_entropy(
        torch.tensor(logits), torch.tensor(tl), ignore_index=-100,
        reduction=kw.get("reduction", "mean")))
    assert loss == want == 0.0
    assert np.copysign(1.0, loss) == np.copysign(1.0, want) == 1.0


# --- weight=: torch's per-class weight ------------------------------------------------------

def _weighted_problem(left_out, shape, dtype, seed):
    """logits, labels, a per-class weight (class 1's 0) and the keywords that leave positions
    out: ignore_index -7, a mask, both or neither. Position 0 is always left in, class 0."""
    logits, labels, mask = _masked_problem("cross_entropy", shape, dtype, seed)
    rng = np.random.default_rng(seed + 1)
    w = rng.uniform(0.2, 3.0, shape[-1]).astype(dtype)
    w[1] = 0.0                      # a class that counts for nothing, in the mean's total too
    kw = {}
    if left_out in ("ignore_index", "both"):
        labels[rng.random(labels.shape) < 0.3] = -7
        kw["ignore_index"] = -7
    if left_out in ("mask", "both"):
        kw["mask"] = mask
    labels.flat[0] = 0
    return logits, labels, w, kw


def _weighted_by_definition(logits, labels, w, eps, reduction, kept):
    """float64 numpy: (1 - eps) w[y] (-log p[y]) + eps/C sum_c w[c] (-log p[c]) per position,
    summed over the kept ones, divided by their w[y]'s total for "mean"."""
    x, y = logits[kept].astype(np.float64), labels[kept]
    C = x.shape[-1]
    logp = x - np.log(np.exp(x).sum(axis=-1, keepdims=True))
    w = w.astype(np.float64)
    per = (1 - eps) * w[y] * -logp[np.arange(y.size), y] + eps / C * -(logp * w).sum(axis=-1)
    return per.sum() / w[y].sum() if reduction == "mean" else per.sum()


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("reduction", ["mean", "sum"])
@pytest.mark.parametrize("eps", [0.0, 0.3, 1.0])
@pytest.mark.parametrize("left_out", ["nothing", "ignore_index", "mask", "both"])
def test_cross_entropy_weight_matches_torch(left_out, eps, reduction, dtype):
    """torch's weighted cross_entropy, value and gradient; grucy's mask is torch's
    ignore_index at the positions the mask leaves out (nothing in the sum, nothing in the
    weighted mean's total)."""
    torch = pytest.importorskip("torch")
    logits, labels, w, kw = _weighted_problem(left_out, (6, 3, 5), dtype, seed=31)
    loss, grad = losses.cross_entropy(logits, labels, reduction, weight=w, label_smoothing=eps, **kw)
    tlabels = labels.copy()
    if "mask" in kw:
        tlabels[~kw["mask"]] = -7
    p = torch.from_numpy(logits).requires_grad_()
    tl = torch.nn.functional.cross_entropy(
        p.reshape(-1, 5), torch.from_numpy(tlabels).reshape(-1), weight=torch.from_numpy(w),
        ignore_index=-7, reduction=reduction, label_smoothing=eps)
    tl.backward()
    assert grad.dtype == dtype
    np.testing.assert_allclose(loss, tl.item(), rtol=1e-12 if dtype == np.float64 else 1e-6)
    # float32: torch's p - eps/C w cancels as in the unweighted smoothing test
    tol = _LOOSE[np.dtype(dtype)] if dtype == np.float64 else {"rtol": 2e-6, "atol": 1e-7}
    np.testing.assert_allclose(grad, p.grad.numpy(), **tol)
    assert not grad[tlabels == -7].any()


@pytest.mark.parametrize("eps", [0.0, 0.3])
@pytest.mark.parametrize("power", [-1040, 1022])
def test_cross_entropy_weighted_mean_takes_weights_at_any_float64_scale(power, eps):
    """found by a review: the weighted mean multiplied by 1 / total, which is inf for float64
    weights ~1e-310 (loss inf, gradient nan, where torch's is finite), and a total past
    float64's max (weights ~1e307 over many positions) made it 0. A weighted mean does
    not change when every weight is multiplied by a power of two: torch's with the
    unscaled weights is the reference."""
    torch = pytest.importorskip("torch")
    logits, labels, w, kw = _weighted_problem("both", (6, 3, 5), np.float64, seed=37)
    w = np.round(w * 16) / 16                  # 6 bits: subnormals down to 2**-1040 hold them
    scaled = np.ldexp(w, power)
    assert np.array_equal(np.ldexp(scaled, -power), w)
    with np.errstate(over="ignore"):
        total = scaled[labels[kw["mask"] & (labels != -7)]].sum()
    assert not 1.0 / np.finfo(np.float64).max < total < np.inf     # 1 / total or total is inf
    loss, grad = losses.cross_entropy(logits, labels, weight=scaled, label_smoothing=eps, **kw)
    tlabels = labels.copy()
    tlabels[~kw["mask"]] = -7
    p = torch.from_numpy(logits).requires_grad_()
    tl = torch.nn.functional.cross_entropy(
        p.reshape(-1, 5), torch.from_numpy(tlabels).reshape(-1), weight=torch.from_numpy(w),
        ignore_index=-7, label_smoothing=eps)
    tl.backward()
    np.testing.assert_allclose(loss, tl.item(), rtol=1e-9)
    np.testing.assert_allclose(grad, p.grad.numpy(), rtol=1e-7, atol=1e-12)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("reduction", ["mean", "sum"])
@pytest.mark.parametrize("eps", [0.0, 0.3])
def test_cross_entropy_weight_with_a_mask_matches_torchs_unreduced_losses(eps, reduction, dtype):
    """torch's reduction="none" gives each position's weighted loss (0 at ignore_index):
    summed over the mask, over the w[y] total of the positions mask and ignore_index leave
    in for "mean"."""
    torch = pytest.importorskip("torch")
    logits, labels, w, kw = _weighted_problem("both", (7, 4), dtype, seed=33)
    loss, grad = losses.cross_entropy(logits, labels, reduction, weight=w, label_smoothing=eps, **kw)
    p = torch.from_numpy(logits).requires_grad_()
    y = torch.from_numpy(labels)
    per = torch.nn.functional.cross_entropy(p, y, weight=torch.from_numpy(w), ignore_index=-7,
                                            reduction="none", label_smoothing=eps)
    m = torch.from_numpy(kw["mask"])
    counted = m & (y != -7)
    tl = per[m].sum()
    if reduction == "mean":
        tl = tl / torch.from_numpy(w)[y[counted]].sum()
    tl.backward()
    np.testing.assert_allclose(loss, tl.item(), rtol=1e-12 if dtype == np.float64 else 1e-6)
    tol = _LOOSE[np.dtype(dtype)] if dtype == np.float64 else {"rtol": 2e-6, "atol": 1e-7}
    np.testing.assert_allclose(grad, p.grad.numpy(), **tol)


@pytest.mark.parametrize("reduction", ["mean", "sum"])
@pytest.mark.parametrize("eps", [0.0, 0.3, 1.0])
@pytest.mark.parametrize("left_out", ["nothing", "ignore_index", "mask", "both"])
def test_cross_entropy_weight_matches_its_definition_and_finite_differences(
        left_out, eps, reduction, numeric_grad):
    """Without torch, float64: the weighted formula in numpy over the kept positions, and
    five-point differences of the loss; left-out logits are NaN, and must reach nothing."""
    logits, labels, w, kw = _weighted_problem(left_out, (5, 3, 4), np.float64, seed=35)
    kept = np.ones(labels.shape, bool) if "mask" not in kw else kw["mask"].copy()
    if "ignore_index" in kw:
        kept &= labels != -7
    want = _weighted_by_definition(logits, labels, w, eps, reduction, kept)
    logits[~kept] = np.nan
    fn = lambda: losses.cross_entropy(logits, labels, reduction, weight=w,    # noqa: E731
                                      label_smoothing=eps, **kw)
    with np.errstate(all="raise"):
        loss, grad = fn()
    assert loss == pytest.approx(want, rel=1e-12)
    np.testing.assert_allclose(grad, numeric_grad(lambda: fn()[0], logits, 1e-4),
                               rtol=1e-7, atol=1e-10)
    assert not grad[~kept].any()


def test_cross_entropy_zero_weight_total_is_refused_for_a_mean_and_summed_for_a_sum():
    """torch's mean weighted by a total of 0 is nan (0/0), or inf/nan with label smoothing
    (its smoothing term weighs every class): refused, as a mean over no position is. A sum
    is what it is: 0 for all-zero weights, the smoothing term alone when only the kept
    labels' classes weigh 0."""
    x = np.random.default_rng(37).standard_normal((4, 3))
    for weight, labels in ((np.zeros(3), [0, 1, 2, 0]), ([0.0, 1.0, 2.0], [0, 0, 0, 0])):
        for eps in (0.0, 0.4):
            with pytest.raises(ValueError, match=r"^weight must give the labels left in a "
                                                 r"total above 0 for reduction='mean', got 0"):
                losses.cross_entropy(x, np.array(labels), weight=weight, label_smoothing=eps)
    loss, grad = losses.cross_entropy(x, np.array([0, 1, 2, 0]), "sum", weight=np.zeros(3),
                                      label_smoothing=0.4)
    assert loss == 0.0 and not grad.any()
    # only the kept labels weigh 0: every position's loss is eps/C sum_c w[c] (-log p[c])
    w, eps = np.array([0.0, 1.0, 2.0]), 0.4
    logp = x - np.log(np.exp(x).sum(axis=1, keepdims=True))
    loss, _ = losses.cross_entropy(x, np.zeros(4, np.int64), "sum", weight=w, label_smoothing=eps)
    assert loss == pytest.approx(eps / 3 * -(logp * w).sum(), rel=1e-13)
    # a zero total left by the mask alone is refused the same way; nothing left in at all
    # keeps the labels' message
    with pytest.raises(ValueError, match="^weight must give the labels left in a total above 0"):
        losses.cross_entropy(x, np.array([0, 1, 2, 0]), weight=w,
                             mask=np.array([True, False, False, True]))
    with pytest.raises(ValueError, match="^labels must have at least one position left in"):
        losses.cross_entropy(x, np.array([0, 1, 2, 0]), weight=w, mask=np.zeros(4, bool))


@pytest.mark.parametrize("bad, exc, match", [
    (np.ones(4), ValueError, r"^weight must have shape \(C,\) = \(3,\), one per class of logits, got \(4,\)$"),
    (np.ones((1, 3)), ValueError, r"^weight must have shape \(C,\) = \(3,\).* got \(1, 3\)$"),
    (np.ones(()), ValueError, r"^weight must have shape \(C,\) = \(3,\).* got \(\)$"),
    ([1.0, -0.5, 2.0], ValueError, r"^weight must be >= 0, got -0.5$"),
    ([1.0, np.nan, 2.0], ValueError, r"^weight must be finite, got nan$"),
    ([1.0, 2.0, np.inf], ValueError, r"^weight must be finite, got inf$"),
    (np.ones(3, np.int64), TypeError, "^weight must have dtype float32 or float64, got int64$"),
    ("abc", TypeError, "^weight must be a numpy array, got str$"),
    ([[1.0], [1.0, 2.0]], ValueError, "^weight must be an array or a rectangular nested list")])
def test_cross_entropy_refuses_a_bad_weight_by_name(bad, exc, match):
    with pytest.raises(exc, match=match):
        losses.cross_entropy(np.zeros((2, 3)), np.array([0, 1]), weight=bad)


@pytest.mark.parametrize("bad, match", [
    (np.array([True, False, True]), "got bool$"),
    ([True, False, True], "got a list of bools$"),
    ((True, False, True), "got a list of bools$")])
def test_cross_entropy_refuses_bool_weights_listed_or_not(bad, match):
    """Regression: a list of bools was taken as 1.0 and 0.0, where a bool array and an int64
    one were refused; torch refuses a bool weight tensor too."""
    with pytest.raises(TypeError, match="^weight must have dtype float32 or float64, " + match):
        losses.cross_entropy(np.zeros((2, 3)), np.array([0, 1]), weight=bad)


def test_torch_refuses_a_bool_weight():
    torch = pytest.importorskip("torch")
    with pytest.raises(RuntimeError):
        torch.nn.functional.cross_entropy(torch.zeros(2, 3), torch.tensor([0, 1]),
                                          weight=torch.tensor([True, False, True]))


@pytest.mark.parametrize("name", ["mse", "mae", "bce_with_logits"])
@pytest.mark.parametrize("masked", ["target", "pred"])
def test_a_numpy_masked_array_is_refused_and_mask_is_the_way(name, masked):
    """Regression: a masked array passed through as_float_array as an ndarray; the loss then
    summed the unmasked elements but divided by all of them (mse of [1, 1, 1] and masked
    [1, --, 2]: 0.667, not 0.5), and its NaN under the mask was never refused. The message
    points at mask=, whose result is the mean over the unmasked elements by definition."""
    pred = np.array([1.0, 1.0, 0.25])
    target = np.ma.masked_invalid(np.array([1.0, np.nan, 0.75]))
    args = dict(pred=pred, target=target)
    if masked == "pred":
        args = dict(pred=np.ma.masked_array(pred, mask=target.mask), target=target.filled(0.5))
    fn = getattr(losses, name)
    if masked == "pred" and name == "bce_with_logits":
        masked = "logits"
    with pytest.raises(TypeError, match=rf"^{masked} is a numpy masked array, whose mask grucy "
                                        r"would not see: .* mask=~its \.mask"):
        fn(args["pred"], args["target"])
    keep = ~target.mask
    loss, grad = fn(pred, target.filled(0.5), mask=keep)
    want = _by_definition(name, pred[keep], target.data[keep]).mean()
    assert loss == pytest.approx(want, rel=1e-14)
    assert grad[1] == 0
