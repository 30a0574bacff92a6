"""Weight initialisers for GRU layers and linear heads.

A scheme says how each parameter kind is drawn:

    "pytorch"  every weight and bias ~ U(-1/sqrt(H), 1/sqrt(H))   (torch.nn.GRU / nn.Linear default;
               for a Linear head the bound uses its fan-in)
    "keras"    input weights Glorot-uniform, recurrent weights orthogonal per gate block,
               biases zero: the Keras GRU's defaults, but that Keras draws its recurrent
               weights as one orthogonal (H, 3H) matrix (see orthogonal)

or a dict overriding any of the keys ``weight_ih``, ``weight_hh``, ``bias`` (GRU) and
``weight``, ``bias`` (Linear) with one of

    "uniform"         U(-1/sqrt(fan), 1/sqrt(fan)) (fan = H for GRU tensors, in_features for Linear)
    "glorot_uniform"  U(-a, a), a = sqrt(6 / (fan_in + fan_out)), on the whole matrix
    "orthogonal"      an orthogonal matrix per gate block: (H, H) in weight_hh, (H, I) with
                      orthonormal columns or rows in weight_ih (the whole matrix for Linear)
    "zeros"           0
    a float           that constant

e.g. ``init={"weight_hh": "orthogonal", "bias": 1.0}`` starts from the pytorch scheme and
replaces those two; a ``"scheme"`` key picks the other base (``{"scheme": "keras",
"bias": 1.0}``).  A layer refuses a key it does not draw (``weight`` given to a GRU), which
it would otherwise ignore; a SequenceModel takes the keys of both and gives each layer its
own (``part``), so ``bias`` there sets both.  All draws come from a
``np.random.Generator``, so a seed fixes them.
"""
import math
import numbers
from collections.abc import Mapping

import numpy as np

from ._checks import check_dtype, check_float, check_int

__all__ = ["uniform", "glorot_uniform", "orthogonal", "constant", "resolve_scheme",
           "init_gru_parameters", "init_linear_parameters", "normalize", "part", "SCHEMES",
           "GRU_KEYS", "LINEAR_KEYS"]

SCHEMES = {
    "pytorch": {"weight_ih": "uniform", "weight_hh": "uniform", "bias": "uniform",
                "weight": "uniform"},
    "keras": {"weight_ih": "glorot_uniform", "weight_hh": "orthogonal", "bias": "zeros",
              "weight": "glorot_uniform"},
}
GRU_KEYS = ("weight_ih", "weight_hh", "bias")     # what a GRU layer draws
LINEAR_KEYS = ("weight", "bias")                  # what a Linear head draws
_KINDS = ("uniform", "glorot_uniform", "orthogonal", "zeros")
_MATRIX_KINDS = ("glorot_uniform", "orthogonal")        # weights only


def _check_rng(rng):
    if not isinstance(rng, np.random.Generator):
        raise TypeError(f"rng must be a numpy.random.Generator, got {type(rng).__name__}")


def _check_shape(shape, ndim=None):
    if not isinstance(shape, tuple) or not all(isinstance(s, numbers.Integral) and s >= 0 for s in shape):
        raise TypeError(f"shape must be a tuple of non-negative ints, got {shape!r}")
    if ndim is not None and len(shape) != ndim:
        raise ValueError(f"shape must have {ndim} dimensions, got {shape!r}")


def _fits(value, name, dtype):
    """``value`` if ``dtype`` holds it, else a ValueError naming it: a float64 -> float32
    cast turns 1e39 into inf with only numpy's RuntimeWarning, and the weights so drawn
    made every output inf or NaN (as grucy._checks.narrowed refuses for arrays)."""
    with np.errstate(over="ignore"):
        if np.isinf(np.asarray(value, dtype=dtype)):
            raise ValueError(f"{name} must be within {np.dtype(dtype)}'s range "
                             f"(+-{np.finfo(dtype).max:.4g}), got {value}")
    return value


def uniform(rng, shape, bound, dtype=np.float32):
    """Array of ``shape`` drawn from U(-bound, bound) with ``rng`` (a np.random.Generator)."""
    _check_rng(rng)
    _check_shape(shape)
    dtype = check_dtype(dtype)
    # numpy draws -bound + 2·bound·u in float64: 2·bound must be finite
    bound = _fits(check_float(bound, "bound", 0.0, np.finfo(np.float64).max / 2), "bound", dtype)
    return rng.uniform(-bound, bound, size=shape).astype(dtype)


