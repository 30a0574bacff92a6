"""The compiled kernels (grucy.gru_forward, gru_backward, gru_cell) against grucy.reference.

The expected values always come from the reference run in float64 on the same inputs
(float32 inputs are upcast exactly), so a float32 result is measured against the truth for
its own inputs, with the per-dtype tolerance of conftest.TOL. The reference itself is checked
against finite differences, scalar equations and PyTorch (test_kernels_reference.py,
test_kernels_torch.py); the compiled kernels also get their own finite-difference check here.
"""

import numpy as np
import pytest

DTYPES = [np.float64, np.float32]
VARIANTS = [False, True]
GRADS = ("dx", "dh0", "dw_ih", "dw_hh", "db_ih", "db_hh")


def _case(T, B, I, H, lengths=None, reverse=False, h0=True, dout=True, dh_n=True):
    return dict(T=T, B=B, I=I, H=H, lengths=lengths, reverse=reverse, h0=h0, dout=dout,
                dh_n=dh_n)


CASES = {
    "basic": _case(5, 3, 4, 6),
    "reverse": _case(5, 3, 4, 6, reverse=True),
    "lengths": _case(6, 5, 3, 4, lengths=[6, 0, 3, 1, 6]),
    "lengths-reverse": _case(6, 5, 3, 4, lengths=[6, 0, 3, 1, 6], reverse=True),
    "lengths-all-zero": _case(3, 2, 3, 4, lengths=[0, 0]),
    "lengths-all-T": _case(4, 3, 2, 5, lengths=[4, 4, 4], reverse=True),
    "h0-none": _case(5, 3, 4, 6, h0=False, lengths=[5, 2, 0]),
    "dout-none": _case(5, 3, 4, 6, dout=False, lengths=[5, 2, 0]),
    "dh_n-none": _case(5, 3, 4, 6, dh_n=False, lengths=[5, 2, 0], reverse=True),
    "T1": _case(1, 3, 2, 4, lengths=[1, 0, 1]),
    "T1-reverse": _case(1, 3, 2, 4, reverse=True),
    "B1": _case(6, 1, 3, 4),
    "B1-reverse-short": _case(6, 1, 3, 4, lengths=[4], reverse=True),
    "I1": _case(5, 3, 1, 4),
    "H1": _case(5, 3, 4, 1, lengths=[5, 3, 0]),
    "T1-B1-I1-H1": _case(1, 1, 1, 1),
    "H300": _case(3, 2, 5, 300, lengths=[3, 2]),
    "H300-reverse": _case(3, 2, 5, 300, lengths=[1, 3], reverse=True),
    "larger": _case(20, 8, 16, 32, lengths=[20, 1, 7, 0, 20, 13, 2, 19]),
    "larger-reverse": _case(20, 8, 16, 32, lengths=[20, 1, 7, 0, 20, 13, 2, 19], reverse=True),
    # T·B > 128: backward runs in chunks of 16 steps (grucy._gru.CHUNK_ROWS), and without
    # padding reads each chunk's previous states from out in place, but for the chunk that
    # starts from h0 (the first in time, or the last when reversed)
    "chunks": _case(40, 8, 3, 5),
    "chunks-reverse": _case(40, 8, 3, 5, reverse=True),
    "chunks-h0-none": _case(33, 8, 3, 5, h0=False, dout=False),
    # padded, not reversed: still chunked both ways (forward: KF = 32 steps, a partial last
    # chunk of 8), lengths ending on and next to the chunk bounds (t = 8, 24 backward, 32)
    "chunks-lengths": _case(40, 8, 3, 5, lengths=[40, 0, 24, 33, 1, 32, 8, 17]),
    # B > PROJ_ROWS > CHUNK_ROWS: chunks of one step each way (K = KF = 1, from max(1, 0))
    "one-step-chunks-reverse": _case(4, 260, 2, 3, reverse=True),
    "one-step-chunks-lengths": _case(4, 260, 2, 3, lengths=[4, 0, 2, 1, 3] * 52),
}


