"""Optimizers, gradient clipping and learning-rate schedules, with torch.optim's update rules.

An optimizer holds ``params``, a dict ``{name: array}`` (e.g. ``model.parameters()``), and
updates those arrays in place from ``step(grads)`` with the same names.  ``state_dict()``
returns ``{"type", "hyperparams", "step", "state": {name: {buffer: array}}}``;
``load_state_dict`` restores it so training resumes exactly.  Schedulers change
``optimizer.lr`` and have JSON-able state dicts.

Update rules (g = gradient, p = parameter, t = the parameter's own step count from 1, as
torch counts it: a step whose gradient is None does not advance it), exactly torch's:

    SGD:     g += wd p;  b = mu b + (1 - dampening) g  (b = g at t=1);  g = g + mu b if nesterov
             else b;  p -= lr g
    Adam:    g += wd p;  m = b1 m + (1-b1) g;  v = b2 v + (1-b2) g^2;
             (amsgrad: w = max(w, v), and w replaces v below)
             p -= lr/(1-b1^t) * m / (sqrt(v)/sqrt(1-b2^t) + eps)
    AdamW:   p *= 1 - lr wd, then Adam without the g += wd p
    RMSprop: g += wd p;  v = a v + (1-a) g^2;  (centered: mg = a mg + (1-a) g,
             v~ = max(v - mg^2, 0))  d = sqrt(v~) + eps;  momentum: b = mu b + g/d, p -= lr b;
             else p -= lr g/d

One deliberate difference: centered RMSprop's max(., 0). v >= mg^2 in exact arithmetic, but
rounding can leave v - mg^2 slightly negative (a constant gradient does, within a few dozen
steps), as can a loaded state, and torch's sqrt of it is NaN, which then spreads to the
parameter; grucy takes it as the 0 it is in exact arithmetic. Wherever torch's result is a
number, the rule is torch's.

Each step updates a parameter in one compiled pass (grucy/_optim.pyx) that gives the bits
of the numpy formulas in grucy.reference (adam_update, sgd_update, rmsprop_update): as
numpy operations an update was five to twelve calls per parameter, most of a small
model's optimizer step (benchmarks/optim.py).
"""
import bisect
import itertools
import math
import numbers
from collections.abc import Mapping, Set as AbstractSet

import numpy as np

from . import _optim
from ._checks import (FLOAT_DTYPES, asarray, c_aligned, check_bool, check_choice, check_float,
                      check_int, narrowed, refuse_masked)

__all__ = ["Optimizer", "SGD", "Adam", "AdamW", "RMSprop", "clip_grad_norm", "clip_grad_value",
           "StepLR", "CosineAnnealingLR", "LinearLR", "ReduceLROnPlateau", "SequentialLR",
           "OPTIMIZERS"]


def _as_param_dict(params):
    if hasattr(params, "parameters") and callable(params.parameters):
        params = params.parameters()
    if not isinstance(params, dict) or not params:
        raise TypeError("params must be a non-empty dict {name: array} or a model with .parameters()")
    for name, p in params.items():
        if not isinstance(name, str):
            raise TypeError(f"params keys must be str, got {name!r}")
        if not isinstance(p, np.ndarray) or p.dtype not in (np.float32, np.float64):
            raise TypeError(f"params[{name!r}] must be a float32/float64 numpy array")
        # the steps write through its data: the masked values would be updated all the same
        refuse_masked(p, f"params[{name!r}]")
        if not p.flags.writeable:
            raise ValueError(f"params[{name!r}] must be writeable (it is updated in place)")
    # two names on one memory would be updated twice per step (torch warns about this)
    items = list(params.items())
    for i, (name, p) in enumerate(items):
        for other, q in items[:i]:
            if np.shares_memory(p, q):
                raise ValueError(f"params[{name!r}] shares memory with params[{other!r}]; "
                                 "each array must be listed once")
    return dict(params)


def _flat(a):
    """a's elements in C order as a flat, aligned array (the compiled passes load them through
    typed pointers): a view when a is C-contiguous and aligned (c_aligned)."""
    return c_aligned(a).reshape(-1)


def _in_place(p, update, *args):
    """update(flat p, *args), one compiled pass (grucy/_optim.pyx, which numbers the steps;
    grucy.reference has the numpy formulas, whose bits it gives), through a flat view of p,
    or of a C-ordered, aligned copy written back when p has none (a strided view; an array
    from np.frombuffer at an odd offset). The optimizer's own buffers are always C-ordered
    and aligned, so theirs are views."""
    flags = p.flags
    if flags.c_contiguous and flags.aligned:
        update(p.reshape(-1), *args)
        return
    flat = _flat(p)
    update(flat, *args)
    p[...] = flat.reshape(p.shape)