def glorot_uniform(rng, shape, dtype=np.float32):
    """Glorot/Xavier uniform for a weight matrix ``shape`` = (fan_out, fan_in).

    U(-a, a) with a = sqrt(6 / (fan_in + fan_out)); for a GRU's w_ih (3H, I) this is
    Keras' glorot_uniform on its (I, 3H) kernel.
    """
    _check_rng(rng)
    _check_shape(shape, ndim=2)
    dtype = check_dtype(dtype)
    fan_out, fan_in = shape
    limit = math.sqrt(6.0 / max(1, fan_in + fan_out))
    return rng.uniform(-limit, limit, size=shape).astype(dtype)


def orthogonal(rng, shape, blocks=1, gain=1.0, dtype=np.float32):
    """Orthogonal init of a (blocks*n, m) matrix, one independent orthogonal block per row block.

    For a GRU's w_hh (3H, H) use ``blocks=3``: each gate's (H, H) block is orthogonal, so
    every gate's recurrence starts norm-preserving.  (Keras' Orthogonal on its whole (H, 3H)
    recurrent kernel only makes the rows of the concatenation orthonormal, not each block:
    the "keras" scheme is Keras' distribution family, not its exact draw.)  Non-square blocks get
    orthonormal rows or columns, whichever is smaller.  QR of a Gaussian matrix with the
    sign of R's diagonal folded in, so the result is Haar-distributed.
    """
    _check_rng(rng)
    _check_shape(shape, ndim=2)
    if not isinstance(blocks, numbers.Integral) or blocks < 1 or shape[0] % blocks:
        raise ValueError(f"blocks must be a positive int dividing shape[0]={shape[0]}, got {blocks!r}")
    dtype = check_dtype(dtype)
    gain = _fits(check_float(gain, "gain"), "gain", dtype)      # the entries are in [-1, 1]
    rows = shape[0] // blocks
    cols = shape[1]
    out = np.empty(shape, dtype=np.float64)
    for k in range(blocks):
        a = rng.standard_normal((max(rows, cols), min(rows, cols)))
        q, r = np.linalg.qr(a)
        q *= np.sign(np.where(np.diag(r) == 0, 1.0, np.diag(r)))
        out[k * rows:(k + 1) * rows] = q if rows >= cols else q.T
    return (gain * out).astype(dtype)


def constant(shape, value, dtype=np.float32):
    """Array of ``shape`` filled with ``value`` (a finite real number)."""
    _check_shape(shape)
    dtype = check_dtype(dtype)
    return np.full(shape, _fits(check_float(value, "value"), "value", dtype), dtype=dtype)


def resolve_scheme(init, keys=None):
    """Turn ``init`` (a scheme name or an override dict) into a full dict of kinds.

    ``keys``: the parameter kinds the caller draws (GRU_KEYS or LINEAR_KEYS); None for
    all of them (a SequenceModel's dict). Raises ValueError naming ``init`` for an unknown
    scheme, kind, or key (one outside ``keys`` included: it would be ignored).
    """
    if isinstance(init, str):
        if init not in SCHEMES:
            raise ValueError(f"init must be one of {sorted(SCHEMES)} or a dict, got {init!r}")
        return dict(SCHEMES[init])
    if isinstance(init, Mapping):  # a dict, or e.g. an OmegaConf DictConfig from Hydra
        scheme = init.get("scheme", "pytorch")
        if not isinstance(scheme, str) or scheme not in SCHEMES:   # (a list is unhashable)
            raise ValueError(f"init['scheme'] must be one of {sorted(SCHEMES)}, got {scheme!r}")
        base = dict(SCHEMES[scheme])
        allowed = sorted(keys or base) + ["scheme"]
        for key, kind in init.items():
            if key == "scheme":
                continue
            if key not in base:
                raise ValueError(f"init has unknown key {key!r}; allowed: {allowed}")
            if key not in allowed:
                # a GRU given {"weight": 0.5} drew its weights as if it were not there
                owner = "a Linear head's" if key in LINEAR_KEYS else "a GRU layer's"
                raise ValueError(f"init[{key!r}] is {owner} parameter, which this layer does not "
                                 f"have (a SequenceModel takes both layers' keys); allowed: {allowed}")
            if isinstance(kind, numbers.Real) and not isinstance(kind, (bool, np.bool_)):
                kind = check_float(kind, f"init[{key!r}]")   # 10**400: named, not OverflowError
            elif not (isinstance(kind, str) and kind in _KINDS):
                raise ValueError(f"init[{key!r}] must be one of {list(_KINDS)} or a finite number, "
                                 f"got {kind!r}")
            if key == "bias" and kind in _MATRIX_KINDS:
                # a bias is a vector: the draw failed later with "shape must have 2
                # dimensions, got (9,)", naming neither init nor bias
                raise ValueError(f"init['bias'] must be 'uniform', 'zeros' or a finite number "
                                 f"(a bias is a vector), got {kind!r}")
            base[key] = float(kind) if isinstance(kind, numbers.Real) else kind
        return base
    raise TypeError(f"init must be a str or dict, got {type(init).__name__}")


