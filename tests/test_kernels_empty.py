"""Empty batches, B = 0 rows or T = 0 steps, at every entry point: empty in, empty out.

What is expected comes from outside the code under test: torch.nn.GRU and GRUCell for B = 0
(they take it: empty outputs, zero weight gradients), and for T = 0, which torch refuses,
the equations (no step runs, so h_n = h0 and dh0 = dh_n, as for a row of length 0) and
grucy.reference, which runs its loops zero times. Before, gru_forward, gru_cell and
GRU.forward refused both while Cell.step took B = 0, and the compiled forward divided by B.
"""
import pathlib
import subprocess
import sys
import textwrap

import numpy as np
import pytest

I, H = 3, 4
DTYPES = [np.float64, np.float32]


def _params(dtype, seed=0):
    rng = np.random.default_rng(seed)
    return [rng.uniform(-0.5, 0.5, s).astype(dtype)
            for s in ((3 * H, I), (3 * H, H), (3 * H,), (3 * H,))]


@pytest.mark.parametrize("dtype", DTYPES, ids=["f64", "f32"])
@pytest.mark.parametrize("training", [True, False], ids=["training", "inference"])
def test_no_rows_match_torch(kernels, dtype, training):
    torch = pytest.importorskip("torch")
    T = 5
    p = _params(dtype)
    gru = torch.nn.GRU(I, H, dtype={np.float64: torch.float64, np.float32: torch.float32}[dtype])
    x_t = torch.zeros((T, 0, I), dtype=gru.weight_hh_l0.dtype, requires_grad=True)
    h0_t = torch.zeros((1, 0, H), dtype=x_t.dtype, requires_grad=True)
    out_t, h_n_t = gru(x_t, h0_t)
    (out_t.sum() + h_n_t.sum()).backward()
    want = (out_t.detach().numpy(), h_n_t[0].detach().numpy(), x_t.grad.numpy(),
            h0_t.grad[0].numpy(), gru.weight_ih_l0.grad.numpy(), gru.weight_hh_l0.grad.numpy(),
            gru.bias_ih_l0.grad.numpy(), gru.bias_hh_l0.grad.numpy())

    x, h0 = np.zeros((T, 0, I), dtype), np.zeros((0, H), dtype)
    out, h_n, cache = kernels.gru_forward(x, h0, *p, reset_after=True, training=training)
    got = (out, h_n)
    if training:
        got += tuple(kernels.gru_backward(np.ones_like(out), np.ones_like(h_n), cache))
    for name, g, w in zip(("out", "h_n", "dx", "dh0", "dw_ih", "dw_hh", "db_ih", "db_hh"),
                          got, want):
        assert g.shape == w.shape and g.dtype == np.dtype(dtype), (name, g.shape, g.dtype)
        np.testing.assert_array_equal(g, w, err_msg=name)      # torch's weight grads: zeros


@pytest.mark.parametrize("dtype", DTYPES, ids=["f64", "f32"])
@pytest.mark.parametrize("kw", [{}, {"reverse": True}, {"lengths": [0, 0]}],
                         ids=["forward", "reverse", "lengths"])
def test_no_steps_pass_the_state_through(kernels, dtype, kw):
    """T = 0: no step runs. h_n is h0 (a copy), dh0 is dh_n, dx is (0, B, I), and the weight
    gradients are zero: the equations of a GRU applied zero times."""
    B = 2
    rng = np.random.default_rng(1)
    p = _params(dtype)
    h0, dh_n = (rng.standard_normal((B, H)).astype(dtype) for _ in range(2))
    out, h_n, cache = kernels.gru_forward(np.zeros((0, B, I), dtype), h0, *p, **kw)
    assert out.shape == (0, B, H) and out.dtype == np.dtype(dtype)
    np.testing.assert_array_equal(h_n, h0)
    assert not np.shares_memory(h_n, h0)
    dx, dh0, *dparams = kernels.gru_backward(np.zeros((0, B, H), dtype), dh_n, cache)
    assert dx.shape == (0, B, I) and dx.dtype == np.dtype(dtype)
    np.testing.assert_array_equal(dh0, dh_n)
    assert not np.shares_memory(dh0, dh_n)
    for got, param in zip(dparams, p):
        np.testing.assert_array_equal(got, np.zeros_like(param))
        assert got.dtype == np.dtype(dtype)


def test_an_empty_batch_equals_the_reference(gk, ref):
    """B = 0 and T = 0 together, every combination of options: compiled = reference."""
    p = _params(np.float64)
    for T, B in ((3, 0), (0, 2), (0, 0)):
        for kw in ({}, {"reverse": True}, {"reset_after": True}, {"lengths": np.zeros(B, int)}):
            x, h0 = np.zeros((T, B, I)), np.full((B, H), 0.25)
            got = gk.gru_forward(x, h0, *p, **kw)
            want = ref.gru_forward(x, h0, *p, **kw)
            dout, dh_n = np.ones((T, B, H)), np.full((B, H), 0.5)
            got = got[:2] + tuple(gk.gru_backward(dout, dh_n, got[2]))
            want = want[:2] + tuple(ref.gru_backward(dout, dh_n, want[2]))
            for g, w in zip(got, want):
                assert g.shape == w.shape, (T, B, kw)
                np.testing.assert_array_equal(g, w)


