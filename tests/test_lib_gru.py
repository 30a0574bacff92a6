"""grucy.layers.GRU: shapes, torch equivalence with packed sequences, lengths, dropout, modes."""
import re

import numpy as np
import pytest

from grucy.layers import GRU, Linear

@pytest.fixture(params=["compiled", "reference"])
def backend(request, monkeypatch):
    """Run a test on the compiled kernels and again on grucy.reference (the numpy twin):
    the layer must be correct on any kernel that honours the contract."""
    import grucy
    if request.param == "reference":
        for name in ("gru_forward", "gru_backward", "gru_cell"):
            monkeypatch.setattr(grucy, name, getattr(grucy.reference, name))
    return request.param


TOL = {np.float64: dict(rtol=1e-9, atol=1e-11), np.float32: dict(rtol=2e-4, atol=2e-5)}


def _torch_equivalent(g):
    """Independent construction of the torch module (not interop.to_torch): copy with z negated."""
    torch = pytest.importorskip("torch")
    tdt = torch.float64 if g.dtype == np.float64 else torch.float32
    m = torch.nn.GRU(g.input_size, g.hidden_size, num_layers=g.num_layers,
                     bidirectional=g.bidirectional, batch_first=g.batch_first, bias=g.bias,
                     dtype=tdt)
    H = g.hidden_size
    with torch.no_grad():
        for name, arr in g.parameters().items():
            w = arr.copy()
            w[H:2 * H] *= -1
            getattr(m, name).copy_(torch.from_numpy(w))
    return m


def _loss_grads(g, x, h0, lengths, dout, dh_n):
    out, h_n = g.forward(x, h0=h0, lengths=lengths)
    g.zero_grad()
    dx = g.backward(dout, dh_n)
    return out, h_n, dx, g.dh0.copy(), {k: v.copy() for k, v in g.gradients().items()}


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("num_layers,bidirectional", [(1, False), (2, True), (3, True), (2, False)])
@pytest.mark.parametrize("batch_first", [False, True])
@pytest.mark.parametrize("bias", [True, False])
def test_matches_torch_packed_sequences(dtype, num_layers, bidirectional, batch_first, bias):
    torch = pytest.importorskip("torch")
    from grucy.interop import from_torch
    from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

    torch.manual_seed(0)
    tdt = torch.float64 if dtype == np.float64 else torch.float32
    T, B, I, H = 7, 5, 3, 6
    m = torch.nn.GRU(I, H, num_layers=num_layers, bidirectional=bidirectional,
                     batch_first=batch_first, bias=bias, dtype=tdt)
    g = from_torch(m)
    assert g.dtype == dtype and g.reset_after and g.batch_first == batch_first
    assert g.bias == bias
    D = 2 if bidirectional else 1
    rng = np.random.default_rng(1)
    lengths = np.array([7, 3, 1, 5, 7])  # unsorted, padding at the end
    xshape = (B, T, I) if batch_first else (T, B, I)
    x = rng.standard_normal(xshape).astype(dtype)
    h0 = rng.standard_normal((num_layers * D, B, H)).astype(dtype)
    oshape = (B, T, D * H) if batch_first else (T, B, D * H)
    dout = rng.standard_normal(oshape).astype(dtype)
    dh_n = rng.standard_normal((num_layers * D, B, H)).astype(dtype)

    out, h_n, dx, dh0, grads = _loss_grads(g, x, h0, lengths, dout, dh_n)

    xt = torch.from_numpy(x).requires_grad_()
    h0t = torch.from_numpy(h0).requires_grad_()
    packed = pack_padded_sequence(xt, torch.from_numpy(lengths), batch_first=batch_first,
                                  enforce_sorted=False)
    pout, h_nt = m(packed, h0t)
    outt, _ = pad_packed_sequence(pout, batch_first=batch_first, total_length=T)
    ((outt * torch.from_numpy(dout)).sum() + (h_nt * torch.from_numpy(dh_n)).sum()).backward()

    tol = TOL[dtype]
    assert out.shape == oshape and h_n.shape == (num_layers * D, B, H)
    assert set(grads) == {name for name, _ in m.named_parameters()}   # bias=False: no bias_*
    np.testing.assert_allclose(out, outt.detach().numpy(), **tol)
    np.testing.assert_allclose(h_n, h_nt.detach().numpy(), **tol)
    np.testing.assert_allclose(dx, xt.grad.numpy(), **tol)
    np.testing.assert_allclose(dh0, h0t.grad.numpy(), **tol)
    for name, gr in grads.items():
        expect = getattr(m, name).grad.numpy().copy()
        expect[H:2 * H] *= -1  # d/d(-w) = -d/dw on the negated z block
        np.testing.assert_allclose(gr, expect, err_msg=name, **tol)
    # the comparison is not vacuous: gradients are non-trivial
    assert np.abs(grads["weight_hh_l0"]).max() > 1e-3


