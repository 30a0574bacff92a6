"""grucy.io: bitwise round trip, exact resume, atomic writes, clear errors for bad files."""
import json
import os
import pathlib
import zipfile

import numpy as np
import pytest

from grucy import io as gio
from grucy import losses, optim
from grucy.layers import GRU, Linear
from grucy.models import SequenceModel


def _arrays(path):
    """The archive's arrays as np.savez wrote them, read with zipfile and numpy alone."""
    with zipfile.ZipFile(path) as z:
        return {n[:-4]: np.load(z.open(n), allow_pickle=False) for n in z.namelist()}


def _header(arrays):
    """The archive's JSON header, from _arrays' dict."""
    return json.loads(arrays["__grucy__"].tobytes())


def _arrays_with_momentum(tmp_path, m):
    """_arrays of tmp_path/good.npz: m saved with an SGD optimizer that has taken one step,
    so that it holds a momentum buffer per parameter."""
    opt = optim.SGD(m.parameters(), lr=0.1, momentum=0.9)
    opt.step({k: np.ones_like(v) for k, v in m.parameters().items()})
    gio.save(tmp_path / "good.npz", m, opt)
    return _arrays(tmp_path / "good.npz")


def _rewrite(path, arrays, header=None, raw_header=None):
    """np.savez the arrays to path, with header (JSON) or raw_header (bytes) as the grucy
    header when given; arrays itself is left as it is. Returns path."""
    arrays = dict(arrays)
    if header is not None:
        raw_header = json.dumps(header).encode()
    if raw_header is not None:
        arrays["__grucy__"] = np.frombuffer(raw_header, np.uint8)
    np.savez(path, **arrays)
    return path


def _train(model, opt, steps, seed):
    rng = np.random.default_rng(seed)
    for _ in range(steps):
        x = rng.standard_normal((6, 4, 2)).astype(model.dtype)
        y = rng.standard_normal((4, 1)).astype(model.dtype)
        model.zero_grad()
        loss, g = losses.mse(model.forward(x), y)
        model.backward(g)
        opt.step(model.gradients())


@pytest.mark.parametrize("model", [
    SequenceModel(2, 5, 1, num_layers=2, bidirectional=True, reset_after=True, seed=0),
    GRU(3, 4, num_layers=2, dtype=np.float64, seed=1),
    Linear(3, 2, activation="softmax", seed=2),
    GRU(3, 4, num_layers=2, bidirectional=True, bias=False, seed=3),
    SequenceModel(2, 5, 1, num_layers=2, bias=False, seed=4),
])
def test_round_trip_is_bitwise(tmp_path, model):
    for p in model.parameters().values():  # values a float->text round trip would damage
        p += np.float32(1.0 / 3.0)
    path = tmp_path / "m.npz"
    assert gio.save(path, model, metadata={"epoch": 3, "note": "x"}) == str(path)
    ck = gio.load(path)
    assert type(ck.model) is type(model) and ck.model.config() == model.config()
    assert ck.metadata == {"epoch": 3, "note": "x"} and ck.optimizer_state is None
    for k, v in model.parameters().items():
        w = ck.model.parameters()[k]
        assert w.dtype == v.dtype and w.tobytes() == v.tobytes(), k


def test_resume_from_checkpoint_is_exact(tmp_path):
    ref = SequenceModel(2, 4, 1, seed=0)
    ref_opt = optim.Adam(ref.parameters(), lr=0.01)
    _train(ref, ref_opt, 6, seed=1)

    m = SequenceModel(2, 4, 1, seed=0)
    opt = optim.Adam(m.parameters(), lr=0.01)
    rng_data = np.random.default_rng(1)
    # same data stream: first 3 steps, checkpoint, then 3 steps from the loaded copy
    for _ in range(3):
        x = rng_data.standard_normal((6, 4, 2)).astype(np.float32)
        y = rng_data.standard_normal((4, 1)).astype(np.float32)
        m.zero_grad()
        m.backward(losses.mse(m.forward(x), y)[1])
        opt.step(m.gradients())
    gio.save(tmp_path / "c.npz", m, opt, metadata={"step": 3})
    ck = gio.load(tmp_path / "c.npz")
    opt2 = optim.Adam(ck.model.parameters())
    opt2.load_state_dict(ck.optimizer_state)
    assert opt2.lr == 0.01 and opt2.step_count == 3
    for _ in range(3):
        x = rng_data.standard_normal((6, 4, 2)).astype(np.float32)
        y = rng_data.standard_normal((4, 1)).astype(np.float32)
        ck.model.zero_grad()
        ck.model.backward(losses.mse(ck.model.forward(x), y)[1])
        opt2.step(ck.model.gradients())
    for k, v in ref.parameters().items():
        np.testing.assert_array_equal(ck.model.parameters()[k], v, err_msg=k)


def test_load_into_existing_model_and_mismatch(tmp_path):
    m = SequenceModel(2, 4, 1, seed=0)
    gio.save(tmp_path / "a.npz", m)
    other = SequenceModel(2, 4, 1, seed=5)
    ck = gio.load(tmp_path / "a.npz", model=other)
    assert ck.model is other
    np.testing.assert_array_equal(other.parameters()["head.weight"], m.parameters()["head.weight"])
    with pytest.raises(ValueError, match="hidden_size"):
        gio.load(tmp_path / "a.npz", model=SequenceModel(2, 8, 1))
    with pytest.raises(ValueError, match="stores a SequenceModel"):
        gio.load(tmp_path / "a.npz", model=GRU(2, 4))


def test_a_model_with_another_dropout_seed_or_init_takes_the_weights(tmp_path):
    """As documented, seed, init and dropout may differ from the stored config (they do not
    shape the weights): the weights are those stored, read back with zipfile and numpy, and
    the model keeps its own dropout. A mutant that compared dropout too survived."""
    m = SequenceModel(2, 4, 1, num_layers=2, dropout=0.25, seed=0)
    gio.save(tmp_path / "a.npz", m)
    stored = _arrays(tmp_path / "a.npz")
    other = SequenceModel(2, 4, 1, num_layers=2, dropout=0.5, seed=5, init="keras")
    assert gio.load(tmp_path / "a.npz", model=other).model is other
    for name, arr in other.parameters().items():
        np.testing.assert_array_equal(arr, stored["param/" + name], err_msg=name)
    assert other.gru.dropout == 0.5


@pytest.mark.parametrize("cls", [GRU, SequenceModel])
def test_bias_is_stored_and_a_mismatch_is_named(tmp_path, cls):
    """A bias=False checkpoint rebuilds a bias=False model; loading it into a model with
    biases, or one with biases into a model without, names bias as the difference."""
    sizes = (2, 4, 1) if cls is SequenceModel else (2, 4)
    without, with_ = cls(*sizes, bias=False, seed=0), cls(*sizes, seed=1)
    opt = optim.Adam(without.parameters())
    gio.save(tmp_path / "without.npz", without, opt)
    gio.save(tmp_path / "with.npz", with_)
    ck = gio.load(tmp_path / "without.npz")
    assert ck.model.config()["bias"] is False and ck.model.config() == without.config()
    assert not any("bias_" in k for k in ck.model.parameters() if not k.startswith("head."))
    optim.Adam(ck.model.parameters()).load_state_dict(ck.optimizer_state)
    with pytest.raises(ValueError, match=r"model does not match .*without\.npz\W*: bias True != "
                                         r"stored False$"):
        gio.load(tmp_path / "without.npz", model=cls(*sizes))
    with pytest.raises(ValueError, match=r"model does not match .*with\.npz\W*: bias False != "
                                         r"stored True$"):
        gio.load(tmp_path / "with.npz", model=cls(*sizes, bias=False))
    assert gio.load(tmp_path / "without.npz", model=cls(*sizes, bias=False, seed=5)).model


@pytest.mark.parametrize("cls", [GRU, SequenceModel])
def test_a_checkpoint_from_before_the_bias_setting_loads_with_biases(tmp_path, cls):
    # its config has no "bias": such a layer had biases, and a model passed in with them matches
    sizes = (2, 4, 1) if cls is SequenceModel else (2, 4)
    model = cls(*sizes, seed=0)
    gio.save(tmp_path / "new.npz", model)
    arrays = _arrays(tmp_path / "new.npz")
    header = _header(arrays)
    header["model"]["config"].pop("bias", None)     # as written by default too
    old = _rewrite(tmp_path / "old.npz", arrays, header)
    assert gio.load(old).model.config() == model.config()
    assert gio.load(old, model=cls(*sizes, seed=3)).model.config()["bias"] is True
    with pytest.raises(ValueError, match=r"bias False != stored True$"):
        gio.load(old, model=cls(*sizes, bias=False))


def test_a_checkpoint_from_before_the_bias_setting_is_sized_with_its_biases(tmp_path):
    # load bounds what it builds by the values the archive holds: a config without "bias"
    # (a layer that had biases) needs 3H(I + H + 2) = 96 for GRU(2, 4), and an archive
    # of its weights alone, 3H(I + H) = 72, is refused by that count, before building
    gio.save(tmp_path / "new.npz", GRU(2, 4, seed=0))
    arrays = {k: v for k, v in _arrays(tmp_path / "new.npz").items() if "bias" not in k}
    header = _header(arrays)
    header["model"]["config"].pop("bias", None)     # as written by default too
    header["params"] = [n for n in header["params"] if "bias" not in n]
    old = _rewrite(tmp_path / "old.npz", arrays, header)
    with pytest.raises(ValueError, match=r"stored model config is invalid: it needs 96 parameter "
                                         r"values, the archive holds 72 in all$"):
        gio.load(old)