def _run_both(gk, ref, make_problem, make_cotangents, case, dtype, reset_after, seed):
    """Compiled results (forward + backward) and the float64 reference on the same values."""
    c = case
    p = make_problem(c["T"], c["B"], c["I"], c["H"], dtype=dtype, seed=seed, h0=c["h0"])
    dout, dh_n = make_cotangents(c["T"], c["B"], c["H"], dtype=dtype, seed=seed + 1)
    dout = dout if c["dout"] else None
    dh_n = dh_n if c["dh_n"] else None
    lengths = None if c["lengths"] is None else np.array(c["lengths"])
    kw = dict(reset_after=reset_after, lengths=lengths, reverse=c["reverse"])

    out, h_n, cache = gk.gru_forward(**p, **kw)
    got = (out, h_n) + tuple(gk.gru_backward(dout, dh_n, cache))

    def up(a):
        return None if a is None else a.astype(np.float64)
    p64 = {k: up(v) for k, v in p.items()}
    rout, rh_n, rcache = ref.gru_forward(**p64, **kw)
    want = (rout, rh_n) + tuple(ref.gru_backward(up(dout), up(dh_n), rcache))
    return p, got, want


@pytest.mark.parametrize("case", list(CASES), ids=list(CASES))
@pytest.mark.parametrize("reset_after", VARIANTS, ids=["seed", "reset_after"])
@pytest.mark.parametrize("dtype", DTYPES, ids=["f64", "f32"])
def test_forward_and_every_gradient_match_reference(gk, ref, make_problem, make_cotangents,
                                                    assert_close, tol, case, reset_after, dtype):
    p, got, want = _run_both(gk, ref, make_problem, make_cotangents, CASES[case], dtype,
                             reset_after, seed=100)
    names = ("out", "h_n") + GRADS
    for name, g, w in zip(names, got, want):
        assert isinstance(g, np.ndarray), f"{name}: {type(g).__name__}"
        assert g.dtype == np.dtype(dtype), f"{name}: dtype {g.dtype}, expected {np.dtype(dtype)}"
        assert_close(g, w, tol[np.dtype(dtype)], name)
    # gradients are fresh arrays, sharing memory with no input and no other result
    for i, g in enumerate(got):
        for a in [v for v in p.values() if v is not None] + list(got[i + 1:]):
            assert not np.shares_memory(g, a), f"{names[i]} shares memory"


@pytest.mark.parametrize("reset_after", VARIANTS, ids=["seed", "reset_after"])
def test_float32_bias_gradients_stay_accurate_over_many_rows(gk, ref, make_problem, reset_after):
    """db sums dA over every (t, b) row, a chunk of about 128 rows at a time. In float32 the
    sums carried over 500 chunks (64,000 rows) were 6e-6 of the largest entry off the
    float64 truth (torch's, in a like test: 2e-7); summed in double they are as accurate as
    the float32 dA they add up (7e-8 here). Cotangent: the gradient of mean(out), every row
    pulling the same way, so the sums grow with the rows and so did their rounding."""
    T, B, I, H = 1000, 64, 4, 16
    p = make_problem(T, B, I, H, dtype=np.float32, seed=3)
    dout = np.full((T, B, H), 1.0 / (T * B), dtype=np.float32)
    _, _, cache = gk.gru_forward(p["x"], p["h0"], p["w_ih"], p["w_hh"], p["b_ih"], p["b_hh"],
                                 reset_after=reset_after, training=True)
    got = gk.gru_backward(dout, None, cache)[4:]
    p64 = {k: v.astype(np.float64) for k, v in p.items()}
    _, _, c64 = ref.gru_forward(p64["x"], p64["h0"], p64["w_ih"], p64["w_hh"], p64["b_ih"],
                                p64["b_hh"], reset_after=reset_after)
    want = ref.gru_backward(dout.astype(np.float64), None, c64)[4:]
    for name, g, w in zip(("db_ih", "db_hh"), got, want):
        err = np.abs(g - w).max() / np.abs(w).max()
        assert err < 1e-6, f"{name}: {err:.1e} of the largest entry"


