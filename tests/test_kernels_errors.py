"""Bad input to the compiled kernels: a ValueError/TypeError naming the argument, never a crash;
awkward but valid input (non-contiguous, Fortran-ordered, read-only) gives the right answer.

The bad calls are built by `bad_calls()` so the same list runs in-process (one test each, to
see which fails) and in a subprocess (to show that none of them kills the interpreter).
"""

import pathlib
import re
import subprocess
import sys
import textwrap

import numpy as np
import pytest

T, B, I, H = 4, 3, 2, 5      # all different, so a wrong dimension cannot pass by accident
ERRORS = (ValueError, TypeError)


def _problem(dtype=np.float64):
    rng = np.random.default_rng(200)
    return {
        "x": rng.standard_normal((T, B, I)).astype(dtype),
        "h0": rng.uniform(-0.9, 0.9, (B, H)).astype(dtype),
        "w_ih": rng.uniform(-1, 1, (3 * H, I)).astype(dtype),
        "w_hh": rng.uniform(-0.5, 0.5, (3 * H, H)).astype(dtype),
        "b_ih": rng.uniform(-0.5, 0.5, 3 * H).astype(dtype),
        "b_hh": rng.uniform(-0.5, 0.5, 3 * H).astype(dtype),
    }


def bad_calls(grucy):
    """[(id, argument name, zero-argument callable that must raise naming it)]."""
    calls = []

    def forward(name, value=None, **kw):
        p = _problem()
        if name in p:
            p[name] = value
        return lambda: grucy.gru_forward(**p, **kw)

    # shapes that are wrong on their own (a consistent set of other dimensions exists for none)
    wrong = {
        # (T = 0 or B = 0 is an empty batch, not an error: test_kernels_empty.py)
        "x": [np.zeros((T, B)), np.zeros((1, T, B, I)), np.zeros((T, B, 0))],
        "h0": [np.zeros((B, H + 1)), np.zeros((B + 1, H)), np.zeros(H), np.zeros((1, B, H))],
        "w_ih": [np.zeros((3 * H, I + 1)), np.zeros((3 * H + 3, I)), np.zeros(3 * H * I),
                 np.zeros((1, 3 * H, I))],
        "w_hh": [np.zeros((3 * H, H + 1)), np.zeros((3 * H + 1, H)), np.zeros((H, H)),
                 np.zeros((1, 3 * H, H)), np.zeros(3 * H * H), np.zeros((0, 0))],
        "b_ih": [np.zeros(3 * H + 1), np.zeros(3 * H - 3), np.zeros((3 * H, 1)), np.zeros(())],
        "b_hh": [np.zeros(3 * H + 1), np.zeros(H), np.zeros((1, 3 * H)), np.zeros(())],
    }
    for name, values in wrong.items():
        for k, v in enumerate(values):
            calls.append((f"{name}-shape{v.shape}", name, forward(name, v)))

    for name, v in _problem().items():
        for dt in (np.int64, np.float16, np.complex128, np.bool_):
            calls.append((f"{name}-{np.dtype(dt).name}", name, forward(name, v.astype(dt))))
        calls.append((f"{name}-float32-among-float64", name, forward(name, v.astype(np.float32))))
        calls.append((f"{name}-object", name, forward(name, v.astype(object))))
        # numpy's own message for a ragged list ("inhomogeneous shape") named no argument
        calls.append((f"{name}-ragged-list", name, forward(name, [[1.0, 2.0], [3.0]])))
    calls.append(("x-None", "x", forward("x", None)))

    for label, lengths in [("negative", np.array([4, -1, 2])), ("above-T", np.array([4, 5, 2])),
                           ("too-short", np.array([4, 2])), ("too-long", np.array([4, 2, 1, 1])),
                           ("float", np.array([4.0, 1.0, 2.0])), ("2-D", np.array([[4, 1, 2]])),
                           ("bool", np.array([True, True, False])),
                           ("huge", np.array([4, 2**40, 1])),
                           ("uint64-max", np.array([4, 2**64 - 1, 1], dtype=np.uint64)),
                           ("int8-negative", np.array([4, -128, 1], dtype=np.int8)),
                           ("scalar", np.array(3)), ("ragged-list", [[4], [1, 2]])]:
        calls.append((f"lengths-{label}", "lengths", forward("lengths", lengths=lengths)))

    calls.append(("reverse-str", "reverse", forward("-", reverse="False")))
    calls.append(("reset_after-str", "reset_after", forward("-", reset_after="True")))

    def backward(name, value, training=True):
        p = _problem()
        _, _, cache = grucy.gru_forward(**p, training=training)
        rng = np.random.default_rng(201)
        args = {"dout": rng.standard_normal((T, B, H)), "dh_n": rng.standard_normal((B, H)),
                "cache": cache}
        if name != "cache" or training:
            args[name] = value
        return lambda: grucy.gru_backward(args["dout"], args["dh_n"], args["cache"])

    calls.append(("cache-from-training-false", "cache", backward("cache", None, training=False)))
    calls.append(("cache-tuple", "cache", backward("cache", (1, 2, 3))))
    calls.append(("cache-array", "cache", backward("cache", np.zeros((T, B, H)))))
    for label, v in [("shape-H", np.zeros((T, B, H + 1))), ("shape-T", np.zeros((T + 1, B, H))),
                     ("2-D", np.zeros((B, H))), ("float32", np.zeros((T, B, H), np.float32)),
                     ("int", np.zeros((T, B, H), np.int64))]:
        calls.append((f"dout-{label}", "dout", backward("dout", v)))
    for label, v in [("shape", np.zeros((B, H + 1))), ("3-D", np.zeros((1, B, H))),
                     ("float32", np.zeros((B, H), np.float32)),
                     ("complex", np.zeros((B, H), np.complex128))]:
        calls.append((f"dh_n-{label}", "dh_n", backward("dh_n", v)))
    calls.append(("dout-ragged-list", "dout", backward("dout", [[[1.0]], [[1.0, 2.0]]])))
    calls.append(("dh_n-ragged-list", "dh_n", backward("dh_n", [[1.0], [1.0, 2.0]])))

    def cell(name, value):
        p = _problem()
        args = {"x_t": p["x"][0], "h": p["h0"], "w_ih": p["w_ih"], "w_hh": p["w_hh"],
                "b_ih": p["b_ih"], "b_hh": p["b_hh"]}
        args[name] = value
        return lambda: grucy.gru_cell(*args.values())

    calls += [
        ("cell-x_t-3-D", "x_t", cell("x_t", np.zeros((1, B, I)))),
        ("cell-x_t-int", "x_t", cell("x_t", np.zeros((B, I), np.int64))),
        # I = 0 once named "x" and a shape (1, B, 0) the caller never passed
        ("cell-x_t-no-features", "x_t", cell("x_t", np.zeros((B, 0)))),
        ("cell-h-shape", "h", cell("h", np.zeros((B, H + 1)))),
        ("cell-h-3-D", "h", cell("h", np.zeros((1, B, H)))),
        ("cell-h-float32", "h", cell("h", np.zeros((B, H), np.float32))),
        ("cell-x_t-ragged-list", "x_t", cell("x_t", [[1.0, 2.0], [1.0]])),
        ("cell-h-ragged-list", "h", cell("h", [[1.0, 2.0], [1.0]])),
        ("cell-w_ih-shape", "w_ih", cell("w_ih", np.zeros((3 * H, I + 1)))),
        ("cell-w_ih-no-columns", "w_ih", cell("w_ih", np.zeros((3 * H, 0)))),
        ("cell-b_hh-shape", "b_hh", cell("b_hh", np.zeros(3 * H + 1))),
    ]
    return calls


