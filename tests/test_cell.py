"""grucy.kernels.Cell, the streaming entry point, against the reference's one step."""
import numpy as np
import pytest

from grucy import reference
from grucy import GRU
from grucy.kernels import Cell

TOL = {np.dtype(np.float64): 1e-12, np.dtype(np.float32): 2e-5}


def _problem(B, I, H, dtype, seed=0):
    rng = np.random.default_rng(seed)
    w = [(0.4 * rng.standard_normal(s)).astype(dtype)
         for s in ((3 * H, I), (3 * H, H), (3 * H,), (3 * H,))]
    x = rng.standard_normal((B, I)).astype(dtype)
    h = rng.standard_normal((B, H)).astype(dtype)
    return w, x, h


@pytest.mark.parametrize("shape", [(1, 8, 64), (1, 1, 1), (3, 5, 7), (16, 1, 32), (2, 300, 300)])
@pytest.mark.parametrize("reset_after", [False, True], ids=["seed", "reset_after"])
@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["f64", "f32"])
def test_step_equals_one_reference_step(shape, reset_after, dtype):
    w, x, h = _problem(*shape, dtype)
    want = reference.gru_cell(x.astype(np.float64), h.astype(np.float64),
                              *[a.astype(np.float64) for a in w], reset_after=reset_after)
    cell = Cell(*w, reset_after=reset_after)
    out = np.full_like(h, np.nan)
    h_before = h.copy()
    assert cell.step(x, h, out) is None
    np.testing.assert_array_equal(h, h_before)                 # h is only read
    np.testing.assert_allclose(out, want, rtol=0, atol=TOL[np.dtype(dtype)])
    cell.step(x, h, h)                                          # in place
    np.testing.assert_array_equal(h, out)


def test_a_sequence_of_steps_equals_gru_forward():
    import grucy
    w, _, h0 = _problem(4, 3, 6, np.float64, seed=1)
    x = np.random.default_rng(2).standard_normal((7, 4, 3))
    out, h_n, _ = grucy.gru_forward(x, h0, *w, reset_after=True, training=False)
    cell, h = Cell(*w, reset_after=True), h0.copy()
    for t in range(7):
        cell.step(x[t], h, h)
        np.testing.assert_allclose(h, out[t], rtol=0, atol=1e-13)


def test_in_place_weight_updates_are_seen():
    w, x, h = _problem(2, 3, 4, np.float64)
    cell, out = Cell(*w), np.empty_like(h)
    for a in w:
        a *= 0.5                                   # an optimizer step, in place
    cell.step(x, h, out)
    np.testing.assert_allclose(out, reference.gru_cell(x, h, *w), rtol=0, atol=1e-13)


def test_non_contiguous_inputs_work():
    w, x, h = _problem(3, 4, 5, np.float64)
    xs = np.asfortranarray(x)
    out = np.empty_like(h)
    Cell(*w).step(xs, h[:, :], out)
    np.testing.assert_allclose(out, reference.gru_cell(x, h, *w), rtol=0, atol=1e-13)


def test_bad_calls_raise_naming_the_argument():
    w, x, h = _problem(2, 3, 4, np.float64)
    cell, out = Cell(*w), np.empty_like(h)
    with pytest.raises(TypeError, match="x_t"):
        cell.step(x.astype(np.float32), h, out)
    with pytest.raises(ValueError, match="h "):
        cell.step(x, h[:1], out)
    with pytest.raises(ValueError, match="out"):
        cell.step(x, h, np.empty((2, 4))[:, ::-1])
    with pytest.raises(ValueError, match="out"):
        ro = np.empty_like(h)
        ro.flags.writeable = False
        cell.step(x, h, ro)
    with pytest.raises(ValueError, match="x_t"):
        cell.step(x[None], h, out)
    with pytest.raises(TypeError, match="x_t"):
        cell.step([[1.0, 2.0, 3.0]] * 2, h, out)
    with pytest.raises(ValueError, match="w_ih"):
        Cell(w[0][:, :2].T, *w[1:])
    with pytest.raises(ValueError, match=r"w_ih must have shape \(3H, I\)"):   # I = 0
        Cell(np.zeros((w[0].shape[0], 0)), *w[1:])
    with pytest.raises(TypeError, match="reset_after"):
        Cell(*w, reset_after=1)
    with pytest.raises(TypeError, match="^w_ih must be a numpy array .* got list$"):
        Cell([[1.0, 2.0], [1.0]], *w[1:])
    with pytest.raises(TypeError, match="^b_hh must be a numpy array .* got tuple$"):
        Cell(*w[:3], tuple(w[3]))


