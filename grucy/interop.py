"""Converters between grucy and PyTorch, Keras and ONNX (README.md, "The maths").

grucy's GRU uses rows [r | z | n] and h = (1 - z) h + z n.  Since sigma(-a) = 1 - sigma(a):

    torch.nn.GRU  = grucy reset_after=True with the z blocks (rows H:2H) of w_ih, w_hh, b_ih,
                    b_hh negated
    Keras GRU     = blocks [z | r | n], kernels transposed (I, 3H) and (H, 3H), z negated;
                    bias (3H,) (reset_after=False: one bias, the recurrent one is zero) or
                    (2, 3H) = [input bias; recurrent bias] (reset_after=True)
    ONNX GRU      = blocks [z | r | h] with W (D, 3H, I), R (D, 3H, H), B (D, 6H) = [Wb | Rb],
                    z negated; linear_before_reset = int(reset_after)

torch, onnx and onnxruntime are optional: imported inside the functions that need them.
"""
import numpy as np

from ._checks import as_float_array, check_bool, check_int, check_path
from .io import replacing
from .layers import GRU, _KINDS, _SUFFIXES
from .models import SequenceModel

__all__ = ["from_torch", "to_torch", "from_keras", "to_keras", "to_onnx", "negate_z"]


def negate_z(a):
    """Return a copy of a (3H, ...) gate-stacked array with its z block (rows H:2H) negated."""
    a = as_float_array(a, "a", contiguous=False)      # copied below, once its shape is checked
    if a.ndim < 1 or a.shape[0] % 3:
        raise ValueError(f"a must have 3H rows (gate blocks [r | z | n]), got shape {a.shape}")
    a = np.array(a, copy=True)
    H = a.shape[0] // 3
    a[H:2 * H] *= -1
    return a


def _rzn_to_zrn(a):
    """[r | z | n] rows (seed convention) -> [-z | r | n] rows (Keras/ONNX convention)."""
    H = a.shape[0] // 3
    return np.concatenate([-a[H:2 * H], a[:H], a[2 * H:]], axis=0)


def _zrn_to_rzn(a):
    """Inverse of :func:`_rzn_to_zrn`."""
    H = a.shape[0] // 3
    return np.concatenate([a[H:2 * H], -a[:H], a[2 * H:]], axis=0)


def _import_torch():
    try:
        import torch
    except ImportError:  # pragma: no cover - exercised only without torch
        raise ImportError("this converter needs PyTorch: pip install torch") from None
    return torch


# --- PyTorch --------------------------------------------------------------------------------
def from_torch(module):
    """Build a grucy GRU equal to a ``torch.nn.GRU`` (any layers/directions/batch_first).

    Args:
        module: a torch.nn.GRU on the CPU, float32 or float64.
    Returns:
        grucy.GRU with reset_after=True, the same sizes, bias, dropout, batch_first and
        training mode, whose ``forward`` gives the module's output and h_n (and backward its
        gradients).
    """
    torch = _import_torch()
    if not isinstance(module, torch.nn.GRU):
        raise TypeError(f"module must be a torch.nn.GRU, got {type(module).__name__}")
    dtypes = {torch.float32: np.float32, torch.float64: np.float64}
    wdtype = module.weight_ih_l0.dtype
    if wdtype not in dtypes:
        raise TypeError(f"module must be float32 or float64, got {wdtype}")
    for name, t in module.named_parameters():   # one dtype, or some would be cast silently
        if t.dtype != wdtype:
            raise TypeError(f"module's parameters must share one dtype: {name} is {t.dtype}, "
                            f"weight_ih_l0 {wdtype}")
    g = GRU(module.input_size, module.hidden_size, num_layers=module.num_layers,
            bidirectional=module.bidirectional, reset_after=True, batch_first=module.batch_first,
            dropout=float(module.dropout), dtype=dtypes[wdtype], bias=bool(module.bias))
    g.set_parameters({name: negate_z(getattr(module, name).detach().cpu().numpy())
                      for name in g.parameters()})
    g.train(bool(module.training))     # an eval-mode module must not come back dropping out
    return g