@pytest.mark.parametrize("reverse", [False, True], ids=["full", "padded-reverse"])
@pytest.mark.parametrize("T", [31, 32])
@pytest.mark.parametrize("reset_after", VARIANTS, ids=["seed", "reset_after"])
def test_both_layouts_of_the_recurrent_weight_match_reference(gk, ref, make_problem,
                                                              make_cotangents, assert_close,
                                                              tol, T, reverse, reset_after):
    """From 32 steps (up to H = 512) the forward's recurrent GEMMs read a transposed copy of
    w_hh made per call (_gru.transpose_w_hh); below, w_hh itself. Both sides of the switch,
    without padding and with padding reversed, an H that is no multiple of the copy's 32 x 32
    tiles and B = 16 (OpenBLAS's small-matrix kernel takes some untransposed products), in
    float32 and float64."""
    from grucy import _gru
    assert not _gru.transpose_w_hh(31, 37) and _gru.transpose_w_hh(32, 37)
    assert _gru.transpose_w_hh(32, 512) and not _gru.transpose_w_hh(32, 513)
    lengths = [T, T - 1, 0, 1, T, 17, T - 5, 2, T, T, 30, 3, T, 9, T, 1] if reverse else None
    case = _case(T, 16, 3, 37, lengths=lengths, reverse=reverse)
    for dtype in DTYPES:
        _, got, want = _run_both(gk, ref, make_problem, make_cotangents, case, dtype,
                                 reset_after, seed=131 + T)
        for name, g, w in zip(("out", "h_n") + GRADS, got, want):
            assert_close(g, w, tol[np.dtype(dtype)], f"{np.dtype(dtype)} {name}")


@pytest.mark.parametrize("level", [0, 1], ids=["baseline", "avx2"])
@pytest.mark.parametrize("case", ["lengths-reverse", "chunks", "H300"])
@pytest.mark.parametrize("reset_after", VARIANTS, ids=["seed", "reset_after"])
@pytest.mark.parametrize("dtype", DTYPES, ids=["f64", "f32"])
def test_the_older_gate_passes_match_reference(gk, ref, make_problem, make_cotangents,
                                               assert_close, tol, case, reset_after, dtype,
                                               level):
    """grucy/_gates.h compiles each gate pass three times and runs the newest copy the CPU
    has, so on such a CPU every other test runs only that copy, never the baseline or AVX2
    one an older CPU runs. Here those copies, training and inference."""
    from grucy import _gru
    if level >= _gru.SIMD:
        pytest.skip("this copy is the CPU's own, which every other test runs")
    _gru._set_simd(level)
    try:
        p, got, want = _run_both(gk, ref, make_problem, make_cotangents, CASES[case], dtype,
                                 reset_after, seed=117)
        c = CASES[case]
        lengths = None if c["lengths"] is None else np.array(c["lengths"])
        out, h_n, _ = gk.gru_forward(**p, reset_after=reset_after, lengths=lengths,
                                     reverse=c["reverse"], training=False)
    finally:
        _gru._set_simd()
    for name, g, w in zip(("out", "h_n") + GRADS + ("inference out", "inference h_n"),
                          got + (out, h_n), want + want[:2]):
        assert_close(g, w, tol[np.dtype(dtype)], name)


@pytest.mark.parametrize("reset_after", VARIANTS, ids=["seed", "reset_after"])
@pytest.mark.parametrize("dtype", DTYPES, ids=["f64", "f32"])
@pytest.mark.parametrize("shape", [(3, 4, 5), (1, 1, 1), (1, 2, 300), (4, 1, 3)],
                         ids=["B3-I4-H5", "B1-I1-H1", "B1-I2-H300", "B4-I1-H3"])