def _names(message, name):
    """Whether the message names the argument as a whole word ('x' is not in 'x_t' or 'max')."""
    return re.search(rf"(?<![\w]){re.escape(name)}(?![\w])", message) is not None


def _ids():
    class _Stub:
        def __getattr__(self, _):
            return lambda *a, **k: (None, None, None)
    return [c[0] for c in bad_calls(_Stub())]


@pytest.mark.parametrize("index", range(len(_ids())), ids=_ids())
def test_bad_argument_raises_naming_it(gk, index):
    label, name, call = bad_calls(gk)[index]
    with pytest.raises(ERRORS) as info:
        call()
    assert _names(str(info.value), name), f"{label}: message does not name {name!r}: {info.value}"


@pytest.mark.parametrize("name", ["x", "h0", "b_ih", "dh_n", "x_t", "h"])
def test_a_0_d_argument_is_reported_with_shape_0_d(gk, name):
    """A scalar was reported as shape (1,) (np.ascontiguousarray's view of it), a shape the
    caller never passed."""
    p = _problem()
    if name == "dh_n":
        _, _, cache = gk.gru_forward(**p)
        call = lambda: gk.gru_backward(None, np.float64(0.5), cache)  # noqa: E731
    elif name in ("x_t", "h"):
        args = {"x_t": p["x"][0], "h": p["h0"]}
        args[name] = np.array(0.5)
        call = lambda: gk.gru_cell(args["x_t"], args["h"], p["w_ih"], p["w_hh"],  # noqa: E731
                                   p["b_ih"], p["b_hh"])
    else:
        p[name] = 0.5
        call = lambda: gk.gru_forward(**p)  # noqa: E731
    with pytest.raises(ValueError, match=r"got (shape )?\(\)$") as info:
        call()
    assert _names(str(info.value), name), str(info.value)