def to_torch(gru):
    """Build a ``torch.nn.GRU`` equal to a grucy GRU (which must have reset_after=True).

    Args:
        gru: grucy.GRU (reset_after=True; torch has no seed-style candidate).
    Returns:
        torch.nn.GRU with the same sizes, bias, dtype, dropout, batch_first and training mode.
    """
    torch = _import_torch()
    if not isinstance(gru, GRU):
        raise TypeError(f"gru must be a grucy GRU, got {type(gru).__name__}")
    if not gru.reset_after:
        raise ValueError("gru must have reset_after=True: torch.nn.GRU computes "
                         "n = tanh(W_in x + b_in + r * (W_hn h + b_hn))")
    tdtype = torch.float64 if gru.dtype == np.float64 else torch.float32
    m = torch.nn.GRU(gru.input_size, gru.hidden_size, num_layers=gru.num_layers,
                     bidirectional=gru.bidirectional, batch_first=gru.batch_first,
                     dropout=gru.dropout, bias=gru.bias, dtype=tdtype)
    with torch.no_grad():
        for name, arr in gru.parameters().items():
            getattr(m, name).copy_(torch.from_numpy(negate_z(arr)))
    m.train(gru.training)
    return m


# --- Keras ----------------------------------------------------------------------------------
def _keras_direction(kernel, recurrent_kernel, bias, reset_after, where):
    # not made contiguous (the reordering below copies them): a huge zero-strided view of the
    # wrong shape is then refused rather than copied first (numpy's MemoryError)
    kernel = as_float_array(kernel, f"{where} kernel", ndim=2, contiguous=False)
    dt = kernel.dtype
    rk = as_float_array(recurrent_kernel, f"{where} recurrent_kernel", dtype=dt, ndim=2,
                        contiguous=False)
    H = rk.shape[0]
    if rk.shape != (H, 3 * H):
        raise ValueError(f"{where} recurrent_kernel must have shape (H, 3H), got {rk.shape}")
    if kernel.shape[1] != 3 * H:
        raise ValueError(f"{where} kernel must have shape (I, {3 * H}), got {kernel.shape}")
    if bias is None:                        # use_bias=False: zeros, which the caller drops
        bias = np.zeros((2, 3 * H) if reset_after else (3 * H,), dt)
    bias = as_float_array(bias, f"{where} bias", dtype=dt, contiguous=False)
    if reset_after:
        if bias.shape != (2, 3 * H):
            raise ValueError(f"{where} bias must have shape (2, {3 * H}) for reset_after=True, got {bias.shape}")
        b_ih, b_hh = bias[0], bias[1]
    else:
        if bias.shape != (3 * H,):
            raise ValueError(f"{where} bias must have shape ({3 * H},) for reset_after=False, got {bias.shape}")
        b_ih, b_hh = bias, np.zeros_like(bias)
    return (_zrn_to_rzn(kernel.T), _zrn_to_rzn(rk.T), _zrn_to_rzn(b_ih), _zrn_to_rzn(b_hh)), H


def from_keras(weights, reset_after=True, batch_first=False):
    """Build a grucy GRU from Keras GRU weights.

    Args:
        weights: one layer's ``keras.layers.GRU.get_weights()`` = [kernel (I, 3H),
            recurrent_kernel (H, 3H), bias (3H,) or (2, 3H)] ([kernel, recurrent_kernel]
            from a layer with ``use_bias=False``), a ``Bidirectional(GRU)`` layer's 6 arrays
            (4 without biases; forward then backward), or a list of such lists, one per
            stacked layer (all with biases or all without); layers without biases give a
            grucy GRU with ``bias=False``.
        reset_after: the Keras layer's ``reset_after`` (Keras 2+ default True).
        batch_first: the returned GRU's layout (Keras is batch-first; default keeps grucy's
            time-major).
    Returns:
        grucy.GRU with the same function (dtype from the arrays).
    """
    reset_after = check_bool(reset_after, "reset_after")
    if not isinstance(weights, (list, tuple)) or not weights:
        raise TypeError("weights must be a non-empty list of arrays (or of per-layer lists)")
    layers = [weights] if isinstance(weights[0], np.ndarray) else list(weights)
    sizes = {len(w) if isinstance(w, (list, tuple)) else -1 for w in layers}
    if not sizes <= {2, 3, 4, 6} or len(sizes) != 1:
        raise ValueError("weights: every layer needs 3 arrays (GRU) or 6 (Bidirectional), "
                         "2 or 4 from layers with use_bias=False, the same number in every "
                         f"layer, got lengths {sorted(sizes)}")
    size, = sizes
    D = 2 if size in (4, 6) else 1
    n = size // D                          # arrays per direction: 3, or 2 without a bias
    params, H, input_size = {}, None, None
    for k, w in enumerate(layers):
        for d in range(D):
            arrays, h = _keras_direction(*w[n * d:n * d + 2], w[n * d + 2] if n == 3 else None,
                                         reset_after, f"weights[{k}]")
            if H is None:
                H, input_size, dt = h, arrays[0].shape[1], arrays[0].dtype
            if h != H or arrays[0].dtype != dt:
                raise ValueError(f"weights[{k}] has hidden size {h}/{arrays[0].dtype}, expected {H}/{dt}")
            want_in = input_size if k == 0 else D * H
            if arrays[0].shape[1] != want_in:
                raise ValueError(f"weights[{k}] kernel must have {want_in} input rows, got {arrays[0].shape[1]}")
            for kind, a in zip(_KINDS, arrays[:2] if n == 2 else arrays):
                params[f"{kind}_l{k}{_SUFFIXES[d]}"] = a
    g = GRU(input_size, H, num_layers=len(layers), bidirectional=D == 2, reset_after=reset_after,
            batch_first=batch_first, dtype=dt, bias=n == 3)
    g.set_parameters(params)
    return g


