"""The compiled kernels under Python threads: correct results when several run at once, and the
GIL really released while a kernel runs. No timing is asserted anywhere.
"""

import sys
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