_SUBPROCESS = textwrap.dedent("""
    import importlib.util, sys
    import numpy as np
    import grucy
    spec = importlib.util.spec_from_file_location("bad", sys.argv[1])
    bad = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bad)
    problems = []
    for label, name, call in bad.bad_calls(grucy):
        try:
            call()
            problems.append(label + ": no error")
        except (ValueError, TypeError):
            pass
        except BaseException as e:
            problems.append(f"{label}: {type(e).__name__}: {e}")
    # odd but arguably valid input: any result or Python exception, just no crash
    p = bad._problem()
    for label, kw in [("nan-x", dict(x=np.full((4, 3, 2), np.nan))),
                      ("inf-weights", dict(w_hh=np.full((15, 5), np.inf))),
                      ("huge-x", dict(x=np.full((4, 3, 2), 1e300)))]:
        try:
            out, h_n, cache = grucy.gru_forward(**{**p, **kw})
            grucy.gru_backward(np.ones_like(out), None, cache)
        except Exception:
            pass
    print("\\n".join(problems))
    print("finished", len(problems))
""")


def test_bad_calls_in_a_subprocess_never_crash(gk):
    """The whole batch of bad calls in a fresh interpreter: it must exit normally."""
    here = pathlib.Path(__file__)
    result = subprocess.run([sys.executable, "-c", _SUBPROCESS, str(here)], capture_output=True,
                            text=True, timeout=120, cwd=here.parents[1])
    assert result.returncode == 0, f"exit {result.returncode}\n{result.stdout}\n{result.stderr}"
    assert result.stdout.strip().endswith("finished 0"), result.stdout


_EDITED_CACHES = textwrap.dedent("""
    import numpy as np
    import grucy
    rng = np.random.default_rng(0)
    T, B, I, H = 3, 2, 4, 5
    x = rng.standard_normal((T, B, I))
    p = [rng.standard_normal(s) for s in ((3 * H, I), (3 * H, H), (3 * H,), (3 * H,))]
    out, h_n, cache = grucy.gru_forward(x, None, *p, reverse=True)
    for edit in [dict(lengths=np.array([10**8, 1], np.int32)),
                 dict(lengths=np.array([-5, 1], np.int32)),
                 dict(lengths=np.array([3, 3, 3], np.int32)),
                 dict(lengths=np.array([3, 3])),
                 dict(x=np.zeros((T + 5, B, I))),
                 dict(out=np.zeros((T, B + 1, H))),
                 dict(h0=np.zeros((B, H + 1))),
                 dict(gates=np.zeros((1, B, 3 * H))),
                 dict(w_hh=np.zeros((3 * (H + 1), H + 1))),
                 dict(b_hh=np.zeros(3))]:
        try:
            grucy.gru_backward(out, h_n, cache._replace(**edit))
            print(list(edit), "no error")
        except ValueError as e:
            assert str(e).startswith("cache"), e      # names the argument
    print("finished")
""")