# What a version-1 reader (grucy before bias=False and AMSGrad, which refuses keys it does
# not know) accepts: the keys of its config() and hyperparams(), written out here as the
# format's specification, not read from the code under test.
_V1_CONFIG = {
    "GRU": {"input_size", "hidden_size", "num_layers", "bidirectional", "reset_after",
            "batch_first", "dropout", "dtype", "seed", "init"},
    "SequenceModel": {"input_size", "hidden_size", "output_size", "num_layers", "bidirectional",
                      "reset_after", "dropout", "mode", "activation", "batch_first", "dtype",
                      "seed", "init"},
}
_V1_HYPERPARAMS = {"SGD": {"lr", "momentum", "dampening", "weight_decay", "nesterov"},
                   "Adam": {"lr", "betas", "eps", "weight_decay"},
                   "AdamW": {"lr", "betas", "eps", "weight_decay"}}


@pytest.mark.parametrize("cls", [GRU, SequenceModel])
@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("opt, amsgrad", [(None, False), ("SGD", False), ("Adam", False),
                                          ("Adam", True), ("AdamW", False), ("AdamW", True)])
def test_a_file_is_written_at_the_lowest_version_that_holds_it(tmp_path, cls, bias, opt, amsgrad):
    # version 2 only for a file a version-1 reader would misread or refuse as malformed:
    # one with bias=False or AMSGrad; every other file is version 1, keys and all
    sizes = (2, 4, 1) if cls is SequenceModel else (2, 4)
    model = cls(*sizes, bias=bias, seed=0)
    o = None
    if opt is not None:
        kw = {"amsgrad": amsgrad} if opt != "SGD" else {"momentum": 0.9}
        o = getattr(optim, opt)(model.parameters(), lr=0.1, **kw)
        o.step({k: np.ones_like(v) for k, v in model.parameters().items()})
    gio.save(tmp_path / "c.npz", model, o)
    header = _header(_arrays(tmp_path / "c.npz"))
    needs_2 = not bias or amsgrad
    assert header["version"] == (2 if needs_2 else 1)
    config = set(header["model"]["config"])
    assert config == _V1_CONFIG[cls.__name__] | ({"bias"} if not bias else set())
    if opt is not None:
        hyper = set(header["optimizer"]["hyperparams"])
        assert hyper == _V1_HYPERPARAMS[opt] | ({"amsgrad"} if amsgrad else set())
    # and it reads back as what was saved
    ckpt = gio.load(tmp_path / "c.npz")
    assert ckpt.model.config() == model.config()
    if opt is not None:
        back = getattr(optim, opt)(ckpt.model.parameters(), lr=0.5, **({"amsgrad": amsgrad}
                                                                         if opt != "SGD" else {}))
        back.load_state_dict(ckpt.optimizer_state)
        assert back.hyperparams() == o.hyperparams()


def test_a_plain_adam_checkpoint_is_refused_by_an_amsgrad_optimizer(tmp_path):
    # the file stores no "amsgrad" for plain Adam; loaded into AMSGrad it would turn it off
    m = Linear(2, 3, seed=0)
    o = optim.Adam(m.parameters(), lr=0.1)
    o.step({k: np.ones_like(v) for k, v in m.parameters().items()})
    gio.save(tmp_path / "c.npz", m, o)
    state = gio.load(tmp_path / "c.npz").optimizer_state
    with pytest.raises(ValueError, match=r"has amsgrad absent: the state is plain Adam's.*"
                                         r"amsgrad=False$"):
        optim.Adam(m.parameters(), amsgrad=True).load_state_dict(state)


def test_atomic_write_leaves_no_temp_and_keeps_old_file_on_failure(tmp_path, monkeypatch):
    m = Linear(2, 2, seed=0)
    path = tmp_path / "m.npz"
    gio.save(path, m)
    before = path.read_bytes()

    def boom(*a, **k):
        raise OSError("disk full")

    monkeypatch.setattr(gio.np, "savez", boom)
    with pytest.raises(OSError, match="disk full"):
        gio.save(path, Linear(2, 2, seed=1))
    assert path.read_bytes() == before
    assert os.listdir(tmp_path) == ["m.npz"]


def test_truncated_foreign_and_damaged_files_fail_clearly(tmp_path):
    m = SequenceModel(2, 3, 1, seed=0)
    good = tmp_path / "good.npz"
    gio.save(good, m, optim.SGD(m.parameters(), lr=0.1, momentum=0.9))
    data = good.read_bytes()

    trunc = tmp_path / "trunc.npz"
    trunc.write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match="not a grucy checkpoint|truncated|damaged"):
        gio.load(trunc)

    foreign = tmp_path / "foreign.npz"
    np.savez(foreign, a=np.zeros(3))
    with pytest.raises(ValueError, match="not a grucy checkpoint"):
        gio.load(foreign)

    text = tmp_path / "text.npz"
    text.write_text("hello")
    with pytest.raises(ValueError, match="not a grucy checkpoint"):
        gio.load(text)

    pickled = tmp_path / "pickled.npz"
    np.savez(pickled, __grucy__=np.array([{"a": 1}], dtype=object))
    with pytest.raises(ValueError, match="pickle|damaged"):
        gio.load(pickled)

    # a newer format version is refused, not misread
    arrays = _arrays(good)
    header = _header(arrays)
    header["version"] = 99
    newer = _rewrite(tmp_path / "newer.npz", arrays, header)
    with pytest.raises(ValueError, match="version 99"):
        gio.load(newer)

    # parameter arrays that disagree with the stored config
    header["version"] = 1
    arrays["param/head.weight"] = np.zeros((5, 5), np.float32)
    bad = _rewrite(tmp_path / "bad.npz", arrays, header)
    with pytest.raises(ValueError, match="head.weight"):
        gio.load(bad)

    with pytest.raises(FileNotFoundError):
        gio.load(tmp_path / "missing.npz")


def test_save_rejects_bad_arguments(tmp_path):
    m = Linear(2, 2)
    with pytest.raises(TypeError, match="model"):
        gio.save(tmp_path / "x.npz", object())
    with pytest.raises(TypeError, match="path"):
        gio.save(3, m)
    with pytest.raises(ValueError, match="path"):
        gio.save(tmp_path, m)
    with pytest.raises(TypeError, match="metadata"):
        gio.save(tmp_path / "x.npz", m, metadata={"a": object()})
    with pytest.raises(TypeError, match="metadata"):
        gio.save(tmp_path / "x.npz", m, metadata=[1])
    # JSON would load these keys back as "3" and "true": refused, naming where
    with pytest.raises(TypeError, match=r"metadata\['scores'\]\[0\] keys must be str.*got 3"):
        gio.save(tmp_path / "x.npz", m, metadata={"scores": [{3: 0.5}]})
    with pytest.raises(TypeError, match="metadata keys must be str.*got True"):
        gio.save(tmp_path / "x.npz", m, metadata={True: 1})
    assert not (tmp_path / "x.npz").exists()
    with pytest.raises(TypeError, match="optimizer"):
        gio.save(tmp_path / "x.npz", m, optimizer="adam")
    with pytest.raises(ValueError, match="optimizer"):
        gio.save(tmp_path / "x.npz", m, optimizer=optim.SGD({"zz": np.zeros(2)}, lr=0.1))
    # same names, other shapes: saved once, and the checkpoint could never be resumed
    other = Linear(3, 2)
    o = optim.Adam(other.parameters())
    o.step(other.gradients())
    with pytest.raises(ValueError, match="optimizer must be built on this model"):
        gio.save(tmp_path / "y.npz", m, optimizer=o)
    assert not (tmp_path / "y.npz").exists()
    with pytest.raises(TypeError, match="path"):
        gio.load(None)


class _Exploit:
    """Unpickling this creates a directory: proof that a pickle inside the file was executed."""

    def __init__(self, target):
        self.target = target

    def __reduce__(self):
        return (os.mkdir, (self.target,))


def test_load_never_unpickles(tmp_path):
    """np.load(allow_pickle=False): an object array planted in a checkpoint is refused, not run."""
    m = Linear(2, 2, seed=0)
    good = tmp_path / "good.npz"
    gio.save(good, m)
    arrays = _arrays(good)
    target = tmp_path / "pwned"
    arrays["param/weight"] = np.array([_Exploit(str(target))], dtype=object)
    evil = _rewrite(tmp_path / "evil.npz", arrays)
    with pytest.raises(ValueError, match="pickle|damaged"):
        gio.load(evil)
    assert not target.exists()


def test_write_is_fsynced_then_renamed_then_directory_fsynced(tmp_path, monkeypatch):
    events = []
    real_fsync, real_replace = os.fsync, os.replace

    def fsync(fd):
        events.append(("fsync", os.path.isdir(f"/proc/self/fd/{fd}") if os.path.exists("/proc/self/fd")
                       else None))
        return real_fsync(fd)

    def replace(src, dst):
        events.append(("replace", os.path.dirname(src) == os.path.dirname(os.fspath(dst)),
                       os.path.getsize(src) > 0))
        return real_replace(src, dst)

    monkeypatch.setattr(gio.os, "fsync", fsync)
    monkeypatch.setattr(gio.os, "replace", replace)
    path = tmp_path / "m.npz"
    gio.save(path, Linear(2, 2, seed=0))
    kinds = [e[0] for e in events]
    assert kinds == ["fsync", "replace", "fsync"], events
    assert events[1][1:] == (True, True)  # same directory (a rename, not a copy), full file
    if events[0][1] is not None:
        assert events[0][1] is False and events[2][1] is True  # the file, then its directory
    assert sorted(os.listdir(tmp_path)) == ["m.npz"]


def test_checkpoint_permissions_follow_the_umask(tmp_path):
    """Regression: tempfile.mkstemp made every checkpoint mode 0600, whatever the umask."""
    old = os.umask(0o022)
    try:
        gio.save(tmp_path / "m.npz", Linear(2, 2, seed=0))
    finally:
        os.umask(old)
    assert (tmp_path / "m.npz").stat().st_mode & 0o777 == 0o644


