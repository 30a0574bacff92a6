"""grucy.matmul, the thread pool and `python -m grucy`, against numpy as the reference."""
import itertools
import os
import platform
import subprocess
import sys

import numpy as np
import pytest

import grucy

TOL = {np.float32: 1e-5, np.float64: 1e-13}


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("trans_a,trans_b", list(itertools.product([False, True], repeat=2)))
def test_matmul_matches_numpy(dtype, trans_a, trans_b):
    rng = np.random.default_rng(1)
    m, k, n = 7, 5, 3
    a = rng.standard_normal((k, m) if trans_a else (m, k)).astype(dtype)
    b = rng.standard_normal((n, k) if trans_b else (k, n)).astype(dtype)
    c0 = rng.standard_normal((m, n)).astype(dtype)
    want = 0.5 * ((a.T if trans_a else a) @ (b.T if trans_b else b)) + 2.0 * c0
    out = c0.copy()
    got = grucy.matmul(a, b, out, trans_a=trans_a, trans_b=trans_b, alpha=0.5, beta=2.0)
    assert got is out
    np.testing.assert_allclose(got, want, rtol=TOL[dtype], atol=TOL[dtype])


def test_matmul_allocates_and_copies_non_contiguous():
    rng = np.random.default_rng(2)
    a = rng.standard_normal((8, 6))[::2]          # (4, 6), strided
    b = np.asfortranarray(rng.standard_normal((6, 3)))
    b.flags.writeable = False
    np.testing.assert_allclose(grucy.matmul(a, b), a @ b, rtol=1e-13)


def test_matmul_empty_inner_dimension_scales_out():
    out = np.ones((2, 3))
    grucy.matmul(np.zeros((2, 0)), np.zeros((0, 3)), out, beta=3.0)
    np.testing.assert_array_equal(out, 3.0)


def test_matmul_empty_inner_dimension_with_beta_zero_gives_zeros():
    """beta = 0 means out is not read, as in BLAS: a fresh out is np.empty, whose garbage
    (NaN here) times 0 came back as the product."""
    junk = np.full((2, 3), np.nan)
    del junk                                    # the next np.empty of its size reuses it
    np.testing.assert_array_equal(grucy.matmul(np.ones((2, 0)), np.ones((0, 3))), 0.0)
    out = np.full((2, 3), np.nan)
    grucy.matmul(np.ones((2, 0)), np.ones((0, 3)), out)
    np.testing.assert_array_equal(out, 0.0)


@pytest.mark.parametrize("call, word", [
    (lambda: grucy.matmul(np.ones((2, 3)), np.ones((4, 2))), "inner"),
    # by matmul itself (the compiled call's own dtype error names no argument)
    (lambda: grucy.matmul(np.ones((2, 3), np.float32), np.ones((3, 2))),
     "matmul: a is float32 but b is float64"),
    (lambda: grucy.matmul(np.ones((2, 3), int), np.ones((3, 2), int)), "a must be float"),
    (lambda: grucy.matmul(np.ones(3), np.ones((3, 2))), "a must be 2-D"),
    (lambda: grucy.matmul(np.ones((2, 3)), np.ones((3, 2)), np.ones((3, 3))), "out must have shape"),
    (lambda: grucy.matmul(np.ones((2, 3)), np.ones((3, 2)), beta=1.0), "beta"),
    (lambda: grucy.matmul(np.ones((2, 3)), np.ones((2, 3)), trans_a="no"), "trans_a"),
    (lambda: grucy.matmul(np.ones((2, 3)), np.ones((2, 3)), trans_b=1), "trans_b"),
    (lambda: grucy.matmul(np.ones((2, 3)), np.ones((3, 2)), alpha="2"), "alpha"),
    # numpy's own message for a ragged list ("inhomogeneous shape") named no argument
    (lambda: grucy.matmul([[1.0, 2.0], [3.0]], np.ones((2, 2))), "a must be an array"),
    (lambda: grucy.matmul(np.ones((2, 2)), [[1.0, 2.0], [3.0]]), "b must be an array"),
    (lambda: grucy.matmul(np.ones((2, 3)), np.ones((3, 2)), alpha=1j), "alpha"),
    (lambda: grucy.matmul(np.ones((2, 3)), np.ones((3, 2)), np.ones((2, 2)), beta=np.nan),
     "beta"),
    # sizes past 32 bits (zero-strided views: nothing is allocated before the check)
    (lambda: grucy.matmul(np.broadcast_to(np.ones(1), (2**31, 1)), np.ones((1, 1))), "a has"),
    (lambda: grucy.matmul(np.ones((1, 1), np.float32),
                          np.broadcast_to(np.ones(1, np.float32), (1, 2**32 + 1))), "b has"),
])
def test_matmul_bad_input(call, word):
    with pytest.raises((ValueError, TypeError), match=word):
        call()


