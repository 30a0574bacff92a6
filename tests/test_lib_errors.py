"""Bad input to the GRU layer's public functions fails early, naming the argument.

(Losses, optimizers, init, io, interop, heads and models have their own error tests in
their test files.)
"""
from pathlib import Path

import numpy as np
import pytest

import grucy
from grucy.layers import GRU

CTOR = [
    (dict(input_size=0), ValueError, "input_size"),
    (dict(input_size=2.5), TypeError, "input_size"),
    (dict(hidden_size=-1), ValueError, "hidden_size"),
    (dict(num_layers=0), ValueError, "num_layers"),
    (dict(bidirectional="yes"), TypeError, "bidirectional"),
    (dict(reset_after=1), TypeError, "reset_after"),
    (dict(batch_first=None), TypeError, "batch_first"),
    (dict(dropout=1.0), ValueError, "dropout"),
    (dict(dropout=-0.1), ValueError, "dropout"),
    (dict(dropout=10**400), ValueError, "dropout"),     # float() would raise OverflowError
    (dict(dropout=float("nan")), ValueError, "dropout"),
    (dict(dropout="0.1"), TypeError, "dropout"),
    (dict(dtype=np.int64), TypeError, "dtype"),
    (dict(dtype="float16"), TypeError, "dtype"),
    (dict(seed=-3), ValueError, "seed"),
    (dict(seed="abc"), TypeError, "seed"),
    # sizes past the 32-bit BLAS's C ints (3H rows): numpy's MemoryError or "array is too
    # big" from the initialiser, naming nothing, before these were checked
    (dict(input_size=2**31), ValueError, "input_size must be <= 2147483647"),
    (dict(hidden_size=2**31 // 3 + 1), ValueError, "hidden_size must be <= 715827882"),
    (dict(hidden_size=2**40), ValueError, "hidden_size must be <= 715827882"),
]


@pytest.mark.parametrize("kw,exc,name", CTOR)
def test_constructor(kw, exc, name):
    args = dict(input_size=2, hidden_size=3)
    args.update(kw)
    with pytest.raises(exc, match=name):
        GRU(**args)


def test_more_layers_than_memory_holds_are_refused_before_any_is_built(monkeypatch):
    """Regression: GRU(4, 6, num_layers=10**9) built layer after layer, each too small to
    fail, until memory ran out (load refuses such a stored config; the constructor did
    not). The parameters and gradients of the stack must fit the machine's memory."""
    import grucy.layers as layers
    # 1 MiB: layer 0 of GRU(4, 6) is 3H(I + H + 2) = 216 values, each later layer 252,
    # 8 bytes each as float32 parameters and gradients: 1 + (2**20 - 1728) // 2016 layers
    monkeypatch.setattr(layers, "physical_memory", lambda: 1 << 20, raising=False)
    most = 1 + ((1 << 20) - 216 * 8) // (252 * 8)
    assert len(GRU(4, 6, num_layers=most).parameters()) == 4 * most
    with pytest.raises(ValueError, match=rf"num_layers must be <= {most} to fit this machine's "
                                         r"memory \(1048576 bytes\), got 10000: "):
        GRU(4, 6, num_layers=10000)         # 20 MB: built, quickly, before the bound
    monkeypatch.undo()
    # this machine's own memory: 2 TB of parameters and gradients
    with pytest.raises(ValueError, match=r"num_layers must be <= \d+ to fit this machine's memory"):
        GRU(4, 6, num_layers=10**9)


def test_the_memory_bound_of_a_gru_without_biases_counts_only_its_weights(monkeypatch):
    """bias=False allocates no 3H biases (nor their gradients): layer 0 of GRU(4, 6) is
    3H(I + H) = 180 values, each later layer 3H(H + H) = 216, so more layers fit than with
    biases (counting them refused stacks that fit)."""
    import grucy.layers as layers
    monkeypatch.setattr(layers, "physical_memory", lambda: 1 << 20, raising=False)
    most = 1 + ((1 << 20) - 180 * 8) // (216 * 8)
    assert most > 1 + ((1 << 20) - 216 * 8) // (252 * 8)        # the biased bound is lower
    g = GRU(4, 6, num_layers=most, bias=False)
    assert sum(p.size for p in g.parameters().values()) == 180 + (most - 1) * 216
    with pytest.raises(ValueError, match=rf"num_layers must be <= {most} to fit this machine's "
                                         rf"memory \(1048576 bytes\), got {most + 1}: "):
        GRU(4, 6, num_layers=most + 1, bias=False)


def test_the_memory_bound_of_a_bidirectional_gru_counts_both_directions_of_layer_0(monkeypatch):
    """A mutant counting one direction of layer 0 survived: it let a bidirectional stack
    one layer too deep through when memory was short of it by less than that direction.
    Memory here is one byte short of n + 1 layers, counted from the arrays of a built stack
    (parameters and their gradients): n layers fit, n + 1 are refused."""
    import grucy.layers as layers
    n = 5
    need = 2 * sum(p.nbytes for p in GRU(4, 6, num_layers=n + 1, bidirectional=True)
                   .parameters().values())
    monkeypatch.setattr(layers, "physical_memory", lambda: need - 1, raising=False)
    assert len(GRU(4, 6, num_layers=n, bidirectional=True).parameters()) == 8 * n
    with pytest.raises(ValueError, match=rf"num_layers must be <= {n} to fit this machine's "
                                         rf"memory \({need - 1} bytes\), got {n + 1}: its "
                                         rf".* would take {need} bytes"):
        GRU(4, 6, num_layers=n + 1, bidirectional=True)


# The one wording of a list numpy cannot make an array of, whichever layer converts it
RAGGED = "^{} must be an array or a rectangular nested list of numbers: "


def _g(**kw):
    return GRU(2, 3, num_layers=2, bidirectional=True, **kw)


FORWARD = [
    # 2-D is one unbatched sequence (T, I), as in torch: 1-D and 4-D are refused
    (lambda: _g().forward(np.zeros((4,), np.float32)), ValueError, "x"),
    (lambda: _g().forward(np.zeros((4, 2, 1, 2), np.float32)), ValueError, "x"),
    (lambda: _g().forward(np.zeros((4, 3), np.float32)), ValueError, "x"),
    (lambda: _g().forward(np.zeros((4, 2), np.float32), h0=np.zeros((4, 1, 3), np.float32)),
     ValueError, "h0"),
    (lambda: _g().forward(np.zeros((4, 2, 5), np.float32)), ValueError, "x"),
    (lambda: _g().forward(np.zeros((4, 2, 2), np.float64)), TypeError, "x"),
    (lambda: _g().forward(np.zeros((4, 2, 2), np.int32)), TypeError, "x"),
    (lambda: _g().forward("x"), TypeError, "x"),
    (lambda: _g().forward([[[1.0, 2.0]], [[1.0]]]), ValueError, RAGGED.format("x")),
    (lambda: _g().forward([[["a", "b"]]]), ValueError, RAGGED.format("x")),
    (lambda: _g().forward(np.zeros((4, 2, 0), np.float32)), ValueError, "x"),
    (lambda: _g().forward(np.zeros((4, 2, 2), np.float32), h0=np.zeros((2, 2, 3), np.float32)),
     ValueError, "h0"),
    (lambda: _g().forward(np.zeros((4, 2, 2), np.float32), h0=np.zeros((4, 2, 3), np.float64)),
     TypeError, "h0"),
    (lambda: _g().forward(np.zeros((4, 2, 2), np.float32), lengths=[1, 5]), ValueError, "lengths"),
    (lambda: _g().forward(np.zeros((4, 2, 2), np.float32), lengths=[1, -1]), ValueError, "lengths"),
    (lambda: _g().forward(np.zeros((4, 2, 2), np.float32), lengths=[1, 2, 3]), ValueError, "lengths"),
    (lambda: _g().forward(np.zeros((4, 2, 2), np.float32), lengths=[1.0, 2.0]), TypeError, "lengths"),
    (lambda: _g(batch_first=True).forward(np.zeros((2, 4, 2), np.float32), lengths=[4, 5]),
     ValueError, "lengths"),
]


@pytest.mark.parametrize("call,exc,name", FORWARD)
def test_forward(call, exc, name):
    with pytest.raises(exc, match=name):
        call()


def test_backward():
    g = _g()
    with pytest.raises(RuntimeError, match="forward"):
        g.backward(np.zeros((4, 2, 6), np.float32))
    x = np.zeros((4, 2, 2), np.float32)
    for dout, dh_n, exc, name in [
        (np.zeros((4, 2, 3), np.float32), None, ValueError, "dout"),
        (np.zeros((4, 2, 6), np.float64), None, TypeError, "dout"),
        (None, np.zeros((2, 2, 3), np.float32), ValueError, "dh_n"),
        (None, None, ValueError, "dout and dh_n"),
    ]:
        g.forward(x)
        with pytest.raises(exc, match=name):
            g.backward(dout, dh_n)


def test_parameter_setting():
    g = _g()
    with pytest.raises(TypeError, match="params"):
        g.set_parameters([np.zeros(3)])
    with pytest.raises(ValueError, match="unknown"):
        g.set_parameters({"weight_ih_l9": np.zeros(3)})
    with pytest.raises(ValueError, match="unknown"):     # was: '<' not supported, str and int
        g.set_parameters({1: np.zeros(3), "w": np.zeros(3)}, strict=False)
    with pytest.raises(ValueError, match="missing"):
        g.set_parameters({"weight_ih_l0": np.zeros((9, 2))})
    with pytest.raises(TypeError, match="bias_hh_l0"):
        g.bias_hh_l0 = np.array(["a"] * 9)
    with pytest.raises(TypeError, match="mode"):
        g.train("no")
    with pytest.raises(AttributeError):
        g.weight_ih_l7


def test_scalar_input_is_not_silently_promoted_to_one_dimension():
    """Regression: as_float_array returned np.ascontiguousarray(a), which turns a 0-d array into
    shape (1,), so Linear(1, 1).forward(np.float32(1)) ran instead of rejecting x."""
    from grucy.layers import Linear
    with pytest.raises(ValueError, match="x"):
        Linear(1, 1).forward(np.float32(1.0))


def test_set_parameters_refuses_values_the_cast_would_make_infinite():
    """Regression: 1e300 into a float32 layer was stored as inf with only a RuntimeWarning."""
    g = GRU(4, 5, seed=0)
    before = g.parameters()["weight_ih_l0"].copy()
    with pytest.raises(ValueError, match="weight_ih_l0.*float32's range"):
        g.set_parameters({"weight_ih_l0": np.full((15, 4), 1e300)}, strict=False)
    np.testing.assert_array_equal(g.parameters()["weight_ih_l0"], before)   # nothing copied
    g.set_parameters({"weight_ih_l0": np.full((15, 4), 0.5)}, strict=False)     # float64: fine
    g.set_parameters({"weight_ih_l0": np.full((15, 4), np.nan)}, strict=False)  # stays NaN


def test_non_float_arrays_and_non_arrays_are_refused_by_name():
    """as_float_array: an int array is a TypeError naming it (not a cast, nor an error from
    deeper down); a bool or None is no number (np.asarray(None, float) is nan)."""
    from grucy import losses
    for pred, match in [(np.array([1, 2]), "pred must have dtype float32 or float64, got int64"),
                        (True, "pred must be a numpy array, got bool"),
                        (None, "pred must be a numpy array, got NoneType")]:
        with pytest.raises(TypeError, match=match):
            losses.mse(pred, np.zeros(2))
    g = GRU(2, 3, seed=0)
    with pytest.raises(TypeError, match="x must have dtype float32 or float64, got int64"):
        g.forward(np.ones((4, 1, 2), np.int64))


def _ragged_calls():
    import grucy
    rng = np.random.default_rng(7)
    T, B, I, H = 2, 2, 2, 3
    x = rng.standard_normal((T, B, I))
    w = [rng.standard_normal(s) for s in ((3 * H, I), (3 * H, H), (3 * H,), (3 * H,))]
    ragged = [[1.0, 2.0], [1.0]]
    return [
        ("x", lambda: _g().forward([ragged, ragged])),                        # as_float_array
        ("x", lambda: grucy.gru_forward([ragged, ragged], None, *w)),         # kernels._floating
        ("h0", lambda: _g().forward(np.zeros((T, B, 2), np.float32), h0=[ragged])),
        ("h0", lambda: grucy.gru_forward(x, [[1.0, 2.0, 3.0], [1.0]], *w)),
        ("x_t", lambda: grucy.gru_cell(ragged, None, *w)),
        ("lengths", lambda: grucy.gru_forward(x, None, *w, lengths=[[1], [1, 2]])),
        ("w_ih", lambda: grucy.gru_cell(x[0], None, ragged, *w[1:])),
        ("matmul: a", lambda: grucy.matmul(ragged, np.ones((2, 2)))),
        # these three passed it to np.asarray, whose error named no argument
        (r"params\['weight_ih_l0'\]",
         lambda: _g().set_parameters({"weight_ih_l0": ragged}, strict=False)),
        ("labels", lambda: grucy.losses.cross_entropy(np.zeros((2, 3)), ragged)),
        (r"state\['state'\]\['w'\]\['momentum_buffer'\]", lambda: _sgd_state(ragged)),
    ]


def _sgd_state(buffer):
    import grucy
    opt = grucy.optim.SGD({"w": np.zeros((2, 2))}, momentum=0.9)
    state = opt.state_dict()
    state["state"]["w"] = {"momentum_buffer": buffer}
    opt.load_state_dict(state)


@pytest.mark.parametrize("index", range(len(_ragged_calls())), ids=lambda i: f"call{i}")
def test_a_ragged_list_reads_the_same_through_every_layer(index):
    """The layers' converter said "x must be a rectangular nested list of numbers", the kernels'
    "x must be an array or a rectangular nested list": one mistake, two wordings, each pinned by
    its own tests. One function now words it, naming the argument and what it must be."""
    name, call = _ragged_calls()[index]
    with pytest.raises(ValueError, match=RAGGED.format(name)):
        call()


@pytest.mark.parametrize("batch_first", [False, True])
def test_more_rows_than_the_32_bit_blas_takes_are_refused_before_the_layer_copies_x(batch_first):
    """Regression: the kernels refuse T·B > 2**31 - 1 before copying, but GRU.forward made x
    C-contiguous first: a zero-strided view of 2**40 steps was numpy's MemoryError."""
    shape = (2, 2**40, 2) if batch_first else (2**40, 2, 2)
    x = np.broadcast_to(np.zeros((1, 1, 1), np.float32), shape)
    with pytest.raises(ValueError, match=r"^x has shape .*: T·B = 2199023255552 rows, but "
                                         r"grucy's BLAS takes up to 2147483647"):
        GRU(2, 3, batch_first=batch_first).forward(x)


def test_an_unbatched_x_of_more_rows_than_the_blas_takes_is_refused_before_it_is_copied():
    """An unbatched x (T, I) is T rows: a zero-strided view of 2**40 steps is refused by
    name, not copied first (8 TiB: numpy's MemoryError, naming nothing)."""
    x = np.broadcast_to(np.zeros((1, 1), np.float32), (2**40, 2))
    with pytest.raises(ValueError, match=r"^x has shape \(1099511627776, 2\): T = 1099511627776 "
                                         r"rows, but grucy's BLAS takes up to 2147483647"):
        GRU(2, 3).forward(x)


def test_a_huge_view_with_the_wrong_features_is_refused_before_the_layer_copies_it():
    """Regression: GRU.forward made x C-contiguous before comparing its last axis with
    input_size: a zero-strided view of 2**40 features was numpy's MemoryError (24 TiB)."""
    x = np.broadcast_to(np.zeros((1, 1, 1), np.float32), (3, 2, 2**40))
    with pytest.raises(ValueError, match=r"^x must have 2 features in its last axis, got shape "
                                         r"\(3, 2, 1099511627776\)"):
        GRU(2, 3).forward(x)


def test_audit_refusals_name_the_argument():
    """Found by an audit: each failed later or elsewhere, naming the wrong thing."""
    from grucy.init import resolve_scheme
    from grucy.models import SequenceModel
    for kind in ("orthogonal", "glorot_uniform"):
        # a bias is a vector: the draw failed with "shape must have 2 dimensions, got (9,)"
        with pytest.raises(ValueError, match=rf"^init\['bias'\] must be .* got '{kind}'"):
            resolve_scheme({"bias": kind})
        with pytest.raises(ValueError, match=r"^init\['bias'\]"):
            GRU(2, 3, init={"bias": kind})
    # the head's out_features was named, not the output_size the caller passed
    with pytest.raises(ValueError, match=r"^output_size must be <= 2147483647"):
        SequenceModel(2, 3, 2**40)


def test_mixed_type_names_are_reported_not_a_sort_failure():
    # sorted() of {1, None} raised "'<' not supported between instances of ..."
    from grucy import optim
    from grucy.models import SequenceModel
    m = SequenceModel(2, 3, 1, seed=0)
    with pytest.raises(ValueError, match="params has unknown names"):
        m.set_parameters({1: np.zeros(2), None: np.zeros(2)})
    opt = optim.SGD(m.parameters(), lr=0.1)
    with pytest.raises(ValueError, match="grads has names not in params"):
        opt.step({1: np.zeros(2), None: np.zeros(2)})


@pytest.mark.parametrize("bad, words", [
    ([[None, 1.0]], "numpy reads it as object"),
    ([["1", 1.0]], "numpy reads it as <U"),
    ([[1j, 1.0]], "numpy reads it as complex128"),
    ([[1e300, 1.0]], "finite values beyond float32's range"),
], ids=["None", "string", "complex", "overflow"])
def test_a_list_is_read_as_numbers_or_refused_never_filled(bad, words):
    """Found by an audit: a list met the layer's dtype on reading, so None became NaN, "1"
    became 1.0, 1j lost its imaginary part and 1e300 became inf in float32, each without an
    error (a streamed step returned all NaN). Lists are read as numpy reads them, then cast,
    refusing what the cast would change."""
    import re
    gru = GRU(2, 3, dtype=np.float32, seed=0)
    with pytest.raises(ValueError, match=rf"^x_t .*{re.escape(words)}"):
        gru.stream(1).step(bad)
    with pytest.raises(ValueError, match=rf"^x .*{re.escape(words)}"):
        gru.forward([bad])


def test_a_list_of_plain_numbers_still_reads_as_the_layers_dtype():
    gru = GRU(2, 3, dtype=np.float32, seed=0)
    x = [[[0.5, -1]], [[2, 0.25]]]                     # ints and floats, as people type them
    got = gru.forward(x)[0]
    want = gru.forward(np.array(x, np.float32))[0]
    assert got.dtype == np.float32
    np.testing.assert_array_equal(got, want)


def _import_grucy_from(tmp_path, extra_files=None):
    """`import grucy` in a fresh interpreter from a copy of the package's Python files alone
    (a checkout with no extensions built), without site's .pth files: the dev install's
    import hook would otherwise supply the built extensions of the real tree."""
    import shutil
    import subprocess
    import sys
    import sysconfig
    src = Path(grucy.__file__).parent
    pkg = tmp_path / "grucy"
    pkg.mkdir()
    for f in src.glob("*.py"):
        shutil.copy(f, pkg / f.name)
    for name, text in (extra_files or {}).items():
        (pkg / name).write_text(text)
    path = [str(tmp_path), sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]]
    return subprocess.run([sys.executable, "-S", "-c", "import grucy"], cwd=tmp_path,
                          env={"PYTHONPATH": ":".join(path), "PATH": "/usr/bin:/bin"},
                          capture_output=True, text=True, timeout=120)


def test_a_source_tree_without_its_extensions_says_so_on_import(tmp_path):
    # after `pip install .`, running from the checkout imported the checkout's grucy/, and
    # the error read "cannot import name '_gru' from partially initialized module 'grucy'
    # (most likely due to a circular import)"
    r = _import_grucy_from(tmp_path)
    assert r.returncode == 1
    last = r.stderr.strip().splitlines()[-1]
    assert last.startswith("ImportError: grucy's compiled kernels are not built in"), r.stderr
    assert "pip install -e ." in last and "run from another directory" in last
    assert "circular" not in r.stderr


def test_an_openblas_without_the_pools_hook_names_the_version_needed(tmp_path):
    # an older scipy-openblas32 loads, and then the extension's symbol is missing
    r = _import_grucy_from(tmp_path, {"_gru.py": "raise ImportError('_gru.so: undefined symbol: "
                                                 "scipy_openblas_set_threads_callback_function')\n"})
    last = r.stderr.strip().splitlines()[-1]
    assert "undefined symbol" in last and "scipy-openblas32 >= 0.3.30.443" in last, r.stderr


def test_an_extension_that_fails_to_load_otherwise_keeps_its_own_error(tmp_path):
    r = _import_grucy_from(tmp_path, {"_gru.py": "raise ImportError('libgfortran.so.5: cannot open "
                                                 "shared object file')\n"})
    last = r.stderr.strip().splitlines()[-1]
    assert last == "ImportError: libgfortran.so.5: cannot open shared object file", r.stderr


@pytest.mark.parametrize("call", [
    lambda m: grucy.gru_forward(m(np.ones((2, 1, 3))), None, *_kernel_weights(3, 2)),
    lambda m: grucy.gru_cell(m(np.ones((1, 3))), None, *_kernel_weights(3, 2)),
    lambda m: GRU(3, 2, dtype=np.float64, seed=0).forward(m(np.ones((2, 1, 3)))),
    lambda m: grucy.Linear(3, 2, dtype=np.float64, seed=0).forward(m(np.ones((1, 3)))),
    lambda m: grucy.matmul(m(np.ones((1, 3))), np.ones((3, 2))),
    lambda m: GRU(3, 2, dtype=np.float64, seed=0).stream(1).step(m(np.ones((1, 3)))),
])
def test_a_numpy_masked_array_is_refused_by_name(call):
    """Regression: numpy's asarray reads a masked array's data and drops its mask, so the
    values it hides were computed on without a word (a mask meant as missing data)."""
    with pytest.raises(TypeError, match=r"^(matmul: a|x|x_t) is a numpy masked array, whose "
                                        r"mask grucy would not see"):
        call(lambda a: np.ma.masked_array(a, mask=a > 0))


def _kernel_weights(I, H):
    rng = np.random.default_rng(0)
    return [rng.uniform(-0.5, 0.5, s) for s in ((3 * H, I), (3 * H, H), (3 * H,), (3 * H,))]
