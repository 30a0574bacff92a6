"""Both back ends against torch.nn.GRU, an independent implementation.

torch.nn.GRU is grucy with reset_after=True and the z row blocks of w_ih, w_hh,
b_ih, b_hh negated (σ(−a) = 1 − σ(a) turns torch's h' = (1 − z)⊙n + z⊙h into the seed's
h' = (1 − z)⊙h + z⊙n). By the chain rule the z blocks of torch's weight gradients come out
negated too; x and h0 gradients are the same.

Tolerances: float64 as everywhere (1e-10 relative to the array's largest entry); float32
compares grucy float32 with torch float32, both rounded, so it gets twice the float32 budget.
"""

import numpy as np
import pytest

torch = pytest.importorskip("torch")
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence  # noqa: E402

DTYPES = [np.float64, np.float32]
TORCH_DTYPE = {np.dtype(np.float64): torch.float64, np.dtype(np.float32): torch.float32}
PARAM_NAMES = ("w_ih", "w_hh", "b_ih", "b_hh")


def _z_sign(H, dtype):
    sign = np.ones(3 * H, dtype)
    sign[H:2 * H] = -1
    return sign


def _torch_gru(p, dtype):
    """A torch.nn.GRU computing the same function as grucy reset_after=True with params p."""
    H, I = p["w_hh"].shape[1], p["w_ih"].shape[1]
    sign = _z_sign(H, dtype)
    gru = torch.nn.GRU(I, H, dtype=TORCH_DTYPE[np.dtype(dtype)])
    with torch.no_grad():
        gru.weight_ih_l0.copy_(torch.from_numpy(p["w_ih"] * sign[:, None]))
        gru.weight_hh_l0.copy_(torch.from_numpy(p["w_hh"] * sign[:, None]))
        gru.bias_ih_l0.copy_(torch.from_numpy(p["b_ih"] * sign))
        gru.bias_hh_l0.copy_(torch.from_numpy(p["b_hh"] * sign))
    return gru


def _torch_param_grads(gru, H, dtype):
    """torch's weight gradients mapped back to grucy's z convention, in PARAM_NAMES order."""
    sign = _z_sign(H, dtype)
    return (gru.weight_ih_l0.grad.numpy() * sign[:, None],
            gru.weight_hh_l0.grad.numpy() * sign[:, None],
            gru.bias_ih_l0.grad.numpy() * sign,
            gru.bias_hh_l0.grad.numpy() * sign)


def _leaf(a):
    return torch.tensor(a, requires_grad=True)


def _grucy_run(kernels, p, dout, dh_n, **kw):
    out, h_n, cache = kernels.gru_forward(**p, reset_after=True, **kw)
    return (out, h_n) + tuple(kernels.gru_backward(dout, dh_n, cache))


def _compare(assert_close, got, want, tol):
    names = ("out", "h_n", "dx", "dh0", "dw_ih", "dw_hh", "db_ih", "db_hh")
    for name, g, w in zip(names, got, want):
        assert_close(g, w, tol, name)


@pytest.mark.parametrize("dtype", DTYPES, ids=["f64", "f32"])
def test_full_sequences_match_torch(kernels, make_problem, make_cotangents, assert_close, tol,
                                    dtype):
    T, B, I, H = 7, 3, 5, 6
    p = make_problem(T, B, I, H, dtype=dtype, seed=40)
    dout, dh_n = make_cotangents(T, B, H, dtype=dtype, seed=41)

    gru = _torch_gru(p, dtype)
    x, h0 = _leaf(p["x"]), _leaf(p["h0"][None])
    out, h_n = gru(x, h0)
    (out * torch.from_numpy(dout)).sum().add((h_n[0] * torch.from_numpy(dh_n)).sum()).backward()
    want = (out.detach().numpy(), h_n[0].detach().numpy(), x.grad.numpy(), h0.grad[0].numpy(),
            *_torch_param_grads(gru, H, dtype))

    got = _grucy_run(kernels, p, dout, dh_n)
    _compare(assert_close, got, want, 2 * tol[np.dtype(dtype)])


@pytest.mark.parametrize("dtype", DTYPES, ids=["f64", "f32"])
def test_lengths_match_torch_packed_sequences(kernels, make_problem, make_cotangents,
                                              assert_close, tol, dtype):
    T, B, I, H = 6, 5, 3, 4
    lengths = np.array([2, 6, 1, 4, 6])       # torch cannot pack length 0: see the reference tests
    p = make_problem(T, B, I, H, dtype=dtype, seed=42)
    dout, dh_n = make_cotangents(T, B, H, dtype=dtype, seed=43)

    gru = _torch_gru(p, dtype)
    x, h0 = _leaf(p["x"]), _leaf(p["h0"][None])
    packed = pack_padded_sequence(x, torch.from_numpy(lengths), enforce_sorted=False)
    out_packed, h_n = gru(packed, h0)
    out, _ = pad_packed_sequence(out_packed, total_length=T)
    (out * torch.from_numpy(dout)).sum().add((h_n[0] * torch.from_numpy(dh_n)).sum()).backward()
    want = (out.detach().numpy(), h_n[0].detach().numpy(), x.grad.numpy(), h0.grad[0].numpy(),
            *_torch_param_grads(gru, H, dtype))

    got = _grucy_run(kernels, p, dout, dh_n, lengths=lengths)
    _compare(assert_close, got, want, 2 * tol[np.dtype(dtype)])