def test_cell_equals_one_reference_step(gk, ref, make_problem, assert_close, tol, shape,
                                        reset_after, dtype):
    B, I, H = shape
    p = make_problem(1, B, I, H, dtype=dtype, seed=101)
    args = (p["x"][0], p["h0"], p["w_ih"], p["w_hh"], p["b_ih"], p["b_hh"])
    got = gk.gru_cell(*args, reset_after=reset_after)
    want = ref.gru_cell(*(a.astype(np.float64) for a in args), reset_after=reset_after)
    assert got.dtype == np.dtype(dtype)
    # h' = (1 − z)h + zn, terms of up to |h|, |n| <= 1: errors measured against 1, not against
    # h' itself. At B = H = 1, h' is one entry, here (f32, reset_after) the near-cancellation
    # -0.175 + 0.175 = 5.5e-4, where one ulp of z moves h' by 4e-5 of itself (the float32
    # reference misses the float64 one there by 7e-5).
    assert_close(got, want, tol[np.dtype(dtype)], "h'", scale=1.0)
    # h=None starts from zeros, as in the reference (and gru_forward's h0)
    got = gk.gru_cell(args[0], None, *args[2:], reset_after=reset_after)
    want = ref.gru_cell(args[0].astype(np.float64), None,
                        *(a.astype(np.float64) for a in args[2:]), reset_after=reset_after)
    assert_close(got, want, tol[np.dtype(dtype)], "h' from h=None", scale=1.0)


def test_cell_arguments_by_keyword_and_reset_after_defaults_to_the_seed_candidate(gk, ref,
                                                                                   make_problem):
    """gru_cell's signature is the reference's: the arrays may be passed by name,
    reset_after only by name, and it defaults to False (the seed's candidate)."""
    p = make_problem(1, 3, 4, 5, seed=104)
    kw = dict(x_t=p["x"][0], h=p["h0"], w_ih=p["w_ih"], w_hh=p["w_hh"], b_ih=p["b_ih"],
              b_hh=p["b_hh"])
    np.testing.assert_allclose(gk.gru_cell(**kw), ref.gru_cell(**kw, reset_after=False),
                               rtol=1e-12, atol=1e-14)
    with pytest.raises(TypeError):
        gk.gru_cell(*kw.values(), False)


@pytest.mark.parametrize("reverse", [False, True], ids=["fwd", "rev"])
@pytest.mark.parametrize("reset_after", VARIANTS, ids=["seed", "reset_after"])
@pytest.mark.parametrize("dtype", DTYPES, ids=["f64", "f32"])
def test_training_false_returns_no_cache_and_same_results(gk, make_problem, assert_close, tol,
                                                          dtype, reset_after, reverse):
    p = make_problem(6, 4, 3, 5, dtype=dtype, seed=102)
    kw = dict(reset_after=reset_after, lengths=np.array([6, 0, 2, 5]), reverse=reverse)
    out, h_n, cache = gk.gru_forward(**p, **kw)
    out2, h_n2, cache2 = gk.gru_forward(**p, **kw, training=False)
    assert cache is not None
    assert cache2 is None
    assert_close(out2, out, tol[np.dtype(dtype)] / 100, "out")
    assert_close(h_n2, h_n, tol[np.dtype(dtype)] / 100, "h_n")


@pytest.mark.parametrize("lengths", [None, [6, 6, 6, 6]], ids=["none", "all-T"])
def test_an_unpadded_cache_refers_to_x_not_a_copy(gk, make_problem, lengths):
    """As gru_forward's docstring says: the cache refers to x. Only padding (a length < T)
    makes it keep a copy, with the padding zeroed; a full batch costs no T·B·I copy."""
    p = make_problem(6, 4, 3, 5, seed=103)
    _, _, cache = gk.gru_forward(**p, lengths=None if lengths is None else np.array(lengths))
    assert np.shares_memory(cache.x, p["x"])
    _, _, cache = gk.gru_forward(**p, lengths=np.array([6, 5, 6, 6]))
    assert not np.shares_memory(cache.x, p["x"])


