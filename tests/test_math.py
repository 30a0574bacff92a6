"""grucy's own sigmoid/tanh (grucy/_math.pxd) against libm, in float32 and float64.

The gate loops use branch-free polynomial point functions so that the compiler vectorises
them (issue 5). These tests hold them to stated bounds, measured in units in the last place
(ulp) of the correctly rounded result, with long-double libm as the truth:

    float32: <= 3 ulp      float64: <= 5 ulp      (measured: 2.5 and 4.0)

wherever the true result is a normal number; where it is subnormal (sigmoid of a < -87 in
float32, a < -708 in float64) the absolute error is below the smallest normal number.
The point functions are reached through grucy._ops._pointwise, a loop compiled and
dispatched the same way as the gate passes (grucy/_gates.h): every test runs on the
baseline copy and on each newer copy the CPU has, AVX2+FMA and AVX-512 (whose fused
multiply-adds round differently), all held to the same bounds.
"""
import numpy as np
import pytest

ULP_BOUND = {np.dtype(np.float32): 3.0, np.dtype(np.float64): 5.0}

pytestmark = pytest.mark.skipif(
    np.finfo(np.longdouble).eps >= np.finfo(np.float64).eps,
    reason="needs a long double wider than float64 as the truth")


COPIES = ["baseline", "avx2_fma", "avx512"]       # levels 0, 1, 2 of grucy/_gates.h


@pytest.fixture(autouse=True, params=COPIES)
def dispatch(request):
    """Run the test on one copy of the point functions, then restore the CPU's choice."""
    from grucy import _ops
    level = COPIES.index(request.param)
    if _ops._set_simd(level) != level:
        _ops._set_simd()
        pytest.skip(f"this CPU or compiler has no {request.param} copy")
    yield request.param
    _ops._set_simd()


def _pointwise(name, a):
    from grucy import _ops
    out = np.empty_like(a)
    _ops._pointwise(name, a, out)
    return out


def _truth(name, a):
    al = a.astype(np.longdouble)
    with np.errstate(over="ignore"):
        return 1 / (1 + np.exp(-al)) if name == "sigmoid" else np.tanh(al)


def _samples(dtype, seed=0):
    rng = np.random.default_rng(seed)
    big = 120.0 if dtype == np.float32 else 800.0
    tiny = np.logspace(np.log10(np.finfo(dtype).smallest_subnormal) + 1, 2.5, 20_000)
    return np.concatenate([
        rng.uniform(-20, 20, 200_000),             # where the gates live
        rng.standard_normal(100_000) * 1e-3,      # tanh(x) ~ x: cancellation would show here
        tiny, -tiny,                               # every binade down to the subnormals
        rng.uniform(-big, big, 50_000),            # saturation, overflow of e^-a, subnormals
    ]).astype(dtype)


@pytest.mark.parametrize("name", ["sigmoid", "tanh"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
def test_within_ulp_bound_of_libm(name, dtype):
    dtype = np.dtype(dtype)
    a = _samples(dtype)
    got = _pointwise(name, a).astype(np.longdouble)
    truth = _truth(name, a)
    rounded = truth.astype(dtype)
    normal = np.abs(rounded) >= np.finfo(dtype).tiny
    ulps = np.abs(got - truth) / np.spacing(np.abs(rounded)).astype(np.longdouble)
    worst = int(np.argmax(np.where(normal, ulps, 0)))
    assert ulps[normal].max() <= ULP_BOUND[dtype], (
        f"{name}({a[worst]!r}) = {got[worst]!r}, truth {truth[worst]!r}: "
        f"{float(ulps[worst]):.2f} ulp > {ULP_BOUND[dtype]}")
    if (~normal).any():
        assert np.abs(got - truth)[~normal].max() <= np.finfo(dtype).tiny


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
def test_special_values(dtype):
    a = np.array([np.nan, np.inf, -np.inf, 0.0, -0.0, 1e4, -1e4], dtype)
    sig = _pointwise("sigmoid", a)
    tnh = _pointwise("tanh", a)
    np.testing.assert_array_equal(sig, np.array([np.nan, 1, 0, 0.5, 0.5, 1, 0], dtype))
    np.testing.assert_array_equal(tnh, np.array([np.nan, 1, -1, 0, -0.0, 1, -1], dtype))
    assert np.signbit(tnh[4]) and not np.signbit(tnh[3])      # tanh keeps the sign of zero


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
def test_monotone_and_bounded(dtype):
    """No wiggles where the polynomial pieces meet (ulp bounds alone would allow a step back)."""
    a = np.linspace(-30, 30, 600_001).astype(dtype)
    for name, lo in (("sigmoid", 0), ("tanh", -1)):
        y = _pointwise(name, a)
        assert np.all(np.diff(y) >= 0), name
        assert y.min() >= lo and y.max() <= 1, name


def test_subnormals_not_flushed():
    """No process-wide flush-to-zero: the build must not have turned it on (no -ffast-math)."""
    tiny = np.finfo(np.float32).smallest_subnormal
    a = np.array([tiny, 1e-40], np.float32)
    np.testing.assert_array_equal(_pointwise("tanh", a), a)
    assert np.float32(tiny) * np.float32(1) == tiny