def _sine_step(model, opt, rng):
    x = rng.standard_normal((5, 3, 2)).astype(model.dtype)
    model.zero_grad()
    if isinstance(model, GRU):
        out, h_n = model.forward(x)
        _, g_out = losses.mse(out, np.zeros_like(out))
        _, g_h = losses.mse(h_n, np.ones_like(h_n))
        model.backward(g_out, g_h)
    else:
        y = model.forward(x, lengths=np.array([5, 2, 4]))
        model.backward(losses.mse(y, np.full(y.shape, 0.5, model.dtype))[1])
    opt.step(model.gradients())


MODELS = {
    # dropout: the masks after the checkpoint must be those the straight run drew
    "gru": lambda: GRU(2, 4, num_layers=2, bidirectional=True, dropout=0.3, dtype=np.float64, seed=3),
    "seq_m2o": lambda: SequenceModel(2, 4, 1, num_layers=2, bidirectional=True, dropout=0.5,
                                     seed=4),
    "seq_m2m": lambda: SequenceModel(2, 3, 2, mode="many_to_many", activation="sigmoid",
                                     reset_after=True, dtype=np.float64, seed=5),
}
OPTIMIZERS = [
    ("SGD", dict(lr=0.05, momentum=0.9, nesterov=True, weight_decay=0.01), ("StepLR", dict(step_size=2, gamma=0.5))),
    ("Adam", dict(lr=0.01, weight_decay=0.01), ("CosineAnnealingLR", dict(T_max=3, eta_min=0.001))),
    ("AdamW", dict(lr=0.01), ("ReduceLROnPlateau", dict(patience=0, factor=0.5))),
    ("RMSprop", dict(lr=0.01, momentum=0.5, centered=True), ("StepLR", dict(step_size=1, gamma=0.9))),
    # AMSGrad's max_exp_avg_sq goes through the file too (a small beta2: the maximum is not v)
    ("AdamW", dict(lr=0.01, betas=(0.9, 0.6), amsgrad=True), ("StepLR", dict(step_size=2, gamma=0.5))),
]


@pytest.mark.parametrize("model_name", sorted(MODELS))
@pytest.mark.parametrize("opt_name,opt_kw,sched", OPTIMIZERS,
                         ids=[o[0] + ("-amsgrad" if o[1].get("amsgrad") else "") for o in OPTIMIZERS])
def test_every_model_and_optimizer_resumes_exactly(tmp_path, model_name, opt_name, opt_kw, sched):
    """Train 6 steps straight vs 3 steps, save (model + optimizer + scheduler state in the
    metadata), load into fresh objects, 3 more steps: bitwise the same parameters and lr."""
    def run(model, opt, sch, rng, steps):
        for _ in range(steps):
            _sine_step(model, opt, rng)
            if isinstance(sch, optim.ReduceLROnPlateau):
                sch.step(1.0)  # a flat metric: the lr drops on this schedule
            else:
                sch.step()

    def build(model):
        opt = getattr(optim, opt_name)(model.parameters(), **opt_kw)
        return opt, getattr(optim, sched[0])(opt, **sched[1])

    ref = MODELS[model_name]()
    ref_opt, ref_sch = build(ref)
    run(ref, ref_opt, ref_sch, np.random.default_rng(7), 6)

    m = MODELS[model_name]()
    opt, sch = build(m)
    rng = np.random.default_rng(7)
    run(m, opt, sch, rng, 3)
    gio.save(tmp_path / "c.npz", m, opt, metadata={"scheduler": sch.state_dict(), "epoch": 3})
    ck = gio.load(tmp_path / "c.npz")
    assert type(ck.model) is type(m) and ck.metadata["epoch"] == 3
    opt2 = getattr(optim, opt_name)(ck.model.parameters())  # defaults: the state restores them
    opt2.load_state_dict(ck.optimizer_state)
    sch2 = getattr(optim, sched[0])(opt2, **sched[1])
    sch2.load_state_dict(ck.metadata["scheduler"])
    run(ck.model, opt2, sch2, rng, 3)
    assert opt2.lr == ref_opt.lr
    assert opt2.lr != opt_kw["lr"]  # the schedule really moved the lr
    for k, v in ref.parameters().items():
        np.testing.assert_array_equal(ck.model.parameters()[k], v, err_msg=k)
    # and their next checkpoints are the same file (RMSprop's buffers came back reordered)
    gio.save(tmp_path / "straight.npz", ref, ref_opt)
    gio.save(tmp_path / "resumed.npz", ck.model, opt2)
    assert (tmp_path / "straight.npz").read_bytes() == (tmp_path / "resumed.npz").read_bytes()


def test_malformed_header_sections_fail_clearly(tmp_path):
    m = Linear(2, 2, seed=0)
    good = tmp_path / "good.npz"
    gio.save(good, m, optim.Adam(m.parameters()))
    arrays = _arrays(good)
    header = _header(arrays)
    for section, value in [("optimizer", {"type": "Adam"}), ("optimizer", [1]),
                           ("metadata", [1, 2])]:
        h = {**header, section: value}
        bad = _rewrite(tmp_path / "bad.npz", arrays, h)
        with pytest.raises(ValueError, match=section):
            gio.load(bad)


def test_malformed_model_sections_fail_clearly(tmp_path):
    """Regression: these raised bare TypeErrors ('unhashable type: list', "'int' object is
    not iterable") or AttributeError ('list' object has no attribute 'get')."""
    m = Linear(2, 2, seed=0)
    good = tmp_path / "good.npz"
    gio.save(good, m)
    arrays = _arrays(good)
    header = _header(arrays)
    for h, word in [({**header, "model": {**header["model"], "class": ["Linear"]}}, "class"),
                    ({**header, "params": 5}, "params"), ({**header, "params": [1, 2]}, "params"),
                    ({**header, "model": {**header["model"], "config": [2, 2]}}, "config")]:
        bad = _rewrite(tmp_path / "bad.npz", arrays, h)
        with pytest.raises(ValueError, match=word):
            gio.load(bad)
        with pytest.raises(ValueError, match=word):
            gio.load(bad, model=Linear(2, 2))


def test_save_through_a_symlink_replaces_its_target(tmp_path):
    """Regression: the atomic rename replaced the link itself with a regular file."""
    target, link = tmp_path / "real.npz", tmp_path / "link.npz"
    gio.save(target, Linear(2, 2, seed=0))
    os.symlink(target, link)
    m = Linear(2, 2, seed=1)
    gio.save(link, m)
    assert os.path.islink(link)
    np.testing.assert_array_equal(gio.load(target).model.parameters()["weight"],
                                  m.parameters()["weight"])


@pytest.mark.parametrize("model, extra", [(GRU(2, 3, seed=0), {"weight": "zeros"}),
                                          (Linear(2, 3, seed=0), {"weight_hh": "orthogonal"})],
                         ids=["GRU", "Linear"])
def test_a_layer_saved_with_init_keys_it_does_not_draw_loads(tmp_path, model, extra):
    """A layer saved before layers refused init keys they do not draw stored them (a GRU's
    "weight"); they never had an effect, and load drops them. A mutant passing them on to
    the constructor survived: it refused such a file as an invalid config."""
    path = tmp_path / "old.npz"
    gio.save(path, model)
    arrays = _arrays(path)
    header = _header(arrays)
    header["model"]["config"]["init"] = {"bias": 0.5, **extra}
    loaded = gio.load(_rewrite(path, arrays, header)).model
    assert loaded.init == {"bias": 0.5}
    for name, arr in loaded.parameters().items():
        np.testing.assert_array_equal(arr, arrays["param/" + name], err_msg=name)


def test_absurd_stored_sizes_are_a_damaged_checkpoint(tmp_path):
    """Regression: a header asking for a 10⁶ × 10⁶ GRU raised numpy's bare memory error."""
    good = tmp_path / "good.npz"
    gio.save(good, GRU(2, 3, seed=0))
    arrays = _arrays(good)
    header = _header(arrays)
    header["model"]["config"].update(input_size=10**6, hidden_size=10**6)
    bad = _rewrite(tmp_path / "bad.npz", arrays, header)
    with pytest.raises(ValueError, match="stored model config is invalid"):
        gio.load(bad)


@pytest.mark.parametrize("model", [
    SequenceModel(2, 3, 1, num_layers=2, bidirectional=True, seed=0),
    GRU(2, 3, num_layers=2, seed=0), Linear(2, 3, seed=0),
    GRU(2, 3, num_layers=2, bidirectional=True, bias=False, seed=0),
    SequenceModel(2, 3, 1, num_layers=2, bias=False, seed=0)],
    ids=lambda m: type(m).__name__ + ("" if m.config().get("bias", True) else "-nobias"))
def test_stored_sizes_beyond_the_stored_arrays_are_refused_before_building(tmp_path, model):
    """Regression: num_layers 10**9 in a damaged header made load build layer after layer
    (a hang); hidden_size 10**5 allocated and initialised 224 GiB before the arrays were
    compared. The header's sizes must fit the values the archive holds."""
    good = tmp_path / "good.npz"
    gio.save(good, model)
    arrays = _arrays(good)
    stored = sum(v.size for k, v in arrays.items() if k != "__grucy__")
    edits = [{"out_features": 10**9}] if isinstance(model, Linear) else [
        {"num_layers": 10**9}, {"hidden_size": 10**5}]
    for edit in edits:
        header = _header(arrays)
        header["model"]["config"].update(edit)
        bad = _rewrite(tmp_path / "bad.npz", arrays, header)
        with pytest.raises(ValueError, match=rf"stored model config is invalid: it needs \d+ "
                                             rf"parameter values, the archive holds {stored} in all"):
            gio.load(bad)
    # the count is exact for an unedited checkpoint: it loads
    assert gio.load(good).model.config() == model.config()


