"""grucy.interop: torch both ways, Keras weights both ways (against Keras' own equations),
ONNX export run by ONNX Runtime."""
import os
import sys

import numpy as np
import pytest

from grucy import interop
from grucy.layers import GRU
from grucy.models import SequenceModel


# --- torch -----------------------------------------------------------------------------------
@pytest.mark.parametrize("batch_first", [False, True])
def test_to_torch_then_from_torch_round_trip(batch_first):
    torch = pytest.importorskip("torch")
    g = GRU(3, 4, num_layers=2, bidirectional=True, reset_after=True, batch_first=batch_first,
            dropout=0.25, dtype=np.float64, seed=0)
    m = interop.to_torch(g)
    assert isinstance(m, torch.nn.GRU) and m.batch_first == batch_first and m.dropout == 0.25
    assert m.weight_ih_l0.dtype == torch.float64
    x = np.random.default_rng(0).standard_normal((5, 2, 3))
    m.eval()
    g.eval()
    outt, hnt = m(torch.from_numpy(x))
    out, hn = g.forward(x)
    np.testing.assert_allclose(out, outt.detach().numpy(), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(hn, hnt.detach().numpy(), rtol=1e-10, atol=1e-12)
    back = interop.from_torch(m)
    for k, v in g.parameters().items():
        np.testing.assert_array_equal(back.parameters()[k], v)
    assert back.config()["dropout"] == 0.25 and back.batch_first == batch_first


@pytest.mark.parametrize("training", [False, True])
def test_torch_converters_keep_the_training_mode(training):
    """An eval-mode torch GRU with dropout came back in training mode, dropping out: its
    forward no longer gave the module's output, as from_torch promises."""
    torch = pytest.importorskip("torch")
    m = torch.nn.GRU(3, 4, num_layers=2, dropout=0.5, dtype=torch.float64).train(training)
    g = interop.from_torch(m)
    assert g.training is training
    assert interop.to_torch(g).training is training
    if not training:                   # no masks on either side: the same function
        x = np.random.default_rng(1).standard_normal((6, 2, 3))
        np.testing.assert_allclose(g.forward(x)[0], m(torch.from_numpy(x))[0].detach().numpy(),
                                   rtol=1e-10, atol=1e-12)


def test_torch_converters_reject_bad_input():
    torch = pytest.importorskip("torch")
    with pytest.raises(ValueError, match="reset_after"):
        interop.to_torch(GRU(2, 3))
    with pytest.raises(TypeError, match="gru"):
        interop.to_torch(torch.nn.GRU(2, 3))
    with pytest.raises(TypeError, match="module"):
        interop.from_torch(torch.nn.LSTM(2, 3))
    with pytest.raises(TypeError, match="module"):
        interop.from_torch(torch.nn.GRU(2, 3).half())
    mixed = torch.nn.GRU(2, 3)
    mixed.bias_hh_l0.data = mixed.bias_hh_l0.data.double()   # was cast to float32 silently
    with pytest.raises(TypeError, match="bias_hh_l0 is torch.float64"):
        interop.from_torch(mixed)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_torch_converters_without_bias(dtype):
    """torch's bias=False is grucy's, both ways: no bias parameters on either side, the
    weights copied exactly, the same outputs."""
    torch = pytest.importorskip("torch")
    tdt = torch.float64 if dtype == np.float64 else torch.float32
    m = torch.nn.GRU(2, 3, num_layers=2, bidirectional=True, bias=False, dtype=tdt)
    g = interop.from_torch(m)
    assert g.bias is False and g.dtype == dtype
    assert list(g.parameters()) == [name for name, _ in m.named_parameters()]
    x = np.random.default_rng(0).standard_normal((4, 2, 2)).astype(dtype)
    tol = dict(rtol=1e-5, atol=1e-6) if dtype == np.float32 else dict(rtol=1e-12, atol=1e-14)
    for got, want in zip(g.forward(x), m(torch.from_numpy(x))):
        np.testing.assert_allclose(got, want.detach().numpy(), **tol)
    back = interop.to_torch(g)
    assert back.bias is False and back.weight_ih_l0.dtype == tdt
    assert [n for n, _ in back.named_parameters()] == [n for n, _ in m.named_parameters()]
    for name, t in m.named_parameters():
        np.testing.assert_array_equal(getattr(back, name).detach().numpy(), t.detach().numpy(),
                                      err_msg=name)


# --- Keras -----------------------------------------------------------------------------------
def _keras_gru(x, kernel, rk, bias, reset_after, go_backwards=False):
    """Keras' GRU equations (keras/src/layers/rnn/gru.py), batch-first x (B, T, I), h0 = 0."""
    B, T, _ = x.shape
    H = rk.shape[0]
    sig = lambda a: 1 / (1 + np.exp(-a))  # noqa: E731
    if reset_after:
        in_b, rec_b = bias[0], bias[1]
    else:
        in_b, rec_b = bias, np.zeros_like(bias)
    h = np.zeros((B, H))
    outs = []
    steps = range(T - 1, -1, -1) if go_backwards else range(T)
    for t in steps:
        mx = x[:, t] @ kernel + in_b
        xz, xr, xh = mx[:, :H], mx[:, H:2 * H], mx[:, 2 * H:]
        if reset_after:
            mi = h @ rk + rec_b
            z = sig(xz + mi[:, :H])
            r = sig(xr + mi[:, H:2 * H])
            hh = np.tanh(xh + r * mi[:, 2 * H:])
        else:
            z = sig(xz + h @ rk[:, :H])
            r = sig(xr + h @ rk[:, H:2 * H])
            hh = np.tanh(xh + (r * h) @ rk[:, 2 * H:])
        h = z * h + (1 - z) * hh
        outs.append(h)
    return np.stack(outs, 1), h


@pytest.mark.parametrize("reset_after", [False, True])
def test_from_keras_matches_keras_equations(reset_after):
    rng = np.random.default_rng(0)
    I, H, B, T = 3, 4, 2, 5
    kernel = rng.standard_normal((I, 3 * H)) * 0.5
    rk = rng.standard_normal((H, 3 * H)) * 0.5
    bias = rng.standard_normal((2, 3 * H) if reset_after else (3 * H,)) * 0.5
    x = rng.standard_normal((B, T, I))
    ky, kh = _keras_gru(x, kernel, rk, bias, reset_after)
    g = interop.from_keras([kernel, rk, bias], reset_after=reset_after, batch_first=True)
    assert g.dtype == np.float64 and g.reset_after == reset_after
    out, h_n = g.forward(x)
    np.testing.assert_allclose(out, ky, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(h_n[0], kh, rtol=1e-10, atol=1e-12)
    back = interop.to_keras(g)
    for a, b in zip(back[0], [kernel, rk, bias]):
        if reset_after or a.shape == b.shape:
            np.testing.assert_allclose(a, b, rtol=1e-15, atol=1e-15)
    if reset_after:
        # the defaults: reset_after=True (Keras 2+'s), and grucy's time-major layout
        d = interop.from_keras([kernel, rk, bias])
        assert d.reset_after and not d.batch_first
        out, h_n = d.forward(np.ascontiguousarray(x.transpose(1, 0, 2)))
        np.testing.assert_allclose(out, ky.transpose(1, 0, 2), rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(h_n[0], kh, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("reset_after", [False, True])
@pytest.mark.parametrize("bias", [True, False])
def test_to_keras_then_keras_equations_match_grucy(reset_after, bias):
    """The seed-convention biases (b_hh non-zero) fold exactly into Keras' single bias; a GRU
    without biases exports zeros."""
    g = GRU(3, 4, num_layers=2, bidirectional=True, reset_after=reset_after, dtype=np.float64,
            batch_first=True, seed=3, bias=bias)
    x = np.random.default_rng(1).standard_normal((2, 6, 3))
    out, h_n = g.forward(x)
    layers = interop.to_keras(g)
    assert len(layers) == 2 and len(layers[0]) == 6
    assert bias or not any(w[k].any() for w in layers for k in (2, 5))
    inp = x
    for k, w in enumerate(layers):
        fy, fh = _keras_gru(inp, *w[:3], reset_after)
        by, bh = _keras_gru(inp, *w[3:], reset_after, go_backwards=True)
        np.testing.assert_allclose(h_n[2 * k], fh, rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(h_n[2 * k + 1], bh, rtol=1e-10, atol=1e-12)
        inp = np.concatenate([fy, by[:, ::-1]], axis=2)  # Bidirectional merge_mode="concat"
    np.testing.assert_allclose(out, inp, rtol=1e-10, atol=1e-12)
    g2 = interop.from_keras(layers, reset_after=reset_after, batch_first=True)
    np.testing.assert_allclose(g2.forward(x)[0], out, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("reset_after", [False, True])
def test_from_keras_without_bias_matches_keras_equations(reset_after):
    """A Keras layer with use_bias=False has two arrays (four when Bidirectional): from_keras
    gives a GRU with bias=False whose outputs follow Keras' equations with zero biases."""
    rng = np.random.default_rng(2)
    I, H, B, T = 3, 4, 2, 5
    x = rng.standard_normal((B, T, I))
    zero = np.zeros((2, 3 * H) if reset_after else (3 * H,))
    layers = [[rng.standard_normal(s) * 0.5 for s in [(I, 3 * H), (H, 3 * H)] * 2],
              [rng.standard_normal(s) * 0.5 for s in [(2 * H, 3 * H), (H, 3 * H)] * 2]]
    g = interop.from_keras(layers, reset_after=reset_after, batch_first=True)
    assert not g.bias and not any(k.startswith("bias") for k in g.parameters())
    out, h_n = g.forward(x)
    inp = x
    for k, w in enumerate(layers):
        fy, fh = _keras_gru(inp, w[0], w[1], zero, reset_after)
        by, bh = _keras_gru(inp, w[2], w[3], zero, reset_after, go_backwards=True)
        np.testing.assert_allclose(h_n[2 * k], fh, rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(h_n[2 * k + 1], bh, rtol=1e-10, atol=1e-12)
        inp = np.concatenate([fy, by[:, ::-1]], axis=2)
    np.testing.assert_allclose(out, inp, rtol=1e-10, atol=1e-12)
    # one unidirectional layer: [kernel, recurrent_kernel]
    one = interop.from_keras(layers[0][:2], reset_after=reset_after, batch_first=True)
    ky, kh = _keras_gru(x, *layers[0][:2], zero, reset_after)
    assert not one.bias
    np.testing.assert_allclose(one.forward(x)[0], ky, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("reset_after", [False, True])
def test_from_keras_without_bias_keeps_float32(reset_after):
    """A float32 layer with use_bias=False: the zero biases standing in for Keras' missing
    ones are made in the weights' dtype, which the dtype check compares them with."""
    rng = np.random.default_rng(5)
    I, H, B, T = 3, 4, 2, 5
    kernel, rk = (rng.standard_normal(s).astype(np.float32) * 0.5 for s in ((I, 3 * H), (H, 3 * H)))
    x = rng.standard_normal((B, T, I)).astype(np.float32)
    g = interop.from_keras([kernel, rk], reset_after=reset_after, batch_first=True)
    assert g.dtype == np.float32 and not g.bias
    zero = np.zeros((2, 3 * H) if reset_after else (3 * H,))
    ky, _ = _keras_gru(x.astype(np.float64), kernel.astype(np.float64), rk.astype(np.float64), zero, reset_after)
    np.testing.assert_allclose(g.forward(x)[0], ky, rtol=1e-5, atol=1e-6)


def test_a_huge_view_of_the_wrong_shape_is_refused_before_any_copy():
    """Regression: from_keras and negate_z made their arrays C-contiguous before checking
    their shapes: a zero-strided view of 2**40 columns was numpy's MemoryError (24 TiB)."""
    huge = np.broadcast_to(np.zeros((1, 1)), (3, 2**40))
    with pytest.raises(ValueError, match=r"weights\[0\] kernel must have shape \(I, 12\)"):
        interop.from_keras([huge, np.zeros((4, 12)), np.zeros((2, 12))])
    with pytest.raises(ValueError, match=r"recurrent_kernel must have shape \(H, 3H\)"):
        interop.from_keras([np.zeros((3, 12)), huge, np.zeros((2, 12))])
    with pytest.raises(ValueError, match=r"bias must have shape \(2, 12\)"):
        interop.from_keras([np.zeros((3, 12)), np.zeros((4, 12)), huge])
    with pytest.raises(ValueError, match=r"a must have 3H rows"):
        interop.negate_z(np.broadcast_to(np.zeros((1, 1)), (2**40, 4)))


def test_from_keras_rejects_bad_weights():
    k, rk = np.zeros((3, 12)), np.zeros((4, 12))
    with pytest.raises(ValueError, match="bias"):
        interop.from_keras([k, rk, np.zeros(12)], reset_after=True)
    with pytest.raises(ValueError, match=r"weights\[0\] bias must have shape \(12,\)"):
        interop.from_keras([k, rk, np.zeros((2, 12))], reset_after=False)
    with pytest.raises(ValueError, match="kernel"):
        interop.from_keras([np.zeros((3, 9)), rk, np.zeros((2, 12))])
    with pytest.raises(ValueError, match="recurrent_kernel must have shape"):
        interop.from_keras([k, np.zeros((3, 12)), np.zeros((2, 12))])
    # stacked layers: one hidden size and dtype, and layer k > 0 reads D*H inputs
    layer0 = [k, rk, np.zeros((2, 12))]
    wider = [np.zeros((4, 15)), np.zeros((5, 15)), np.zeros((2, 15))]   # H = 5, 4 inputs
    with pytest.raises(ValueError, match=r"weights\[1\] has hidden size 5"):
        interop.from_keras([layer0, wider])
    with pytest.raises(ValueError, match=r"weights\[1\] has hidden size 4/float32"):
        interop.from_keras([layer0, [a.astype(np.float32) for a in (np.zeros((4, 12)), rk,
                                                                     np.zeros((2, 12)))]])
    with pytest.raises(ValueError, match=r"weights\[1\] kernel must have 4 input rows, got 5"):
        interop.from_keras([layer0, [np.zeros((5, 12)), rk, np.zeros((2, 12))]])
    with pytest.raises(ValueError, match=r"weights: every layer needs .* got lengths \[5\]"):
        interop.from_keras([[k, rk, np.zeros((2, 12)), k, rk]])
    # with biases and without in one stack: which was meant is a guess
    with pytest.raises(ValueError, match=r"the same number in every layer, got lengths \[2, 3\]"):
        interop.from_keras([layer0, [np.zeros((4, 12)), rk]])
    with pytest.raises(TypeError, match="weights"):
        interop.from_keras([])
    with pytest.raises(TypeError, match="gru"):
        interop.to_keras("gru")


# --- ONNX ------------------------------------------------------------------------------------
def _ort_run(proto, feeds):
    ort = pytest.importorskip("onnxruntime")
    sess = ort.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"])
    return sess.run(None, feeds)


@pytest.mark.parametrize("reset_after", [False, True])
@pytest.mark.parametrize("bidirectional", [False, True])
@pytest.mark.parametrize("with_lengths", [False, True])
def test_onnx_gru_matches(reset_after, bidirectional, with_lengths, tmp_path):
    pytest.importorskip("onnx")
    g = GRU(3, 5, num_layers=2, bidirectional=bidirectional, reset_after=reset_after, seed=0)
    for p in g.parameters().values():  # larger weights make gate mistakes visible
        p *= 3
    rng = np.random.default_rng(0)
    x = rng.standard_normal((6, 4, 3)).astype(np.float32)
    lengths = np.array([6, 2, 4, 1], dtype=np.int32) if with_lengths else None
    path = tmp_path / "gru.onnx"
    proto = interop.to_onnx(g, path=str(path), with_lengths=with_lengths)
    assert path.exists()
    assert [n.op_type for n in proto.graph.node].count("GRU") == 2
    lbr = [a.i for n in proto.graph.node if n.op_type == "GRU" for a in n.attribute
           if a.name == "linear_before_reset"]
    assert lbr == [int(reset_after)] * 2
    feeds = {"x": x} if lengths is None else {"x": x, "lengths": lengths}
    out, h_n = _ort_run(proto, feeds)
    eout, eh = g.eval().forward(x, lengths=lengths)
    np.testing.assert_allclose(out, eout, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(h_n, eh, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("mode", ["many_to_one", "many_to_many"])
@pytest.mark.parametrize("activation", ["identity", "sigmoid", "softmax"])
@pytest.mark.parametrize("batch_first", [False, True])
def test_onnx_sequence_model_matches(mode, activation, batch_first):
    pytest.importorskip("onnx")
    m = SequenceModel(2, 4, 3, num_layers=2, bidirectional=True, reset_after=True, mode=mode,
                      activation=activation, batch_first=batch_first, seed=1)
    rng = np.random.default_rng(1)
    x = rng.standard_normal((3, 5, 2) if batch_first else (5, 3, 2)).astype(np.float32)
    lengths = np.array([5, 2, 3], dtype=np.int32)
    (y,) = _ort_run(interop.to_onnx(m, with_lengths=True), {"x": x, "lengths": lengths})
    np.testing.assert_allclose(y, m.predict(x, lengths=lengths), rtol=1e-4, atol=1e-5)
    (y,) = _ort_run(interop.to_onnx(m), {"x": x})
    np.testing.assert_allclose(y, m.predict(x), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("num_layers", [1, 3])
def test_onnx_many_to_one_reads_the_top_layer(num_layers):
    """The head reads the last layer's final states, whatever the depth (the other tests use
    two layers, where layer 1 is both the second and the last)."""
    pytest.importorskip("onnx")
    m = SequenceModel(2, 4, 3, num_layers=num_layers, bidirectional=True, mode="many_to_one",
                      seed=4)
    x = np.random.default_rng(5).standard_normal((5, 3, 2)).astype(np.float32)
    (y,) = _ort_run(interop.to_onnx(m), {"x": x})
    np.testing.assert_allclose(y, m.predict(x), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("with_lengths", [False, True])
def test_onnx_h0_input_matches_the_layers_h0(with_lengths):
    """Each layer's operator starts from its own D slices of h0 (L*D, B, H): a wrong slice,
    or the directions swapped, changes out and h_n."""
    pytest.importorskip("onnx")
    g = GRU(3, 5, num_layers=2, bidirectional=True, reset_after=False, seed=2)
    rng = np.random.default_rng(2)
    x = rng.standard_normal((6, 4, 3)).astype(np.float32)
    h0 = rng.standard_normal((4, 4, 5)).astype(np.float32)
    lengths = np.array([6, 2, 4, 1], dtype=np.int32) if with_lengths else None
    feeds = {"x": x, "h0": h0} | ({"lengths": lengths} if with_lengths else {})
    out, h_n = _ort_run(interop.to_onnx(g, with_lengths=with_lengths, with_h0=True), feeds)
    eout, eh = g.eval().forward(x, h0=h0, lengths=lengths)
    np.testing.assert_allclose(out, eout, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(h_n, eh, rtol=1e-4, atol=1e-5)
    assert not np.allclose(eh, g.forward(x, lengths=lengths)[1], atol=1e-3)   # h0 matters


@pytest.mark.parametrize("reset_after", [False, True])
def test_onnx_gru_without_bias_matches(reset_after):
    """bias=False exports an all-zero B: ONNX Runtime computes what the layer does."""
    pytest.importorskip("onnx")
    g = GRU(3, 5, num_layers=2, bidirectional=True, reset_after=reset_after, bias=False, seed=0)
    for p in g.parameters().values():
        p *= 3
    rng = np.random.default_rng(8)
    x = rng.standard_normal((6, 4, 3)).astype(np.float32)
    h0 = rng.standard_normal((4, 4, 5)).astype(np.float32)
    out, h_n = _ort_run(interop.to_onnx(g, with_h0=True), {"x": x, "h0": h0})
    eout, eh = g.eval().forward(x, h0=h0)
    np.testing.assert_allclose(out, eout, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(h_n, eh, rtol=1e-4, atol=1e-5)
    m = SequenceModel(3, 4, 2, mode="many_to_one", bias=False, seed=1)
    (y,) = _ort_run(interop.to_onnx(m), {"x": x})
    np.testing.assert_allclose(y, m.predict(x), rtol=1e-4, atol=1e-5)


def test_onnx_sequence_model_with_h0():
    pytest.importorskip("onnx")
    m = SequenceModel(2, 4, 3, num_layers=2, mode="many_to_one", seed=3)
    rng = np.random.default_rng(3)
    x = rng.standard_normal((5, 3, 2)).astype(np.float32)
    h0 = rng.standard_normal((2, 3, 4)).astype(np.float32)
    (y,) = _ort_run(interop.to_onnx(m, with_h0=True), {"x": x, "h0": h0})
    np.testing.assert_allclose(y, m.predict(x, h0=h0), rtol=1e-4, atol=1e-5)


def test_onnx_exports_float64_models_in_float32():
    pytest.importorskip("onnx")
    g = GRU(2, 3, reset_after=True, dtype=np.float64, seed=0)
    x = np.random.default_rng(0).standard_normal((4, 2, 2))
    out, h_n = _ort_run(interop.to_onnx(g), {"x": x.astype(np.float32)})
    np.testing.assert_allclose(out, g.forward(x)[0], rtol=1e-5, atol=1e-6)


def test_onnx_rejects_bad_input():
    pytest.importorskip("onnx")
    with pytest.raises(TypeError, match="model"):
        interop.to_onnx("model")
    with pytest.raises(ValueError, match="opset"):
        interop.to_onnx(GRU(1, 2), opset=9)
    with pytest.raises(ValueError, match="opset must be >= 14"):
        interop.to_onnx(GRU(1, 2), opset=13)
    assert [o.version for o in interop.to_onnx(GRU(1, 2)).opset_import] == [14]   # the default
    with pytest.raises(TypeError, match="path must be a str"):
        interop.to_onnx(GRU(1, 2), path=123)
    with pytest.raises(TypeError, match="with_lengths"):
        interop.to_onnx(GRU(1, 2), with_lengths=1)
    with pytest.raises(TypeError, match="with_h0"):
        interop.to_onnx(GRU(1, 2), with_h0="yes")


def test_to_onnx_refuses_a_path_with_a_nul_byte_by_name(tmp_path):
    """Regression: Python's bare "embedded null byte" ValueError, raised by the write once
    the graph was built, named neither the argument nor the path; nothing is written."""
    pytest.importorskip("onnx")
    with pytest.raises(ValueError, match=r"^path '.*/gru\.onnx\\x00' holds a NUL byte"):
        interop.to_onnx(GRU(1, 2), path=str(tmp_path / "gru.onnx") + "\0")
    assert os.listdir(tmp_path) == []


def test_to_onnx_takes_a_path_like_whose_path_is_bytes(tmp_path):
    """Regression: the checked path, bytes, was passed on to the write, which refused it as
    "path must be a str or os.PathLike, got bytes" though the caller gave a path-like. The
    file holds the same graph as one written from a str path."""
    pytest.importorskip("onnx")

    class BytesPath:
        def __fspath__(self):
            return os.fsencode(tmp_path / "b.onnx")
    m = GRU(2, 3, seed=0)
    proto = interop.to_onnx(m, path=BytesPath())
    interop.to_onnx(m, path=str(tmp_path / "s.onnx"))
    assert sorted(os.listdir(tmp_path)) == ["b.onnx", "s.onnx"]
    assert (tmp_path / "b.onnx").read_bytes() == (tmp_path / "s.onnx").read_bytes()
    assert (tmp_path / "b.onnx").read_bytes() == proto.SerializeToString()


def test_negate_z_checks_its_argument():
    np.testing.assert_array_equal(interop.negate_z(np.arange(6.0)), [0, 1, -2, -3, 4, 5])
    with pytest.raises(ValueError, match="3H"):
        interop.negate_z(np.zeros((4, 2)))
    with pytest.raises(ValueError, match="3H"):
        interop.negate_z(np.array(3.0))          # 0-d: no rows at all
    with pytest.raises(TypeError, match="a"):
        interop.negate_z("abc")


@pytest.mark.parametrize("blocked,call", [
    ("torch", lambda: interop.from_torch(object())),
    ("torch", lambda: interop.to_torch(GRU(1, 2, reset_after=True))),
    ("onnx", lambda: interop.to_onnx(GRU(1, 2))),
])
def test_converters_without_the_optional_package_say_what_to_install(blocked, call, monkeypatch):
    """torch/onnx are optional extras: without them the converter raises an ImportError that
    names the package (sys.modules[name] = None makes `import name` fail, as if not installed)."""
    for mod in [m for m in list(sys.modules) if m == blocked or m.startswith(blocked + ".")]:
        monkeypatch.delitem(sys.modules, mod)
    monkeypatch.setitem(sys.modules, blocked, None)
    with pytest.raises(ImportError, match=f"pip install {blocked}"):
        call()


def test_onnx_zero_length_rows_keep_h0():
    """A row of length 0 never steps: its h_n is its h0 (as grucy's forward and torch's
    per-row semantics), though ONNX Runtime's GRU writes 0 there; for a many_to_one model
    the head then sees h0's top layer."""
    pytest.importorskip("onnx")
    g = GRU(3, 4, num_layers=2, bidirectional=True, seed=1)
    rng = np.random.default_rng(4)
    x = rng.standard_normal((5, 3, 3)).astype(np.float32)
    h0 = rng.standard_normal((4, 3, 4)).astype(np.float32)
    lengths = np.array([0, 2, 5], dtype=np.int32)
    out, h_n = _ort_run(interop.to_onnx(g, with_lengths=True, with_h0=True),
                        {"x": x, "lengths": lengths, "h0": h0})
    np.testing.assert_array_equal(h_n[:, 0], h0[:, 0])
    np.testing.assert_array_equal(out[:, 0], 0)
    eout, eh = g.eval().forward(x, h0=h0, lengths=lengths)
    np.testing.assert_allclose(h_n, eh, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(out, eout, rtol=1e-4, atol=1e-5)

    m = SequenceModel(3, 4, 2, num_layers=2, mode="many_to_one", seed=5)
    h0 = h0[:2]
    (y,) = _ort_run(interop.to_onnx(m, with_lengths=True, with_h0=True),
                    {"x": x, "lengths": lengths, "h0": h0})
    head = m.head.weight.astype(np.float64) @ h0[1, 0].astype(np.float64) + m.head.bias
    np.testing.assert_allclose(y[0], head, rtol=1e-5, atol=1e-6)


def test_to_onnx_replaces_a_file_atomically(tmp_path, monkeypatch):
    """The file is written beside the target and renamed over it, as checkpoints are: a
    write that fails leaves the old file whole and no temporary behind."""
    onnx = pytest.importorskip("onnx")
    import grucy.io
    path = tmp_path / "gru.onnx"
    path.write_bytes(b"the old model")

    def fail(fd):
        raise OSError("disk full")
    monkeypatch.setattr(grucy.io.os, "fsync", fail)
    with pytest.raises(OSError, match="disk full"):
        interop.to_onnx(GRU(2, 3, seed=0), path=path)
    assert path.read_bytes() == b"the old model"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["gru.onnx"]
    monkeypatch.undo()
    proto = interop.to_onnx(GRU(2, 3, seed=0), path=path)
    assert onnx.load(str(path)) == proto


def test_onnx_batch_first_gru_matches():
    """A bare batch_first GRU's graph transposes out back to (B, T, D*H): only models with a
    head were exported batch_first before, so a wrong permutation there went unseen."""
    pytest.importorskip("onnx")
    g = GRU(3, 5, bidirectional=True, batch_first=True, seed=0)
    x = np.random.default_rng(1).standard_normal((4, 6, 3)).astype(np.float32)
    out, h_n = _ort_run(interop.to_onnx(g), {"x": x})
    eout, eh = g.eval().forward(x)
    assert out.shape == (4, 6, 10)
    np.testing.assert_allclose(out, eout, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(h_n, eh, rtol=1e-4, atol=1e-5)


def test_to_onnx_refuses_an_opset_newer_than_onnx_knows():
    # opset 29 or 1000 passed onnx.checker and was written; ONNX Runtime refused the file
    onnx = pytest.importorskip("onnx")
    newest = onnx.defs.onnx_opset_version()
    with pytest.raises(ValueError, match=f"opset must be <= {newest}, got {newest + 1}"):
        interop.to_onnx(GRU(2, 3, seed=0), opset=newest + 1)
    assert interop.to_onnx(GRU(2, 3, seed=0), opset=newest).opset_import[0].version == newest
