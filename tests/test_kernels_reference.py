"""grucy.reference against float64 finite differences and against the equations themselves.

The reference is what the compiled kernels are checked against, so it is checked here
without using any of its own code as the expected value: gradients against five-point
central differences, one step against the equations of grucy/_gru.pyx's header written as
scalar loops, and lengths/reverse against running each row alone on its (flipped) valid
prefix.
"""

import math
import tracemalloc

import numpy as np
import pytest

T, B, I, H = 4, 4, 2, 3
# row lengths covering 0, 1, a middle value and T
LENGTHS = np.array([3, 0, T, 1])


def _loss(ref, reset_after, lengths, reverse, dout, dh_n):
    """L(arrays) = sum(out*dout) + sum(h_n*dh_n) through the reference forward."""
    def loss(arrays):
        out, h_n, _ = ref.gru_forward(**arrays, reset_after=reset_after, lengths=lengths,
                                      reverse=reverse, training=False)
        return float(np.sum(out * dout) + np.sum(h_n * dh_n))
    return loss


@pytest.mark.parametrize("reverse", [False, True], ids=["fwd", "rev"])
@pytest.mark.parametrize("lengths", [None, LENGTHS], ids=["full", "lengths"])
@pytest.mark.parametrize("reset_after", [False, True], ids=["seed", "reset_after"])
def test_gradients_match_finite_differences(ref, make_problem, make_cotangents, fd_grad,
                                            reset_after, lengths, reverse):
    arrays = make_problem(T, B, I, H, seed=10)
    dout, dh_n = make_cotangents(T, B, H, seed=11)
    _, _, cache = ref.gru_forward(**arrays, reset_after=reset_after, lengths=lengths,
                                  reverse=reverse)
    grads = dict(zip(("x", "h0", "w_ih", "w_hh", "b_ih", "b_hh"),
                     ref.gru_backward(dout, dh_n, cache)))
    loss = _loss(ref, reset_after, lengths, reverse, dout, dh_n)
    for name in grads:
        numeric = fd_grad(loss, arrays, name)
        assert np.abs(numeric).max() > 1e-3, f"{name}: degenerate test, gradient ~ 0"
        np.testing.assert_allclose(grads[name], numeric, rtol=1e-7, atol=1e-9, err_msg=name)


def _sigmoid(a):
    return 1 / (1 + math.exp(-a))


def _scalar_step(x, h, w_ih, w_hh, b_ih, b_hh, reset_after):
    """Equations (1)-(4) for one row, unit by unit, with nothing shared with grucy.reference."""
    n_in, n_h = len(x), len(h)

    def dot_in(row):
        return sum(w_ih[row, i] * x[i] for i in range(n_in)) + b_ih[row]

    def dot_h(row, v):
        return sum(w_hh[row, k] * v[k] for k in range(n_h)) + b_hh[row]

    r = [_sigmoid(dot_in(j) + dot_h(j, h)) for j in range(n_h)]
    z = [_sigmoid(dot_in(n_h + j) + dot_h(n_h + j, h)) for j in range(n_h)]
    rh = [r[k] * h[k] for k in range(n_h)]
    if reset_after:
        n = [math.tanh(dot_in(2 * n_h + j) + r[j] * dot_h(2 * n_h + j, h)) for j in range(n_h)]
    else:
        n = [math.tanh(dot_in(2 * n_h + j) + dot_h(2 * n_h + j, rh)) for j in range(n_h)]
    return [(1 - z[j]) * h[j] + z[j] * n[j] for j in range(n_h)]


@pytest.mark.parametrize("n_hidden", [5, 1], ids=["H5", "H1"])     # H = 1 is a valid size
@pytest.mark.parametrize("reset_after", [False, True], ids=["seed", "reset_after"])
def test_cell_matches_scalar_equations(ref, make_problem, reset_after, n_hidden):
    p = make_problem(1, 3, 4, n_hidden, seed=20)
    got = ref.gru_cell(p["x"][0], p["h0"], p["w_ih"], p["w_hh"], p["b_ih"], p["b_hh"],
                       reset_after=reset_after)
    want = [_scalar_step(p["x"][0, b], p["h0"][b], p["w_ih"], p["w_hh"], p["b_ih"], p["b_hh"],
                         reset_after) for b in range(3)]
    np.testing.assert_allclose(got, want, rtol=1e-13, atol=1e-14)
    if not reset_after:      # the default is the seed's candidate, as the kernels' is
        default = ref.gru_cell(p["x"][0], p["h0"], p["w_ih"], p["w_hh"], p["b_ih"], p["b_hh"])
        np.testing.assert_allclose(default, want, rtol=1e-13, atol=1e-14)
    # h=None is the zero state, as gru_forward's h0=None is
    got = ref.gru_cell(p["x"][0], None, p["w_ih"], p["w_hh"], p["b_ih"], p["b_hh"],
                       reset_after=reset_after)
    want = [_scalar_step(p["x"][0, b], [0.0] * n_hidden, p["w_ih"], p["w_hh"], p["b_ih"],
                         p["b_hh"], reset_after) for b in range(3)]
    np.testing.assert_allclose(got, want, rtol=1e-13, atol=1e-14)