@pytest.mark.parametrize("model", [
    SequenceModel(2, 3, 1, num_layers=2, bidirectional=True, seed=0),
    GRU(2, 3, num_layers=2, bidirectional=True, bias=False, seed=0), Linear(2, 3, seed=0)],
    ids=lambda m: type(m).__name__ + ("" if m.config().get("bias", True) else "-nobias"))
def test_the_size_bound_is_the_stored_models_exact_parameter_count(tmp_path, model):
    """One value short of the model's parameters is refused before building, naming the
    exact count (that of the model's own arrays): mutants counting one direction of a
    bidirectional GRU, or letting one value short through, survived, the absurd sizes of
    the test above being far past either."""
    good = tmp_path / "good.npz"
    gio.save(good, model)
    arrays = _arrays(good)
    need = sum(p.size for p in model.parameters().values())
    key = min(k for k in arrays if k.startswith("param/"))
    bad = _rewrite(tmp_path / "bad.npz", {**arrays, key: arrays[key].reshape(-1)[1:]})
    with pytest.raises(ValueError, match=rf"stored model config is invalid: it needs {need} "
                                         rf"parameter values, the archive holds {need - 1} in all"):
        gio.load(bad)


def test_save_into_a_missing_directory_names_it(tmp_path):
    m = SequenceModel(2, 3, 1, seed=0)
    missing = tmp_path / "no_such_dir"
    with pytest.raises(FileNotFoundError, match="no_such_dir.*does not exist") as e:
        gio.save(missing / "ckpt.npz", m)
    assert ".tmp" not in str(e.value)
    assert not missing.exists()


def test_save_names_the_callers_path_and_takes_any_name_the_filesystem_does(tmp_path):
    m = Linear(2, 2, seed=0)
    # 244 characters: a legal name, but the hidden temporary name beside it was not
    long = tmp_path / ("c" * 240 + ".npz")
    gio.save(long, m)
    assert np.array_equal(gio.load(long).model.parameters()["weight"], m.parameters()["weight"])
    # a trailing slash means a directory: it was written as a file named "new"
    with pytest.raises(ValueError, match="path must name a file"):
        gio.save(str(tmp_path / "new") + os.sep, m)
    assert not (tmp_path / "new").exists()
    # other OSErrors named the hidden .<name>.<hex>.tmp
    a_file = tmp_path / "plain"
    a_file.write_text("")
    with pytest.raises(NotADirectoryError, match="cannot write .*plain/ckpt.npz") as e:
        gio.save(a_file / "ckpt.npz", m)
    assert ".tmp" not in str(e.value)


class _BytesPath:
    """An os.PathLike whose path is bytes, as os.fspath allows."""

    def __init__(self, path):
        self.path = path

    def __fspath__(self):
        return self.path


@pytest.mark.parametrize("as_path", [str, pathlib.Path])
def test_a_path_with_a_nul_byte_is_refused_by_name_and_nothing_is_written(tmp_path, as_path):
    """Regression: Python's bare "embedded null byte" ValueError named neither the argument
    nor the path. The name before the NUL byte is a checkpoint that exists: it is neither
    replaced nor read, and no temporary file is left beside it."""
    gio.save(tmp_path / "m.npz", Linear(2, 2, seed=0))
    before = (tmp_path / "m.npz").read_bytes()
    bad = as_path(str(tmp_path / "m.npz") + "\0.bak")
    refused = (r"^path '.*/m\.npz\\x00\.bak' holds a NUL byte \('\\0'\), which no file name "
               r"can contain$")
    with pytest.raises(ValueError, match=refused):
        gio.save(bad, Linear(2, 2, seed=1))
    with pytest.raises(ValueError, match=refused):
        gio.load(bad)
    with pytest.raises(ValueError, match=refused):
        with gio.replacing(bad) as f:
            f.write(b"new")
    with pytest.raises(ValueError, match=r"^path b'.*/m\.npz\\x00' holds a NUL byte"):
        gio.load(_BytesPath(os.fsencode(tmp_path / "m.npz") + b"\0"))
    assert os.listdir(tmp_path) == ["m.npz"]
    assert (tmp_path / "m.npz").read_bytes() == before


def test_save_and_load_take_a_path_like_whose_path_is_bytes(tmp_path):
    """Regression: save's check for a trailing separator compared the bytes path with str
    and raised TypeError. The returned path is a str, as for any other path."""
    m = Linear(3, 2, seed=0)
    written = gio.save(_BytesPath(os.fsencode(tmp_path / "m.npz")), m)
    assert written == str(tmp_path / "m.npz")
    back = gio.load(_BytesPath(os.fsencode(tmp_path / "m.npz"))).model
    for name, p in m.parameters().items():
        np.testing.assert_array_equal(back.parameters()[name], p)


def test_replacing_takes_a_path_like_whose_path_is_bytes(tmp_path):
    """Regression: its temporary file's name (a str) was joined with the bytes directory
    ("Can't mix strings and bytes in path components"); the file is written as for a str."""
    with gio.replacing(_BytesPath(os.fsencode(tmp_path / "out.bin"))) as f:
        f.write(b"written")
    assert os.listdir(tmp_path) == ["out.bin"]
    assert (tmp_path / "out.bin").read_bytes() == b"written"


def test_a_bytes_path_itself_is_refused_by_name_as_the_docstrings_say(tmp_path, monkeypatch):
    """Mutant c1 (mut27): check_path's type check could take bytes too, unnoticed. save,
    load and replacing take a str or os.PathLike (a path-like whose path is bytes among
    them); plain bytes is a TypeError naming path, and nothing is written."""
    monkeypatch.chdir(tmp_path)
    m = Linear(2, 2)
    for call in (lambda: gio.save(b"x.npz", m), lambda: gio.load(b"x.npz"),
                 lambda: gio.replacing(b"x.npz").__enter__()):
        with pytest.raises(TypeError, match=r"^path must be a str or os.PathLike, got bytes$"):
            call()
    assert os.listdir(tmp_path) == []


def test_dropout_generator_state_is_checked_and_optional(tmp_path):
    """A malformed stored generator state is a clear error before the model changes; a
    checkpoint without one (written before it was saved) loads and leaves the model's."""
    m = GRU(2, 3, num_layers=2, dropout=0.5, seed=0)
    good = tmp_path / "good.npz"
    gio.save(good, m)
    arrays = _arrays(good)
    header = _header(arrays)
    assert header["model"]["dropout_rng"] == m._dropout_rng.bit_generator.state

    def write(model_section, name):
        h = {**header, "model": {**header["model"], **model_section}}
        if model_section.get("dropout_rng", 0) is None:
            del h["model"]["dropout_rng"]
        return _rewrite(tmp_path / name, arrays, h)

    other = GRU(2, 3, num_layers=2, dropout=0.5, seed=9)
    before = {k: v.copy() for k, v in other.parameters().items()}
    for bad in ({"bit_generator": "MT19937", "state": {}}, [1, 2], {"bit_generator": "PCG64"}):
        with pytest.raises(ValueError, match="stored dropout generator state is invalid"):
            gio.load(write({"dropout_rng": bad}, "bad.npz"), model=other)
        for k, v in before.items():
            np.testing.assert_array_equal(other.parameters()[k], v)   # untouched
    fresh = GRU(2, 3, num_layers=2, dropout=0.5, seed=9)
    state = fresh._dropout_rng.bit_generator.state
    gio.load(write({"dropout_rng": None}, "old.npz"), model=fresh)    # key absent
    assert fresh._dropout_rng.bit_generator.state == state
    np.testing.assert_array_equal(fresh.parameters()["weight_hh_l1"],
                                  m.parameters()["weight_hh_l1"])


def test_archive_layout_is_the_documented_one(tmp_path):
    """The module docstring's layout, read back without grucy: format, version 1, the
    parameter and optimizer arrays under their names, NaN metadata kept (allow_nan)."""
    m = Linear(3, 2, seed=0)
    opt = optim.Adam(m.parameters(), lr=0.1)
    opt.step({k: np.ones_like(v) for k, v in m.parameters().items()})
    gio.save(tmp_path / "c.npz", m, opt, metadata={"loss": float("nan"), "epoch": 2})
    arrays = _arrays(tmp_path / "c.npz")
    header = json.loads(arrays.pop("__grucy__").tobytes().decode("utf-8"))
    assert header["format"] == "grucy-checkpoint" and header["version"] == 1
    assert header["model"]["class"] == "Linear" and header["params"] == ["weight", "bias"]
    bufs = ["exp_avg", "exp_avg_sq", "step"]        # Adam's per-parameter count: a 0-d array
    assert header["optimizer"]["buffers"] == {"weight": bufs, "bias": bufs}
    assert set(arrays) == {"param/weight", "param/bias"} | {
        f"optim/{p}/{b}" for p in ("weight", "bias") for b in bufs}
    assert arrays["optim/bias/step"].shape == () and arrays["optim/bias/step"] == 1
    np.testing.assert_array_equal(arrays["param/weight"], m.weight)
    meta = gio.load(tmp_path / "c.npz").metadata
    assert meta["epoch"] == 2 and np.isnan(meta["loss"])


