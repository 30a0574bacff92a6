"""The compiled kernels under Python threads: correct results when several run at once, and the
GIL really released while a kernel runs. No timing is asserted anywhere.
"""

import pathlib
import subprocess
import sys
import textwrap
import threading
import time

import numpy as np
import pytest

GRADS = ("dx", "dh0", "dw_ih", "dw_hh", "db_ih", "db_hh")


def _job(gk, p, dout, dh_n, kw):
    out, h_n, cache = gk.gru_forward(**p, **kw)
    return (out, h_n) + tuple(gk.gru_backward(dout, dh_n, cache))


def test_threads_running_kernels_at_once_get_the_serial_results(gk, make_problem,
                                                               make_cotangents, assert_close,
                                                               tol):
    """Six threads, different shapes/variants/dtypes, each repeating forward+backward while
    the others run; every result must equal the one computed alone beforehand."""
    specs = [((12, 4, 6, 16), np.float64, dict(reset_after=False)),
             ((12, 4, 6, 16), np.float64, dict(reset_after=True, reverse=True)),
             ((9, 5, 3, 24), np.float32, dict(reset_after=False,
                                               lengths=np.array([9, 0, 4, 1, 9]))),
             ((9, 5, 3, 24), np.float32, dict(reset_after=True, reverse=True,
                                               lengths=np.array([2, 9, 0, 5, 9]))),
             ((15, 3, 8, 40), np.float64, dict(reset_after=True, lengths=np.array([15, 3, 8]))),
             ((15, 3, 8, 40), np.float32, dict(reset_after=False))]
    jobs = []
    for k, ((T, B, I, H), dtype, kw) in enumerate(specs):
        p = make_problem(T, B, I, H, dtype=dtype, seed=300 + k)
        dout, dh_n = make_cotangents(T, B, H, dtype=dtype, seed=400 + k)
        jobs.append((p, dout, dh_n, kw, _job(gk, p, dout, dh_n, kw)))

    barrier = threading.Barrier(len(jobs))
    results = [[] for _ in jobs]
    errors = []

    def worker(k):
        p, dout, dh_n, kw, _ = jobs[k]
        try:
            barrier.wait()
            for _ in range(5):
                results[k].append(_job(gk, p, dout, dh_n, kw))
        except BaseException as e:          # reported below, not lost in the thread
            errors.append((k, e))

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(len(jobs))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    for k, (p, _, _, _, serial) in enumerate(jobs):
        dtype = p["x"].dtype
        assert len(results[k]) == 5
        for rep in results[k]:
            for name, a, b in zip(("out", "h_n") + GRADS, rep, serial):
                # same inputs, same code: only a BLAS thread split could change the rounding
                assert_close(a, b, tol[dtype] / 100, f"job {k} {name}")


def test_a_running_kernel_lets_another_python_thread_run(gk, make_problem, make_cotangents):
    """While a worker thread is inside gru_forward / gru_backward, the main thread counts.

    With the switch interval raised far above the test's length, the interpreter never takes
    the GIL from a thread by force: another thread only runs when the holder releases it. A
    kernel that held the GIL for its whole call would let the counter move by exactly zero
    between the worker's reads just before and just after the call. (The validating Python
    layer may release the GIL briefly in numpy calls too, so this can only under-detect.)
    """
    T, B, I, H = 30, 16, 32, 64
    p = make_problem(T, B, I, H, dtype=np.float32, seed=310)
    dout, dh_n = make_cotangents(T, B, H, dtype=np.float32, seed=311)
    _job(gk, p, dout, dh_n, {})                     # warm up BLAS threads and allocations

    ticks = []
    during = {"forward": [], "backward": []}
    done = threading.Event()
    failure = []

    def worker():
        try:
            for _ in range(20):        # stop as soon as both calls have let main run once
                if during["forward"] and max(during["forward"]) and max(during["backward"]):
                    break
                a = len(ticks)
                out, h_n, cache = gk.gru_forward(**p)
                b = len(ticks)
                gk.gru_backward(dout, dh_n, cache)
                c = len(ticks)
                during["forward"].append(b - a)
                during["backward"].append(c - b)
        except BaseException as e:
            failure.append(e)
        finally:
            done.set()

    old = sys.getswitchinterval(), gk.get_num_threads()
    sys.setswitchinterval(100.0)
    gk.set_num_threads(1)           # the worker and the counting thread: one core each
    try:
        thread = threading.Thread(target=worker)
        thread.start()
        while not done.is_set():
            ticks.append(None)
            time.sleep(1e-4)               # hand the GIL back whenever the worker wants it
        thread.join()
    finally:
        sys.setswitchinterval(old[0])
        gk.set_num_threads(old[1])
    assert not failure, failure
    assert max(during["forward"]) > 0, f"no progress during gru_forward: {during}"
    assert max(during["backward"]) > 0, f"no progress during gru_backward: {during}"


# ---- grucy's pool (grucy/_pool.h): OpenBLAS's jobs and the split gate passes ---------------

def _big(make_problem, make_cotangents, seed, T=6, B=64, I=40, H=160, dtype=np.float32):
    """Big enough that with 2 threads the gate passes split (B·H >= 2·PAR_MIN_UNITS) and the
    per-step GEMMs pass OpenBLAS's threshold for using threads (so they run on the pool)."""
    p = make_problem(T, B, I, H, dtype=dtype, seed=seed)
    dout, dh_n = make_cotangents(T, B, H, dtype=dtype, seed=seed + 1)
    return p, dout, dh_n


@pytest.fixture
def two_threads(gk):
    old = gk.get_num_threads()
    gk.set_num_threads(2)
    yield
    gk.set_num_threads(old)


