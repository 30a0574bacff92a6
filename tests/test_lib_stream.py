"""GRU.stream(): one step at a time equals forward over the whole sequence, without allocating."""
import tracemalloc

import numpy as np
import pytest

from grucy.layers import GRU, GRUStream


@pytest.mark.parametrize("dtype,tol", [(np.float64, 1e-12), (np.float32, 2e-6)])
@pytest.mark.parametrize("reset_after", [False, True])
@pytest.mark.parametrize("num_layers", [1, 3])
def test_stream_equals_forward(dtype, tol, reset_after, num_layers):
    T, B, I, H = 9, 3, 4, 7
    g = GRU(I, H, num_layers=num_layers, reset_after=reset_after, dtype=dtype, seed=4)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((T, B, I)).astype(dtype)
    h0 = rng.standard_normal((num_layers, B, H)).astype(dtype)
    out, h_n = g.eval().forward(x, h0=h0)
    s = g.stream(B, h0=h0)
    steps = np.stack([s.step(x[t]) for t in range(T)])
    np.testing.assert_allclose(steps, out, rtol=tol, atol=tol)
    np.testing.assert_allclose(s.h, h_n, rtol=tol, atol=tol)
    # reset restarts from zeros: equals forward with h0=None
    s.reset()
    buf = np.empty((B, H), dtype)
    for t in range(T):
        r = s.step(x[t], out=buf)
        assert r is buf
    np.testing.assert_allclose(buf, g.forward(x)[0][-1], rtol=tol, atol=tol)


def test_stream_sees_parameter_updates():
    g = GRU(2, 3, seed=0, dtype=np.float64)
    s = g.stream(1)
    x = np.ones((1, 2))
    a = s.step(x)
    s.reset()
    g.parameters()["bias_ih_l0"] += 1.0
    b = s.step(x)
    assert not np.allclose(a, b)
    np.testing.assert_allclose(b, g.forward(x[None])[0][0], rtol=1e-12)


def _traced_steps(s, x, out):
    """(still held, peak) bytes that 20 steps of stream ``s`` with ``out=`` allocate beyond
    what was traced before them, after 3 steps of warm-up."""
    for _ in range(3):
        s.step(x, out=out)
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        base = tracemalloc.get_traced_memory()[0]
        for _ in range(20):
            s.step(x, out=out)
        current, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return current - base, peak - base


@pytest.mark.parametrize("reset_after", [False, True])
def test_stream_step_allocates_nothing_with_out(reset_after):
    """A step writes only into preallocated buffers: traced peak stays far below one (B, H) array."""
    B, I, H = 32, 16, 64
    g = GRU(I, H, num_layers=2, reset_after=reset_after, seed=0)
    s = g.stream(B)
    x = np.random.default_rng(0).standard_normal((B, I)).astype(np.float32)
    out = np.empty((B, H), np.float32)
    current, peak = _traced_steps(s, x, out)
    one_state = B * H * 4  # 8 KiB: any gate temporary would be at least this
    assert peak < one_state // 2, (peak, one_state)
    assert current < 1024
    # without out= the only allocation is the returned array
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        base = tracemalloc.get_traced_memory()[0]
        r = s.step(x)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert r.shape == (B, H)
    assert peak - base < one_state + one_state // 2


def test_stream_rejects_bidirectional_and_bad_input():
    with pytest.raises(ValueError, match="gru must be unidirectional"):
        GRU(2, 3, bidirectional=True).stream(1)
    with pytest.raises(TypeError, match="gru"):
        GRUStream("not a gru", 1)
    s = GRU(2, 3).stream(4)
    with pytest.raises(ValueError, match="x_t"):
        s.step(np.zeros((3, 2), np.float32))
    with pytest.raises(TypeError, match="x_t"):
        s.step(np.zeros((4, 2), np.float64))
    with pytest.raises(ValueError, match="out"):
        s.step(np.zeros((4, 2), np.float32), out=np.zeros((4, 2), np.float32))
    with pytest.raises(TypeError, match="out must be a float32 ndarray, got float64"):
        s.step(np.zeros((4, 2), np.float32), out=np.zeros((4, 3), np.float64))
    with pytest.raises(TypeError, match="out must be a float32 ndarray, got list"):
        s.step(np.zeros((4, 2), np.float32), out=[[0.0] * 3] * 4)
    with pytest.raises(ValueError, match="batch_size"):
        GRU(2, 3).stream(-1)
    # past the rows Cell.step takes (the BLAS's C ints): refused before its state is
    # allocated, which was numpy's MemoryError naming nothing
    with pytest.raises(ValueError, match="batch_size must be <= 2147483647, got 1099511627776"):
        GRU(2, 3).stream(2**40)
    with pytest.raises(ValueError, match="h0"):
        s.reset(np.zeros((2, 4, 3), np.float32))