@pytest.mark.parametrize("dtype", DTYPES, ids=["f64", "f32"])
def test_reverse_matches_torch_on_each_flipped_prefix(kernels, make_problem, make_cotangents,
                                                      assert_close, tol, dtype):
    """reverse=True row b equals torch run on x[:L_b, b] flipped, its outputs flipped back."""
    T, B, I, H = 6, 4, 3, 5
    lengths = np.array([6, 3, 1, 5])
    p = make_problem(T, B, I, H, dtype=dtype, seed=44)
    dout, dh_n = make_cotangents(T, B, H, dtype=dtype, seed=45)

    gru = _torch_gru(p, dtype)
    x, h0 = _leaf(p["x"]), _leaf(p["h0"][None])
    out = torch.zeros((T, B, H), dtype=TORCH_DTYPE[np.dtype(dtype)])
    h_n = []
    for b, L in enumerate(lengths):
        out_b, h_b = gru(x[:L, b:b + 1].flip(0), h0[:, b:b + 1])
        out[:L, b:b + 1] = out_b.flip(0)
        h_n.append(h_b[0, 0])
    h_n = torch.stack(h_n)
    (out * torch.from_numpy(dout)).sum().add((h_n * torch.from_numpy(dh_n)).sum()).backward()
    want = (out.detach().numpy(), h_n.detach().numpy(), x.grad.numpy(), h0.grad[0].numpy(),
            *_torch_param_grads(gru, H, dtype))

    got = _grucy_run(kernels, p, dout, dh_n, lengths=lengths, reverse=True)
    _compare(assert_close, got, want, 2 * tol[np.dtype(dtype)])


@pytest.mark.parametrize("dtype", DTYPES, ids=["f64", "f32"])
def test_cell_matches_torch_gru_cell(kernels, make_problem, assert_close, tol, dtype):
    B, I, H = 4, 3, 5
    p = make_problem(1, B, I, H, dtype=dtype, seed=46)
    sign = _z_sign(H, dtype)
    cell = torch.nn.GRUCell(I, H, dtype=TORCH_DTYPE[np.dtype(dtype)])
    with torch.no_grad():
        cell.weight_ih.copy_(torch.from_numpy(p["w_ih"] * sign[:, None]))
        cell.weight_hh.copy_(torch.from_numpy(p["w_hh"] * sign[:, None]))
        cell.bias_ih.copy_(torch.from_numpy(p["b_ih"] * sign))
        cell.bias_hh.copy_(torch.from_numpy(p["b_hh"] * sign))
        want = cell(torch.from_numpy(p["x"][0]), torch.from_numpy(p["h0"])).numpy()
    got = kernels.gru_cell(p["x"][0], p["h0"], p["w_ih"], p["w_hh"], p["b_ih"], p["b_hh"],
                           reset_after=True)
    assert_close(got, want, 2 * tol[np.dtype(dtype)], "h'")


def test_a_tensor_that_requires_grad_is_refused_naming_the_argument(gk):
    """numpy's conversion raised torch's bare RuntimeError ("Can't call numpy() on Tensor
    that requires grad"), naming neither the argument nor grucy's contract."""
    rng = np.random.default_rng(0)
    T, B, I, H = 2, 3, 4, 5
    p = [rng.standard_normal(s) for s in ((3 * H, I), (3 * H, H), (3 * H,), (3 * H,))]
    x = torch.zeros((T, B, I), dtype=torch.float64, requires_grad=True)
    with pytest.raises(ValueError, match=r"^x must be an array"):
        gk.gru_forward(x, None, *p)
    with pytest.raises(ValueError, match=r"^w_hh must be an array"):
        gk.gru_forward(np.zeros((T, B, I)), None, p[0], torch.tensor(p[1], requires_grad=True),
                       *p[2:])
    with pytest.raises(ValueError, match=r"^matmul: b must be an array"):
        gk.matmul(np.ones((2, 2)), torch.ones((2, 2), dtype=torch.float64, requires_grad=True))