@pytest.mark.parametrize("reverse", [False, True], ids=["fwd", "rev"])
@pytest.mark.parametrize("reset_after", [False, True], ids=["seed", "reset_after"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
def test_gate_passes_split_over_the_pool_change_no_bit(gk, make_problem, make_cotangents,
                                                       two_threads, monkeypatch, reset_after,
                                                       reverse, dtype):
    """Rows are independent in every gate pass, so running a step's rows as blocks on two
    threads must give exactly the bits of one pass over all of them (same GEMMs, same
    per-row arithmetic): a wrong block offset or a row run twice would show here."""
    from grucy import _gru
    p, dout, dh_n = _big(make_problem, make_cotangents, 500, dtype=dtype)
    kw = dict(reset_after=reset_after, reverse=reverse)
    monkeypatch.setattr(_gru, "PAR_MIN_UNITS", 10 ** 9)        # one block: the caller alone
    whole = _job(gk, p, dout, dh_n, kw)
    monkeypatch.setattr(_gru, "PAR_MIN_UNITS", 1)              # two blocks of 32 rows
    split = _job(gk, p, dout, dh_n, kw)
    for name, a, b in zip(("out", "h_n") + GRADS, split, whole):
        np.testing.assert_array_equal(a, b, err_msg=name)


@pytest.mark.parametrize("T", [7, 32], ids=["T7", "T32_w_hh_transposed"])
@pytest.mark.parametrize("padded", [False, True], ids=["full", "padded"])
@pytest.mark.parametrize("reverse", [False, True], ids=["fwd", "rev"])
@pytest.mark.parametrize("reset_after", [False, True], ids=["seed", "reset_after"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
def test_steps_as_row_blocks_on_the_pool_match_the_reference(gk, ref, make_problem,
                                                             make_cotangents, assert_close,
                                                             tol, two_threads, monkeypatch,
                                                             reset_after, reverse, padded,
                                                             dtype, T):
    """On 2 threads a batch of 64 rows x 32 units runs each step as two row blocks at once,
    each with its own GEMMs and gate passes (_gru.step_blocks). A block offset off by a
    row, a GEMM over the wrong rows or a block run twice shows against the float64
    reference. At this size the per-step GEMMs stay on one thread and the passes whole
    when the steps are not split, so the blocks add exactly one run per step each way to
    the pool's count; none started a run from inside a block. At 32 steps each block's
    GEMMs read the transposed copy of w_hh (_gru.transpose_w_hh)."""
    from grucy import _gru
    B, I, H = 64, 8, 32
    assert _gru.step_blocks(B, H) == 2
    p = make_problem(T, B, I, H, dtype=dtype, seed=540)
    dout, dh_n = make_cotangents(T, B, H, dtype=dtype, seed=541)
    kw = dict(reset_after=reset_after, reverse=reverse)
    if padded:
        kw["lengths"] = np.random.default_rng(542).integers(0, T + 1, B)
    monkeypatch.setattr(_gru, "STEP_MIN_UNITS", 10 ** 9)        # steps whole
    runs = _gru.pool_runs()
    _job(gk, p, dout, dh_n, kw)
    whole = _gru.pool_runs() - runs
    monkeypatch.undo()
    runs, nested = _gru.pool_runs(), _gru.pool_nested_runs()
    got = _job(gk, p, dout, dh_n, kw)
    assert _gru.pool_runs() - runs == whole + 2 * T
    assert _gru.pool_nested_runs() == nested
    p64 = {k: v.astype(np.float64) for k, v in p.items()}
    want = _job(ref, p64, dout.astype(np.float64), dh_n.astype(np.float64), kw)
    for name, a, b in zip(("out", "h_n") + GRADS, got, want):
        assert_close(a, b, tol[np.dtype(dtype)], name)


@pytest.mark.parametrize("reset_after", [False, True], ids=["seed", "reset_after"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
def test_row_blocks_keep_big_gemms_on_their_own_threads(gk, ref, make_problem,
                                                        make_cotangents, assert_close, tol,
                                                        two_threads, reset_after, dtype):
    """At H = 128 a block of 32 rows has GEMMs that OpenBLAS would split (m·n·k past its
    threshold), each split a run from inside a job on threads of its own. Row-block steps
    hold OpenBLAS at one thread while they run (grucy_pool_run_serial), so no run nests;
    the count grucy reports stays 2 and OpenBLAS's is 2 again afterwards."""
    import ctypes
    from grucy import _gru, _blas_path
    T, B, I, H = 32, 64, 8, 128
    assert _gru.step_blocks(B, H) == 2
    p = make_problem(T, B, I, H, dtype=dtype, seed=545)
    dout, dh_n = make_cotangents(T, B, H, dtype=dtype, seed=546)
    kw = dict(reset_after=reset_after)
    nested = _gru.pool_nested_runs()
    got = _job(gk, p, dout, dh_n, kw)
    assert _gru.pool_nested_runs() == nested
    assert gk.get_num_threads() == 2
    assert ctypes.CDLL(_blas_path).scipy_openblas_get_num_threads() == 2
    p64 = {k: v.astype(np.float64) for k, v in p.items()}
    want = _job(ref, p64, dout.astype(np.float64), dh_n.astype(np.float64), kw)
    for name, a, b in zip(("out", "h_n") + GRADS, got, want):
        assert_close(a, b, tol[np.dtype(dtype)], name)


def test_the_thread_count_reads_the_same_while_row_blocks_run(gk, make_problem, two_threads):
    """While a row-block step runs, OpenBLAS's own count is 1; another thread asking grucy
    meanwhile (get_num_threads, or a kernel call planning its splits) must still read 2, or
    its splits, and so the last bits of its results, would depend on timing."""
    from grucy import _gru
    T, B, I, H = 64, 64, 8, 128
    assert _gru.step_blocks(B, H) == 2
    p = make_problem(T, B, I, H, dtype=np.float32, seed=547)
    done = threading.Event()
    seen = set()

    def poll():
        while not done.is_set():
            seen.update((gk.get_num_threads(), _gru.step_blocks(B, H), _gru.gate_blocks(B, H)))

    t = threading.Thread(target=poll)
    t.start()
    try:
        runs = _gru.pool_runs()
        for _ in range(20):
            gk.gru_forward(**p, training=False)
        assert _gru.pool_runs() - runs >= 20 * T
    finally:
        done.set()
        t.join()
    assert seen == {2}


def test_a_count_set_directly_during_row_blocks_stands(gk, make_problem, two_threads):
    """Row-block steps hold OpenBLAS's count at one and then restore it, but only if it still
    reads one: a count another thread sets meanwhile straight on grucy's OpenBLAS stands,
    not overwritten by the step's restore. Five tries, each setting 3 while forwards run (a
    set that lands between steps proves nothing; most land inside one)."""
    import ctypes
    from grucy import _gru, _blas_path
    blas = ctypes.CDLL(_blas_path)
    T, B, I, H = 64, 64, 8, 128
    assert _gru.step_blocks(B, H) == 2
    p = make_problem(T, B, I, H, dtype=np.float32, seed=548)
    for _ in range(5):
        gk.set_num_threads(2)
        started = threading.Event()

        def run():
            started.set()
            for _ in range(3):
                gk.gru_forward(**p, training=False)

        t = threading.Thread(target=run)
        t.start()
        started.wait()
        time.sleep(0.002)
        blas.scipy_openblas_set_num_threads(3)
        t.join()
        assert blas.scipy_openblas_get_num_threads() == 3


@pytest.mark.parametrize("H", [32, 160], ids=["step_blocks", "split_passes"])
@pytest.mark.parametrize("reset_after", [False, True], ids=["seed", "reset_after"])
def test_an_odd_batch_splits_into_blocks_that_cover_each_row_once(gk, ref, make_problem,
                                                                 make_cotangents,
                                                                 assert_close, tol,
                                                                 two_threads, reset_after, H):
    """65 rows on 2 threads: blocks of 32 and 33. Each block's bounds are B·i // blocks and
    B·(i + 1) // blocks, and with an even batch (the tests above) rounding either one up
    instead changes nothing, so a row skipped or run by both blocks would only show here.
    At H = 32 the steps run as row blocks (_gru.step_blocks), at H = 160 the gate passes
    split (_gru.gate_blocks; grucy_split in grucy/_gates.h). dout=None on the split passes:
    the backward passes' NULL dout must reach every block as NULL, not offset by its rows."""
    from grucy import _gru
    T, B, I = 4, 65, 8
    assert (_gru.step_blocks(B, H), _gru.gate_blocks(B, H)) == ((2, 1) if H == 32 else (1, 2))
    p = make_problem(T, B, I, H, seed=560)
    dout, dh_n = make_cotangents(T, B, H, seed=561)
    lengths = np.random.default_rng(562).integers(0, T + 1, B)
    for kw, d_out in ((dict(), None),                      # full: one pass over all rows
                      (dict(lengths=lengths, reverse=True), dout)):
        kw["reset_after"] = reset_after
        got = _job(gk, p, d_out, dh_n, kw)
        want = _job(ref, p, d_out, dh_n, kw)
        for name, a, b in zip(("out", "h_n") + GRADS, got, want):
            assert_close(a, b, tol[np.dtype(np.float64)], f"{kw} {name}")


@pytest.mark.parametrize("H", [32, 160], ids=["step_blocks", "split_passes"])
@pytest.mark.parametrize("reset_after", [False, True], ids=["seed", "reset_after"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
def test_jobs_no_worker_starts_run_on_the_caller_with_the_same_bits(gk, ref, make_problem,
                                                                   make_cotangents,
                                                                   assert_close, tol,
                                                                   two_threads, reset_after,
                                                                   H, dtype):
    """A worker kept off its core (other processes on the machine) leaves its job open; the
    caller, done with its own, runs it (grucy/_pool.h). pool_hold makes every worker do
    that for grucy's own jobs (OpenBLAS's still run on them, which wait for one another),
    so every row block and split gate pass runs on the caller: each must run exactly once
    and give the bits the workers give, training and inference, padded and not."""
    from grucy import _gru
    T, B, I = 5, 65, 8
    assert (_gru.step_blocks(B, H), _gru.gate_blocks(B, H)) == ((2, 1) if H == 32 else (1, 2))
    p = make_problem(T, B, I, H, dtype=dtype, seed=570)
    dout, dh_n = make_cotangents(T, B, H, dtype=dtype, seed=571)
    lengths = np.random.default_rng(572).integers(0, T + 1, B)
    cases = [dict(reset_after=reset_after),
             dict(reset_after=reset_after, lengths=lengths, reverse=True)]
    free = [(_job(gk, p, dout, dh_n, kw), gk.gru_forward(**p, **kw, training=False)[:2])
            for kw in cases]
    taken = _gru.pool_taken_jobs()
    _gru.pool_hold(True)
    try:
        held = [(_job(gk, p, dout, dh_n, kw), gk.gru_forward(**p, **kw, training=False)[:2])
                for kw in cases]
    finally:
        _gru.pool_hold(False)
    # at least a job per step of the unpadded case's forward, backward and inference (a
    # padded step's passes go row by row, unsplit; its row blocks still run as blocks)
    assert _gru.pool_taken_jobs() - taken >= 3 * T
    p64 = {k: v.astype(np.float64) for k, v in p.items()}
    for kw, (train, infer), (train_free, infer_free) in zip(cases, held, free):
        for name, a, b in zip(("out", "h_n") + GRADS + ("out", "h_n"), train + infer,
                              train_free + infer_free):
            np.testing.assert_array_equal(a, b, err_msg=f"{kw} {name}")
        want = _job(ref, p64, dout.astype(np.float64), dh_n.astype(np.float64), kw)
        for name, a, b in zip(("out", "h_n") + GRADS, train, want):
            assert_close(a, b, tol[np.dtype(dtype)], f"{kw} {name}")


def test_the_pools_runs_pass_threadsanitizer(tmp_path):
    """tests/pool_tsan.c: grucy/_pool.h alone, built with -fsanitize=thread, runs jobs of
    every kind from three caller threads, with pool_hold off, on, and flipped meanwhile (the
    caller taking open jobs over, or racing a late worker for them). A data race, a job run
    twice or not at all fails it (a worker's `pending` decrement moved before its job, or
    its exchange of `posted` made relaxed, each gave reports). Skips without gcc's TSan."""
    import os
    import shutil
    root = pathlib.Path(__file__).resolve().parent.parent
    gcc = shutil.which("gcc")
    if gcc is None:
        pytest.skip("no gcc")
    exe = tmp_path / "pool_tsan"
    build = subprocess.run([gcc, "-std=c11", "-O1", "-g", "-fsanitize=thread",
                            f"-I{root / 'grucy'}", "-o", str(exe),
                            str(root / "tests" / "pool_tsan.c"), "-lpthread"],
                           capture_output=True, text=True)
    if build.returncode != 0:
        pytest.skip(f"gcc cannot build with -fsanitize=thread: {build.stderr[-300:]}")
    # not an ASan run's preload (setup.py), which TSan cannot share a process with
    env = {k: v for k, v in os.environ.items() if k != "LD_PRELOAD"} | {"ROUNDS": "300"}
    for hold in ("0", "1", "2"):
        r = subprocess.run([str(exe), hold, "3"], capture_output=True, text=True, env=env,
                           timeout=600)
        if "FATAL: ThreadSanitizer" in r.stderr:      # e.g. a memory layout it cannot map
            pytest.skip(f"ThreadSanitizer cannot run here: {r.stderr[-300:]}")
        assert r.returncode == 0 and "ThreadSanitizer" not in r.stderr, r.stderr[-4000:]
        assert f"hold={hold} callers=3 " in r.stdout and "failures=0" in r.stdout, r.stdout


@pytest.mark.parametrize("reverse", [False, True], ids=["fwd", "rev"])
@pytest.mark.parametrize("reset_after", [False, True], ids=["seed", "reset_after"])
def test_inference_with_split_passes_matches_the_reference(gk, ref, make_problem,
                                                           assert_close, tol, two_threads,
                                                           reset_after, reverse):
    """training=False runs its own passes (after_infer, seed_n_infer), not the training
    ones the tests above split: on 2 threads at H = 160 each of them runs as two row blocks
    (_gru.gate_blocks), and every block must write the outputs of its own rows. An output
    offset missing from a block's job (its rows landing on the first block's) shows in out
    against the float64 reference; h_n alone would not show it."""
    from grucy import _gru
    T, B, I, H = 4, 65, 8, 160
    assert (_gru.step_blocks(B, H), _gru.gate_blocks(B, H)) == (1, 2)
    p = make_problem(T, B, I, H, seed=565)
    kw = dict(reset_after=reset_after, reverse=reverse, training=False)
    out, h_n, cache = gk.gru_forward(**p, **kw)
    assert cache is None
    rout, rh_n, _ = ref.gru_forward(**p, **kw)
    assert_close(out, rout, tol[np.dtype(np.float64)], "out")
    assert_close(h_n, rh_n, tol[np.dtype(np.float64)], "h_n")


@pytest.mark.parametrize("shape", [(7, 64, 8, 32), (32, 64, 8, 128), (5, 16, 8, 192),
                                   (32, 16, 8, 192)],
                         ids=["row_blocks", "row_blocks_w_hh_transposed", "split_gemms",
                              "split_gemms_w_hh_transposed"])
@pytest.mark.parametrize("reset_after", [False, True], ids=["seed", "reset_after"])
def test_the_gemm_floor_uses_the_pool_as_the_kernels_do(gk, make_problem, make_cotangents,
                                                        two_threads, shape, reset_after):
    """benchmarks/run.py divides the kernels' time by grucy._floor's, which must issue the
    same GEMMs the same way. Where the kernels run steps as row blocks, or OpenBLAS splits
    their GEMMs, the floor must start as many runs on the pool: a floor that ran whole steps
    would start none per step at the first shape and be slower than the kernels' GEMMs.
    The gate passes stay whole at these shapes or run inside the blocks, so every run of the
    kernels is a GEMM's.
    Row blocks run with OpenBLAS at one thread (grucy_pool_run_serial): at H = 128 a block's
    GEMMs are big enough to split otherwise, each split a run on threads of its own (nested);
    a floor of whole steps there would start as many runs, but no serial ones.
    From 32 steps (H <= 512) the forward reads w_hh through a transposed copy
    (_gru.transpose_w_hh), a different product for OpenBLAS, which the floor must issue too."""
    from grucy import _gru
    from grucy._floor import Floor
    T, B, I, H = shape
    assert _gru.step_blocks(B, H) > 1 or _gru.gate_blocks(B, H) == 1
    p = make_problem(T, B, I, H, dtype=np.float32, seed=550)
    dout, _ = make_cotangents(T, B, H, dtype=np.float32, seed=551)
    floor = Floor(T, B, I, H, reset_after, np.float32)

    def runs(fn):
        before = _gru.pool_runs()
        fn()
        return _gru.pool_runs() - before

    def inference():
        gk.gru_forward(**p, reset_after=reset_after, training=False)

    def training():
        out, _, cache = gk.gru_forward(**p, reset_after=reset_after)
        gk.gru_backward(dout, None, cache)

    def serial(fn):
        before = _gru.pool_serial_runs()
        fn()
        return _gru.pool_serial_runs() - before

    nested = _gru.pool_nested_runs()
    forward = runs(inference)
    assert forward >= T
    assert runs(floor.forward) == forward
    assert runs(floor.training) == runs(training) > forward
    assert _gru.pool_nested_runs() == nested
    # and as serial runs: at H = 128 a floor of whole steps starts as many runs (OpenBLAS's
    # splits of each step's GEMM), but none of them serial
    blocked = _gru.step_blocks(B, H) > 1
    assert serial(floor.forward) == serial(inference) == (T if blocked else 0)
    assert serial(floor.training) == serial(training) == (2 * T if blocked else 0)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_the_activation_bound_times_the_kernels_sigmoid_and_tanh(dtype):
    """benchmarks/run.py's `act bound` adds Floor.activations to the floor: it must compute
    every step's 2·B·H sigmoids and B·H tanhs (a loop that skipped work would make a bound
    too low), checked against long-double numpy. Its buffers cannot be swapped out: the
    compiled loop holds their pointers."""
    from grucy._floor import Floor
    T, B, I, H = 3, 5, 2, 7
    floor = Floor(T, B, I, H, True, dtype)
    pre, act = floor.bufs["pre"], floor.bufs["act"]
    act.fill(np.nan)
    floor.activations()
    n = B * H
    x = pre.ravel().astype(np.longdouble)
    want = np.concatenate([1 / (1 + np.exp(-x[:2 * n])), np.tanh(x[2 * n:])])
    rtol = (3 if dtype == np.float32 else 5) * np.finfo(dtype).eps   # tests/test_math.py's
    np.testing.assert_allclose(act.ravel().astype(np.longdouble), want, rtol=rtol, atol=0)
    assert pre.shape == act.shape == (B, 3 * H)
    with pytest.raises(TypeError):
        floor.bufs["act"] = np.empty_like(act)


def test_a_gemm_split_inside_a_pool_job_gets_threads_of_its_own(gk):
    """A job that calls a GEMM big enough for OpenBLAS to split starts a run while its own
    run holds the pool: without grucy_pool_run_nested the caller would wait on itself for
    ever (hence a child process and a timeout). The product must still be right."""
    code = textwrap.dedent("""
        import numpy as np, grucy
        from grucy import _gru
        grucy.set_num_threads(2)
        a, b = np.random.default_rng(0).standard_normal((2, 300, 300))
        nested = _gru.pool_nested_runs()
        c = _gru._matmul_in_a_job(a, b)
        print(_gru.pool_nested_runs() - nested, float(np.abs(c - a @ b).max()))
    """)
    root = pathlib.Path(__file__).resolve().parent.parent
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                       timeout=60, cwd=root)
    assert r.returncode == 0, r.stderr
    nested, err = r.stdout.split()
    assert int(nested) >= 1
    assert float(err) < 1e-10


_SPLIT_BESIDE_JOBS = textwrap.dedent("""
    import sys, threading, time
    import numpy as np, grucy
    from grucy import _gru
    grucy.set_num_threads(2)
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal((2, 256, 256))        # split by OpenBLAS inside a pool job
    p, q = rng.standard_normal((400, 300)), rng.standard_normal((300, 350))
    stop, errors = time.monotonic() + float(sys.argv[1]), []
    def loop(f, want):
        while time.monotonic() < stop:
            if not np.allclose(f(), want, rtol=1e-12, atol=1e-12):
                errors.append(f)
    threads = [threading.Thread(target=loop, args=(lambda: _gru._matmul_in_a_job(a, b), a @ b)),
               threading.Thread(target=loop, args=(lambda: grucy.matmul(p, q), p @ q))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    print(len(errors))
""")


def test_a_split_gemm_beside_a_run_whose_jobs_split_theirs_does_not_deadlock(gk):
    """A review found it: OpenBLAS holds its level3_lock through a threaded GEMM, callback
    included. Thread B's split product held it and waited for the pool, which thread A's
    run held while its job's own split product waited for that lock (hung 6 of 6 tries
    within seconds). Grucy's row-block steps reached it when OpenBLAS's count was raised
    from outside during one (threadpoolctl on another thread); the test hook
    _matmul_in_a_job splits its job's product by itself. Now B's jobs run on threads of
    their own while such a run has the pool. A hang is a timeout of the child process."""
    root = pathlib.Path(__file__).resolve().parent.parent
    r = subprocess.run([sys.executable, "-c", _SPLIT_BESIDE_JOBS, "4"], capture_output=True,
                       text=True, timeout=90, cwd=root)
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["0"]


_SPLIT_BESIDE_ROW_BLOCKS = textwrap.dedent("""
    import ctypes, sys, threading, time
    import numpy as np, grucy
    from grucy import _gru, _blas_path
    blas = ctypes.CDLL(_blas_path)
    grucy.set_num_threads(2)
    rng = np.random.default_rng(0)
    g = grucy.GRU(8, 128, dtype=np.float32, seed=1)    # B 64, H 128: steps as row blocks
    x = rng.standard_normal((64, 64, 8)).astype(np.float32)
    p, q = rng.standard_normal((400, 300)), rng.standard_normal((300, 350))
    stop, errors, serial = time.monotonic() + float(sys.argv[1]), [], _gru.pool_serial_runs()
    def forwards():
        while time.monotonic() < stop:
            g.forward(x)
    def raise_count():                                # threadpoolctl on another thread, say
        while time.monotonic() < stop:
            blas.scipy_openblas_set_num_threads(2)
            time.sleep(0.0001)
    def products():
        while time.monotonic() < stop:
            if not np.allclose(grucy.matmul(p, q), p @ q, rtol=1e-12, atol=1e-12):
                errors.append(1)
    threads = [threading.Thread(target=f) for f in (forwards, raise_count, products)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    print(len(errors), _gru.pool_serial_runs() > serial)
""")


def test_a_split_gemm_beside_row_block_steps_whose_count_is_raised_does_not_deadlock(gk):
    # a row-block step's GEMMs split when OpenBLAS's count is raised from outside during
    # it, and wait for the level3_lock that thread B's split product holds while waiting for
    # the pool: the step holds the pool as a run whose jobs call BLAS. A hang is a timeout.
    root = pathlib.Path(__file__).resolve().parent.parent
    r = subprocess.run([sys.executable, "-c", _SPLIT_BESIDE_ROW_BLOCKS, "4"], capture_output=True,
                       text=True, timeout=90, cwd=root)
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["0", "True"]


def _all_at_once(tasks, timeout=120):
    """Each task {key: (fn, reps)} calls fn reps times on its own Python thread, all
    starting together: {key: [results]}. A thread still running after timeout seconds
    means the pool deadlocked; an exception in a thread fails the test here."""
    barrier = threading.Barrier(len(tasks))
    results, errors = {}, []

    def run(key, fn, reps):
        try:
            barrier.wait()
            results[key] = [fn() for _ in range(reps)]
        except BaseException as e:          # reported below, not lost in the thread
            errors.append((key, e))

    threads = [threading.Thread(target=run, args=(key, fn, reps), daemon=True)
               for key, (fn, reps) in tasks.items()]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=timeout)
    assert not any(t.is_alive() for t in threads), "a thread is stuck: the pool deadlocked"
    assert not errors, errors
    return results


def test_threads_sharing_the_pool_neither_deadlock_nor_mix_results(gk, make_problem,
                                                                 make_cotangents, assert_close,
                                                                 tol, two_threads):
    """Five Python threads run split kernels, row-block steps (the fourth problem) and
    threaded GEMMs (grucy.matmul) at once: runs on the pool queue one after another;
    every result equals the one computed alone."""
    from grucy import _gru
    jobs = []
    for k in range(4):
        size = dict(I=8, H=32) if k == 3 else {}
        p, dout, dh_n = _big(make_problem, make_cotangents, 510 + 2 * k, **size)
        kw = dict(reset_after=bool(k % 2), reverse=k == 2)
        jobs.append((p, dout, dh_n, kw, _job(gk, p, dout, dh_n, kw)))
    assert _gru.step_blocks(64, 32) == 2 and _gru.step_blocks(64, 160) == 1
    rng = np.random.default_rng(520)
    a = rng.standard_normal((300, 200)).astype(np.float32)
    b = rng.standard_normal((200, 250)).astype(np.float32)
    mm_alone = gk.matmul(a, b)

    tasks = {k: (lambda k=k: _job(gk, *jobs[k][:4]), 4) for k in range(4)}
    tasks["mm"] = (lambda: gk.matmul(a, b), 20)
    results = _all_at_once(tasks)
    for k, (p, _, _, _, alone) in enumerate(jobs):
        for rep in results[k]:
            for name, x, y in zip(("out", "h_n") + GRADS, rep, alone):
                assert_close(x, y, tol[p["x"].dtype] / 100, f"job {k} {name}")
    for m in results["mm"]:
        np.testing.assert_allclose(m, mm_alone, rtol=1e-5, atol=1e-4)


def _child(conn, p, kw):
    import grucy
    grucy.set_num_threads(2)
    out, h_n, cache = grucy.gru_forward(**p, **kw)
    conn.send((out, h_n, grucy.matmul(out[0], out[1].T)))
    conn.close()


def _in_forked_children(target, args, times):
    """target(conn, *args) in `times` forked children, one after another: what each sent."""
    import multiprocessing as mp
    ctx = mp.get_context("fork")
    results = []
    for _ in range(times):
        parent, child = ctx.Pipe(duplex=False)
        proc = ctx.Process(target=target, args=(child, *args))
        proc.start()
        child.close()
        got = parent.recv() if parent.poll(60) else None
        proc.join(timeout=30)
        if proc.is_alive():
            proc.kill()
        assert got is not None, "the forked child hung"
        assert proc.exitcode == 0
        results.append(got)
    return results


def test_a_forked_child_gets_a_working_pool(gk, make_problem, two_threads):
    """fork() copies the pool's state but not its worker threads: the child must start its
    own (pthread_atfork) instead of waiting for workers that do not exist."""
    p = make_problem(6, 64, 40, 64, dtype=np.float32, seed=530)
    kw = dict(reset_after=True)
    out, h_n, _ = gk.gru_forward(**p, **kw)           # the parent's pool has run
    want = (out, h_n, gk.matmul(out[0], out[1].T))
    # four children: each starts a worker and runs on it at once (a race there once lost
    # the first job)
    for got in _in_forked_children(_child, (p, kw), 4):
        for name, a, b in zip(("out", "h_n", "matmul"), got, want):
            np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-6, err_msg=name)


# ---- interpreter exit with a daemon thread inside a call (grucy/_exit.h) --------------------

_EXIT_CHILD = textwrap.dedent("""
    import sys, threading, time
    import numpy as np, grucy
    from grucy import _gru
    what, path = sys.argv[1], sys.argv[2]
    grucy.set_num_threads(2)
    if what == "matmul":            # one long GEMM; C's first tile is written early
        n = 2000
        a = np.ones((n, n), np.float32)
        out = np.lib.format.open_memmap(path, mode="w+", dtype=np.float32, shape=(n, n))
        call = lambda: grucy.matmul(a, a, out=out)
        started = lambda: out[0, 0] != 0
    else:                           # one long Cell step: out is written at its very end
        if grucy.get_num_threads() < 2:
            print("one thread"); sys.exit(0)
        B, H = 8192, 512
        w = np.zeros((3 * H, H), np.float32)
        b = np.full(3 * H, 0.5, np.float32)
        cell = grucy.Cell(w, w, b, b)
        x, h = np.zeros((B, H), np.float32), np.zeros((B, H), np.float32)
        out = np.lib.format.open_memmap(path, mode="w+", dtype=np.float32, shape=(B, H))
        out[...] = np.nan
        runs = _gru.pool_runs()
        call = lambda: cell.step(x, h, out)
        started = lambda: _gru.pool_runs() > runs     # its first GEMM is on the pool
    threading.Thread(target=call, daemon=True).start()
    deadline = time.monotonic() + 30
    while not started():
        if time.monotonic() > deadline:
            sys.exit(3)
        time.sleep(0.001)
    # and exit, the daemon thread inside the call, GIL released
""")


@pytest.mark.parametrize("what", ["matmul", "cell"])
def test_exit_waits_for_a_daemon_thread_inside_a_call(gk, tmp_path, what):
    """Python stops a daemon thread only when it next takes the GIL, so one inside a kernel
    or product runs on into exit(), where OpenBLAS's destructor unmapped the buffers its
    GEMM was using (SIGSEGV in sgemm_oncopy/sgemm_kernel) or joined OpenBLAS's threads (a
    hang). Exit must wait for the call: it then ends cleanly, the call's result complete in
    a file-backed out (before the fix: out half-computed in every run, and 5 runs of 8
    crashed). Twice each, to catch a crash as well."""
    root = pathlib.Path(__file__).resolve().parent.parent
    path = tmp_path / "out.npy"
    for _ in range(2):
        r = subprocess.run([sys.executable, "-c", _EXIT_CHILD, what, str(path)],
                           capture_output=True, text=True, timeout=120, cwd=root)
        assert r.returncode == 0, (r.returncode, r.stderr)
        assert r.stderr == ""               # not even "BLAS : Bad memory unallocation!"
        if r.stdout.strip() == "one thread":
            pytest.skip("one CPU: a Cell step this size never reaches the pool")
        out = np.load(path)
        if what == "matmul":
            assert (out == out.shape[1]).all(), (out.min(), out.max())
        else:               # h = 0, zero weights: z n with z = sigmoid(1), n = tanh(1)
            want = np.float32(np.tanh(1.0) / (1.0 + np.exp(-1.0)))
            np.testing.assert_allclose(out, want, rtol=1e-5)
        path.unlink()


def test_a_child_forked_during_a_call_does_not_wait_for_it_at_exit(gk):
    """The child inherits the count of calls in flight but not the thread in the call: it
    must not wait for it at exit (grucy/_exit.h zeroes the count after fork)."""
    code = textwrap.dedent("""
        import os, sys, threading, time
        import numpy as np, grucy
        grucy.set_num_threads(2)
        a = np.ones((2000, 2000), np.float32)
        out = np.zeros_like(a)
        threading.Thread(target=lambda: grucy.matmul(a, a, out=out), daemon=True).start()
        while out[0, 0] == 0:
            time.sleep(0.001)
        pid = os.fork()
        if pid == 0:
            sys.exit(0)                     # a normal exit: Py_Finalize, then exit()
        deadline = time.monotonic() + 30
        while not os.waitpid(pid, os.WNOHANG)[0]:
            if time.monotonic() > deadline:
                os.kill(pid, 9)
                sys.exit("the forked child hung at exit")
            time.sleep(0.01)
    """)
    root = pathlib.Path(__file__).resolve().parent.parent
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                       timeout=120, cwd=root)
    assert r.returncode == 0, r.stderr


# ---- numpy's OpenBLAS on grucy's pool (grucy.share_threads_with_numpy) ---------------------

@pytest.fixture
def numpy_shared(gk, two_threads):
    """numpy's OpenBLAS handing its parallel calls to grucy's pool; its own threads after."""
    from grucy import ops
    found = ops._numpy_openblas()
    if found is None:
        pytest.skip("numpy's BLAS is not an OpenBLAS with a threading callback")
    if found[2]() < 2:
        pytest.skip("numpy's OpenBLAS runs one thread here: nothing to hand over")
    assert gk.share_threads_with_numpy() is True
    yield
    assert gk.share_threads_with_numpy(False) is True


def _operands(seed, dtype):
    rng = np.random.default_rng(seed)    # big enough for OpenBLAS to split over 2 threads
    return (rng.standard_normal((400, 300)).astype(dtype),
            rng.standard_normal((300, 500)).astype(dtype))


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
def test_numpy_products_run_on_grucy_pool_only_while_shared(gk, two_threads, dtype):
    """The pool's run counter moves under numpy's `@` while shared and not before or after,
    and the product keeps its bits: OpenBLAS splits it the same way, only the threads differ."""
    from grucy import _gru, ops
    if ops._numpy_openblas() is None or ops._numpy_openblas()[2]() < 2:
        pytest.skip("numpy's BLAS has no threading callback or runs one thread here")
    a, b = _operands(540, dtype)
    want = a.astype(np.longdouble) @ b.astype(np.longdouble)
    runs = _gru.pool_runs()
    own = a @ b
    assert _gru.pool_runs() == runs, "numpy's product ran on grucy's pool before sharing"
    assert gk.blas_info()["numpy_threads"] == "its own"
    try:
        assert gk.share_threads_with_numpy() is True
        shared = a @ b
        assert _gru.pool_runs() > runs, "numpy's product did not run on grucy's pool"
        assert gk.blas_info()["numpy_threads"].startswith("grucy's pool")
    finally:
        assert gk.share_threads_with_numpy(False) is True
    assert gk.blas_info()["numpy_threads"] == "its own"
    runs = _gru.pool_runs()
    again = a @ b
    assert _gru.pool_runs() == runs, "numpy still runs on grucy's pool after share=False"
    np.testing.assert_array_equal(shared, own)
    np.testing.assert_array_equal(again, own)
    eps = np.finfo(dtype).eps
    np.testing.assert_allclose(shared, want.astype(np.float64), rtol=0, atol=300 * 40 * eps)


def test_numpy_and_grucy_on_one_pool_from_several_threads(gk, make_problem, make_cotangents,
                                                        assert_close, tol, numpy_shared):
    """numpy products in two Python threads and grucy kernels in two more, all on the one
    pool at once: no deadlock, and every result equals the one computed alone."""
    jobs = []
    for k in range(2):
        p, dout, dh_n = _big(make_problem, make_cotangents, 550 + 2 * k)
        kw = dict(reset_after=bool(k))
        jobs.append((p, dout, dh_n, kw, _job(gk, p, dout, dh_n, kw)))
    mats = [_operands(560 + k, np.float32) for k in range(2)]
    mm_alone = [a @ b for a, b in mats]

    tasks = {("job", k): (lambda k=k: _job(gk, *jobs[k][:4]), 4) for k in range(2)}
    tasks.update({("mm", k): (lambda k=k: mats[k][0] @ mats[k][1], 20) for k in range(2)})
    results = _all_at_once(tasks)
    for k, (p, _, _, _, alone) in enumerate(jobs):
        for rep in results[("job", k)]:
            for name, x, y in zip(("out", "h_n") + GRADS, rep, alone):
                assert_close(x, y, tol[p["x"].dtype] / 100, f"job {k} {name}")
    for k in range(2):
        for m in results[("mm", k)]:
            np.testing.assert_array_equal(m, mm_alone[k])


def _numpy_child(conn, a, b):
    conn.send(a @ b)
    conn.close()


def test_a_forked_child_runs_numpy_on_a_fresh_pool(gk, numpy_shared):
    """After fork() numpy's OpenBLAS still calls grucy's pool, which has no workers in the
    child yet: it must start them, not wait for the parent's."""
    a, b = _operands(570, np.float32)
    want = a @ b
    for got in _in_forked_children(_numpy_child, (a, b), 3):
        np.testing.assert_array_equal(got, want)


def test_numpy_lu_beside_numpy_products_on_the_shared_pool_does_not_hang(gk):
    """OpenBLAS's LU (getrf_parallel) queues its jobs to numpy's own server threads by
    their slots in thread_status, past the callback; a product's callback jobs on another
    thread once ran in the same slots, overwrote the queued job, and the LU spun for ever
    (3 runs of 3). Now they run in the top slots (grucy/_pool.h). A child process, threads
    joined with a timeout: a hang fails, it does not hang the suite. The LU stays right."""
    code = textwrap.dedent("""
        import os, threading, time
        import numpy as np, grucy
        if not grucy.share_threads_with_numpy():
            print("skip"); os._exit(0)
        rng = np.random.default_rng(0)
        sq = rng.standard_normal((300, 300)); spd = sq @ sq.T + 300 * np.eye(300)
        a = rng.standard_normal((400, 400))
        stop, done, worst = time.time() + 1.5, [0, 0], [0.0]
        def lu():
            while time.time() < stop:
                worst[0] = max(worst[0], float(np.abs(np.linalg.inv(spd) @ spd
                                                      - np.eye(300)).max()))
                np.linalg.solve(spd, sq[:, :4]); done[0] += 1
        def products():
            while time.time() < stop:
                a @ a; done[1] += 1
        ts = [threading.Thread(target=f, daemon=True) for f in (lu, products)]
        [t.start() for t in ts]; [t.join(5) for t in ts]
        print("hung" if any(t.is_alive() for t in ts) else "ok", done[0], done[1], worst[0],
              flush=True)
        os._exit(0)                     # never wait for a hung thread at exit
    """)
    root = pathlib.Path(__file__).resolve().parent.parent
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                       timeout=60, cwd=root)
    assert r.returncode == 0, r.stderr
    if r.stdout.strip() == "skip":
        pytest.skip("numpy's OpenBLAS cannot be shared here")
    state, lus, products, worst = r.stdout.split()
    assert state == "ok", f"numpy's LU hung beside numpy products ({lus} LUs done)"
    assert int(lus) >= 1 and int(products) >= 1
    assert float(worst) < 1e-12


def test_the_shared_callback_counts_thread_slots_down_from_the_top(gk):
    """OpenBLAS's dojob gets a thread slot: grucy's own library slot i, another library's
    (numpy's, shared) its last slot minus i, clear of that library's server threads."""
    import ctypes
    from grucy import _gru
    seen = {}
    DOJOB = ctypes.CFUNCTYPE(None, ctypes.c_int, ctypes.c_void_p, ctypes.c_int)
    RUN = ctypes.CFUNCTYPE(None, ctypes.c_int, DOJOB, ctypes.c_int, ctypes.c_size_t,
                           ctypes.c_void_p, ctypes.c_int)
    jobs = (ctypes.c_int * 3)(0, 1, 2)

    @DOJOB
    def record(slot, job, data):
        seen[ctypes.cast(job, ctypes.POINTER(ctypes.c_int))[0]] = (slot, data)
    for address, want in ((_gru.blas_callback_address(), {0: 0, 1: 1, 2: 2}),
                          (_gru.shared_callback_address(64), {0: 63, 1: 62, 2: 61})):
        seen.clear()
        RUN(address)(1, record, 3, ctypes.sizeof(ctypes.c_int), ctypes.addressof(jobs), 7)
        assert seen == {job: (slot, 7) for job, slot in want.items()}
    with pytest.raises(ValueError, match="max_threads must be >= 1"):
        _gru.shared_callback_address(0)


@pytest.mark.parametrize("threads,config", [(33, "OpenBLAS 0.3.31 MAX_THREADS=64"),
                                            (3, "MAX_THREADS=4"),
                                            (2, "OpenBLAS 0.3.31 NO_AFFINITY"), (2, "")])
def test_sharing_is_refused_where_the_slots_would_meet_numpys_threads(gk, monkeypatch,
                                                                     threads, config):
    """numpy's servers use slots 0..n-2 and the shared callback's n jobs the top n: where
    they would meet (n above about half of MAX_THREADS), or MAX_THREADS is unknown, sharing
    changes nothing and says so."""
    from grucy import ops
    handed = []
    fake = ("/dev/null", handed.append, lambda: threads, lambda: config)
    monkeypatch.setattr(ops, "_numpy_openblas", lambda: fake)
    assert gk.share_threads_with_numpy() is False
    assert handed == []
    # 2 threads where there are 4 slots: the server in slot 0, the jobs in slots 3 and 2
    fake = ("/dev/null", handed.append, lambda: 2, lambda: "MAX_THREADS=4")
    monkeypatch.setattr(ops, "_numpy_openblas", lambda: fake)
    assert gk.share_threads_with_numpy() is True
    assert handed == [gk._gru.shared_callback_address(4)]
    assert gk.share_threads_with_numpy(False) is True and handed[-1] is None
    # shared, then numpy's count raised past the slots (threadpoolctl, say): sharing again
    # says False and gives numpy its own threads back, rather than leave it shared unsafely
    count = [2]
    fake = ("/dev/null", handed.append, lambda: count[0], lambda: "MAX_THREADS=4")
    monkeypatch.setattr(ops, "_numpy_openblas", lambda: fake)
    assert gk.share_threads_with_numpy() is True
    count[0] = 3
    assert gk.share_threads_with_numpy() is False
    assert handed[-1] is None and "its own" == gk.blas_info()["numpy_threads"]


def test_share_threads_with_numpy_wants_a_bool(gk):
    with pytest.raises(TypeError, match="share must be a bool"):
        gk.share_threads_with_numpy("yes")


def test_numpy_openblas_is_found_where_a_wheel_has_loaded_one():
    """The tests above skip when no hook is found, so a lookup that silently finds nothing
    (misparsing /proc/self/maps, or wanting a setter *or* getter missing) passed them all."""
    import glob
    import os
    import sys
    from grucy import ops
    libs = glob.glob(os.path.join(os.path.dirname(np.__file__) + ".libs", "*openblas*"))
    if not (sys.platform.startswith("linux") and libs):
        pytest.skip("no numpy wheel OpenBLAS (numpy.libs) here")
    with open("/proc/self/maps") as f:
        if not any(os.path.realpath(p) in f.read() for p in libs):
            pytest.skip("numpy's OpenBLAS is not mapped")
    # numpy 1.x's OpenBLAS predates the hook; the name's bytes in the file say whether this
    # one has it, independently of the lookup's prefixes and suffixes
    if not any(b"set_threads_callback_function" in open(p, "rb").read() for p in libs):
        pytest.skip("numpy's OpenBLAS has no threading hook")
    found = ops._numpy_openblas()
    assert found is not None
    path, setter, getter, config = found
    assert os.path.realpath(path) in {os.path.realpath(p) for p in libs}
    assert getter() >= 1
    assert "MAX_THREADS=" in config()


def test_without_a_numpy_hook_sharing_is_refused_and_reported(gk, monkeypatch):
    from grucy import ops
    monkeypatch.setattr(ops, "_numpy_openblas", lambda: None)
    assert gk.share_threads_with_numpy() is False
    assert gk.share_threads_with_numpy(False) is False
    assert gk.blas_info()["numpy_threads"].startswith("its own (no OpenBLAS threading hook")