class Optimizer:
    """Base class: subclasses define ``_defaults`` (hyper-parameter names, also the constructor's
    keyword arguments), ``_buffers`` (per-parameter state names) and ``_update(p, g, state)``."""

    _buffers = ()
    _nonnegative = ()             # buffers that are running means of squares

    def __init__(self, params, lr):
        self.params = _as_param_dict(params)
        self.lr = check_float(lr, "lr", 0.0)
        self.step_count = 0
        self.state = {name: {} for name in self.params}

    def _check_grads(self, grads):
        """grads checked, as ``{name: gradient in its parameter's dtype}`` (None skipped): all
        of them before any is used, so that a refused step changes nothing."""
        if not isinstance(grads, dict):
            raise TypeError(f"grads must be a dict {{name: array}}, got {type(grads).__name__}")
        unknown = sorted(set(grads) - set(self.params), key=repr)   # keys need not be str
        if unknown:
            raise ValueError(f"grads has names not in params: {unknown}")
        for name, g in grads.items():
            if g is None:
                continue
            if type(g) is not np.ndarray:       # a plain array, the usual case, costs one test
                if not isinstance(g, np.ndarray):
                    raise TypeError(f"grads[{name!r}] must be a numpy array, got {type(g).__name__}")
                # a subclass: a masked array's data was read without its mask, and the
                # values it hides moved the weights
                refuse_masked(g, f"grads[{name!r}]")
            if g.dtype not in FLOAT_DTYPES:     # dtypes: `in (np.float32, ...)` is slower
                raise TypeError(f"grads[{name!r}] must have dtype float32 or float64, got {g.dtype}")
            if g.shape != self.params[name].shape:
                raise ValueError(f"grads[{name!r}] must have shape {self.params[name].shape}, got {g.shape}")
            if not self.params[name].flags.writeable:
                # made read-only since the optimizer took it: the compiled step would refuse
                # it mid-step ("buffer source array is read-only"), earlier names updated
                raise ValueError(f"params[{name!r}] must be writeable (it is updated in place)")
        # a float64 gradient of a float32 parameter: 1e300 became inf, and the step left the
        # parameter NaN with only numpy's RuntimeWarning (set_parameters refuses the same).
        # The usual case, one dtype, skips narrowed and its messages: built for every
        # gradient of every step, they took longer than a small model's Adam update.
        # (a gradient overlapping its parameter is copied in the compiled pass, _optim)
        return {name: g if g.dtype == self.params[name].dtype else
                narrowed(g, self.params[name].dtype, f"grads[{name!r}]",
                         f"; params[{name!r}] is {self.params[name].dtype}")
                for name, g in grads.items() if g is not None}

    def step(self, grads):
        """Update every parameter that has a gradient in ``grads``.

        ``grads`` is ``{name: array of that parameter's shape, or None to skip it}``; names are a
        subset of ``params``. A float64 gradient of a float32 parameter with finite values
        beyond float32's range is refused (a ValueError naming it), and a numpy masked array
        (a TypeError: its data would be read without its mask), before anything changes.
        """
        grads = self._check_grads(grads)
        self.step_count += 1
        for name, g in grads.items():
            self._update(self.params[name], g, self.state[name])

    def hyperparams(self):
        """The current hyper-parameters as a JSON-able dict (lr included)."""
        return {"lr": self.lr, **{k: getattr(self, k) for k in self._defaults}}

    def state_dict(self):
        """``{"type", "hyperparams", "step", "state": {name: {buffer: array copy}}}`` (Adam's
        per-parameter ``"step"`` buffer is an int)."""
        return {"type": type(self).__name__, "hyperparams": self.hyperparams(),
                "step": self.step_count,
                "state": {n: {k: (v.copy() if isinstance(v, np.ndarray) else v) for k, v in s.items()}
                          for n, s in self.state.items()}}

    def load_state_dict(self, state):
        """Restore a :meth:`state_dict` (same optimizer type, same parameter names and shapes)."""
        if not isinstance(state, dict) or not {"type", "hyperparams", "step", "state"} <= set(state):
            raise ValueError("state must be a dict from Optimizer.state_dict() "
                             "(keys type, hyperparams, step, state)")
        # a misspelt or foreign key would be ignored, its value silently not restored
        unknown = sorted(set(state) - {"type", "hyperparams", "step", "state"}, key=repr)
        if unknown:
            raise ValueError(f"state has unknown keys {unknown}; expected type, hyperparams, "
                             "step, state")
        if state["type"] != type(self).__name__:
            raise ValueError(f"state is for a {state['type']} optimizer, not {type(self).__name__}")
        if not isinstance(state["state"], dict):
            raise ValueError("state['state'] must be a dict {name: {buffer: array}}, got "
                             f"{type(state['state']).__name__}")
        if set(state["state"]) != set(self.params):
            missing = sorted(set(self.params) - set(state["state"]))
            extra = sorted(set(state["state"]) - set(self.params), key=repr)
            raise ValueError(f"state does not match params: missing {missing}, unexpected {extra}")
        new_state = {}
        for name, bufs in state["state"].items():
            p = self.params[name]
            if not isinstance(bufs, dict):
                raise ValueError(f"state['state'][{name!r}] must be a dict of buffers, got {type(bufs).__name__}")
            new_state[name] = {}
            for k, v in bufs.items():
                if k not in self._buffers:
                    raise ValueError(f"state['state'][{name!r}] has unknown buffer {k!r}")
                arr = asarray(v, f"state['state'][{name!r}][{k!r}]")
                if k == "step":  # a per-parameter count, not an array like the parameter
                    if arr.shape != () or not np.issubdtype(arr.dtype, np.integer) or arr < 0:
                        # an array described, not printed: numpy's repr of a 0-d void of a GiB
                        # is 4 GiB of text (it crashed where memory ran short)
                        got = (f"an array of dtype {arr.dtype} and shape {arr.shape}"
                               if isinstance(v, np.ndarray) else f"{v!r:.80}")
                        raise ValueError(f"state['state'][{name!r}]['step'] must be an int >= 0, "
                                         f"got {got}")
                    new_state[name][k] = int(arr)
                    continue
                if not (np.issubdtype(arr.dtype, np.floating) or np.issubdtype(arr.dtype, np.integer)):
                    raise TypeError(f"state['state'][{name!r}][{k!r}] must be a float array, got dtype {arr.dtype}")
                if arr.shape != p.shape:
                    raise ValueError(f"state['state'][{name!r}][{k!r}] must have shape {p.shape}, got {arr.shape}")
                buf = arr.astype(p.dtype, order="C", copy=True)   # steps use flat views
                # a step never makes these (a tampered or damaged state did: the next step's
                # square root of a negative second moment turned every weight NaN)
                if not np.isfinite(buf).all():
                    raise ValueError(f"state['state'][{name!r}][{k!r}] must be finite")
                if k in self._nonnegative and (buf < 0).any():
                    raise ValueError(f"state['state'][{name!r}][{k!r}] is a running mean of "
                                     f"squares and must be >= 0, got {float(buf.min())!r}")
                new_state[name][k] = buf
        step = check_int(state["step"], "step", 0)
        if not isinstance(state["hyperparams"], dict) or "lr" not in state["hyperparams"]:
            raise ValueError("state['hyperparams'] must be a dict with at least 'lr'")
        hp = dict(state["hyperparams"])
        unknown = sorted(set(hp) - {"lr", *self._defaults}, key=repr)
        if unknown:
            raise ValueError(f"state['hyperparams'] has unknown keys {unknown}")
        # the constructor's checks validate every restored value, each by name
        fresh = type(self)(self.params, **hp)
        for name, bufs in new_state.items():
            # a parameter that has stepped needs all of them: _update would raise KeyError
            missing = [k for k in fresh._required() if bufs and k not in bufs]
            if missing:
                raise ValueError(f"state['state'][{name!r}] is missing buffers {missing}")
        self.lr = fresh.lr
        for k in self._defaults:
            setattr(self, k, getattr(fresh, k))
        if "step" in self._buffers:
            for bufs in new_state.values():  # state from before per-parameter counts: all stepped
                if bufs and "step" not in bufs:
                    bufs["step"] = step
        self.step_count = step
        self.state = new_state

    def _required(self):
        """The buffers every parameter's state holds once it has stepped (with these
        hyper-parameters)."""
        return ()

    def __repr__(self):
        return f"{type(self).__name__}({', '.join(f'{k}={v!r}' for k, v in self.hyperparams().items())})"


