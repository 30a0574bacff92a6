"""Argument checks shared by the Python layers above the kernels.

The public functions of layers/models/losses/optim/io/interop, ops and kernels validate
their arguments before any work, most of them with these helpers (kernels.py and ops.py
add their own for arrays the compiled code reads in place), so a bad call fails with a
ValueError/TypeError that names the argument, the expected and the actual value -- never
deep inside numpy or the compiled code.
"""
import math
import numbers
import os
import sys

import numpy as np

FLOAT_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))

BLAS_INT_MAX = 2**31 - 1      # scipy-openblas32's sizes are C ints: a larger one wrapped round
                              #   and OpenBLAS returned out untouched (np.empty garbage)


def physical_memory():
    """The machine's memory in bytes, or None where the OS does not say (Windows has no
    sysconf)."""
    try:
        memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, ValueError, OSError):
        return None
    return memory if memory > 0 else None


def check_dtype(dtype, name="dtype"):
    """Return ``np.dtype(dtype)`` if it is float32 or float64, else raise TypeError."""
    try:
        dt = np.dtype(dtype)
    except TypeError:
        raise TypeError(f"{name} must be float32 or float64, got {dtype!r}") from None
    if dt not in FLOAT_DTYPES:
        raise TypeError(f"{name} must be float32 or float64, got {dt}")
    return dt


def check_int(value, name, minimum=None, maximum=None):
    """Return ``int(value)`` for a true integer in [minimum, maximum], else raise."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an int, got {type(value).__name__}")
    value = int(value)
    if minimum is not None and value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")
    if maximum is not None and value > maximum:
        raise ValueError(f"{name} must be <= {maximum}, got {value}")
    return value


def check_float(value, name, minimum=None, maximum=None, min_open=False, max_open=False,
                allow_inf=False):
    """Return ``float(value)`` for a real number within the given bounds, else raise.
    NaN is always refused; +-inf too unless ``allow_inf`` (the bounds still apply)."""
    # type(...) is float first: matmul checks alpha and beta on every call, and the ABC
    # isinstance plus np.isfinite on a scalar cost it ~1.8 us each (math.isfinite: 0.05 us)
    if type(value) is not float and (isinstance(value, (bool, np.bool_))
                                     or not isinstance(value, numbers.Real)):
        raise TypeError(f"{name} must be a real number, got {type(value).__name__}")
    try:
        value = float(value)
    except OverflowError:                  # such as the int 10**400
        # "must be finite" misled where inf is taken: the number is finite, only too large
        what = "is too large for a float" if allow_inf else "must be finite"
        raise ValueError(f"{name} {what}, got a number of type "
                         f"{type(value).__name__} beyond float's range") from None
    if not math.isfinite(value):
        if not allow_inf:
            raise ValueError(f"{name} must be finite, got {value}")
        if math.isnan(value):
            raise ValueError(f"{name} must not be NaN")
    if minimum is not None and (value < minimum or (min_open and value == minimum)):
        op = ">" if min_open else ">="
        raise ValueError(f"{name} must be {op} {minimum}, got {value}")
    if maximum is not None and (value > maximum or (max_open and value == maximum)):
        op = "<" if max_open else "<="
        raise ValueError(f"{name} must be {op} {maximum}, got {value}")
    return value


def check_bool(value, name):
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be a bool, got {type(value).__name__}")
    return bool(value)


def check_choice(value, name, choices):
    if not isinstance(value, str) or value not in choices:
        raise ValueError(f"{name} must be one of {sorted(choices)}, got {value!r}")
    return value


def check_path(path, name="path"):
    """Return ``path``, a str or os.PathLike, as a str, else raise TypeError. A NUL byte in
    it is a ValueError naming the argument: no file name can hold one, and Python's own
    refusal ("embedded null byte", from the first call that passes it to the OS) names
    nothing. A str whatever the path-like's own path (bytes, os.fsdecode'd): for one whose
    path was bytes, replacing raised "Can't mix strings and bytes in path components" (its
    temporary name is a str), and to_onnx, passing its checked path on to replacing, "path
    must be a str or os.PathLike, got bytes"."""
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"{name} must be a str or os.PathLike, got {type(path).__name__}")
    path = os.fspath(path)
    if ("\0" if isinstance(path, str) else b"\0") in path:
        raise ValueError(f"{name} {path!r} holds a NUL byte ('\\0'), which no file name can "
                         "contain")
    return os.fsdecode(path)