def _non_finite_problem(value, dtype, seed):
    """A (T, B) = (3, 2) problem whose h0 row 0 holds `value` (+inf, -inf or NaN) in unit 0,
    with w_hh's column 0 chosen so that a non-finite state can survive a step: its r entries
    have value's sign (r = 1 everywhere, so r ⊙ (±inf) is no 0 · inf), z's unit 0 the
    opposite sign (z = 0: the state passes through), the other units a mix (z = 0 keeps a
    finite state, z = 1 takes n = ±1). Row 1 stays finite."""
    T, B, I, H = 3, 2, 3, 4
    rng = np.random.default_rng(seed)
    p = {"x": rng.standard_normal((T, B, I)).astype(dtype),
         "h0": rng.uniform(-0.9, 0.9, (B, H)).astype(dtype),
         "w_ih": rng.uniform(-0.5, 0.5, (3 * H, I)).astype(dtype),
         "w_hh": rng.uniform(-0.5, 0.5, (3 * H, H)).astype(dtype),
         "b_ih": rng.uniform(-0.5, 0.5, 3 * H).astype(dtype),
         "b_hh": rng.uniform(-0.5, 0.5, 3 * H).astype(dtype)}
    p["h0"][0, 0] = value
    sign = 1.0 if np.isnan(value) else np.sign(value)
    col = np.concatenate([np.ones(H), [-1.0, 1.0, -1.0, 1.0], rng.choice([-1.0, 1.0], H)])
    p["w_hh"][:, 0] = (sign * col * rng.uniform(0.5, 1.0, 3 * H)).astype(dtype)
    return p


@pytest.mark.parametrize("training", [True, False], ids=["training", "inference"])
@pytest.mark.parametrize("value", [np.inf, -np.inf, np.nan], ids=["+inf", "-inf", "nan"])
@pytest.mark.parametrize("dtype", DTYPES, ids=["f64", "f32"])
def test_a_non_finite_h0_gives_torch_s_infinities_and_nans(kernels, tol, value, dtype,
                                                            training):
    """+inf in h0 stayed +inf in torch.nn.GRU and in the reference, (1 − z)⊙h + z⊙n with z = 0,
    but the compiled update read h + z⊙(n − h) = inf + 0·(−inf): NaN. Where each back end
    has inf, -inf and NaN must agree with torch, and the finite entries as usual."""
    p = _non_finite_problem(value, dtype, seed=47)
    with torch.no_grad():
        out_t, h_n_t = _torch_gru(p, dtype)(torch.from_numpy(p["x"]),
                                            torch.from_numpy(p["h0"][None]))
    want = out_t.numpy()
    if not np.isnan(value):      # the problem is built to carry the infinity through
        assert np.isposinf(want[:, 0, 0] * np.sign(value)).all(), want[:, 0]
    with np.errstate(invalid="ignore"):                    # the reference's 0 · inf
        out, h_n, _ = kernels.gru_forward(**p, reset_after=True, training=training)
    for name, got, w in (("out", out, want), ("h_n", h_n, h_n_t[0].numpy())):
        np.testing.assert_array_equal(np.isnan(got), np.isnan(w), err_msg=f"{name}: NaN")
        np.testing.assert_array_equal(np.isinf(got) * np.sign(got), np.isinf(w) * np.sign(w),
                                      err_msg=f"{name}: ±inf")
        finite = np.isfinite(w)
        np.testing.assert_allclose(got[finite], w[finite], rtol=0,      # states: |h| <= 1
                                   atol=2 * tol[np.dtype(dtype)], err_msg=name)


@pytest.mark.parametrize("value", [np.inf, -np.inf, np.nan], ids=["+inf", "-inf", "nan"])
def test_cell_step_with_a_non_finite_state_matches_torch_gru_cell(gk, value):
    """Cell.step runs its own update pass: the same check as above, one step."""
    p = _non_finite_problem(value, np.float64, seed=48)
    gru = _torch_gru(p, np.float64)
    cell = torch.nn.GRUCell(p["w_ih"].shape[1], p["w_hh"].shape[1], dtype=torch.float64)
    with torch.no_grad():
        for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
            getattr(cell, name).copy_(getattr(gru, name + "_l0"))
        want = cell(torch.from_numpy(p["x"][0]), torch.from_numpy(p["h0"])).numpy()
    out = np.empty_like(p["h0"])
    gk.Cell(p["w_ih"], p["w_hh"], p["b_ih"], p["b_hh"], reset_after=True).step(
        p["x"][0], p["h0"], out)
    np.testing.assert_array_equal(np.isnan(out), np.isnan(want))
    np.testing.assert_array_equal(np.isinf(out) * np.sign(out), np.isinf(want) * np.sign(want))
    finite = np.isfinite(want)
    np.testing.assert_allclose(out[finite], want[finite], rtol=0, atol=2e-12)
