"""grucy.init: the schemes draw what they promise, per model, reproducibly."""
import numpy as np
import pytest

from grucy import init
from grucy.layers import GRU
from grucy.models import SequenceModel


def test_pytorch_scheme_is_uniform_one_over_sqrt_h():
    H = 25
    g = GRU(7, H, num_layers=2, bidirectional=True, seed=0)
    for name, p in g.parameters().items():
        assert np.abs(p).max() <= 1 / np.sqrt(H) + 1e-7, name
        assert np.abs(p).max() > 0.9 / np.sqrt(H), name  # fills the interval
    allw = np.concatenate([p.ravel() for p in g.parameters().values()])
    assert abs(allw.mean()) < 0.01 and abs(allw.var() - (1 / H) / 3) < 0.1 * (1 / H) / 3


def test_keras_scheme_glorot_orthogonal_zero():
    I, H = 10, 6
    g = GRU(I, H, init="keras", dtype=np.float64, seed=1)
    limit = np.sqrt(6 / (I + 3 * H))
    assert np.abs(g.weight_ih_l0).max() <= limit and np.abs(g.weight_ih_l0).max() > 0.8 * limit
    for k in range(3):
        block = g.weight_hh_l0[k * H:(k + 1) * H]
        np.testing.assert_allclose(block @ block.T, np.eye(H), atol=1e-12)
    assert not g.bias_ih_l0.any() and not g.bias_hh_l0.any()


def test_override_dict_constant_bias_and_per_model_selection():
    g = GRU(3, 4, init={"weight_hh": "orthogonal", "bias": 1.0}, seed=0, dtype=np.float64)
    assert (g.bias_ih_l0 == 1.0).all() and (g.bias_hh_l0 == 1.0).all()
    w = g.weight_hh_l0[:4]
    np.testing.assert_allclose(w @ w.T, np.eye(4), atol=1e-12)
    assert np.abs(g.weight_ih_l0).max() <= 0.5  # pytorch base for the rest
    z = GRU(3, 4, init={"bias": "zeros"}, seed=0)
    assert not z.bias_hh_l0.any()


def test_orthogonal_non_square_and_reproducible():
    rng = np.random.default_rng(0)
    tall = init.orthogonal(rng, (8, 3), dtype=np.float64)
    np.testing.assert_allclose(tall.T @ tall, np.eye(3), atol=1e-12)
    wide = init.orthogonal(rng, (3, 8), dtype=np.float64)
    np.testing.assert_allclose(wide @ wide.T, np.eye(3), atol=1e-12)
    a = init.orthogonal(np.random.default_rng(5), (6, 2), blocks=3)
    b = init.orthogonal(np.random.default_rng(5), (6, 2), blocks=3)
    np.testing.assert_array_equal(a, b)


def test_seed_fixes_every_scheme():
    for scheme in ("pytorch", "keras"):
        a = GRU(3, 4, num_layers=2, init=scheme, seed=42)
        b = GRU(3, 4, num_layers=2, init=scheme, seed=42)
        c = GRU(3, 4, num_layers=2, init=scheme, seed=43)
        for k in a.parameters():
            np.testing.assert_array_equal(a.parameters()[k], b.parameters()[k])
        assert not np.array_equal(a.weight_ih_l1, c.weight_ih_l1)


def test_bad_init_names_the_argument():
    with pytest.raises(ValueError, match="init"):
        GRU(1, 2, init="he")
    with pytest.raises(ValueError, match="init"):
        GRU(1, 2, init={"weight_xx": "zeros"})
    with pytest.raises(ValueError, match="init"):
        GRU(1, 2, init={"bias": "ones"})
    with pytest.raises(TypeError, match="init"):
        GRU(1, 2, init=3)
    with pytest.raises(TypeError, match="rng"):
        init.uniform(0, (2,), 0.1)
    with pytest.raises(ValueError, match="blocks"):
        init.orthogonal(np.random.default_rng(), (4, 2), blocks=3)
    with pytest.raises(TypeError, match="shape"):
        init.glorot_uniform(np.random.default_rng(), [2, 2])


def test_init_from_a_hydra_dict_config_is_stored_as_plain_json():
    import json
    omegaconf = pytest.importorskip("omegaconf")
    cfg = omegaconf.OmegaConf.create({"init": {"scheme": "keras", "bias": 0.25}})
    g = GRU(2, 3, init=cfg.init, seed=0)
    assert (g.bias_hh_l0 == 0.25).all()
    assert json.loads(json.dumps(g.config()))["init"] == {"scheme": "keras", "bias": 0.25}