def test_an_edited_cache_is_refused_not_read_out_of_bounds():
    """GRUCache is a NamedTuple: cache._replace(lengths=...) with a length past T, on a reversed
    forward, crashed the interpreter (the loops index out and gates by it unchecked)."""
    result = subprocess.run([sys.executable, "-c", _EDITED_CACHES], capture_output=True,
                            text=True, timeout=120, cwd=pathlib.Path(__file__).parents[1])
    assert result.returncode == 0, f"exit {result.returncode}\n{result.stdout}\n{result.stderr}"
    assert result.stdout.strip() == "finished", result.stdout


@pytest.mark.parametrize("field, edit", [
    ("w_hh", lambda c: None), ("w_hh", lambda c: np.zeros((0, 0))),
    ("w_hh", lambda c: np.zeros((3 * (H + 1), H + 1))),
    ("out", lambda c: c.out.astype(np.float32)), ("h0", lambda c: c.h0.astype(np.float32)),
    ("out", lambda c: c.out.tolist()), ("x", lambda c: c.x[:-1]),
    ("x", lambda c: c.x.astype(np.float32)),
    ("gates", lambda c: _unaligned(c.gates)), ("lengths", lambda c: _unaligned(c.lengths)),
    # h0 (B,) alone: out and x still agree, so only h0's own shape check names it (the
    # compiled backward's typed argument said "Buffer has wrong number of dimensions")
    ("h0", lambda c: c.h0[:, 0])],
    ids=["w_hh-None", "w_hh-empty", "w_hh-larger-H", "out-float32", "h0-float32",
         "out-list", "x-one-step-short", "x-float32",
         "gates-unaligned", "lengths-unaligned", "h0-no-H-axis"])
def test_an_edited_cache_is_refused_naming_the_field(gk, field, edit):
    """Regression: a w_hh set to None or (0, 0) was reported as "cache.x has shape ...", one of
    a larger H as a cache.w_ih of the wrong shape, and an out in another dtype as the caller's
    dout ("dout has dtype float64 but x has float32", a TypeError not naming the cache)."""
    _, h_n, cache = gk.gru_forward(**_problem())
    edited = cache._replace(**{field: edit(cache)})
    with pytest.raises(ValueError, match=r"^cache\..*cache must be gru_forward's") as info:
        gk.gru_backward(np.ones((T, B, H)), h_n, edited)
    assert re.search(rf"cache\.{field}\b", str(info.value)), info.value


def test_a_none_array_is_reported_as_none_not_as_an_object_dtype(gk):
    p = _problem()
    for name in ("x", "w_ih", "w_hh", "b_ih", "b_hh"):
        with pytest.raises(TypeError, match=rf"^{name} must be an array, got None$"):
            gk.gru_forward(**dict(p, **{name: None}))


def test_an_out_and_h0_each_missing_their_last_axis_are_refused_naming_the_cache(gk):
    """out (T, B) and h0 (B,) agree with each other and with x on T and B: out's ndim alone
    tells that the cache was edited."""
    _, h_n, cache = gk.gru_forward(**_problem())
    edited = cache._replace(out=cache.out[..., 0], h0=cache.h0[:, 0])
    with pytest.raises(ValueError, match=r"^cache\.x, cache\.out and cache\.h0 disagree"):
        gk.gru_backward(np.ones((T, B, H)), h_n, edited)


# ---- awkward but valid input -----------------------------------------------------------------

def _strided(a):
    """A non-contiguous view with the same values: every other element of a doubled array."""
    big = np.empty(a.shape[:-1] + (2 * a.shape[-1],), a.dtype)
    big[..., ::2] = a
    view = big[..., ::2]
    assert not view.flags.c_contiguous
    return view


def _unaligned(a):
    """a's values in an array one byte into its buffer (as np.frombuffer or a memmap at an odd
    offset give): C-contiguous, but not aligned for its dtype."""
    buf = np.empty(a.nbytes + 1, np.uint8)
    u = np.ndarray(a.shape, a.dtype, buffer=buf, offset=1)
    u[...] = a
    assert not u.flags.aligned and u.flags.c_contiguous
    return u