def normalize(init, keys=None):
    """Validate ``init`` (see resolve_scheme) and return it as a str or a plain (JSON-able) dict."""
    resolve_scheme(init, keys)
    if isinstance(init, str):
        return init
    # numbers as Python floats: an np.float32 or np.int64 constant is no JSON, so grucy.save
    # of the model failed inside json.dumps
    return {str(k): float(v) if isinstance(v, numbers.Real) else v for k, v in init.items()}


def part(init, keys):
    """The part of a normalised ``init`` that a layer drawing ``keys`` takes: a scheme name
    whole, a dict's ``scheme`` and those keys."""
    if isinstance(init, str):
        return init
    return {k: v for k, v in init.items() if k == "scheme" or k in keys}


def _draw(key, kind, rng, shape, fan, dtype, blocks=1):
    """Parameter ``key``'s array drawn as ``kind`` says (resolve_scheme's values)."""
    if isinstance(kind, float):
        return np.full(shape, _fits(kind, f"init[{key!r}]", dtype), dtype=dtype)
    if kind == "uniform":
        return uniform(rng, shape, 1.0 / math.sqrt(fan) if fan > 0 else 0.0, dtype)
    if kind == "glorot_uniform":
        return glorot_uniform(rng, shape, dtype)
    if kind == "orthogonal":
        return orthogonal(rng, shape, blocks=blocks, dtype=dtype)
    if kind == "zeros":
        return np.zeros(shape, dtype=dtype)
    raise ValueError(f"unknown init kind {kind!r}")


def init_gru_parameters(rng, input_size, hidden_size, init="pytorch", dtype=np.float32):
    """Draw one GRU direction's ``(w_ih (3H, I), w_hh (3H, H), b_ih (3H,), b_hh (3H,))``.

    Draw order is fixed (w_ih, w_hh, b_ih, b_hh) so a seed reproduces the same weights.
    """
    scheme = resolve_scheme(init, GRU_KEYS)
    input_size = check_int(input_size, "input_size", 1)
    H = check_int(hidden_size, "hidden_size", 1)
    w_ih = _draw("weight_ih", scheme["weight_ih"], rng, (3 * H, input_size), H, dtype, blocks=3)
    w_hh = _draw("weight_hh", scheme["weight_hh"], rng, (3 * H, H), H, dtype, blocks=3)
    b_ih = _draw("bias", scheme["bias"], rng, (3 * H,), H, dtype)
    b_hh = _draw("bias", scheme["bias"], rng, (3 * H,), H, dtype)
    return w_ih, w_hh, b_ih, b_hh


def init_linear_parameters(rng, in_features, out_features, init="pytorch", dtype=np.float32):
    """Draw a linear head's ``(weight (O, I), bias (O,))``; 'uniform' uses fan-in I (torch.nn.Linear)."""
    scheme = resolve_scheme(init, LINEAR_KEYS)
    in_features = check_int(in_features, "in_features", 1)
    out_features = check_int(out_features, "out_features", 1)
    weight = _draw("weight", scheme["weight"], rng, (out_features, in_features), in_features,
                   dtype)
    bias = _draw("bias", scheme["bias"], rng, (out_features,), in_features, dtype)
    return weight, bias
