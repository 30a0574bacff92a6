"""The README's library training example runs as written and actually trains."""
import pathlib
import re

import numpy as np

import grucy

DOC = pathlib.Path(__file__).resolve().parents[1] / "docs" / "README_library.md"


def _example():
    blocks = re.findall(r"```python\n(.*?)```", DOC.read_text(), flags=re.S)
    assert blocks, f"no python example in {DOC}"
    return blocks[0]


def test_example_is_short():
    assert len(_example().strip().splitlines()) <= 20


def test_example_runs_and_loss_falls(tmp_path, monkeypatch, capsys):
    missing = [n for n in ("SequenceModel", "optim", "losses", "save", "load") if not hasattr(grucy, n)]
    assert not missing, f"grucy/__init__.py must export {missing} (see the library hand-off)"
    monkeypatch.chdir(tmp_path)
    ns = {}
    exec(compile(_example(), str(DOC), "exec"), ns)
    assert (tmp_path / "sine.npz").exists()
    assert ns["loss"] < 0.01, ns["loss"]
    for k, v in ns["model"].parameters().items():
        np.testing.assert_array_equal(ns["restored"].parameters()[k], v)
    assert "final training loss" in capsys.readouterr().out