def _layout(a, how):
    if how == "read-only":
        a = a.copy()
        a.flags.writeable = False
        return a
    if how == "read-only-strided":
        a = _strided(a)
        a.flags.writeable = False
        return a
    if how == "unaligned":
        return _unaligned(a)
    if how == "fortran":
        a = np.asfortranarray(a)
        assert a.ndim < 2 or not a.flags.c_contiguous
        return a
    return _strided(a)


# unaligned: np.ascontiguousarray passed such arrays on as they were, and the C loops loaded
# their elements as aligned (undefined behaviour: an UBSan build stopped there)
@pytest.mark.parametrize("how", ["strided", "fortran", "x-every-other-step", "read-only",
                                 "read-only-strided", "unaligned"])
@pytest.mark.parametrize("reset_after", [False, True], ids=["seed", "reset_after"])
@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["f64", "f32"])
def test_non_contiguous_and_read_only_inputs_work(gk, ref, assert_close, tol, how, reset_after,
                                                  dtype):
    p = _problem(dtype)
    rng = np.random.default_rng(202)
    dout = rng.standard_normal((T, B, H)).astype(dtype)
    dh_n = rng.standard_normal((B, H)).astype(dtype)
    lengths = np.array([4, 0, 2])
    kw = dict(reset_after=reset_after, reverse=True)

    originals = {k: v.copy() for k, v in p.items()}
    if how == "x-every-other-step":
        doubled = np.zeros((2 * T, B, I), dtype)
        doubled[::2] = p["x"]
        odd = {k: _strided(v) for k, v in p.items()}
        odd["x"] = doubled[::2]
        odd_lengths = np.repeat(lengths, 2)[::2]
        odd_dout, odd_dh_n = _strided(dout), np.asfortranarray(dh_n)
    else:
        odd = {k: _layout(v, how) for k, v in p.items()}
        odd_lengths = _layout(lengths, how if how.startswith("read-only") or how == "unaligned"
                              else "strided")
        odd_dout, odd_dh_n = _layout(dout, how), _layout(dh_n, how)
    for k in p:
        np.testing.assert_array_equal(odd[k], p[k])

    out, h_n, cache = gk.gru_forward(**odd, lengths=odd_lengths, **kw)
    got = (out, h_n) + tuple(gk.gru_backward(odd_dout, odd_dh_n, cache))

    up = {k: v.astype(np.float64) for k, v in p.items()}
    rout, rh_n, rcache = ref.gru_forward(**up, lengths=lengths, **kw)
    want = (rout, rh_n) + tuple(ref.gru_backward(dout.astype(np.float64),
                                                 dh_n.astype(np.float64), rcache))
    for name, g, w in zip(("out", "h_n", "dx", "dh0", "dw_ih", "dw_hh", "db_ih", "db_hh"),
                          got, want):
        assert_close(g, w, tol[np.dtype(dtype)], name)
    for k in p:
        np.testing.assert_array_equal(odd[k], originals[k], err_msg=f"{k} was modified")


@pytest.mark.parametrize("reset_after", [False, True], ids=["seed", "reset_after"])
def test_cell_accepts_non_contiguous_and_read_only(gk, ref, assert_close, tol, reset_after):
    p = _problem()
    args = [p["x"][1], p["h0"], p["w_ih"], p["w_hh"], p["b_ih"], p["b_hh"]]
    want = ref.gru_cell(*args, reset_after=reset_after)
    odd = [_layout(a, "read-only-strided") for a in args]
    assert_close(gk.gru_cell(*odd, reset_after=reset_after), want, tol[np.dtype(np.float64)],
                 "h'")


def test_more_rows_than_the_32_bit_blas_takes_is_refused_before_any_copy():
    # T·B rows reach the projection and weight-gradient GEMMs as one C int; 2**31 of them
    # wrapped round. A zero-strided view allocates nothing, so the check must come first.
    import grucy
    x = np.broadcast_to(np.zeros((1, 1, 1), np.float32), (2**16, 2**15, 1))
    w = np.zeros((3, 1), np.float32)
    b = np.zeros(3, np.float32)
    with pytest.raises(ValueError, match=r"x has shape \(65536, 32768, 1\): T·B = 2147483648 rows"):
        grucy.gru_forward(x, None, w, w, b, b)