def test_every_header_and_archive_defect_is_named(tmp_path):
    """Each check of _read and load, one defect at a time (each was a mutant that survived:
    dropping it gave another error, or none)."""
    m = Linear(2, 2, seed=0)
    arrays = _arrays_with_momentum(tmp_path, m)
    header = _header(arrays)
    without = {k: v for k, v in arrays.items() if k != "__grucy__"}

    def case(name, match, **kw):
        path = _rewrite(tmp_path / f"{name}.npz", kw.pop("arrays", arrays), **kw)
        with pytest.raises(ValueError, match=match) as e:
            gio.load(path)
        assert "damaged" not in str(e.value)       # not wrapped as another kind of defect
        with pytest.raises(ValueError, match=match):
            gio.load(path, model=Linear(2, 2))

    case("noheader", "an .npz without a '__grucy__' header", arrays=without)
    case("format", r"not a grucy checkpoint \(header format 'other'\)", header={**header, "format": "other"})
    case("list", r"not a grucy checkpoint \(header format \[1\]\)", header=[1])
    case("v0", "format version 0", header={**header, "version": 0})
    case("vbool", "format version True", header={**header, "version": True})   # bool is an int
    case("utf8", "unreadable grucy header", raw_header=b"\xff\xfe{")
    case("json", "unreadable grucy header", raw_header=b"{not json")
    # nesting past the decoder's recursion limit: a RecursionError, naming no file, until
    # _read caught it as it catches the decoder's other errors
    case("deep", "unreadable grucy header", raw_header=b"[" * 100000 + b"]" * 100000)
    # an int past Python's 4300 digits: the decoder's int() raised a bare ValueError,
    # "Exceeds the limit (4300 digits) for integer string conversion", naming no file
    case("digits", "unreadable grucy header: Exceeds the limit",
         raw_header=json.dumps(header).replace('"step": 1', '"step": 1' + "0" * 5000).encode())
    case("noparams", "lacks model class/config/params",
         header={k: v for k, v in header.items() if k != "params"})
    case("renamed", "stored parameter names do not match the model: \\['bias', 'b'\\]|"
         "stored parameter names do not match the model: \\['b', 'bias'\\]",
         header={**header, "params": ["weight", "b"]})
    case("missing", "is missing parameter 'bias'",
         arrays={k: v for k, v in arrays.items() if k != "param/bias"})
    case("dtype", "parameter 'weight' is float64\\(2, 2\\), the model expects float32\\(2, 2\\)",
         arrays={**arrays, "param/weight": arrays["param/weight"].astype(np.float64)})
    case("buffer", "is missing optimizer buffer 'optim/weight/momentum_buffer'",
         arrays={k: v for k, v in arrays.items() if k != "optim/weight/momentum_buffer"})
    case("buffers", "malformed optimizer section",
         header={**header, "optimizer": {**header["optimizer"],
                                         "buffers": {"weight": "momentum_buffer"}}})


def test_a_damaged_member_is_a_damaged_checkpoint(tmp_path):
    """A flipped byte inside a stored array: the zip's CRC check fails (BadZipFile), reported
    as a damaged checkpoint rather than numpy's or zipfile's own error."""
    path = tmp_path / "c.npz"
    gio.save(path, Linear(4, 4, seed=0))
    data = bytearray(path.read_bytes())
    with zipfile.ZipFile(path) as z:
        info = z.getinfo("param/weight.npy")
    at = info.header_offset + 30 + len(info.filename) + len(info.extra) + info.file_size - 3
    data[at] ^= 0xFF                               # in the array's data, past its .npy header
    path.write_bytes(bytes(data))
    with pytest.raises(ValueError, match="damaged \\(truncated\\?\\) checkpoint"):
        gio.load(path)


def test_a_member_claiming_a_huge_shape_is_refused_before_it_is_read(tmp_path):
    """A .npy header (in a zip whose CRCs are intact) claiming 10**12 x 4 floats: np.load
    allocates the claimed array before reading, and its MemoryError ("Unable to allocate
    14.6 TiB") escaped load naming no file."""
    import io as _io
    good = tmp_path / "good.npz"
    gio.save(good, GRU(4, 5, seed=0))
    bad = tmp_path / "bad.npz"
    with zipfile.ZipFile(good) as zin, zipfile.ZipFile(bad, "w") as zout:
        for name in zin.namelist():
            data = zin.read(name)
            if name == "param/weight_ih_l0.npy":
                buf = _io.BytesIO()
                np.save(buf, np.zeros((15, 4), np.float32))
                data = buf.getvalue().replace(b"(15, 4)", b"(999999999999, 4)")
            zout.writestr(name, data)
    # refused from the npy header, before anything of that size is allocated: as a claim
    # its stored bytes cannot hold, before the model is built from the header
    with pytest.raises(ValueError, match=r"member 'param/weight_ih_l0' claims "
                                         r"float32\(999999999999, 4\) \(15999999999984 bytes\), "
                                         r"more than its"):
        gio.load(bad)
    # and, loading into a model, as a shape that is not the model's
    with pytest.raises(ValueError, match=r"parameter 'weight_ih_l0' is float32\(999999999999, 4\), "
                                         r"the model expects float32\(15, 4\)"):
        gio.load(bad, model=GRU(4, 5, seed=1))


def test_a_member_load_would_not_read_is_refused_unread(tmp_path):
    """A deflated member of zeros is tiny on disk and large decompressed: load decompressed
    every member before looking at any, so a 0.8 MB file with an extra 800 MB member (and a
    header asking for a model to match) took 3 GB before it was refused."""
    good = tmp_path / "good.npz"
    gio.save(good, GRU(4, 5, seed=0))
    arrays = _arrays(good)
    bad = tmp_path / "bad.npz"
    np.savez_compressed(bad, **arrays, pad=np.zeros(10_000_000, np.float32))
    assert bad.stat().st_size < 1_000_000
    with pytest.raises(ValueError, match="not a grucy checkpoint: it holds an unexpected member 'pad.npy'"):
        gio.load(bad)


def test_a_member_name_stored_twice_is_a_damaged_checkpoint(tmp_path):
    """A zip may list one name twice; zipfile then reads the last one, so which weights
    would load depends on the reader. A mutant without the check survived: it loaded the
    second copy without a word."""
    good = tmp_path / "good.npz"
    gio.save(good, Linear(2, 2, seed=0))
    bad = tmp_path / "bad.npz"
    with zipfile.ZipFile(good) as src, zipfile.ZipFile(bad, "w") as dst:
        for info in src.infolist():
            dst.writestr(info, src.read(info))
        with pytest.warns(UserWarning, match="Duplicate name"):
            dst.writestr("param/weight.npy", _npy(np.full((2, 2), 7.0, np.float32)))
    with pytest.raises(ValueError, match="is a damaged checkpoint: a member name appears twice"):
        gio.load(bad)


def test_a_fortran_ordered_member_loads_as_numpy_reads_it(tmp_path):
    """np.savez stores a Fortran-ordered array as such (fortran_order in its npy header); a
    checkpoint edited or written outside grucy may hold one. Its values are those np.load
    reads, not its bytes in C order (a mutant ignoring the flag survived: grucy never writes
    one)."""
    good = tmp_path / "good.npz"
    gio.save(good, GRU(2, 3, seed=0))
    arrays = _arrays(good)
    w = np.random.default_rng(0).standard_normal((9, 2)).astype(np.float32)
    bad = _rewrite(tmp_path / "f.npz", {**arrays, "param/weight_ih_l0": np.asfortranarray(w)})
    assert np.load(bad)["param/weight_ih_l0"].flags.f_contiguous
    np.testing.assert_array_equal(gio.load(bad).model.weight_ih_l0, w)


def _zip_damage(raw, what):
    """raw (a checkpoint's bytes) with its first central-directory entry damaged: "method",
    an unknown compression method; "encrypted", the encryption flag."""
    raw = bytearray(raw)
    i = raw.find(b"PK\x01\x02")
    if what == "method":
        raw[i + 10] = 99
    else:
        raw[i + 8] |= 1
    return bytes(raw)


@pytest.mark.parametrize("what", ["method", "encrypted"])
def test_zip_flags_load_cannot_honour_are_a_damaged_checkpoint(tmp_path, what):
    # zipfile raised NotImplementedError ("That compression method is not supported") and
    # RuntimeError ("File ... is encrypted"), which load let through
    good = tmp_path / "good.npz"
    gio.save(good, GRU(4, 5, seed=0))
    bad = tmp_path / "bad.npz"
    bad.write_bytes(_zip_damage(good.read_bytes(), what))
    with pytest.raises(ValueError, match="damaged \\(truncated\\?\\) checkpoint"):
        gio.load(bad)


def test_flipped_bytes_in_a_deflated_checkpoint_never_load_other_weights(tmp_path):
    """savez_compressed checkpoints load too; a flipped byte in their deflate streams raised
    zlib.error (and zipfile's NotImplementedError) past load. Every flip either loads the
    same weights (a byte nobody reads) or is a ValueError."""
    model = GRU(3, 4, seed=1)
    good = tmp_path / "good.npz"
    gio.save(good, model)
    deflated = tmp_path / "deflated.npz"
    np.savez_compressed(deflated, **_arrays(good))
    raw = deflated.read_bytes()
    bad = tmp_path / "bad.npz"
    errors = 0
    for i in range(0, len(raw), 7):
        flipped = bytearray(raw)
        flipped[i] ^= 0x5A
        bad.write_bytes(bytes(flipped))
        try:
            loaded = gio.load(bad).model
        except ValueError:
            errors += 1
            continue
        for name, arr in model.parameters().items():
            assert np.array_equal(loaded.parameters()[name], arr), (i, name)
    assert errors > len(raw) // 7 // 2            # most bytes matter