@pytest.mark.parametrize("name", ["x_t", "h", "out"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_byte_swapped_arrays_are_refused(name, dtype):
    """Regression: step() compared numpy type numbers, which leave out byte order, so a
    big-endian x_t or h was read (and out written) as native floats: wrong states, no error.
    gru_cell and gru_forward refuse such arrays; so does the Cell now."""
    w, x, h = _problem(2, 3, 4, dtype)
    args = {"x_t": x, "h": h, "out": np.empty_like(h)}
    args[name] = args[name].astype(np.dtype(dtype).newbyteorder(">"))
    with pytest.raises(TypeError, match=rf"^{name} must have dtype {np.dtype(dtype).name}"):
        Cell(*w).step(*args.values())
    if name == "x_t":                               # a stream's x_t reaches the Cell as is
        g = GRU(3, 4, dtype=dtype, seed=0)
        with pytest.raises(TypeError, match="^x_t must have dtype"):
            g.stream(2).step(args["x_t"])


@pytest.mark.parametrize("name", ["x_t", "h", "out"])
def test_a_masked_array_is_refused_and_another_subclass_steps(name):
    """Regression: step converts nothing, and a numpy masked array is an ndarray: its data
    was read (or out written) without its mask, as every layer above now refuses. Another
    subclass still steps like the reference."""
    w, x, h = _problem(2, 3, 4, np.float64)
    args = {"x_t": x, "h": h, "out": np.empty_like(h)}
    masked = dict(args, **{name: np.ma.masked_array(args[name], mask=args[name] > 0)})
    with pytest.raises(TypeError, match=rf"^{name} is a numpy masked array, whose mask"):
        Cell(*w).step(*masked.values())
    class Sub(np.ndarray):
        pass
    plain = dict(args, **{name: args[name].view(Sub)})
    Cell(*w).step(*plain.values())
    np.testing.assert_allclose(plain["out"], reference.gru_cell(x, h, *w), rtol=0, atol=1e-12)


def _unaligned(a):
    """a's values one byte into a buffer (np.frombuffer or a memmap at an odd offset)."""
    buf = np.empty(a.nbytes + 1, np.uint8)
    u = np.ndarray(a.shape, a.dtype, buffer=buf, offset=1)
    u[...] = a
    assert not u.flags.aligned and u.flags.c_contiguous
    return u


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_unaligned_arrays_are_copied_or_refused(dtype):
    """Regression: C-contiguous arrays at an odd byte offset went to the C loops as they were,
    which load elements as aligned (undefined behaviour; an UBSan build stopped there). x_t and
    h are copied now, and out (written in place) and the weights (kept) are refused."""
    w, x, h = _problem(3, 5, 4, dtype)
    want = reference.gru_cell(x, h, *w)
    out = np.empty_like(h)
    Cell(*w).step(_unaligned(x), _unaligned(h), out)
    np.testing.assert_allclose(out, want, rtol=0, atol=TOL[np.dtype(dtype)])
    with pytest.raises(ValueError, match="out must be C-contiguous, aligned and writeable"):
        Cell(*w).step(x, h, _unaligned(out))
    with pytest.raises(ValueError, match="w_hh must be a C-contiguous, aligned numpy array"):
        Cell(w[0], _unaligned(w[1]), *w[2:])


def test_mixed_weight_dtypes_name_the_weights_not_x():
    """Cell has no x: the dtype the others must share is w_ih's."""
    w, _, _ = _problem(2, 3, 4, np.float64)
    with pytest.raises(TypeError, match=r"w_hh has dtype float64 but w_ih has float32"):
        Cell(w[0].astype(np.float32), *w[1:])


@pytest.mark.parametrize("how", ["fortran", "strided", "list"])
def test_weights_that_would_be_copied_are_refused(how):
    """A copy would not see in-place updates (an optimizer step), as the docstring promises:
    the Cell ran on stale weights, silently. A list is refused as not an array at all (it
    was once converted first, and then named as float64 against the other weights' dtype)."""
    w, _, _ = _problem(2, 3, 4, np.float32)
    odd = {"fortran": np.asfortranarray(w[1]), "strided": np.repeat(w[1], 2, axis=1)[:, ::2],
           "list": w[1].tolist()}[how]
    error, match = ((TypeError, "w_hh must be a numpy array") if how == "list" else
                    (ValueError, "w_hh must be a C-contiguous, aligned numpy array"))
    with pytest.raises(error, match=match):
        Cell(w[0], odd, *w[2:])


def test_the_cell_has_a_signature():
    import inspect
    assert list(inspect.signature(Cell).parameters) == ["w_ih", "w_hh", "b_ih", "b_hh",
                                                        "reset_after"]


def test_memory_mapped_weights_are_bound_and_updates_seen(tmp_path):
    """np.load(..., mmap_mode=...) gives np.memmap, an ndarray subclass: C-contiguous and
    aligned, yet refused as if it were a copy ("must be a C-contiguous ... numpy array")."""
    w, x, h = _problem(2, 3, 4, np.float64)
    maps = []
    for k, a in enumerate(w):
        np.save(tmp_path / f"{k}.npy", a)
        maps.append(np.load(tmp_path / f"{k}.npy", mmap_mode="r+"))
    cell, out = Cell(*maps), np.empty_like(h)
    cell.step(x, h, out)
    np.testing.assert_allclose(out, reference.gru_cell(x, h, *w), rtol=0, atol=1e-13)
    maps[1] *= 0.5                                 # in place, through the memmap
    cell.step(x, h, out)
    np.testing.assert_allclose(out, reference.gru_cell(x, h, w[0], 0.5 * w[1], *w[2:]),
                               rtol=0, atol=1e-13)


@pytest.mark.parametrize("reset_after", [False, True], ids=["seed", "reset_after"])
def test_a_pickled_cell_steps_like_the_reference(reset_after):
    """Pickling goes through Cell(...), which checks the weights and sizes its own scratch."""
    import copy
    import pickle
    w, x, h = _problem(3, 4, 5, np.float64)
    want = reference.gru_cell(x, h, *w, reset_after=reset_after)
    cell = Cell(*w, reset_after=reset_after)
    cell.step(np.zeros((40, 4)), np.zeros((40, 5)), np.empty((40, 5)))  # grow its scratch
    for other in (pickle.loads(pickle.dumps(cell)), copy.deepcopy(cell)):
        assert other.reset_after == reset_after
        out = np.empty_like(h)
        other.step(x, h, out)
        np.testing.assert_allclose(out, want, rtol=0, atol=1e-13)


def test_pickles_cannot_set_sizes():
    """The unpickler is Cell itself: weights that disagree with each other are refused
    there, where a restored state would have let step index past them."""
    from grucy import _gru
    w, _, _ = _problem(2, 3, 4, np.float64)
    fn, args = Cell(*w).__reduce__()
    assert fn is _gru._cell
    with pytest.raises(ValueError, match="w_ih"):
        fn(w[0][:6], *args[1:])


def test_an_uninitialised_cell_raises():
    cell = Cell.__new__(Cell)
    with pytest.raises(TypeError, match="not initialised"):
        cell.step(np.zeros((1, 3)), np.zeros((1, 4)), np.zeros((1, 4)))


@pytest.mark.parametrize("bad", [dict(reset_after="no"), dict(b_hh="wrong")])
def test_a_refused_init_on_a_live_cell_leaves_it_as_it_was(bad):
    # the new weights were bound before reset_after was checked, under the old sizes: the
    # next step read a (3, 1) w_hh as (3H, H) and crashed the interpreter
    w, x, h = _problem(2, 3, 40, np.float64)
    cell = Cell(*w)
    small = dict(w_ih=np.zeros((3, 2)), w_hh=np.zeros((3, 1)), b_ih=np.zeros(3), b_hh=np.zeros(3))
    small.update(bad)
    with pytest.raises((TypeError, ValueError)):
        cell.__init__(small.pop("w_ih"), small.pop("w_hh"), small.pop("b_ih"), small.pop("b_hh"),
                      **small)
    assert cell.w_hh is w[1] and cell.w_ih is w[0] and cell.b_hh is w[3]
    out = np.empty_like(h)
    cell.step(x, h, out)
    want = reference.gru_cell(x, h, *w, reset_after=False)
    np.testing.assert_allclose(out, want, rtol=0, atol=TOL[np.dtype(np.float64)])


def test_init_again_with_new_weights_rebinds_everything():
    w, x, h = _problem(2, 3, 5, np.float64)
    cell = Cell(*w)
    w32, x32, h32 = _problem(4, 2, 7, np.float32, seed=3)
    cell.__init__(*w32, reset_after=True)
    assert (cell.dtype, cell.input_size, cell.hidden_size, cell.reset_after) == (np.float32, 2, 7, True)
    out = np.empty_like(h32)
    cell.step(x32, h32, out)
    want = reference.gru_cell(x32.astype(np.float64), h32.astype(np.float64),
                              *[a.astype(np.float64) for a in w32], reset_after=True)
    np.testing.assert_allclose(out, want, rtol=0, atol=TOL[np.dtype(np.float32)])


def test_more_rows_than_the_blas_int_are_refused_before_a_copy():
    """A zero-stride view stands in for 2³¹ rows: refusing it after the copy would first
    allocate 16 GiB."""
    w, _, _ = _problem(1, 3, 4, np.float64)
    huge = np.broadcast_to(np.zeros((1, 3)), (2**31, 3))
    with pytest.raises(ValueError, match="x_t has 2147483648 rows"):
        Cell(*w).step(huge, huge[:, :1], huge[:, :1])


@pytest.mark.parametrize("bad", ["h", "out"])
def test_all_three_shapes_are_checked_before_x_t_or_h_is_copied(bad):
    """Regression: step copied a strided x_t (and h) before checking the next argument's
    shape: for these zero-stride views of 2**31 - 1 rows that is terabytes, numpy's
    MemoryError instead of the error naming the argument that is wrong."""
    I, H, B = 1000, 4, 2**31 - 1
    rng = np.random.default_rng(0)
    w = [rng.standard_normal(s) for s in ((3 * H, I), (3 * H, H), (3 * H,), (3 * H,))]
    x_t = np.broadcast_to(np.zeros((1, I)), (B, I))
    h = np.broadcast_to(np.zeros((1, H)), (B, H)) if bad == "out" else np.zeros((1, H))
    out = np.zeros((1, H))
    with pytest.raises(ValueError, match=rf"^{bad} must have shape \({B}, {H}\), got \(1, {H}\)"):
        Cell(*w).step(x_t, h, out)


def test_one_cell_stepped_from_two_threads_is_right_or_refused_never_silently_wrong():
    # a large step releases the GIL: a second thread's step on the same Cell wrote the same
    # scratch, and results were off by up to 0.8 without a word
    import threading
    w, x, h = _problem(64, 8, 128, np.float64, seed=4)
    want = reference.gru_cell(x, h, *w, reset_after=False)
    cell = Cell(*w)
    wrong, refused = [], []

    def worker():
        out = np.empty_like(h)
        for _ in range(200):
            try:
                cell.step(x, h, out)
            except RuntimeError as e:
                assert "two threads at once" in str(e)
                refused.append(1)
                continue
            if np.abs(out - want).max() > 1e-10:
                wrong.append(float(np.abs(out - want).max()))
    threads = [threading.Thread(target=worker) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not wrong, f"{len(wrong)} silently wrong steps (refused {len(refused)})"


def test_a_cell_reinitialised_from_another_thread_mid_step_steps_on_its_old_weights():
    """Regression: step read the sizes (I, H) first, then copied a strided x_t and h (numpy
    lets other threads run during a big copy), then handed the compiled step the Cell's
    weights as they were by then: __init__ from another thread in that window left small
    weights under the old sizes, and the step read past them (wrong numbers, or a crash
    with a guard page after them). Run in a child so that a crash fails the test rather
    than the suite; every step must give the result for the weights it started with, or
    refuse (ValueError: h no longer fits the new, smaller H)."""
    import subprocess
    import sys
    import textwrap
    child = textwrap.dedent("""
        import threading, time
        import numpy as np
        from grucy import reference
        from grucy.kernels import Cell
        rng = np.random.default_rng(0)
        B, I, H = 2048, 128, 128
        w = [rng.uniform(-.1, .1, s) for s in ((3*H, I), (3*H, H), (3*H,), (3*H,))]
        small = [np.zeros((3, I)), np.zeros((3, 1)), np.zeros(3), np.zeros(3)]
        x = rng.standard_normal((B, 2 * I))[:, ::2]          # strided: step copies them
        h = rng.standard_normal((B, 2 * H))[:, ::2]
        want = reference.gru_cell(np.ascontiguousarray(x), np.ascontiguousarray(h), *w,
                                  reset_after=False)
        cell = Cell(*w)
        stop = time.time() + 3
        seen = {"right": 0, "refused": 0, "wrong": 0}
        def stepper():
            out = np.empty((B, H))
            while time.time() < stop:
                try:
                    cell.step(x, h, out)
                except ValueError:
                    seen["refused"] += 1
                    continue
                seen["right" if np.abs(out - want).max() < 1e-10 else "wrong"] += 1
        def reinit():
            while time.time() < stop:
                cell.__init__(*small)
                cell.__init__(*w)
        threads = [threading.Thread(target=stepper), threading.Thread(target=reinit)]
        [t.start() for t in threads]
        [t.join() for t in threads]
        print(seen)
        assert seen["wrong"] == 0 and seen["right"] > 0, seen
    """)
    r = subprocess.run([sys.executable, "-c", child], capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == 0, (r.returncode, r.stdout, r.stderr[-2000:])