@pytest.mark.parametrize("shape", [(2**31 - 1, 1, 1), (1, 2**31 - 1, 1)], ids=["T", "B"])
def test_exactly_the_32_bit_blas_limit_of_rows_is_not_refused(shape):
    # T·B = 2**31 - 1 is the largest row count the BLAS takes: the row guard must let it
    # through (the dtype check that follows refuses this int view without copying it).
    import grucy
    x = np.broadcast_to(np.zeros((1, 1, 1), np.int32), shape)
    w = np.zeros((3, 1), np.float32)
    b = np.zeros(3, np.float32)
    with pytest.raises(TypeError, match="x must have dtype float32 or float64, got int32"):
        grucy.gru_forward(x, None, w, w, b, b)


@pytest.mark.parametrize("sizes", [(0, 1, 1, 1), (1, 0, 1, 1), (1, 1, 0, 1), (1, 1, 1, -2)])
def test_the_floor_refuses_empty_sizes(sizes):
    """benchmarks' GEMM floor indexes the first element of every buffer it owns."""
    from grucy._floor import Floor
    with pytest.raises(ValueError, match="Floor sizes T, B, I, H must be >= 1"):
        Floor(*sizes, True, np.float32)


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
def test_byte_swapped_inputs_say_byte_order(dtype):
    """'>f8' printed as a dtype reads like float64: the message must say what is wrong."""
    import grucy
    x = np.zeros((2, 1, 3), np.dtype(dtype).newbyteorder(">"))
    w_ih, w_hh = np.zeros((6, 3), dtype), np.zeros((6, 2), dtype)
    b = np.zeros(6, dtype)
    name = np.dtype(dtype).name
    with pytest.raises(TypeError, match=rf"x must have dtype float32 or float64 in native byte "
                                        rf"order, got >f\d; convert it with \.astype\(np\.{name}\)"):
        grucy.gru_forward(x, None, w_ih, w_hh, b, b)


def _huge(*shape):
    """A zero-strided float32 view of `shape`: terabytes if copied, nothing as it is."""
    return np.broadcast_to(np.zeros((1,) * len(shape), np.float32), shape)


def _small(*shape):
    return np.zeros(shape, np.float32)


@pytest.mark.parametrize("name", ["w_ih", "w_hh", "b_ih", "h0", "x"])
def test_a_huge_view_of_the_wrong_shape_is_refused_before_any_copy(name):
    # Each argument was copied to C order before the next was checked against it: a
    # mismatched np.broadcast_to view of 2**40 columns failed as numpy's MemoryError
    # ("Unable to allocate 60.0 TiB"), naming no argument, or an OOM kill for a smaller one.
    import grucy
    p = {"x": _small(3, 2, 4), "h0": _small(2, 5), "w_ih": _small(15, 4),
         "w_hh": _small(15, 5), "b_ih": _small(15), "b_hh": _small(15)}
    p[name] = {"w_ih": _huge(15, 2**40), "w_hh": _huge(3 * 2**20, 2**20), "b_ih": _huge(2**40),
               "h0": _huge(2, 2**40), "x": _huge(3, 2, 2**40)}[name]
    # the argument that disagrees first in the order of the checks: x's 2**40 features
    # disagree with w_ih's I; w_hh's H with w_ih's rows (gru_forward) or h's columns (gru_cell)
    in_forward = {"x": "w_ih", "w_hh": "w_ih"}.get(name, name)
    in_cell = {"x": "w_ih", "w_hh": "h", "h0": "h"}.get(name, name)
    args = [p[k] for k in ("x", "h0", "w_ih", "w_hh", "b_ih", "b_hh")]
    with pytest.raises(ValueError, match=rf"^{in_forward} must have shape"):
        grucy.gru_forward(*args)
    with pytest.raises(ValueError, match=rf"^{in_cell} must have shape"):
        grucy.gru_cell(args[0][0], *args[1:])


