"""Linear head and SequenceModel: activations, modes, gradients, masking, training on a sine."""
import numpy as np
import pytest

from grucy import losses, optim
from grucy.layers import GRU, Linear
from grucy.models import SequenceModel


@pytest.mark.parametrize("activation", ["identity", "sigmoid", "softmax"])
def test_linear_forward_and_gradients(activation, numeric_grad):
    lin = Linear(4, 3, activation=activation, dtype=np.float64, seed=0)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 5, 4))
    dy = rng.standard_normal((2, 5, 3))
    y = lin.forward(x)
    z = x @ lin.weight.T + lin.bias  # numpy is fine in a test: independent reference
    expect = {"identity": z, "sigmoid": 1 / (1 + np.exp(-z)),
              "softmax": np.exp(z) / np.exp(z).sum(-1, keepdims=True)}[activation]
    np.testing.assert_allclose(y, expect, rtol=1e-12)
    lin.zero_grad()
    dx = lin.backward(dy)

    def scalar():
        return float((lin.forward(x) * dy).sum())

    np.testing.assert_allclose(dx, numeric_grad(scalar, x), rtol=1e-6, atol=1e-9)
    grads = {k: v.copy() for k, v in lin.gradients().items()}
    np.testing.assert_allclose(grads["weight"], numeric_grad(scalar, lin.weight), rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(grads["bias"], numeric_grad(scalar, lin.bias), rtol=1e-6, atol=1e-9)


def test_linear_init_matches_torch_bounds_and_seed():
    lin = Linear(100, 50, seed=3)
    assert np.abs(lin.weight).max() <= 0.1 and np.abs(lin.weight).max() > 0.09
    np.testing.assert_array_equal(lin.weight, Linear(100, 50, seed=3).weight)


@pytest.mark.parametrize("mode", ["many_to_one", "many_to_many"])
@pytest.mark.parametrize("bidirectional", [False, True])
@pytest.mark.parametrize("activation", ["identity", "sigmoid"])
# one layer too: a bidirectional stack of one has h_n of 2 rows, where h_n[-2] is row 0;
# batch_first with T != B: the padding mask's T and B come from the right axes
@pytest.mark.parametrize("num_layers,batch_first", [(2, False), (1, True)])
def test_sequence_model_gradients(mode, bidirectional, activation, num_layers, batch_first,
                                  numeric_grad):
    T, B, I, H, O = 5, 3, 2, 4, 2
    m = SequenceModel(I, H, O, num_layers=num_layers, bidirectional=bidirectional, mode=mode,
                      activation=activation, batch_first=batch_first, dtype=np.float64, seed=1)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((B, T, I) if batch_first else (T, B, I))
    lengths = np.array([5, 2, 3])
    y = m.forward(x, lengths=lengths)
    if mode == "many_to_one":
        assert y.shape == (B, O)
    else:
        assert y.shape == ((B, T, O) if batch_first else (T, B, O))
        for b, n in enumerate(lengths):       # padded steps are zero, valid ones are not
            rows = y[b] if batch_first else y[:, b]
            assert not rows[n:].any() and rows[:n].all()
    dy = rng.standard_normal(y.shape)
    m.zero_grad()
    dx = m.backward(dy)

    def scalar():
        return float((m.forward(x, lengths=lengths) * dy).sum())

    np.testing.assert_allclose(dx, numeric_grad(scalar, x), rtol=1e-6, atol=1e-8)
    grads = {k: v.copy() for k, v in m.gradients().items()}
    for name in ("gru.weight_hh_l0", f"gru.bias_ih_l{num_layers - 1}", "head.weight", "head.bias"):
        np.testing.assert_allclose(grads[name], numeric_grad(scalar, m.parameters()[name]),
                                   rtol=1e-6, atol=1e-8, err_msg=name)


def test_many_to_one_uses_each_sequences_last_valid_state():
    m = SequenceModel(2, 3, 1, bidirectional=True, dtype=np.float64, seed=0)
    x = np.random.default_rng(0).standard_normal((6, 2, 2))
    y = m.forward(x, lengths=[6, 3])
    y_short = m.forward(x[:3, 1:2])
    np.testing.assert_allclose(y[1:2], y_short, rtol=1e-12)


@pytest.mark.parametrize("pad", [1e9, np.inf, np.nan])
def test_many_to_many_masks_padding(pad):
    m = SequenceModel(2, 3, 2, mode="many_to_many", activation="sigmoid", dtype=np.float64, seed=0)
    x = np.random.default_rng(0).standard_normal((4, 2, 2))
    y = m.forward(x, lengths=[4, 1])
    assert not y[1:, 1].any() and y[1:, 0].all()
    m.zero_grad()
    dy = np.ones_like(y)
    dy[1:, 1] = pad  # targets at padded steps must not matter, not even a NaN or inf one
    m.backward(dy)
    g1 = {k: v.copy() for k, v in m.gradients().items()}
    m.forward(x, lengths=[4, 1])
    m.zero_grad()
    dy[1:, 1] = 0.0
    m.backward(dy)
    for name, g in m.gradients().items():
        np.testing.assert_array_equal(g1[name], g, err_msg=name)


def test_predict_and_eval_keep_no_cache_and_restore_mode():
    m = SequenceModel(2, 3, 1, num_layers=2, dropout=0.3, seed=0)
    x = np.random.default_rng(0).standard_normal((4, 2, 2)).astype(np.float32)
    p1 = m.predict(x)
    assert m.training and m._cache is None and m.gru._cache is None
    np.testing.assert_array_equal(p1, m.predict(x))
    with pytest.raises(RuntimeError):
        m.backward(np.ones_like(p1))


def test_predict_from_several_threads_changes_nothing_on_the_model(monkeypatch):
    """Validation spread over threads (ThreadPoolExecutor.map(model.predict, shards)): predict
    flipped the shared training flag to eval and back, and two overlapping calls, the second
    ending last, left it at eval; the next training backward() raised. Here each call waits
    inside its GRU forward (at its lengths check) until the calls overlap that way. Both
    predictions are the eval forward's, and the training forward before them still
    backpropagates."""
    import threading
    from grucy import layers
    m = SequenceModel(2, 8, 1, num_layers=2, dropout=0.3, seed=0)
    rng = np.random.default_rng(0)
    shards = [rng.standard_normal((20, 4, 2)).astype(np.float32) for _ in range(2)]
    expected = [m.eval().forward(s) for s in shards]
    m.train()
    y = m.forward(rng.standard_normal((5, 3, 2)).astype(np.float32))
    first_in, second_in, first_done = threading.Event(), threading.Event(), threading.Event()
    gates = {"first": (first_in, second_in), "second": (second_in, first_done)}
    real = layers.check_lengths

    def gated(*args):
        arrived, until = gates[threading.current_thread().name]
        arrived.set()
        assert until.wait(10)
        return real(*args)

    monkeypatch.setattr(layers, "check_lengths", gated)
    got = {}

    def first():
        got["first"] = m.predict(shards[0])

    def second():
        assert first_in.wait(10)       # the first call is inside its forward
        got["second"] = m.predict(shards[1])

    threads = [threading.Thread(target=f, name=f.__name__) for f in (first, second)]
    for t in threads:
        t.start()
    threads[0].join(10)
    first_done.set()                   # the second call ends after the first
    threads[1].join(10)
    monkeypatch.undo()
    assert m.training and m.gru.training and m.head.training
    np.testing.assert_array_equal(got["first"], expected[0])
    np.testing.assert_array_equal(got["second"], expected[1])
    m.backward(np.ones_like(y))        # the training forward's cache is still there


def test_a_subclass_that_overrides_forward_predicts_with_it():
    # predict ran the base class's forward work directly: a subclass's own forward (here a
    # skip connection from the last input step) trained with it and predicted without it
    class Skip(SequenceModel):
        def forward(self, x, h0=None, *, lengths=None, return_state=False):
            y = super().forward(x, h0, lengths=lengths, return_state=return_state)
            skip = x[-1, :, :1]
            return (y[0] + skip, y[1]) if return_state else y + skip

    m = Skip(2, 4, 1, dtype=np.float64, seed=0)
    x = np.random.default_rng(0).standard_normal((5, 3, 2))
    want = SequenceModel(2, 4, 1, dtype=np.float64, seed=0).predict(x) + x[-1, :, :1]
    np.testing.assert_array_equal(m.predict(x), want)
    y = m.forward(x)                       # a pending training forward survives predict
    np.testing.assert_array_equal(m.predict(x, return_state=True)[0], want)
    assert m.training
    m.backward(np.ones_like(y))

    class Older(SequenceModel):        # a forward written before return_state existed
        def forward(self, x, h0=None, *, lengths=None):
            return super().forward(x, h0, lengths=lengths) + x[-1, :, :1]

    np.testing.assert_array_equal(Older(2, 4, 1, dtype=np.float64, seed=0).predict(x), want)


@pytest.mark.parametrize("mode", ["many_to_one", "many_to_many"])
@pytest.mark.parametrize("bidirectional", [False, True])
def test_return_state_carries_a_sequence_across_chunks(mode, bidirectional):
    """Truncated BPTT and streaming over chunks need the GRU's final state, which a
    SequenceModel did not return: run in two chunks, each starting from the state the one
    before returned, the model gives what it gives on the whole sequence at once (for a
    bidirectional GRU only the forward direction carries over, so there the chunks' own
    h_n are compared with the GRU's on each chunk)."""
    m = SequenceModel(3, 5, 2, num_layers=2, mode=mode, bidirectional=bidirectional,
                      dtype=np.float64, seed=1)
    rng = np.random.default_rng(2)
    x = rng.standard_normal((9, 4, 3))
    for call in (m.forward, m.predict):
        y, h_n = call(x, return_state=True)
        _, want = m.gru.forward(x)
        np.testing.assert_array_equal(h_n, want)
        if bidirectional:
            continue
        y1, h1 = call(x[:4], return_state=True)
        y2, h2 = call(x[4:], h1, return_state=True)
        np.testing.assert_allclose(h2, h_n, rtol=0, atol=1e-14)
        if mode == "many_to_many":
            np.testing.assert_allclose(np.concatenate([y1, y2]), y, rtol=0, atol=1e-14)
        else:
            np.testing.assert_allclose(y2, y, rtol=0, atol=1e-14)
    # the returned state is the caller's: resetting it in place leaves the pending backward
    m.train()
    y, h_n = m.forward(x, return_state=True)
    dy = rng.standard_normal(y.shape)
    m.zero_grad()
    m.backward(dy)
    g1 = {k: v.copy() for k, v in m.gradients().items()}
    y, h_n = m.forward(x, return_state=True)
    h_n[...] = 0.0
    m.zero_grad()
    m.backward(dy)
    for k, v in m.gradients().items():
        np.testing.assert_array_equal(v, g1[k], err_msg=k)
    with pytest.raises(TypeError, match="return_state"):
        m.forward(x, return_state="yes")
    assert m.forward(x).shape == y.shape                      # y alone by default


def test_parameters_config_and_rebuild():
    m = SequenceModel(3, 5, 2, num_layers=2, bidirectional=True, reset_after=True,
                      activation="softmax", mode="many_to_many", dtype=np.float64, seed=9,
                      init={"scheme": "keras", "bias": 0.5})
    cfg = m.config()
    import json
    m2 = SequenceModel(**json.loads(json.dumps(cfg)))
    for k, v in m.parameters().items():
        np.testing.assert_array_equal(v, m2.parameters()[k])
    assert "head.weight" in m.parameters() and "gru.weight_ih_l1_reverse" in m.parameters()
    assert (m.parameters()["gru.bias_ih_l0"] == 0.5).all()
    assert m.parameters()["head.weight"].shape == (2, 10)


def test_softmax_head_outputs_distributions():
    m = SequenceModel(2, 4, 3, activation="softmax", seed=0)
    y = m.predict(np.random.default_rng(0).standard_normal((5, 6, 2)).astype(np.float32))
    np.testing.assert_allclose(y.sum(-1), 1.0, rtol=1e-6)
    assert (y > 0).all()


def _sine_batches(rng, n, T=20):
    phase = rng.uniform(0, 2 * np.pi, n)
    t = np.arange(T + 1)[:, None] * 0.3 + phase[None, :]
    s = np.sin(t).astype(np.float32)
    return s[:T, :, None], s[T][:, None]  # x (T, B, 1), next value (B, 1)


def test_loss_falls_on_a_sine_series():
    rng = np.random.default_rng(0)
    model = SequenceModel(1, 16, 1, seed=0)
    opt = optim.Adam(model.parameters(), lr=0.01)
    x_val, y_val = _sine_batches(np.random.default_rng(99), 64)
    first = losses.mse(model.predict(x_val), y_val)[0]
    for _ in range(150):
        x, y = _sine_batches(rng, 32)
        model.zero_grad()
        loss, grad = losses.mse(model.forward(x), y)
        model.backward(grad)
        optim.clip_grad_norm(model.gradients(), 1.0)
        opt.step(model.gradients())
    last = losses.mse(model.predict(x_val), y_val)[0]
    assert last < 0.1 * first and last < 0.02, (first, last)


def test_bad_model_arguments():
    with pytest.raises(ValueError, match="mode"):
        SequenceModel(1, 2, 1, mode="one_to_many")
    with pytest.raises(ValueError, match="activation"):
        SequenceModel(1, 2, 1, activation="relu")
    with pytest.raises(ValueError, match="output_size"):
        SequenceModel(1, 2, 0)
    with pytest.raises(TypeError, match="dtype"):
        SequenceModel(1, 2, 1, dtype=np.int32)
    with pytest.raises(ValueError, match="x"):
        SequenceModel(1, 2, 1).forward(np.zeros((3, 2, 5), np.float32))
    with pytest.raises(ValueError, match="lengths"):
        SequenceModel(1, 2, 1).forward(np.zeros((3, 2, 1), np.float32), lengths=[4, 1])
    m = SequenceModel(1, 2, 1)
    m.forward(np.zeros((3, 2, 1), np.float32))
    with pytest.raises(ValueError, match="dy"):
        m.backward(np.zeros((3, 1), np.float32))
    with pytest.raises(ValueError, match="params"):
        m.set_parameters({"lstm.w": np.zeros(1)})
    with pytest.raises(ValueError, match="in_features"):
        Linear(0, 1)
    with pytest.raises(ValueError, match="activation"):
        Linear(1, 1, activation="tanh")
    lin = Linear(2, 1)
    with pytest.raises(ValueError, match="x"):
        lin.forward(np.zeros((3, 4), np.float32))
    with pytest.raises(TypeError, match="x"):
        lin.forward(np.zeros((3, 2), np.float64))


@pytest.mark.parametrize("mode", ["many_to_one", "many_to_many"])
def test_a_rejected_backward_keeps_the_forward(mode):
    """Regression: backward dropped its cache before the head checked dy, so after a dy of the
    wrong shape or dtype the retry failed with 'needs a preceding forward()' (GRU's does not)."""
    m = SequenceModel(3, 4, 2, mode=mode, seed=0)
    x = np.random.default_rng(0).standard_normal((5, 2, 3)).astype(np.float32)
    y = m.forward(x, lengths=[5, 2])
    for bad in (np.ones(y.shape[:-1] + (3,), np.float32), np.ones(y.shape)):
        with pytest.raises((ValueError, TypeError), match="dy"):
            m.backward(bad)
    assert m.backward(np.ones_like(y)).shape == x.shape


@pytest.mark.parametrize("activation", ["sigmoid", "softmax"])
@pytest.mark.parametrize("mode", ["many_to_one", "many_to_many"])
def test_editing_the_prediction_in_place_leaves_the_gradients(activation, mode):
    """np.clip(y, eps, 1 - eps, out=y) before a loss is a numpy idiom: the head's backward
    reads y for the activation's derivative, so y must not be the array it caches.
    Reference: torch autograd on the same weights."""
    torch = pytest.importorskip("torch")
    m = SequenceModel(2, 4, 3, mode=mode, activation=activation, dtype=np.float64, seed=0)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((5, 3, 2))
    y = m.forward(x)
    dy = rng.standard_normal(y.shape)
    y *= 0.5
    m.backward(dy)
    out_, h_n = m.gru.eval().forward(x)
    feats = torch.tensor(h_n[-1] if mode == "many_to_one" else out_)
    w = torch.tensor(m.head.weight, requires_grad=True)
    b = torch.tensor(m.head.bias, requires_grad=True)
    z = feats @ w.T + b
    out = torch.sigmoid(z) if activation == "sigmoid" else torch.softmax(z, -1)
    (out * torch.tensor(dy)).sum().backward()
    np.testing.assert_allclose(m.head.gradients()["weight"], w.grad.numpy(), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(m.head.gradients()["bias"], b.grad.numpy(), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("mode", ["many_to_one", "many_to_many"])
def test_predict_between_forward_and_backward_keeps_the_training_forward(mode, numeric_grad):
    """forward, predict (say on a validation batch), backward: the gradients are the training
    forward's, checked against float64 finite differences."""
    m = SequenceModel(2, 3, 2, num_layers=2, mode=mode, dtype=np.float64, seed=0)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((4, 3, 2))
    y = m.forward(x)
    dy = rng.standard_normal(y.shape)
    m.predict(rng.standard_normal((6, 5, 2)))
    m.zero_grad()
    m.backward(dy)
    w = m.head.weight

    def scalar():
        return float((m.predict(x) * dy).sum())

    np.testing.assert_allclose(m.gradients()["head.weight"], numeric_grad(scalar, w), rtol=1e-6, atol=1e-9)
    w = m.gru.weight_hh_l0
    np.testing.assert_allclose(m.gradients()["gru.weight_hh_l0"], numeric_grad(scalar, w),
                               rtol=1e-6, atol=1e-9)


def test_a_refused_set_parameters_changes_nothing_and_names_the_full_key():
    """The GRU part was copied before the head part was checked: a wrong head.weight raised
    but left the GRU overwritten, and the message said 'weight', not 'head.weight'."""
    m = SequenceModel(2, 3, 1, num_layers=2, seed=0)
    before = {k: v.copy() for k, v in m.parameters().items()}
    new = {k: v + 1 for k, v in before.items()}
    new["head.weight"] = np.zeros((5, 5), np.float32)
    with pytest.raises(ValueError, match=r"params\['head.weight'\] must have shape \(1, 3\)"):
        m.set_parameters(new)
    del new["head.weight"]
    with pytest.raises(ValueError, match="missing.*head.weight"):
        m.set_parameters(new)
    with pytest.raises(ValueError, match="unknown names.*gru.weight_xx"):
        m.set_parameters({"gru.weight_xx": np.zeros(3)}, strict=False)
    with pytest.raises(ValueError) as e:          # both layers' names, not the GRU's alone
        m.set_parameters({})
    assert str(e.value) == f"params is missing {sorted(before)}"
    for k, v in m.parameters().items():
        np.testing.assert_array_equal(v, before[k], err_msg=k)


@pytest.mark.parametrize("key", ["head", "gru"])
def test_set_parameters_refuses_a_layer_name_without_a_parameter_name(key):
    """Regression (found by a mutation round): "head" or "gru" alone passed the check of
    the names' prefix, which split at a "." it does not have, and then matched neither
    layer's "head." or "gru.": with strict=False it was ignored without a word (and with
    strict=True named as missing parameters, not as an unknown name)."""
    m = SequenceModel(2, 3, 1, seed=0)
    before = {k: v.copy() for k, v in m.parameters().items()}
    for strict in (False, True):
        with pytest.raises(ValueError, match=rf"^params has unknown names \['{key}'\]; expected "):
            m.set_parameters({key: np.zeros(1), "head.bias": np.ones(1)}, strict=strict)
    for k, v in m.parameters().items():
        np.testing.assert_array_equal(v, before[k], err_msg=k)


def test_defaults_repr_train_and_set_parameters_checks():
    """SequenceModel's GRU arguments default as GRU's do; repr shows the config; train()
    with no argument is training mode; set_parameters names a non-dict or a foreign key."""
    import inspect
    gru_defaults = {k: v.default for k, v in inspect.signature(GRU).parameters.items()
                    if v.default is not inspect.Parameter.empty}
    ours = {k: v.default for k, v in inspect.signature(SequenceModel).parameters.items()
            if k in gru_defaults}
    assert ours == gru_defaults
    m = SequenceModel(2, 3, 1, seed=4)
    assert m.gru.num_layers == 1 and m.gru.reset_after is False
    r = repr(m)
    assert r.startswith("SequenceModel(input_size=2, hidden_size=3, output_size=1,") and r.endswith(")")
    m.eval()
    assert m.train() is m and m.training and m.gru.training and m.head.training
    with pytest.raises(TypeError, match="params must be a dict"):
        m.set_parameters([("head.bias", np.zeros(1))])
    for bad in ({"tail.bias": np.zeros(1)}, {1: np.zeros(1)}, {"headbias": np.zeros(1)}):
        with pytest.raises(ValueError, match="params has unknown names"):
            m.set_parameters(bad)


def test_eval_turns_the_grus_dropout_off():
    """model.eval() reaches the GRU: its forward then drops nothing out, and equals
    torch.nn.GRU in eval mode on the same weights (z blocks negated) with the head in numpy.
    A mutant whose train()/eval() set only the head's mode survived: evaluation dropped out
    half the states between layers."""
    torch = pytest.importorskip("torch")
    I, H, O = 2, 4, 3
    m = SequenceModel(I, H, O, num_layers=2, reset_after=True, dropout=0.5, dtype=np.float64,
                      seed=0)
    gru = torch.nn.GRU(I, H, num_layers=2, dropout=0.5, dtype=torch.float64).eval()
    with torch.no_grad():
        for name, t in gru.named_parameters():       # z blocks negated (README, "The maths")
            w = m.parameters()["gru." + name].copy()
            w[H:2 * H] *= -1
            t.copy_(torch.from_numpy(w))
        x = np.random.default_rng(1).standard_normal((6, 3, I))
        _, h_n = gru(torch.from_numpy(x))
    expect = h_n[-1].numpy() @ m.head.weight.T + m.head.bias
    assert m.eval() is m and not (m.training or m.gru.training or m.head.training)
    np.testing.assert_allclose(m.forward(x), expect, rtol=1e-10, atol=1e-12)
    m.train()
    assert m.gru.training and m.head.training


def test_head_weights_are_not_drawn_from_the_grus_stream():
    """The head has its own seed: drawn from the GRU's generator state, its weights would be
    the GRU's first draws rescaled (perfectly correlated with weight_ih_l0)."""
    m = SequenceModel(3, 4, 2, seed=7, dtype=np.float64)
    head = m.head.weight.ravel() * np.sqrt(4)            # U(-1, 1) draws, head fan-in 4
    gru = m.gru.weight_ih_l0.ravel()[:head.size] * np.sqrt(4)
    assert abs(np.corrcoef(head, gru)[0, 1]) < 0.9


def test_linear_accumulates_sizes_repr_and_large_softmax_logits():
    """backward accumulates dW (as it does db) until zero_grad; a 1-D x is one row; a
    softmax head is max-shifted (logits near 1000 overflow exp otherwise); out_features 0 is
    refused; repr shows the config."""
    rng = np.random.default_rng(0)
    lin = Linear(3, 2, dtype=np.float64, seed=0)
    x, dy = rng.standard_normal((4, 3)), rng.standard_normal((4, 2))
    lin.zero_grad()
    lin.forward(x)
    lin.backward(dy)
    for _ in range(2):
        lin.forward(x)
        lin.backward(dy)
    np.testing.assert_allclose(lin.gradients()["weight"], 3 * dy.T @ x, rtol=1e-13)
    np.testing.assert_allclose(lin.gradients()["bias"], 3 * dy.sum(0), rtol=1e-13)
    row = lin.forward(x[0])
    assert row.shape == (2,)
    np.testing.assert_allclose(row, x[0] @ lin.weight.T + lin.bias, rtol=1e-13)
    soft = Linear(3, 2, activation="softmax", dtype=np.float64, seed=0)
    soft.bias = np.array([1000.0, 999.0])
    with np.errstate(over="raise", invalid="raise"):
        p = soft.forward(np.zeros((1, 3)))
    np.testing.assert_allclose(p, [[1 / (1 + np.exp(-1.0)), 1 / (1 + np.exp(1.0))]], rtol=1e-13)
    with pytest.raises(ValueError, match="out_features must be >= 1"):
        Linear(3, 0)
    # the 32-bit BLAS's limit, before the initialiser tries to allocate the weights
    with pytest.raises(ValueError, match="out_features must be <= 2147483647"):
        Linear(3, 2**40)
    # and rows past it, before forward copies x (numpy's MemoryError for this view)
    x = np.broadcast_to(np.zeros((1, 1, 1), np.float32), (2**20, 2**20, 3))
    with pytest.raises(ValueError, match=r"^x has shape \(1048576, 1048576, 3\): N \(its leading "
                                         r"axes\) = 1099511627776 rows, but grucy's BLAS"):
        Linear(3, 2).forward(x)
    # and its features, before the copy too (numpy's MemoryError, 8 TiB, for this view)
    x = np.broadcast_to(np.zeros((1, 1), np.float32), (2, 2**40))
    with pytest.raises(ValueError, match=r"^x must have 3 features in its last axis"):
        Linear(3, 2).forward(x)
    assert repr(lin).startswith("Linear(in_features=3, out_features=2, activation='identity'")


def test_linear_backward_needs_a_forward_and_softmax_shifts_by_the_row_max():
    """backward before any forward (or twice after one) is a RuntimeError saying so; softmax
    subtracts each row's largest logit: logits 2000 apart must not overflow exp."""
    lin = Linear(3, 2, dtype=np.float64, seed=0)
    with pytest.raises(RuntimeError, match=r"backward\(\) needs a preceding forward\(\)"):
        lin.backward(np.zeros((1, 2)))
    lin.forward(np.zeros((1, 3)))
    lin.backward(np.zeros((1, 2)))
    with pytest.raises(RuntimeError, match=r"backward\(\) needs a preceding forward\(\)"):
        lin.backward(np.zeros((1, 2)))
    soft = Linear(3, 2, activation="softmax", dtype=np.float64, seed=0)
    soft.bias = np.array([1000.0, -1000.0])
    soft.weight = np.zeros((2, 3))
    with np.errstate(over="raise", invalid="raise", under="ignore"):
        p = soft.forward(np.zeros((1, 3)))
    np.testing.assert_allclose(p, [[1.0, np.exp(-2000.0)]], rtol=1e-13, atol=0)


@pytest.mark.parametrize("shape", [(5, 2, 3), (10, 3), (30,)])
def test_linear_backward_refuses_a_dy_of_the_same_size_but_another_shape(shape):
    """dy must have y's shape: one of the same size but another shape reshaped silently to
    (N, out_features), its rows then paired with the wrong inputs (a mutant without the
    check survived). y here is (2, 5, 3)."""
    lin = Linear(4, 3, dtype=np.float64, seed=0)
    lin.forward(np.ones((2, 5, 4)))
    with pytest.raises(ValueError, match=r"dy must have shape \(2, 5, 3\)"):
        lin.backward(np.ones(shape))
    assert not lin.gradients()["weight"].any()


def test_a_softmax_head_shifts_each_row_by_its_own_max():
    """Rows of logits near +1000 and near -1000 in one batch: each is shifted by its own
    largest logit. A mutant shifting every row by the batch's largest survived the one-row
    tests above; here it makes the low row exp(-2000) / exp(-2000) = 0 / 0. Reference: with
    two classes, softmax is sigmoid(z0 - z1), 1 here in every row."""
    soft = Linear(3, 2, activation="softmax", dtype=np.float64, seed=0)
    soft.weight = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
    soft.bias = np.zeros(2)
    x = np.array([[1000.0, 999.0, 0.0], [-1000.0, -1001.0, 5.0], [0.5, -0.5, 0.0]])
    with np.errstate(over="raise", invalid="raise", under="ignore"):
        p = soft.forward(x)
    s = 1 / (1 + np.exp(-1.0))
    np.testing.assert_allclose(p, [[s, 1 - s]] * 3, rtol=1e-13)


def test_model_and_gru_take_h0_and_lengths_alike():
    """SequenceModel.forward/predict take (x, h0, lengths=) as GRU.forward does: h0 passed
    by position is the model's GRU's h0, and lengths is keyword only in both, so a call
    written for one never gives the other's argument a meaning it does not have."""
    T, B, I, H = 4, 3, 2, 5
    m = SequenceModel(I, H, 1, mode="many_to_many", dtype=np.float64, seed=0)
    rng = np.random.default_rng(1)
    x = rng.standard_normal((T, B, I))
    h0 = rng.standard_normal((1, B, H))
    lengths = np.array([4, 1, 2])
    out, _ = m.gru.forward(x, h0, lengths=lengths)
    head = out @ m.head.weight.T + m.head.bias
    expect = head * (np.arange(T)[:, None] < lengths)[..., None]
    np.testing.assert_allclose(m.forward(x, h0, lengths=lengths), expect, rtol=1e-12)
    np.testing.assert_allclose(m.predict(x, h0, lengths=lengths), expect, rtol=1e-12)
    for call in (m.forward, m.predict, m.gru.forward):
        with pytest.raises(TypeError):
            call(x, h0, lengths)


@pytest.mark.parametrize("bad", [1, "yes", None])
def test_return_state_must_be_a_bool_in_predict_as_in_forward(bad):
    # predict(x, return_state="no") returned the (y, h_n) pair: a truthy string read as True
    m = SequenceModel(2, 3, 1, seed=0)
    x = np.zeros((4, 2, 2), np.float32)
    for call in (m.forward, m.predict):
        with pytest.raises(TypeError, match="^return_state must be a bool, got "):
            call(x, return_state=bad)
    y, h_n = m.predict(x, return_state=np.bool_(True))      # numpy's bool is one
    assert y.shape == (2, 1) and h_n.shape == (1, 2, 3)


def test_a_linear_layer_in_eval_mode_keeps_no_cache_and_backward_then_fails():
    # as the GRU: an eval forward's backward is refused, not run on that forward's inputs
    lin = Linear(2, 3, seed=0)
    x = np.ones((4, 2), np.float32)
    lin.forward(x)
    assert lin._cache is not None
    lin.eval()
    lin.forward(x)
    assert lin._cache is None
    with pytest.raises(RuntimeError):
        lin.backward(np.ones((4, 3), np.float32))


def test_sequence_model_without_gru_biases():
    """bias=False is the GRU's: no gru.bias_* parameters, the head keeps its bias and takes an
    override of bias alone; the config rebuilds the model."""
    import json
    m = SequenceModel(3, 4, 2, num_layers=2, bias=False, init={"bias": 0.5}, seed=2)
    assert m.config()["bias"] is False and m.gru.bias is False
    assert list(m.parameters()) == ["gru.weight_ih_l0", "gru.weight_hh_l0", "gru.weight_ih_l1",
                                    "gru.weight_hh_l1", "head.weight", "head.bias"]
    assert (m.parameters()["head.bias"] == 0.5).all()
    m2 = SequenceModel(**json.loads(json.dumps(m.config())))
    assert m2.config() == m.config()
    for k, v in m.parameters().items():
        np.testing.assert_array_equal(v, m2.parameters()[k])
    with pytest.raises(TypeError, match="bias must be a bool, got int"):
        SequenceModel(3, 4, 2, bias=1)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("mode", ["many_to_one", "many_to_many"])
@pytest.mark.parametrize("bidirectional", [False, True])
@pytest.mark.parametrize("bias", [True, False])
def test_unbatched_input_matches_torch(dtype, mode, bidirectional, bias):
    """x (T, I) as torch.nn.GRU takes it: y loses its B axis (many_to_one (O,), many_to_many
    (T, O)), and dx and every gradient are torch autograd's on the same weights."""
    torch = pytest.importorskip("torch")
    T, I, H, O = 5, 2, 4, 3
    m = SequenceModel(I, H, O, num_layers=2, bidirectional=bidirectional, reset_after=True,
                      mode=mode, batch_first=True, dtype=dtype, seed=3, bias=bias)
    D = m.gru.num_directions
    tdt = torch.float64 if dtype == np.float64 else torch.float32
    gru = torch.nn.GRU(I, H, num_layers=2, bidirectional=bidirectional, batch_first=True,
                       bias=bias, dtype=tdt)
    with torch.no_grad():
        for name, t in gru.named_parameters():       # z blocks negated (README, "The maths")
            w = m.parameters()["gru." + name].copy()
            w[H:2 * H] *= -1
            t.copy_(torch.from_numpy(w))
    w = torch.from_numpy(m.head.weight.copy()).requires_grad_()
    b = torch.from_numpy(m.head.bias.copy()).requires_grad_()
    rng = np.random.default_rng(4)
    x = rng.standard_normal((T, I)).astype(dtype)
    h0 = rng.standard_normal((2 * D, H)).astype(dtype)
    xt = torch.from_numpy(x).requires_grad_()
    out, h_n = gru(xt, torch.from_numpy(h0))
    feats = (torch.cat([h_n[-2], h_n[-1]]) if D == 2 else h_n[-1]) if mode == "many_to_one" else out
    yt = feats @ w.T + b
    y = m.forward(x, h0)
    dy = rng.standard_normal(y.shape).astype(dtype)
    (yt * torch.from_numpy(dy)).sum().backward()
    m.zero_grad()
    dx = m.backward(dy)
    tol = dict(rtol=1e-9, atol=1e-11) if dtype == np.float64 else dict(rtol=2e-4, atol=2e-5)
    assert y.shape == ((O,) if mode == "many_to_one" else (T, O)) and dx.shape == (T, I)
    np.testing.assert_allclose(y, yt.detach().numpy(), **tol)
    np.testing.assert_allclose(m.predict(x, h0), y, **tol)
    np.testing.assert_allclose(dx, xt.grad.numpy(), **tol)
    grads = m.gradients()
    np.testing.assert_allclose(grads["head.weight"], w.grad.numpy(), **tol)
    np.testing.assert_allclose(grads["head.bias"], b.grad.numpy(), **tol)
    for name, t in gru.named_parameters():
        expect = t.grad.numpy().copy()
        expect[H:2 * H] *= -1
        np.testing.assert_allclose(grads["gru." + name], expect, err_msg=name, **tol)