def to_keras(gru):
    """Export a grucy GRU's weights in Keras layout.

    Returns:
        a list with one entry per layer: [kernel (I, 3H), recurrent_kernel (H, 3H), bias] (6 arrays,
        forward then backward, when bidirectional) for ``layer.set_weights``.  bias is (2, 3H)
        when ``gru.reset_after`` else (3H,) with b_ih + b_hh folded together (exact: with the
        seed's candidate every recurrent bias sits outside the reset gate); zeros for a GRU
        with ``bias=False`` (the same function in a Keras layer with ``use_bias=True``).
    """
    if not isinstance(gru, GRU):
        raise TypeError(f"gru must be a grucy GRU, got {type(gru).__name__}")
    out = []
    for k in range(gru.num_layers):
        layer = []
        for d in range(gru.num_directions):
            w_ih, w_hh, b_ih, b_hh = gru._weights(k, d)
            kernel = np.ascontiguousarray(_rzn_to_zrn(w_ih).T)
            rk = np.ascontiguousarray(_rzn_to_zrn(w_hh).T)
            if gru.reset_after:
                bias = np.stack([_rzn_to_zrn(b_ih), _rzn_to_zrn(b_hh)])
            else:
                bias = _rzn_to_zrn(b_ih + b_hh)
            layer += [kernel, rk, bias]
        out.append(layer)
    return out