def test_public_initialisers_validate_every_argument():
    """Regression: uniform(dtype=int32) silently returned zeros, bound=nan an OverflowError
    naming nothing, init_gru_parameters(hidden_size=0) empty arrays."""
    rng = np.random.default_rng(0)
    for call, exc, name in [
        (lambda: init.uniform(rng, (2,), 0.1, dtype=np.int32), TypeError, "dtype"),
        (lambda: init.uniform(rng, (2,), float("nan")), ValueError, "bound"),
        (lambda: init.uniform(rng, (2,), -1.0), ValueError, "bound"),
        (lambda: init.glorot_uniform(rng, (2, 2), dtype="bogus"), TypeError, "dtype"),
        (lambda: init.orthogonal(rng, (2, 2), gain="x"), TypeError, "gain"),
        (lambda: init.orthogonal(rng, (2, 2), dtype=np.int8), TypeError, "dtype"),
        (lambda: init.constant((2,), "a"), TypeError, "value"),
        (lambda: init.constant((2,), 1.0, dtype=np.int64), TypeError, "dtype"),
        (lambda: init.init_gru_parameters(rng, -1, 3), ValueError, "input_size"),
        (lambda: init.init_gru_parameters(rng, 2, 0), ValueError, "hidden_size"),
        (lambda: init.init_linear_parameters(rng, 2, 0), ValueError, "out_features"),
        (lambda: init.init_linear_parameters(None, 2, 3), TypeError, "rng"),
        (lambda: GRU(1, 2, init={"bias": float("inf")}), ValueError, "init"),
    ]:
        with pytest.raises(exc, match=name):
            call()
    assert init.uniform(rng, (3,), 0.5, dtype=np.float64).dtype == np.float64


@pytest.mark.parametrize("value", [np.float32(0.5), np.int64(2), np.float64(0.25)])
def test_numpy_constant_in_an_init_dict_saves_and_loads(value, tmp_path):
    """init={"bias": np.float32(0.5)} built a model whose config was no JSON: grucy.save
    failed inside json.dumps."""
    import grucy
    m = grucy.SequenceModel(2, 3, 1, init={"bias": value}, seed=0)
    path = grucy.save(tmp_path / "m.npz", m)
    back = grucy.load(path).model
    np.testing.assert_array_equal(back.gru.bias_ih_l0, np.full(9, float(value), np.float32))
    np.testing.assert_array_equal(back.parameters()["head.bias"], np.float32(value))


def test_shapes_are_checked_and_empty_ones_allowed():
    """A float or negative size is refused naming shape (not numpy's error); a size of 0 is a
    valid empty array, also for glorot's limit (fan_in + fan_out = 0) and orthogonal."""
    rng = np.random.default_rng(0)
    for bad in [(2.0,), (-1,), (2, -3)]:
        with pytest.raises(TypeError, match="shape"):
            init.uniform(rng, bad, 0.1)
        with pytest.raises(TypeError, match="shape"):
            init.constant(bad, 1.0)
    assert init.uniform(rng, (0, 3), 0.1).shape == (0, 3)
    assert init.constant((0,), 1.0).shape == (0,)
    assert init.glorot_uniform(rng, (0, 0)).shape == (0, 0)
    with pytest.raises(ValueError, match="blocks"):
        init.orthogonal(rng, (4, 2), blocks=0)
    with pytest.raises(ValueError, match="blocks"):
        init.orthogonal(rng, (4, 2), blocks=2.0)