class SGD(Optimizer):
    """Stochastic gradient descent with optional (Nesterov) momentum and L2 weight decay.

    params: {name: array}; lr >= 0 (default 1e-3, torch's since 2.x); momentum >= 0; dampening;
    nesterov needs momentum > 0 and dampening 0 (as torch); weight_decay >= 0.
    """

    _defaults = ("momentum", "dampening", "nesterov", "weight_decay")
    _buffers = ("momentum_buffer",)

    def __init__(self, params, lr=1e-3, momentum=0.0, dampening=0.0, nesterov=False, weight_decay=0.0):
        super().__init__(params, lr)
        self.momentum = check_float(momentum, "momentum", 0.0)
        self.dampening = check_float(dampening, "dampening")
        self.nesterov = check_bool(nesterov, "nesterov")
        self.weight_decay = check_float(weight_decay, "weight_decay", 0.0)
        if self.nesterov and (self.momentum <= 0 or self.dampening != 0):
            raise ValueError("nesterov requires momentum > 0 and dampening = 0")

    def _update(self, p, g, state):
        first = bool(self.momentum) and "momentum_buffer" not in state
        if first:
            state["momentum_buffer"] = np.empty(p.shape, p.dtype)     # set to g by the step
        buf = state.get("momentum_buffer") if self.momentum else None
        _in_place(p, _optim.sgd_update, _flat(g), None if buf is None else buf.reshape(-1),
                  self.lr, self.momentum, self.dampening, self.nesterov, self.weight_decay, first)