# --- ONNX -----------------------------------------------------------------------------------
def to_onnx(model, path=None, with_lengths=False, with_h0=False, opset=14):
    """Export a GRU or SequenceModel to an ONNX graph built on the standard ``GRU`` operator.

    Args:
        model: grucy.GRU or grucy.SequenceModel (float32; float64 models are exported in float32
            because ONNX Runtime's CPU GRU is float-only). A GRU with ``bias=False`` gets an
            all-zero ``B``, the same function.
        path: if given, the model is also written there.
        with_lengths: add an int32 input ``lengths`` (B,) fed to the operators' sequence_lens.
        with_h0: add a float32 input ``h0`` (L*D, B, H), the initial states (the layers'
            ``h0``; layer k's D directions go to its operator's initial_h). Without it the
            graph starts from zeros.
        opset: ONNX opset, from 14 to the newest the installed onnx knows.
    Graph:
        input ``x`` (T, B, I) ((B, T, I) if batch_first), float32 [, ``lengths`` (B,) int32]
            [, ``h0`` (L*D, B, H) float32]
        GRU: outputs ``out`` (T, B, D*H) ((B, T, D*H) if batch_first) and ``h_n`` (L*D, B, H)
        SequenceModel: output ``y`` (B, O), or (T, B, O) ((B, T, O) if batch_first)
    Returns:
        the onnx.ModelProto (checked with onnx.checker).
    """
    try:
        import onnx
        from onnx import TensorProto, helper, numpy_helper
    except ImportError:  # pragma: no cover
        raise ImportError("to_onnx needs the onnx package: pip install onnx") from None
    if isinstance(model, SequenceModel):
        gru, head = model.gru, model.head
    elif isinstance(model, GRU):
        gru, head = model, None
    else:
        raise TypeError(f"model must be a grucy GRU or SequenceModel, got {type(model).__name__}")
    with_lengths = check_bool(with_lengths, "with_lengths")
    with_h0 = check_bool(with_h0, "with_h0")
    # at most the newest opset this onnx knows: a later one passed onnx.checker and was
    # written, and ONNX Runtime then refused the file (ValidateOpsetForDomain)
    opset = check_int(opset, "opset", 14, onnx.defs.onnx_opset_version())
    if path is not None:
        path = check_path(path)       # refused before the graph is built, not at the write

    L, D, H = gru.num_layers, gru.num_directions, gru.hidden_size
    f32 = np.float32
    nodes, inits = [], []

    def const(name, arr):
        inits.append(numpy_helper.from_array(np.asarray(arr), name))
        return name

    x_name = "x"
    if gru.batch_first:
        nodes.append(helper.make_node("Transpose", ["x"], ["x_tm"], perm=[1, 0, 2]))
        x_name = "x_tm"
    seq = ""
    if with_lengths:
        seq = "lengths"
    inp = x_name
    yh = []
    shape_tbf = const("shape_tb_flat", np.array([0, 0, -1], dtype=np.int64))
    for k in range(L):
        W, R, B = [], [], []
        for d in range(D):
            w_ih, w_hh, b_ih, b_hh = gru._weights(k, d)
            W.append(_rzn_to_zrn(w_ih))
            R.append(_rzn_to_zrn(w_hh))
            B.append(np.concatenate([_rzn_to_zrn(b_ih), _rzn_to_zrn(b_hh)]))
        ins = [inp, const(f"W{k}", np.stack(W).astype(f32)), const(f"R{k}", np.stack(R).astype(f32)),
               const(f"B{k}", np.stack(B).astype(f32)), seq]      # "": no sequence_lens
        if with_h0:
            # initial_h (D, B, H) = h0[k*D:(k+1)*D]
            nodes.append(helper.make_node(
                "Slice", ["h0", const(f"h0_lo{k}", np.array([k * D], np.int64)),
                          const(f"h0_hi{k}", np.array([(k + 1) * D], np.int64)),
                          const(f"h0_ax{k}", np.array([0], np.int64))], [f"h0_{k}"]))
            ins.append(f"h0_{k}")
        while ins[-1] == "":                  # trailing optional inputs are left out
            ins.pop()
        yh_k = f"Yh{k}"
        if with_lengths and with_h0:
            yh_k = f"Yh{k}_raw"
        nodes.append(helper.make_node(
            "GRU", ins, [f"Y{k}", yh_k], name=f"gru_l{k}", hidden_size=H,
            direction="bidirectional" if D == 2 else "forward",
            linear_before_reset=int(gru.reset_after)))
        if with_lengths and with_h0:
            # ONNX Runtime's Y_h is 0 for a row of length 0; grucy (and torch) leave that row's
            # state at h0: h_n = where(lengths == 0, h0, Y_h)
            if k == 0:
                nodes += [
                    helper.make_node("Equal", ["lengths", const("len_zero", np.array(0, np.int32))],
                                     ["len_is0"]),
                    helper.make_node("Unsqueeze", ["len_is0", const("ax02", np.array([0, 2], np.int64))],
                                     ["empty_row"]),                   # (1, B, 1)
                ]
            nodes.append(helper.make_node("Where", ["empty_row", f"h0_{k}", yh_k], [f"Yh{k}"]))
        # Y (T, D, B, H) -> (T, B, D, H) -> (T, B, D*H)
        nodes.append(helper.make_node("Transpose", [f"Y{k}"], [f"Yt{k}"], perm=[0, 2, 1, 3]))
        nodes.append(helper.make_node("Reshape", [f"Yt{k}", shape_tbf], [f"out{k}"]))
        inp = f"out{k}"
        yh.append(f"Yh{k}")

    T_, B_ = "T", "B"
    x_shape = [B_, T_, gru.input_size] if gru.batch_first else [T_, B_, gru.input_size]
    inputs = [helper.make_tensor_value_info("x", TensorProto.FLOAT, x_shape)]
    if with_lengths:
        inputs.append(helper.make_tensor_value_info("lengths", TensorProto.INT32, [B_]))
    if with_h0:
        inputs.append(helper.make_tensor_value_info("h0", TensorProto.FLOAT, [L * D, B_, H]))
    outputs = []
    if head is None:
        if gru.batch_first:
            nodes.append(helper.make_node("Transpose", [inp], ["out"], perm=[1, 0, 2]))
        else:
            nodes.append(helper.make_node("Identity", [inp], ["out"]))
        nodes.append(helper.make_node("Concat", yh, ["h_n"], axis=0))
        shp = [B_, T_, D * H] if gru.batch_first else [T_, B_, D * H]
        outputs = [helper.make_tensor_value_info("out", TensorProto.FLOAT, shp),
                   helper.make_tensor_value_info("h_n", TensorProto.FLOAT, [L * D, B_, H])]
    else:
        wT = const("head_wT", np.ascontiguousarray(head.weight.T).astype(f32))
        b = const("head_b", head.bias.astype(f32))
        if model.mode == "many_to_one":
            # top layer's final states (D, B, H) -> (B, D, H) -> (B, D*H): [fwd | rev]
            nodes.append(helper.make_node("Transpose", [yh[-1]], ["feat_t"], perm=[1, 0, 2]))
            nodes.append(helper.make_node("Reshape", ["feat_t", const("shape_b_flat", np.array([0, -1], np.int64))],
                                          ["feat"]))
            y_shape = [B_, model.output_size]
        else:
            nodes.append(helper.make_node("Identity", [inp], ["feat"]))
            y_shape = [T_, B_, model.output_size]
        nodes.append(helper.make_node("MatMul", ["feat", wT], ["logits0"]))
        nodes.append(helper.make_node("Add", ["logits0", b], ["logits"]))
        act = {"identity": "Identity", "sigmoid": "Sigmoid", "softmax": "Softmax"}[head.activation]
        extra = {"axis": -1} if act == "Softmax" else {}
        y = "y_tm" if (model.mode == "many_to_many" and (with_lengths or gru.batch_first)) else "y"
        nodes.append(helper.make_node(act, ["logits"], [y], **extra))
        if model.mode == "many_to_many" and with_lengths:
            # zero the padded steps, as SequenceModel.forward does: mask[t, b] = t < lengths[b]
            nodes += [
                helper.make_node("Shape", [x_name], ["x_shape"]),
                helper.make_node("Gather", ["x_shape", const("zero_i", np.array(0, np.int64))], ["T_len"], axis=0),
                helper.make_node("Range", [const("r0", np.array(0, np.int64)), "T_len",
                                           const("r1", np.array(1, np.int64))], ["t_idx"]),
                helper.make_node("Unsqueeze", ["t_idx", const("ax1", np.array([1], np.int64))], ["t_col"]),
                helper.make_node("Cast", ["lengths"], ["len64"], to=TensorProto.INT64),
                helper.make_node("Unsqueeze", ["len64", const("ax0", np.array([0], np.int64))], ["len_row"]),
                helper.make_node("Less", ["t_col", "len_row"], ["valid"]),
                helper.make_node("Cast", ["valid"], ["valid_f"], to=TensorProto.FLOAT),
                helper.make_node("Unsqueeze", ["valid_f", const("ax2", np.array([2], np.int64))], ["mask"]),
                helper.make_node("Mul", [y, "mask"], ["y_masked"]),
            ]
            y = "y_masked"
        if model.mode == "many_to_many" and gru.batch_first:
            nodes.append(helper.make_node("Transpose", [y], ["y"], perm=[1, 0, 2]))
            y_shape = [B_, T_, model.output_size]
        elif y != "y":
            nodes.append(helper.make_node("Identity", [y], ["y"]))
        outputs = [helper.make_tensor_value_info("y", TensorProto.FLOAT, y_shape)]

    graph = helper.make_graph(nodes, "grucy", inputs, outputs, initializer=inits)
    proto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)],
                              producer_name="grucy")
    onnx.checker.check_model(proto)
    if path is not None:
        # as a checkpoint is: a crash mid-write leaves the old file or the new one, never half
        with replacing(path) as f:
            f.write(proto.SerializeToString())
    return proto