@pytest.mark.parametrize("reverse", [False, True], ids=["fwd", "rev"])
@pytest.mark.parametrize("reset_after", [False, True], ids=["seed", "reset_after"])
def test_forward_unrolls_the_cell(ref, make_problem, reset_after, reverse):
    """out[t] is the cell applied to the previous state, in forward or reverse time order."""
    p = make_problem(5, 3, 2, 4, seed=21)
    runs = [ref.gru_forward(**p, reset_after=reset_after, reverse=reverse)[:2]]
    if not reset_after:      # the default is the seed's candidate, as the kernels' is
        runs.append(ref.gru_forward(**p, reverse=reverse)[:2])
    order = range(4, -1, -1) if reverse else range(5)
    for out, h_n in runs:
        h = p["h0"]
        for t in order:
            h = np.array([_scalar_step(p["x"][t, b], h[b], p["w_ih"], p["w_hh"], p["b_ih"],
                                       p["b_hh"], reset_after) for b in range(3)])
            np.testing.assert_allclose(out[t], h, rtol=1e-12, atol=1e-13, err_msg=f"t={t}")
        np.testing.assert_allclose(h_n, h, rtol=1e-12, atol=1e-13)


@pytest.mark.parametrize("reverse", [False, True], ids=["fwd", "rev"])
@pytest.mark.parametrize("reset_after", [False, True], ids=["seed", "reset_after"])
def test_lengths_equal_each_row_run_alone(ref, make_problem, make_cotangents, reset_after,
                                          reverse):
    """A row with length L behaves like that row alone on x[:L] (flipped when reverse), padded
    out rows are zero, padded dout is ignored, and the weight gradients add up over rows."""
    p = make_problem(T, B, I, H, seed=22)
    dout, dh_n = make_cotangents(T, B, H, seed=23)
    out, h_n, cache = ref.gru_forward(**p, reset_after=reset_after, lengths=LENGTHS,
                                      reverse=reverse)
    grads = ref.gru_backward(dout, dh_n, cache)
    dx, dh0, dparams = grads[0], grads[1], grads[2:]

    summed = [np.zeros_like(p[k]) for k in ("w_ih", "w_hh", "b_ih", "b_hh")]
    for b, L in enumerate(LENGTHS):
        np.testing.assert_array_equal(out[L:, b], 0.0, err_msg=f"padded out rows, b={b}")
        np.testing.assert_array_equal(dx[L:, b], 0.0, err_msg=f"padded dx rows, b={b}")
        if L == 0:
            np.testing.assert_array_equal(h_n[b], p["h0"][b])
            np.testing.assert_array_equal(dh0[b], dh_n[b])
            continue
        last = 0 if reverse else L - 1          # where the row's final state is written
        np.testing.assert_array_equal(h_n[b], out[last, b])
        flip = (lambda a: a[::-1]) if reverse else (lambda a: a)
        x_b = np.ascontiguousarray(flip(p["x"][:L, b:b + 1]))
        out_b, h_b, cache_b = ref.gru_forward(x_b, p["h0"][b:b + 1], p["w_ih"], p["w_hh"],
                                              p["b_ih"], p["b_hh"], reset_after=reset_after)
        np.testing.assert_allclose(out[:L, b:b + 1], flip(out_b), rtol=1e-13, atol=1e-14)
        np.testing.assert_allclose(h_n[b:b + 1], h_b, rtol=1e-13, atol=1e-14)
        g_b = ref.gru_backward(np.ascontiguousarray(flip(dout[:L, b:b + 1])),
                               dh_n[b:b + 1], cache_b)
        np.testing.assert_allclose(dx[:L, b:b + 1], flip(g_b[0]), rtol=1e-12, atol=1e-13)
        np.testing.assert_allclose(dh0[b:b + 1], g_b[1], rtol=1e-12, atol=1e-13)
        for acc, g in zip(summed, g_b[2:]):
            acc += g
    for name, got, want in zip(("dw_ih", "dw_hh", "db_ih", "db_hh"), dparams, summed):
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-13, err_msg=name)