def test_a_refused_checkpoint_leaves_the_model_passed_in_as_it_was(tmp_path):
    # the parameters and the dropout generator were replaced before the optimizer section
    # was found malformed
    src = GRU(2, 3, num_layers=2, dropout=0.5, seed=7)
    good = tmp_path / "good.npz"
    gio.save(good, src, optim.SGD(src.parameters(), lr=0.1))
    arrays = _arrays(good)
    header = _header(arrays)
    header["optimizer"]["buffers"] = {"weight_ih_l0": "oops"}
    bad = _rewrite(tmp_path / "bad.npz", arrays, header=header)
    mine = GRU(2, 3, num_layers=2, dropout=0.5, seed=123)
    before = {k: v.copy() for k, v in mine.parameters().items()}
    rng_before = mine._dropout_rng.bit_generator.state
    with pytest.raises(ValueError, match="malformed optimizer section"):
        gio.load(bad, model=mine)
    for k, v in mine.parameters().items():
        assert np.array_equal(v, before[k]), k
    assert mine._dropout_rng.bit_generator.state == rng_before


def test_parameter_names_in_another_order_say_so(tmp_path):
    good = tmp_path / "good.npz"
    gio.save(good, Linear(2, 2, seed=0))
    arrays = _arrays(good)
    header = _header(arrays)
    header["params"] = header["params"][::-1]
    bad = _rewrite(tmp_path / "bad.npz", arrays, header=header)
    with pytest.raises(ValueError, match=r"stored in the order \['bias', 'weight'\], the model's is "
                                         r"\['weight', 'bias'\]"):
        gio.load(bad)


def test_no_free_temporary_name_is_an_error_not_a_hang(tmp_path, monkeypatch):
    path = tmp_path / "c.npz"
    monkeypatch.setattr(gio.secrets, "token_hex", lambda n: "0" * (2 * n))
    (tmp_path / f".c.npz.{'0' * 12}.tmp").write_bytes(b"")   # the only name it will try
    with pytest.raises(FileExistsError, match="could not create a temporary file"):
        gio.save(path, Linear(2, 2, seed=0))
    assert not path.exists()


def _forged_bomb(path, hidden_size, member_shape, member_data=b"", patch_sizes=None,
                 deflate=False):
    """A checkpoint whose header asks for SequenceModel(1, hidden_size, 1) and whose one
    other member, optim/x/y, is stored with an npy header claiming member_shape float32
    values and only member_data after it (deflated if deflate); patch_sizes, a pair, forges
    that member's compressed and uncompressed sizes in the central directory (None keeps
    one as zipfile wrote it). Returns path."""
    import io as _io
    names = ["gru.weight_ih_l0", "gru.weight_hh_l0", "gru.bias_ih_l0", "gru.bias_hh_l0",
             "head.weight", "head.bias"]
    header = {"format": "grucy-checkpoint", "version": 1,
              "model": {"class": "SequenceModel", "dropout_rng": None,
                        "config": dict(input_size=1, hidden_size=hidden_size, output_size=1)},
              "params": names, "optimizer": None, "metadata": {}}
    fake = _io.BytesIO()
    np.lib.format.write_array_header_1_0(fake, {"descr": "<f4", "fortran_order": False,
                                                "shape": member_shape})
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("__grucy__.npy", _npy(np.frombuffer(json.dumps(header).encode(), np.uint8)))
        z.writestr("optim/x/y.npy", fake.getvalue() + member_data,
                   zipfile.ZIP_DEFLATED if deflate else zipfile.ZIP_STORED)
    if patch_sizes is not None:
        raw = bytearray(path.read_bytes())
        at = raw.find(b"PK\x01\x02", raw.find(b"PK\x01\x02") + 4)   # the second entry
        assert raw[at + 46:at + 46 + 13] == b"optim/x/y.npy"
        for field, size in zip((at + 20, at + 24), patch_sizes):
            if size is not None:
                raw[field:field + 4] = size.to_bytes(4, "little")
        path.write_bytes(bytes(raw))
    return path


def _npy(arr):
    import io as _io
    buf = _io.BytesIO()
    np.save(buf, arr)
    return buf.getvalue()


@pytest.mark.parametrize("how", ["header only", "short data", "deflated", "sizes beyond the file"])
def test_a_member_claiming_more_than_its_stored_bytes_is_refused_before_building(
        tmp_path, monkeypatch, how):
    """Regression: load's size guard summed the shapes the members' npy headers claim, so
    an 821-byte file with a header-only member claiming 2**40 values passed it and a config
    of hidden_size 12000 built 5 GB of model (14 s) before "missing parameter"; larger
    sizes were OOM-killed. Each member must be able to hold what it claims in the bytes it
    really stores, checked before anything is built."""
    def build(**config):
        pytest.fail(f"load built the model {config} from a forged checkpoint")
    monkeypatch.setitem(gio.MODEL_CLASSES, "SequenceModel", build)
    # hidden_size 2000 needs 12 million values: 48 MB the unfixed load did build, quickly
    path = tmp_path / "bomb.npz"
    if how == "header only":
        _forged_bomb(path, 2000, (2**40,))
        match = (r"is a damaged or forged checkpoint: member 'optim/x/y' claims "
                 r"float32\(1099511627776,\) \(4398046511104 bytes\), more than its 0 stored "
                 r"bytes hold")
    elif how == "short data":
        _forged_bomb(path, 2000, (10**8,), b"\0" * 64)
        match = (r"member 'optim/x/y' claims float32\(100000000,\) \(400000000 bytes\), more "
                 r"than its 64 stored bytes hold")
    elif how == "deflated":
        # 4000 zeros deflated, the zip's uncompressed size forged to 2**31 - 1: deflate
        # expands at most 1032 to 1, so tens of compressed bytes cannot hold 2**28 values
        _forged_bomb(path, 2000, (2**28,), b"\0" * 4000, (None, 2**31 - 1), deflate=True)
        match = (r"member 'optim/x/y' claims float32\(268435456,\) \(1073741824 bytes\), more "
                 r"than its \d+ deflated bytes can hold \(\d+ at most\)")
    else:
        # the zip's own sizes forged too: 2**31 - 1 bytes claimed for a member of a few
        # hundred, room for the 2**28 values its npy header claims
        _forged_bomb(path, 2000, (2**28,), patch_sizes=(2**31 - 1, 2**31 - 1))
        match = r"is a damaged checkpoint: its members' stored sizes add up to \d+ bytes, more " \
                rf"than the file's {path.stat().st_size}"
    assert path.stat().st_size < 2000
    with pytest.raises(ValueError, match=match):
        gio.load(path)


def test_a_deflated_member_holds_no_more_than_its_zip_entry_states(tmp_path, monkeypatch):
    """zipfile reads a member no further than the uncompressed size its zip entry states:
    64 KiB of incompressible data deflated hold those 64 KiB, not the 1032 times as many
    deflate could expand to. A mutant bounding a member by that ratio alone survived: it
    built a 48 MB model from a 66 kB file whose npy header claimed 2**24 values."""
    def build(**config):
        pytest.fail(f"load built the model {config} from a forged checkpoint")
    monkeypatch.setitem(gio.MODEL_CLASSES, "SequenceModel", build)
    data = np.random.default_rng(0).bytes(1 << 16)
    path = _forged_bomb(tmp_path / "bomb.npz", 2000, (2**24,), data, deflate=True)
    with pytest.raises(ValueError, match=r"member 'optim/x/y' claims float32\(16777216,\) "
                                         r"\(67108864 bytes\), more than its \d+ deflated bytes "
                                         r"can hold \(65536 at most\)"):
        gio.load(path)


def test_a_member_claiming_a_negative_dimension_is_damaged(tmp_path, monkeypatch):
    # numpy's npy reader accepts (-5,): counted as -5 values it lowered load's size bound
    monkeypatch.setitem(gio.MODEL_CLASSES, "SequenceModel",
                        lambda **config: pytest.fail("built from a damaged checkpoint"))
    path = _forged_bomb(tmp_path / "neg.npz", 3, (-5,))
    with pytest.raises(ValueError, match=r"damaged \(truncated\?\) checkpoint: ValueError: member "
                                         r"'optim/x/y' has a negative dimension: shape \(-5,\)"):
        gio.load(path)


def _nested(depth):
    """A list nested depth levels deep: [[[...]]], built without recursion."""
    value = []
    for _ in range(depth - 1):
        value = [value]
    return value


def test_save_refuses_metadata_load_would_refuse_and_keeps_the_old_file(tmp_path, monkeypatch):
    """Regression: save wrote, and atomically put in place of a good checkpoint, a file load
    refuses: metadata of 70 MB made a header past the 64 MiB load reads; metadata nested
    5000 deep (with the recursion limit raised) a header load's JSON decoder cannot parse.
    save must refuse such metadata, naming it, before it touches the file."""
    import sys
    path = tmp_path / "c.npz"
    m = Linear(2, 2, seed=0)
    gio.save(path, m, metadata={"ok": 1})
    before = path.read_bytes()

    def unchanged():
        assert path.read_bytes() == before
        assert sorted(os.listdir(tmp_path)) == ["c.npz"]        # no temporary file left
        assert gio.load(path).metadata == {"ok": 1}

    # load's own limit, 64 MiB: a string one byte longer cannot fit with the rest
    with pytest.raises(ValueError, match=r"metadata is too large: the checkpoint's JSON header "
                                         r"would be \d+ bytes, load reads at most 67108864"):
        gio.save(path, m, metadata={"log": "x" * (64 << 20)})
    unchanged()
    # the limit save checks is the one load enforces
    monkeypatch.setattr(gio._Archive, "_HEADER_BYTES", 4096)
    with pytest.raises(ValueError, match="metadata is too large.*at most 4096"):
        gio.save(path, m, metadata={"log": "x" * 4096})
    unchanged()
    gio.save(path, m, metadata={"log": "x" * 2000})
    assert gio.load(path).metadata == {"log": "x" * 2000}
    monkeypatch.undo()
    gio.save(path, m, metadata={"ok": 1})
    before = path.read_bytes()

    # 5000 levels: json.dumps writes them under a raised recursion limit, load's decoder
    # (at the default limit) could not read them back
    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(20000)
    try:
        with pytest.raises(ValueError, match=r"metadata must nest at most 100 levels, got more at "
                                             r"metadata\['a'\]\[0\]\[0\]"):
            gio.save(path, m, metadata={"a": _nested(5000)})
    finally:
        sys.setrecursionlimit(limit)
    unchanged()
    # 100000 levels at the default limit: RecursionError escaped save
    with pytest.raises(ValueError, match="metadata must nest at most 100 levels"):
        gio.save(path, m, metadata={"a": _nested(100000)})
    unchanged()
    # a dict that contains itself: json's "Circular reference detected", not a hang
    loop = {}
    loop["self"] = loop
    with pytest.raises(ValueError, match=r"metadata must nest at most 100 levels.*contains itself"):
        gio.save(path, m, metadata=loop)
    unchanged()
    # 100 levels (99 in the list under the metadata dict) save and load back
    gio.save(path, m, metadata={"a": _nested(99)})
    assert gio.load(path).metadata == {"a": _nested(99)}


