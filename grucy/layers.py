"""Layers above the kernels: a multi-layer (bi)directional GRU, its streaming step API,
and a linear output head.

Notation (shapes in comments): T time steps, B batch rows, I input features, H hidden
units, L layers, D directions (1 or 2), O head outputs.  Everything is time-major inside;
``batch_first=True`` only transposes at the boundary.

The GRU equations, weight layout [r | z | n] and the update h = (1 - z) h + z n are the
kernels' (grucy.kernels; README.md, "The maths"); ``grucy.interop`` converts from and to
torch/Keras/ONNX.
Every matrix product goes through grucy's own BLAS (``grucy.gru_*`` and
``grucy.matmul``), never numpy's ``@``: two BLAS thread pools fight (README.md, "Kernels").
"""
import math
import threading
import warnings

import numpy as np

import grucy as _grucy  # kernels and matmul are looked up at call time: grucy/__init__ imports us

from ._checks import (BLAS_INT_MAX, as_float_array, asarray, check_bool, check_choice,
                      check_dtype, check_float, check_int, check_lengths, check_rows,
                      make_rngs, narrowed, physical_memory)
from .init import GRU_KEYS, LINEAR_KEYS, init_gru_parameters, init_linear_parameters
from .init import normalize as normalize_init
from .losses import sigmoid

__all__ = ["GRU", "GRUStream", "Linear", "ACTIVATIONS"]

_SUFFIXES = ("", "_reverse")
_KINDS = ("weight_ih", "weight_hh", "bias_ih", "bias_hh")


class _ParameterMixin:
    """Named parameters as plain numpy arrays, with gradients of the same names.

    ``layer.weight_ih_l0`` reads the live array; assigning to it copies the new values in
    place (after checking the shape), so optimizers holding the array see the change.
    """

    def __getattr__(self, name):
        params = self.__dict__.get("_params")
        if params is not None and name in params:
            return params[name]
        raise AttributeError(f"{type(self).__name__!s} has no attribute {name!r}")

    def __setattr__(self, name, value):
        params = self.__dict__.get("_params")
        if params is not None and name in params:
            self.set_parameters({name: value}, strict=False)
        else:
            object.__setattr__(self, name, value)

    def parameters(self):
        """Return ``{name: array}`` of the live parameter arrays (update them in place)."""
        return dict(self._params)

    def gradients(self):
        """Return ``{name: array}`` of the accumulated gradients (same names and shapes)."""
        return dict(self._grads)

    def zero_grad(self):
        """Set every accumulated gradient to zero."""
        for g in self._grads.values():
            g.fill(0)

    def set_parameters(self, params, strict=True):
        """Copy ``params`` ({name: array}) into the live arrays, checking names and shapes.

        ``strict=True`` requires every parameter name to be present.  Values are cast to the
        layer's dtype.  Every value is checked before any is copied: a refused call changes
        nothing.
        """
        self._check_parameters(params, strict)
        self._copy_parameters(params)

    def _copy_parameters(self, params):
        """Copy checked ``params`` into the live arrays (cast to the layer's dtype)."""
        for name, value in params.items():
            np.copyto(self._params[name], np.asarray(value), casting="unsafe")

    def _check_parameters(self, params, strict, prefix=""):
        """Raise unless set_parameters(params, strict) would succeed; messages name each key
        as ``prefix + name`` (the caller's name for it, e.g. SequenceModel's "head.")."""
        if not isinstance(params, dict):
            raise TypeError(f"params must be a dict of arrays, got {type(params).__name__}")
        unknown = sorted(set(params) - set(self._params), key=repr)   # keys need not be str
        if unknown:
            raise ValueError(f"params has unknown names {[prefix + k if prefix else k for k in unknown]}; "
                             f"expected {[prefix + k for k in self._params]}")
        missing = sorted(set(self._params) - set(params))
        if strict and missing:
            raise ValueError(f"params is missing {[prefix + k for k in missing]}")
        for name, value in params.items():
            key = prefix + name
            arr = asarray(value, f"params[{key!r}]")    # a ragged list: numpy's error names none
            if not (np.issubdtype(arr.dtype, np.floating) or np.issubdtype(arr.dtype, np.integer)):
                raise TypeError(f"params[{key!r}] must be a numeric array, got dtype {arr.dtype}")
            if arr.shape != self._params[name].shape:
                raise ValueError(f"params[{key!r}] must have shape {self._params[name].shape}, "
                                 f"got {arr.shape}")
            dtype = self._params[name].dtype
            if np.issubdtype(arr.dtype, np.floating) and arr.dtype.itemsize > dtype.itemsize:
                narrowed(arr, dtype, f"params[{key!r}]")   # finite values the cast makes ±inf

    def train(self, mode=True):
        """Training mode (caches for backward, dropout on); returns self."""
        self.training = check_bool(mode, "mode")
        return self

    def eval(self):
        """Inference mode (no cache kept, no dropout); returns self."""
        return self.train(False)