class Adam(Optimizer):
    """Adam (Kingma & Ba) with torch's bias correction; weight_decay is L2 added to g.

    params: {name: array}; lr; betas (b1, b2) in [0, 1); eps > 0; weight_decay >= 0;
    amsgrad: divide by the running maximum of v instead of v (Reddi et al., torch's
    ``amsgrad=True``; its buffer ``max_exp_avg_sq`` is state like the others).
    """

    _defaults = ("betas", "eps", "weight_decay", "amsgrad")
    _buffers = ("exp_avg", "exp_avg_sq", "max_exp_avg_sq", "step")
    _nonnegative = ("exp_avg_sq", "max_exp_avg_sq")
    _decoupled = False

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0,
                 amsgrad=False):
        super().__init__(params, lr)
        # any length-2 sequence (tuple, list, an OmegaConf ListConfig from a Hydra config)
        # a set or dict has a length but no order (indexing one failed, naming nothing)
        if (isinstance(betas, (str, bytes, AbstractSet, Mapping)) or not hasattr(betas, "__len__")
                or len(betas) != 2):
            raise TypeError(f"betas must be a pair (beta1, beta2), got {betas!r}")
        self.betas = (check_float(betas[0], "betas[0]", 0.0, 1.0, max_open=True),
                      check_float(betas[1], "betas[1]", 0.0, 1.0, max_open=True))
        # eps > 0, as documented: eps = 0 makes a zero gradient's step 0 / 0 = NaN
        self.eps = check_float(eps, "eps", 0.0, min_open=True)
        self.weight_decay = check_float(weight_decay, "weight_decay", 0.0)
        self.amsgrad = check_bool(amsgrad, "amsgrad")

    def _required(self):
        return ("exp_avg", "exp_avg_sq") + (("max_exp_avg_sq",) if self.amsgrad else ())

    def load_state_dict(self, state):
        """Restore a :meth:`state_dict`, as :meth:`Optimizer.load_state_dict`. An optimizer
        built with ``amsgrad=True`` refuses a plain Adam state (``amsgrad`` False, or absent
        as in states from before AMSGrad and in checkpoints, which store only True): it has
        no maximum to continue from, and loading it would quietly turn AMSGrad off (torch
        does that; the state's hyper-parameters win)."""
        hp = state.get("hyperparams") if isinstance(state, dict) else None
        # another optimizer's state (SGD's has no amsgrad either) is the type check's to name,
        # and a value that is no bool the constructor's; numpy's False is one (check_bool)
        ams = hp.get("amsgrad", False) if isinstance(hp, dict) else None
        if (self.amsgrad and isinstance(ams, (bool, np.bool_)) and not ams
                and state.get("type") == type(self).__name__):
            raise ValueError(f"state['hyperparams'] has amsgrad {hp.get('amsgrad', 'absent')}: "
                             f"the state is plain {type(self).__name__}'s, with no "
                             "max_exp_avg_sq to continue; load it into an optimizer built "
                             "with amsgrad=False")
        super().load_state_dict(state)

    def _update(self, p, g, state):
        b1, b2 = self.betas
        if "exp_avg" not in state:
            state["exp_avg"] = np.zeros(p.shape, p.dtype)      # C order: flat views below
            state["exp_avg_sq"] = np.zeros(p.shape, p.dtype)
            if self.amsgrad:
                state["max_exp_avg_sq"] = np.zeros(p.shape, p.dtype)
            state["step"] = 0
        state["step"] += 1
        t = state["step"]
        decay = self.weight_decay if not self._decoupled else 0.0
        shrink = 1.0 - self.lr * self.weight_decay if self._decoupled else 1.0
        _in_place(p, _optim.adam_update, _flat(g), state["exp_avg"].reshape(-1),
                  state["exp_avg_sq"].reshape(-1), b1, b2, self.lr / (1.0 - b1 ** t),
                  math.sqrt(1.0 - b2 ** t), self.eps, decay, shrink,
                  state["max_exp_avg_sq"].reshape(-1) if self.amsgrad else None)


class AdamW(Adam):
    """Adam with decoupled weight decay (Loshchilov & Hutter): p *= 1 - lr*wd before the Adam step."""

    _decoupled = True

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2,
                 amsgrad=False):
        super().__init__(params, lr, betas, eps, weight_decay, amsgrad)


class RMSprop(Optimizer):
    """RMSprop as torch.optim.RMSprop: alpha smoothing, eps outside the sqrt, optional momentum,
    centered variant and L2 weight decay.

    params: {name: array}; lr >= 0; alpha in [0, 1]; eps > 0; weight_decay >= 0; momentum >= 0.
    """

    _defaults = ("alpha", "eps", "weight_decay", "momentum", "centered")
    _buffers = ("square_avg", "momentum_buffer", "grad_avg")
    _nonnegative = ("square_avg",)

    def __init__(self, params, lr=1e-2, alpha=0.99, eps=1e-8, weight_decay=0.0, momentum=0.0,
                 centered=False):
        super().__init__(params, lr)
        # alpha > 1 drives square_avg negative (its sqrt NaN); eps = 0 divides 0 by 0
        self.alpha = check_float(alpha, "alpha", 0.0, 1.0)
        self.eps = check_float(eps, "eps", 0.0, min_open=True)
        self.weight_decay = check_float(weight_decay, "weight_decay", 0.0)
        self.momentum = check_float(momentum, "momentum", 0.0)
        self.centered = check_bool(centered, "centered")

    def _required(self):
        return (("square_avg",) + (("momentum_buffer",) if self.momentum > 0 else ())
                + (("grad_avg",) if self.centered else ()))

    def _update(self, p, g, state):
        if "square_avg" not in state:
            state["square_avg"] = np.zeros(p.shape, p.dtype)     # C order: flat views
            if self.momentum > 0:
                state["momentum_buffer"] = np.zeros(p.shape, p.dtype)
            if self.centered:
                state["grad_avg"] = np.zeros(p.shape, p.dtype)
        ga, buf = state.get("grad_avg"), state.get("momentum_buffer")
        _in_place(p, _optim.rmsprop_update, _flat(g), state["square_avg"].reshape(-1),
                  ga.reshape(-1) if self.centered else None,
                  buf.reshape(-1) if self.momentum > 0 else None,
                  self.lr, self.alpha, self.eps, self.weight_decay, self.momentum)


OPTIMIZERS = {"sgd": SGD, "adam": Adam, "adamw": AdamW, "rmsprop": RMSprop}


