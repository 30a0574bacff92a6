"""grucy.io: bitwise round trip, exact resume, atomic writes, clear errors for bad files."""
import json
import os
import zipfile

import numpy as np
import pytest

from grucy import io as gio
from grucy import losses, optim
from grucy.layers import GRU, Linear
from grucy.models import SequenceModel


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
    with zipfile.ZipFile(good) as z:
        arrays = {n[:-4]: np.load(z.open(n), allow_pickle=False) for n in z.namelist()}
    header = json.loads(arrays["__grucy__"].tobytes())
    header["version"] = 99
    arrays["__grucy__"] = np.frombuffer(json.dumps(header).encode(), np.uint8)
    newer = tmp_path / "newer.npz"
    np.savez(newer, **arrays)
    with pytest.raises(ValueError, match="version 99"):
        gio.load(newer)

    # parameter arrays that disagree with the stored config
    header["version"] = 1
    arrays["__grucy__"] = np.frombuffer(json.dumps(header).encode(), np.uint8)
    arrays["param/head.weight"] = np.zeros((5, 5), np.float32)
    bad = tmp_path / "bad.npz"
    np.savez(bad, **arrays)
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
    with pytest.raises(TypeError, match="optimizer"):
        gio.save(tmp_path / "x.npz", m, optimizer="adam")
    with pytest.raises(ValueError, match="optimizer"):
        gio.save(tmp_path / "x.npz", m, optimizer=optim.SGD({"zz": np.zeros(2)}, lr=0.1))
    with pytest.raises(TypeError, match="path"):
        gio.load(None)