def _misaligned(shape, dtype):
    """A C-contiguous array one byte off its dtype's alignment (np.frombuffer at an offset)."""
    n = int(np.prod(shape)) * np.dtype(dtype).itemsize
    return np.frombuffer(bytearray(n + 1), dtype=dtype, offset=1).reshape(shape)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_matmul_misaligned_inputs_are_copied_and_out_refused(dtype):
    rng = np.random.default_rng(3)
    a, b = _misaligned((4, 5), dtype), _misaligned((5, 3), dtype)
    assert not a.flags.aligned and not b.flags.aligned
    a[...] = rng.standard_normal((4, 5))
    b[...] = rng.standard_normal((5, 3))
    want = a.astype(np.float64) @ b.astype(np.float64)
    np.testing.assert_allclose(grucy.matmul(a, b), want, rtol=1e-5)
    with pytest.raises(ValueError, match="out must be C-contiguous, aligned and writeable"):
        grucy.matmul(a, b, _misaligned((4, 3), dtype))


def test_matmul_rejects_aliasing_out():
    a = np.ones((3, 3))
    with pytest.raises(ValueError, match="overlap"):
        grucy.matmul(a, a, a)


def _huge(*shape):
    """A zero-strided view of `shape`: exabytes as a copy, nothing as it is."""
    return np.broadcast_to(np.zeros((1, 1)), shape)


def test_matmul_checks_shapes_before_copying_a_strided_operand():
    # a was copied to C order before b was compared with it: a mismatch was numpy's
    # MemoryError ("Unable to allocate 8.00 TiB"), naming no argument
    with pytest.raises(ValueError, match=r"inner dimensions differ: op\(a\) is \(1048576, "
                                         r"1048576\), op\(b\) is \(3, 2\)"):
        grucy.matmul(_huge(2**20, 2**20), np.zeros((3, 2)))
    with pytest.raises(ValueError, match=r"out must have shape \(1048576, 2\)"):
        grucy.matmul(_huge(2**20, 2**20), _huge(2**20, 2), np.zeros((3, 2)))


def test_matmul_of_an_empty_product_copies_no_operand():
    # (2**28, 2**28) @ (2**28, 0) is (2**28, 0): nothing to compute, nothing to copy
    out = grucy.matmul(_huge(2**28, 2**28), np.zeros((2**28, 0)))
    assert out.shape == (2**28, 0)


def test_thread_pool_round_trip():
    before = grucy.get_num_threads()
    try:
        grucy.set_num_threads(1)
        assert grucy.get_num_threads() == 1
        assert grucy.blas_info()["num_threads"] == 1
    finally:
        grucy.set_num_threads(before)
    for bad in (0, -1):
        with pytest.raises(ValueError, match="n must be >= 1"):
            grucy.set_num_threads(bad)
    for bad in (1.5, True, "2", None):
        with pytest.raises(TypeError, match="n must be an int"):
            grucy.set_num_threads(bad)