def test_a_stream_of_no_rows_steps_like_forward_on_an_empty_batch():
    """batch_size=0 was refused, though gru_cell, Cell.step and GRU.forward take B = 0 rows
    (grucy.kernels' rule for empty batches): its steps are (0, H), as forward's out[t]."""
    g = GRU(2, 3, num_layers=2, seed=0).eval()
    x = np.zeros((4, 0, 2), np.float32)
    out, h_n = g.forward(x)
    s = g.stream(0)
    for t in range(len(x)):
        y = s.step(x[t])
        assert y.shape == out[t].shape == (0, 3) and y.dtype == out.dtype
    assert s.h.shape == h_n.shape == (2, 0, 3)
    with pytest.raises(ValueError, match="x_t"):
        s.step(np.zeros((1, 2), np.float32))


def test_stream_step_reports_a_wrong_type_as_a_type_error():
    """Regression: step() checked x_t's shape first, so a str, None or dict (which have none)
    was a ValueError "x_t must be a ... array, got str"; a list was refused the same way,
    though forward's x and reset's h0 accept one."""
    g = GRU(2, 3, seed=0).eval()
    s = g.stream(2)
    for bad in ("x", None, {"x": 1}):
        with pytest.raises(TypeError, match=r"^x_t must be a numpy array, got "):
            s.step(bad)
    rows = [[0.5, -1.0], [2.0, 0.25]]
    want = g.forward(np.array([rows], np.float32))[0][0]    # one step of the whole-sequence path
    np.testing.assert_allclose(s.step(rows), want, rtol=2e-6, atol=2e-6)
    with pytest.raises(ValueError, match=r"x_t must be a \(B, input_size\) = \(2, 2\) array, got \(1, 2\)"):
        s.step([[0.5, -1.0]])


def test_stream_step_refuses_a_read_only_out_before_stepping():
    """Regression: a read-only out failed in np.copyto with numpy's "assignment destination is
    read-only", which named no argument, and only after every layer had stepped: the refused
    call had advanced the state."""
    g = GRU(2, 3, num_layers=2, seed=0).eval()
    s = g.stream(2)
    x = np.array([[0.5, -1.0], [2.0, 0.25]], np.float32)
    out = np.zeros((2, 3), np.float32)
    out.flags.writeable = False
    with pytest.raises(ValueError, match="out must be writeable"):
        s.step(x, out=out)
    np.testing.assert_array_equal(s.h, 0)            # the state did not advance
    want = g.forward(x[None])[0][0]
    np.testing.assert_allclose(s.step(x), want, rtol=2e-6, atol=2e-6)