@pytest.mark.parametrize("bias", [True, False])
def test_matches_torch_on_either_backend(backend, bias):
    test_matches_torch_packed_sequences(np.float64, 2, True, False, bias)


def test_matches_independent_torch_copy_full_length():
    """Same check without interop: parameters copied by hand (guards from_torch and the layer)."""
    torch = pytest.importorskip("torch")
    g = GRU(4, 5, num_layers=2, bidirectional=True, reset_after=True, dtype=np.float64, seed=3)
    m = _torch_equivalent(g)
    x = np.random.default_rng(0).standard_normal((6, 3, 4))
    out, h_n = g.forward(x)
    outt, h_nt = m(torch.from_numpy(x))
    np.testing.assert_allclose(out, outt.detach().numpy(), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(h_n, h_nt.detach().numpy(), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("reset_after", [False, True])
def test_stack_gradients_finite_differences(reset_after, backend, numeric_grad):
    """Seed variant (no torch twin): two layers, bidirectional, lengths incl. 0, vs 5-point FD."""
    T, B, I, H = 4, 3, 2, 3
    g = GRU(I, H, num_layers=2, bidirectional=True, reset_after=reset_after, dtype=np.float64, seed=5)
    rng = np.random.default_rng(2)
    x = rng.standard_normal((T, B, I))
    h0 = rng.standard_normal((4, B, H))
    lengths = np.array([4, 0, 2])
    dout = rng.standard_normal((T, B, 2 * H))
    dh_n = rng.standard_normal((4, B, H))

    def scalar():
        out, h_n = g.forward(x, h0=h0, lengths=lengths)
        return float((out * dout).sum() + (h_n * dh_n).sum())

    scalar()
    g.zero_grad()
    dx = g.backward(dout, dh_n)
    np.testing.assert_allclose(dx, numeric_grad(scalar, x), rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(g.dh0, numeric_grad(scalar, h0), rtol=1e-6, atol=1e-8)
    grads = {k: v.copy() for k, v in g.gradients().items()}
    for name in ("weight_ih_l1_reverse", "weight_hh_l0", "bias_hh_l1", "bias_ih_l0_reverse"):
        num = numeric_grad(scalar, g.parameters()[name])
        np.testing.assert_allclose(grads[name], num, rtol=1e-6, atol=1e-8, err_msg=name)


def test_gradients_accumulate_until_zero_grad():
    g = GRU(2, 3, dtype=np.float64, seed=0)
    x = np.random.default_rng(0).standard_normal((3, 2, 2))
    g.forward(x)
    g.backward(np.ones((3, 2, 3)))
    first = g.gradients()["weight_ih_l0"].copy()
    g.forward(x)
    g.backward(np.ones((3, 2, 3)))
    np.testing.assert_allclose(g.gradients()["weight_ih_l0"], 2 * first)
    g.zero_grad()
    assert all(not v.any() for v in g.gradients().values())


@pytest.mark.parametrize("B, T", [(1, 5), (3, 5), (1, 1)])
def test_a_batch_first_out_is_the_callers_to_change(B, T):
    # the docstring promises a batch-first GRU's out is not what backward reads; with B = 1
    # numpy counts (T, 1, H).transpose(1, 0, 2) as contiguous, so ascontiguousarray handed
    # back a view of the kernel's out, and zeroing it changed dx by 0.07 and dW_hh by 0.5
    # (found by a randomised differential test against torch)
    rng = np.random.default_rng(5)
    x = rng.standard_normal((B, T, 3))
    dout = rng.standard_normal((B, T, 4))
    grads = []
    for edit in (False, True):
        g = GRU(3, 4, batch_first=True, dtype=np.float64, seed=1)
        out, _ = g.forward(x)
        if edit:
            out[...] = 0.0
        dx = g.backward(dout)
        grads.append({"dx": dx, "dh0": g.dh0, **{k: v.copy() for k, v in g.gradients().items()}})
    assert grads[0].keys() == grads[1].keys() and "weight_hh_l0" in grads[0]
    for k in grads[0]:
        np.testing.assert_array_equal(grads[0][k], grads[1][k], err_msg=k)


def test_lengths_need_no_sorting_and_reverse_starts_at_own_end(backend):
    """Each row of a padded batch equals that sequence run alone, truncated to its length."""
    T, B, I, H = 6, 4, 3, 5
    g = GRU(I, H, num_layers=2, bidirectional=True, dtype=np.float64, seed=1)
    x = np.random.default_rng(3).standard_normal((T, B, I))
    lengths = np.array([2, 6, 0, 4])
    out, h_n = g.forward(x, lengths=lengths)
    for b, n in enumerate(lengths):
        assert not out[n:, b].any()  # padded rows are zero
        if n == 0:
            assert not h_n[:, b].any()
            continue
        o1, h1 = g.forward(x[:n, b:b + 1])
        np.testing.assert_allclose(out[:n, b:b + 1], o1, rtol=1e-12, atol=1e-14)
        np.testing.assert_allclose(h_n[:, b:b + 1], h1, rtol=1e-12, atol=1e-14)
    # garbage in the padding cannot leak into the results
    x2 = x.copy()
    x2[2:, 0] = 1e6
    out2, h2 = g.forward(x2, lengths=lengths)
    np.testing.assert_array_equal(out2[:, 0], out[:, 0])
    np.testing.assert_array_equal(h2[:, 0], h_n[:, 0])


def test_named_parameters_are_plain_settable_arrays():
    g = GRU(3, 4, num_layers=2, bidirectional=True, seed=0)
    names = [f"{k}_l{l}{s}" for l in range(2) for s in ("", "_reverse")
             for k in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")]
    assert list(g.parameters()) == names and list(g.gradients()) == names
    assert g.weight_ih_l0.shape == (12, 3) and g.weight_ih_l1.shape == (12, 8)
    assert g.weight_hh_l1_reverse.shape == (12, 4) and g.bias_hh_l0.shape == (12,)
    live = g.parameters()["weight_hh_l0"]
    g.weight_hh_l0 = np.zeros((12, 4))  # attribute assignment copies in place (and casts)
    assert g.weight_hh_l0 is live and not live.any() and live.dtype == np.float32
    g.parameters()["bias_ih_l0"][:] = 1.0  # in-place edits are seen by forward
    x = np.zeros((1, 1, 3), np.float32)
    out, _ = g.forward(x)
    g2 = GRU(3, 4, num_layers=2, bidirectional=True, seed=0)
    out2, _ = g2.forward(x)
    assert not np.allclose(out, out2)
    with pytest.raises(ValueError, match="weight_hh_l0"):
        g.weight_hh_l0 = np.zeros((4, 12))


@pytest.mark.parametrize("make", [lambda: GRU(2, 3, num_layers=2, seed=0),
                                  lambda: Linear(2, 3, seed=0)], ids=["GRU", "Linear"])
def test_the_parameter_and_gradient_dicts_are_the_callers(make):
    """parameters() and gradients() return new dicts of the live arrays: dropping a name from
    one (to leave a parameter out of an optimizer, say) or rebinding one leaves the layer's
    own names and arrays. A mutant returning the layer's own dict survived."""
    layer = make()
    names = list(layer.parameters())
    for get in (layer.parameters, layer.gradients):
        d = get()
        live = d[names[0]]
        del d[names[-1]]
        d[names[0]] = np.zeros_like(live)
        assert list(get()) == names and get()[names[0]] is live


def test_eval_keeps_no_cache_and_backward_then_fails(monkeypatch):
    import grucy
    g = GRU(2, 3, num_layers=2, dropout=0.5, seed=0)
    x = np.random.default_rng(0).standard_normal((5, 2, 2)).astype(np.float32)
    seen = []
    real = grucy.gru_forward

    def spy(*args, **kw):
        seen.append(kw["training"])
        return real(*args, **kw)

    monkeypatch.setattr(grucy, "gru_forward", spy)  # the layer must call the compiled kernel
    g.eval()
    g.forward(x)
    assert seen == [False, False]  # the kernel itself keeps no cache
    o1, _ = g.forward(x)
    o2, _ = g.forward(x)
    np.testing.assert_array_equal(o1, o2)  # no dropout in eval
    assert g._cache is None
    with pytest.raises(RuntimeError, match="training mode"):
        g.backward(np.ones_like(o1))
    g.train()
    g.forward(x)
    assert g._cache is not None and all(c is not None for c in g._cache[0])


def test_dropout_inverted_reproducible_and_between_layers_only():
    T, B, I, H, p = 5, 8, 3, 16, 0.4
    x = np.random.default_rng(0).standard_normal((T, B, I))
    a = GRU(I, H, num_layers=2, dropout=p, dtype=np.float64, seed=11)
    b = GRU(I, H, num_layers=2, dropout=p, dtype=np.float64, seed=11)
    oa, _ = a.forward(x)
    ob, _ = b.forward(x)
    np.testing.assert_array_equal(oa, ob)  # same seed, same masks
    oa2, _ = a.forward(x)
    assert not np.array_equal(oa, oa2)  # fresh mask each call
    mask = a._cache[1][0]
    assert len(a._cache[1]) == 1  # only between the two layers
    assert set(np.unique(mask)) <= {0.0, 1.0 / (1 - p)}
    assert 0.25 < (mask == 0).mean() < 0.55
    a.eval()
    oe, _ = a.forward(x)
    assert not np.array_equal(oe, oa)
    # a single layer has nothing to drop: output is deterministic in training too, and
    # construction says so, as torch.nn.GRU's does
    with pytest.warns(UserWarning, match="dropout=0.4 has no effect with num_layers=1"):
        s = GRU(I, H, num_layers=1, dropout=p, dtype=np.float64, seed=1)
    np.testing.assert_array_equal(s.forward(x)[0], s.forward(x)[0])


def test_dropout_multiplies_the_lower_layers_output_by_its_mask():
    """The upper layer reads (lower layer's out) * mask: rebuilt here from grucy.reference,
    one layer at a time, with the mask the forward drew (its values checked above)."""
    from grucy import reference
    T, B, I, H = 4, 3, 2, 5
    x = np.random.default_rng(1).standard_normal((T, B, I))
    g = GRU(I, H, num_layers=2, dropout=0.5, dtype=np.float64, seed=3)
    out, h_n = g.forward(x)
    mask = g._cache[1][0]
    assert 0 < (mask == 0).sum() < mask.size
    p = g.parameters()
    low, _, _ = reference.gru_forward(x, None, *(p[k + "_l0"] for k in
                                                 ("weight_ih", "weight_hh", "bias_ih", "bias_hh")))
    want, _, _ = reference.gru_forward(low * mask, None, *(p[k + "_l1"] for k in
                                                           ("weight_ih", "weight_hh", "bias_ih",
                                                            "bias_hh")))
    np.testing.assert_allclose(out, want, **TOL[np.float64])


def test_dropout_backward_uses_the_same_mask(backend, numeric_grad):
    """FD through a freshly seeded model per evaluation reproduces the same dropout mask."""
    T, B, I, H = 3, 2, 2, 3
    rng = np.random.default_rng(4)
    x = rng.standard_normal((T, B, I))
    dout = rng.standard_normal((T, B, H))

    def make():
        return GRU(I, H, num_layers=2, dropout=0.5, dtype=np.float64, seed=21)

    def scalar():
        return float((make().forward(x)[0] * dout).sum())

    g = make()
    g.forward(x)
    dx = g.backward(dout)
    np.testing.assert_allclose(dx, numeric_grad(scalar, x), rtol=1e-6, atol=1e-8)
    assert g._cache is None  # freed after backward


def test_seed_reproduces_weights_and_none_seed_differs():
    a, b = GRU(3, 4, seed=7), GRU(3, 4, seed=7)
    for k in a.parameters():
        np.testing.assert_array_equal(a.parameters()[k], b.parameters()[k])
    c, d = GRU(3, 4), GRU(3, 4)
    assert not np.array_equal(c.weight_ih_l0, d.weight_ih_l0)


def test_dtype_float64_and_float32_agree():
    g64 = GRU(3, 4, num_layers=2, dtype=np.float64, seed=2)
    g32 = GRU(3, 4, num_layers=2, dtype=np.float32, seed=2)
    x = np.random.default_rng(0).standard_normal((5, 2, 3))
    o64, _ = g64.forward(x)
    o32, _ = g32.forward(x.astype(np.float32))
    assert o32.dtype == np.float32 and o64.dtype == np.float64
    np.testing.assert_allclose(o32, o64, rtol=1e-4, atol=1e-5)


def test_one_input_feature_and_the_dropout_warning():
    """input_size=1 (a univariate series, the README's example) is valid; dropout warns only
    where it does nothing (one layer), never for dropout=0 or between stacked layers."""
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        g = GRU(1, 3, seed=0)
        GRU(1, 3, num_layers=2, dropout=0.5, seed=0)
        GRU(1, 3, num_layers=1, dropout=0.0, seed=0)
    out, h_n = g.forward(np.zeros((4, 2, 1), np.float32))
    assert out.shape == (4, 2, 3) and h_n.shape == (1, 2, 3)
    with pytest.warns(UserWarning, match="dropout=0.5 has no effect with num_layers=1") as rec:
        GRU(1, 3, dropout=0.5)
    assert rec[0].filename == __file__     # the caller's line (stacklevel), not grucy's


# --- bias=False -----------------------------------------------------------------------------
def test_without_bias_the_layer_has_no_bias_parameters():
    """As torch's bias=False: no bias_* in parameters(), gradients() or set_parameters; the
    weights are drawn as with biases, so a seed gives the same ones."""
    g = GRU(3, 4, num_layers=2, bidirectional=True, bias=False, dtype=np.float64, seed=0)
    names = [f"{k}_l{l}{s}" for l in range(2) for s in ("", "_reverse")
             for k in ("weight_ih", "weight_hh")]
    assert g.bias is False and g.config()["bias"] is False
    assert list(g.parameters()) == names
    x = np.random.default_rng(0).standard_normal((5, 2, 3))
    out, _ = g.forward(x)
    g.backward(np.ones_like(out))
    assert list(g.gradients()) == names
    with pytest.raises(AttributeError, match="bias_ih_l0"):
        g.bias_ih_l0
    with pytest.raises(ValueError, match=r"params has unknown names \['bias_hh_l1'\]"):
        g.set_parameters({"bias_hh_l1": np.zeros(12)}, strict=False)
    g.set_parameters({k: np.ones_like(v) for k, v in g.parameters().items()})   # strict: all there
    with_bias = GRU(3, 4, num_layers=2, bidirectional=True, dtype=np.float64, seed=0)
    for name in names:
        np.testing.assert_array_equal(GRU(3, 4, num_layers=2, bidirectional=True, bias=False,
                                          dtype=np.float64, seed=0).parameters()[name],
                                      with_bias.parameters()[name], err_msg=name)
    with pytest.raises(TypeError, match="bias must be a bool, got str"):
        GRU(3, 4, bias="no")


@pytest.mark.parametrize("init", [{"bias": 1.0}, {"scheme": "keras", "bias": "zeros"},
                                  {"bias": "uniform", "weight_hh": "orthogonal"}])
def test_a_bias_init_without_biases_is_refused(init):
    # drawn and dropped, it would be ignored without a word
    with pytest.raises(ValueError, match=r"init\['bias'\] is .*, but bias=False: the layer has "
                                         r"no biases to initialise"):
        GRU(3, 4, bias=False, init=init)
    GRU(3, 4, init=init)
    # the schemes' own biases, and overrides of the weights alone, are fine
    for ok in ("pytorch", "keras", {"weight_hh": "orthogonal"}, {"scheme": "keras"}):
        GRU(3, 4, bias=False, init=ok)


@pytest.mark.parametrize("reset_after", [False, True])
def test_without_bias_matches_the_numpy_reference_with_zero_biases(reset_after):
    """Both candidates (torch has only reset_after=True's): grucy.reference's equations with
    zero biases, batched and unbatched."""
    from grucy import reference
    T, B, I, H = 5, 3, 2, 4
    g = GRU(I, H, reset_after=reset_after, bias=False, dtype=np.float64, seed=2)
    rng = np.random.default_rng(7)
    x = rng.standard_normal((T, B, I))
    h0 = rng.standard_normal((1, B, H))
    zeros = np.zeros(3 * H)
    want_out, want_h, _ = reference.gru_forward(x, h0[0], g.weight_ih_l0, g.weight_hh_l0, zeros,
                                                zeros, reset_after=reset_after)
    out, h_n = g.forward(x, h0)
    np.testing.assert_allclose(out, want_out, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(h_n[0], want_h, rtol=1e-12, atol=1e-14)
    out, h_n = g.forward(x[:, 1], h0[:, 1])                     # unbatched: row 1 alone
    np.testing.assert_allclose(out, want_out[:, 1], rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(h_n[0], want_h[1], rtol=1e-12, atol=1e-14)


# --- unbatched input (T, I) -----------------------------------------------------------------
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("num_layers,bidirectional", [(1, False), (2, True)])
@pytest.mark.parametrize("batch_first", [False, True])
@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("with_h0", [False, True])
def test_unbatched_input_matches_torch(dtype, num_layers, bidirectional, batch_first, bias,
                                       with_h0):
    """torch.nn.GRU reads a 2-D input as one sequence (T, I), batch_first or not, and its
    out, h_n and h0 lose the batch axis; so must grucy's, and every gradient must agree."""
    torch = pytest.importorskip("torch")
    T, I, H = 6, 3, 4
    D = 2 if bidirectional else 1
    g = GRU(I, H, num_layers=num_layers, bidirectional=bidirectional, reset_after=True,
            batch_first=batch_first, dtype=dtype, seed=4, bias=bias)
    m = _torch_equivalent(g)
    rng = np.random.default_rng(6)
    x = rng.standard_normal((T, I)).astype(dtype)
    h0 = rng.standard_normal((num_layers * D, H)).astype(dtype) * with_h0
    dout = rng.standard_normal((T, D * H)).astype(dtype)
    dh_n = rng.standard_normal((num_layers * D, H)).astype(dtype)

    out, h_n, dx, dh0, grads = _loss_grads(g, x, h0 if with_h0 else None, None, dout, dh_n)

    xt = torch.from_numpy(x).requires_grad_()
    h0t = torch.from_numpy(h0).requires_grad_()        # zeros without h0: its gradient still
    outt, h_nt = m(xt, h0t)
    ((outt * torch.from_numpy(dout)).sum() + (h_nt * torch.from_numpy(dh_n)).sum()).backward()

    tol = TOL[dtype]
    assert out.shape == tuple(outt.shape) == (T, D * H)
    assert h_n.shape == tuple(h_nt.shape) == (num_layers * D, H)
    assert dx.shape == (T, I) and dh0.shape == (num_layers * D, H)
    np.testing.assert_allclose(out, outt.detach().numpy(), **tol)
    np.testing.assert_allclose(h_n, h_nt.detach().numpy(), **tol)
    np.testing.assert_allclose(dx, xt.grad.numpy(), **tol)
    np.testing.assert_allclose(dh0, h0t.grad.numpy(), **tol)
    assert set(grads) == {name for name, _ in m.named_parameters()}
    for name, gr in grads.items():
        expect = getattr(m, name).grad.numpy().copy()
        expect[H:2 * H] *= -1
        np.testing.assert_allclose(gr, expect, err_msg=name, **tol)
    assert np.abs(grads["weight_hh_l0"]).max() > 1e-3


@pytest.mark.parametrize("bias", [True, False])
def test_unbatched_seed_variant_gradients_finite_differences(bias, backend, numeric_grad):
    """reset_after=False (no torch twin), unbatched and batch_first (ignored): vs 5-point FD."""
    T, I, H = 4, 2, 3
    g = GRU(I, H, num_layers=2, bidirectional=True, batch_first=True, bias=bias,
            dtype=np.float64, seed=5)
    rng = np.random.default_rng(3)
    x = rng.standard_normal((T, I))
    h0 = rng.standard_normal((4, H))
    dout = rng.standard_normal((T, 2 * H))
    dh_n = rng.standard_normal((4, H))

    def scalar():
        out, h_n = g.forward(x, h0=h0)
        return float((out * dout).sum() + (h_n * dh_n).sum())

    scalar()
    g.zero_grad()
    dx = g.backward(dout, dh_n)
    assert dx.shape == (T, I) and g.dh0.shape == (4, H)
    np.testing.assert_allclose(dx, numeric_grad(scalar, x), rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(g.dh0, numeric_grad(scalar, h0), rtol=1e-6, atol=1e-8)
    grads = {k: v.copy() for k, v in g.gradients().items()}
    for name in grads:
        num = numeric_grad(scalar, g.parameters()[name])
        np.testing.assert_allclose(grads[name], num, rtol=1e-6, atol=1e-8, err_msg=name)


@pytest.mark.parametrize("batch_first", [False, True])
def test_wrong_input_ranks_and_unbatched_shapes_are_named(batch_first):
    g = GRU(3, 4, num_layers=2, batch_first=batch_first, dtype=np.float64, seed=0)
    batched = r"\(B, T, input_size\)" if batch_first else r"\(T, B, input_size\)"
    for shape in ((3,), (2, 5, 1, 3), ()):
        with pytest.raises(ValueError, match=rf"^x must be 3-D {batched} or 2-D \(T, input_size\) "
                                             rf"\(one unbatched sequence\), got shape "
                                             rf"{re.escape(str(shape))}$"):
            g.forward(np.zeros(shape))
    with pytest.raises(ValueError, match=r"x must have 3 features in its last axis, got shape "
                                         r"\(5, 2\)"):
        g.forward(np.zeros((5, 2)))
    with pytest.raises(ValueError, match=r"^lengths must be None for an unbatched x "
                                         r"\(T, input_size\)"):
        g.forward(np.zeros((5, 3)), lengths=np.array([5]))
    with pytest.raises(ValueError, match=r"^h0 must have shape \(num_layers\*D, H\) = \(2, 4\) for "
                                         r"an unbatched x \(T, input_size\), got \(2, 1, 4\)$"):
        g.forward(np.zeros((5, 3)), h0=np.zeros((2, 1, 4)))
    with pytest.raises(ValueError, match=r"^h0 must have shape \(2, 1, 4\), got \(2, 4\)$"):
        g.forward(np.zeros((1, 1, 3)), h0=np.zeros((2, 4)))
    g.forward(np.zeros((5, 3)))
    # backward takes the unbatched shapes, and a refused call leaves the forward usable
    with pytest.raises(ValueError, match=r"^dout must have shape \(5, 4\), got \(5, 1, 4\)$"):
        g.backward(np.zeros((5, 1, 4)))
    with pytest.raises(ValueError, match=r"^dh_n must have shape \(2, 4\), got \(2, 1, 4\)$"):
        g.backward(None, np.zeros((2, 1, 4)))
    assert g.backward(np.zeros((5, 4))).shape == (5, 3) and g.dh0.shape == (2, 4)