@pytest.mark.parametrize("dtype", DTYPES, ids=["f64", "f32"])
def test_a_cell_step_of_no_rows_matches_torch_gru_cell(gk, dtype):
    torch = pytest.importorskip("torch")
    cell = torch.nn.GRUCell(I, H, dtype={np.float64: torch.float64,
                                         np.float32: torch.float32}[dtype])
    with torch.no_grad():
        want = cell(torch.zeros((0, I), dtype=cell.weight_hh.dtype)).numpy()
    p = _params(dtype)
    for h in (None, np.zeros((0, H), dtype)):
        got = gk.gru_cell(np.zeros((0, I), dtype), h, *p, reset_after=True)
        assert got.shape == want.shape and got.dtype == np.dtype(dtype)
    out = np.zeros((0, H), dtype)
    assert gk.Cell(*p).step(np.zeros((0, I), dtype), np.zeros((0, H), dtype), out) is None


@pytest.mark.parametrize("name", ["x_t", "h", "out"])
def test_cell_step_refuses_a_list_saying_what_it_takes(gk, name):
    """Cell.step converts nothing (it writes into out, allocation-free; README, "Kernels"), so
    a list is refused, but "x_t must be a numpy array, got list" did not say which one."""
    p = _params(np.float64)
    args = {"x_t": np.zeros((2, I)), "h": np.zeros((2, H)), "out": np.zeros((2, H))}
    args[name] = args[name].tolist()
    rows = "B" if name == "x_t" else "2"
    cols = I if name == "x_t" else H
    with pytest.raises(TypeError, match=rf"^{name} must be a \({rows}, {cols}\) numpy array of "
                                        r"float64, got list: .*gru_cell converts lists"):
        gk.Cell(*p).step(*args.values())


@pytest.mark.parametrize("shape", [(5, 0), (0, 2), (0, 0)], ids=["B0", "T0", "T0-B0"])
@pytest.mark.parametrize("batch_first", [False, True], ids=["time-major", "batch-first"])
def test_the_gru_layer_takes_an_empty_batch(shape, batch_first):
    """GRU.forward/backward over 2 bidirectional layers; B = 0 against torch.nn.GRU's shapes
    (T = 0, which torch refuses, against the equations)."""
    import grucy
    T, B = shape
    L, D = 2, 2
    gru = grucy.GRU(I, H, num_layers=L, bidirectional=True, batch_first=batch_first,
                    dtype=np.float64, seed=0)
    h0 = np.random.default_rng(2).standard_normal((L * D, B, H))
    x = np.zeros((B, T, I) if batch_first else (T, B, I))
    out, h_n = gru.forward(x, h0)
    assert out.shape == x.shape[:2] + (D * H,)
    np.testing.assert_array_equal(h_n, h0)          # no step ran in any layer
    dh_n = np.random.default_rng(3).standard_normal((L * D, B, H))
    dx = gru.backward(np.zeros_like(out), dh_n)
    assert dx.shape == x.shape
    np.testing.assert_array_equal(gru.dh0, dh_n)
    for name, g in gru.gradients().items():
        np.testing.assert_array_equal(g, 0, err_msg=name)
    if T:
        torch = pytest.importorskip("torch")
        t_gru = torch.nn.GRU(I, H, num_layers=L, bidirectional=True, batch_first=batch_first,
                             dtype=torch.float64)
        t_out, t_h_n = t_gru(torch.from_numpy(x), torch.from_numpy(h0))
        assert (out.shape, h_n.shape) == (tuple(t_out.shape), tuple(t_h_n.shape))


_COMPILED_EMPTY = textwrap.dedent("""
    import numpy as np
    from grucy import _gru
    H = 4
    for T, B, I in [(5, 0, 3), (5, 0, 65), (0, 2, 3), (0, 2, 65), (0, 0, 3)]:
        for training in (True, False):
            for reverse in (False, True):
                args = [np.zeros((T, B, I)), np.full((B, H), 0.5), np.ones((3 * H, I)),
                        np.ones((3 * H, H)), np.ones(3 * H), np.ones(3 * H),
                        np.zeros(B, np.int32)]
                out, h_n, gates = _gru.forward(*args, False, reverse, training)
                assert out.shape == (T, B, H) and (h_n == 0.5).all(), (T, B, I)
                if not training:
                    continue
                x, h0, w_ih, w_hh, b_ih, b_hh, lengths = args
                grads = _gru.backward(x, w_ih, w_hh, b_hh, lengths, False, reverse, gates, out,
                                      h0, np.full((B, H), 2.0), np.ones((T, B, H)), True)
                assert [g.shape for g in grads] == [(T, B, I), (B, H), (3 * H, I),
                                                    (3 * H, H), (3 * H,), (3 * H,)]
                assert (grads[1] == 2.0).all() and not any(g.any() for g in grads[2:])
    print("finished")
""")


def test_the_compiled_entry_points_take_an_empty_batch_themselves():
    """Not only behind kernels.py's checks: _gru.forward sized its input projection by
    256 // B (ZeroDivisionError) and, for I > 64 where it does not, wrote a bias row into a
    one-element scratch. Run in a fresh interpreter, so that a crash fails the test."""
    here = pathlib.Path(__file__)
    result = subprocess.run([sys.executable, "-c", _COMPILED_EMPTY], capture_output=True,
                            text=True, timeout=120, cwd=here.parents[1])
    assert result.returncode == 0 and result.stdout.strip() == "finished", result.stderr