@pytest.mark.parametrize("scheme", ["pytorch", "keras", {"weight_ih": "orthogonal", "bias": 0.5}])
def test_drawn_shapes_and_bounds(scheme):
    """torch's layout, for H = 1 and I = 1 too (the uniform bound 1/sqrt(fan) is 1 there,
    not 0), and every orthogonal gate block of w_ih (H, I) orthonormal on its own."""
    rng = np.random.default_rng(0)
    for I, H in [(3, 4), (1, 1), (5, 2)]:
        w_ih, w_hh, b_ih, b_hh = init.init_gru_parameters(rng, I, H, scheme, dtype=np.float64)
        assert (w_ih.shape, w_hh.shape, b_ih.shape, b_hh.shape) == ((3 * H, I), (3 * H, H), (3 * H,), (3 * H,))
        if scheme == "pytorch":
            for a in (w_ih, w_hh, b_ih, b_hh):
                assert np.abs(a).max() <= 1 / np.sqrt(H) and a.any()
        if isinstance(scheme, dict):
            for k in range(3):
                blk = w_ih[k * H:(k + 1) * H]
                small = blk.T @ blk if H >= I else blk @ blk.T
                np.testing.assert_allclose(small, np.eye(min(H, I)), atol=1e-12)
    for I, O in [(1, 3), (4, 1)]:
        w, b = init.init_linear_parameters(rng, I, O, dtype=np.float64)
        assert w.shape == (O, I) and b.shape == (O,)
        assert np.abs(w).max() <= 1 / np.sqrt(I) and w.any() and b.any()
    w, _ = init.init_linear_parameters(rng, 4, 3, {"weight": "orthogonal"}, dtype=np.float64)
    np.testing.assert_allclose(w @ w.T, np.eye(3), atol=1e-12)      # the whole matrix


def test_orthogonal_is_haar_not_biased_by_qr_signs():
    """QR's R diagonal has a sign LAPACK picks (-sign(a11) for Householder): without folding it
    into Q, Q[0, 0] = -|a11| / |a1| is always negative. Haar: each entry is symmetric about 0
    (for 3x3, Q[0, 0] has mean 0 and variance 1/3; 2000 draws put the mean within 0.06)."""
    rng = np.random.default_rng(3)
    first = np.array([init.orthogonal(rng, (3, 3), dtype=np.float64)[0, 0] for _ in range(2000)])
    assert abs(first.mean()) < 0.06
    assert abs(first.var() - 1 / 3) < 0.05


def test_init_values_and_sizes_are_refused_by_name():
    rng = np.random.default_rng(0)
    for bad in [{"bias": True}, {"bias": "ones"}]:
        with pytest.raises(ValueError, match=r"init\['bias'\] must be one of"):
            init.resolve_scheme(bad)
    for bad in [{"bias": float("nan")}, {"bias": 10**400}]:   # float(10**400) overflows
        with pytest.raises(ValueError, match=r"init\['bias'\] must be finite"):
            init.resolve_scheme(bad)
    with pytest.raises(ValueError, match=r"init\['bias'\] must be finite, got a number of type int "
                                         "beyond float's range"):        # what was given, named
        init.resolve_scheme({"bias": 10**400})
    for scheme in ("he", ["keras"]):                      # a list is unhashable: not a TypeError
        with pytest.raises(ValueError, match=r"init\['scheme'\] must be one of"):
            init.resolve_scheme({"scheme": scheme})
    with pytest.raises(ValueError, match="shape must have 2 dimensions"):
        init.glorot_uniform(rng, (2,))
    for call, name in [(lambda: init.init_gru_parameters(rng, 0, 3), "input_size"),
                       (lambda: init.init_linear_parameters(rng, 0, 3), "in_features")]:
        with pytest.raises(ValueError, match=f"{name} must be >= 1"):
            call()


def test_values_beyond_the_dtypes_range_are_refused_by_name():
    # float32 holds up to 3.4e38: 1e39 became inf weights (numpy only warned), and every
    # output inf or NaN; float64 holds it
    rng = np.random.default_rng(0)
    for call, name in [(lambda d: init.constant((2,), 1e39, d), "value"),
                       (lambda d: init.uniform(rng, (2,), 1e39, d), "bound"),
                       (lambda d: init.orthogonal(rng, (2, 2), gain=-1e39, dtype=d), "gain")]:
        with pytest.raises(ValueError, match=f"^{name} must be within float32's range"):
            call(np.float32)
        assert np.isfinite(call(np.float64)).all()
    for layer, init_, name in [(lambda i, d: GRU(2, 3, init=i, dtype=d), {"bias": 1e39}, "bias"),
                               (lambda i, d: GRU(2, 3, init=i, dtype=d), {"weight_ih": 1e39}, "weight_ih"),
                               (lambda i, d: GRU(2, 3, init=i, dtype=d), {"weight_hh": 1e39}, "weight_hh"),
                               (lambda i, d: SequenceModel(2, 3, 1, init=i, dtype=d),
                                {"weight": -1e39}, "weight")]:
        with pytest.raises(ValueError, match=rf"^init\['{name}'\] must be within float32's"):
            layer(init_, np.float32)
        assert all(np.isfinite(p).all() for p in layer(init_, np.float64).parameters().values())
    # numpy draws U(-b, b) as -b + 2b·u in float64: 2b must be finite
    with pytest.raises(ValueError, match="^bound must be <="):
        init.uniform(rng, (2,), 1e308, np.float64)
    assert np.isfinite(init.uniform(rng, (2,), 8e307, np.float64)).all()   # 2b = 1.6e308: finite