@pytest.mark.parametrize("case", ["chunks", "chunks-reverse", "chunks-lengths",
                                  "one-step-chunks-lengths"])
@pytest.mark.parametrize("reset_after", VARIANTS, ids=["seed", "reset_after"])
@pytest.mark.parametrize("dtype", DTYPES, ids=["f64", "f32"])
def test_inference_projects_the_input_chunk_by_chunk(gk, ref, make_problem, assert_close, tol,
                                                     case, reset_after, dtype):
    """training=False projects x into a scratch of KF steps (_gru.proj_steps) that each
    chunk reuses, read relative to the chunk's first time; training writes the projection
    into the cache's (T, B, 3H) plane instead, so the training cases above never read it.
    T·B > PROJ_ROWS here: several chunks, the last one partial, or one step each."""
    c = CASES[case]
    p = make_problem(c["T"], c["B"], c["I"], c["H"], dtype=dtype, seed=114)
    lengths = None if c["lengths"] is None else np.array(c["lengths"])
    kw = dict(reset_after=reset_after, lengths=lengths, reverse=c["reverse"])
    out, h_n, cache = gk.gru_forward(**p, **kw, training=False)
    assert cache is None
    rout, rh_n, _ = ref.gru_forward(**{k: v.astype(np.float64) for k, v in p.items()}, **kw,
                                    training=False)
    assert_close(out, rout, tol[np.dtype(dtype)], "out")
    assert_close(h_n, rh_n, tol[np.dtype(dtype)], "h_n")


@pytest.mark.parametrize("reset_after", VARIANTS, ids=["seed", "reset_after"])
def test_interleaved_calls_keep_their_own_results(gk, ref, make_problem, make_cotangents,
                                                  assert_close, tol, reset_after):
    """Two forwards, then both backwards in the opposite order (what a 2-layer stack does):
    no call may reuse another call's buffers, outputs or cache."""
    f64 = np.dtype(np.float64)
    problems = [make_problem(5, 3, 4, 6, seed=s) for s in (103, 104)]
    cots = [make_cotangents(5, 3, 6, seed=s) for s in (105, 106)]
    kw = dict(reset_after=reset_after, lengths=np.array([5, 2, 4]))
    runs = [gk.gru_forward(**p, **kw) for p in problems]
    grads = [gk.gru_backward(*cots[i], runs[i][2]) for i in (1, 0)][::-1]
    for p, d, (out, h_n, _), g in zip(problems, cots, runs, grads):
        rout, rh_n, rcache = ref.gru_forward(**p, **kw)
        for name, a, b in zip(("out", "h_n") + GRADS, (out, h_n) + tuple(g),
                              (rout, rh_n) + tuple(ref.gru_backward(*d, rcache))):
            assert_close(a, b, tol[f64], name)


def test_editing_h0_after_forward_leaves_the_gradients(gk, ref, make_problem, make_cotangents,
                                                      assert_close, tol):
    """The cache keeps a copy of the caller's h0 (unlike x and the weights, the docstring
    does not ask the caller to leave it alone): zeroing it before backward changes nothing."""
    p = make_problem(5, 3, 4, 6, seed=117)
    dout, dh_n = make_cotangents(5, 3, 6, seed=118)
    want = ref.gru_backward(dout, dh_n, ref.gru_forward(**p)[2])
    h0 = p["h0"].copy()
    _, _, cache = gk.gru_forward(**dict(p, h0=h0))
    h0[...] = 0
    for name, a, b in zip(GRADS, gk.gru_backward(dout, dh_n, cache), want):
        assert_close(a, b, tol[np.dtype(np.float64)], name)