@pytest.mark.parametrize("reset_after", [False, True], ids=["seed", "reset_after"])
def test_none_cotangents_mean_zero(ref, make_problem, make_cotangents, reset_after):
    p = make_problem(T, B, I, H, seed=24)
    dout, dh_n = make_cotangents(T, B, H, seed=25)
    _, _, cache = ref.gru_forward(**p, reset_after=reset_after, lengths=LENGTHS)
    for d_out, d_hn, zeroed in ((None, dh_n, (np.zeros_like(dout), dh_n)),
                                (dout, None, (dout, np.zeros_like(dh_n))),
                                (None, None, (np.zeros_like(dout), np.zeros_like(dh_n)))):
        got = ref.gru_backward(d_out, d_hn, cache)
        want = ref.gru_backward(*zeroed, cache)
        for g, w in zip(got, want):
            np.testing.assert_array_equal(g, w)
    assert all(np.all(g == 0) for g in ref.gru_backward(None, None, cache))


def test_h0_none_is_zero_state(ref, make_problem, make_cotangents):
    p = make_problem(T, B, I, H, seed=26, h0=False)
    dout, dh_n = make_cotangents(T, B, H, seed=27)
    out0, hn0, c0 = ref.gru_forward(**p)
    out1, hn1, c1 = ref.gru_forward(**{**p, "h0": np.zeros((B, H))})
    np.testing.assert_array_equal(out0, out1)
    np.testing.assert_array_equal(hn0, hn1)
    for g0, g1 in zip(ref.gru_backward(dout, dh_n, c0), ref.gru_backward(dout, dh_n, c1)):
        np.testing.assert_array_equal(g0, g1)


@pytest.mark.parametrize("reverse", [False, True], ids=["fwd", "rev"])
@pytest.mark.parametrize("reset_after", [False, True], ids=["seed", "reset_after"])
def test_float32_computes_in_float32_close_to_float64(ref, make_problem, make_cotangents, tol,
                                                      assert_close, reset_after, reverse):
    p64 = make_problem(6, 3, 5, 7, seed=28)
    d64 = make_cotangents(6, 3, 7, seed=29)
    p32 = {k: v.astype(np.float32) for k, v in p64.items()}
    d32 = tuple(d.astype(np.float32) for d in d64)
    lengths = np.array([6, 0, 4])
    kw = dict(reset_after=reset_after, lengths=lengths, reverse=reverse)
    out64, hn64, c64 = ref.gru_forward(**p64, **kw)
    out32, hn32, c32 = ref.gru_forward(**p32, **kw)
    g64 = ref.gru_backward(*d64, c64)
    g32 = ref.gru_backward(*d32, c32)
    f32 = np.dtype(np.float32)
    for name, a32, a64 in zip(("out", "h_n") + ("dx", "dh0", "dw_ih", "dw_hh", "db_ih", "db_hh"),
                              (out32, hn32) + g32, (out64, hn64) + g64):
        assert a32.dtype == f32, f"{name} is {a32.dtype}"
        assert_close(a32, a64, tol[f32], name)


def test_training_false_keeps_no_cache(ref, make_problem):
    p = make_problem(T, B, I, H, seed=30)
    out, h_n, cache = ref.gru_forward(**p, lengths=LENGTHS)
    out2, h_n2, cache2 = ref.gru_forward(**p, lengths=LENGTHS, training=False)
    assert cache is not None and cache2 is None
    np.testing.assert_array_equal(out, out2)
    np.testing.assert_array_equal(h_n, h_n2)
    with pytest.raises(TypeError, match="cache"):
        ref.gru_backward(None, None, cache2)