def test_a_huge_dout_is_refused_before_any_copy():
    import grucy
    out, _, cache = grucy.gru_forward(_small(3, 2, 4), None, _small(15, 4), _small(15, 5),
                                      _small(15), _small(15))
    with pytest.raises(ValueError, match=r"^dout must have shape \(T, B, H\) = \(3, 2, 5\)"):
        grucy.gru_backward(_huge(3, 2**40, 5), None, cache)


def test_a_cell_refuses_a_huge_strided_weight_without_copying_it():
    # the Cell keeps its weights by reference and refuses a copy: it must not make one first
    import grucy
    with pytest.raises(ValueError, match=r"^w_ih must be a C-contiguous, aligned numpy array"):
        grucy.Cell(_huge(15, 2**30), _small(15, 5), _small(15), _small(15))


@pytest.mark.parametrize("name", ["w_ih", "w_hh"])
def test_a_weight_past_the_32_bit_blas_sizes_is_refused_before_any_copy(name):
    # I and 3H reach the GEMMs as C ints: 2**31 wrapped round. A weight that large is
    # 24 GiB or more, but real (or a zero-strided view, as here): refuse it by name.
    import grucy
    H = 2**31 // 3 + 1 if name == "w_hh" else 1
    I = 2**31 if name == "w_ih" else 1
    x = _huge(1, 1, I)
    w_ih, w_hh, b = _huge(3 * H, I), _huge(3 * H, H), _huge(3 * H)
    message = rf"^{name} has shape \({3 * H}, {I if name == 'w_ih' else H}\), but grucy's BLAS"
    with pytest.raises(ValueError, match=message):
        grucy.gru_forward(x, None, w_ih, w_hh, b, b)
    with pytest.raises(ValueError, match=message):
        grucy.gru_cell(x[0], None, w_ih, w_hh, b, b)


def _direct_forward_args():
    p = {"x": _small(3, 2, 4), "h0": _small(2, 5), "w_ih": _small(15, 4), "w_hh": _small(15, 5),
         "b_ih": _small(15), "b_hh": _small(15), "lengths": np.full(2, 3, np.int32)}
    return p


@pytest.mark.parametrize("name,value", [
    ("h0", _small(1, 5)), ("w_ih", _small(3, 4)), ("b_ih", _small(2)), ("b_hh", _small(14)),
    ("lengths", np.full(1, 3, np.int32)), ("lengths", np.array([99, 1], np.int32)),
    ("lengths", np.array([-5, 1], np.int32))], ids=lambda v: getattr(v, "shape", v))
def test_the_compiled_forward_called_directly_refuses_what_its_loops_would_overrun(name, value):
    # grucy.kernels validates before calling grucy._gru.forward, whose loops trusted their
    # arguments: called directly with a short h0 (1 row for B = 2) they read past its end
    # (AddressSanitizer: heap-buffer-overflow in the gate pass), a short w_ih past the GEMM's
    import grucy._gru as _gru
    p = _direct_forward_args()
    p[name] = value
    with pytest.raises(ValueError, match=rf"^forward: {name}"):
        _gru.forward(*p.values(), False, False, True)


@pytest.mark.parametrize("name", ["dh_n", "dout"])
def test_the_compiled_backward_called_directly_refuses_a_short_gradient(name):
    import grucy._gru as _gru
    p = _direct_forward_args()
    out, _, gates = _gru.forward(*p.values(), False, False, True)
    dh_n, dout = _small(2, 5), _small(3, 2, 5)
    if name == "dh_n":
        dh_n = _small(1, 5)
    else:
        dout = _small(1, 2, 5)
    with pytest.raises(ValueError, match=rf"^backward: {name} has shape"):
        _gru.backward(p["x"], p["w_ih"], p["w_hh"], p["b_hh"], p["lengths"], False, False,
                      gates, out, p["h0"], dh_n, dout, True)


def test_the_compiled_gemm_called_directly_refuses_mismatched_operands():
    import grucy._ops as _ops
    with pytest.raises(ValueError, match=r"^gemm_into: a \(3, 4\) and b \(2, 5\) do not give c"):
        _ops.gemm_into(_small(3, 4), _small(2, 5), _small(3, 5), False, False, 1.0, 0.0)