def _clipped_arrays(grads, how):
    """The arrays of ``grads`` ({name: array or None}), checked: float, writeable (``how``
    says what is done to them in place)."""
    if not isinstance(grads, dict):
        raise TypeError(f"grads must be a dict {{name: array}}, got {type(grads).__name__}")
    for name, g in grads.items():
        if g is not None and not (isinstance(g, np.ndarray) and g.dtype in (np.float32, np.float64)):
            raise TypeError(f"grads[{name!r}] must be a float32/float64 numpy array, got "
                            f"{getattr(g, 'dtype', type(g).__name__)}")
        if g is not None and type(g) is not np.ndarray:
            # clip_grad_norm's sums of one left its masked values out of the norm, and
            # unscaled; the step then read them
            refuse_masked(g, f"grads[{name!r}]")
        if g is not None and not g.flags.writeable:   # numpy's own error names nothing
            raise ValueError(f"grads[{name!r}] must be writeable (it is {how} in place)")
    return [g for g in grads.values() if g is not None]


def clip_grad_norm(grads, max_norm, norm_type=2.0):
    """Scale ``grads`` ({name: array}, in place) so their global norm is at most ``max_norm``.

    Returns the total norm before clipping (a float), as torch.nn.utils.clip_grad_norm_:
    the scale is min(1, max_norm / (total + 1e-6)), so ``max_norm`` = inf returns the norm
    and leaves finite gradients as they are.  ``norm_type`` is p >= 1 (the p-norm of
    all elements together, (sum |g|^p)^(1/p) summed in float64: for float64 gradients it
    overflows to inf where torch's does; for float32 ones torch's float32 |g|^p overflows
    (norm inf) or underflows (norm 0) at a large p, |g| = 3 at p = 100, where this gives
    the norm) or ``inf`` (the largest |g|); a string is read as torch reads it, with
    float() (``"inf"``, ``"2"``).
    As torch's, a NaN in any gradient makes the norm NaN and every gradient NaN, and an inf
    (norm inf, scale 0) leaves NaN where it was and zeros elsewhere (every gradient NaN
    at ``max_norm`` = inf, whose scale is inf / inf).
    """
    max_norm = check_float(max_norm, "max_norm", 0.0, allow_inf=True)
    if isinstance(norm_type, str):         # torch's float(norm_type): "inf" is its example
        try:
            norm_type = float(norm_type)
        except ValueError:
            raise ValueError(f"norm_type must be a number >= 1 or inf (or a string float() "
                             f"reads as one, such as 'inf'), got {norm_type!r}") from None
    if isinstance(norm_type, (bool, np.bool_)) or not isinstance(norm_type, numbers.Real):
        raise TypeError(f"norm_type must be a real number >= 1 or inf, got {type(norm_type).__name__}")
    try:
        p = float(norm_type)
    except OverflowError:                  # the int 10**400: no float, and no use as a p
        raise ValueError("norm_type must be >= 1 or inf, got an int beyond float's range") from None
    if not p >= 1.0:                       # NaN too; p < 1 is no norm (torch computes one)
        raise ValueError(f"norm_type must be >= 1 (a p-norm) or inf, got {norm_type!r}")
    arrays = _clipped_arrays(grads, "scaled")
    if not arrays:
        return 0.0
    # a sum of |g|^p beyond float64 is inf, as torch's: the documented result, for every p
    # (p = 1 and 2 gave numpy's overflow RuntimeWarning with it, other p none)
    with np.errstate(over="ignore"):
        if p == math.inf:
            # np.max, not max(): Python's max keeps whichever of NaN and a number comes first
            total = float(np.max([np.abs(g).max() if g.size else 0.0 for g in arrays]))
        elif p == 2.0:
            total = math.sqrt(sum(float(np.square(g, dtype=np.float64).sum()) for g in arrays))
        elif p == 1.0:
            total = sum(float(np.abs(g).sum(dtype=np.float64)) for g in arrays)
        else:
            total = sum(float((np.abs(g, dtype=np.float64) ** p).sum()) for g in arrays) ** (1.0 / p)
    coef = max_norm / (total + 1e-6)
    if not coef >= 1.0:          # NaN too (min(1.0, nan) is 1.0: the NaN would pass unseen)
        with np.errstate(invalid="ignore"):              # inf * 0: documented above
            for g in arrays:
                g *= g.dtype.type(coef)
    return total


def clip_grad_value(grads, clip_value):
    """Clamp every element of ``grads`` ({name: array or None}, in place) to
    [-clip_value, clip_value], as torch.nn.utils.clip_grad_value_: an inf becomes
    +-clip_value and a NaN stays NaN (torch's clamp keeps it).

    ``clip_value`` >= 0 (torch takes a negative one and sets every element to it), rounded
    to each gradient's dtype as torch rounds it; beyond float32's range it leaves float32
    gradients as they are (torch refuses it for them), and ``inf`` leaves every gradient
    as it is, as torch's. NaN is refused. Returns None, as torch's.
    """
    clip_value = check_float(clip_value, "clip_value", 0.0, allow_inf=True)
    for g in _clipped_arrays(grads, "clipped"):
        with np.errstate(over="ignore"):   # float32(1e300) is inf: every float32 is within it
            c = g.dtype.type(clip_value)
        np.clip(g, -c, c, out=g)


# --- learning-rate schedules --------------------------------------------------------------
_BUILT = itertools.count()   # the order schedules are built in (SequentialLR's starting rate)

# The most epochs a schedule counts: its formulas take epoch counts as floats, exact up to
# here, and one past a float's range (10**400, from a tampered state) raised a bare
# OverflowError out of step() ("int too large to convert to float")
_EPOCHS = 2**53