def test_a_sequence_models_bias_override_sets_the_heads_too():
    """As grucy.init and SequenceModel document: the head gets the same dict."""
    from grucy.models import SequenceModel
    m = SequenceModel(2, 3, 4, init={"bias": 0.5, "weight": "zeros"}, seed=0)
    for name, p in m.parameters().items():
        if "bias" in name:
            assert (p == 0.5).all(), name
    assert not m.head.weight.any()
    assert m.gru.weight_hh_l0.any()               # 'weight' is the head's alone


@pytest.mark.parametrize("layer, key", [("GRU", "weight"), ("Linear", "weight_hh"),
                                        ("Linear", "weight_ih")])
def test_a_layer_refuses_a_key_it_does_not_draw(layer, key):
    # the layer drew its weights as if the key were not there, and the error for a typo
    # listed the other layer's keys as allowed
    import grucy
    make = getattr(grucy, layer)
    with pytest.raises(ValueError, match=rf"init\['{key}'\].*does not have"):
        make(2, 3, init={key: 0.5})
    with pytest.raises(ValueError, match="allowed") as typo:
        make(2, 3, init={"wieght": 0.5})
    assert f"'{key}'" not in str(typo.value)


def test_a_sequence_model_gives_each_layer_its_own_keys_and_keeps_them_all():
    import grucy
    init = {"scheme": "keras", "weight": 0.25, "weight_hh": 0.5, "bias": 1.0}
    m = SequenceModel(2, 3, 1, init=init, seed=0, dtype=np.float64)
    assert (m.head.weight == 0.25).all() and (m.gru.weight_hh_l0 == 0.5).all()
    assert (m.head.bias == 1.0).all() and (m.gru.bias_ih_l0 == 1.0).all()
    # the scheme reaches the GRU: its input weights are the ones a keras GRU draws
    alone = GRU(2, 3, init={"scheme": "keras"}, seed=0, dtype=np.float64)
    assert np.array_equal(m.gru.weight_ih_l0, alone.weight_ih_l0)
    assert not np.array_equal(m.gru.weight_ih_l0, GRU(2, 3, seed=0, dtype=np.float64).weight_ih_l0)
    assert m.config()["init"] == init             # what SequenceModel(**config) rebuilds
    assert SequenceModel(**m.config()).config() == m.config()
    with pytest.raises(ValueError, match="init has unknown key 'wieght'"):
        SequenceModel(2, 3, 1, init={"wieght": 0.5})
    assert grucy.init.part("keras", grucy.init.GRU_KEYS) == "keras"


@pytest.mark.parametrize("layer, stored", [("GRU", {"weight": 0.5, "bias": 1.0}),
                                           ("Linear", {"weight_hh": 0.5, "scheme": "keras"})])
def test_a_layer_saved_with_an_init_key_it_did_not_draw_still_loads(tmp_path, layer, stored):
    # saved before layers refused such keys (which had no effect): the file is good
    import grucy
    m = getattr(grucy, layer)(2, 3, seed=0)
    m.init = stored                               # what the layer kept then
    grucy.save(tmp_path / "old.npz", m)
    back = grucy.load(tmp_path / "old.npz").model
    for k, v in m.parameters().items():
        np.testing.assert_array_equal(back.parameters()[k], v, err_msg=k)
    assert back.config()["init"] == {k: v for k, v in stored.items() if k in ("bias", "scheme")}


