"""The README's Python examples run as written, and the training example actually trains."""
import pathlib
import re

import numpy as np
import pytest

README = pathlib.Path(__file__).resolve().parents[1] / "README.md"


def _examples():
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)
    assert len(blocks) >= 2, f"expected the kernel and the training examples in {README}"
    return blocks


def _run(code, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    ns = {}
    exec(compile(code, str(README), "exec"), ns)
    return ns


def test_kernel_example_runs(tmp_path, monkeypatch):
    ns = _run(_examples()[0], tmp_path, monkeypatch)
    assert ns["dw_hh"].shape == ns["w_hh"].shape
    assert np.isfinite(ns["dx"]).all()


def test_training_example_is_short():
    assert len(_examples()[1].strip().splitlines()) <= 20


def test_training_example_runs_and_loss_falls(tmp_path, monkeypatch, capsys):
    ns = _run(_examples()[1], tmp_path, monkeypatch)
    assert (tmp_path / "sine.npz").exists()
    assert ns["loss"] < 0.01, ns["loss"]
    for k, v in ns["model"].parameters().items():
        np.testing.assert_array_equal(ns["restored"].parameters()[k], v)
    assert "final training loss" in capsys.readouterr().out