@pytest.mark.parametrize("reverse", [False, True], ids=["fwd", "rev"])
@pytest.mark.parametrize("reset_after", VARIANTS, ids=["seed", "reset_after"])
def test_a_padded_backward_after_a_full_one_reads_no_stale_scratch(gk, ref, make_problem,
                                                                  make_cotangents,
                                                                  assert_close, tol,
                                                                  reset_after, reverse):
    """Backward's scratch (dA of a chunk, the per-step GEMM rows) is reused across calls and
    zeroed on padded rows only: a full batch of the same shape first fills every row of it,
    so a padded row left out of the zeroing (the chunk's last step, say) would carry the
    earlier call's numbers into this one's gradients instead of an earlier test's leftovers,
    whatever order the tests run in."""
    T, B, I, H = 6, 3, 2, 4
    kw = dict(reset_after=reset_after, reverse=reverse)
    p = make_problem(T, B, I, H, seed=115)
    dout, dh_n = make_cotangents(T, B, H, seed=116)
    out, h_n, cache = gk.gru_forward(**p, **kw)
    gk.gru_backward(dout, dh_n, cache)
    kw["lengths"] = np.array([T, 0, 2])
    out, h_n, cache = gk.gru_forward(**p, **kw)
    got = (out, h_n) + tuple(gk.gru_backward(dout, dh_n, cache))
    rout, rh_n, rcache = ref.gru_forward(**p, **kw)
    want = (rout, rh_n) + tuple(ref.gru_backward(dout, dh_n, rcache))
    for name, a, b in zip(("out", "h_n") + GRADS, got, want):
        assert_close(a, b, tol[np.dtype(np.float64)], name)


@pytest.mark.parametrize("reset_after", VARIANTS, ids=["seed", "reset_after"])
def test_backward_twice_from_one_cache_gives_the_same_gradients(gk, make_problem,
                                                                make_cotangents, reset_after):
    p = make_problem(5, 3, 4, 6, seed=107)
    dout, dh_n = make_cotangents(5, 3, 6, seed=108)
    _, _, cache = gk.gru_forward(**p, reset_after=reset_after, lengths=np.array([5, 0, 3]))
    first = gk.gru_backward(dout, dh_n, cache)
    second = gk.gru_backward(dout, dh_n, cache)
    for name, a, b in zip(GRADS, first, second):
        np.testing.assert_array_equal(a, b, err_msg=name)


@pytest.mark.parametrize("reverse", [False, True], ids=["fwd", "rev"])
@pytest.mark.parametrize("reset_after", VARIANTS, ids=["seed", "reset_after"])
def test_compiled_gradients_match_finite_differences(gk, make_problem, make_cotangents,
                                                     fd_grad, reset_after, reverse):
    """Independent of the reference: the compiled backward against its own forward."""
    T, B, I, H = 3, 3, 2, 3
    lengths = np.array([3, 0, 2])
    arrays = make_problem(T, B, I, H, seed=109)
    dout, dh_n = make_cotangents(T, B, H, seed=110)
    kw = dict(reset_after=reset_after, lengths=lengths, reverse=reverse)
    _, _, cache = gk.gru_forward(**arrays, **kw)
    grads = dict(zip(arrays, gk.gru_backward(dout, dh_n, cache)))

    def loss(a):
        out, h_n, _ = gk.gru_forward(**a, **kw, training=False)
        return float(np.sum(out * dout) + np.sum(h_n * dh_n))

    for name in arrays:
        numeric = fd_grad(loss, arrays, name)
        assert np.abs(numeric).max() > 1e-3, f"{name}: degenerate test, gradient ~ 0"
        np.testing.assert_allclose(grads[name], numeric, rtol=1e-7, atol=1e-9, err_msg=name)


@pytest.mark.parametrize("lengths_dtype", [np.int8, np.int32, np.int64, np.uint16, np.intp])
def test_any_integer_lengths_dtype_works(gk, ref, make_problem, assert_close, tol,
                                         lengths_dtype):
    p = make_problem(4, 3, 2, 3, seed=111)
    lengths = np.array([4, 0, 2], dtype=lengths_dtype)
    out, h_n, _ = gk.gru_forward(**p, lengths=lengths, reverse=True)
    rout, rh_n, _ = ref.gru_forward(**p, lengths=lengths.astype(np.int64), reverse=True)
    assert_close(out, rout, tol[np.dtype(np.float64)], "out")
    assert_close(h_n, rh_n, tol[np.dtype(np.float64)], "h_n")