def test_save_refuses_metadata_whose_json_would_outgrow_the_header_without_writing_it(
        tmp_path, monkeypatch):
    """A list that holds another twice, 40 levels down, is 2**40 lists as JSON: json.dumps
    spent hours (and terabytes) encoding it. Here 20 levels, 6 MB of JSON, against a
    1 MiB limit: refused, before anything is written."""
    monkeypatch.setattr(gio._Archive, "_HEADER_BYTES", 1 << 20)
    shared = []
    for _ in range(20):
        shared = [shared, shared]
    with pytest.raises(ValueError, match="metadata is too large.*at most 1048576"):
        gio.save(tmp_path / "c.npz", Linear(2, 2, seed=0), metadata={"a": shared})
    assert not os.listdir(tmp_path)


def test_load_refuses_a_directory_and_what_is_not_a_regular_file(tmp_path):
    """Regression: load of a FIFO blocked forever in open(); load("/dev/zero") read until
    MemoryError; a directory raised a bare IsADirectoryError. Refused as save refuses a
    directory, and as the runner's CSV reader refuses a device or pipe."""
    import errno
    import threading
    with pytest.raises(ValueError, match="path must name a file, got .*a directory"):
        gio.load(tmp_path)
    fifo = tmp_path / "fifo.npz"
    os.mkfifo(fifo)
    # a writer that feeds the FIFO a few bytes once a reader opens it: the unfixed load
    # then reads them (not an archive) instead of blocking this test forever
    done = threading.Event()

    def writer():
        while not done.is_set():
            try:
                fd = os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)
            except OSError as e:
                assert e.errno == errno.ENXIO                   # no reader yet
                done.wait(0.01)
                continue
            try:
                os.write(fd, b"not a checkpoint")
            except OSError:                                     # the reader closed it
                pass
            os.close(fd)
            return
    thread = threading.Thread(target=writer, daemon=True)
    thread.start()
    try:
        with pytest.raises(ValueError, match=r"path '.*fifo.npz' is not a regular file but a "
                                             r"pipe \(FIFO\)"):
            gio.load(fifo)
    finally:
        done.set()
        thread.join(5)
    if os.path.exists("/dev/null"):                      # read, never written
        with pytest.raises(ValueError, match="path '/dev/null' is not a regular file but a "
                                             "character device"):
            gio.load("/dev/null")


def test_save_refuses_to_replace_what_is_not_a_regular_file(tmp_path):
    """Regression: save("/dev/full", m), as root, renamed a regular file over the device
    node. A target (or a symlink's) that exists and is not a regular file is refused,
    untouched; a symlink to a regular file is still written through (the test above)."""
    import stat
    m = Linear(2, 2, seed=0)
    fifo = tmp_path / "fifo.npz"
    os.mkfifo(fifo)
    link = tmp_path / "link.npz"
    os.symlink(fifo, link)
    for path in (fifo, link):
        with pytest.raises(ValueError, match=r"path '.*\.npz' is not a regular file but a pipe "
                                             r"\(FIFO\): writing would replace it with a "
                                             r"regular file"):
            gio.save(path, m)
    assert stat.S_ISFIFO(os.stat(fifo).st_mode)
    assert os.path.islink(link) and os.readlink(link) == str(fifo)
    assert sorted(os.listdir(tmp_path)) == ["fifo.npz", "link.npz"]     # no temporary file
    # the runner's outputs and to_onnx write through the same replacing()
    with pytest.raises(ValueError, match="is not a regular file but a pipe"):
        with gio.replacing(fifo, "w") as f:
            f.write("x")
    assert stat.S_ISFIFO(os.stat(fifo).st_mode)


def test_a_name_too_long_for_the_filesystem_is_named_as_the_caller_gave_it(tmp_path):
    """Regression: a name one character past the filesystem's limit failed only at the
    rename (the temporary name is cut to fit), and the OSError named the hidden
    .<name>.<hex>.tmp beside the caller's."""
    import errno
    try:
        name_max = os.pathconf(tmp_path, "PC_NAME_MAX")
    except (AttributeError, OSError, ValueError):
        pytest.skip("no pathconf NAME_MAX here")
    long = tmp_path / ("c" * (name_max - 3) + "npz.")      # one character too many
    assert len(long.name) == name_max + 1
    import re
    with pytest.raises(OSError, match=rf"cannot write '{re.escape(str(tmp_path))}/c+npz\.': ") as e:
        gio.save(long, Linear(2, 2, seed=0))
    assert e.value.errno == errno.ENAMETOOLONG
    assert ".tmp" not in str(e.value)
    assert not os.listdir(tmp_path)


def test_numpy_numbers_in_metadata_load_as_pythons_of_the_same_value(tmp_path):
    """A training loop's np.argmin (int64) or float32 metric was refused ("Object of type
    int64 is not JSON serializable") while np.float64, a float subclass, passed."""
    path = tmp_path / "c.npz"
    losses_ = np.array([0.3, 0.2, 0.25], dtype=np.float32)
    metadata = {"best": np.argmin(losses_), "val": losses_.min(), "stop": np.bool_(True),
                "small": np.uint8(7), "half": np.float16(0.1),
                "history": [np.float32(0.5), {"epoch": np.int32(4)}]}
    gio.save(path, Linear(2, 2, seed=0), metadata=metadata)
    got = gio.load(path).metadata
    assert got == {"best": 1, "val": float(np.float32(0.2)), "stop": True, "small": 7,
                   "half": float(np.float16(0.1)), "history": [0.5, {"epoch": 4}]}
    assert [type(got[k]) for k in ("best", "val", "stop", "small", "half")] == [int, float, bool, int, float]
    # what JSON cannot hold exactly is refused still, before the file is touched
    for bad in (np.complex64(1j), np.longdouble(1) / 3, np.arange(3), np.datetime64("2024-01"),
                np.datetime64("2024-01-01T00:00:00.000000000"), np.timedelta64(5, "ns")):
        with pytest.raises(TypeError, match="metadata must be JSON-serialisable: Object of type"):
            gio.save(tmp_path / "d.npz", Linear(2, 2, seed=0), metadata={"x": bad})
    assert sorted(os.listdir(tmp_path)) == ["c.npz"]


def test_metadata_depth_limit_is_exactly_the_documented_100_levels(tmp_path):
    """save's docstring: metadata "at most 100 levels deep". 100 levels save; 101 are refused
    before the file is touched (mutant i10: the limit moved to 101 and no test noticed, the
    existing ones nest 100 or 5000 levels)."""
    path = tmp_path / "c.npz"
    m = Linear(2, 2, seed=0)
    # the metadata dict is level 1, so _nested(100) under it is level 101
    with pytest.raises(ValueError, match="metadata must nest at most 100 levels"):
        gio.save(path, m, metadata={"a": _nested(100)})
    assert not os.listdir(tmp_path)


def test_metadata_too_many_values_is_refused_before_it_is_encoded(tmp_path, monkeypatch):
    """_check_metadata counts values before json.dumps runs: a list holding another twice,
    k levels down, is 2**k lists to encode (40 levels: hours). The existing test's 20 levels
    were also caught after encoding, by the header's byte size, so dropping the count
    (mutant i11) went unnoticed. Here json.dumps must not be reached with such metadata."""
    shared = []
    for _ in range(20):
        shared = [shared, shared]
    _refused_before_encoding(tmp_path, monkeypatch, "a", shared)


def _refused_before_encoding(tmp_path, monkeypatch, key, value):
    """save refuses metadata {key: value} as too large (with a 4 KiB header bound) before
    json.dumps is given it, and writes nothing."""
    monkeypatch.setattr(gio._Archive, "_HEADER_BYTES", 1 << 12)
    real_dumps = json.dumps

    def dumps(obj, *args, **kwargs):
        if isinstance(obj, dict) and obj.get(key) is value:
            raise AssertionError("json.dumps reached the metadata before its size was checked")
        return real_dumps(obj, *args, **kwargs)
    monkeypatch.setattr(gio.json, "dumps", dumps)
    with pytest.raises(ValueError, match="metadata is too large: over 2048 values"):
        gio.save(tmp_path / "c.npz", Linear(2, 2, seed=0), metadata={key: value})
    assert not os.listdir(tmp_path)


def test_a_header_member_of_another_dtype_or_ndim_is_refused_unread(tmp_path):
    """The JSON header is 1-D uint8 bytes, bounded by its length: a 2-D or wider-typed
    member's npy shape says little of its size (a mutant checking only shape[0] survived,
    and loaded a (n, 1) header, or read 8 bytes per claimed byte of a float64 one)."""
    good = tmp_path / "good.npz"
    gio.save(good, Linear(2, 2, seed=0))
    arrays = _arrays(good)
    raw = arrays["__grucy__"]
    n = raw.size
    for header, what in [(raw.reshape(-1, 1), rf"uint8\({n}, 1\)"),
                         (raw.astype(np.float64), rf"float64\({n},\)")]:
        bad = _rewrite(tmp_path / "bad.npz", {**arrays, "__grucy__": header})
        with pytest.raises(ValueError, match=rf"unreadable grucy header: {what}, expected uint8 "
                                             r"bytes \(at most \d+\)"):
            gio.load(bad)