def test_an_empty_batch_with_more_steps_than_int32_is_still_empty():
    # B = 0 is allowed at every entry point; T >= 2**31 made the default lengths overflow
    # int32 (a bare OverflowError) while lengths=[] worked
    import grucy
    x = np.empty((2**31, 0, 2), np.float32)
    w_ih, w_hh = np.zeros((3, 2), np.float32), np.zeros((3, 1), np.float32)
    b = np.zeros(3, np.float32)
    for lengths in (None, [], np.zeros(0, np.int64)):
        out, h_n, _ = grucy.gru_forward(x, None, w_ih, w_hh, b, b, lengths=lengths, training=False)
        assert out.shape == (2**31, 0, 1) and h_n.shape == (0, 1)


def test_gru_cell_refuses_too_many_rows_naming_x_t_before_allocating_h():
    # with h=None it built the (2**31, H) zero state first (an 80 GiB MemoryError); with h
    # given, the error named x and a (1, B, I) shape the caller never passed
    import grucy
    x_t = np.broadcast_to(np.zeros(2, np.float32), (2**31, 2))
    w_ih, w_hh = np.zeros((15, 2), np.float32), np.zeros((15, 5), np.float32)
    b = np.zeros(15, np.float32)
    for h in (None, np.broadcast_to(np.zeros(5, np.float32), (2**31, 5))):
        with pytest.raises(ValueError, match=r"^x_t has shape \(2147483648, 2\): B = 2147483648 rows"):
            grucy.gru_cell(x_t, h, w_ih, w_hh, b, b)


@pytest.mark.parametrize("name", ["dout", "dh_n"])
def test_backward_names_the_forward_pass_dtype_not_x(name):
    # "dout has dtype float64 but x has float32": backward has no argument x
    import grucy
    p = _problem(np.float32)
    out, _, cache = grucy.gru_forward(p["x"], None, p["w_ih"], p["w_hh"], p["b_ih"], p["b_hh"])
    grads = {"dout": None, "dh_n": None, name: np.zeros(out.shape if name == "dout" else out.shape[1:])}
    with pytest.raises(TypeError, match=f"^{name} has dtype float64 but the forward pass has float32"):
        grucy.gru_backward(grads["dout"], grads["dh_n"], cache)


@pytest.mark.parametrize("wrong", ["h", "w_ih", "w_hh", "b_ih", "b_hh"])
def test_gru_cell_dtype_errors_name_x_t(gk, wrong):
    """Regression: they said "but x has float32", gru_forward's name for the input, which
    gru_cell does not take (gru_backward's say "the forward pass" for the same reason)."""
    p = _problem(np.float32)
    args = {"x_t": p["x"][0], "h": p["h0"], "w_ih": p["w_ih"], "w_hh": p["w_hh"],
            "b_ih": p["b_ih"], "b_hh": p["b_hh"]}
    args[wrong] = args[wrong].astype(np.float64)
    with pytest.raises(TypeError, match=rf"^{wrong} has dtype float64 but x_t has float32; "
                                        r"all arrays must share one dtype$"):
        gk.gru_cell(*args.values())


def test_gru_cell_of_a_list_beside_float32_weights_says_it_was_a_list(gk, ref):
    """A list converts as numpy reads it, float64, and the kernels take one dtype for all
    arrays; beside float32 weights the error said "x has float64", of an x never passed."""
    p = _problem(np.float32)
    w = [p[k] for k in ("w_ih", "w_hh", "b_ih", "b_hh")]
    with pytest.raises(TypeError, match=r"^w_hh has dtype float32 but x_t \(from a list\) has "
                                        r"float64; all arrays must share one dtype$"):
        gk.gru_cell(p["x"][0].tolist(), None, *w)
    p = _problem(np.float64)                     # with float64 weights a list is taken
    w = [p[k] for k in ("w_ih", "w_hh", "b_ih", "b_hh")]
    np.testing.assert_allclose(gk.gru_cell(p["x"][0].tolist(), p["h0"].tolist(), *w),
                               ref.gru_cell(p["x"][0], p["h0"], *w), rtol=0, atol=1e-13)
