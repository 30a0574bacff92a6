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
