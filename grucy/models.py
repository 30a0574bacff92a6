"""SequenceModel: a GRU stack plus a linear head, the model the runner trains.

    many_to_one:  y = head(top-layer final state)        (B, O); for a bidirectional stack the
                  final states of both directions are concatenated, [h_fwd(last) | h_rev(first)]
                  (torch's ``cat(h_n[-2], h_n[-1])``)
    many_to_many: y[t] = head(out[t])                    (T, B, O); with ``lengths``, rows at
                  padded steps are zero and their incoming gradient is ignored
"""
import numpy as np

from ._checks import (BLAS_INT_MAX, as_float_array, check_bool, check_choice, check_dtype,
                      check_int, check_lengths)
from .init import GRU_KEYS, LINEAR_KEYS, normalize as normalize_init, part
from .layers import ACTIVATIONS, GRU, Linear

__all__ = ["SequenceModel", "MODES"]

MODES = ("many_to_one", "many_to_many")


class SequenceModel:
    """GRU stack + linear head with one parameter namespace.

    Parameter names are the GRU's (``gru.weight_ih_l0``, ...) and the head's (``head.weight``,
    ``head.bias``), prefixed.  Arguments as :class:`grucy.GRU` plus ``output_size``, ``mode``
    ("many_to_one" or "many_to_many") and the head ``activation`` ("identity", "sigmoid",
    "softmax").  ``seed`` fixes the GRU, the head and the dropout masks.  ``init`` goes to
    both: an override of ``bias`` sets the GRU's biases and the head's alike (``weight``
    is the head's alone; see grucy.init).  ``bias=False`` is the GRU's (no ``gru.bias_*``
    parameters); the head keeps its bias, and an override of ``bias`` is then its alone.
    """

    def __init__(self, input_size, hidden_size, output_size, num_layers=1, bidirectional=False,
                 reset_after=False, dropout=0.0, mode="many_to_one", activation="identity",
                 batch_first=False, dtype=np.float32, seed=None, init="pytorch", bias=True):
        self.output_size = check_int(output_size, "output_size", 1, BLAS_INT_MAX)   # the head's
        self.mode = check_choice(mode, "mode", MODES)
        check_choice(activation, "activation", ACTIVATIONS)
        dtype = check_dtype(dtype)
        if seed is not None:
            seed = check_int(seed, "seed", 0)
        self.seed = seed
        check_bool(batch_first, "batch_first")
        self.init = init = normalize_init(init)       # both layers' keys: each takes its part
        bias = check_bool(bias, "bias")
        # without GRU biases the head's is the only one an override of bias can set
        gru_keys = GRU_KEYS if bias else tuple(k for k in GRU_KEYS if k != "bias")
        self.gru = GRU(input_size, hidden_size, num_layers=num_layers, bidirectional=bidirectional,
                       reset_after=reset_after, batch_first=batch_first, dropout=dropout,
                       dtype=dtype, seed=seed, init=part(init, gru_keys), bias=bias)
        D = self.gru.num_directions
        self.head = Linear(D * self.gru.hidden_size, self.output_size, activation=activation,
                           dtype=dtype, seed=None if seed is None else seed + 1,
                           init=part(init, LINEAR_KEYS))
        self.dtype = dtype
        self.training = True
        self._cache = None

    # --- introspection -------------------------------------------------------------------
    def config(self):
        """JSON-able constructor arguments (``SequenceModel(**model.config())`` rebuilds it)."""
        g = self.gru
        return {"input_size": g.input_size, "hidden_size": g.hidden_size,
                "output_size": self.output_size, "num_layers": g.num_layers,
                "bidirectional": g.bidirectional, "reset_after": g.reset_after,
                "dropout": g.dropout, "mode": self.mode, "activation": self.head.activation,
                "batch_first": g.batch_first, "dtype": self.dtype.name, "seed": self.seed,
                "init": self.init, "bias": g.bias}

    def __repr__(self):
        return "SequenceModel(" + ", ".join(f"{k}={v!r}" for k, v in self.config().items()) + ")"

    def parameters(self):
        """``{"gru.weight_ih_l0": array, ..., "head.weight": ..., "head.bias": ...}`` (live arrays)."""
        p = {"gru." + k: v for k, v in self.gru.parameters().items()}
        p.update({"head." + k: v for k, v in self.head.parameters().items()})
        return p

    def gradients(self):
        """Accumulated gradients with the names of :meth:`parameters`."""
        g = {"gru." + k: v for k, v in self.gru.gradients().items()}
        g.update({"head." + k: v for k, v in self.head.gradients().items()})
        return g

    def set_parameters(self, params, strict=True):
        """Copy ``{name: array}`` (names of :meth:`parameters`) into the live arrays."""
        if not isinstance(params, dict):
            raise TypeError(f"params must be a dict of arrays, got {type(params).__name__}")
        # "gru." or "head." and a name: "head" alone, split at its missing ".", passed and
        # then matched neither layer (ignored without a word with strict=False)
        bad = sorted((k for k in params if not (isinstance(k, str) and k.startswith(("gru.", "head.")))),
                     key=repr)                              # keys need not be str
        if bad:
            raise ValueError(f"params has unknown names {bad}; expected {list(self.parameters())}")
        missing = sorted(set(self.parameters()) - set(params))
        if strict and missing:      # both layers' at once: the GRU's alone were named first
            raise ValueError(f"params is missing {missing}")
        gru = {k[4:]: v for k, v in params.items() if k.startswith("gru.")}
        head = {k[5:]: v for k, v in params.items() if k.startswith("head.")}
        # both checked before either is copied: a bad head.weight left the GRU overwritten
        self.gru._check_parameters(gru, strict, "gru.")
        self.head._check_parameters(head, strict, "head.")
        self.gru._copy_parameters(gru)
        self.head._copy_parameters(head)

    def zero_grad(self):
        """Zero every gradient."""
        self.gru.zero_grad()
        self.head.zero_grad()

    def train(self, mode=True):
        """Training mode (dropout on, caches kept); returns self."""
        self.training = check_bool(mode, "mode")
        self.gru.train(mode)
        self.head.train(mode)
        return self

    def eval(self):
        """Inference mode; returns self."""
        return self.train(False)

    # --- compute -------------------------------------------------------------------------
    def forward(self, x, h0=None, *, lengths=None, return_state=False):
        """Args: x (T, B, input_size) (or (B, T, I) if batch_first); h0 (num_layers*D, B, H)
        or None; lengths (B,) or None (keyword only, as in GRU.forward); return_state: also
        return the GRU's final state.  An unbatched x (T, input_size) is taken as GRU.forward
        takes it (h0 (num_layers*D, H), no lengths) and y loses its B axis.
        Returns: y (B, output_size) for many_to_one, (T, B, output_size) (or (B, T, O)) for
        many_to_many, after the head's activation; with return_state, ``(y, h_n)``, h_n
        (num_layers*D, B, H) to pass as the next chunk's h0 (truncated BPTT: backward takes
        dy alone, so no gradient flows back through the state into the chunk before). Not
        for a bidirectional GRU: its reverse direction's h_n is the state at the chunk's
        start, no h0 for the next chunk.
        """
        return_state = check_bool(return_state, "return_state")
        y, h_n, (self._cache, self.gru._cache, self.head._cache) = self._forward(
            x, h0, lengths, self.training)
        return (y, h_n.copy()) if return_state else y     # copied only when asked for

    __call__ = forward

    def _forward(self, x, h0, lengths, training):
        """forward's work: ``(y, h_n, (the model's, the GRU's and the head's caches))``, the
        caches None in inference, when nothing on self changes (see predict). h_n is the
        GRU's own: the head's cache holds its last layer's state, so forward and predict
        hand out a copy when return_state asks for it, which a caller may reset in place."""
        out, h_n, gru_cache = self.gru._forward(x, h0, lengths, training)
        g = self.gru
        if self.mode == "many_to_one":
            D = g.num_directions
            # (B, D*H), or (D*H,) for an unbatched x
            feats = h_n[-1] if D == 1 else np.concatenate([h_n[-2], h_n[-1]], axis=-1)
            y, head_cache = self.head._forward(feats, training)
            mask = None
        else:
            y, head_cache = self.head._forward(out, training)  # (T, B, O) or (B, T, O)
            mask = None
            if lengths is not None:
                T = out.shape[1] if g.batch_first else out.shape[0]
                lengths = check_lengths(lengths, out.shape[0] if g.batch_first else out.shape[1], T)
                valid = np.arange(T)[:, None] < lengths[None, :]  # (T, B)
                mask = (valid.T if g.batch_first else valid)[..., None]
                y = y * mask  # not in place: the head caches y for its backward
        return y, h_n, ((h_n.shape, mask, y.shape) if training else None, gru_cache, head_cache)

    def backward(self, dy):
        """dy (shape of y) -> dx (shape of x); accumulates every parameter gradient."""
        if self._cache is None:
            raise RuntimeError("backward() needs a preceding forward() in training mode")
        hn_shape, mask, y_shape = self._cache
        # checked before the cache is dropped: a bad dy leaves the forward usable (as GRU's)
        dy = as_float_array(dy, "dy", dtype=self.dtype, shape=y_shape)
        self._cache = None
        g = self.gru
        if self.mode == "many_to_one":
            dfeats = self.head.backward(dy)  # (B, D*H), or (D*H,) unbatched
            dh_n = np.zeros(hn_shape, dtype=self.dtype)
            H = g.hidden_size
            if g.num_directions == 1:
                dh_n[-1] = dfeats
            else:
                dh_n[-2] = dfeats[..., :H]
                dh_n[-1] = dfeats[..., H:]
            return g.backward(None, dh_n)
        if mask is not None:
            # padded steps' dy is ignored, even a NaN or inf there (dy * mask made it NaN, and
            # with it the head's gradients)
            dy = np.where(mask, dy, dy.dtype.type(0))
        dout = self.head.backward(dy)
        return g.backward(dout)

    def predict(self, x, h0=None, *, lengths=None, return_state=False):
        """Inference: forward as in eval mode, but changing nothing on the model: not its
        training mode, nor a pending training forward's cache (forward, predict, backward
        works). So several threads can predict at once, also beside a training forward
        awaiting its backward (not beside an optimizer step, which changes the weights it
        reads). A subclass that overrides forward predicts with it, without these
        guarantees. return_state: ``(y, h_n)``, as forward's."""
        return_state = check_bool(return_state, "return_state")
        if type(self).forward is not SequenceModel.forward:
            # a subclass's own forward (a residual, say) is what it predicts with: run it
            # in eval mode and put mode and caches back, not thread-safe (the way before)
            was, caches = self.training, (self._cache, self.gru._cache, self.head._cache)
            self.eval()
            try:
                # return_state only where asked: a forward written before it takes no such key
                return self.forward(x, h0, lengths=lengths,
                                    **({"return_state": True} if return_state else {}))
            finally:
                self.train(was)
                self._cache, self.gru._cache, self.head._cache = caches
        y, h_n, _ = self._forward(x, h0, lengths, training=False)
        return (y, h_n.copy()) if return_state else y     # copied only when asked for
