"""The README's Python examples run as written, and the training example actually trains."""
import pathlib
import re

import numpy as np
import pytest

README = pathlib.Path(__file__).resolve().parents[1] / "README.md"


def _example(marker):
    """The README's one Python example that contains `marker`, wherever it sits."""
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)
    found = [b for b in blocks if marker in b]
    assert len(found) == 1, f"expected one Python example with {marker!r} in {README}"
    return found[0]


KERNELS, TRAINING, PADDED = "grucy.gru_backward(", 'grucy.save("sine.npz"', "mask=mask"


def _run(code, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    ns = {}
    exec(compile(code, str(README), "exec"), ns)
    return ns


def test_kernel_example_runs_and_matches_the_reference(tmp_path, monkeypatch):
    # what the example prints is the kernels' answer: the numpy reference (float64, its
    # own code) must give the same, padding and all
    from grucy import reference
    ns = _run(_example(KERNELS), tmp_path, monkeypatch)
    assert ns["dw_hh"].shape == ns["w_hh"].shape
    args = [ns[k].astype(np.float64) for k in ("x", "w_ih", "w_hh", "b_ih", "b_hh")]
    out, h_n, cache = reference.gru_forward(args[0], None, *args[1:], lengths=ns["lengths"])
    grads = reference.gru_backward(np.ones_like(out), None, cache)
    got = [ns[k] for k in ("out", "h_n", "dx", "dh0", "dw_ih", "dw_hh", "db_ih", "db_hh")]
    for name, a, b in zip(("out", "h_n", "dx", "dh0", "dw_ih", "dw_hh", "db_ih", "db_hh"),
                          got, [out, h_n, *grads]):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-4 * max(1.0, np.abs(b).max()),
                                   err_msg=name)


def test_training_example_is_short():
    assert len(_example(TRAINING).strip().splitlines()) <= 20


def test_training_example_runs_and_loss_falls(tmp_path, monkeypatch, capsys):
    ns = _run(_example(TRAINING), tmp_path, monkeypatch)
    assert (tmp_path / "sine.npz").exists()
    assert ns["loss"] < 0.01, ns["loss"]
    for k, v in ns["model"].parameters().items():
        np.testing.assert_array_equal(ns["restored"].parameters()[k], v)
    assert "final training loss" in capsys.readouterr().out


def test_padded_example_is_short():
    assert len(_example(PADDED).strip().splitlines()) <= 20


def test_padded_example_trains_on_the_real_steps_alone(tmp_path, monkeypatch, capsys):
    ns = _run(_example(PADDED), tmp_path, monkeypatch)
    assert np.isnan(ns["y"]).any()                     # missing targets were in the batch
    assert ns["loss"] < 0.01, ns["loss"]
    assert "final masked loss" in capsys.readouterr().out
    # fresh sequences, the error averaged in numpy over their real steps: an untrained model
    # (or predicting 0) is about 0.1 here
    rng, T, B = np.random.default_rng(1), ns["T"], 64
    lengths = rng.integers(1, T + 1, size=B)
    x = rng.standard_normal((T, B, 1)).astype(np.float32)
    want = np.cumsum(x.astype(np.float64), axis=0) / np.arange(1, T + 1)[:, None, None]
    got = ns["model"].predict(x, lengths=lengths)
    real = np.arange(T)[:, None] < lengths
    assert np.mean((got - want)[real] ** 2) < 0.02


def test_forecast_example_forecasts_what_the_runner_does(tmp_path, monkeypatch):
    # the README's recipe (scaling, window, period channels from the checkpoint), fed the
    # series but its last value, must forecast that value as the run's predictions.csv does
    import csv
    import json
    from runner import datasets
    from runner.app import run
    from runner.testing import compose, tiny
    out = tmp_path / "run"
    run(compose(tiny("elnino", ["data.period=12"])), out)
    assert json.loads((out / "summary.json").read_text())["status"] == "ok"
    full, labels = datasets.ElNino().series()
    monkeypatch.setattr(datasets.ElNino, "series", lambda self: (full[:-1], labels[:-1]))
    code = _example("ck.metadata[").replace("outputs/elnino-gru/<date_time>/best.npz", str(out / "best.npz"))
    ns = _run(code, tmp_path, monkeypatch)
    with open(out / "predictions.csv", newline="") as fh:
        last = list(csv.DictReader(fh))[-1]
    assert last["time"] == labels[-1]
    assert ns["forecast"][0] == pytest.approx(float(last["prediction"]), rel=1e-6)