@pytest.mark.parametrize("reset_after", [False, True], ids=["seed", "reset_after"])
def test_inference_holds_no_step_s_cache(ref, make_problem, reset_after):
    """training=False keeps no per-step cache while it runs either: its peak memory is out
    plus a few steps' temporaries, not out plus T steps of (x, h, r, z, n, g) rows as the
    training forward's, and its results are bit-identical to the training forward's."""
    T_, B_, I_, H_ = 200, 16, 8, 32
    p = make_problem(T_, B_, I_, H_, seed=33)
    kw = dict(reset_after=reset_after, lengths=np.linspace(T_ // 2, T_, B_).astype(int),
              reverse=True)
    out_t, h_n_t, _ = ref.gru_forward(**p, **kw)
    step_bytes = B_ * (I_ + 5 * H_) * 8          # one step's saved rows, float64
    tracemalloc.start()
    try:
        out, h_n, cache = ref.gru_forward(**p, **kw, training=False)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert cache is None
    np.testing.assert_array_equal(out, out_t)
    np.testing.assert_array_equal(h_n, h_n_t)
    # generous: a quarter of T steps (the training forward holds all T; this one ~3)
    assert peak - out.nbytes < T_ // 4 * step_bytes, (peak, out.nbytes, step_bytes)


def test_read_only_inputs_are_not_modified(ref, make_problem, make_cotangents):
    p = make_problem(T, B, I, H, seed=31)
    dout, dh_n = make_cotangents(T, B, H, seed=32)
    copies = {k: v.copy() for k, v in p.items()}
    for a in list(p.values()) + [dout, dh_n]:
        a.flags.writeable = False
    _, _, cache = ref.gru_forward(**p, lengths=LENGTHS, reverse=True)
    ref.gru_backward(dout, dh_n, cache)
    for k in p:
        np.testing.assert_array_equal(p[k], copies[k])


@pytest.mark.parametrize("name, bad, exc", [
    ("x", np.zeros((T, B)), ValueError),
    ("x", np.zeros((T, B, I), np.int64), TypeError),
    ("h0", np.zeros((B, H + 1)), ValueError),
    ("w_ih", np.zeros((3 * H, I + 1)), ValueError),
    ("w_ih", np.zeros((3 * H + 1, I)), ValueError),     # rows not a multiple of 3
    ("w_ih", np.zeros((2, I)), ValueError),             # H = 0
    ("w_hh", np.zeros((3 * H, H), np.float32), TypeError),
    ("b_ih", np.zeros(3 * H + 1), ValueError),
    ("b_hh", np.zeros((3 * H, 1)), ValueError),
    ("lengths", np.array([1, 2, 3, T + 1]), ValueError),
    ("lengths", np.array([1, 2, 3, -1]), ValueError),
    ("lengths", np.array([1.0, 2.0, 3.0, 1.0]), TypeError),
    ("lengths", np.array([1, 2, 3]), ValueError),
])
def test_reference_rejects_bad_arguments_by_name(ref, make_problem, name, bad, exc):
    p = make_problem(T, B, I, H, seed=33)
    kwargs = {"lengths": bad} if name == "lengths" else {}
    if name != "lengths":
        p[name] = bad
    with pytest.raises(exc, match=rf"\b{name}\b"):
        ref.gru_forward(**p, **kwargs)


def test_shape_errors_name_the_expected_shape(ref, make_problem):
    p = make_problem(T, B, I, H, seed=34)
    with pytest.raises(ValueError, match=rf"h0 has shape \({B}, {H + 1}\), expected \({B}, {H}\)"):
        ref.gru_forward(**{**p, "h0": np.zeros((B, H + 1))})
    with pytest.raises(ValueError, match=rf"b_ih has shape \({3 * H - 1},\), expected \({3 * H},\)"):
        ref.gru_forward(**{**p, "b_ih": np.zeros(3 * H - 1)})


def test_arguments_are_those_of_the_compiled_kernels(ref, make_problem):
    """grucy.gru_cell(x_t, h, w_ih, w_hh, b_ih, b_hh, *, reset_after=False), and gru_forward's
    options after x, h0 and the parameters, are keyword-only in the compiled kernels: the
    reference takes the same arguments, so a call written for one runs on the other."""
    p = make_problem(1, B, I, H, seed=35)
    params = [p[k] for k in ("w_ih", "w_hh", "b_ih", "b_hh")]
    want = ref.gru_cell(p["x"][0], p["h0"], *params)
    got = ref.gru_cell(x_t=p["x"][0], h=p["h0"], w_ih=p["w_ih"], w_hh=p["w_hh"],
                       b_ih=p["b_ih"], b_hh=p["b_hh"], reset_after=False)
    np.testing.assert_array_equal(got, want)
    with pytest.raises(TypeError):
        ref.gru_cell(p["x"][0], p["h0"], *params, True)
    with pytest.raises(TypeError):
        ref.gru_forward(p["x"], p["h0"], *params, True)


def test_backward_uses_the_parameters_its_forward_ran_with(ref, make_problem, make_cotangents):
    """The cache holds copies of the parameters: an optimizer updating them in place between
    forward and backward leaves the gradients of the step that ran unchanged."""
    p = make_problem(T, B, I, H, seed=36)
    dout, dh_n = make_cotangents(T, B, H, seed=37)
    _, _, cache = ref.gru_forward(**p, lengths=LENGTHS)
    _, _, untouched = ref.gru_forward(**{k: v.copy() for k, v in p.items()}, lengths=LENGTHS)
    for k in ("w_ih", "w_hh", "b_ih", "b_hh"):
        p[k] *= 0.5
    for name, got, want in zip(("dx", "dh0", "dw_ih", "dw_hh", "db_ih", "db_hh"),
                               ref.gru_backward(dout, dh_n, cache),
                               ref.gru_backward(dout, dh_n, untouched)):
        np.testing.assert_array_equal(got, want, err_msg=name)