class _Scheduler:
    _fields = ()  # the constructor's keyword arguments
    _counters = ()  # further state that step() advances

    def __init__(self, optimizer):
        if not isinstance(optimizer, Optimizer):
            raise TypeError(f"optimizer must be a grucy Optimizer, got {type(optimizer).__name__}")
        self.optimizer = optimizer
        self.base_lr = optimizer.lr
        self.last_epoch = 0
        self._built = next(_BUILT)

    def _first_rate(self, lr):
        """The rate building the schedule sets from the optimizer's ``lr`` (torch's initial
        step): ``lr`` itself, but for LinearLR's start_factor."""
        return lr

    def state_dict(self):
        """JSON-able state (for checkpoint metadata)."""
        return {"type": type(self).__name__, "base_lr": self.base_lr, "last_epoch": self.last_epoch,
                **{k: getattr(self, k) for k in self._fields + self._counters}}

    def load_state_dict(self, state):
        """Restore :meth:`state_dict` output (every value checked, by name)."""
        self._check_keys(state, ("type", "base_lr", "last_epoch") + self._fields + self._counters)
        # the constructor's checks validate the settings; the rate it may set (LinearLR's
        # start) is the optimizer's to restore, not the schedule's, so it is put back
        lr = self.optimizer.lr
        try:
            fresh = type(self)(self.optimizer, **{k: state[k] for k in self._fields})
        finally:
            self.optimizer.lr = lr
        # every value checked before any is set: a refused state leaves the schedule as it was
        base_lr = check_float(state["base_lr"], "base_lr", 0.0)
        last_epoch = check_int(state["last_epoch"], "last_epoch", 0, _EPOCHS)
        counters = self._check_counters(state)
        for k in self._fields:
            setattr(self, k, getattr(fresh, k))
        self.base_lr, self.last_epoch = base_lr, last_epoch
        for k, v in counters.items():
            setattr(self, k, v)

    def _check_keys(self, state, keys):
        """Refuse a ``state`` that is not this type's, or lacks or adds to ``keys``."""
        if not isinstance(state, dict) or state.get("type") != type(self).__name__:
            raise ValueError(f"state must be a {type(self).__name__}.state_dict(), got {state!r:.80}")
        for k in keys[1:]:
            if k not in state:
                raise ValueError(f"state is missing {k!r}")
        # a misspelt key ("gama") would be ignored, its value silently not restored
        unknown = sorted(set(state) - set(keys), key=repr)
        if unknown:
            raise ValueError(f"state has unknown keys {unknown}; expected {', '.join(keys)}")

    def _check_counters(self, state):
        """The ``_counters`` of ``state``, checked: {name: value}."""
        return {}

    def get_last_lr(self):
        """The optimizer's current learning rate (a float), as set by the last step."""
        return self.optimizer.lr