def test_set_num_threads_keeps_the_old_count_when_the_pool_cannot_start(monkeypatch):
    """OpenBLAS's count is set before the pool's workers start; a pool that cannot start
    them (pthread_create failing) must not leave OpenBLAS asking for threads it lacks."""
    from grucy import ops

    def refuse(n, who="set_num_threads"):
        raise RuntimeError(f"{who}: could not start {n - 1} worker threads")
    before = grucy.get_num_threads()
    target = 2 if before != 2 else 1
    monkeypatch.setattr(ops._gru, "reserve_threads", refuse)
    with pytest.raises(RuntimeError, match="could not start"):
        grucy.set_num_threads(target)
    assert grucy.get_num_threads() == before


def test_more_threads_than_openblas_allows_are_capped_and_still_work():
    """OpenBLAS caps the count at its build's maximum; grucy's pool follows the cap (it
    starts one worker per extra thread OpenBLAS will ask for) and products stay right."""
    before = grucy.get_num_threads()
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal((300, 200)), rng.standard_normal((200, 250))
    try:
        grucy.set_num_threads(4096)
        n = grucy.get_num_threads()
        assert 1 <= n < 4096
        np.testing.assert_allclose(grucy.matmul(a, b), a @ b, rtol=1e-10, atol=1e-10)
        grucy.set_num_threads(2**31)            # past a C int: was a bare OverflowError
        assert grucy.get_num_threads() == n
        grucy.set_num_threads(np.uint64(2**64 - 1))
        assert grucy.get_num_threads() == n
    finally:
        grucy.set_num_threads(before)


def test_more_threads_than_cpus_are_capped_at_the_cpus(monkeypatch):
    """A run's jobs wait for one another, so more threads than cores made each wait a
    scheduler time slice: a GRU forward took 60x longer at 3 threads than at 2 on 2 cores,
    and 64 threads did not finish in minutes."""
    before = grucy.get_num_threads()
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0}, raising=False)
    try:
        grucy.set_num_threads(2)
        assert grucy.get_num_threads() == 1
    finally:
        monkeypatch.undo()
        grucy.set_num_threads(before)


def test_python_m_grucy_reports_the_blas():
    info = grucy.blas_info()
    printed = subprocess.run([sys.executable, "-m", "grucy"], capture_output=True, text=True,
                             check=True).stdout
    assert "OpenBLAS" in info["config"]
    for key in ("corename", "config", "package", "numpy_threads", "gate_passes"):
        assert str(info[key]) in printed


@pytest.mark.skipif(platform.machine() not in ("x86_64", "AMD64") or
                    not os.path.exists("/proc/cpuinfo"), reason="reads x86 Linux CPU flags")
def test_gate_passes_reported_from_the_cpu_flags():
    flags = next(line for line in open("/proc/cpuinfo") if line.startswith("flags")).split()
    want = ("AVX-512" if {"avx512f", "avx512vl", "avx512dq", "avx512bw"} <= set(flags) else
            "AVX2+FMA" if {"avx2", "fma"} <= set(flags) else "baseline")
    assert grucy.blas_info()["gate_passes"].startswith(want)


def test_a_zero_coefficient_skips_its_term_as_documented():
    """BLAS's convention, which the docstring states: beta = 0 overwrites out without
    reading it, and alpha = 0 reads neither factor (NaN there does not reach C)."""
    import grucy
    ones = np.ones((2, 3), np.float32)
    out = np.full((2, 2), np.nan, np.float32)
    grucy.matmul(ones, ones, out, trans_b=True, beta=0.0)
    np.testing.assert_array_equal(out, np.full((2, 2), 3.0))
    nan = np.full((2, 3), np.nan, np.float32)
    grucy.matmul(nan, nan, out, trans_b=True, alpha=0.0, beta=2.0)
    np.testing.assert_array_equal(out, np.full((2, 2), 6.0))


def test_matmul_takes_a_size_of_exactly_blas_int_max():
    """2**31 - 1 is a C int: refused only past it (empty arrays, nothing allocated)."""
    n = 2**31 - 1
    out = grucy.matmul(np.empty((0, n)), np.empty((n, 0)))
    assert out.shape == (0, 0)


