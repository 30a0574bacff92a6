"""Shared fixtures for the kernel tests (tests/test_kernels_*.py).

Helpers are handed out as fixtures rather than imported from this file, so the tests work
under any pytest import mode.
"""

import importlib.util
import pathlib

import numpy as np
import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]


def pytest_configure(config):
    # here rather than in pyproject.toml, which a copy of tests/ run against an installed
    # grucy does not have ("Unknown pytest.mark.slow")
    config.addinivalue_line(
        "markers", "slow: multirun-launcher and full-CLI runner tests (about a minute in total)")

# Tolerances per dtype, relative to the largest magnitude in the expected array (see
# assert_close), always against a float64 truth. Measured: the float32 reference is within
# ~3e-7 of float64 on the test problems (T up to 50, H up to 300), so float32 gets ~70x that
# (~170 ulps of 1.2e-7): room for other summation orders and vectorised exp/tanh, while a
# float16 intermediate or a 1e-4-accurate tanh approximation fails. float64 gets ~4500 ulps
# of 2.2e-16 for the same reasons.
TOL = {np.dtype(np.float64): 1e-12, np.dtype(np.float32): 2e-5}

PARAM_NAMES = ("w_ih", "w_hh", "b_ih", "b_hh")
INPUT_NAMES = ("x", "h0") + PARAM_NAMES
GRAD_NAMES = ("dx", "dh0", "dw_ih", "dw_hh", "db_ih", "db_hh")


def _load_reference():
    try:
        from grucy import reference
        return reference
    except ImportError:
        # The reference is pure numpy: test it even while the compiled package does not import
        # (the compiled tests fail on their own in that case).
        spec = importlib.util.spec_from_file_location(
            "_grucy_reference_standalone", ROOT / "grucy" / "reference.py")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module


@pytest.fixture(scope="session")
def ref():
    """grucy.reference: the pure-numpy kernels."""
    return _load_reference()


@pytest.fixture(scope="session")
def gk():
    """The compiled kernels (the grucy package). An import failure is a test error, not a skip."""
    import grucy
    for name in ("gru_forward", "gru_backward", "gru_cell"):
        assert callable(getattr(grucy, name, None)), f"grucy.{name} is missing"
    return grucy


def _make_problem(T, B, I, H, dtype=np.float64, seed=0, h0=True, gain=1.5):
    """Random GRU inputs and parameters (all non-zero) with pre-activations of order one."""
    rng = np.random.default_rng(seed)
    dtype = np.dtype(dtype)

    def uniform(shape, bound):
        return rng.uniform(-bound, bound, size=shape).astype(dtype)

    return {
        "x": rng.standard_normal((T, B, I)).astype(dtype),
        "h0": uniform((B, H), 0.9) if h0 else None,
        "w_ih": uniform((3 * H, I), gain / np.sqrt(I)),
        "w_hh": uniform((3 * H, H), gain / np.sqrt(H)),
        "b_ih": uniform((3 * H,), 0.5),
        "b_hh": uniform((3 * H,), 0.5),
    }


def _make_cotangents(T, B, H, dtype=np.float64, seed=1):
    """Random (dout, dh_n): the weights of the scalar L = sum(out*dout) + sum(h_n*dh_n)."""
    rng = np.random.default_rng(seed)
    return (rng.standard_normal((T, B, H)).astype(dtype),
            rng.standard_normal((B, H)).astype(dtype))


def _assert_close(actual, desired, tol, name="", scale=None):
    """|actual - desired| <= tol * (scale + |desired|), element-wise, same shape.

    scale defaults to max|desired| (1 when that is 0): scaling by the array's largest
    magnitude keeps the test meaningful for gradients whose entries are sums of many terms
    with cancellation (weight gradients over T*B rows). Pass the terms' size instead when the
    array may be a single such cancellation.
    """
    assert actual is not None, f"{name}: got None"
    actual = np.asarray(actual)
    desired = np.asarray(desired)
    assert actual.shape == desired.shape, f"{name}: shape {actual.shape} != {desired.shape}"
    a = actual.astype(np.float64)
    d = desired.astype(np.float64)
    assert np.all(np.isfinite(a)), f"{name}: non-finite values"
    if scale is None:
        scale = float(np.max(np.abs(d), initial=0.0)) or 1.0
    err = np.abs(a - d)
    bound = tol * (scale + np.abs(d))
    if not np.all(err <= bound):
        worst = np.unravel_index(np.argmax(err - bound), err.shape)
        raise AssertionError(
            f"{name}: max |err| {err.max():.3e} (scale {scale:.3e}, tol {tol:.1e}); worst at "
            f"{worst}: actual {a[worst]!r} desired {d[worst]!r}")


def _numeric_grad(f, x, eps=1e-6):
    """d f() / d x by five-point central differences, for a scalar f() that reads x (float64):
    each element is moved in place and put back.

    (-f(+2e) + 8 f(+e) - 8 f(-e) + f(-2e)) / (12 e): truncation error O(e^4).
    """
    grad = np.zeros_like(x)
    for idx in np.ndindex(x.shape):
        old = x[idx]
        values = []
        for k in (2, 1, -1, -2):
            x[idx] = old + k * eps
            values.append(f())
        x[idx] = old
        f2, f1, fm1, fm2 = values
        grad[idx] = (-f2 + 8 * f1 - 8 * fm1 + fm2) / (12 * eps)
    return grad


def _fd_grad(loss, arrays, name, eps=1e-3):
    """_numeric_grad of loss(arrays) with respect to arrays[name] (moved on a copy)."""
    x = arrays[name].copy()
    return _numeric_grad(lambda: loss({**arrays, name: x}), x, eps)


@pytest.fixture
def make_problem():
    return _make_problem


@pytest.fixture
def make_cotangents():
    return _make_cotangents


@pytest.fixture
def assert_close():
    return _assert_close


@pytest.fixture
def fd_grad():
    return _fd_grad


@pytest.fixture
def numeric_grad():
    return _numeric_grad


@pytest.fixture
def tol():
    """tol[dtype]: the per-dtype relative tolerance used against a float64 truth."""
    return TOL


@pytest.fixture(params=["reference", "compiled"])
def kernels(request):
    """Each back end in turn: grucy.reference, then the compiled grucy kernels.

    Tests against independent truths (PyTorch, finite differences) run on both, so the
    reference that the compiled kernels are compared with is itself checked the same way.
    """
    if request.param == "reference":
        return request.getfixturevalue("ref")
    return request.getfixturevalue("gk")