class GRU(_ParameterMixin):
    """Multi-layer, optionally bidirectional GRU with torch.nn.GRU's shapes.

    Parameters: ``weight_ih_l{k}`` (3H, I_k), ``weight_hh_l{k}`` (3H, H), ``bias_ih_l{k}`` (3H,),
    ``bias_hh_l{k}`` (3H,) (not with ``bias=False``), plus ``..._reverse`` for the backward
    direction; I_0 = input_size, I_k = D*H above.  Rows are gate blocks [r | z | n];
    h = (1 - z) h + z n.  torch.nn.GRU's state_dict has the same names and shapes but not the
    same values: its z is this 1 - z (the z rows' signs flip) and its candidate is
    ``reset_after=True``'s, so copying by name runs silently and gives other outputs;
    ``grucy.interop.from_torch`` converts exactly.

    Args:
        input_size, hidden_size, num_layers: sizes (ints >= 1); num_layers no more than the
            machine's memory holds, with the gradients (a ValueError, before any is built).
        bidirectional: run a reverse direction per layer and concatenate on the last axis.
        reset_after: candidate n = tanh(W_in x + b_in + r * (W_hn h + b_hn)) (torch/Keras/cuDNN)
            instead of the seed's n = tanh(W_in x + b_in + W_hn (r * h) + b_hn).
        batch_first: x and out are (B, T, ...) instead of (T, B, ...); h0/h_n stay (L*D, B, H).
        dropout: inverted dropout probability on every layer's output except the last
            (training only), drawn from a generator seeded by ``seed``.
        dtype: np.float32 (default) or np.float64.
        seed: int seed for initial weights and dropout masks (None: fresh entropy).
        init: "pytorch", "keras" or an override dict (see grucy.init).
        bias: False for no ``bias_ih_l*``/``bias_hh_l*`` parameters (torch's ``bias=False``):
            the gates see zero biases, and an ``init`` override of ``bias`` is refused. The
            same seed draws the same weights as with biases.

    ``forward`` also takes one unbatched sequence as torch does: x (T, input_size) gives out
    (T, D*H) and h_n (num_layers*D, H), whatever ``batch_first`` says.
    """

    def __init__(self, input_size, hidden_size, num_layers=1, bidirectional=False,
                 reset_after=False, batch_first=False, dropout=0.0, dtype=np.float32,
                 seed=None, init="pytorch", bias=True):
        # the kernels' GEMMs take I and 3H as C ints of the 32-bit BLAS (and the arrays these
        # sizes would allocate fail as numpy's MemoryError or "array is too big", naming none)
        self.input_size = check_int(input_size, "input_size", 1, BLAS_INT_MAX)
        self.hidden_size = check_int(hidden_size, "hidden_size", 1, BLAS_INT_MAX // 3)
        self.num_layers = check_int(num_layers, "num_layers", 1)
        self.bidirectional = check_bool(bidirectional, "bidirectional")
        self.reset_after = check_bool(reset_after, "reset_after")
        self.batch_first = check_bool(batch_first, "batch_first")
        self.dropout = check_float(dropout, "dropout", 0.0, 1.0, max_open=True)
        if self.dropout > 0.0 and self.num_layers == 1:
            # as torch.nn.GRU warns: there is no layer below another for it to act between
            warnings.warn(f"dropout={self.dropout} has no effect with num_layers=1 (it acts "
                          f"between layers)", UserWarning, stacklevel=2)
        self.dtype = check_dtype(dtype)
        self.seed = None if seed is None else check_int(seed, "seed", 0)
        self.init = init = normalize_init(init, GRU_KEYS)
        self.bias = check_bool(bias, "bias")
        if not self.bias and isinstance(init, dict) and "bias" in init:
            # drawn and then dropped, it would have no effect without a word
            raise ValueError(f"init['bias'] is {init['bias']!r}, but bias=False: the layer has "
                             "no biases to initialise")
        self.num_directions = 2 if self.bidirectional else 1
        self._check_fits_memory()
        init_rng, self._dropout_rng = make_rngs(self.seed)
        params = {}
        kinds = _KINDS if self.bias else _KINDS[:2]
        for layer in range(self.num_layers):
            in_size = self.input_size if layer == 0 else self.hidden_size * self.num_directions
            for d in range(self.num_directions):
                # biases drawn even when dropped: the same seed gives the same weights
                arrays = init_gru_parameters(init_rng, in_size, self.hidden_size, init, self.dtype)
                for kind, arr in zip(kinds, arrays):
                    params[f"{kind}_l{layer}{_SUFFIXES[d]}"] = arr
        # bias=False: the kernels take biases, so every direction gets this one zero array
        # (read-only, not a parameter; backward drops its gradients). The kernels' bias work
        # is O(T·B·3H) beside their O(T·B·3H·(I+H)) products: no separate no-bias kernels.
        self._zero_bias = None
        if not self.bias:
            self._zero_bias = np.zeros(3 * self.hidden_size, dtype=self.dtype)
            self._zero_bias.flags.writeable = False
        self._params = params
        self._grads = {k: np.zeros_like(v) for k, v in params.items()}
        self.training = True
        self._cache = None
        self.dh0 = None

    def _check_fits_memory(self):
        """Refuse more layers than the machine's memory holds, before any is built.

        Each layer of GRU(4, 6) is a few hundred values, too small for an allocation to
        fail, so num_layers=10**9 built layer after layer until memory ran out (load refuses
        such a stored config by the values the file holds; the constructor had no bound).
        The stack's parameters and their gradients, which it allocates, must fit. A single
        layer too large for memory is left to numpy's MemoryError: its first allocation
        fails at once, and the runner reports that as a model too large to build.
        """
        memory = physical_memory()
        if memory is None or self.num_layers == 1:
            return
        I, H, D = self.input_size, self.hidden_size, self.num_directions
        per_value = 2 * self.dtype.itemsize                 # a parameter and its gradient
        # per direction 3H x (I_k + H) weights and two 3H biases; I_k = D*H above layer 0
        b = 2 if self.bias else 0
        first = D * 3 * H * (I + H + b) * per_value
        later = D * 3 * H * (D * H + H + b) * per_value
        if first > memory:
            return
        most = 1 + (memory - first) // later
        if self.num_layers > most:
            need = first + (self.num_layers - 1) * later
            raise ValueError(f"num_layers must be <= {most} to fit this machine's memory "
                             f"({memory} bytes), got {self.num_layers}: its parameters and "
                             f"their gradients ({self.dtype}) would take {need} bytes")

    def config(self):
        """JSON-able constructor arguments (used by grucy.save / grucy.load)."""
        return {"input_size": self.input_size, "hidden_size": self.hidden_size,
                "num_layers": self.num_layers, "bidirectional": self.bidirectional,
                "reset_after": self.reset_after, "batch_first": self.batch_first,
                "dropout": self.dropout, "dtype": self.dtype.name, "seed": self.seed,
                "init": self.init, "bias": self.bias}

    def __repr__(self):
        args = ", ".join(f"{k}={v!r}" for k, v in self.config().items())
        return f"GRU({args})"

    def _weights(self, layer, d):
        """The kernels' (w_ih, w_hh, b_ih, b_hh) of one layer and direction; with bias=False
        both biases are the layer's read-only zeros."""
        s = f"_l{layer}{_SUFFIXES[d]}"
        p = self._params
        if not self.bias:
            return p["weight_ih" + s], p["weight_hh" + s], self._zero_bias, self._zero_bias
        return p["weight_ih" + s], p["weight_hh" + s], p["bias_ih" + s], p["bias_hh" + s]

    def forward(self, x, h0=None, *, lengths=None):
        """Run the stack over a batch of sequences.

        Args:
            x: (T, B, input_size), or (B, T, input_size) if batch_first; the layer's dtype.
                T = 0 or B = 0 is an empty batch: out is empty, h_n is h0, and backward
                gives dh0 = dh_n and zero weight gradients (grucy.kernels; torch.nn.GRU
                refuses T = 0).  Or (T, input_size): one unbatched sequence, as torch.nn.GRU
                takes it (with batch_first too, which it then ignores); out, h_n, h0 and
                backward's arguments then lose their B axis.
            h0: (num_layers*D, B, H) initial states ((num_layers*D, H) for an unbatched x),
                or None for zeros.
            lengths: (B,) ints in [0, T], or None for all T.  Steps t >= lengths[b] leave row
                b's state unchanged and its out rows zero; the reverse direction starts at
                each row's own last valid step.  No sorting needed.  None for an unbatched x
                (pass x[:n] for a shorter sequence).
        Returns:
            out: (T, B, D*H) (or (B, T, D*H); (T, D*H) unbatched) top-layer states,
                directions concatenated.
            h_n: (num_layers*D, B, H) ((num_layers*D, H) unbatched) final state per layer
                and direction (torch's order).
        In training mode, like autograd's saved tensors, ``backward`` reads ``x`` and (for a
        unidirectional GRU, time-major or unbatched) the returned ``out``: change them in
        place only after ``backward``, or its gradients are silently wrong.
        """
        out, h_n, self._cache = self._forward(x, h0, lengths, self.training)
        return out, h_n

    __call__ = forward

    def _forward(self, x, h0, lengths, training):
        """forward's work: ``(out, h_n, the cache backward reads or None)``. It changes
        nothing on self in inference (``training`` False), so SequenceModel.predict can run
        in several threads at once, and beside a forward awaiting its backward."""
        # copied only once checked: a zero-strided view of the wrong shape is refused, not
        # copied first (numpy's MemoryError naming nothing)
        x = as_float_array(x, "x", dtype=self.dtype, contiguous=False)
        if x.ndim not in (2, 3):
            batched = "(B, T, input_size)" if self.batch_first else "(T, B, input_size)"
            raise ValueError(f"x must be 3-D {batched} or 2-D (T, input_size) (one unbatched "
                             f"sequence), got shape {x.shape}")
        if x.shape[-1] != self.input_size:
            raise ValueError(f"x must have {self.input_size} features in its last axis, "
                             f"got shape {x.shape}")
        unbatched = x.ndim == 2
        L, D, H = self.num_layers, self.num_directions, self.hidden_size
        if unbatched:
            # torch's way: one sequence is a batch of one, (T, 1, I), batch_first or not
            if lengths is not None:
                raise ValueError("lengths must be None for an unbatched x (T, input_size): it "
                                 "is one sequence of T steps (pass x[:n] for a shorter one)")
            check_rows("x", x.shape, x.shape[0], "T")
            x = x[:, None, :]
            if h0 is not None:
                h0 = as_float_array(h0, "h0", dtype=self.dtype, contiguous=False)
                if h0.shape != (L * D, H):
                    raise ValueError(f"h0 must have shape (num_layers*D, H) = {(L * D, H)} for "
                                     f"an unbatched x (T, input_size), got {h0.shape}")
                h0 = h0[:, None, :]
        else:
            check_rows("x", x.shape, x.shape[0] * x.shape[1], "T·B")
            if self.batch_first:
                x = x.transpose(1, 0, 2)
        x = np.ascontiguousarray(x)
        T, B, _ = x.shape
        if h0 is not None and not unbatched:
            h0 = as_float_array(h0, "h0", dtype=self.dtype, shape=(L * D, B, H))
        lengths = check_lengths(lengths, B, T)
        caches, masks = [], []
        h_n = np.empty((L * D, B, H), dtype=self.dtype)  # (L*D, B, H)
        inp = x  # (T, B, I_layer)
        for layer in range(L):
            outs = []
            for d in range(D):
                k = layer * D + d
                out_d, h_n[k], cache = _grucy.gru_forward(
                    inp, None if h0 is None else h0[k], *self._weights(layer, d),
                    reset_after=self.reset_after, lengths=lengths, reverse=bool(d),
                    training=training)
                outs.append(out_d)  # (T, B, H)
                caches.append(cache)
            out = outs[0] if D == 1 else np.concatenate(outs, axis=2)  # (T, B, D*H)
            if training and self.dropout > 0.0 and layer < L - 1:
                keep = self._dropout_rng.random(out.shape) >= self.dropout
                mask = keep.astype(self.dtype) * self.dtype.type(1.0 / (1.0 - self.dropout))
                out = out * mask  # not in place: the kernel's cache may hold its output
                masks.append(mask)
            inp = out
        if unbatched:
            out, h_n = out[:, 0], h_n[:, 0]     # (T, D*H), (L*D, H)
        elif self.batch_first:
            # a copy, always: with B = 1 numpy counts the transpose as contiguous, and
            # ascontiguousarray returned a view of the kernel's out, which backward reads
            out = out.transpose(1, 0, 2).copy()
        return out, h_n, ((caches, masks, T, B, unbatched) if training else None)

    def backward(self, dout, dh_n=None):
        """Backpropagate through the last training-mode forward; accumulate parameter gradients.

        Args:
            dout: (T, B, D*H) (or (B, T, D*H) if batch_first) gradient of out, or None;
                (T, D*H) after an unbatched forward.
            dh_n: (num_layers*D, B, H) gradient of h_n, or None; (num_layers*D, H) after an
                unbatched forward.
        Returns:
            dx: (T, B, input_size) (or batch-first; (T, input_size) unbatched) gradient of x.
            The gradient of h0, (num_layers*D, B, H) ((num_layers*D, H) unbatched), is left
            in ``self.dh0``.
        """
        if self._cache is None:
            raise RuntimeError("backward() needs a preceding forward() in training mode "
                               "(call train() before forward; backward runs once per forward)")
        caches, masks, T, B, unbatched = self._cache
        L, D, H = self.num_layers, self.num_directions, self.hidden_size
        if dout is None and dh_n is None:
            raise ValueError("dout and dh_n cannot both be None")
        if dout is not None:
            if unbatched:
                dout = as_float_array(dout, "dout", dtype=self.dtype, shape=(T, D * H))[:, None]
            elif self.batch_first:
                dout = as_float_array(dout, "dout", dtype=self.dtype, shape=(B, T, D * H))
                dout = np.ascontiguousarray(dout.transpose(1, 0, 2))
            else:
                dout = as_float_array(dout, "dout", dtype=self.dtype, shape=(T, B, D * H))
        if dh_n is not None:
            if unbatched:
                dh_n = as_float_array(dh_n, "dh_n", dtype=self.dtype, shape=(L * D, H))[:, None]
            else:
                dh_n = as_float_array(dh_n, "dh_n", dtype=self.dtype, shape=(L * D, B, H))
        self._cache = None
        kinds = _KINDS if self.bias else _KINDS[:2]     # bias=False: the zeros' gradients dropped
        dh0 = np.zeros((L * D, B, H), dtype=self.dtype)
        g = dout  # gradient of this layer's output, (T, B, D*H) or None
        for layer in reversed(range(L)):
            dinp = None
            for d in range(D):
                k = layer * D + d
                gd = None if g is None else (g if D == 1 else np.ascontiguousarray(g[:, :, d * H:(d + 1) * H]))
                dx, dh0[k], *dparams = _grucy.gru_backward(
                    gd, None if dh_n is None else dh_n[k], caches[k])
                s = f"_l{layer}{_SUFFIXES[d]}"
                for kind, dp in zip(kinds, dparams):
                    self._grads[kind + s] += dp
                dinp = dx if dinp is None else dinp + dx
            if layer > 0 and masks:
                dinp *= masks[layer - 1]
            g = dinp
        if unbatched:
            self.dh0 = dh0[:, 0]            # (L*D, H)
            return g[:, 0]                  # (T, I)
        self.dh0 = dh0
        if self.batch_first:
            g = np.ascontiguousarray(g.transpose(1, 0, 2))
        return g

    def stream(self, batch_size, h0=None):
        """Return a :class:`GRUStream` that feeds this GRU one time step at a time.

        Args:
            batch_size: B >= 0, the rows of every x_t (B, input_size) the stream will take
                (0: empty steps, as for an empty batch anywhere in grucy.kernels); or None
                for one unbatched sequence, as forward's x (T, input_size): every x_t is
                (input_size,), each step returns (H,) and the state is (num_layers, H).
            h0: (num_layers, B, H) starting state ((num_layers, H) for batch_size None), or
                None for zeros.
        """
        return GRUStream(self, batch_size, h0)


class GRUStream:
    """Step-by-step inference for a unidirectional :class:`GRU` (low-latency serving).

    ``stream.step(x_t)`` with x_t (B, input_size) advances every layer by one step and returns
    the top layer's new state (B, H); feeding x[0], x[1], ... gives ``out[t]`` and ``h_n`` of
    ``gru.forward(x)`` (in eval mode) to rounding.  ``stream.h`` is the state
    (num_layers, B, H).  With ``batch_size=None`` the stream is one unbatched sequence, as
    forward's x (T, input_size) is: x_t (input_size,), steps (H,), ``h`` and ``reset``'s
    h0 (num_layers, H) (as forward's h_n and h0 are, for one layer direction each).

    Each layer is a compiled :class:`grucy.kernels.Cell`, which updates its state in place
    and owns its scratch: a step allocates nothing but its returned array, and nothing at
    all when ``out=`` is given.  The cells hold the GRU's live parameter arrays, which
    training updates in place, so training between steps is seen.

    One stream is one sequence, stepped by one thread at a time: a ``step`` or ``reset``
    entered while another thread's is running on the same stream raises RuntimeError (make
    a stream per thread; they can share the GRU).
    """

    def __init__(self, gru, batch_size, h0=None):
        if not isinstance(gru, GRU):
            raise TypeError(f"gru must be a grucy GRU, got {type(gru).__name__}")
        if gru.bidirectional:
            raise ValueError("gru must be unidirectional to stream (the reverse direction "
                             "needs the whole sequence)")
        self.gru = gru
        # 0: empty steps, as gru_cell takes; more rows than the BLAS's C ints take is what
        # every Cell.step would refuse: said here, before the state (num_layers, B, H) exists.
        # None: unbatched, run as forward runs an unbatched x, a batch of one inside
        self.batch_size = None if batch_size is None else check_int(
            batch_size, "batch_size", 0, BLAS_INT_MAX)
        rows = 1 if batch_size is None else self.batch_size
        self._cells = [_grucy.kernels.Cell(*gru._weights(layer, 0), reset_after=gru.reset_after)
                       for layer in range(gru.num_layers)]
        self._h = np.zeros((gru.num_layers, rows, gru.hidden_size), dtype=gru.dtype)
        # step's hot path, bound once: each layer's Cell with its row of _h (a view, valid as
        # long as _h, which reset writes into), and the x_t shape it takes: None unbatched,
        # which no shape equals, so an unbatched step leaves the hot path at its one check
        self._layers = tuple(zip(self._cells, self._h))
        self._x_shape = None if batch_size is None else (rows, gru.input_size)
        self._lock = threading.Lock()       # held by a step or reset (see _busy)
        self.reset(h0)

    def __getstate__(self):
        # _layers holds views of _h: copy.deepcopy or pickle would make each row an array of
        # its own, so the copy's step advanced those while its h and reset saw another _h
        state = self.__dict__.copy()
        del state["_layers"], state["_lock"]          # (a lock cannot be copied either)
        return state

    def __setstate__(self, state):
        self.__dict__.update(state)
        self._layers = tuple(zip(self._cells, self._h))
        self._lock = threading.Lock()

    def _busy(self):
        """The RuntimeError for a step or reset entered while another thread's runs. Each
        Cell refuses a second thread only inside its own step: two threads' steps could take
        turns layer by layer (the GIL passes between cells), and the state came out of no
        order of the two steps, silently."""
        return RuntimeError("GRUStream.step or reset was called from two threads at once: a "
                            "stream is one sequence; use one stream per thread (they can "
                            "share the GRU)")

    @property
    def h(self):
        """Current state (num_layers, B, H), or (num_layers, H) unbatched (a view; write
        through :meth:`reset`)."""
        return self._h if self.batch_size is not None else self._h[:, 0]

    def reset(self, h0=None):
        """Restart from ``h0`` (num_layers, B, H) ((num_layers, H) unbatched), or zeros."""
        if not self._lock.acquire(False):
            raise self._busy()
        try:
            if h0 is None:
                self._h.fill(0)
            else:
                h = self.h                            # a view of _h either way
                np.copyto(h, as_float_array(h0, "h0", dtype=self.gru.dtype, shape=h.shape))
        finally:
            self._lock.release()

    def step(self, x_t, out=None):
        """Advance one time step.

        Args:
            x_t: (B, input_size) ndarray in the GRU's dtype (or a nested list);
                (input_size,) for an unbatched stream (batch_size None).
            out: optional (B, H) array to write the result into ((H,) unbatched); not
                a view of the stream's own state ``h``, whose lower layers' rows it would
                overwrite with the top layer's (not checked: the check would cost a third
                of a small step).
        Returns:
            (B, H) top-layer state after this step (``out`` if given); (H,) unbatched.
        """
        # A few checks, each a few tens of ns: this path is timed per step (benchmarks/run.py)
        if not self._lock.acquire(False):       # no wait (positional: 2.5x faster)
            raise self._busy()
        try:
            if type(x_t) is not np.ndarray:
                # as forward's x and reset's h0: a list converts, any other type is a TypeError
                # (an ndarray skips this: the hot path, whose dtype the first Cell checks; a
                # subclass does not: a masked array is refused, not read without its mask)
                x_t = as_float_array(x_t, "x_t", dtype=self._h.dtype)
            if x_t.shape != self._x_shape:
                return self._step_unbatched(x_t, out)     # or a wrong shape, refused there
            if out is not None:
                h = self._h
                if not isinstance(out, np.ndarray) or out.dtype != h.dtype:
                    raise TypeError(f"out must be a {h.dtype} ndarray, got "
                                    f"{getattr(out, 'dtype', type(out).__name__)}")
                if out.shape != h.shape[1:]:
                    raise ValueError(f"out must have shape {h.shape[1:]}, got {out.shape}")
                if not out.flags.writeable:        # before the step: the state must not advance
                    raise ValueError("out must be writeable, got a read-only array")
            inp = x_t                                     # dtype checked by the first Cell
            for cell, row in self._layers:               # row (B, H): this layer's state
                cell.step(inp, row, row)                  # row := GRU step, in place
                inp = row
            if out is None:
                return inp.copy()
            out[...] = inp
            return out
        finally:
            self._lock.release()

    def _step_unbatched(self, x_t, out):
        """step for batch_size None: x_t (I,) -> (H,), stepped as the batch of one x_t[None]
        (a view); any other x_t shape is refused here, off step's batched path."""
        I = self.gru.input_size
        if self.batch_size is not None:
            hint = (" (for one unbatched sequence, make the stream with batch_size=None)"
                    if x_t.shape == (I,) else "")
            raise ValueError(f"x_t must be a (B, input_size) = {self._x_shape} array, "
                             f"got {x_t.shape}{hint}")
        if x_t.shape != (I,):
            raise ValueError(f"x_t must be an (input_size,) = ({I},) array for an unbatched "
                             f"stream (batch_size None), got {x_t.shape}")
        h = self._h
        if out is not None:                    # step's checks, before the state advances
            if not isinstance(out, np.ndarray) or out.dtype != h.dtype:
                raise TypeError(f"out must be a {h.dtype} ndarray, got "
                                f"{getattr(out, 'dtype', type(out).__name__)}")
            if out.shape != h.shape[2:]:
                raise ValueError(f"out must have shape {h.shape[2:]} for an unbatched stream, "
                                 f"got {out.shape}")
            if not out.flags.writeable:
                raise ValueError("out must be writeable, got a read-only array")
        inp = x_t[None]                               # (1, I); dtype checked by the first Cell
        for cell, row in self._layers:               # row (1, H)
            cell.step(inp, row, row)
            inp = row
        if out is None:
            return inp[0].copy()
        out[...] = inp[0]
        return out


def _sigmoid_(a):
    """a := sigmoid(a), accurate for large negative a too (see grucy.losses.sigmoid)."""
    a[...] = sigmoid(a)


ACTIVATIONS = ("identity", "sigmoid", "softmax")


class Linear(_ParameterMixin):
    """Output head y = act(x W^T + b), act in {"identity", "sigmoid", "softmax" (last axis)}.

    Parameters ``weight`` (out_features, in_features) and ``bias`` (out_features,), initialised
    like torch.nn.Linear ("pytorch") or Glorot/zero ("keras").  ``backward`` includes the
    activation's derivative; for classification train on logits (activation="identity") with
    grucy.losses.cross_entropy / bce_with_logits, which are the numerically stable choice.
    Like autograd's saved tensors, ``backward`` reads the ``x`` given to ``forward``: change it
    in place only after ``backward`` (the returned y is the caller's own).
    """

    def __init__(self, in_features, out_features, activation="identity", dtype=np.float32,
                 seed=None, init="pytorch"):
        self.in_features = check_int(in_features, "in_features", 1, BLAS_INT_MAX)   # as GRU's
        self.out_features = check_int(out_features, "out_features", 1, BLAS_INT_MAX)
        self.activation = check_choice(activation, "activation", ACTIVATIONS)
        self.dtype = check_dtype(dtype)
        self.seed = None if seed is None else check_int(seed, "seed", 0)
        self.init = init = normalize_init(init, LINEAR_KEYS)
        rng, _ = make_rngs(self.seed)
        w, b = init_linear_parameters(rng, self.in_features, self.out_features, init, self.dtype)
        self._params = {"weight": w, "bias": b}
        self._grads = {k: np.zeros_like(v) for k, v in self._params.items()}
        self.training = True
        self._cache = None

    def config(self):
        """JSON-able constructor arguments."""
        return {"in_features": self.in_features, "out_features": self.out_features,
                "activation": self.activation, "dtype": self.dtype.name, "seed": self.seed,
                "init": self.init}

    def __repr__(self):
        return "Linear(" + ", ".join(f"{k}={v!r}" for k, v in self.config().items()) + ")"

    def forward(self, x):
        """x (..., in_features) -> y (..., out_features)."""
        y, self._cache = self._forward(x, self.training)
        return y

    __call__ = forward

    def _forward(self, x, training):
        """forward's work: ``(y, the cache backward reads or None)``, self unchanged."""
        x = as_float_array(x, "x", dtype=self.dtype, contiguous=False)   # copied once checked
        if x.ndim < 1 or x.shape[-1] != self.in_features:
            raise ValueError(f"x must have {self.in_features} features in its last axis, "
                             f"got shape {x.shape}")
        check_rows("x", x.shape, math.prod(x.shape[:-1]), "N (its leading axes)")
        x = np.ascontiguousarray(x)
        lead = x.shape[:-1]
        x2 = x.reshape(-1, self.in_features)  # (N, I)
        y = np.empty((x2.shape[0], self.out_features), dtype=self.dtype)  # (N, O)
        np.copyto(y, self._params["bias"])
        if x2.shape[0]:
            _grucy.matmul(x2, self._params["weight"], y, trans_b=True, beta=1.0)  # y = x W^T + b
        if self.activation == "sigmoid":
            _sigmoid_(y)
        elif self.activation == "softmax":
            y -= y.max(axis=1, keepdims=True)
            np.exp(y, out=y)
            y /= y.sum(axis=1, keepdims=True)
        cache = (x2, y, lead) if training else None
        if training and self.activation != "identity":
            # backward reads y (the activation's derivative): hand out a copy, or a caller
            # editing its prediction in place (np.clip(y, eps, 1 - eps, out=y)) would silently
            # change the gradients. O floats per row: cheap beside the GRU below.
            y = y.copy()
        return y.reshape(lead + (self.out_features,)), cache

    def backward(self, dy):
        """dy (..., out_features) -> dx (..., in_features); accumulates weight/bias gradients."""
        if self._cache is None:
            raise RuntimeError("backward() needs a preceding forward() in training mode")
        x2, y, lead = self._cache
        dy = as_float_array(dy, "dy", dtype=self.dtype, shape=lead + (self.out_features,))
        dz = dy.reshape(-1, self.out_features)  # (N, O)
        if self.activation == "sigmoid":
            dz = dz * y * (1 - y)
        elif self.activation == "softmax":
            dz = y * (dz - (dz * y).sum(axis=1, keepdims=True))
        dx = np.zeros((x2.shape[0], self.in_features), dtype=self.dtype)  # (N, I)
        if x2.shape[0]:
            dz = np.ascontiguousarray(dz)
            _grucy.matmul(dz, x2, self._grads["weight"], trans_a=True, beta=1.0)  # dW += dz^T x
            _grucy.matmul(dz, self._params["weight"], dx)  # dx = dz W
        self._grads["bias"] += dz.sum(axis=0)
        self._cache = None
        return dx.reshape(lead + (self.in_features,))