class StepLR(_Scheduler):
    """lr *= gamma every ``step_size`` calls of :meth:`step` (torch.optim.lr_scheduler.StepLR)."""

    _fields = ("step_size", "gamma")

    def __init__(self, optimizer, step_size, gamma=0.1):
        super().__init__(optimizer)
        self.step_size = check_int(step_size, "step_size", 1)
        self.gamma = check_float(gamma, "gamma", 0.0)

    def step(self):
        """Advance one epoch and update optimizer.lr."""
        self.last_epoch += 1
        if self.last_epoch % self.step_size == 0:
            self.optimizer.lr = self.optimizer.lr * self.gamma

    def _closed_form(self):
        """The rate at ``last_epoch`` from ``base_lr``, in torch's closed form (what
        SequentialLR restarts it with, at epoch 0)."""
        return self.base_lr * self.gamma ** (self.last_epoch // self.step_size)


class CosineAnnealingLR(_Scheduler):
    """lr follows eta_min + (base - eta_min)(1 + cos(pi e / T_max))/2, using torch's recursive
    form so values agree with torch.optim.lr_scheduler.CosineAnnealingLR step by step."""

    _fields = ("T_max", "eta_min")

    def __init__(self, optimizer, T_max, eta_min=0.0):
        super().__init__(optimizer)
        self.T_max = check_int(T_max, "T_max", 1, _EPOCHS)
        self.eta_min = check_float(eta_min, "eta_min", 0.0)

    def step(self):
        """Advance one epoch and update optimizer.lr."""
        self.last_epoch += 1
        e, T, lr, lo = self.last_epoch, self.T_max, self.optimizer.lr, self.eta_min
        if (e - 1 - T) % (2 * T) == 0:
            lr = lr + (self.base_lr - lo) * (1 - math.cos(math.pi / T)) / 2
        else:
            lr = (1 + math.cos(math.pi * e / T)) / (1 + math.cos(math.pi * (e - 1) / T)) * (lr - lo) + lo
        self.optimizer.lr = lr

    def _closed_form(self):
        """The rate at ``last_epoch`` from ``base_lr``, in torch's closed form (what
        SequentialLR restarts it with, at epoch 0: eta_min + (base - eta_min), which can
        differ from base in the last bit, as torch's)."""
        return (self.eta_min + (self.base_lr - self.eta_min)
                * (1 + math.cos(math.pi * self.last_epoch / self.T_max)) / 2)


class LinearLR(_Scheduler):
    """Warm-up: the rate goes linearly from ``start_factor`` to ``end_factor`` times the
    optimizer's over ``total_iters`` calls of :meth:`step`, then stays, with torch's
    recursive (chainable) form so that values agree with torch.optim.lr_scheduler.LinearLR
    step by step.

    As torch's, building it sets ``optimizer.lr`` to lr * start_factor at once. To resume,
    build it, then restore both state dicts: the optimizer's brings back the rate reached.
    start_factor in (0, 1], end_factor in [0, 1] (torch's bounds), total_iters >= 1.
    """

    _fields = ("start_factor", "end_factor", "total_iters")

    def __init__(self, optimizer, start_factor=1.0 / 3, end_factor=1.0, total_iters=5):
        super().__init__(optimizer)
        self.start_factor = check_float(start_factor, "start_factor", 0.0, 1.0, min_open=True)
        self.end_factor = check_float(end_factor, "end_factor", 0.0, 1.0)
        # torch takes 0 and then never leaves start_factor: a warm-up that never ends
        self.total_iters = check_int(total_iters, "total_iters", 1, _EPOCHS)
        optimizer.lr = self._first_rate(optimizer.lr)

    def _first_rate(self, lr):
        return lr * self.start_factor

    def step(self):
        """Advance one epoch and update optimizer.lr."""
        self.last_epoch += 1
        e, n, s, f = self.last_epoch, self.total_iters, self.start_factor, self.end_factor
        if e <= n:       # the ratio of step e's factor to step e - 1's, as torch computes it
            self.optimizer.lr = self.optimizer.lr * (1.0 + (f - s) / (n * s + (e - 1) * (f - s)))

    def _closed_form(self):
        """The rate at ``last_epoch`` from ``base_lr``, in torch's closed form (what
        SequentialLR restarts it with, at epoch 0)."""
        s, f, n = self.start_factor, self.end_factor, self.total_iters
        return self.base_lr * (s + (f - s) * min(n, self.last_epoch) / n)


class ReduceLROnPlateau(_Scheduler):
    """Multiply lr by ``factor`` once the metric passed to :meth:`step` has gone more than
    ``patience`` epochs in a row without improving (patience=2: at the third such epoch), as
    torch.optim.lr_scheduler.ReduceLROnPlateau does."""

    _fields = ("mode", "factor", "patience", "threshold", "threshold_mode", "cooldown", "min_lr", "eps")
    _counters = ("best", "num_bad_epochs", "cooldown_counter")

    def __init__(self, optimizer, mode="min", factor=0.1, patience=10, threshold=1e-4,
                 threshold_mode="rel", cooldown=0, min_lr=0.0, eps=1e-8):
        super().__init__(optimizer)
        self.mode = check_choice(mode, "mode", ("min", "max"))
        self.factor = check_float(factor, "factor", 0.0, 1.0, max_open=True)
        self.patience = check_int(patience, "patience", 0)
        self.threshold = check_float(threshold, "threshold", 0.0)
        self.threshold_mode = check_choice(threshold_mode, "threshold_mode", ("rel", "abs"))
        self.cooldown = check_int(cooldown, "cooldown", 0)
        self.min_lr = check_float(min_lr, "min_lr", 0.0)
        self.eps = check_float(eps, "eps", 0.0)
        self.best = None  # None = nothing seen yet (JSON has no inf)
        self.num_bad_epochs = 0
        self.cooldown_counter = 0

    def _check_counters(self, state):
        return {"best": None if state["best"] is None else check_float(state["best"], "best"),
                "num_bad_epochs": check_int(state["num_bad_epochs"], "num_bad_epochs", 0),
                "cooldown_counter": check_int(state["cooldown_counter"], "cooldown_counter", 0)}

    def _is_better(self, a):
        if self.best is None:
            return True
        b = self.best
        if self.mode == "min":
            return a < b * (1 - self.threshold) if self.threshold_mode == "rel" else a < b - self.threshold
        return a > b * (1 + self.threshold) if self.threshold_mode == "rel" else a > b + self.threshold

    def step(self, metric):
        """Record this epoch's ``metric`` (a finite float) and reduce optimizer.lr on a plateau."""
        # finite: an infinite best would make state_dict() non-JSON and load_state_dict
        # refuse it
        current = check_float(metric, "metric")
        self.last_epoch += 1
        if self._is_better(current):
            self.best = current
            self.num_bad_epochs = 0
        else:
            self.num_bad_epochs += 1
        if self.cooldown_counter > 0:
            self.cooldown_counter -= 1
            self.num_bad_epochs = 0
        if self.num_bad_epochs > self.patience:
            old = self.optimizer.lr
            new = max(old * self.factor, self.min_lr)
            if old - new > self.eps:
                self.optimizer.lr = new
            self.cooldown_counter = self.cooldown
            self.num_bad_epochs = 0


def _sequence(value, name, what):
    """``value`` as a list, for any ordered sequence (a list, a tuple, a Hydra ListConfig):
    a set or dict has a length but no order, and a string is no list of ``what``."""
    if isinstance(value, (str, bytes, AbstractSet, Mapping)) or not hasattr(value, "__len__"):
        raise TypeError(f"{name} must be a list of {what}, got {type(value).__name__}")
    return list(value)


class SequentialLR(_Scheduler):
    """Schedules one after another (torch.optim.lr_scheduler.SequentialLR): ``schedulers[0]``
    from epoch 0, and ``schedulers[i]`` from epoch ``milestones[i - 1]``, where it restarts
    at its own epoch 0 with torch's closed form (LinearLR's start_factor times the base rate,
    StepLR's base rate, CosineAnnealingLR's eta_min + (base - eta_min)). A warm-up, then a
    cosine decay over the remaining 25 epochs::

        warm = LinearLR(opt, start_factor=0.1, total_iters=5)
        decay = CosineAnnealingLR(opt, T_max=25)
        sched = SequentialLR(opt, [warm, decay], milestones=[5])

    As torch's, every schedule's base rate is the optimizer's rate from before the first of
    them was built (LinearLR's constructor lowers it), and building this sets the optimizer
    back to it (times start_factor when ``schedulers[0]`` is a LinearLR).

    optimizer: the grucy Optimizer every schedule was built on. schedulers: a non-empty
    list of StepLR, CosineAnnealingLR and LinearLR, none stepped yet (a ReduceLROnPlateau
    steps on a metric, which this does not pass: refused, as torch refuses it).
    milestones: one epoch per schedule after the first, increasing ints >= 1 (torch checks
    only their count, and bisects unordered ones as if they were sorted).
    Its state dict holds each schedule's; to resume, build the schedules and this, then
    restore this state and the optimizer's, which brings back the rate reached.
    """

    def __init__(self, optimizer, schedulers, milestones):
        super().__init__(optimizer)
        schedulers = _sequence(schedulers, "schedulers", "schedules")
        if not schedulers:
            raise ValueError("schedulers must hold at least one schedule, got none")
        for i, s in enumerate(schedulers):
            if isinstance(s, ReduceLROnPlateau):
                raise ValueError(f"schedulers[{i}] is a ReduceLROnPlateau, which steps on a "
                                 "metric; SequentialLR steps its schedules without one")
            if isinstance(s, SequentialLR):
                raise ValueError(f"schedulers[{i}] is a SequentialLR; list its schedules instead")
            if not isinstance(s, _Scheduler):
                raise TypeError(f"schedulers[{i}] must be a grucy StepLR, CosineAnnealingLR or "
                                f"LinearLR, got {type(s).__name__}")
            if s.optimizer is not optimizer:
                raise ValueError(f"schedulers[{i}] ({type(s).__name__}) was built on another "
                                 "optimizer; every schedule must be built on optimizer")
            if s.last_epoch != 0:
                raise ValueError(f"schedulers[{i}] ({type(s).__name__}) has stepped already "
                                 f"(last_epoch {s.last_epoch}); SequentialLR starts each "
                                 "schedule at its epoch 0")
        self.milestones = self._check_milestones(milestones, len(schedulers), "milestones")
        self.schedulers = schedulers
        # torch's base_lrs are all the optimizer's initial_lr, its rate when the first
        # schedule was built: a LinearLR built before another lowered that one's base_lr
        self.base_lr = min(schedulers, key=lambda s: s._built).base_lr
        for s in schedulers:
            s.base_lr = self.base_lr
        optimizer.lr = schedulers[0]._first_rate(self.base_lr)

    @staticmethod
    def _check_milestones(milestones, count, name):
        """``milestones`` (called ``name``) for ``count`` schedules, checked: a list of ints."""
        milestones = _sequence(milestones, name, "ints")
        if len(milestones) != count - 1:
            raise ValueError(f"{name} must hold one epoch per schedule after the first: "
                             f"{count - 1} for {count} schedulers, got {len(milestones)}")
        milestones = [check_int(m, f"{name}[{i}]", 1) for i, m in enumerate(milestones)]
        if any(a >= b for a, b in zip(milestones, milestones[1:])):
            raise ValueError(f"{name} must be increasing, got {milestones}")
        return milestones

    def step(self):
        """Advance one epoch: restart the next schedule at its milestone, else step the
        current one."""
        self.last_epoch += 1
        i = bisect.bisect_right(self.milestones, self.last_epoch)
        s = self.schedulers[i]
        if i > 0 and self.milestones[i - 1] == self.last_epoch:
            s.last_epoch = 0
            self.optimizer.lr = s._closed_form()
        else:
            s.step()

    def state_dict(self):
        """JSON-able state: ``{"type", "base_lr", "last_epoch", "milestones", "schedulers":
        [each schedule's state_dict()]}``."""
        return {"type": "SequentialLR", "base_lr": self.base_lr, "last_epoch": self.last_epoch,
                "milestones": list(self.milestones),
                "schedulers": [s.state_dict() for s in self.schedulers]}

    def load_state_dict(self, state):
        """Restore :meth:`state_dict` output into the same kinds of schedules (each
        value checked, by name; a refused state changes nothing, the optimizer's rate
        included)."""
        self._check_keys(state, ("type", "base_lr", "last_epoch", "milestones", "schedulers"))
        base_lr = check_float(state["base_lr"], "base_lr", 0.0)
        last_epoch = check_int(state["last_epoch"], "last_epoch", 0, _EPOCHS)
        n = len(self.schedulers)
        milestones = self._check_milestones(state["milestones"], n, "state['milestones']")
        states = _sequence(state["schedulers"], "state['schedulers']", "schedule states")
        if len(states) != n:
            raise ValueError(f"state['schedulers'] must hold {n} schedule states, one per "
                             f"schedule, got {len(states)}")
        before, lr = [s.state_dict() for s in self.schedulers], self.optimizer.lr
        for i, (s, sub) in enumerate(zip(self.schedulers, states)):
            try:
                s.load_state_dict(sub)
            except (ValueError, TypeError) as e:
                for t, old in zip(self.schedulers, before):
                    t.load_state_dict(old)
                self.optimizer.lr = lr
                raise type(e)(f"state['schedulers'][{i}]: {e}") from None
        self.base_lr, self.last_epoch, self.milestones = base_lr, last_epoch, milestones