@pytest.mark.parametrize("m,k,n", [(1, 3, 2), (3, 1, 2), (3, 2, 1), (1, 1, 1), (0, 3, 2), (3, 2, 0)])
def test_matmul_unit_and_empty_sizes_match_numpy(m, k, n):
    """Sizes of 1 are ordinary products (an outer product for k = 1), 0 gives an empty out."""
    rng = np.random.default_rng(m * 100 + k * 10 + n)
    a, b = rng.standard_normal((m, k)), rng.standard_normal((k, n))
    want = np.einsum("ik,kj->ij", a, b)
    np.testing.assert_allclose(grucy.matmul(a, b), want, rtol=1e-13, atol=1e-15)
    out = rng.standard_normal((m, n))
    want2 = 2.0 * want + 0.5 * out
    np.testing.assert_allclose(grucy.matmul(a=a, b=b, out=out, alpha=2.0, beta=0.5), want2,
                               rtol=1e-13, atol=1e-15)


def test_matmul_out_is_checked_against_each_operand():
    a, b = np.ones((3, 3)), np.ones((3, 3))
    for out in (a, b, b[:, :]):
        with pytest.raises(ValueError, match="overlap"):
            grucy.matmul(a, b, out)
    for out in (np.zeros((3, 3), np.float32), [[0.0] * 3] * 3):
        with pytest.raises(TypeError, match="out must be a float64 ndarray"):
            grucy.matmul(a, b, out)


@pytest.mark.parametrize("kw", [dict(alpha=1e39), dict(alpha=-1e-50), dict(beta=1e39)])
def test_a_coefficient_float32_cannot_hold_is_refused(kw):
    # checked as a float64: alpha=1e39 gave inf everywhere, 1e-50 silently zeros
    a = np.ones((2, 2), np.float32)
    name = next(iter(kw))
    with pytest.raises(ValueError, match=f"{name}=.* is not representable in float32"):
        grucy.matmul(a, a, np.zeros((2, 2), np.float32), **kw)
    a64 = a.astype(np.float64)                  # the same values are fine in float64
    got = grucy.matmul(a64, a64, np.zeros((2, 2)), **kw)
    np.testing.assert_allclose(got, kw.get("alpha", 1.0) * (a64 @ a64))


def test_representable_agrees_with_a_numpy_cast_at_float32_edges():
    """matmul's check rounds alpha and beta with struct, not numpy (a numpy scalar cost
    microseconds per call): it must call a value representable exactly where a float32
    cast of it is finite, and nonzero for a nonzero value."""
    from grucy.ops import _representable
    f32 = np.finfo(np.float32)
    big, tiny = float(f32.max), float(f32.smallest_subnormal)
    edges = [0.0, -0.0, 1.0, -1.0, big, -big, tiny, -tiny, tiny / 2, tiny * 0.5000001,
             tiny * 0.4999999, 1e-50, 1e39, -1e39, float(f32.tiny)]
    # either side of the overflow threshold: max + half an ulp rounds to inf
    half_ulp = 2.0 ** (127 - 23) / 2                 # of float32's largest binade
    edges += [big + half_ulp * k for k in (0.999, 1.0, 1.001)]
    edges += [float(np.nextafter(e, s)) for e in edges for s in (-np.inf, np.inf)]
    for v in edges:
        with np.errstate(over="ignore"):
            cast = np.float32(v)
        want = bool(np.isfinite(cast)) and (v == 0 or cast != 0)
        assert _representable(v, np.dtype(np.float32)) == want, v
        assert _representable(v, np.dtype(np.float64))


def test_a_byte_swapped_out_says_byte_order():
    a = np.ones((2, 2))
    with pytest.raises(TypeError, match="out must be a float64 ndarray in native byte order, got >f8"):
        grucy.matmul(a, a, np.zeros((2, 2), ">f8"))