def test_a_flat_list_of_too_many_values_is_refused_before_it_is_encoded(tmp_path, monkeypatch):
    """The count is of values, not of containers: a flat list of 3000 numbers (a run's
    per-step losses, say) is refused by it, before json.dumps builds the string of them.
    A mutant counting each container once survived the nested test above; its list went
    on to be encoded whole."""
    _refused_before_encoding(tmp_path, monkeypatch, "losses", [0.5] * 3000)


def test_replacing_in_text_mode_writes_text(tmp_path):
    """replacing(path, "w") yields a text file (the runner writes its CSV and JSON outputs
    so); the default is binary. A mutant opening every file "wb" passed the library's tests."""
    path = tmp_path / "a.csv"
    path.write_text("old\n")
    with gio.replacing(path, "w") as f:
        f.write("epoch,loss\n1,0.5\n")
    assert path.read_text() == "epoch,loss\n1,0.5\n"
    with gio.replacing(path) as f:
        f.write(b"\x00\x01")
    assert path.read_bytes() == b"\x00\x01" and os.listdir(tmp_path) == ["a.csv"]


def test_a_header_member_larger_than_load_reads_is_refused(tmp_path, monkeypatch):
    """load reads at most _HEADER_BYTES of JSON header: a larger one is refused from its npy
    header, before it is decompressed (mutant i17 dropped the bound and such a file loaded)."""
    m = Linear(2, 2, seed=0)
    good = tmp_path / "good.npz"
    gio.save(good, m, metadata={"note": "x" * 3000})
    size = _arrays(good)["__grucy__"].size
    assert size > 2048
    monkeypatch.setattr(gio._Archive, "_HEADER_BYTES", 2048)
    for model in (None, Linear(2, 2)):
        with pytest.raises(ValueError, match=rf"unreadable grucy header: uint8\({size},\), "
                                             r"expected uint8 bytes \(at most 2048\)"):
            gio.load(good, model=model)


def test_an_optimizer_buffer_of_another_shape_is_refused_unread(tmp_path):
    """Each optimizer buffer is a count (shape ()) or shaped like its parameter, checked on
    its npy header before it is read. With a model passed in, nothing else bounds what a
    buffer may claim (size() runs only when load builds the model), and the wrong shape
    reached the returned optimizer state (mutant i20 dropped the check; no test had a
    misshapen buffer)."""
    m = Linear(2, 3, seed=0)
    arrays = _arrays_with_momentum(tmp_path, m)
    assert arrays["optim/weight/momentum_buffer"].shape == (3, 2)
    bad = _rewrite(tmp_path / "bad.npz",
                   {**arrays, "optim/weight/momentum_buffer": np.zeros((7, 5), np.float32)})
    for model in (None, Linear(2, 3)):
        with pytest.raises(ValueError, match=r"optimizer buffer 'optim/weight/momentum_buffer' "
                                             r"has shape \(7, 5\), expected \(\) or the "
                                             r"parameter's \(3, 2\)"):
            gio.load(bad, model=model)


def test_an_object_array_planted_as_an_optimizer_buffer_is_refused_by_its_dtype(tmp_path):
    """An optimizer buffer's check looks at its shape only (a count or like its parameter),
    so an object array planted there is stopped by _open's dtype.hasobject check alone,
    named as Python objects, before a byte of it is read. (Mutant i15 dropped that check
    and survived: the only planted object array was a parameter, which the parameter's
    dtype check refuses first.)"""
    m = Linear(2, 2, seed=0)
    arrays = _arrays_with_momentum(tmp_path, m)
    target = tmp_path / "pwned"
    planted = np.empty((2, 2), dtype=object)
    planted[...] = _Exploit(str(target))
    evil = _rewrite(tmp_path / "evil.npz", {**arrays, "optim/weight/momentum_buffer": planted})
    for model in (None, Linear(2, 2)):
        with pytest.raises(ValueError, match=r"member 'optim/weight/momentum_buffer' holds "
                                             r"Python objects \(dtype object\)"):
            gio.load(evil, model=model)
    assert not target.exists()


def test_an_optimizer_buffer_of_no_number_type_is_refused_unread(tmp_path):
    """Regression: an optimizer buffer's check looked at its shape alone, and a count's
    shape () bounds nothing when the dtype is a void of any size: a 1 MiB deflated file
    with a '|V1073741824' step made load read 2 GiB (and load_state_dict's message then
    printed it, which crashed numpy). Counts and buffers are numbers, checked on the npy
    header before a byte is read."""
    m = Linear(2, 2, seed=0)
    opt = optim.Adam(m.parameters())
    opt.step({k: np.ones_like(v) for k, v in m.parameters().items()})
    gio.save(tmp_path / "good.npz", m, opt)
    arrays = _arrays(tmp_path / "good.npz")
    assert arrays["optim/weight/step"].shape == ()
    bad = tmp_path / "bad.npz"
    np.savez_compressed(bad, **{**arrays, "optim/weight/step": np.zeros((), "V16777216")})
    assert bad.stat().st_size < 1 << 16
    for model in (None, Linear(2, 2)):
        with pytest.raises(ValueError, match=r"optimizer buffer 'optim/weight/step' has dtype "
                                             r"\|V16777216, expected integers or floats"):
            gio.load(bad, model=model)


def test_a_member_the_header_does_not_list_neither_sizes_the_model_nor_loads(tmp_path,
                                                                             monkeypatch):
    """Regression: load's size guard counted every member's values, so a spare one the
    header does not list (deflated zeros: 239 KiB on disk) let a header asking for a model
    of 48 million values build it before "missing parameter". And a listed-looking member
    the header does not name was never read, silently: a parameter or an optimizer buffer
    in it was not restored. Both are refused, the first before anything is built."""
    def build(**config):
        pytest.fail(f"load built the model {config} from a forged checkpoint")
    with monkeypatch.context() as patch:
        patch.setitem(gio.MODEL_CLASSES, "SequenceModel", build)
        # SequenceModel(1, 2000, 1) needs 12 020 001 values; the spare member holds more
        path = _forged_bomb(tmp_path / "spare.npz", 2000, (12_100_000,), bytes(48_400_000),
                            deflate=True)
        assert path.stat().st_size < 100_000
        with pytest.raises(ValueError, match=r"it needs 12020001 parameter values, the archive "
                                             r"holds 0 in all"):
            gio.load(path)
    m = Linear(2, 2, seed=0)
    arrays = _arrays_with_momentum(tmp_path, m)
    header = _header(arrays)
    bufs = header["optimizer"]["buffers"]
    for name, extra, kw in (
            ("param", "param/extra", dict(arrays={**arrays, "param/extra": np.zeros(2)})),
            ("buffer", "optim/weight/momentum_buffer",
             dict(header={**header, "optimizer": {**header["optimizer"],
                                                 "buffers": {**bufs, "weight": []}}}))):
        bad = _rewrite(tmp_path / f"{name}.npz", kw.pop("arrays", arrays), **kw)
        for model in (None, Linear(2, 2)):
            with pytest.raises(ValueError, match=rf"is a damaged checkpoint: member '{extra}' "
                                                 "is not listed in its header"):
                gio.load(bad, model=model)


def test_optimizer_state_numpy_would_pickle_is_refused_before_the_file_is_touched(tmp_path):
    """Regression: np.savez pickles what is not a number array, and save wrote it over the
    checkpoint at path: a per-parameter step count past 2**64 (a restored uint64 maximum,
    stepped once) or an object array in the state made a file load refuses ("holds Python
    objects"), in place of a good one."""
    m = Linear(2, 1, seed=0)
    path = tmp_path / "c.npz"
    gio.save(path, m)
    before = path.read_bytes()
    opt = optim.Adam(m.parameters(), lr=0.1)
    grads = {k: np.ones_like(v) for k, v in m.parameters().items()}
    opt.step(grads)
    sd = opt.state_dict()
    for bufs in sd["state"].values():
        bufs["step"] = np.uint64(2**64 - 1)
    opt.load_state_dict(sd)
    opt.step(grads)
    with pytest.raises(ValueError, match=r"optimizer state must be numbers np.savez writes "
                                         r"without pickling; its 'step' for '\w+' is an int of "
                                         r"65 bits"):
        gio.save(path, m, opt)
    sgd = optim.SGD(m.parameters(), lr=0.1, momentum=0.9)
    sgd.step(grads)
    sgd.state["bias"]["momentum_buffer"] = np.array([object()], dtype=object)
    with pytest.raises(ValueError, match=r"its 'momentum_buffer' for 'bias' is of dtype object"):
        gio.save(path, m, sgd)
    assert path.read_bytes() == before and os.listdir(tmp_path) == ["c.npz"]


def test_a_large_file_that_is_no_checkpoint_is_refused_without_reading_it(tmp_path):
    """Regression: load read the whole file into memory before looking at it, so a 1 GiB
    file that was no checkpoint (a dataset's .npz given by mistake) took 1 GiB and 6 s to
    refuse. The zip is read member by member from the open file: only its directory here."""
    import tracemalloc
    path = tmp_path / "data.npz"
    with open(path, "wb") as f:
        f.truncate(256 << 20)                  # sparse: no disk space taken
    tracemalloc.start()
    try:
        with pytest.raises(ValueError, match="not a grucy checkpoint: not an .npz archive"):
            gio.load(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 16 << 20, peak