@pytest.mark.parametrize("fill", [np.nan, np.inf, 1e30], ids=["nan", "inf", "huge"])
@pytest.mark.parametrize("reverse", [False, True], ids=["fwd", "rev"])
@pytest.mark.parametrize("reset_after", VARIANTS, ids=["seed", "reset_after"])
def test_padding_values_never_matter(kernels, make_problem, make_cotangents, fill, reset_after,
                                     reverse):
    """x and dout at padded steps (t >= lengths[b]) are not part of the problem: garbage there
    (np.empty padding, a NaN fill) must not reach any result."""
    T, B, I, H = 5, 4, 3, 4
    lengths = np.array([5, 0, 2, 4])
    p = make_problem(T, B, I, H, seed=112)
    dout, dh_n = make_cotangents(T, B, H, seed=113)
    padded = np.arange(T)[:, None] >= lengths[None, :]          # (T, B)
    p["x"][padded] = 0.0
    dout[padded] = 0.0
    kw = dict(reset_after=reset_after, lengths=lengths, reverse=reverse)
    out, h_n, cache = kernels.gru_forward(**p, **kw)
    clean = (out, h_n) + tuple(kernels.gru_backward(dout, dh_n, cache))

    x_bad, dout_bad = p["x"].copy(), dout.copy()
    x_bad[padded] = fill
    dout_bad[padded] = fill
    out, h_n, cache = kernels.gru_forward(**{**p, "x": x_bad}, **kw)
    dirty = (out, h_n) + tuple(kernels.gru_backward(dout_bad, dh_n, cache))
    for name, a, b in zip(("out", "h_n") + GRADS, dirty, clean):
        np.testing.assert_array_equal(a, b, err_msg=name)


@pytest.mark.parametrize("simd", [2, 1, 0], ids=["avx512", "avx2", "baseline"])
@pytest.mark.parametrize("reset_after", VARIANTS, ids=["seed", "reset_after"])
def test_a_saturated_update_gate_passes_the_state_gradient_rounded_once(gk, reset_after, simd):
    # dh += dh'·(1 - z) was computed as d - d·z: with z a few ulp below 1, d·z rounded to an
    # ulp of d and the difference kept that error whole (19% off the float32 reference in
    # an audit). 1 - z is exact for z >= 1/2, so with W_hh = 0 over one step dh0 must be
    # dh_n·(1 - z) of the cache's own z, rounded once.
    from grucy import _gru
    H = 8
    f32 = np.float32
    w_ih, w_hh = np.zeros((3 * H, 1), f32), np.zeros((3 * H, H), f32)
    b_ih, b_hh = np.zeros(3 * H, f32), np.zeros(3 * H, f32)
    b_ih[H:2 * H] = np.linspace(9, 16, H)                   # z = 1 - 1e-4 ... 1 - 1e-7
    x, h0 = np.zeros((1, 1, 1), f32), np.ones((1, H), f32)
    dh_n = np.full((1, H), 1.2345678, f32)
    if _gru._set_simd(simd) != simd:
        _gru._set_simd()
        pytest.skip("this CPU or compiler has no such copy")
    try:
        _, _, cache = gk.gru_forward(x, h0, w_ih, w_hh, b_ih, b_hh, reset_after=reset_after)
        dh0 = gk.gru_backward(None, dh_n, cache)[1]
    finally:
        _gru._set_simd()
    z = cache.gates[0, 0, H:2 * H].astype(np.float64)
    assert (z > 0.5).all() and (z < 1).any()
    want = (dh_n[0].astype(np.float64) * (1 - z)).astype(f32)
    np.testing.assert_array_equal(dh0[0], want)