def test_orthogonal_gain_scales_every_block():
    """orthogonal(gain=g) promises g times an orthogonal matrix per block; a gain that was
    dropped (the result still orthogonal) went unnoticed by every scheme, which use gain 1."""
    rng = np.random.default_rng(3)
    w = init.orthogonal(rng, (6, 3), blocks=2, gain=2.5, dtype=np.float64)
    for k in range(2):
        block = w[3 * k:3 * (k + 1)]
        np.testing.assert_allclose(block @ block.T, 2.5 ** 2 * np.eye(3), atol=1e-12)
    tall = init.orthogonal(rng, (5, 2), gain=0.5, dtype=np.float64)
    np.testing.assert_allclose(tall.T @ tall, 0.25 * np.eye(2), atol=1e-12)


def test_gru_parameters_are_drawn_in_the_documented_order():
    """init_gru_parameters draws w_ih, w_hh, b_ih, b_hh in that order from one generator, so a
    seed gives the same weights from release to release: checked against those four draws
    made directly with numpy, U(-1/sqrt(H), 1/sqrt(H)) each."""
    I, H = 3, 4
    got = init.init_gru_parameters(np.random.default_rng(11), I, H, dtype=np.float64)
    r = np.random.default_rng(11)
    b = 1 / np.sqrt(H)
    want = [r.uniform(-b, b, (3 * H, I)), r.uniform(-b, b, (3 * H, H)),
            r.uniform(-b, b, 3 * H), r.uniform(-b, b, 3 * H)]
    for name, g, w in zip(("w_ih", "w_hh", "b_ih", "b_hh"), got, want):
        np.testing.assert_array_equal(g, w, err_msg=name)


@pytest.mark.parametrize("layer, key, owner", [("GRU", "weight", "a Linear head's"),
                                               ("Linear", "weight_ih", "a GRU layer's"),
                                               ("Linear", "weight_hh", "a GRU layer's")])
def test_a_refused_init_key_is_named_as_the_other_layers_parameter(layer, key, owner):
    # 'weight' is what a Linear head draws, 'weight_ih'/'weight_hh' what a GRU draws
    import grucy
    with pytest.raises(ValueError, match=rf"^init\['{key}'\] is {owner} parameter, which this "
                                         r"layer does not have"):
        getattr(grucy, layer)(2, 3, init={key: 0.5})


@pytest.mark.parametrize("draw, key", [("init_gru_parameters", "weight"),
                                       ("init_linear_parameters", "weight_ih"),
                                       ("init_linear_parameters", "weight_hh")])
def test_the_public_draw_functions_refuse_a_key_they_do_not_draw(draw, key):
    # grucy.init.init_gru_parameters / init_linear_parameters are public (__all__): called
    # directly, a key they would ignore is refused as the layers refuse it
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match=rf"^init\['{key}'\] is .* parameter, which this layer "
                                         r"does not have"):
        getattr(init, draw)(rng, 2, 3, init={key: 0.5})
    getattr(init, draw)(rng, 2, 3, init={"bias": 0.5})       # a key both draw: accepted


def test_a_sequence_model_saved_with_both_layers_init_keys_loads_them_all(tmp_path):
    # load trims a stored init only for a lone layer: a SequenceModel keeps the head's
    # 'weight' beside the GRU's 'weight_hh', as SequenceModel(**config) needs them
    import grucy
    given = {"scheme": "keras", "weight": 0.25, "weight_hh": 0.5, "bias": 1.0}
    m = SequenceModel(2, 3, 1, init=given, seed=0)
    grucy.save(tmp_path / "m.npz", m)
    back = grucy.load(tmp_path / "m.npz").model
    assert back.config()["init"] == given
    assert (back.head.weight == 0.25).all() and (back.gru.weight_hh_l0 == 0.5).all()


def test_numpy_number_constants_are_kept_as_python_floats():
    """normalize keeps an init's constants as Python floats, so the config is JSON (the
    runner and grucy.save write it): json.dumps refuses an np.float32, and an np.int64 0 or
    an int would come back as another type than a float constant. A mutant keeping the
    values as given survived (grucy.save converts numpy numbers on its own)."""
    import json
    g = GRU(2, 3, init={"bias": np.float32(0.5), "weight_hh": np.int64(0)}, seed=0)
    config = g.config()
    assert json.loads(json.dumps(config))["init"] == {"bias": 0.5, "weight_hh": 0.0}
    assert all(type(v) is float for v in config["init"].values())
    np.testing.assert_array_equal(g.bias_ih_l0, np.full(9, 0.5, np.float32))
    np.testing.assert_array_equal(g.weight_hh_l0, np.zeros((9, 3), np.float32))