def refuse_masked(value, name):
    """Raise TypeError for a numpy masked array: np.asarray reads its data and drops its mask,
    so the values it hides were used without a word (a loss's masked target counted them,
    and a masked sum divided by every element). A plain ndarray costs one type test."""
    if type(value) is not np.ndarray and isinstance(value, np.ndarray):
        ma = sys.modules.get("numpy.ma")       # no masked array exists before it is imported
        if ma is not None and isinstance(value, ma.MaskedArray):
            raise TypeError(f"{name} is a numpy masked array, whose mask grucy would not see: "
                            "pass a plain array (.filled(value)), or to a loss the data with "
                            "mask=~its .mask (True where an element counts)")


def asarray(value, name, dtype=None):
    """np.asarray(value, dtype) whose conversion errors name the argument: numpy's own, for a
    ragged list ("inhomogeneous shape") or strings, and torch's, for a tensor that requires
    grad (a RuntimeError), name none. The one wording for every argument and layer (kernels,
    ops, the layers above them): callers pass no words of their own, so the same mistake
    reads the same wherever it is made. A masked array is refused (refuse_masked)."""
    refuse_masked(value, name)
    try:
        return np.asarray(value, dtype=dtype)
    except (ValueError, TypeError, RuntimeError) as e:
        raise ValueError(f"{name} must be an array or a rectangular nested list of numbers: "
                         f"{e}") from None


def narrowed(arr, dtype, name, hint=""):
    """Float array ``arr`` in ``dtype`` (itself when it is already), refusing finite values the
    cast would make +-inf: float64 -> float32 turns 1e300 into inf with only numpy's
    RuntimeWarning, and the inf then spread (a weight stored as inf, an optimizer step that
    left every weight NaN). NaN and inf themselves pass: they are the caller's, as given.
    ``hint`` ends the message."""
    dtype = np.dtype(dtype)
    if arr.dtype.itemsize <= dtype.itemsize:
        return arr.astype(dtype, copy=False)
    with np.errstate(over="ignore"):                 # checked below, naming the argument
        out = arr.astype(dtype)
    if np.isinf(out).any():                          # the full mask only when it matters
        lost = np.isinf(out) & np.isfinite(arr)
        if lost.any():
            raise ValueError(f"{name} has finite values beyond {dtype}'s range "
                             f"(e.g. {arr[lost].flat[0]}){hint}")
    return out


def c_aligned(arr):
    """arr as the compiled loops read it, C-contiguous and aligned: arr itself when it is one,
    else a copy. (np.ascontiguousarray alone keeps a misaligned array, from np.frombuffer or
    a memmap at an odd offset, as it is, and makes a 0-d array shape (1,).)"""
    flags = arr.flags                   # once: each .flags builds an object (optimizer steps)
    if not flags.aligned:
        return arr.copy()
    return arr if flags.c_contiguous else np.ascontiguousarray(arr)