@pytest.mark.parametrize("copier", ["deepcopy", "pickle"])
def test_a_copied_stream_steps_its_own_state(copier):
    """Branching a stream (copy.deepcopy, or pickle round trip): the copy's h, reset and step
    must act on one state, continuing from the original's, and leave the original alone.
    Reference: forward over the whole sequence."""
    import copy
    import pickle
    T, B, I, H = 6, 2, 3, 4
    g = GRU(I, H, num_layers=2, dtype=np.float64, seed=5).eval()
    x = np.random.default_rng(5).standard_normal((T, B, I))
    out, h_n = g.forward(x)
    s = g.stream(B)
    for t in range(3):
        s.step(x[t])
    c = copy.deepcopy(s) if copier == "deepcopy" else pickle.loads(pickle.dumps(s))
    for t in range(3, T):
        np.testing.assert_allclose(c.step(x[t]), out[t], rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(c.h, h_n, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(s.h[-1], out[2], rtol=1e-12, atol=1e-12)    # untouched
    np.testing.assert_allclose(s.step(x[3]), out[3], rtol=1e-12, atol=1e-12)  # and steps on
    c.reset()
    np.testing.assert_allclose(c.step(x[0]), out[0], rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("dtype,tol", [(np.float64, 1e-12), (np.float32, 2e-5)])
def test_stream_without_bias_matches_torch(dtype, tol):
    """A bias=False GRU streams on its zero biases: torch.nn.GRU(bias=False)'s outputs."""
    torch = pytest.importorskip("torch")
    tdt = torch.float64 if dtype == np.float64 else torch.float32
    g = GRU(3, 5, num_layers=2, reset_after=True, bias=False, dtype=dtype, seed=1).eval()
    m = torch.nn.GRU(3, 5, num_layers=2, bias=False, dtype=tdt)
    with torch.no_grad():
        for name, t in m.named_parameters():       # z blocks negated (README, "The maths")
            w = g.parameters()[name].copy()
            w[5:10] *= -1
            t.copy_(torch.from_numpy(w))
    x = np.random.default_rng(2).standard_normal((6, 2, 3)).astype(dtype)
    want, h_n = m(torch.from_numpy(x))
    s = g.stream(2)
    steps = np.stack([s.step(x[t]) for t in range(6)])
    np.testing.assert_allclose(steps, want.detach().numpy(), rtol=tol, atol=tol)
    np.testing.assert_allclose(s.h, h_n.detach().numpy(), rtol=tol, atol=tol)


# --- batch_size=None: one unbatched sequence, x_t (input_size,) -> (H,) ---------------------

def _torch_copy(g, module, suffix=""):
    """module's parameters := g's, z blocks negated (README, "The maths"); GRUCell's names
    lack the "_l0" suffix that GRU's (and grucy's) carry."""
    import torch
    H = g.hidden_size
    with torch.no_grad():
        for name, t in module.named_parameters():
            w = g.parameters()[name + suffix].copy()
            w[H:2 * H] *= -1
            t.copy_(torch.from_numpy(w))


@pytest.mark.parametrize("dtype,tol", [(np.float64, 1e-12), (np.float32, 2e-5)])
def test_unbatched_stream_matches_torch_gru_and_gru_cell(dtype, tol):
    """torch.nn.GRU on an unbatched (T, I) sequence with h0 (L, H): its out[t] step by step,
    its h_n (L, H) as the stream's h; torch.nn.GRUCell on (I,) inputs and an (H,) state."""
    torch = pytest.importorskip("torch")
    tdt = torch.float64 if dtype == np.float64 else torch.float32
    T, I, H, L = 7, 3, 5, 2
    rng = np.random.default_rng(41)
    x = rng.standard_normal((T, I)).astype(dtype)
    h0 = rng.standard_normal((L, H)).astype(dtype)
    g = GRU(I, H, num_layers=L, reset_after=True, dtype=dtype, seed=6).eval()
    m = torch.nn.GRU(I, H, num_layers=L, dtype=tdt)
    _torch_copy(g, m)
    want, h_n = m(torch.from_numpy(x), torch.from_numpy(h0))
    s = g.stream(None, h0=h0)
    steps = np.stack([s.step(x[t]) for t in range(T)])
    assert steps.shape == (T, H) and s.h.shape == (L, H)
    np.testing.assert_allclose(steps, want.detach().numpy(), rtol=tol, atol=tol)
    np.testing.assert_allclose(s.h, h_n.detach().numpy(), rtol=tol, atol=tol)
    # one layer, one torch.nn.GRUCell step at a time, out= an (H,) buffer
    g1 = GRU(I, H, reset_after=True, dtype=dtype, seed=7).eval()
    cell = torch.nn.GRUCell(I, H, dtype=tdt)
    _torch_copy(g1, cell, "_l0")
    s1 = g1.stream(None, h0=h0[:1])
    h, buf = torch.from_numpy(h0[0]), np.empty(H, dtype)
    for t in range(T):
        h = cell(torch.from_numpy(x[t]), h)
        assert s1.step(x[t], out=buf) is buf
        np.testing.assert_allclose(buf, h.detach().numpy(), rtol=tol, atol=tol)
    np.testing.assert_allclose(s1.h[0], h.detach().numpy(), rtol=tol, atol=tol)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("reset_after", [False, True])
def test_unbatched_stream_equals_the_batched_step_of_one_row(reset_after, dtype):
    """The same Cells on the same numbers: each step and the state are the B = 1 stream's,
    bit for bit, without the B axis; and forward's on the unbatched sequence to rounding."""
    T, I, H, L = 6, 4, 3, 3
    rng = np.random.default_rng(43)
    x = rng.standard_normal((T, I)).astype(dtype)
    h0 = rng.standard_normal((L, H)).astype(dtype)
    g = GRU(I, H, num_layers=L, reset_after=reset_after, dtype=dtype, seed=8).eval()
    one, batched = g.stream(None, h0=h0), g.stream(1, h0=h0[:, None])
    assert one.batch_size is None
    for t in range(T):
        y = one.step(x[t])
        assert y.shape == (H,) and y.dtype == dtype
        np.testing.assert_array_equal(y, batched.step(x[t][None])[0])
    np.testing.assert_array_equal(one.h, batched.h[:, 0])
    out, h_n = g.forward(x, h0)                       # unbatched forward: (T, H), (L, H)
    tol = 1e-12 if dtype == np.float64 else 2e-6
    np.testing.assert_allclose(one.h, h_n, rtol=tol, atol=tol)
    one.reset()                                        # zeros, as forward's h0=None
    ys = np.stack([one.step(list(map(float, x[t]))) for t in range(T)])   # lists convert
    np.testing.assert_allclose(ys, g.forward(x)[0], rtol=tol, atol=tol)
    one.reset(h0)
    np.testing.assert_array_equal(one.h, h0)


def test_unbatched_stream_step_allocates_nothing_with_out():
    g = GRU(16, 1024, num_layers=2, seed=0).eval()
    s = g.stream(None)
    x = np.random.default_rng(0).standard_normal(16).astype(np.float32)
    out = np.empty(1024, np.float32)
    current, peak = _traced_steps(s, x, out)
    assert peak < 1024 * 4 // 4, peak       # a quarter of one (H,) state
    assert current < 1024


def test_unbatched_stream_refuses_bad_shapes_by_name():
    g = GRU(2, 3, num_layers=2, seed=0).eval()
    s = g.stream(None)
    for bad in (np.zeros((1, 2), np.float32), np.zeros(3, np.float32), np.zeros((), np.float32)):
        with pytest.raises(ValueError, match=r"^x_t must be an \(input_size,\) = \(2,\) array for "
                                             r"an unbatched stream \(batch_size None\), got"):
            s.step(bad)
    with pytest.raises(TypeError, match=r"^x_t must have dtype float32 .*got float64"):
        s.step(np.zeros(2))
    x = np.array([0.5, -1.0], np.float32)
    with pytest.raises(ValueError, match=r"^out must have shape \(3,\) for an unbatched stream, "
                                         r"got \(1, 3\)$"):
        s.step(x, out=np.zeros((1, 3), np.float32))
    with pytest.raises(TypeError, match="^out must be a float32 ndarray, got float64"):
        s.step(x, out=np.zeros(3))
    read_only = np.zeros(3, np.float32)
    read_only.flags.writeable = False
    with pytest.raises(ValueError, match="^out must be writeable"):
        s.step(x, out=read_only)
    np.testing.assert_array_equal(s.h, 0)              # no refused call advanced the state
    with pytest.raises(ValueError, match=r"^h0 must have shape \(2, 3\), got \(2, 1, 3\)"):
        s.reset(np.zeros((2, 1, 3), np.float32))
    with pytest.raises(ValueError, match=r"^h0 must have shape \(2, 3\), got \(2, 1, 3\)"):
        g.stream(None, h0=np.zeros((2, 1, 3), np.float32))
    # a batched stream given an unbatched x_t says how to make an unbatched one
    with pytest.raises(ValueError, match=r"^x_t must be a \(B, input_size\) = \(1, 2\) array, "
                                         r"got \(2,\) \(for one unbatched sequence, make the "
                                         r"stream with batch_size=None\)$"):
        g.stream(1).step(x)


@pytest.mark.parametrize("second", ["step", "reset"])
def test_a_stream_stepped_from_two_threads_at_once_refuses_the_second(second):
    """Regression: each Cell refuses a second thread only inside its own step, so two
    threads stepping one small stream took turns layer by layer (the GIL passes between
    the cells) and left a state no order of their two steps gives, silently (3 runs in 300
    with 4 layers). The second call must raise and change nothing. A wrapper holds the
    first step inside its top layer until the second call has been made. Reference:
    forward over the one step that ran."""
    import threading
    g = GRU(3, 4, num_layers=2, dtype=np.float64, seed=0).eval()
    x = np.random.default_rng(0).standard_normal((2, 3))
    s = g.stream(2)
    inside, release = threading.Event(), threading.Event()

    class Held:
        def __init__(self, cell):
            self.cell = cell

        def step(self, *args):
            if not inside.is_set():                   # the first step waits here
                inside.set()
                assert release.wait(10)
            self.cell.step(*args)

    (c0, r0), (c1, r1) = s._layers
    s._layers = ((c0, r0), (Held(c1), r1))
    first = threading.Thread(target=s.step, args=(x,))
    first.start()
    try:
        assert inside.wait(10)
        with pytest.raises(RuntimeError, match="called from two threads at once"):
            s.step(x) if second == "step" else s.reset(np.ones((2, 2, 4)))
    finally:
        release.set()
        first.join()
    out, h_n = g.forward(x[None])
    np.testing.assert_allclose(s.h, h_n, rtol=1e-12, atol=1e-12)
    s._layers = ((c0, r0), (c1, r1))
    np.testing.assert_allclose(s.step(x), g.forward(np.stack([x, x]))[0][1], rtol=1e-12,
                               atol=1e-12)