def as_float_array(a, name, dtype=None, ndim=None, shape=None, contiguous=True):
    """Return ``a`` as a C-contiguous float array (no copy when already one).

    ``dtype`` None accepts float32/float64 as given; otherwise the array must
    already have that dtype (mixing dtypes is an error, not a silent cast).
    ``shape`` may contain None for "any size" in that axis. ``contiguous=False`` leaves the
    copy to the caller, for checks of its own first (a huge zero-strided view of the wrong
    shape must be refused, not copied). A masked array is refused (refuse_masked).
    """
    refuse_masked(a, name)
    if isinstance(a, np.generic) and a.dtype in FLOAT_DTYPES:
        a = np.asarray(a)            # np.float32(1.5) stays float32, as a 0-d array would
    if not isinstance(a, np.ndarray):
        if isinstance(a, (list, tuple, numbers.Real)) and not isinstance(a, (bool, str)):
            # read as numpy reads it first, then cast: a cast on reading turned None into NaN,
            # "1" into 1.0 and 1e300 into inf for float32, all without a word
            a = asarray(a, name)
            if a.dtype.kind not in "biuf":
                raise ValueError(f"{name} must be an array or a rectangular nested list of "
                                 f"numbers: numpy reads it as {a.dtype} (None, a string or a "
                                 "complex number in it?)")
            a = narrowed(a.astype(np.float64, copy=False),
                         dtype if dtype is not None else np.float64, name)
        else:
            raise TypeError(f"{name} must be a numpy array, got {type(a).__name__}")
    if a.dtype not in FLOAT_DTYPES:
        raise TypeError(f"{name} must have dtype float32 or float64, got {a.dtype}")
    if dtype is not None and a.dtype != np.dtype(dtype):
        raise TypeError(f"{name} must have dtype {np.dtype(dtype)}, got {a.dtype}")
    if ndim is not None and a.ndim != ndim:
        raise ValueError(f"{name} must be {ndim}-D, got shape {a.shape}")
    if shape is not None:
        want = tuple(shape)
        if a.ndim != len(want) or any(w is not None and w != s for w, s in zip(want, a.shape)):
            pretty = "(" + ", ".join("*" if w is None else str(w) for w in want) + ")"
            raise ValueError(f"{name} must have shape {pretty}, got {a.shape}")
    # not np.ascontiguousarray(a) unconditionally: it turns a 0-d array into shape (1,)
    return a if a.flags.c_contiguous or not contiguous else np.ascontiguousarray(a)


def check_lengths(lengths, batch, steps, name="lengths"):
    """Validate a (B,) integer array of sequence lengths in [0, T]; return it as int64."""
    if lengths is None:
        return None
    arr = asarray(lengths, name)
    if arr.size == 0 and not isinstance(lengths, np.ndarray):
        arr = arr.astype(np.int64)         # [] for B = 0: numpy reads an empty list as float64
    if arr.dtype == np.bool_ or not np.issubdtype(arr.dtype, np.integer):
        raise TypeError(f"{name} must be integers, got dtype {arr.dtype}")
    if arr.shape != (batch,):
        raise ValueError(f"{name} must have shape ({batch},), got {arr.shape}")
    if arr.size and (arr.min() < 0 or arr.max() > steps):
        raise ValueError(f"{name} must lie in [0, {steps}], got min {arr.min()} max {arr.max()}")
    return np.ascontiguousarray(arr, dtype=np.int64)


def check_rows(name, shape, rows, what, hint=""):
    """Refuse an argument of `rows` rows (``what``: how they follow from its shape) past the
    32-bit BLAS's ints, by name; ``hint`` ends the message. Callers check before copying: a
    zero-strided view of 2**40 rows is nothing as it is, terabytes as a copy."""
    if rows > BLAS_INT_MAX:
        raise ValueError(f"{name} has shape {shape}: {what} = {rows} rows, but grucy's BLAS "
                         f"takes up to {BLAS_INT_MAX} (32-bit ints){hint}")


def check_sizes(name, shape):
    """Refuse an array with an axis past the 32-bit BLAS's ints, by name: the GEMMs take each
    size as a C int, which would wrap. Before copying, as check_rows."""
    if max(shape) > BLAS_INT_MAX:
        raise ValueError(f"{name} has shape {shape}, but grucy's BLAS takes sizes up to "
                         f"{BLAS_INT_MAX} (32-bit ints)")


def make_rngs(seed, name="seed"):
    """Two independent generators (init, dropout) from one seed (None = fresh entropy)."""
    if seed is not None:
        seed = check_int(seed, name, minimum=0)
    init_ss, drop_ss = np.random.SeedSequence(seed).spawn(2)
    return np.random.default_rng(init_ss), np.random.default_rng(drop_ss)
