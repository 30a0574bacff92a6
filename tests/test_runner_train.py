"""End-to-end runs on tiny settings: every dataset and model, outputs, failure paths,
reproducibility, resume and evaluation from a checkpoint. Outputs go to tmp_path."""
import csv
import json
import math
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
import yaml

from runner import model as M
from runner.app import run
from runner.outputs import TIMING_COLUMNS
from runner.testing import compose, tiny

CONF_DIR = Path(__file__).resolve().parents[1] / "conf"


def train(tmp_path, overrides, name="run"):
    out = tmp_path / name
    metric = run(compose(overrides), out)
    return out, metric, json.loads((out / "summary.json").read_text())


def metrics_without_timing(path):
    with open(path, newline="") as fh:
        return [{k: v for k, v in r.items() if k not in TIMING_COLUMNS} for r in csv.DictReader(fh)]


def npz_equal(a, b):
    za, zb = np.load(a), np.load(b)
    assert sorted(za.files) == sorted(zb.files)
    for k in za.files:
        assert np.array_equal(za[k], zb[k]), k


@pytest.fixture
def series_csv(tmp_path):
    p = tmp_path / "mine.csv"
    t = np.arange(200)
    rows = [f"{i},{math.sin(0.3 * i) + 0.01 * i:.6f}" for i in t]
    p.write_text("step,level\n" + "\n".join(rows) + "\n")
    return p


@pytest.mark.parametrize("data", ["sine", "mackey_glass", "elnino", "adding", "csv"])
def test_every_dataset_end_to_end(tmp_path, data, series_csv):
    extra = [f"data.path={series_csv}", "data.column=level", "data.time_column=step"] if data == "csv" else []
    out, metric, s = train(tmp_path, tiny(data, extra))
    assert s["status"] == "ok", s["error"]
    assert math.isfinite(metric) and metric == s["val"]["rmse"]
    assert s["test"]["rmse"] > 0 and s["test"]["mae"] > 0
    assert s["params"] > 0 and s["seconds"] > 0 and s["seed"] == 0
    assert s["versions"]["grucy"] and s["versions"]["numpy"]
    if data == "adding":
        assert s["baselines"]["constant_1"]["mse"] == pytest.approx(1 / 6, abs=0.08)
    else:
        assert set(s["baselines"]) == {"persistence", "ar"}
        assert s["baselines"]["ar"]["order"] >= 1
    for f in ("config.yaml", "metrics.csv", "summary.json", "best.npz", "last.npz", "predictions.csv"):
        assert (out / f).is_file(), f
    rows = list(csv.DictReader(open(out / "metrics.csv")))
    assert [r["epoch"] for r in rows] == ["1", "2"]
    assert set(rows[0]) >= {"train_loss", "val_loss", "lr", "epoch_time", "seqs_per_sec"}


@pytest.mark.parametrize("model", sorted(p.stem for p in (CONF_DIR / "model").glob("*.yaml")))
def test_every_model_end_to_end(tmp_path, model):
    out, metric, s = train(tmp_path, tiny("sine", [f"model={model}"]))
    assert s["status"] == "ok", s["error"]


@pytest.mark.parametrize("h, over", [(2, " over 2 steps (step 1 shown)"), (1, "")])
def test_plots_and_predictions(tmp_path, monkeypatch, h, over):
    from runner import outputs
    titles, plot = [], outputs.plot_forecast
    monkeypatch.setattr(outputs, "plot_forecast",
                        lambda *a, title="", **k: (titles.append(title), plot(*a, title=title, **k)))
    out, _, s = train(tmp_path, tiny("sine", ["plots=true", f"data.horizon={h}"]))
    # the plot shows step 1 of h, and its title's RMSE is over all of them: it says so
    assert titles == [f"test: test RMSE {s['test']['rmse']:.4g}{over}"]
    for png in ("loss.png", "forecast.png"):
        assert (out / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    rows = list(csv.DictReader(open(out / "predictions.csv")))
    assert set(rows[0]) == {"time", "step", "target", "prediction", "persistence"}
    # 60 test values: 61 - h windows of h steps
    assert len(rows) == h * (61 - h) and {r["step"] for r in rows} == {str(k + 1) for k in range(h)}
    # predictions are in original units: the sine's amplitude, not normalised values
    assert max(abs(float(r["target"])) for r in rows) == pytest.approx(1.0, abs=0.1)


def test_predictions_csv_times_each_step_by_its_own_target(tmp_path):
    # with horizon > 1 every step's row carried the first target's time stamp
    n = 200
    text = [f"{100 + 2 * math.sin(0.3 * i):.3f}" for i in range(n)]
    p = tmp_path / "three.csv"
    p.write_text("step,level\n" + "".join(f"{10 * i},{v}\n" for i, v in enumerate(text)))
    out, _, s = train(tmp_path, tiny("csv", [f"data.path={p}", "data.column=level",
                                             "data.time_column=step", "data.horizon=3"]))
    assert s["status"] == "ok", s["error"]
    rows = list(csv.DictReader(open(out / "predictions.csv")))
    assert {r["step"] for r in rows} == {"1", "2", "3"}
    for r in rows:
        t = int(r["time"]) // 10                                 # the target's own index
        assert float(r["target"]) == float(text[t]), r
        assert float(r["persistence"]) == float(text[t - int(r["step"])]), r


def test_predictions_csv_writes_the_series_values_as_read_and_no_fake_digits(tmp_path):
    # targets were rebuilt from float32-normalised values: a CSV's 102.446 came out as
    # 102.44599994651077; predictions carried float64 digits a float32 model never made
    from decimal import Decimal
    n = 200
    text = [f"{100 + 2 * math.sin(0.3 * i) + 0.01 * i:.3f}" for i in range(n)]
    p = tmp_path / "three.csv"
    p.write_text("step,level\n" + "".join(f"{i},{v}\n" for i, v in enumerate(text)))
    out, _, s = train(tmp_path, tiny("csv", [f"data.path={p}", "data.column=level", "data.time_column=step"]))
    assert s["status"] == "ok", s["error"]
    rows = list(csv.DictReader(open(out / "predictions.csv")))
    assert len(rows) == round(n * 0.2)   # the test split, one step ahead
    for r in rows:
        t = int(r["time"])
        assert float(r["target"]) == float(text[t]), r          # as written in the CSV
        assert float(r["persistence"]) == float(text[t - 1]), r
    # predictions: the shortest decimals that normalise (training part's mean and std,
    # README) to the same float32; one significant digit fewer must not
    train_part = np.array([float(v) for v in text[:n - round(n * 0.2) - round(n * 0.1)]])
    mean, std = train_part.mean(), train_part.std()

    def as_float32(v):
        return np.float32((v - mean) / std)

    for r in rows:
        digits = len(Decimal(r["prediction"]).normalize().as_tuple().digits)
        if digits == 1:
            continue
        fewer = float(f"{float(r['prediction']):.{digits - 1}g}")
        assert as_float32(fewer) != as_float32(float(r["prediction"])), r["prediction"]
    # and they are the model's: they give the test RMSE in summary.json
    err = np.array([float(r["prediction"]) - float(r["target"]) for r in rows])
    assert np.sqrt(np.mean(err ** 2)) == pytest.approx(s["test"]["rmse"], rel=1e-5)


def test_plots_are_written_atomically(tmp_path, monkeypatch):
    # outputs.py promises every file it writes goes through a temporary file and a rename
    import os
    renamed = []
    real = os.replace
    monkeypatch.setattr(os, "replace", lambda a, b: (renamed.append(Path(b).name), real(a, b)))
    out, _, s = train(tmp_path, tiny("sine", ["plots=true"]))
    assert s["status"] == "ok", s["error"]
    assert {"loss.png", "forecast.png"} <= set(renamed)
    assert not list(out.glob(".*.tmp"))


def test_a_long_forecast_plot_draws_each_runs_extremes(tmp_path, monkeypatch):
    # 200,000 test points took 8 s to draw, at some 800 pixels across
    import matplotlib.axes
    from runner import outputs
    rng = np.random.default_rng(0)
    y = np.cumsum(rng.normal(size=100_003))
    y[[7, 50_000, 100_002]] = [np.nan, np.inf, -np.inf]
    x, v = outputs.envelope(y, bins=1000)
    assert np.all(np.diff(x) > 0) and np.array_equal(v, y[x], equal_nan=True)
    assert {0, 7, 50_000, 100_002} <= set(x.tolist()) and len(x) <= 2 * 1000 + 4
    k = -(-len(y) // 1000)
    for start in range(0, len(y), k):
        run = y[start:start + k]
        kept = v[(x >= start) & (x < start + k)]
        if np.isfinite(run).any():
            assert np.nanmax(kept[np.isfinite(kept)]) == run[np.isfinite(run)].max()
            assert np.nanmin(kept[np.isfinite(kept)]) == run[np.isfinite(run)].min()
    short = y[:4000]
    assert np.array_equal(outputs.envelope(short, bins=1000)[0], np.arange(4000))

    drawn, plot = [], matplotlib.axes.Axes.plot
    monkeypatch.setattr(matplotlib.axes.Axes, "plot",
                        lambda self, *a, **k: (drawn.append(len(a[0])), plot(self, *a, **k))[1])
    long = np.sin(np.arange(200_000) / 50.0)[:, None]
    outputs.plot_forecast(tmp_path / "f.png", long, long + 0.1, {"AR(3)": long[:, 0] - 0.1})
    assert (tmp_path / "f.png").is_file() and len(drawn) == 3 and max(drawn) <= 2002


def test_atomic_writes_fsync_and_clean_up_after_a_failure(tmp_path, monkeypatch):
    # like grucy's checkpoint writer: fsync the file before the rename and the directory
    # after it, and never leave the temporary file behind
    import os
    from runner import outputs
    events, real_fsync, real_replace = [], os.fsync, os.replace

    def fsync(fd):
        events.append("fsync-dir" if os.path.isdir(f"/proc/self/fd/{fd}") else "fsync-file")
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(os, "replace", lambda a, b: (events.append("replace"), real_replace(a, b)))
    outputs.write_json(tmp_path / "summary.json", {"status": "ok"})
    assert events == ["fsync-file", "replace", "fsync-dir"]
    assert json.loads((tmp_path / "summary.json").read_text()) == {"status": "ok"}

    def full_disk(a, b):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", full_disk)
    with pytest.raises(OSError):
        outputs.write_json(tmp_path / "summary.json", {"status": "failed"})
    assert not list(tmp_path.glob(".*.tmp"))
    assert json.loads((tmp_path / "summary.json").read_text()) == {"status": "ok"}   # the old one stays


def test_summary_json_is_strict_json(tmp_path):
    # found by a fuzzing pass: a series of +-1e308 made the persistence baseline's RMSE
    # overflow, and summary.json held Infinity, which JSON has not (jq, JSON.parse refuse it)
    from runner import outputs
    outputs.write_json(tmp_path / "s.json", {"rmse": math.inf, "val": [np.float32("nan"), 1.5],
                                             "a": np.array([-np.inf, 2.0]), "n": np.int64(3),
                                             "t": (math.nan, {"x": -math.inf})})   # a tuple too
    text = (tmp_path / "s.json").read_text()
    strict = json.loads(text, parse_constant=lambda c: pytest.fail(f"{c} in {text}"))
    assert strict == {"rmse": None, "val": [None, 1.5], "a": [None, 2.0], "n": 3, "t": [None, {"x": None}]}
    # end to end: the run that wrote Infinity
    (tmp_path / "big.csv").write_text("v\n" + "".join(f"{(-1) ** i * 1e308}\n" for i in range(400)))
    out, _, _ = train(tmp_path, tiny("csv", ["data.column=v", f"data.path={tmp_path / 'big.csv'}"]))
    summary = json.loads((out / "summary.json").read_text(),
                         parse_constant=lambda c: pytest.fail(f"{c} in summary.json"))
    assert summary["baselines"]["persistence"]["rmse"] is None


def test_metrics_csv_reads_back_every_number_exactly(tmp_path):
    # full precision, so equal files mean equal numbers (a resume is compared with an
    # uninterrupted run by them): 0.1 + 0.2 and 1/3 need 17 digits, which "%.6g" would cut.
    # epoch is a whole number, an empty cell (grad_norm with no batch) is None
    from runner import outputs
    rows = [{"epoch": 1, "train_loss": 0.1 + 0.2, "val_loss": 1 / 3, "val_rmse": 2.0 ** -30,
             "lr": 1e-3, "grad_norm": None, "epoch_time": 12345.678901234567, "seqs_per_sec": 7.0}]
    outputs.write_metrics(tmp_path / "m.csv", rows)
    back = outputs.read_metrics(tmp_path / "m.csv")
    assert back == rows
    assert type(back[0]["epoch"]) is int and type(back[0]["train_loss"]) is float


def test_a_series_near_the_float64_limit_trains_and_reports_without_warnings(tmp_path, caplog):
    # the same ±1e308 series with plots on: the training part's mean and range overflowed
    # with numpy RuntimeWarnings, and after training matplotlib's tick placement raised, so
    # the run ended "failed" with no test scores. A plot is only a picture of them.
    import warnings
    (tmp_path / "big.csv").write_text("v\n" + "".join(f"{(-1) ** i * 1e308}\n" for i in range(400)))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        out, _, summary = train(tmp_path, tiny("csv", ["data.column=v", "plots=true",
                                                       f"data.path={tmp_path / 'big.csv'}"]))
    assert summary["status"] == "ok", summary.get("error")
    assert summary["test"]["rmse"] is not None and summary["params"] > 0
    assert (out / "loss.png").is_file() and not (out / "forecast.png").exists()
    assert "forecast.png not drawn: ValueError" in caplog.text


def test_a_plot_that_cannot_be_drawn_is_a_warning_and_closes_its_figure(tmp_path, caplog):
    from runner import outputs, sweep
    plt = outputs._pyplot()
    before = plt.get_fignums()
    nan_rows = [{"epoch": 1, "train_loss": 1.0, "val_loss": 1.0}]
    with outputs.drawing(tmp_path / "x.png", (2, 2)) as ax:
        ax.plot([0, 1], [0, 1])
        raise ValueError("no picture")
    outputs.plot_forecast(tmp_path / "f.png", np.zeros((3, 1)), None)     # pred[:, 0] fails
    sweep._plot(tmp_path / "s.png", [{"status": "ok"}])                     # no val_rmse key
    outputs.plot_losses(tmp_path / "l.png", nan_rows)
    assert plt.get_fignums() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["l.png"]
    for name in ("x.png not drawn: ValueError: no picture", "f.png not drawn: TypeError",
                 "s.png not drawn: KeyError"):
        assert name in caplog.text


def test_traceback_txt_is_written_atomically(tmp_path, monkeypatch):
    import os
    renamed, real = [], os.replace
    monkeypatch.setattr(os, "replace", lambda a, b: (renamed.append(Path(b).name), real(a, b)))

    def broken(name):
        raise RuntimeError("a bug, not a config error")

    monkeypatch.setattr(M, "loss_fn", broken)
    with pytest.raises(SystemExit):
        train(tmp_path, tiny("sine"), "bug")
    assert "traceback.txt" in renamed
    assert "RuntimeError: a bug" in (tmp_path / "bug" / "traceback.txt").read_text()


def test_a_run_into_a_used_directory_drops_an_earlier_traceback(tmp_path):
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "traceback.txt").write_text("Traceback: an earlier run's crash\n")
    out, _, s = train(tmp_path, tiny("sine"))
    assert s["status"] == "ok" and not (out / "traceback.txt").exists()


def test_a_refused_run_into_a_used_directory_drops_an_earlier_traceback(tmp_path):
    """Mutant a11: without run()'s unlink at the start, the test above still passed (the
    successful run's begin() clears the directory); a run refused by validate() never
    begins, so an earlier crash's traceback.txt stayed beside its one-line ConfigError."""
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "traceback.txt").write_text("Traceback: an earlier run's crash\n")
    with pytest.raises(SystemExit):
        train(tmp_path, tiny("sine", ["trainer.clip_grad_norm=nan"]))
    s = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert s["status"] == "failed" and "clip_grad_norm" in s["error"], s["error"]
    assert not (tmp_path / "run" / "traceback.txt").exists()


def readme_run_files():
    """The files README.md's "What a run writes" table lists."""
    readme = (CONF_DIR.parent / "README.md").read_text()
    section = readme[readme.index("### What a run writes"):]
    section = section[:section.index("\n###", 1)]
    return {name for line in section.splitlines() if line.startswith("| `")
            for name in re.findall(r"`([^`]+)`", line.split("|")[1])}


REFUSED = {   # refused by validate(), and later, building the optimizer, scheduler or model
    "config": ["trainer.clip_grad_norm=nan"],
    "optimizer": ["optimizer.lr=-1"],
    "scheduler": ["scheduler=step", "scheduler.gamma=-1"],
    "model": ["model.hidden_size=-1"],
}


@pytest.mark.parametrize("fails", [*REFUSED, "ctrl-c"])
def test_a_run_into_a_used_directory_leaves_none_of_the_earlier_runs_files(tmp_path, monkeypatch, fails):
    # hydra.run.dir=... given again: a run that failed early left the earlier run's
    # checkpoints, metrics, predictions and plots beside its own summary, as if they were its
    # results, and Ctrl-C offered a resume= of the earlier run's last.npz. A run refused for
    # its config instead leaves them all but summary.json: a typo must not delete a model
    # (those refused after validate(), building the run, did delete them)
    out, _, s = train(tmp_path, tiny("sine", ["plots=true"]))
    assert s["status"] == "ok"
    # every file the README lists but Hydra's log (no Hydra here) and a crash's traceback
    assert {f.name for f in out.iterdir()} >= readme_run_files() - {"runner.log", "traceback.txt"}
    (out / "notes.txt").write_text("the user's own file, not the runner's\n")
    earlier = {f.name: f.read_bytes() for f in out.iterdir() if f.name != "summary.json"}
    if fails in REFUSED:
        with pytest.raises(SystemExit):
            train(tmp_path, tiny("sine", ["plots=true", *REFUSED[fails]]))
        assert {f.name: f.read_bytes() for f in out.iterdir() if f.name != "summary.json"} == earlier
    else:
        def interrupt(pred, target):
            raise KeyboardInterrupt
        monkeypatch.setattr(M, "loss_fn", lambda name: interrupt)
        with pytest.raises(KeyboardInterrupt):
            train(tmp_path, tiny("sine"))
        assert {f.name for f in out.iterdir()} == {"summary.json", "config.yaml", "notes.txt"}
    s = json.loads((out / "summary.json").read_text())
    assert s["status"] == ("failed" if fails in REFUSED else "interrupted")
    if fails in REFUSED:
        assert REFUSED[fails][-1].split("=")[0] in s["error"], s["error"]
    else:
        assert "nothing to resume" in s["error"], s["error"]


def test_a_run_refused_while_building_keeps_the_earlier_runs_loss_plot(tmp_path):
    """Mutant t13: fit() plotted loss.png from the directory's metrics.csv even when the run
    was refused before it began (begin.done false), redrawing the earlier run's losses under
    the refused run's name. The test above kept its name, so the redrawn plot was byte for
    byte the old one; here the refused run has another name, and loss.png must not change."""
    out, _, s = train(tmp_path, tiny("sine", ["plots=true"]))
    assert s["status"] == "ok"
    before = (out / "loss.png").read_bytes()
    ov = [o for o in tiny("sine", ["plots=true", "scheduler=step", "scheduler.gamma=-1"])
          if o != "name=test"] + ["name=refused"]
    with pytest.raises(SystemExit):
        train(tmp_path, ov)
    s = json.loads((out / "summary.json").read_text())
    assert s["status"] == "failed" and "gamma" in s["error"], s["error"]
    assert (out / "loss.png").read_bytes() == before


def test_ctrl_c_while_an_epoch_is_recorded_waits_for_all_its_records(tmp_path, monkeypatch):
    # A Ctrl-C between best.npz and last.npz left last.npz an epoch behind best.npz and
    # metrics.csv (and one inside zipfile's constructor printed a stray traceback): it now
    # takes effect once the epoch's checkpoints and metrics are all written
    import os
    import signal
    real, saves = M.save_checkpoint, []

    def save_with_ctrl_c(path, *args, **kwargs):
        saves.append(path)
        if len(saves) == 3:                   # epoch 1 wrote best and last; epoch 2's first
            os.kill(os.getpid(), signal.SIGINT)
        real(path, *args, **kwargs)

    monkeypatch.setattr(M, "save_checkpoint", save_with_ctrl_c)
    # as in a terminal: a pytest started in the background inherits SIGINT ignored, and
    # the Ctrl-C above then never came (the README's test command failed so, run with &)
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        with pytest.raises(KeyboardInterrupt):
            train(tmp_path, tiny("sine", ["trainer.epochs=5"]))
    finally:
        signal.signal(signal.SIGINT, previous)
    out = tmp_path / "run"
    rows = metrics_without_timing(out / "metrics.csv")
    meta = M.load_checkpoint(out / "last.npz")[2]
    assert meta["runner"]["epoch"] == len(rows) == 2 and saves[-1].name == "last.npz"
    s = json.loads((out / "summary.json").read_text())
    assert s["status"] == "interrupted" and f"resume={out}" in s["error"], s["error"]


def test_ctrl_c_while_the_summary_is_written_waits_for_it(tmp_path, monkeypatch):
    # found by a fuzzing pass: a Ctrl-C as a run ended (or a second one while the first
    # was recorded) came during outputs.versions() and left no summary.json at all. The
    # summary says what happened before it (this run had ended: ok), the interrupt follows
    import os
    import signal
    from runner import outputs
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)   # as in a terminal
    real = outputs.versions

    def versions_with_ctrl_c():
        os.kill(os.getpid(), signal.SIGINT)
        return real()

    monkeypatch.setattr(outputs, "versions", versions_with_ctrl_c)
    try:
        with pytest.raises(KeyboardInterrupt):
            train(tmp_path, tiny("sine"))
    finally:
        signal.signal(signal.SIGINT, previous)
    s = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert s["status"] == "ok" and s["versions"]["numpy"] and s["test"]["rmse"] > 0


@pytest.mark.parametrize("where", ["dir", "last.npz"])
def test_a_resume_into_its_own_directory_keeps_the_state_it_continues(tmp_path, where):
    ov = tiny("sine", ["trainer.epochs=3", "plots=true"])
    full, _, s_full = train(tmp_path, ov, "full")
    part, _, _ = train(tmp_path, ov + ["trainer.stop_after=1"], "part")
    resume = part if where == "dir" else part / "last.npz"
    # refused: the directory stays as the interrupted run left it, but summary.json (the
    # predictions, plots and config.yaml went too, and config.yaml then described a run
    # that never happened)
    before = {f.name: f.read_bytes() for f in part.iterdir() if f.name != "summary.json"}
    with pytest.raises(SystemExit):
        train(tmp_path, tiny("sine", ["trainer.epochs=3", "model.hidden_size=5", f"resume={resume}"]), "part")
    assert {f.name: f.read_bytes() for f in part.iterdir() if f.name != "summary.json"} == before
    # the same command as the original run continues it to the uninterrupted run's result
    _, _, s = train(tmp_path, ov + [f"resume={resume}"], "part")
    assert s["status"] == "ok" and s["test"] == s_full["test"]
    assert metrics_without_timing(full / "metrics.csv") == metrics_without_timing(part / "metrics.csv")
    npz_equal(full / "last.npz", part / "last.npz")
    npz_equal(full / "best.npz", part / "best.npz")
    # and an evaluation written into the run's own directory still finds its best.npz
    _, _, ev = train(tmp_path, ov + ["train=false", f"ckpt_path={part}"], "part")
    assert ev["status"] == "ok" and ev["test"] == s_full["test"]


def test_same_config_and_seed_reproduce_metrics_and_checkpoint(tmp_path):
    ov = tiny("sine", ["trainer.epochs=3", "optimizer=adamw"])
    a, _, _ = train(tmp_path, ov, "a")
    b, _, _ = train(tmp_path, ov, "b")
    assert metrics_without_timing(a / "metrics.csv") == metrics_without_timing(b / "metrics.csv")
    npz_equal(a / "best.npz", b / "best.npz")
    npz_equal(a / "last.npz", b / "last.npz")
    c, _, _ = train(tmp_path, ov + ["seed=1"], "c")
    assert metrics_without_timing(a / "metrics.csv") != metrics_without_timing(c / "metrics.csv")


@pytest.mark.parametrize("variant", [
    ["scheduler=plateau", "scheduler.patience=1"],
    ["scheduler=cosine", "scheduler.eta_min=0.001", "optimizer=sgd"],
    ["model=bigru", "model.dropout=0.3", "optimizer=rmsprop"],   # dropout masks resume too
    # a warm-up that spans the resume (building it sets the rate, which the optimizer's
    # state then restores), with AMSGrad's max_exp_avg_sq in the checkpoint
    ["scheduler=linear", "scheduler.total_iters=4", "optimizer.amsgrad=true"],
    # stopped inside the warm-up; resumed, it crosses the milestone into the decay
    ["scheduler=warmup_cosine", "scheduler.warmup_epochs=3", "scheduler.eta_min=0.001"],
])
def test_resume_equals_uninterrupted(tmp_path, variant):
    ov = tiny("sine", ["trainer.epochs=5"] + variant)
    full, _, s_full = train(tmp_path, ov, "full")
    part, _, s_part = train(tmp_path, ov + ["trainer.stop_after=2"], "part")
    assert s_part["status"] == "interrupted" and s_part["epochs_run"] == 2
    resumed, _, s_res = train(tmp_path, ov + [f"resume={part}"], "resumed")
    assert s_res["status"] == "ok"
    assert metrics_without_timing(full / "metrics.csv") == metrics_without_timing(resumed / "metrics.csv")
    npz_equal(full / "last.npz", resumed / "last.npz")   # weights and optimizer state
    npz_equal(full / "best.npz", resumed / "best.npz")
    assert s_full["test"] == s_res["test"]


def test_resuming_from_best_npz_replays_the_epochs_after_it(tmp_path):
    # README: resume=<dir>/best.npz restarts at the best epoch; its state (weights, optimizer,
    # scheduler, early-stopping counters) is that epoch's, so the same config ends where the
    # run did
    ov = tiny("sine", ["trainer.epochs=6", "optimizer.lr=0.2", "trainer.clip_grad_norm=null"])
    full, _, s_full = train(tmp_path, ov, "full")
    assert s_full["best_epoch"] < 6          # else this replays nothing
    again, _, s = train(tmp_path, ov + [f"resume={full / 'best.npz'}"], "again")
    assert s["status"] == "ok" and s["test"] == s_full["test"]
    assert metrics_without_timing(full / "metrics.csv") == metrics_without_timing(again / "metrics.csv")
    npz_equal(full / "last.npz", again / "last.npz")
    npz_equal(full / "best.npz", again / "best.npz")


def test_resume_refuses_a_different_config(tmp_path):
    ov = tiny("sine", ["trainer.epochs=3", "trainer.stop_after=1"])
    part, _, _ = train(tmp_path, ov, "part")
    with pytest.raises(SystemExit):
        train(tmp_path, tiny("sine", ["trainer.epochs=4", "model.hidden_size=5", f"resume={part}"]), "r")
    s = json.loads((tmp_path / "r" / "summary.json").read_text())
    # every difference in one refusal: one per attempt sent the user round once per key
    assert s["status"] == "failed" and "model.hidden_size is 5" in s["error"], s["error"]
    assert "trainer.epochs is 4" in s["error"], s["error"]
    assert not s.get("baselines")    # refused before the data was loaded and baselines fitted


def test_a_refused_resume_under_another_option_says_which_keys_only_one_run_had(tmp_path):
    # a key only one of the two options has was "optimizer.betas is [0.9, 0.999] but the
    # checkpoint's run used None", read as a setting of null the run never made
    ov = tiny("sine", ["trainer.epochs=3"])
    part, _, _ = train(tmp_path, ov + ["optimizer=sgd", "trainer.stop_after=1"], "part")
    with pytest.raises(SystemExit):
        train(tmp_path, ov + [f"resume={part}"], "r")
    error = json.loads((tmp_path / "r" / "summary.json").read_text())["error"]
    assert "optimizer.betas is [0.9, 0.999], a key the checkpoint's run did not have" in error, error
    assert "optimizer.momentum is not set, but the checkpoint's run used 0.9" in error, error
    assert "optimizer._target_ is 'grucy.optim.Adam' but the checkpoint's run used 'grucy.optim.SGD'" in error
    assert "None" not in error, error


def test_a_failed_run_summary_has_every_key_an_ok_run_starts_with(tmp_path):
    """Tools reading summary.json across a sweep should not need .get() for the keys the
    runner always writes; threads was missing when a run failed before it was chosen."""
    with pytest.raises(SystemExit):
        train(tmp_path, tiny("sine", ["trainer.clip_grad_norm=nan"]), "bad")
    _, _, ok = train(tmp_path, tiny("sine", ["trainer.epochs=1"]), "ok")
    bad = json.loads((tmp_path / "bad" / "summary.json").read_text())
    assert bad["status"] == "failed" and "clip_grad_norm" in bad["error"]
    assert bad["threads"] is None and ok["threads"] >= 1
    assert set(bad) <= set(ok)         # the rest come from training: epochs, checkpoints


@pytest.mark.parametrize("override, key", [
    # every setting that changes the numbers a resumed run writes must match the checkpoint's
    ("trainer.early_stopping.patience=1", "trainer.early_stopping.patience"),
    ("trainer.early_stopping.min_delta=0.5", "trainer.early_stopping.min_delta"),
    ("trainer.eval_batch_size=7", "trainer.eval_batch_size"),   # changes val_loss's last digits
    ("threads=2", "threads"),                                    # so does the BLAS thread count
])
def test_resume_refuses_any_setting_that_changes_results(tmp_path, override, key):
    ov = tiny("sine", ["trainer.epochs=3", "threads=1"])
    part, _, _ = train(tmp_path, ov + ["trainer.stop_after=1"], "part")
    with pytest.raises(SystemExit):
        train(tmp_path, [o for o in ov if o != "threads=1"] + [override, f"resume={part}"], "r")
    s = json.loads((tmp_path / "r" / "summary.json").read_text())
    assert s["status"] == "failed" and s["error"].startswith(f"ConfigError: resume={part / 'last.npz'}: {key} "), s["error"]
    assert not (tmp_path / "r" / "metrics.csv").exists()


def test_resume_allows_settings_that_do_not_change_results(tmp_path):
    ov = tiny("sine", ["trainer.epochs=3"])
    full, _, _ = train(tmp_path, ov, "full")
    part, _, _ = train(tmp_path, ov + ["trainer.stop_after=1"], "part")
    free = ["plots=true", "quiet=false", "name=renamed", "trainer.stop_after=5"]
    resumed, _, s = train(tmp_path, ov + free + [f"resume={part}"], "resumed")
    assert s["status"] == "ok", s["error"]
    assert metrics_without_timing(full / "metrics.csv") == metrics_without_timing(resumed / "metrics.csv")
    # the new name labels the new run; its checkpoints stay the uninterrupted run's (they
    # stored name=renamed, which the full run never had)
    assert s["name"] == "renamed"
    npz_equal(full / "last.npz", resumed / "last.npz")
    npz_equal(full / "best.npz", resumed / "best.npz")
    assert M.load_checkpoint(resumed / "last.npz")[2]["config"]["name"] == "test"


@pytest.mark.parametrize("variant", [[], ["optimizer=sgd", "optimizer.lr=0.0", "trainer.early_stopping.patience=1"]])
def test_resuming_a_finished_run_writes_what_the_run_wrote(tmp_path, variant):
    # nothing is left to train, but the new directory must still hold a complete run: its
    # summary named a last.npz that was never written, and there was no metrics.csv
    ov = tiny("sine", ["trainer.epochs=3"] + variant)
    full, _, s_full = train(tmp_path, ov, "full")
    again, _, s = train(tmp_path, ov + [f"resume={full}"], "again")
    assert s["status"] == "ok" and s["stopped_early"] == s_full["stopped_early"]
    assert (again / s["last_checkpoint"]).samefile(again / "last.npz")
    assert (again / s["checkpoint"]).samefile(again / "best.npz")
    npz_equal(full / "last.npz", again / "last.npz")
    npz_equal(full / "best.npz", again / "best.npz")
    assert metrics_without_timing(full / "metrics.csv") == metrics_without_timing(again / "metrics.csv")
    assert s["test"] == s_full["test"] and s["epochs_run"] == s_full["epochs_run"]


def test_a_moved_run_directory_names_evaluates_and_resumes_its_own_files(tmp_path):
    # summary.json stored its checkpoints' absolute paths: moved elsewhere (another disk, an
    # archive) the run named the old place's files, and a copy named the original's
    ov = tiny("sine", ["trainer.epochs=3"])
    full, _, s_full = train(tmp_path, ov, "full")
    part, _, _ = train(tmp_path, ov + ["trainer.stop_after=1"], "part")
    copy = tmp_path / "copy"
    shutil.copytree(part, copy)
    moved = tmp_path / "elsewhere" / "part"
    shutil.move(part, moved)
    for where in (moved, copy):
        s = json.loads((where / "summary.json").read_text())
        # read back against where summary.json now is
        assert (where / s["checkpoint"]).samefile(where / "best.npz"), s["checkpoint"]
        assert (where / s["last_checkpoint"]).samefile(where / "last.npz"), s["last_checkpoint"]
    # evaluated and resumed from where it is now, it gives the unmoved copy's numbers, and
    # resumed, the uninterrupted run's
    ev = {}
    for tag, where in (("moved", moved), ("copy", copy)):
        out, _, ev[tag] = train(tmp_path, ov + ["train=false", f"ckpt_path={where}"], f"ev_{tag}")
        assert ev[tag]["status"] == "ok", ev[tag]["error"]
        assert (out / ev[tag]["checkpoint"]).samefile(where / "best.npz")   # another run's: absolute
        resumed, _, s = train(tmp_path, ov + [f"resume={where}"], f"res_{tag}")
        assert s["status"] == "ok" and s["test"] == s_full["test"], s["error"]
        assert metrics_without_timing(resumed / "metrics.csv") == metrics_without_timing(full / "metrics.csv")
        npz_equal(resumed / "last.npz", full / "last.npz")
        npz_equal(resumed / "best.npz", full / "best.npz")
    assert ev["moved"]["test"] == ev["copy"]["test"] and ev["moved"]["val"] == ev["copy"]["val"]
    assert (tmp_path / "ev_moved" / "predictions.csv").read_bytes() == (tmp_path / "ev_copy" / "predictions.csv").read_bytes()


def test_an_evaluations_summary_names_a_relative_ckpt_path_from_its_own_directory(tmp_path, monkeypatch):
    # a ckpt_path= given relative to where the command ran is another run's file: stored as
    # typed, "run/best.npz" read back against the evaluation's directory named no file
    ov = tiny("sine", ["trainer.epochs=1"])
    run_dir, _, _ = train(tmp_path, ov, "run")
    monkeypatch.chdir(tmp_path)
    out, _, s = train(tmp_path, ov + ["train=false", "ckpt_path=run"], "ev")
    assert s["status"] == "ok", s["error"]
    assert Path(s["checkpoint"]).is_absolute()
    assert (out / s["checkpoint"]).samefile(run_dir / "best.npz")


def test_a_summary_path_is_relative_inside_its_directory_and_absolute_outside(tmp_path):
    from runner.outputs import stored_path
    run_dir = tmp_path / "run"
    assert stored_path(run_dir / "best.npz", run_dir) == "best.npz"
    assert stored_path(run_dir / "sub" / ".." / "last.npz", run_dir) == "last.npz"
    assert stored_path(tmp_path / "other" / "best.npz", run_dir) == str(tmp_path / "other" / "best.npz")
    assert stored_path(tmp_path / "run2" / "best.npz", run_dir) == str(tmp_path / "run2" / "best.npz")
    # a relative path is the working directory's (as a user's ckpt_path= is)
    assert stored_path("x/best.npz", Path.cwd()) == str(Path("x") / "best.npz")
    assert stored_path("x/best.npz", tmp_path) == str(Path.cwd() / "x" / "best.npz")
    # and so is a relative directory: a file in it is stored relative to it
    assert stored_path(Path.cwd() / "x" / "best.npz", "x") == "best.npz"


def test_grad_norm_is_recorded_with_clipping_off(tmp_path):
    # metrics.csv's grad_norm was empty with trainer.clip_grad_norm=null; a clipping norm
    # far above the gradients' clips nothing, so its grad_norm is the same number
    off, _, _ = train(tmp_path, tiny("sine", ["trainer.clip_grad_norm=null"]), "off")
    high, _, _ = train(tmp_path, tiny("sine", ["trainer.clip_grad_norm=1e9"]), "high")
    rows_off, rows_high = metrics_without_timing(off / "metrics.csv"), metrics_without_timing(high / "metrics.csv")
    assert [float(r["grad_norm"]) for r in rows_off] == pytest.approx([float(r["grad_norm"]) for r in rows_high])
    assert all(float(r["grad_norm"]) > 0 for r in rows_off)


def test_early_stopping(tmp_path):
    out, _, s = train(tmp_path, tiny("sine", ["trainer.epochs=8", "optimizer=sgd", "optimizer.lr=0.0",
                                                "trainer.early_stopping.patience=2"]))
    assert s["status"] == "ok" and s["stopped_early"] and s["epochs_run"] == 3 and s["best_epoch"] == 1


def test_nan_loss_stops_keeps_last_good_checkpoint_and_fails(tmp_path, monkeypatch):
    real = M.loss_fn("mse")
    calls = {"n": 0}

    def poisoned(pred, target):
        calls["n"] += 1
        loss, d = real(pred, target)
        return (float("nan") if calls["n"] > 40 else loss), d

    monkeypatch.setattr(M, "loss_fn", lambda name: poisoned)
    # tiny sine: 202 windows = 13 train batches + 1 val loss per epoch, so the 41st loss
    # call is epoch 3's last batch; the batch check must catch it before the val check
    with pytest.raises(SystemExit) as exc:
        train(tmp_path, tiny("sine", ["trainer.epochs=5"]), "nan")
    assert exc.value.code == 1
    out = tmp_path / "nan"
    s = json.loads((out / "summary.json").read_text())
    assert s["status"] == "failed" and s["error"].startswith("NonFiniteLoss: training loss became nan")
    assert "epoch 3, batch 13" in s["error"] and str(out / "last.npz") in s["error"]
    from grucy.io import load
    ck = load(str(out / "last.npz"))
    assert ck.metadata["runner"]["epoch"] == 2
    assert all(np.isfinite(p).all() for p in ck.model.parameters().values())
    assert (out / "best.npz").is_file()


def test_a_non_finite_loss_is_one_line_without_traceback_txt(tmp_path, monkeypatch):
    """Mutant a20: with NonFiniteLoss dropped from runner.app.EXPECTED_ERRORS a NaN loss also
    wrote traceback.txt, though its message says what happened and where to resume; the
    NaN tests checked the message and the checkpoints, never the traceback."""
    real = M.loss_fn("mse")

    def poisoned(pred, target):
        loss, d = real(pred, target)
        return float("nan"), d

    monkeypatch.setattr(M, "loss_fn", lambda name: poisoned)
    with pytest.raises(SystemExit):
        train(tmp_path, tiny("sine"), "nan")
    s = json.loads((tmp_path / "nan" / "summary.json").read_text())
    assert s["status"] == "failed" and s["error"].startswith("NonFiniteLoss: "), s["error"]
    assert not (tmp_path / "nan" / "traceback.txt").exists()


def test_ctrl_c_records_interrupted_and_the_run_resumes(tmp_path, monkeypatch):
    real = M.loss_fn("mse")
    calls = {"n": 0}

    def interrupt_in_epoch_2(pred, target):
        calls["n"] += 1
        if calls["n"] == 20:   # epoch 1 is 13 batches + 1 val loss
            raise KeyboardInterrupt
        return real(pred, target)

    ov = tiny("sine", ["trainer.epochs=3"])
    monkeypatch.setattr(M, "loss_fn", lambda name: interrupt_in_epoch_2)
    with pytest.raises(KeyboardInterrupt):
        train(tmp_path, ov, "part")
    s = json.loads((tmp_path / "part" / "summary.json").read_text())
    assert s["status"] == "interrupted" and f"resume={tmp_path / 'part'}" in s["error"]
    monkeypatch.setattr(M, "loss_fn", lambda name: real)
    full, _, _ = train(tmp_path, ov, "full")
    resumed, _, s = train(tmp_path, ov + [f"resume={tmp_path / 'part'}"], "resumed")
    assert s["status"] == "ok"
    npz_equal(full / "last.npz", resumed / "last.npz")


def test_ctrl_c_before_an_epoch_finished_offers_no_resume(tmp_path, monkeypatch):
    # the hint named a directory without last.npz, which resume= refuses
    def interrupt(pred, target):
        raise KeyboardInterrupt
    monkeypatch.setattr(M, "loss_fn", lambda name: interrupt)
    with pytest.raises(KeyboardInterrupt):
        train(tmp_path, tiny("sine"), "early")
    s = json.loads((tmp_path / "early" / "summary.json").read_text())
    assert s["status"] == "interrupted" and "resume=" not in s["error"]
    assert "nothing to resume" in s["error"]


def test_ctrl_c_before_the_run_begins_offers_no_resume_of_an_earlier_runs_checkpoint(tmp_path, monkeypatch):
    """Mutant a16: the resume hint checked last.npz but not begin.done; Ctrl-C while the data
    loads, in a directory an earlier run left its last.npz in, offered resume= of that other
    run. The Ctrl-C tests interrupted after begin(), which clears the directory first."""
    from runner import tasks
    out, _, s = train(tmp_path, tiny("sine"))
    assert s["status"] == "ok" and (out / "last.npz").is_file()

    def interrupt(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(tasks, "load_data", interrupt)
    with pytest.raises(KeyboardInterrupt):
        train(tmp_path, tiny("sine"))
    s = json.loads((out / "summary.json").read_text())
    assert s["status"] == "interrupted" and "nothing to resume" in s["error"], s["error"]
    assert (out / "last.npz").is_file()          # the earlier run's, left as it was


def test_diverging_optimizer_is_a_failed_run(tmp_path):
    with pytest.raises(SystemExit):
        train(tmp_path, tiny("sine", ["optimizer=sgd", "optimizer.lr=1e6", "trainer.clip_grad_norm=null",
                                      "model.hidden_size=8"]), "div")
    s = json.loads((tmp_path / "div" / "summary.json").read_text())
    assert s["status"] == "failed" and "loss became" in s["error"]


def test_evaluate_from_checkpoint_writes_predictions(tmp_path):
    out, _, s = train(tmp_path, tiny("mackey_glass"), "trained")
    ev, metric, s_ev = train(tmp_path, ["train=false", f"ckpt_path={out / 'best.npz'}", "name=ev",
                                        "quiet=true", "plots=false"], "eval")
    assert s_ev["status"] == "ok" and s_ev["mode"] == "evaluate"
    assert s_ev["test"] == s["test"]   # the data config came from the checkpoint
    assert (ev / "predictions.csv").read_text() == (out / "predictions.csv").read_text()
    assert not (ev / "metrics.csv").exists()


def test_an_evaluation_reproduces_the_test_scores_of_a_run_with_its_own_eval_batch_size(tmp_path):
    # the batch splits the products differently (the last digits of val_loss: a resume
    # refuses another eval_batch_size), and an evaluation took the schema's 512 whenever its
    # command line gave none, so its test scores were not the ones the run reported
    ov = tiny("sine", ["trainer.eval_batch_size=7", "model.hidden_size=32", "data.window=16"])
    out, _, s = train(tmp_path, ov, "trained")
    ev, _, s_ev = train(tmp_path, ["train=false", f"ckpt_path={out / 'best.npz'}", "quiet=true",
                                   "plots=false"], "eval")
    assert yaml.safe_load((ev / "config.yaml").read_text())["trainer"]["eval_batch_size"] == 7
    assert s_ev["test"] == s["test"] and s_ev["val"] == s["val"]
    assert (ev / "predictions.csv").read_text() == (out / "predictions.csv").read_text()


def test_a_run_and_an_evaluation_fit_the_ar_baseline_once(tmp_path, monkeypatch):
    # its score and its line on the forecast plot are the same fit; the plot refitted it,
    # 2.8 s of silence after the last epoch at a million points
    from runner import baselines
    fits, real = [], baselines.best_ar
    monkeypatch.setattr(baselines, "best_ar", lambda *a, **k: (fits.append(1), real(*a, **k))[1])
    out, _, s = train(tmp_path, tiny("sine", ["plots=true"]), "trained")
    assert s["status"] == "ok" and (out / "forecast.png").is_file() and len(fits) == 1
    _, _, s_ev = train(tmp_path, ["train=false", f"ckpt_path={out / 'best.npz'}", "quiet=true",
                                  "plots=true"], "eval")
    assert s_ev["status"] == "ok" and s_ev["baselines"] == s["baselines"] and len(fits) == 2


def test_an_evaluation_takes_an_eval_batch_size_given_on_its_command_line():
    from runner.tasks import evaluated_config
    cfg = compose(["train=false", "ckpt_path=x.npz", "trainer.eval_batch_size=64"])
    saved = {"name": "stored", "trainer": {"epochs": 3, "eval_batch_size": 7}}
    assert evaluated_config(cfg, saved, ["trainer.eval_batch_size=64"]).trainer.eval_batch_size == 64
    assert evaluated_config(cfg, saved, []).trainer.eval_batch_size == 7
    assert evaluated_config(cfg, saved, []).trainer.epochs == 3


def test_an_evaluation_of_a_checkpoint_without_an_eval_batch_size_takes_the_command_lines():
    """Mutant t18: a checkpoint from before trainer.eval_batch_size was stored has none; its
    evaluation must take the command line's (here its default-free 64), or the stored
    trainer group, which replaces the command line's whole, leaves the key unset."""
    from runner.tasks import evaluated_config
    cfg = compose(["train=false", "ckpt_path=x.npz", "trainer.eval_batch_size=64"])
    saved = {"name": "stored", "trainer": {"epochs": 3}}
    out = evaluated_config(cfg, saved, [])
    assert out.trainer.get("eval_batch_size") == 64 and out.trainer.epochs == 3


def test_evaluation_writes_the_checkpoints_config_and_name_not_the_command_lines(tmp_path):
    # evaluating an El Nino checkpoint from a plain command line wrote the default sine
    # data and model into config.yaml and "sine-gru" into summary.json, beside El Nino's scores
    out, _, s = train(tmp_path, tiny("elnino", ["name=nino", "model.hidden_size=5", "optimizer=sgd",
                                                "seed=3"]), "trained")
    ov = [o for o in tiny("sine") if o != "name=test"]   # the command line's name: sine-gru
    ev, _, s_ev = train(tmp_path, ["train=false", f"ckpt_path={out / 'best.npz'}"] + ov, "eval")
    assert s_ev["status"] == "ok" and s_ev["test"] == s["test"]
    assert s_ev["name"] == "nino"
    assert s_ev["seed"] == 3   # the command line's default seed is 0
    cfg = yaml.safe_load((ev / "config.yaml").read_text())
    assert cfg["name"] == "nino"
    assert cfg["data"]["_target_"] == "runner.datasets.ElNino" and cfg["data"]["window"] == 8
    assert cfg["model"]["hidden_size"] == 5
    assert cfg["optimizer"]["_target_"] == "grucy.optim.SGD"   # how the model was trained
    assert cfg["train"] is False and cfg["ckpt_path"] == str(out / "best.npz")


def test_an_evaluation_normalises_new_data_with_the_checkpoints_statistics(tmp_path):
    # a model fed another file (the run's CSV extended) got inputs scaled by that file's own
    # training part, not the scaling it was trained with, and said nothing
    p = tmp_path / "s.csv"
    v = np.sin(np.arange(400) * 0.3) + np.arange(400) * 0.01     # a trend: the mean moves
    p.write_text("t,y\n" + "".join(f"{i},{x!r}\n" for i, x in enumerate(v[:300].tolist())))
    out, _, _ = train(tmp_path, tiny("csv", [f"data.path={p}", "data.column=y"]))
    p.write_text("t,y\n" + "".join(f"{i},{x!r}\n" for i, x in enumerate(v.tolist())))
    _, _, s = train(tmp_path, ["train=false", f"ckpt_path={out}", "plots=false"], "eval")
    assert s["status"] == "ok", s["error"]
    model, _, meta = M.load_checkpoint(out / "best.npz")
    mean, std = meta["data"]["mean"], meta["data"]["std"]
    assert s["normalisation"] == {"mean": mean, "std": std, "from": "checkpoint"}
    # by hand: the last 20 % of the 400 values are the test targets, each after 8 inputs
    z = (v - mean) / std
    starts = np.arange(400 - 80, 400)
    x = np.stack([z[t - 8:t] for t in starts])[:, :, None].astype(np.float32)    # (N, T, 1)
    expected = np.asarray(model.predict(np.ascontiguousarray(x.transpose(1, 0, 2))))[:, 0] * std + mean
    with open(tmp_path / "eval" / "predictions.csv", newline="") as fh:
        written = np.array([float(r["prediction"]) for r in csv.DictReader(fh)])
    np.testing.assert_allclose(written, expected, rtol=1e-6, atol=1e-6 * std)


def test_an_evaluation_refuses_data_it_cannot_normalise_as_the_model_was_trained(tmp_path):
    # a dataset whose own load() takes no stats= (here Adding's) cannot be given the
    # checkpoint's scaling: refused by name rather than evaluated on inputs scaled otherwise
    out, _, _ = train(tmp_path, tiny("adding"))
    ck = _with_metadata(out / "best.npz", tmp_path / "moved.npz",
                        lambda m: {**m, "data": {**m["data"], "mean": 5.0}})
    with pytest.raises(SystemExit):
        train(tmp_path, ["train=false", f"ckpt_path={ck}", "plots=false"], "eval")
    s = json.loads((tmp_path / "eval" / "summary.json").read_text())
    assert s["error"].startswith("ConfigError: data._target_='runner.datasets.Adding': the model was "
                                 "trained on data normalised with mean 5.0 and std 1.0, this data's are "
                                 "0.0 and 1.0"), s["error"]


def test_an_evaluation_whose_stored_data_path_is_missing_says_where_it_came_from(tmp_path, series_csv):
    # "data.path='load.csv': no such file" from another directory did not say that the path
    # was the checkpoint's, nor that +data.path=FILE gives another
    extra = [f"data.path={series_csv}", "data.column=level", "data.time_column=step"]
    out, _, _ = train(tmp_path, tiny("csv", extra), "trained")
    series_csv.rename(tmp_path / "moved.csv")
    with pytest.raises(SystemExit):
        train(tmp_path, ["train=false", f"ckpt_path={out}", "plots=false"], "eval")
    s = json.loads((tmp_path / "eval" / "summary.json").read_text())
    assert s["error"] == (f"DataError: data.path='{series_csv}': no such file; this data.path is the "
                          "checkpoint's (where its run read the series): give the file with "
                          "+data.path=FILE"), s["error"]


def test_an_evaluation_that_fails_on_its_data_is_filed_under_the_checkpoints_name(tmp_path, series_csv):
    """Mutant t39: summary.json takes the evaluated run's name and seed early, so that an
    evaluation failing on its data still reports the model it evaluated; without that it
    carried the command line's name and seed, and the failing-evaluation tests read only
    the error."""
    extra = [f"data.path={series_csv}", "data.column=level", "data.time_column=step", "seed=5"]
    out, _, _ = train(tmp_path, tiny("csv", extra), "trained")
    series_csv.rename(tmp_path / "moved.csv")
    with pytest.raises(SystemExit):
        train(tmp_path, ["train=false", f"ckpt_path={out}", "plots=false", "seed=0"], "eval")
    s = json.loads((tmp_path / "eval" / "summary.json").read_text())
    assert s["status"] == "failed" and "no such file" in s["error"], s["error"]
    assert (s["name"], s["seed"]) == ("test", 5)


def test_evaluation_with_data_csv_and_a_path_needs_no_other_data_keys(tmp_path, series_csv):
    # an evaluation takes the checkpoint's data config; data=csv's required data.column
    # was still demanded, and would have been ignored
    extra = [f"data.path={series_csv}", "data.column=level", "data.time_column=step"]
    out, _, s = train(tmp_path, tiny("csv", extra), "trained")
    ev, _, s_ev = train(tmp_path, ["train=false", f"ckpt_path={out / 'best.npz'}", "data=csv",
                                   f"data.path={series_csv}", "name=ev", "plots=false"], "eval")
    assert s_ev["status"] == "ok", s_ev["error"]
    assert s_ev["test"] == s["test"]


@pytest.mark.parametrize("kwargs, key", [({"input_size": 3}, "input_size"),
                                         ({"output_size": 2}, "output_size"),
                                         ({"batch_first": True}, "batch_first")])
def test_evaluating_a_library_checkpoint_that_does_not_fit_the_data(tmp_path, kwargs, key):
    # a checkpoint saved by grucy itself has no runner config, so it meets the command
    # line's data (sine: 1 input, 1 output); a mismatch was a ValueError with a traceback
    import grucy.io
    from grucy.models import SequenceModel
    args = dict(input_size=1, hidden_size=4, output_size=1, seed=0)
    grucy.io.save(str(tmp_path / "lib.npz"), SequenceModel(**{**args, **kwargs}))
    with pytest.raises(SystemExit):
        train(tmp_path, tiny("sine", ["train=false", f"ckpt_path={tmp_path / 'lib.npz'}"]), "e")
    s = json.loads((tmp_path / "e" / "summary.json").read_text())
    assert s["error"].startswith(f"ConfigError: ckpt_path={tmp_path / 'lib.npz'}: the model has {key}="), s["error"]
    assert not (tmp_path / "e" / "traceback.txt").exists()
    grucy.io.save(str(tmp_path / "fits.npz"), SequenceModel(**args))
    _, _, s = train(tmp_path, tiny("sine", ["train=false", f"ckpt_path={tmp_path / 'fits.npz'}"]), "ok")
    assert s["status"] == "ok"


def test_a_resume_reads_its_csv_by_any_path_to_the_same_data(tmp_path, series_csv, monkeypatch):
    # found by a review: data.path was compared as text, so ./mine.csv was refused against
    # mine.csv, and a run could only be resumed from the directory it started in; the data
    # itself is what must match (its digests), and a different file is still refused
    monkeypatch.chdir(tmp_path)
    ov = tiny("csv", ["data.column=level", "data.time_column=step", "trainer.epochs=3"])
    part, _, _ = train(tmp_path, ov + ["data.path=mine.csv", "trainer.stop_after=1"], "part")
    full, _, _ = train(tmp_path, ov + ["data.path=mine.csv"], "full")
    resumed, _, s = train(tmp_path, ov + [f"data.path=./{series_csv.name}", f"resume={part}"], "resumed")
    assert s["status"] == "ok", s["error"]
    assert metrics_without_timing(resumed / "metrics.csv") == metrics_without_timing(full / "metrics.csv")
    other = tmp_path / "other.csv"
    lines = series_csv.read_text().splitlines()
    lines[10] = lines[10].split(",")[0] + ",7.5"
    other.write_text("\n".join(lines) + "\n")
    with pytest.raises(SystemExit):
        train(tmp_path, ov + ["data.path=other.csv", f"resume={part}"], "moved")
    s = json.loads((tmp_path / "moved" / "summary.json").read_text())
    assert "the data differs from the checkpoint's run" in s["error"], s["error"]


def test_a_resume_by_another_path_to_its_csv_writes_the_uninterrupted_runs_checkpoints(
        tmp_path, series_csv, monkeypatch):
    # README: data.path is free to change on a resume as long as it reads the same data, and
    # the checkpoints equal an uninterrupted run's; they stored the resuming command's path
    # (../mine.csv) beside the original overrides (data.path=mine.csv)
    monkeypatch.chdir(tmp_path)
    ov = tiny("csv", ["data.column=level", "data.time_column=step", "trainer.epochs=3"])
    full, _, _ = train(tmp_path, ov + ["data.path=mine.csv"], "full")
    part, _, _ = train(tmp_path, ov + ["data.path=mine.csv", "trainer.stop_after=1"], "part")
    (tmp_path / "sub").mkdir()
    monkeypatch.chdir(tmp_path / "sub")
    resumed, _, s = train(tmp_path, ov + ["data.path=../mine.csv", f"resume={part}"], "resumed")
    assert s["status"] == "ok", s["error"]
    for ck in ("last.npz", "best.npz"):
        assert M.load_checkpoint(resumed / ck)[2]["config"]["data"]["path"] == "mine.csv"
        npz_equal(full / ck, resumed / ck)
    # this run's own files say what it read
    assert yaml.safe_load((resumed / "config.yaml").read_text())["data"]["path"] == "../mine.csv"


def test_running_out_of_memory_in_training_names_the_batch_sizes(tmp_path, monkeypatch):
    # found by a review: hidden 512 and batch 20000 under a memory limit ended in numpy's
    # "Unable to allocate 2.56 GiB", naming no key, with traceback.txt
    import runner.trainer

    def no_memory(*args, **kwargs):
        raise MemoryError("Unable to allocate 2.56 GiB for an array with shape (20000, 512, 64)")
    monkeypatch.setattr(runner.trainer, "time_major", no_memory)
    with pytest.raises(SystemExit):
        train(tmp_path, tiny("sine", ["trainer.batch_size=16", "trainer.eval_batch_size=64"]), "oom")
    s = json.loads((tmp_path / "oom" / "summary.json").read_text())
    assert s["error"] == ("ConfigError: trainer: too large to train (Unable to allocate 2.56 GiB for "
                          "an array with shape (20000, 512, 64)); reduce trainer.batch_size=16 or "
                          "trainer.eval_batch_size=64 (or model.hidden_size=4)"), s["error"]
    assert not (tmp_path / "oom" / "traceback.txt").exists()


@pytest.mark.parametrize("how", ["lost", "damaged"])
def test_a_run_without_a_good_last_npz_offers_its_best_npz_to_resume_from(tmp_path, how):
    # the README's way back when last.npz is lost or damaged; the refusal did not say it
    # (found by a review)
    out, _, _ = train(tmp_path, tiny("sine", ["trainer.stop_after=1"]))
    if how == "lost":
        (out / "last.npz").unlink()
        start = f"ConfigError: resume={out}: no checkpoint there (expected a last.npz or its run directory)"
    else:
        (out / "last.npz").write_bytes((out / "last.npz").read_bytes()[:100])
        start = f"ConfigError: resume={out / 'last.npz'}: "
    with pytest.raises(SystemExit):
        train(tmp_path, tiny("sine", [f"resume={out}"]), "again")
    s = json.loads((tmp_path / "again" / "summary.json").read_text())
    assert s["error"].startswith(start), s["error"]
    assert s["error"].endswith("; its best.npz restarts from the best epoch and replays the rest: "
                               f"resume={out / 'best.npz'}"), s["error"]


def test_a_damaged_best_npz_is_not_offered_as_its_own_way_back(tmp_path):
    # resume=<run>/best.npz itself damaged: the way back is not that same file (nor is it
    # for a checkpoint under another name); a damaged last.npz beside a best.npz gets it
    out, _, _ = train(tmp_path, tiny("sine", ["trainer.stop_after=1"]))
    for name in ("best.npz", "last.npz"):
        (out / name).write_bytes((out / name).read_bytes()[:100])
    shutil.copy(out / "last.npz", out / "other.npz")
    for name, ending in (("best.npz", ""), ("other.npz", ""),
                         ("last.npz", "; its best.npz restarts from the best epoch and replays the rest: "
                                      f"resume={out / 'best.npz'}")):
        with pytest.raises(SystemExit):
            train(tmp_path, tiny("sine", [f"resume={out / name}"]), "again")
        s = json.loads((tmp_path / "again" / "summary.json").read_text())
        assert s["error"].startswith(f"ConfigError: resume={out / name}: "), s["error"]
        assert s["error"].endswith(ending) if ending else "its best.npz" not in s["error"], s["error"]
    # an evaluation of the damaged last.npz is not sent to resume= (it trains nothing)
    with pytest.raises(SystemExit):
        train(tmp_path, ["train=false", f"ckpt_path={out / 'last.npz'}", "plots=false"], "eval")
    s = json.loads((tmp_path / "eval" / "summary.json").read_text())
    assert s["error"].startswith(f"ConfigError: ckpt_path={out / 'last.npz'}: "), s["error"]
    assert "resume=" not in s["error"], s["error"]


def test_a_library_checkpoint_on_csv_data_without_a_path_names_the_keys(tmp_path):
    # found by a review: data=csv's path and column wait for the checkpoint's data config in
    # an evaluation, and a checkpoint saved by grucy itself has none: MissingMandatoryValue
    import grucy.io
    from grucy.models import SequenceModel
    grucy.io.save(str(tmp_path / "lib.npz"), SequenceModel(input_size=1, hidden_size=4, output_size=1))
    with pytest.raises(SystemExit):
        train(tmp_path, ["train=false", f"ckpt_path={tmp_path / 'lib.npz'}", "data=csv"], "e")
    s = json.loads((tmp_path / "e" / "summary.json").read_text())
    assert s["error"] == (f"ConfigError: ckpt_path={tmp_path / 'lib.npz'}: holds no run config "
                          "(saved by grucy itself), so it is evaluated on the command line's "
                          "data, which needs data.path, data.column"), s["error"]
    assert not (tmp_path / "e" / "traceback.txt").exists()


def test_resuming_a_library_checkpoint_says_it_is_not_a_run(tmp_path):
    # it listed the first config group as differing from None, "pass the same overrides"
    import grucy.io
    from grucy.models import SequenceModel
    grucy.io.save(str(tmp_path / "lib.npz"), SequenceModel(input_size=1, hidden_size=4, output_size=1))
    with pytest.raises(SystemExit):
        train(tmp_path, tiny("sine", [f"resume={tmp_path / 'lib.npz'}"]), "e")
    s = json.loads((tmp_path / "e" / "summary.json").read_text())
    assert s["error"] == (f"ConfigError: resume={tmp_path / 'lib.npz'}: not a checkpoint written by the "
                          f"runner (no run state to continue); evaluate it with train=false "
                          f"ckpt_path={tmp_path / 'lib.npz'}")


def test_a_constructors_settings_are_named_by_their_config_keys():
    # the constructor's arguments are its config node's keys: "window=0" is the command
    # line's data.window=0 (its message read "data: DataError: window=0 ..."); a message
    # naming no argument keeps the node's key in front
    from hydra.errors import InstantiationException
    from runner.app import describe
    from runner.datasets import DataError

    def wrapped(cause, key, target="runner.datasets.MackeyGlass"):
        try:
            try:
                raise cause
            except Exception as c:
                raise InstantiationException(f"Error in call to target '{target}':\n"
                                             f"{cause!r}\nfull_key: {key}") from c
        except InstantiationException as e:
            return e

    # tau and dt are MackeyGlass's, window its base class's (SeriesDataset)
    assert describe(wrapped(DataError("tau=-1: a multiple of dt=0.1 (a==b), window=3"), "data"))[0] == (
        "DataError: data.tau=-1: a multiple of data.dt=0.1 (a==b), data.window=3")
    assert describe(wrapped(ValueError("no such file"), "data"))[0] == "data: ValueError: no such file"
    # only its arguments, and not inside a path or quotes: the message's own text is kept
    assert describe(wrapped(ValueError("x == 1, n=40, '/d/tau=7/a.csv', 'dt=2'"), "data"))[0] == (
        "data: ValueError: x == 1, n=40, '/d/tau=7/a.csv', 'dt=2'")
    assert describe(wrapped(ValueError("tau=1"), "data", target="mypkg.Nowhere"))[0] == (
        "data: ValueError: tau=1")


def test_constructor_errors_are_one_line_naming_the_key(tmp_path):
    # Hydra wraps them in a three-line InstantiationException quoting the cause's repr
    with pytest.raises(SystemExit):
        train(tmp_path, tiny("sine", ["data.window=0"]), "w")
    s = json.loads((tmp_path / "w" / "summary.json").read_text())
    assert s["error"] == "DataError: data.window=0 and data.horizon=1 must be at least 1"
    assert not (tmp_path / "w" / "traceback.txt").exists()   # an expected error, said in full
    with pytest.raises(SystemExit):
        train(tmp_path, tiny("sine", ["model.dtype=foo"]), "d")
    s = json.loads((tmp_path / "d" / "summary.json").read_text())
    assert s["error"] == "ConfigError: model.dtype='foo': expected float32 or float64"


@pytest.mark.parametrize("overrides, error", [
    (["model.hidden_size=0"], "model.hidden_size=0: must be >= 1, got 0"),
    (["model.init=bogus"], "model.init='bogus': must be one of"),
    (["optimizer.lr=-1"], "optimizer.lr=-1.0: must be >= 0.0, got -1.0"),
    (["optimizer.betas=[0.9,1.5]"], "optimizer.betas=[0.9, 1.5]: betas[1] must be < 1.0"),
    (["scheduler=step", "scheduler.gamma=-1"], "scheduler.gamma=-1.0: must be >= 0.0"),
    # mackey_glass has a data.gamma too: the key named must be the scheduler's
    (["data=mackey_glass", "data.length=300", "scheduler=step", "scheduler.gamma=-1"], "scheduler.gamma=-1.0:"),
])
def test_model_optimizer_scheduler_errors_are_config_errors_naming_the_key(tmp_path, overrides, error):
    # grucy names its argument ("hidden_size must be >= 1"), not the config key to change,
    # and a traceback.txt would say the runner crashed
    with pytest.raises(SystemExit):
        train(tmp_path, tiny("sine", overrides), "e")
    s = json.loads((tmp_path / "e" / "summary.json").read_text())
    assert s["error"].startswith(f"ConfigError: {error}"), s["error"]
    assert not (tmp_path / "e" / "traceback.txt").exists()


def test_missing_checkpoint_is_a_clear_error(tmp_path):
    with pytest.raises(SystemExit):
        train(tmp_path, ["train=false", f"ckpt_path={tmp_path / 'nope.npz'}", "name=x"], "e")
    s = json.loads((tmp_path / "e" / "summary.json").read_text())
    assert s["error"].startswith("ConfigError: ckpt_path=")


@pytest.mark.parametrize("key", ["ckpt_path", "resume"])
def test_a_file_that_is_not_a_checkpoint_is_a_config_error_naming_the_key(tmp_path, key):
    # e.g. ckpt_path=<run dir>/metrics.csv: grucy's ValueError said what was wrong, but not
    # under which setting, and left a traceback.txt as if the runner had crashed
    wrong = tmp_path / "metrics.csv"
    wrong.write_text("epoch,train_loss\n1,0.5\n")
    extra = ["train=false", f"ckpt_path={wrong}"] if key == "ckpt_path" else [f"resume={wrong}"]
    with pytest.raises(SystemExit):
        train(tmp_path, tiny("sine", extra), "e")
    s = json.loads((tmp_path / "e" / "summary.json").read_text())
    assert s["status"] == "failed"
    assert s["error"].startswith(f"ConfigError: {key}={wrong}: "), s["error"]
    assert "is not a grucy checkpoint" in s["error"]
    assert not (tmp_path / "e" / "traceback.txt").exists()


@pytest.mark.parametrize("key", ["ckpt_path", "resume"])
@pytest.mark.parametrize("kind", ["missing", "not a checkpoint"])
def test_a_bad_checkpoint_is_reported_before_the_data_is_loaded(tmp_path, key, kind, monkeypatch):
    # resume= was looked at only after the data was loaded and the baselines fitted: a
    # typo cost that time, and a data error hid it
    from runner import tasks
    loaded = []
    monkeypatch.setattr(tasks, "load_data", lambda cfg_data: loaded.append(cfg_data) or 1 / 0)
    wrong = tmp_path / ("nope.npz" if kind == "missing" else "metrics.csv")
    if kind != "missing":
        wrong.write_text("epoch,train_loss\n1,0.5\n")
    extra = ["train=false", f"ckpt_path={wrong}"] if key == "ckpt_path" else [f"resume={wrong}"]
    with pytest.raises(SystemExit):
        train(tmp_path, tiny("sine", extra), "e")
    s = json.loads((tmp_path / "e" / "summary.json").read_text())
    assert s["error"].startswith(f"ConfigError: {key}={wrong}: "), s["error"]
    assert ("is not a grucy checkpoint" if kind != "missing" else "no ") in s["error"]
    assert loaded == [] and s["baselines"] is None


@pytest.mark.parametrize("data", ["sine", "adding"])
def test_float64_model_trains_and_evaluates(tmp_path, data):
    # the datasets are float32; a float64 model must get its batches in its own dtype
    out, _, s = train(tmp_path, tiny(data, ["model.dtype=float64"]))
    assert s["status"] == "ok", s["error"]
    ev, _, s_ev = train(tmp_path, tiny(data, ["train=false", f"ckpt_path={out / 'best.npz'}"]), "ev")
    assert s_ev["status"] == "ok" and s_ev["test"] == s["test"]


def test_run_of_a_composed_config_without_a_name(tmp_path):
    # runner.app.run(cfg, out_dir) on runner.testing.compose(...) is the documented API; the
    # default name is an ${hydra:...} interpolation that failed outside a Hydra run
    ov = [o for o in tiny("sine") if o != "name=test"]
    out, _, s = train(tmp_path, ov)
    assert s["status"] == "ok" and s["name"] == "sine-gru"


# ------------------------------------------------- added by mutation testing (runner/*.py)
def _recording_loss(monkeypatch, val_losses=None, n_val=30):
    """Wrap the loss: record (target, loss) of every call; optionally script the validation
    losses (the tiny sine's validation split is the only call with n_val targets)."""
    import grucy.losses
    real = grucy.losses.mse          # not M.loss_fn: an earlier call may have patched it
    calls, script = [], list(val_losses or [])

    def loss(pred, target):
        value, d = real(pred, target)
        if len(target) == n_val and val_losses is not None:
            value = script.pop(0)
        calls.append((np.array(target), float(value)))
        return value, d

    monkeypatch.setattr(M, "loss_fn", lambda name: loss)
    return calls


def _tiny_sine_data():
    from hydra.utils import instantiate
    return instantiate(compose(tiny("sine")).data).load()


def test_each_epoch_shuffles_by_seed_and_epoch_and_trains_on_every_window_once(tmp_path, monkeypatch):
    # README: mini-batches are shuffled by a generator seeded with (seed, epoch); each epoch
    # visits every training window once; train_loss is the mean over the windows
    calls = _recording_loss(monkeypatch)
    out, _, s = train(tmp_path, tiny("sine", ["trainer.epochs=3", "seed=7"]))
    assert s["status"] == "ok", s["error"]
    y = _tiny_sine_data().train.y
    n = len(y)
    rows = metrics_without_timing(out / "metrics.csv")
    per_epoch = 13 + 1                       # 202 windows in batches of 16, then validation
    assert len(calls) == 3 * per_epoch
    for epoch in (1, 2, 3):
        perm = np.random.default_rng([7, epoch]).permutation(n)
        batches = calls[(epoch - 1) * per_epoch:epoch * per_epoch - 1]
        for b, (target, _) in enumerate(batches):
            np.testing.assert_array_equal(target, y[np.sort(perm[16 * b:16 * (b + 1)])])
        mean = sum(loss * len(target) for target, loss in batches) / n
        assert float(rows[epoch - 1]["train_loss"]) == pytest.approx(mean, rel=1e-12)


def test_early_stopping_counts_epochs_since_the_best_and_keeps_its_checkpoint(tmp_path, monkeypatch):
    # scripted validation losses: best at epoch 3, then two worse epochs with patience 2
    _recording_loss(monkeypatch, [1.0, 2.0, 0.5, 0.6, 0.7, 0.1])
    out, _, s = train(tmp_path, tiny("sine", ["trainer.epochs=6", "trainer.early_stopping.patience=2"]), "a")
    assert (s["status"], s["stopped_early"], s["epochs_run"], s["best_epoch"]) == ("ok", True, 5, 3)
    assert M.load_checkpoint(out / "best.npz")[2]["runner"]["epoch"] == 3
    assert M.load_checkpoint(out / "last.npz")[2]["runner"]["epoch"] == 5
    # the summary scores the best checkpoint, not the last model: its validation RMSE is
    # the one metrics.csv recorded at the best epoch
    rows = metrics_without_timing(out / "metrics.csv")
    assert s["val"]["rmse"] == float(rows[2]["val_rmse"]) != float(rows[4]["val_rmse"])
    # patience running out on the last epoch is not stopping early: every epoch ran
    _recording_loss(monkeypatch, [1.0, 2.0, 3.0])
    _, _, s = train(tmp_path, tiny("sine", ["trainer.epochs=3", "trainer.early_stopping.patience=2"]), "b")
    assert (s["stopped_early"], s["epochs_run"], s["best_epoch"]) == (False, 3, 1)


def test_min_delta_is_the_improvement_an_epoch_must_make(tmp_path, monkeypatch):
    # 0.7 and 0.8 are below the best 1.0, but not by min_delta=0.5: no new best
    _recording_loss(monkeypatch, [1.0, 0.7, 0.8])
    _, _, s = train(tmp_path, tiny("sine", ["trainer.epochs=3", "trainer.early_stopping.min_delta=0.5"]))
    assert s["best_epoch"] == 1


def test_plateau_scheduler_is_told_the_validation_loss(tmp_path, monkeypatch):
    # torch's ReduceLROnPlateau semantics: the rate halves once more than `patience` epochs
    # passed without a better validation loss; the training loss falls all along
    _recording_loss(monkeypatch, [1.0, 2.0, 3.0, 4.0])
    out, _, s = train(tmp_path, tiny("sine", ["trainer.epochs=4", "scheduler=plateau", "scheduler.patience=1"]))
    lrs = [float(r["lr"]) for r in metrics_without_timing(out / "metrics.csv")]
    assert lrs == pytest.approx([0.01, 0.01, 0.01, 0.005])


def test_lr_column_is_the_rate_each_epoch_trained_with(tmp_path):
    out, _, _ = train(tmp_path, tiny("sine", ["trainer.epochs=3", "scheduler=step", "scheduler.step_size=1"]))
    lrs = [float(r["lr"]) for r in metrics_without_timing(out / "metrics.csv")]
    assert lrs == pytest.approx([0.01, 0.005, 0.0025])     # adam's 0.01, halved after each epoch


def test_warmup_cosine_trains_each_epoch_with_torchs_rate(tmp_path):
    """scheduler=warmup_cosine: epoch e's rate is lr (s + (1 - s) e / w) in the warm-up (e
    counts from 0), then eta_min + (lr - eta_min)(1 + cos(pi (e - w) / (E - w))) / 2 over the
    rest of the E epochs; and exactly torch's SequentialLR of a LinearLR and a
    CosineAnnealingLR, where torch is installed."""
    E, w, s, lo, lr = 7, 3, 0.2, 0.001, 0.01
    out, _, summary = train(tmp_path, tiny("sine", [f"trainer.epochs={E}", "scheduler=warmup_cosine",
                                                    f"scheduler.warmup_epochs={w}",
                                                    f"scheduler.start_factor={s}",
                                                    f"scheduler.eta_min={lo}", f"optimizer.lr={lr}"]))
    assert summary["status"] == "ok", summary["error"]
    lrs = [float(r["lr"]) for r in metrics_without_timing(out / "metrics.csv")]
    want = [lr * (s + (1 - s) * e / w) if e < w
            else lo + (lr - lo) * (1 + math.cos(math.pi * (e - w) / (E - w))) / 2 for e in range(E)]
    assert lrs == pytest.approx(want, rel=1e-12)
    assert lrs[w] == pytest.approx(lr) and lrs[-1] > lo
    try:
        import torch
    except ImportError:
        return
    topt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=lr)
    warm = torch.optim.lr_scheduler.LinearLR(topt, start_factor=s, total_iters=w)
    decay = torch.optim.lr_scheduler.CosineAnnealingLR(topt, T_max=E - w, eta_min=lo)
    tsched = torch.optim.lr_scheduler.SequentialLR(topt, [warm, decay], milestones=[w])
    tlrs = []
    for _ in range(E):
        tlrs.append(tsched.get_last_lr()[0])
        topt.step()
        tsched.step()
    assert lrs == tlrs


def test_val_rmse_is_in_original_units(tmp_path):
    from runner.datasets import Sine
    out, _, s = train(tmp_path, tiny("sine", ["trainer.epochs=2"]))
    values = Sine(length=300).series()[0]
    std = values[:300 - 60 - 30].std()             # the training part: before val and test
    for r in metrics_without_timing(out / "metrics.csv"):
        assert float(r["val_rmse"]) == pytest.approx(math.sqrt(float(r["val_loss"])) * std, rel=1e-5)


def test_gradients_are_clipped_to_clip_grad_norm(tmp_path):
    # plain SGD with lr=1 moves the weights by at most clip_grad_norm per batch (13 batches);
    # unclipped, the first step alone moves them by the gradient's norm
    sgd = ["optimizer=sgd", "optimizer.momentum=0.0", "trainer.epochs=1"]
    start, _, _ = train(tmp_path, tiny("sine", sgd + ["optimizer.lr=0.0"]), "start")
    moved, _, s = train(tmp_path, tiny("sine", sgd + ["optimizer.lr=1.0", "trainer.clip_grad_norm=0.001"]), "moved")
    w0 = M.load_checkpoint(start / "last.npz")[0].parameters()
    w1 = M.load_checkpoint(moved / "last.npz")[0].parameters()
    step = math.sqrt(sum(float(np.sum((w1[k].astype(np.float64) - w0[k]) ** 2)) for k in w0))
    assert 0 < step <= 13 * 0.001 * (1 + 1e-5)
    # hidden 4, 1 input, 1 output: 3H(I + H) weights + 6H biases + H + 1 in the head
    assert s["params"] == 3 * 4 * (1 + 4) + 6 * 4 + 4 + 1


def test_gradients_are_clipped_to_clip_grad_value(tmp_path):
    # plain SGD with lr=1 moves each weight by at most clip_grad_value per batch (13
    # batches), float32 rounding aside; unclipped, by far more
    sgd = ["optimizer=sgd", "optimizer.momentum=0.0", "trainer.epochs=1", "trainer.clip_grad_norm=null"]
    start, _, _ = train(tmp_path, tiny("sine", sgd + ["optimizer.lr=0.0"]), "start")
    w0 = M.load_checkpoint(start / "last.npz")[0].parameters()
    moves = {}
    for name, value in (("clipped", "1e-4"), ("free", "null")):
        out, _, s = train(tmp_path, tiny("sine", sgd + ["optimizer.lr=1.0", f"trainer.clip_grad_value={value}"]), name)
        assert s["status"] == "ok", s["error"]
        w1 = M.load_checkpoint(out / "last.npz")[0].parameters()
        moves[name] = max(float(np.abs(w1[k].astype(np.float64) - w0[k]).max()) for k in w0)
    assert 0 < moves["clipped"] <= 13 * 1e-4 * (1 + 1e-3)
    assert moves["free"] > 10 * 13 * 1e-4


def test_clip_grad_value_leaves_grad_norm_the_norm_before_clipping(tmp_path):
    # values are clipped after the norm is measured: a bound far above every gradient
    # element clips nothing, and the run is the unclipped one, number for number
    off, _, _ = train(tmp_path, tiny("sine"), "off")
    high, _, _ = train(tmp_path, tiny("sine", ["trainer.clip_grad_value=1e9"]), "high")
    low, _, s = train(tmp_path, tiny("sine", ["trainer.clip_grad_value=1e-3"]), "low")
    rows = {k: metrics_without_timing(d / "metrics.csv") for k, d in (("off", off), ("high", high), ("low", low))}
    assert rows["off"] == rows["high"]
    assert rows["low"][0]["train_loss"] != rows["off"][0]["train_loss"]
    # measured after the values were clipped, every batch's norm would be at most
    # 1e-3 sqrt(params), each element at most 1e-3: the unclipped norms lie far above
    assert all(float(r["grad_norm"]) > 10 * 1e-3 * math.sqrt(s["params"]) for r in rows["low"])


def test_mae_loss_trains_and_is_what_val_loss_records(tmp_path):
    from runner.config import validate
    validate(compose(tiny("sine", ["trainer.loss=mae"])))
    out, _, s = train(tmp_path, tiny("sine", ["trainer.loss=mae"]))
    assert s["status"] == "ok", s["error"]
    best = metrics_without_timing(out / "metrics.csv")[s["best_epoch"] - 1]
    from runner.datasets import Sine
    std = Sine(length=300).series()[0][:210].std()
    assert float(best["val_loss"]) * std == pytest.approx(s["val"]["mae"], rel=1e-5)


def test_adding_problem_is_scored_in_mse(tmp_path):
    out, _, s = train(tmp_path, tiny("adding"))
    rows = list(csv.DictReader(open(out / "predictions.csv")))
    err = np.array([float(r["prediction"]) - float(r["target"]) for r in rows])
    assert s["test"]["mse"] == pytest.approx(np.mean(err ** 2), rel=1e-5)
    assert s["val"]["mse"] == pytest.approx(s["val"]["rmse"] ** 2)


def test_a_resumed_run_keeps_the_wall_clock_columns_of_the_epochs_it_carried(tmp_path):
    ov = tiny("sine", ["trainer.epochs=3"])
    part, _, _ = train(tmp_path, ov + ["trainer.stop_after=2"], "part")
    resumed, _, _ = train(tmp_path, ov + [f"resume={part}"], "resumed")
    old = list(csv.DictReader(open(part / "metrics.csv")))
    new = list(csv.DictReader(open(resumed / "metrics.csv")))
    for c in TIMING_COLUMNS:
        assert [r[c] for r in new[:2]] == [r[c] for r in old] and new[2][c]


def test_a_resume_beside_a_damaged_metrics_csv_leaves_only_the_timing_out(tmp_path, caplog):
    # found by a fuzzing pass: a metrics.csv edited by hand failed the resume with a bare
    # "could not convert string to float" (and traceback.txt), though only its wall-clock
    # columns are read; the run's numbers are the checkpoint's
    ov = tiny("sine", ["trainer.epochs=3"])
    part, _, _ = train(tmp_path, ov + ["trainer.stop_after=2"], "part")
    whole, _, _ = train(tmp_path, ov, "whole")
    text = (part / "metrics.csv").read_text().splitlines()
    (part / "metrics.csv").write_text("\n".join(text[:2] + ["2,oops" + text[2][1:]]) + "\n")
    resumed, _, s = train(tmp_path, ov + [f"resume={part}"], "resumed")
    assert s["status"] == "ok", s.get("error")
    assert metrics_without_timing(resumed / "metrics.csv") == metrics_without_timing(whole / "metrics.csv")
    rows = list(csv.DictReader(open(resumed / "metrics.csv")))
    assert all(not r[c] for r in rows[:2] for c in TIMING_COLUMNS) and rows[2][TIMING_COLUMNS[0]]
    assert "metrics.csv is unreadable" in caplog.text


@pytest.mark.parametrize("text", ["epok,epoch_time\n1,0.5\n",           # no epoch column
                                  "epoch,epoch_time\n1,0.5,9\n",       # a row of more cells
                                  "epoch,epoch_time\n1,oops\n"])
def test_an_unreadable_metrics_csv_leaves_only_the_timing_columns_empty(tmp_path, text, caplog):
    from runner.trainer import _carry_timing
    (tmp_path / "metrics.csv").write_text(text)
    history = [{"epoch": 1, "train_loss": 0.5}]
    _carry_timing(history, tmp_path / "metrics.csv")
    assert history == [{"epoch": 1, "train_loss": 0.5, **{c: None for c in TIMING_COLUMNS}}]
    assert "metrics.csv is unreadable" in caplog.text


def test_resume_continues_the_early_stopping_count(tmp_path, monkeypatch):
    # best at epoch 1, then worse: patience 2 stops after epoch 3, whether or not the run
    # was stopped (trainer.stop_after) and resumed in between
    ov = tiny("sine", ["trainer.epochs=5", "trainer.early_stopping.patience=2"])
    _recording_loss(monkeypatch, [1.0, 2.0, 3.0])
    _, _, s_full = train(tmp_path, ov, "full")
    _recording_loss(monkeypatch, [1.0, 2.0])
    part, _, _ = train(tmp_path, ov + ["trainer.stop_after=2"], "part")
    _recording_loss(monkeypatch, [3.0])
    _, _, s = train(tmp_path, ov + [f"resume={part}"], "resumed")
    for summary in (s_full, s):
        assert (summary["stopped_early"], summary["epochs_run"], summary["best_epoch"]) == (True, 3, 1)


def test_resuming_an_early_stopped_run_trains_no_further_epoch(tmp_path, monkeypatch):
    # the run above stopped after epoch 3 with bad_epochs == patience == 2: its last.npz
    # holds that count, so a resume (a requeued job) must stop at once, not train epoch 4
    # (a check of bad_epochs > patience instead of >= would give it one more epoch)
    ov = tiny("sine", ["trainer.epochs=5", "trainer.early_stopping.patience=2"])
    _recording_loss(monkeypatch, [1.0, 2.0, 3.0])
    out, _, _ = train(tmp_path, ov, "full")
    calls = _recording_loss(monkeypatch, [4.0])
    _, _, s = train(tmp_path, ov + [f"resume={out / 'last.npz'}"], "resumed")
    assert (s["stopped_early"], s["epochs_run"], s["best_epoch"]) == (True, 3, 1)
    assert calls == []                       # not one batch trained
    assert [r["epoch"] for r in metrics_without_timing(tmp_path / "resumed" / "metrics.csv")] == ["1", "2", "3"]


@pytest.mark.parametrize("where", ["training", "training_unclipped", "validation", "validation_inf"])
def test_a_non_finite_loss_in_the_first_epoch_has_no_checkpoint_to_offer(tmp_path, monkeypatch, where):
    # and its hints fit the run: "or trainer.clip_grad_norm" was offered with clipping on
    # (the default, 1.0), and a validation NaN had no hint at all (found by a review). An
    # overflowed (inf) validation loss is refused as NaN is: it is no epoch's result
    extra = ["optimizer.lr=0.02"] + (["trainer.clip_grad_norm=null"] if where == "training_unclipped" else [])
    if where.startswith("validation"):
        bad = float("inf") if where == "validation_inf" else float("nan")
        _recording_loss(monkeypatch, [bad])
        match = (rf"^NonFiniteLoss: validation loss became {bad} at epoch 1; try a smaller optimizer.lr "
                 r"\(now 0.02\); last good checkpoint: none$")
    else:
        import grucy.losses
        monkeypatch.setattr(M, "loss_fn", lambda name: lambda p, t: (float("inf"), grucy.losses.mse(p, t)[1]))
        clip = "trainer.clip_grad_norm" if where == "training_unclipped" else r"a smaller trainer.clip_grad_norm \(now 1\)"
        match = (r"^NonFiniteLoss: training loss became inf at epoch 1, batch 1; try a smaller "
                 rf"optimizer.lr \(now 0.02\) or {clip}; last good checkpoint: none$")
    with pytest.raises(SystemExit):
        train(tmp_path, tiny("sine", extra), "nan")
    s = json.loads((tmp_path / "nan" / "summary.json").read_text())
    assert s["status"] == "failed" and re.search(match, s["error"]), s["error"]
    assert not (tmp_path / "nan" / "last.npz").exists()
    # a failed run still reports the baselines it fitted before training
    assert set(s["baselines"]) == {"persistence", "ar"}


@pytest.mark.parametrize("optimizer", ["adam", "sgd", "adamw"])
def test_a_loss_that_weight_decay_made_nan_names_weight_decay(tmp_path, optimizer):
    # found last session: optimizer.weight_decay=1e300 stopped the run at its second batch
    # with "try a smaller optimizer.lr" alone; the decay is real here, the loss not patched
    with pytest.raises(SystemExit):
        train(tmp_path, tiny("sine", [f"optimizer={optimizer}", "optimizer.lr=0.02",
                                      "optimizer.weight_decay=1e300"]), "nan")
    s = json.loads((tmp_path / "nan" / "summary.json").read_text())
    assert s["status"] == "failed" and re.search(
        r"^NonFiniteLoss: training loss became (nan|inf) at epoch 1, batch \d+; try a smaller "
        r"optimizer.lr \(now 0.02\), a smaller optimizer.weight_decay \(now 1e\+300\) or a smaller "
        r"trainer.clip_grad_norm \(now 1\); last good checkpoint: none$", s["error"]), s["error"]


@pytest.mark.parametrize("decay", ["0.5", "0.0"])
def test_a_validation_nan_names_a_non_zero_weight_decay_only(tmp_path, monkeypatch, decay):
    # adamw's own default (0.01) is not 0: the hint names what is in force, 0 is not
    _recording_loss(monkeypatch, [math.nan])
    with pytest.raises(SystemExit):
        train(tmp_path, tiny("sine", ["optimizer=adamw", "optimizer.lr=0.02",
                                      f"optimizer.weight_decay={decay}"]), "nan")
    s = json.loads((tmp_path / "nan" / "summary.json").read_text())
    decay_hint = " or a smaller optimizer.weight_decay (now 0.5)" if decay == "0.5" else ""
    assert s["error"] == (f"NonFiniteLoss: validation loss became nan at epoch 1; try a smaller "
                          f"optimizer.lr (now 0.02){decay_hint}; last good checkpoint: none")


@pytest.mark.parametrize("as_type", [float, np.float32])
def test_a_weight_decay_kept_as_a_numpy_scalar_is_named_as_a_float_is(tmp_path, monkeypatch, as_type):
    # found in review: a user's optimizer may keep its weight_decay as a numpy scalar, and
    # np.float32(0.5) is no float: the hint left it out. The reference: the same decay as
    # a Python float, and the message the float case gives
    _recording_loss(monkeypatch, [math.nan])
    build = M.build_optimizer

    def building(cfg_opt, model):
        opt = build(cfg_opt, model)
        opt.weight_decay = as_type(opt.weight_decay)
        return opt
    monkeypatch.setattr(M, "build_optimizer", building)
    with pytest.raises(SystemExit):
        train(tmp_path, tiny("sine", ["optimizer=adamw", "optimizer.lr=0.02",
                                      "optimizer.weight_decay=0.5"]), "nan")
    s = json.loads((tmp_path / "nan" / "summary.json").read_text())
    assert s["error"] == ("NonFiniteLoss: validation loss became nan at epoch 1; try a smaller "
                          "optimizer.lr (now 0.02) or a smaller optimizer.weight_decay (now 0.5); "
                          "last good checkpoint: none")


@pytest.mark.parametrize("decay", ["none", "list"])
def test_a_nan_hint_leaves_out_a_weight_decay_that_is_no_number(tmp_path, monkeypatch, decay):
    # mutants t3 and t4 (mut27): a user's optimizer may have no weight_decay, or keep one
    # that is no number (a list per group, say); the hint building named it, or failed on
    # it, and the run ended in an AttributeError or TypeError with traceback.txt. The
    # message is the one an optimizer without decay gives. The loss is inf at the first
    # batch, before any step reads the decay
    import grucy.losses
    monkeypatch.setattr(M, "loss_fn", lambda name: lambda p, t: (float("inf"), grucy.losses.mse(p, t)[1]))
    build = M.build_optimizer

    def building(cfg_opt, model):
        opt = build(cfg_opt, model)
        if decay == "none":
            del opt.weight_decay
        else:
            opt.weight_decay = [0.5]
        return opt
    monkeypatch.setattr(M, "build_optimizer", building)
    with pytest.raises(SystemExit):
        train(tmp_path, tiny("sine", ["optimizer=adamw", "optimizer.lr=0.02", "optimizer.weight_decay=0.5"]), "nan")
    s = json.loads((tmp_path / "nan" / "summary.json").read_text())
    assert s["error"] == ("NonFiniteLoss: training loss became inf at epoch 1, batch 1; try a smaller "
                          "optimizer.lr (now 0.02) or a smaller trainer.clip_grad_norm (now 1); "
                          "last good checkpoint: none"), s["error"]
    assert not (tmp_path / "nan" / "traceback.txt").exists()


def test_grad_norm_is_each_epochs_mean_of_the_batches_global_norms(tmp_path, monkeypatch):
    real, norms = M.clip_gradients, []

    def recording(grads, max_norm):
        norms.append(math.sqrt(sum(float(np.sum(g.astype(np.float64) ** 2)) for g in grads.values())))
        got = real(grads, max_norm)
        assert got == pytest.approx(norms[-1], rel=1e-5)   # the norm before clipping
        return got

    monkeypatch.setattr(M, "clip_gradients", recording)
    out, _, _ = train(tmp_path, tiny("sine", ["trainer.epochs=2"]))
    rows = metrics_without_timing(out / "metrics.csv")
    assert len(norms) == 2 * 13
    assert float(rows[0]["grad_norm"]) == pytest.approx(np.mean(norms[:13]), rel=1e-5)
    assert float(rows[1]["grad_norm"]) == pytest.approx(np.mean(norms[13:]), rel=1e-5)


def test_evaluated_config_takes_name_and_data_path_from_any_override_form(tmp_path):
    from runner.config import ConfigError
    from runner.tasks import evaluated_config
    cfg = compose(["train=false", "ckpt_path=x.npz", "name=cli", "data=csv", "data.path=new.csv", "data.column=w"])
    saved = {"name": "stored", "data": {"_target_": "runner.datasets.CSVSeries", "path": "old.csv", "column": "v"}}
    for prefix in ("", "+", "++"):
        ev = evaluated_config(cfg, saved, [f"{prefix}name=cli", f"{prefix}data.path=new.csv"])
        assert ev.name == "cli" and ev.data.path == "new.csv" and ev.data.column == "v"
    ev = evaluated_config(cfg, saved, [])
    assert ev.name == "stored" and ev.data.path == "old.csv"
    sine = {"name": "stored", "data": {"_target_": "runner.datasets.Sine", "length": 300}}
    with pytest.raises(ConfigError, match=r"^data.path=new.csv: the checkpoint's data \(runner.datasets.Sine\) reads no file"):
        evaluated_config(cfg, sine, ["data.path=new.csv"])


def test_scores_do_not_depend_on_the_evaluation_batch_size(tmp_path):
    # 30 validation windows in batches of 29: the last batch holds one window
    a, _, s_a = train(tmp_path, tiny("sine", ["trainer.eval_batch_size=29"]), "a")
    b, _, s_b = train(tmp_path, tiny("sine"), "b")
    for split in ("val", "test"):
        for key in ("rmse", "mae"):
            assert s_a[split][key] == pytest.approx(s_b[split][key], rel=1e-5)


def test_a_checkpoint_from_before_a_schema_key_resumes_if_it_keeps_the_class_default(tmp_path):
    # optimizer.dampening joined the SGD schema later: a checkpoint without it ran with
    # SGD's default, and was refused as "optimizer.dampening is 0.0 but ... used None"
    ov = tiny("sine", ["trainer.epochs=2", "optimizer=sgd"])
    part, _, _ = train(tmp_path, ov + ["trainer.stop_after=1"], "part")
    old = _from_before(part / "last.npz", tmp_path / "old.npz", "optimizer.dampening")
    with pytest.raises(SystemExit):
        train(tmp_path, ov + ["optimizer.dampening=0.5", f"resume={old}"], "other")
    s = json.loads((tmp_path / "other" / "summary.json").read_text())
    assert "optimizer.dampening is 0.5 but the checkpoint's run used 0.0" in s["error"], s["error"]
    _, _, s = train(tmp_path, ov + [f"resume={old}"], "same")
    assert s["status"] == "ok", s["error"]


def test_a_checkpoint_from_before_clip_grad_value_resumes_without_value_clipping(tmp_path):
    # trainer.clip_grad_value joined the trainer later: a checkpoint without it clipped no
    # values, and every trainer key is compared on resume, with no class to give a default
    # (it was refused as "trainer.clip_grad_value is None, a key the checkpoint's run did not
    # have"); the schema's default, null, is filled in, and only a resume that clips is refused
    ov = tiny("sine", ["trainer.epochs=3"])
    full, _, _ = train(tmp_path, ov, "full")
    part, _, _ = train(tmp_path, ov + ["trainer.stop_after=1"], "part")

    old = _from_before(part / "last.npz", tmp_path / "old.npz", "trainer.clip_grad_value",
                       optimizer=True)
    assert "clip_grad_value" in M.load_checkpoint(part / "last.npz")[2]["config"]["trainer"]
    assert "clip_grad_value" not in M.load_checkpoint(old)[2]["config"]["trainer"]
    with pytest.raises(SystemExit):
        train(tmp_path, ov + ["trainer.clip_grad_value=0.5", f"resume={old}"], "other")
    s = json.loads((tmp_path / "other" / "summary.json").read_text())
    assert "trainer.clip_grad_value is 0.5 but the checkpoint's run used None" in s["error"], s["error"]
    resumed, _, s = train(tmp_path, ov + [f"resume={old}"], "same")
    assert s["status"] == "ok", s["error"]
    assert metrics_without_timing(full / "metrics.csv") == metrics_without_timing(resumed / "metrics.csv")


def test_a_checkpoint_from_before_amsgrad_resumes_as_plain_adam_only(tmp_path):
    # optimizer.amsgrad joined the Adam schema and the optimizer's state later: a run from
    # before has neither in its checkpoint, ran plain Adam, and must resume as it (the
    # class default fills the config's key in); asked to resume it with AMSGrad, the run
    # is refused by key, before the optimizer state (no max_exp_avg_sq) is touched
    ov = tiny("sine", ["trainer.epochs=2"])
    part, _, _ = train(tmp_path, ov + ["trainer.stop_after=1"], "part")
    with np.load(part / "last.npz") as z:
        arrays = dict(z)
    header = json.loads(arrays["__grucy__"].tobytes().decode("utf-8"))
    assert header["optimizer"]["hyperparams"].pop("amsgrad", False) is False   # stored only when True
    assert header["metadata"]["config"]["optimizer"].pop("amsgrad") is False
    arrays["__grucy__"] = np.frombuffer(json.dumps(header).encode("utf-8"), dtype=np.uint8)
    old = tmp_path / "old.npz"
    np.savez(old, **arrays)
    with pytest.raises(SystemExit):
        train(tmp_path, ov + ["optimizer.amsgrad=true", f"resume={old}"], "other")
    s = json.loads((tmp_path / "other" / "summary.json").read_text())
    assert "optimizer.amsgrad is True but the checkpoint's run used False" in s["error"], s["error"]
    full, _, _ = train(tmp_path, ov, "full")
    same, _, s = train(tmp_path, ov + [f"resume={old}"], "same")
    assert s["status"] == "ok", s["error"]
    npz_equal(full / "last.npz", same / "last.npz")


def test_resume_compares_keys_either_config_lacks():
    # a key only the current config has (or only the checkpoint's) is a difference too
    from runner.trainer import _ABSENT, _differences
    # (_ABSENT: the config lacks the key, which a null does not say)
    assert list(_differences({"a": {"x": 1}}, {"a": {"x": 1, "y": 2}})) == [("a.y", _ABSENT, 2)]
    assert list(_differences({"a": {"x": 1, "y": None}}, {"a": {"x": 1, "y": 2}})) == [
        ("a.y", None, 2)]
    assert list(_differences({"a": {"x": 1, "y": 2}}, {"a": {"x": 1}})) == [("a.y", 2, _ABSENT)]
    assert list(_differences({"a": {"x": 1, "y": 2}}, {"a": {"x": 1, "y": None}})) == [("a.y", 2, None)]
    assert list(_differences({"a": {"x": 1}}, {"a": {"x": 1}})) == []


def test_a_setting_spelt_out_for_a_resume_composes_back_to_its_value():
    # a refused resume spells out settings no stored override set, as key=value: read back
    # by Hydra's own parser, each is the value it says, of its type ('30' a string, not 30;
    # 'a,b' one value, not a sweep); a value with a quote, backslash or $ is not attempted
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from runner.trainer import _override_value
    parser = OverridesParser.create()
    for value in (True, False, None, 3, -2, 0.1, 1e-300, "adam", "30", "a,b", "1e3", "null", "x y"):
        text = _override_value(value)
        back = parser.parse_override(f"key={text}").value()
        assert back == value and type(back) is type(value), (value, text, back)
    assert [_override_value(v) for v in ("it's", "a\\b", "${x}", math.inf, [1])] == [None] * 5


def test_a_resume_repeats_only_the_overrides_that_shape_the_results():
    # written out from result_overrides' rule: kept are the settings (any prefix, a package
    # after @, --config-dir, hydra.searchpath, which finds configs); left out are how the run
    # was invoked, its name, where Hydra wrote, and the search that chose it, whatever its
    # spelling (+name=, a group with its package)
    from runner.trainer import result_overrides
    kept = ["model.hidden_size=8", "+model.init@model.x=kaiming", "~scheduler.gamma",
            "++trainer.epochs=3", "--config-dir=conf2", "hydra.searchpath=[file://conf]"]
    dropped = ["name=run1", "+name=run2", "trainer.stop_after=2", "threads=2", "resume=a/last.npz",
               "ckpt_path=b.npz", "train=true", "quiet=true", "plots=false", "hydra.run.dir=out",
               "hydra/launcher=joblib", "hydra.job.chdir=false", "hparams_search=optuna",
               "hparams_search@_global_=optuna"]
    assert result_overrides(dropped[:7] + kept[:3] + dropped[7:] + kept[3:]) == kept


@pytest.mark.parametrize("name", [
    "plain", "a,b", "it's", 'say "hi"', "both ' and \"", "back\\slash", "ends\\",
    "\\'", "a${x}", "a\\${x}", "true", "null", "1.50", "1_000", "[1,2]", "~", "=", "a b"])
def test_the_continue_command_gives_back_the_run_name_exactly(name):
    # a name with both quote characters or a backslash went into the command unquoted, and
    # true, null or 1.50 came back as 'True', a refusal or '1.5' (Hydra's types)
    import shlex
    from runner.trainer import command
    line = command(["seed=3"], 1, "/runs/r,1/last.npz", name)
    args = shlex.split(line)[3:]          # python -m runner ...: Hydra's argv
    assert args[0] == "seed=3" and args[2] == "threads=1"
    cfg = compose([args[1], "data=sine"])
    assert cfg.name == name
    assert compose([args[3].replace("resume=", "ckpt_path="), "train=false"]).ckpt_path == "/runs/r,1/last.npz"


def test_resume_compares_the_blas_threads_in_use_not_the_setting(tmp_path):
    # README: what must match is the thread count in use; threads=null picks 1 for a tiny
    # model, the count threads=1 set for the original run
    ov = tiny("sine", ["trainer.epochs=2"])
    part, _, _ = train(tmp_path, ov + ["threads=1", "trainer.stop_after=1"], "part")
    _, _, s = train(tmp_path, ov + [f"resume={part}"], "resumed")
    assert s["status"] == "ok" and s["threads"] == 1, s["error"]


def test_summary_records_the_threads_that_ran_not_the_request(tmp_path, caplog):
    # threads=1000 was recorded as 1000 while grucy ran at most one thread per CPU; and the
    # lowering was silent
    import logging
    import os
    import grucy
    before = grucy.get_num_threads()
    cpus = len(os.sched_getaffinity(0))
    try:
        with caplog.at_level(logging.INFO, logger="runner"):
            _, _, s = train(tmp_path, tiny("sine", ["trainer.epochs=1", "threads=1000"]), "many")
    finally:
        grucy.set_num_threads(before)
    assert s["status"] == "ok" and s["threads"] == cpus, s
    assert f"threads=1000: {cpus} CPUs here, running on {cpus}" in caplog.text


def test_predictions_csv_keeps_digits_float32_cannot_carry(tmp_path):
    # README: target and persistence are the series' values as read; 13 significant digits
    # are more than a float32 (normalised) copy of the series holds
    text = [f"{1000 + 10 * math.sin(0.3 * i):.9f}" for i in range(200)]
    p = tmp_path / "nine.csv"
    p.write_text("step,level\n" + "".join(f"{i},{v}\n" for i, v in enumerate(text)))
    out, _, s = train(tmp_path, tiny("csv", [f"data.path={p}", "data.column=level", "data.time_column=step"]))
    assert s["status"] == "ok", s["error"]
    for r in csv.DictReader(open(out / "predictions.csv")):
        t = int(r["time"])
        assert float(r["target"]) == float(text[t]) and float(r["persistence"]) == float(text[t - 1]), r


@pytest.mark.parametrize("override, key", [
    ("trainer.epochs=${nope}", "trainer.epochs"),
    ("trainer.epochs=${oc.env:GRUCY_TEST_UNSET_VARIABLE}", "trainer.epochs"),
    ("trainer.epochs=${trainer.batch_size}x", "trainer.epochs"),    # a string for a number
    ("optimizer.betas=[0.9,${nope}]", r"optimizer.betas\[1\]=\$\{nope\}"),   # the item, not the list
    # read before the run's try: the error escaped before summary.json was written
    ("seed=${nope}", "seed"),
    ("quiet=${nope}", "quiet"),
])
def test_an_interpolation_that_does_not_resolve_is_a_config_error_naming_its_key(tmp_path, override, key):
    # OmegaConf's error named no key for most of these, and was reported as an unexpected
    # error with traceback.txt
    with pytest.raises(SystemExit):
        train(tmp_path, tiny("sine", [override]))
    s = json.loads((tmp_path / "run" / "summary.json").read_text())
    if "=" not in key:
        key += "=" + re.escape(override.split("=", 1)[1])
    assert s["status"] == "failed"
    assert re.match(rf"ConfigError: {key}: cannot be resolved: \S", s["error"]), s["error"]
    assert not (tmp_path / "run" / "traceback.txt").exists()


def test_ckpt_path_naming_a_directory_without_best_npz_says_so(tmp_path):
    # "no such checkpoint" read as if the directory itself were missing
    (tmp_path / "empty_run").mkdir()
    with pytest.raises(SystemExit):
        train(tmp_path, tiny("sine", ["train=false", f"ckpt_path={tmp_path / 'empty_run'}"]), "eval")
    s = json.loads((tmp_path / "eval" / "summary.json").read_text())
    assert s["status"] == "failed"
    assert s["error"] == (f"ConfigError: ckpt_path={tmp_path / 'empty_run'}: a directory without best.npz "
                          "(expected a checkpoint .npz, or a run directory holding best.npz)")


def test_a_data_target_without_load_is_a_config_error_naming_it(tmp_path):
    # "'dict' object has no attribute 'load'", an unexpected error with traceback.txt
    with pytest.raises(SystemExit):
        train(tmp_path, tiny("sine", ["data._target_=builtins.dict"]))
    s = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert s["status"] == "failed" and not (tmp_path / "run" / "traceback.txt").exists()
    assert s["error"].startswith("ConfigError: data._target_='builtins.dict': dict has no load() method")


def test_a_model_target_that_is_no_forecaster_is_a_config_error_naming_it(tmp_path):
    # grucy.GRU takes no output_size: a TypeError inside Hydra, with traceback.txt
    with pytest.raises(SystemExit):
        train(tmp_path, tiny("sine", ["model._target_=grucy.GRU"]))
    s = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert s["status"] == "failed" and not (tmp_path / "run" / "traceback.txt").exists()
    assert s["error"].startswith("ConfigError: model._target_='grucy.GRU' takes no output_size: "), s["error"]


def _from_before(src, dst, key, optimizer=False):
    """A copy of checkpoint ``src`` at ``dst`` as a run from before ``key`` ("group.name")
    existed wrote it: its stored config lacks the key."""
    group, name = key.split(".")

    def older(meta):
        config = dict(meta["config"])
        config[group] = {k: v for k, v in config[group].items() if k != name}
        return {**meta, "config": config}
    return _with_metadata(src, dst, older, optimizer)


def _with_metadata(src, dst, edit, optimizer=False):
    """A copy of checkpoint ``src`` at ``dst`` whose metadata is ``edit(metadata)``, with
    its optimizer state too if ``optimizer``."""
    import grucy.io
    import grucy.optim
    ck = grucy.io.load(str(src))
    opt = None
    if optimizer:
        opt = getattr(grucy.optim, ck.optimizer_state["type"])(ck.model.parameters())
        opt.load_state_dict(ck.optimizer_state)
    grucy.io.save(str(dst), ck.model, opt, metadata=edit(dict(ck.metadata)))
    return dst


@pytest.mark.parametrize("mean, std", [("a", 1.0), (0.5, 0.0), (None, 1.0), (0.5, True),
                                       (math.nan, 1.0), (0.5, math.inf)])
def test_a_checkpoints_damaged_normalisation_is_named(tmp_path, mean, std):
    # found by a fuzzing pass: a stored mean of "a" ended an evaluation in a bare
    # "could not convert string to float: 'a'" (and a resume in a TypeError); the metadata
    # is JSON with NaN and Infinity allowed (grucy.io), so a non-finite one can be stored too
    ov = tiny("sine", ["trainer.epochs=2"])
    out, _, s = train(tmp_path, ov + ["trainer.stop_after=1"])
    bad = _with_metadata(out / "last.npz", tmp_path / "bad.npz",
                         lambda m: {**m, "data": {**m["data"], "mean": mean, "std": std}})
    why = (f"the checkpoint's stored normalisation (mean {mean!r}, std {std!r}) is not a finite "
           "mean and a positive std; the file is damaged or was not written by the runner")
    for args, key in ((["train=false", f"ckpt_path={bad}"], "ckpt_path"), (ov + [f"resume={bad}"], "resume")):
        with pytest.raises(SystemExit):
            train(tmp_path, args, key)
        s = json.loads((tmp_path / key / "summary.json").read_text())
        assert s["status"] == "failed" and s["error"] == f"ConfigError: {key}={bad}: {why}", s["error"]


def _with_data(src, dst, edit):
    """A copy of checkpoint ``src`` whose stored data config is ``edit(data config)``."""
    return _with_metadata(src, dst, lambda m: {**m, "config": {**m["config"], "data": edit(m["config"]["data"])}},
                          optimizer=True)


def _refused_by_evaluation_and_resume(tmp_path, bad, ov, why, label=""):
    """Checkpoint ``bad`` is refused by ``ckpt_path=`` and by ``resume=`` (with run overrides
    ``ov``), each with ``ConfigError: <how>=<bad>: <why>`` in summary.json and no
    traceback.txt. ``label`` tells apart the run directories of several such checks."""
    for args, how in ((["train=false", f"ckpt_path={bad}"], "ckpt_path"), (ov + [f"resume={bad}"], "resume")):
        name = f"{how}_{label}" if label else how
        with pytest.raises(SystemExit):
            train(tmp_path, args, name)
        s = json.loads((tmp_path / name / "summary.json").read_text())
        assert s["error"] == f"ConfigError: {how}={bad}: {why}", s["error"]
        assert not (tmp_path / name / "traceback.txt").exists()


@pytest.mark.parametrize("key, value, expected", [("window", "eight", "an integer"), ("window", 8.5, "an integer"),
                                                  ("window", None, "an integer"), ("window", True, "an integer"),
                                                  ("window", "???", "an integer"),
                                                  ("period", "x", "a number or null"), ("noise", [1], "a number")])
def test_a_checkpoints_stored_data_value_of_the_wrong_type_is_named(tmp_path, key, value, expected):
    # found last session: a hand-edited data.window of "eight" reached runner.datasets.Sine,
    # and an evaluation ended in a bare TypeError ("'<' not supported between 'str' and
    # 'int'") naming neither the checkpoint nor the key, with traceback.txt
    ov = tiny("sine", ["trainer.epochs=2"])
    out, _, _ = train(tmp_path, ov + ["trainer.stop_after=1"])
    bad = _with_data(out / "last.npz", tmp_path / "bad.npz", lambda d: {**d, key: value})
    # a resume compared it with its own and asked for "the same overrides as the original
    # run", though none gives window "eight"
    _refused_by_evaluation_and_resume(tmp_path, bad, ov, f"the checkpoint's data.{key}={value!r} is not "
                                      f"{expected}; the file is damaged or was not written by the runner")


def test_a_checkpoints_stored_data_interpolation_is_refused_by_name(tmp_path):
    # found in review: the schema's merge keeps an interpolation as it is, for any type, so
    # a hand-edited window of "${oc.env:HOME}" passed the typing and reached the dataset as
    # a path string (the bare TypeError and traceback.txt the typing is there to prevent);
    # a resume compared it unresolved and asked for "the same overrides". The runner stores
    # its values resolved, so no checkpoint of its own holds one
    ov = tiny("sine", ["trainer.epochs=2"])
    out, _, _ = train(tmp_path, ov + ["trainer.stop_after=1"])
    for key, value in (("window", "${oc.env:HOME}"), ("horizon", "${data.window}")):
        bad = _with_data(out / "last.npz", tmp_path / f"{key}.npz", lambda d: {**d, key: value})
        why = (f"the checkpoint's data.{key}={value!r} is an interpolation, not an integer (the "
               "runner stores its values resolved); the file is damaged or was not written by "
               "the runner")
        _refused_by_evaluation_and_resume(tmp_path, bad, ov, why, key)


def test_a_checkpoints_stored_value_omegaconf_cannot_read_is_refused_by_name(tmp_path):
    # found in review: "x${" opens an interpolation and closes none; OmegaConf.create of the
    # stored config ended an evaluation in a bare GrammarParseError with traceback.txt, and
    # a resume too once it typed the stored data (it had compared the values and named
    # the key). The runner stores its values resolved, so no checkpoint of its own holds one
    ov = tiny("sine", ["trainer.epochs=2"])
    out, _, _ = train(tmp_path, ov + ["trainer.stop_after=1"])
    for key, value, named in (("window", "x${", "data.window"), ("colour", [1, "a${"], "data.colour[1]")):
        bad = _with_data(out / "last.npz", tmp_path / f"{key}.npz", lambda d: {**d, key: value})
        shown = value if isinstance(value, str) else value[1]
        why = (f"the checkpoint's {named}={shown!r} opens an interpolation (\"${{\") that "
               "OmegaConf cannot read; the file is damaged or was not written by the runner")
        _refused_by_evaluation_and_resume(tmp_path, bad, ov, why, key)


def test_a_run_of_a_users_yaml_naming_a_builtin_dataset_evaluates_and_resumes(tmp_path):
    # found in review: a data YAML of the user's naming runner.datasets.Sine has no schema,
    # and its window: 8.0 trained (the class takes int() of it), but the schema then refused
    # the evaluation and the resume of the runner's own checkpoint as "damaged or not
    # written by the runner". The reference: the same checkpoint with the window stored as 8
    import grucy.io
    conf = tmp_path / "myconf" / "data"
    conf.mkdir(parents=True)
    (conf / "mysine.yaml").write_text("_target_: runner.datasets.Sine\nlength: 300\nwindow: 8.0\n")
    ov = [o for o in tiny("sine", ["trainer.epochs=2"]) if not o.startswith("data")]
    ov += ["data=mysine", f"hydra.searchpath=[file://{tmp_path / 'myconf'}]"]
    out, _, s = train(tmp_path, ov + ["trainer.stop_after=1"], "part")
    assert s["status"] == "interrupted", s.get("error")
    stored = grucy.io.load(str(out / "last.npz")).metadata["config"]["data"]
    assert stored["window"] == 8.0 and isinstance(stored["window"], float)
    as_int = _with_data(out / "last.npz", tmp_path / "as_int.npz", lambda d: {**d, "window": 8})
    assert _predictions(tmp_path, out / "last.npz", "own") == _predictions(tmp_path, as_int, "as_int")
    for ckpt, name in ((out / "last.npz", "from_own"), (as_int, "from_int")):
        shutil.copy(out / "metrics.csv", tmp_path / "metrics.csv")
        _, _, s = train(tmp_path, ov + [f"resume={ckpt}"], name)
        assert s["status"] == "ok", s.get("error")
    npz_equal(tmp_path / "from_own" / "last.npz", tmp_path / "from_int" / "last.npz")


def test_a_checkpoints_stored_data_list_with_a_missing_item_is_named(tmp_path):
    # found in review: "???" (OmegaConf's missing value) as an item of data.inputs passed
    # the typing, which refused it only as the whole value: an evaluation ended in a bare
    # MissingMandatoryValue with traceback.txt, and a resume asked for "the same overrides"
    ov = tiny("elnino", ["trainer.epochs=2"])
    out, _, _ = train(tmp_path, ov + ["trainer.stop_after=1"])
    bad = _with_data(out / "last.npz", tmp_path / "bad.npz", lambda d: {**d, "inputs": ["month", "???"]})
    why = ("the checkpoint's data.inputs=['month', '???'] is not a list of strings; the file is "
           "damaged or was not written by the runner")
    _refused_by_evaluation_and_resume(tmp_path, bad, ov, why)


def test_a_checkpoints_stored_data_list_with_an_interpolated_item_is_named(tmp_path):
    # mutant s18 (mut27): the merge keeps an interpolation as it is, an item of a list too;
    # with only the whole value looked at, an item "${oc.env:HOME}" of data.inputs passed
    # the typing and was read as a column name
    ov = tiny("elnino", ["trainer.epochs=2"])
    out, _, _ = train(tmp_path, ov + ["trainer.stop_after=1"])
    value = ["month", "${oc.env:HOME}"]
    bad = _with_data(out / "last.npz", tmp_path / "bad.npz", lambda d: {**d, "inputs": value})
    why = (f"the checkpoint's data.inputs={value!r} is an interpolation, not a list of strings (the "
           "runner stores its values resolved); the file is damaged or was not written by the runner")
    _refused_by_evaluation_and_resume(tmp_path, bad, ov, why)


def test_a_resume_of_a_checkpoint_saved_by_grucy_is_refused_as_such_whatever_its_config(tmp_path):
    # mutant s12 (mut27): grucy.io.save's metadata is its author's own; a "config" there
    # with a data section naming runner.datasets.Sine was typed by its schema and refused
    # as a damaged runner checkpoint ("window='eight' is not an integer"), not as what it is
    import grucy.io
    from grucy.models import SequenceModel
    lib = tmp_path / "lib.npz"
    grucy.io.save(str(lib), SequenceModel(input_size=1, hidden_size=4, output_size=1, seed=0),
                  metadata={"config": {"data": {"_target_": "runner.datasets.Sine", "window": "eight"}}})
    with pytest.raises(SystemExit):
        train(tmp_path, tiny("sine", [f"resume={lib}"]), "resume")
    s = json.loads((tmp_path / "resume" / "summary.json").read_text())
    assert s["error"].startswith(f"ConfigError: resume={lib}: not a checkpoint written by the runner"), s["error"]


def test_a_resume_of_a_stored_data_target_that_is_no_name_is_refused_by_comparison(tmp_path):
    # the schema is looked up by the stored _target_: a list there must not fail the look-up
    # (unhashable) but be compared, as before, with the command line's
    ov = tiny("sine", ["trainer.epochs=2"])
    out, _, _ = train(tmp_path, ov + ["trainer.stop_after=1"])
    bad = _with_data(out / "last.npz", tmp_path / "bad.npz", lambda d: {**d, "_target_": ["x"]})
    with pytest.raises(SystemExit):
        train(tmp_path, ov + [f"resume={bad}"], "resume")
    s = json.loads((tmp_path / "resume" / "summary.json").read_text())
    assert s["error"].startswith(f"ConfigError: resume={bad}: data._target_ is 'runner.datasets.Sine' "
                                 "but the checkpoint's run used ['x']"), s["error"]


def test_a_resume_reads_a_stored_window_written_as_text_as_its_number(tmp_path):
    # compared as stored, "8" differed from the command line's 8 and the resume was refused;
    # the reference: the same resume of the unedited checkpoint
    ov = tiny("sine", ["trainer.epochs=3"])
    out, _, _ = train(tmp_path, ov + ["trainer.stop_after=1"], "part")
    text = _with_data(out / "last.npz", tmp_path / "text.npz", lambda d: {**d, "window": str(d["window"])})
    same = _with_data(out / "last.npz", tmp_path / "same.npz", lambda d: d)
    for ckpt, name in ((text, "from_text"), (same, "from_same")):
        shutil.copy(out / "metrics.csv", tmp_path / "metrics.csv")    # the run's, beside its last.npz
        _, _, s = train(tmp_path, ov + [f"resume={ckpt}"], name)
        assert s["status"] == "ok", s.get("error")
    assert (metrics_without_timing(tmp_path / "from_text" / "metrics.csv")
            == metrics_without_timing(tmp_path / "from_same" / "metrics.csv"))
    assert len(metrics_without_timing(tmp_path / "from_text" / "metrics.csv")) == 3
    npz_equal(tmp_path / "from_text" / "last.npz", tmp_path / "from_same" / "last.npz")


def _predictions(tmp_path, ckpt, name):
    train(tmp_path, ["train=false", f"ckpt_path={ckpt}", "plots=false", "quiet=true"], name)
    return (tmp_path / name / "predictions.csv").read_text()


@pytest.mark.parametrize("edit", ["window_as_text", "from_before_period", "extra_key"])
def test_a_checkpoints_stored_data_is_read_as_before_where_it_is_typed(tmp_path, edit):
    # the schema types the stored values as the command line's: "8" is 8, as a YAML file's
    # window: "8" is; a key the checkpoint lacks (a run from before data.period) keeps the
    # dataset's default; a key the dataset does not take is refused by name, as before the
    # schema typed them. The reference: the unedited checkpoint's evaluation
    out, _, _ = train(tmp_path, tiny("sine"))
    src = out / "best.npz"
    if edit == "extra_key":
        bad = _with_data(src, tmp_path / "bad.npz", lambda d: {**d, "colour": "blue"})
        with pytest.raises(SystemExit):
            train(tmp_path, ["train=false", f"ckpt_path={bad}"], "ev")
        s = json.loads((tmp_path / "ev" / "summary.json").read_text())
        assert s["error"].startswith(f"ConfigError: ckpt_path={bad}: the checkpoint's data.colour: "
                                     "runner.datasets.Sine takes no argument 'colour' (allowed: ")
        with pytest.raises(SystemExit):
            train(tmp_path, tiny("sine", [f"resume={bad}"]), "resume")
        s = json.loads((tmp_path / "resume" / "summary.json").read_text())
        assert s["error"].startswith(f"ConfigError: resume={bad}: data.colour is not set, but the "
                                     "checkpoint's run used 'blue'"), s["error"]
        return
    assert yaml.safe_load((out / "config.yaml").read_text())["data"]["period"] is None
    bad = (_with_data(src, tmp_path / "bad.npz", lambda d: {**d, "window": str(d["window"])})
           if edit == "window_as_text" else _from_before(src, tmp_path / "bad.npz", "data.period"))
    assert _predictions(tmp_path, bad, "edited") == _predictions(tmp_path, src, "unedited")
    assert yaml.safe_load((tmp_path / "edited" / "config.yaml").read_text())["data"]["window"] == 8


@pytest.mark.parametrize("key, value, why", [
    ("epoch", "x", "epoch 'x' is not a whole number from 0 to its trainer.epochs=3"),
    ("epoch", -1, "epoch -1 is not a whole number from 0 to its trainer.epochs=3"),
    ("epoch", 99, "epoch 99 is not a whole number from 0 to its trainer.epochs=3"),
    ("best_epoch", 7, "best_epoch 7 is not a whole number from 0 to its epoch 1"),
    ("bad_epochs", -5, "bad_epochs -5 is not a whole number from 0 to its epoch 1"),
    ("best_val", math.nan, "best_val nan is not a number"),
    ("best_val", "a", "best_val 'a' is not a number"),
    ("history", [1, 2], "history [1, 2] is not a list of epochs with their val_loss"),
    ("config", [1], "its config is a list, not a mapping")])
def test_a_checkpoints_damaged_run_state_is_refused_by_name(tmp_path, key, value, why):
    # found by a fuzzing pass: an epoch of "x" (or best_val "a", a history of numbers, a
    # config list) ended the resume in int()'s ValueError or a TypeError, with traceback.txt;
    # epoch -1 trained the run over from the start, 99 trained nothing and recorded it
    # "interrupted", and a NaN best_val let no later epoch write best.npz, each "ok"
    ov = tiny("sine", ["trainer.epochs=3"])
    out, _, _ = train(tmp_path, ov + ["trainer.stop_after=1"])

    def edit(meta):
        if key == "config":
            return {**meta, "config": value}
        return {**meta, "runner": {**meta["runner"], key: value}}
    bad = _with_metadata(out / "last.npz", tmp_path / "bad.npz", edit)
    with pytest.raises(SystemExit):
        train(tmp_path, ov + [f"resume={bad}"], "again")
    s = json.loads((tmp_path / "again" / "summary.json").read_text())
    assert s["error"] == (f"ConfigError: resume={bad}: the run state stored in it is damaged ({why}); "
                          "the file was edited or not written by the runner"), s["error"]
    assert not (tmp_path / "again" / "traceback.txt").exists()


def test_a_shorter_trainer_epochs_than_a_checkpoints_epoch_is_a_config_difference(tmp_path):
    # the stored epoch is checked against the checkpoint run's own trainer.epochs: against
    # the command line's, a good checkpoint at epoch 2 read as damaged under trainer.epochs=1
    ov = tiny("sine", ["trainer.epochs=3"])
    out, _, _ = train(tmp_path, ov + ["trainer.stop_after=2"])
    with pytest.raises(SystemExit):
        train(tmp_path, ov + ["trainer.epochs=1", f"resume={out}"], "again")
    s = json.loads((tmp_path / "again" / "summary.json").read_text())
    assert s["error"].startswith(f"ConfigError: resume={out / 'last.npz'}: trainer.epochs is 1 but "
                                 "the checkpoint's run used 3; "), s["error"]


@pytest.mark.parametrize("value, why", [
    (np.nan, "must be finite"), (-1.0, "is a running mean of squares and must be >= 0, got -1.0")])
def test_a_checkpoints_damaged_optimizer_state_is_refused_naming_the_file(tmp_path, value, why):
    # grucy's refusal named the buffer, not the file or key, and the run wrote traceback.txt
    ov = tiny("sine", ["trainer.epochs=3"])
    out, _, _ = train(tmp_path, ov + ["trainer.stop_after=1"])
    z = np.load(out / "last.npz")
    arrays = {k: z[k] for k in z.files}
    arrays["optim/head.bias/exp_avg_sq"] = np.full_like(arrays["optim/head.bias/exp_avg_sq"], value)
    bad = tmp_path / "bad.npz"
    np.savez(bad, **arrays)
    with pytest.raises(SystemExit):
        train(tmp_path, ov + [f"resume={bad}"], "again")
    s = json.loads((tmp_path / "again" / "summary.json").read_text())
    assert s["error"] == (f"ConfigError: resume={bad}: the optimizer state stored in it is damaged "
                          f"(state['state']['head.bias']['exp_avg_sq'] {why}); the file was edited or "
                          "not written by the runner"), s["error"]
    assert not (tmp_path / "again" / "traceback.txt").exists()


@pytest.mark.parametrize("value", [np.nan, np.inf])
def test_a_checkpoint_with_non_finite_parameters_is_refused_by_name(tmp_path, value):
    # found by a fuzzing pass: evaluated, it wrote NaN forecasts and null scores with
    # "status": "ok"; resumed, it stopped at a NaN loss advising a smaller learning rate
    ov = tiny("sine", ["trainer.epochs=3"])
    out, _, _ = train(tmp_path, ov + ["trainer.stop_after=1"])
    z = np.load(out / "last.npz")
    arrays = {k: z[k] for k in z.files}
    arrays["param/head.bias"] = np.full_like(arrays["param/head.bias"], value)
    np.savez(out / "last.npz", **arrays)
    why = "parameter 'head.bias' holds NaN or infinite values; the file is damaged or was not written by the runner"
    with pytest.raises(SystemExit):
        train(tmp_path, ["train=false", f"ckpt_path={out / 'last.npz'}"], "eval")
    s = json.loads((tmp_path / "eval" / "summary.json").read_text())
    assert s["error"] == f"ConfigError: ckpt_path={out / 'last.npz'}: {why}", s["error"]
    with pytest.raises(SystemExit):    # the run's best.npz, intact, is the way back
        train(tmp_path, ov + [f"resume={out}"], "again")
    s = json.loads((tmp_path / "again" / "summary.json").read_text())
    assert s["error"] == (f"ConfigError: resume={out / 'last.npz'}: {why}; its best.npz restarts "
                          f"from the best epoch and replays the rest: resume={out / 'best.npz'}"), s["error"]
    _, _, s = train(tmp_path, ov + [f"resume={out / 'best.npz'}"], "back")
    assert s["status"] == "ok", s["error"]


def test_stored_stats_are_a_runner_checkpoints_mean_and_std_as_floats():
    # a checkpoint whose data holds only the two (written by hand, or by an older runner
    # before task and digests) still gives them; numbers as JSON stored them come back
    # floats; a library checkpoint's metadata is its author's, not a normalisation
    from runner.trainer import stored_stats
    runner = {"threads": 1}
    got = stored_stats({"runner": runner, "data": {"mean": 2, "std": 3}}, "resume=x")
    assert got == (2.0, 3.0) and all(type(v) is float for v in got)
    assert stored_stats({"runner": runner, "data": {"mean": 0.5, "std": 1.5, "task": "forecast"}},
                        "resume=x") == (0.5, 1.5)
    assert stored_stats({"runner": runner, "data": {"mean": 0.5}}, "resume=x") is None
    assert stored_stats({"data": {"mean": 0.5, "std": 1.5}}, "resume=x") is None


@pytest.mark.parametrize("key", ["mean", "std"])
def test_a_checkpoint_without_digests_refuses_data_whose_statistics_moved_in_the_sixth_digit(key):
    # an older checkpoint has only the mean and std to tell its data by: they come from the
    # same float64 sums of the same values, so any difference past rounding (here one part
    # in a million, a value edited in the training part) is other data
    from runner.config import ConfigError
    from runner.datasets import Sine
    from runner.trainer import check_resume_data
    data = Sine(length=300, window=8).load()
    same = {"runner": {"threads": 1}, "data": {"mean": data.mean, "std": data.std}}
    check_resume_data("x.npz", same, data)
    moved = {"runner": {"threads": 1}, "data": {**same["data"], key: getattr(data, key) * (1 + 1e-6)}}
    with pytest.raises(ConfigError, match=rf"^resume=x.npz: the data differs .*the training part's {key} is"):
        check_resume_data("x.npz", moved, data)


def test_an_evaluation_reads_a_run_config_only_from_a_runner_checkpoint(tmp_path):
    # grucy.io.save's metadata is its author's own: a "config" there that is not the
    # runner's (a string) failed inside the evaluation with a ValueError and traceback.txt
    out, _, _ = train(tmp_path, tiny("sine"))
    own = _with_metadata(out / "best.npz", tmp_path / "own.npz", lambda m: {"config": "v2 of my model"})
    _, _, s = train(tmp_path, tiny("sine", ["train=false", f"ckpt_path={own}"]), "eval")
    assert s["status"] == "ok", s["error"]


def test_an_evaluation_takes_stored_statistics_only_from_a_runner_checkpoint(tmp_path):
    # grucy.io.save's metadata is its author's own: a "data" with a mean and std there is not
    # the runner's normalisation, and the data is scaled by its own training part, as the
    # run on the same data stored it
    import grucy.io
    from grucy.models import SequenceModel
    out, _, _ = train(tmp_path, tiny("sine"))
    stored = M.load_checkpoint(out / "best.npz")[2]["data"]
    lib = tmp_path / "lib.npz"
    grucy.io.save(str(lib), SequenceModel(input_size=1, hidden_size=4, output_size=1, seed=0),
                  metadata={"data": {"mean": stored["mean"] + 100.0, "std": 5.0}})
    _, _, s = train(tmp_path, tiny("sine", ["train=false", f"ckpt_path={lib}"]), "eval")
    assert s["status"] == "ok", s["error"]
    assert s["normalisation"] == {"mean": stored["mean"], "std": stored["std"], "from": "data"}


@pytest.mark.parametrize("damage", [
    lambda m: {**m, "config": "damaged"},
    # mutant t23: the stored config's data, model and trainer must each be a mapping; with
    # trainer left out of the check, a damaged trainer section (a string) failed later
    # inside OmegaConf with traceback.txt
    lambda m: {**m, "config": {**m["config"], "trainer": "damaged"}},
], ids=["config", "trainer"])
def test_an_evaluation_refuses_a_damaged_stored_config(tmp_path, damage):
    """A runner checkpoint whose stored config (or a section of it) is not a mapping says so
    in one line, without traceback.txt."""
    out, _, _ = train(tmp_path, tiny("sine"))
    bad = _with_metadata(out / "best.npz", tmp_path / "bad.npz", damage)
    with pytest.raises(SystemExit):
        train(tmp_path, tiny("sine", ["train=false", f"ckpt_path={bad}"]), "bad")
    s = json.loads((tmp_path / "bad" / "summary.json").read_text())
    assert s["error"].startswith(f"ConfigError: ckpt_path={bad}: the run config stored in it is not a mapping")
    assert not (tmp_path / "bad" / "traceback.txt").exists()


@pytest.mark.parametrize("section", ["model", "trainer"])
def test_an_evaluation_reads_a_stored_config_without_a_model_or_trainer_section(tmp_path, section):
    # mutant s29 (mut27): a section must be a mapping where it is stored; one left out is
    # no damage (the model is the checkpoint's weights, the evaluation's batch size the
    # command line's), and a check refusing it passed the tests. The reference: the
    # unedited checkpoint's evaluation
    out, _, _ = train(tmp_path, tiny("sine"))
    src = out / "best.npz"
    cut = _with_metadata(src, tmp_path / "cut.npz",
                         lambda m: {**m, "config": {k: v for k, v in m["config"].items() if k != section}})
    assert _predictions(tmp_path, cut, "cut") == _predictions(tmp_path, src, "own")


def test_an_evaluation_of_a_checkpoint_whose_data_class_is_not_importable_names_it(tmp_path):
    # a run with a user's own dataset, evaluated where that package is not importable:
    # Hydra's ImportError was an unexpected error with traceback.txt
    out, _, _ = train(tmp_path, tiny("sine"))

    def elsewhere(meta):
        config = dict(meta["config"])
        config["data"] = {**config["data"], "_target_": "my_missing_package.MyData"}
        return {**meta, "config": config}
    ck = _with_metadata(out / "best.npz", tmp_path / "theirs.npz", elsewhere)
    with pytest.raises(SystemExit):
        train(tmp_path, tiny("sine", ["train=false", f"ckpt_path={ck}"]), "eval")
    s = json.loads((tmp_path / "eval" / "summary.json").read_text())
    assert s["error"].startswith(f"ConfigError: ckpt_path={ck}: the checkpoint's "
                                 "data._target_='my_missing_package.MyData' cannot be imported"), s["error"]
    assert not (tmp_path / "eval" / "traceback.txt").exists()


@pytest.mark.parametrize("forged, words", [
    ({"_target_": "builtins.open", "file": "VICTIM", "mode": "w"},
     "data._target_='builtins.open' is not a dataset class"),
    ({"_target_": "shutil.copyfile", "src": "VICTIM", "dst": "VICTIM.copy"},
     "data._target_='shutil.copyfile' is not a dataset class"),
    ("nested", "holds '_target_', which would make Hydra build or call something"),
    ("args", "holds '_args_', which would make Hydra build or call something"),
    # mutant s10 (mut27): a _target_ in a mapping that is an item of a list, which Hydra
    # builds too, was not looked for
    ("listed", "holds '_target_', which would make Hydra build or call something"),
], ids=["open", "copyfile", "nested_target", "args", "listed_target"])
def test_an_evaluation_builds_only_a_dataset_class_from_a_checkpoint(tmp_path, forged, words):
    """Found by a review: an evaluation built whatever its checkpoint's data config named,
    with Hydra, before looking for a load() method: a forged checkpoint naming builtins.open
    with mode w truncated a file (numpy.load with allow_pickle ran a pickle). A checkpoint
    is a file anyone may hand over; the data it names must be a dataset class, in plain
    values."""
    out, _, _ = train(tmp_path, tiny("sine"))
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")

    def forge(meta):
        config = dict(meta["config"])
        if forged == "nested":
            config["data"] = {**config["data"], "noise": {"_target_": "builtins.open",
                                                          "file": str(victim), "mode": "w"}}
        elif forged == "listed":
            config["data"] = {**config["data"], "noise": [{"_target_": "builtins.open",
                                                           "file": str(victim), "mode": "w"}]}
        elif forged == "args":
            config["data"] = {**config["data"], "_args_": [str(victim)]}
        else:
            config["data"] = {k: str(victim) if v == "VICTIM" else
                              str(victim) + ".copy" if v == "VICTIM.copy" else v
                              for k, v in forged.items()}
        return {**meta, "config": config}
    ck = _with_metadata(out / "best.npz", tmp_path / "forged.npz", forge)
    with pytest.raises(SystemExit):
        train(tmp_path, tiny("sine", ["train=false", f"ckpt_path={ck}"]), "eval")
    s = json.loads((tmp_path / "eval" / "summary.json").read_text())
    assert words in s["error"], s["error"]
    assert victim.read_text() == "precious"
    assert not (tmp_path / "victim.txt.copy").exists()


def test_an_evaluation_builds_no_function_that_has_a_load_attribute(tmp_path, monkeypatch):
    # mutant s11 (mut27): "a dataset class" is a class; with the isclass check dropped, a
    # function carrying a load attribute passed as one, and Hydra called it (here: the
    # victim truncated, as builtins.open did)
    monkeypatch.syspath_prepend(str(tmp_path))
    (tmp_path / "handed_over.py").write_text("def trap(file='', mode='w'):\n"
                                             "    return open(file, mode)\n\n\n"
                                             "trap.load = trap\n")
    out, _, _ = train(tmp_path, tiny("sine"))
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    ck = _with_metadata(out / "best.npz", tmp_path / "forged.npz", lambda m: {
        **m, "config": {**m["config"], "data": {"_target_": "handed_over.trap", "file": str(victim)}}})
    with pytest.raises(SystemExit):
        train(tmp_path, tiny("sine", ["train=false", f"ckpt_path={ck}"]), "eval")
    s = json.loads((tmp_path / "eval" / "summary.json").read_text())
    assert s["error"].startswith(f"ConfigError: ckpt_path={ck}: the checkpoint's "
                                 "data._target_='handed_over.trap' is not a dataset class"), s["error"]
    assert victim.read_text() == "precious"


@pytest.mark.parametrize("key", ["ckpt_path", "resume"])
def test_a_checkpoint_path_that_is_not_a_regular_file_is_named_so(tmp_path, key):
    # found by a review: a pipe given as ckpt_path= said "no such checkpoint" (resume=: "no
    # checkpoint there"), though it exists
    import os
    fifo = tmp_path / "pipe.npz"
    os.mkfifo(fifo)
    extra = ["train=false", f"ckpt_path={fifo}"] if key == "ckpt_path" else [f"resume={fifo}"]
    with pytest.raises(SystemExit):
        train(tmp_path, tiny("sine", extra), "eval")
    s = json.loads((tmp_path / "eval" / "summary.json").read_text())
    assert s["error"].startswith(f"ConfigError: {key}={fifo}: not a regular file"), s["error"]


def test_an_evaluation_refuses_a_checkpoint_name_that_leads_outside_outputs(tmp_path):
    # a forged stored name "../../escaped" named the evaluation's directory
    out, _, _ = train(tmp_path, tiny("sine"))
    ck = _with_metadata(out / "best.npz", tmp_path / "forged.npz",
                        lambda m: {**m, "config": {**m["config"], "name": "../../escaped"}})
    with pytest.raises(SystemExit):
        train(tmp_path, tiny("sine", ["train=false", f"ckpt_path={ck}"]), "eval")
    s = json.loads((tmp_path / "eval" / "summary.json").read_text())
    assert "the checkpoint's name '../../escaped' leads outside outputs/" in s["error"], s["error"]


@pytest.mark.parametrize("key", ["seed", "trainer", "quiet"])
def test_a_setting_deleted_on_the_command_line_is_a_config_error_naming_it(tmp_path, key):
    # ~seed deleted the key, and reading it raised OmegaConf's ConfigAttributeError, an
    # unexpected error with traceback.txt
    with pytest.raises(SystemExit):
        train(tmp_path, tiny("sine", [f"~{key}"]))
    s = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert s["error"] == f"ConfigError: {key}: removed (~{key}), but every run needs it: drop ~{key}"
    assert not (tmp_path / "run" / "traceback.txt").exists()


@pytest.mark.parametrize("data, override", [("sine", "data.length=1000000000000"),
                                            ("adding", "data.n_train=1000000000000"),
                                            ("sine", f"data.length={2**62}"),
                                            ("mackey_glass", f"data.length={2**63}"),
                                            ("adding", f"data.n_train={2**63}")])
def test_data_too_large_for_memory_is_a_config_error_naming_its_sizes(tmp_path, data, override):
    # numpy's "Unable to allocate 7.28 TiB ..." (a MemoryError) named no key and was
    # reported with traceback.txt; past 2**62 numpy says "array is too big" or "Maximum
    # allowed dimension exceeded" instead, a ValueError, which was reported so still
    with pytest.raises(SystemExit):
        train(tmp_path, tiny(data, [override]))
    s = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert s["error"].startswith("ConfigError: data: too large to load (")
    assert f"); reduce {override} or " in s["error"], s["error"]      # the largest size first
    assert "seed" not in s["error"] and not (tmp_path / "run" / "traceback.txt").exists()


def test_resume_refuses_data_that_changed_since_the_checkpoint(tmp_path):
    # the same config over a rewritten file: the run went on, normalised differently, and
    # its results were neither the original run's nor a fresh one's
    p = tmp_path / "s.csv"
    v = np.sin(np.arange(300) * 0.3)
    p.write_text("t,y\n" + "".join(f"{i},{x}\n" for i, x in enumerate(v)))
    ov = tiny("csv", [f"data.path={p}", "data.column=y", "trainer.epochs=3"])
    out, _, s = train(tmp_path, ov + ["trainer.stop_after=1"])
    assert s["status"] == "interrupted"
    p.write_text("t,y\n" + "".join(f"{i},{2 * x + 1}\n" for i, x in enumerate(v)))
    with pytest.raises(SystemExit):
        train(tmp_path, ov + [f"resume={out}"], "resumed")
    s = json.loads((tmp_path / "resumed" / "summary.json").read_text())
    assert re.match(rf"ConfigError: resume={re.escape(str(out / 'last.npz'))}: the data differs from the "
                    r"checkpoint's run \(the training part's mean is \S+, it was \S+; ", s["error"]), s["error"]
    p.write_text("t,y\n" + "".join(f"{i},{x}\n" for i, x in enumerate(v)))   # as it was: resumes
    _, _, s = train(tmp_path, ov + [f"resume={out}"], "again")
    assert s["status"] == "ok", s["error"]


@pytest.mark.parametrize("edit, changed", [
    # rows 0-209 train, 210-239 validate, 240-299 test (fractions 0.1 and 0.2 of 300)
    (lambda v: v.__setitem__(220, v[220] + 0.5), "the validation windows differ"),
    (lambda v: v.__setitem__([10, 11], v[[11, 10]]), "the training windows differ"),
    # the last value is only a target (no window reads it as an input)
    (lambda v: v.__setitem__(299, v[299] + 0.5), "the test windows differ"),
])
def test_resume_refuses_data_whose_statistics_are_unchanged_but_its_values_are_not(tmp_path, edit, changed):
    # a validation row changed, or two training rows swapped: the training part's mean and
    # standard deviation stay (within rounding), and the resume went on silently
    p = tmp_path / "s.csv"
    v = np.sin(np.arange(300) * 0.3)

    def write(values):
        p.write_text("t,y\n" + "".join(f"{i},{x!r}\n" for i, x in enumerate(values.tolist())))
    write(v)
    ov = tiny("csv", [f"data.path={p}", "data.column=y", "trainer.epochs=3"])
    out, _, _ = train(tmp_path, ov + ["trainer.stop_after=1"])
    edited = v.copy()
    edit(edited)
    write(edited)
    with pytest.raises(SystemExit):
        train(tmp_path, ov + [f"resume={out}"], "resumed")
    s = json.loads((tmp_path / "resumed" / "summary.json").read_text())
    assert s["error"] == (f"ConfigError: resume={out / 'last.npz'}: the data differs from the checkpoint's "
                          f"run ({changed}): the file or series changed since; resume on the same data, "
                          "or start a new run"), s["error"]


def test_a_name_with_dollar_signs_is_a_plot_title_not_math(tmp_path):
    # matplotlib read "$x^$" as mathtext and failed to parse it: a run that had trained
    # ended "failed" with traceback.txt, over its plot title
    out, _, s = train(tmp_path, tiny("sine", ["plots=true", "name='$x^$'"]))
    assert s["status"] == "ok", s["error"]
    assert (out / "loss.png").is_file() and (out / "forecast.png").is_file()


def test_a_sweep_plot_labels_overrides_with_dollar_signs_as_text(tmp_path):
    from runner.sweep import write_table
    for job, name in enumerate(["$x^$", "$y_$"]):
        (tmp_path / str(job)).mkdir()
        (tmp_path / str(job) / "summary.json").write_text(json.dumps(
            {"status": "ok", "job": job, "overrides": [f"name={name}"], "val": {"rmse": 0.5 + job}}))
    write_table(tmp_path)
    assert (tmp_path / "sweep_results.png").is_file()


@pytest.mark.parametrize("how", ["resume", "evaluate"])
def test_a_run_continued_in_its_own_directory_keeps_its_checkpoints_and_metrics(tmp_path, how):
    """A finished run resumed (or evaluated, train=false ckpt_path=) in its own directory has
    nothing left to train, and its best.npz, last.npz and metrics.csv are that run's record:
    they must survive the new run's clearing of the earlier run's files, byte for byte.
    (Mutant u02 cleared them too, ignoring keep_state; the resume tests went to another
    directory, or trained epochs that wrote the files again.)"""
    ov = tiny("sine", ["trainer.epochs=2"])
    out, _, s_first = train(tmp_path, ov, "run")
    names = ("best.npz", "last.npz", "metrics.csv")
    before = {n: (out / n).read_bytes() for n in names}
    extra = [f"resume={out}"] if how == "resume" else ["train=false", f"ckpt_path={out / 'best.npz'}"]
    _, _, s = train(tmp_path, ov + extra, "run")
    assert s["status"] == "ok" and s["test"] == s_first["test"]
    assert {n: (out / n).read_bytes() for n in names} == before


def test_a_run_whose_validation_rmse_is_not_finite_returns_the_failed_metric(tmp_path, monkeypatch):
    """Mutant a13: run() returned a NaN validation RMSE as the sweeper's metric instead of
    FAILED_METRIC (inf, which a minimising sweeper ranks last); every tested run had a
    finite one. An evaluation of a checkpoint whose weights are NaN reports such a score."""
    from runner import tasks
    monkeypatch.setattr(tasks, "fit", lambda cfg, out_dir, **kwargs: {
        "status": "ok", "val": {"rmse": math.nan}, "test": {"rmse": math.nan}})
    out, metric, s = train(tmp_path, tiny("sine"))
    assert s["status"] == "ok"
    assert metric == math.inf


def test_a_long_lines_envelope_keeps_its_first_and_last_points():
    # 1000 runs of 5 points (2, 0, 4, 1, 3): each run's lowest is its 2nd point and its
    # highest its 3rd; the first and last points of the line are neither, and kept too
    from runner import outputs
    y = np.tile([2.0, 0.0, 4.0, 1.0, 3.0], 1000)
    x, v = outputs.envelope(y, bins=1000)
    starts = np.arange(0, 5000, 5)
    want = sorted({0, 4999} | set((starts + 1).tolist()) | set((starts + 2).tolist()))
    assert x.tolist() == want
    assert np.array_equal(v, y[x])


def _refused_resume_command(saved_edit, overrides=("trainer.epochs=2",)):
    """The arguments of the command check_resume prints for a checkpoint whose stored config
    is the current one edited by ``saved_edit`` (settings no stored override gave)."""
    import copy
    import shlex
    import grucy
    from runner import trainer
    from runner.config import ConfigError
    cfg = compose(tiny("sine", list(overrides)))
    saved = copy.deepcopy(trainer.run_config(cfg))
    saved_edit(saved)
    meta = {"config": saved, "runner": {"overrides": list(overrides),
                                        "threads": grucy.get_num_threads()}}
    with pytest.raises(ConfigError) as e:
        trainer.check_resume(cfg, "run/last.npz", meta)
    marker = "run it with the original run's overrides: "
    assert marker in str(e.value), str(e.value)
    return shlex.split(str(e.value).split(marker, 1)[1])[3:]


def test_a_refused_resumes_command_spells_out_no_key_the_current_config_lacks():
    # a key only the checkpoint's config has came with another option of a group (sgd's
    # momentum beside the default adam): key=0.9 beside adam is a command Hydra refuses
    def edit(saved):
        saved["optimizer"]["momentum"] = 0.9
        saved["model"]["hidden_size"] = 7          # a setting both have: spelt out
    args = _refused_resume_command(edit)
    assert "model.hidden_size=7" in args, args
    assert not [a for a in args if a.startswith("optimizer.momentum=")], args


def test_a_refused_resumes_command_spells_out_a_setting_the_current_config_has_as_null():
    # the checkpoint's run had early_stopping.patience=5 from its config file (edited since
    # to the default null), not from an override: the command must say it to reproduce it.
    # A current null was taken for a missing key (what None meant before _ABSENT), and the
    # printed command was refused again (found by a mutation round)
    def edit(saved):
        saved["trainer"]["early_stopping"]["patience"] = 5
    args = _refused_resume_command(edit)
    assert "trainer.early_stopping.patience=5" in args, args


# ------------------------------------------------------------- data.inputs (covariates)
@pytest.fixture
def covariate_csv(tmp_path):
    """y is the input a of three steps before, plus a little noise: a GRU that reads a can
    forecast y, and the series alone (white noise) cannot be."""
    rng = np.random.default_rng(0)
    n = 400
    a = rng.standard_normal(n)
    y = np.r_[np.zeros(3), a[:-3]] + 0.05 * rng.standard_normal(n)
    b = rng.uniform(10.0, 20.0, n)        # an input that says nothing about y
    p = tmp_path / "cov.csv"
    p.write_text("t,y,a,b\n" + "".join(f"{i},{float(y[i])!r},{float(a[i])!r},{float(b[i])!r}\n"
                                       for i in range(n)))
    return p, a, b


def test_an_input_the_target_follows_lets_the_gru_beat_the_run_without_it(tmp_path, covariate_csv):
    p, a, b = covariate_csv
    ov = tiny("csv", [f"data.path={p}", "data.column=y", "trainer.epochs=25", "model.hidden_size=16"])
    plain, _, s_plain = train(tmp_path, ov, "plain")
    out, _, s = train(tmp_path, ov + ["data.inputs=[b,a]"], "inputs")
    assert s["status"] == "ok" and s_plain["status"] == "ok", (s["error"], s_plain["error"])
    # the series alone is noise: persistence and the run without the input do no better
    # than its std; with it, the GRU reads y off a three steps back (noise 0.05). Over seeds
    # 0-3 the ratio was 0.11-0.12: 0.3 leaves room for another machine's last digits
    assert s["test"]["rmse"] < 0.3 * s_plain["test"]["rmse"], (s["test"], s_plain["test"])
    assert s["test"]["rmse"] < 0.3 * s["baselines"]["persistence"]["rmse"]
    # persistence and AR read the target only, ARX its inputs too (a linear model of the
    # same columns, which reads y off a as well); predictions.csv has its columns as ever
    assert {k: s["baselines"][k] for k in s_plain["baselines"]} == s_plain["baselines"]
    assert "arx" not in s_plain["baselines"]
    assert s["baselines"]["arx"]["rmse"] < 0.3 * s["baselines"]["ar"]["rmse"]
    assert (out / "predictions.csv").read_text().splitlines()[0] == \
        (plain / "predictions.csv").read_text().splitlines()[0]
    # the checkpoint stores each input's training-part scaling, in channel order (280 of
    # the 400 values are the training part)
    meta = M.load_checkpoint(out / "best.npz")[2]
    assert [e["name"] for e in meta["data"]["inputs"]] == ["b", "a"]
    for e, v in zip(meta["data"]["inputs"], (b, a)):
        assert (e["mean"], e["std"]) == pytest.approx((v[:280].mean(), v[:280].std()), rel=1e-12)
    # and the run's summary.json says the same, as an evaluation's does
    norm = s["normalisation"]
    assert norm["from"] == "data" and list(norm["inputs"]) == ["b", "a"]
    for name, v in (("b", b), ("a", a)):
        assert (norm["inputs"][name]["mean"], norm["inputs"][name]["std"]) == \
            pytest.approx((v[:280].mean(), v[:280].std()), rel=1e-12)
    assert "inputs" not in s_plain["normalisation"]

    # an evaluation of its checkpoint reproduces the run's scores, with the stored scaling
    ev, _, s_ev = train(tmp_path, ["train=false", f"ckpt_path={out}", "quiet=true", "plots=false"], "eval")
    assert s_ev["status"] == "ok", s_ev["error"]
    assert s_ev["test"] == s["test"] and s_ev["val"] == s["val"]
    assert (ev / "predictions.csv").read_text() == (out / "predictions.csv").read_text()
    assert s_ev["normalisation"]["inputs"] == {e["name"]: {"mean": e["mean"], "std": e["std"]}
                                               for e in meta["data"]["inputs"]}


def arx_by_lstsq(data):
    """ARX refitted here, apart from runner.baselines: numpy's lstsq on [1, the last p values
    of the series and of each input], oldest first, for p = 1..window, p chosen by
    validation RMSE. ``(p, test forecasts (N, horizon), normalised)``."""
    channels = 1 + len(data.input_stats)

    def design(x, p):
        lags = x[:, -p:, :channels].reshape(len(x), -1).astype(np.float64)
        return np.hstack([np.ones((len(x), 1)), lags])
    best = None
    for p in range(1, data.train.x.shape[1] + 1):
        coef = np.linalg.lstsq(design(data.train.x, p), data.train.y.astype(np.float64), rcond=None)[0]
        val = np.sqrt(np.mean((design(data.val.x, p) @ coef - data.val.y) ** 2))
        if best is None or val < best[0]:
            best = (val, p, design(data.test.x, p) @ coef)
    return best[1], best[2]


def test_the_forecast_plot_draws_arx_for_a_run_with_inputs(tmp_path, covariate_csv, monkeypatch):
    # forecast.png drew AR, which reads the series alone, beside a GRU that also reads the
    # inputs: with data.inputs its line is ARX's, labelled so; without them, AR's as before
    from runner import outputs
    from runner.datasets import CSVSeries
    drawn = {}

    def save(fig, path):
        if Path(path).name == "forecast.png":
            ax, = fig.axes
            drawn[Path(path).parent.name] = {t.get_text(): line.get_ydata()
                                             for t, line in zip(ax.get_legend().get_texts(), ax.get_lines())}
        return real(fig, path)
    real = outputs._save_figure
    monkeypatch.setattr(outputs, "_save_figure", save)
    p, _, _ = covariate_csv
    ov = tiny("csv", [f"data.path={p}", "data.column=y", "plots=true"])
    _, _, s = train(tmp_path, ov + ["data.inputs=[a,b]"], "inputs")
    _, _, s_plain = train(tmp_path, ov, "plain")
    assert s["status"] == "ok" and s_plain["status"] == "ok", (s["error"], s_plain["error"])
    data = CSVSeries(p, "y", inputs=["a", "b"], window=8).load()
    order, pred = arx_by_lstsq(data)
    assert s["baselines"]["arx"]["order"] == order
    lines = drawn["inputs"]
    assert list(lines) == ["truth", "model", "persistence", f"ARX({order})"], list(lines)
    np.testing.assert_allclose(lines[f"ARX({order})"], pred[:, 0] * data.std + data.mean, rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(lines["truth"], data.test.target[:, 0], rtol=1e-12)
    assert list(drawn["plain"]) == ["truth", "model", "persistence", f"AR({s_plain['baselines']['ar']['order']})"]


def test_a_runs_log_names_each_input_channel_in_order(tmp_path, covariate_csv, caplog):
    # "input 3" alone left which channel read what to a guess; the channels are the series,
    # the inputs as given, then a period's sin and cos (the windows' order, tested above)
    import logging
    p, _, _ = covariate_csv
    ov = tiny("csv", [f"data.path={p}", "data.column=y", "trainer.epochs=1"])
    for k, (extra, want) in enumerate((
            (["data.inputs=[b,a]"], "input 3 (series, 'b', 'a'), output 1"),
            (["data.inputs=[a]", "data.period=12"], "input 4 (series, 'a', sin, cos), output 1"),
            ([], "input 1, output 1"))):
        caplog.clear()
        with caplog.at_level(logging.INFO, logger="runner"):
            _, _, s = train(tmp_path, ov + extra, f"run{k}")
        assert s["status"] == "ok", s["error"]
        line, = [r.getMessage() for r in caplog.records if r.getMessage().startswith("data ")]
        assert line.endswith(f"test examples; {want}"), (extra, line)


def test_an_evaluation_normalises_new_inputs_with_the_checkpoints_statistics(tmp_path, covariate_csv):
    # the same file with its input a in other units: the stored scaling, not the file's own,
    # so the model reads channels scaled 1000 times larger, and forecasts otherwise
    p, a, b = covariate_csv
    out, _, s = train(tmp_path, tiny("csv", [f"data.path={p}", "data.column=y", "data.inputs=[a]"]), "trained")
    text = p.read_text().splitlines()
    p.write_text("\n".join([text[0]] + [",".join(r.split(",")[:2] + [repr(float(r.split(",")[2]) * 1000)]
                                                 + r.split(",")[3:]) for r in text[1:]]) + "\n")
    model, _, meta = M.load_checkpoint(out / "best.npz")
    _, _, s_ev = train(tmp_path, ["train=false", f"ckpt_path={out}", "plots=false"], "eval")
    assert s_ev["status"] == "ok", s_ev["error"]
    (m_y, s_y), (m_a, s_a) = (meta["data"]["mean"], meta["data"]["std"]), \
        (meta["data"]["inputs"][0]["mean"], meta["data"]["inputs"][0]["std"])
    y = np.array([float(r.split(",")[1]) for r in text[1:]])
    x = np.stack([(y - m_y) / s_y, (a * 1000 - m_a) / s_a], axis=1)
    starts = np.arange(400 - 80, 400)        # the test targets, each after 8 steps
    windows = np.stack([x[t - 8:t] for t in starts]).astype(np.float32).transpose(1, 0, 2)
    expected = np.asarray(model.predict(np.ascontiguousarray(windows)))[:, 0] * s_y + m_y
    with open(tmp_path / "eval" / "predictions.csv", newline="") as fh:
        written = np.array([float(r["prediction"]) for r in csv.DictReader(fh)])
    np.testing.assert_allclose(written, expected, rtol=1e-5, atol=1e-5 * s_y)


def test_an_evaluations_log_says_how_each_input_was_normalised(tmp_path, covariate_csv, caplog):
    # the log named the series' mean and std only, so a user reading it could not tell
    # with what scaling the input channels were read (README: the log says which were used)
    import logging
    p, a, b = covariate_csv
    out, _, _ = train(tmp_path, tiny("csv", [f"data.path={p}", "data.column=y", "data.inputs=[b,a]"]), "trained")
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="runner"):
        _, _, s = train(tmp_path, ["train=false", f"ckpt_path={out}", "plots=false"], "eval")
    assert s["status"] == "ok", s["error"]
    line, = [r.getMessage() for r in caplog.records if r.getMessage().startswith("normalised with")]
    # 280 of the 400 values are the training part; numpy's own mean and std of it, in the
    # order given
    assert re.fullmatch(r"normalised with the checkpoint's training mean \S+ and std \S+; "
                        r"inputs 'b' mean ([^ ,]+) std ([^ ,]+), 'a' mean ([^ ,]+) std ([^ ,]+)", line), line
    got = [float(x) for pair in re.findall(r"mean ([^ ,]+) std ([^ ,]+)", line.split("; ")[1]) for x in pair]
    assert got == pytest.approx([b[:280].mean(), b[:280].std(), a[:280].mean(), a[:280].std()], rel=1e-12)


def test_an_evaluation_refuses_other_inputs_than_the_checkpoints(tmp_path, covariate_csv):
    p, _, _ = covariate_csv
    out, _, _ = train(tmp_path, tiny("csv", [f"data.path={p}", "data.column=y", "data.inputs=[a,b]"]), "trained")
    from runner.config import ConfigError
    from runner.tasks import evaluate
    for inputs in ("[b,a]", "[a]", "[]"):
        # the command line's overrides reach evaluate() from Hydra's, which compose() has not
        ov = ["train=false", f"ckpt_path={out}", "data=csv", f"data.inputs={inputs}", "plots=false"]
        with pytest.raises(ConfigError) as e:
            evaluate(compose(ov), tmp_path / "eval", overrides=ov)
        given = inputs.strip("[]").split(",") if inputs != "[]" else []
        assert str(e.value) == (f"data.inputs={given}: the checkpoint's model was trained with "
                                "data.inputs=['a', 'b'], and an evaluation reads those columns (the same, "
                                "in that order; data.path=FILE names another file holding them)")
    ov = ["train=false", f"ckpt_path={out}", "data=csv", "data.inputs=[a,b]", "plots=false", "quiet=true"]
    (tmp_path / "same").mkdir()
    assert evaluate(compose(ov), tmp_path / "same", overrides=ov)["status"] == "ok"
    # a checkpoint whose stored scaling names other inputs than its data config (damaged)
    ck = _with_metadata(out / "best.npz", tmp_path / "odd.npz", lambda m: {
        **m, "data": {**m["data"], "inputs": m["data"]["inputs"][::-1]}})
    with pytest.raises(SystemExit):
        train(tmp_path, ["train=false", f"ckpt_path={ck}", "plots=false"], "odd")
    s = json.loads((tmp_path / "odd" / "summary.json").read_text())
    assert s["error"] == ("DataError: data.inputs=['a', 'b']: the model was trained with data.inputs=['b', "
                          "'a'] (the same columns in the same order are needed)"), s["error"]


def test_an_evaluation_given_the_checkpoints_own_inputs_does_not_call_them_unused(tmp_path, covariate_csv,
                                                                                   caplog):
    # data.inputs=[a,b] as the checkpoint's was logged "not used", though the evaluation reads
    # those very columns; the settings it does not use are still named
    import logging
    p, _, _ = covariate_csv
    out, _, _ = train(tmp_path, tiny("csv", [f"data.path={p}", "data.column=y", "data.inputs=[a,b]"]), "trained")
    from runner.tasks import evaluate
    for k, (extra, unused) in enumerate(((["data.inputs=[a,b]"], ["data=csv"]),
                                         (["data.inputs=[a,b]", "seed=5"], ["data=csv", "seed=5"]),
                                         (["data.inputs=[a,b]", "data.column=a"], ["data=csv", "data.column=a"]))):
        ov = ["train=false", f"ckpt_path={out}", "data=csv", *extra, "plots=false", "quiet=true"]
        (tmp_path / f"eval{k}").mkdir()
        caplog.clear()
        with caplog.at_level(logging.INFO, logger="runner"):
            assert evaluate(compose(ov), tmp_path / f"eval{k}", overrides=ov)["status"] == "ok"
        warned = [r.getMessage() for r in caplog.records if "not used: " in r.getMessage()]
        assert [w.split("not used: ")[1].split() for w in warned] == [unused], warned


@pytest.mark.parametrize("entry", [{"name": "a", "mean": 1.0, "std": 0.0}, {"name": "a", "mean": "x", "std": 1.0},
                                   {"mean": 1.0, "std": 1.0}, "a", {"name": 5, "mean": 1.0, "std": 1.0},
                                   {"name": "a", "mean": True, "std": 1.0}, {"name": "a", "mean": math.nan, "std": 1.0},
                                   {"name": "a", "mean": 1.0, "std": math.inf}])
def test_a_checkpoints_damaged_input_normalisation_is_named(tmp_path, covariate_csv, entry):
    p, _, _ = covariate_csv
    out, _, _ = train(tmp_path, tiny("csv", [f"data.path={p}", "data.column=y", "data.inputs=[a]"]), "trained")
    ck = _with_metadata(out / "best.npz", tmp_path / "bad.npz",
                        lambda m: {**m, "data": {**m["data"], "inputs": [entry]}})
    with pytest.raises(SystemExit):
        train(tmp_path, ["train=false", f"ckpt_path={ck}", "plots=false"], "eval")
    s = json.loads((tmp_path / "eval" / "summary.json").read_text())
    assert s["error"].startswith(f"ConfigError: ckpt_path={ck}: the checkpoint's stored normalisation of "
                                 "an input"), s["error"]


def test_a_library_checkpoint_is_evaluated_with_its_datas_own_input_scaling(tmp_path, covariate_csv):
    # a checkpoint saved by grucy itself stores no scaling: the series and each input are
    # normalised by the data's own training part (the first 280 of 400 values)
    import grucy.io
    from grucy.models import SequenceModel
    p, a, _ = covariate_csv
    from runner.tasks import evaluate
    grucy.io.save(str(tmp_path / "lib.npz"), SequenceModel(input_size=2, hidden_size=4, output_size=1, seed=0))
    # data.inputs given on the command line too: there is no stored data.inputs to differ from
    ov = tiny("csv", [f"data.path={p}", "data.column=y", "data.inputs=[a]", "train=false",
                      f"ckpt_path={tmp_path / 'lib.npz'}", "plots=false"])
    (tmp_path / "eval").mkdir()
    s = evaluate(compose(ov), tmp_path / "eval", overrides=ov)
    assert s["status"] == "ok"
    assert s["normalisation"]["from"] == "data"
    assert s["normalisation"]["inputs"] == {"a": pytest.approx({"mean": a[:280].mean(), "std": a[:280].std()},
                                                               rel=1e-12)}


def test_a_checkpoint_naming_an_input_twice_is_refused(tmp_path, covariate_csv):
    # data.inputs cannot name a column twice, so such a checkpoint is damaged: one of the
    # two scalings would have been taken silently
    p, _, _ = covariate_csv
    out, _, _ = train(tmp_path, tiny("csv", [f"data.path={p}", "data.column=y", "data.inputs=[a]"]), "trained")
    twice = [{"name": "a", "mean": 0.0, "std": 1.0}, {"name": "a", "mean": 5.0, "std": 2.0}]
    ck = _with_metadata(out / "best.npz", tmp_path / "twice.npz",
                        lambda m: {**m, "data": {**m["data"], "inputs": twice}})
    with pytest.raises(SystemExit):
        train(tmp_path, ["train=false", f"ckpt_path={ck}", "plots=false"], "eval")
    s = json.loads((tmp_path / "eval" / "summary.json").read_text())
    assert s["error"].startswith(f"ConfigError: ckpt_path={ck}: the checkpoint's stored normalisation of "
                                 "an input ({'name': 'a', 'mean': 5.0, 'std': 2.0})"), s["error"]


def test_a_datasets_own_load_without_input_stats_must_have_the_checkpoints(monkeypatch):
    # a user's load() that takes no input_stats= cannot be given the model's input scaling:
    # its own is used only if it is the same, as its own mean and std are without stats=
    import dataclasses
    from runner import datasets
    from runner.config import ConfigError
    from runner.tasks import load_data

    class OwnInputs:
        def load(self):
            d = datasets.Sine(length=200, window=8).load()
            return dataclasses.replace(d, input_stats={"a": (1.5, 2.0)})
    monkeypatch.setattr(datasets, "OwnInputs", OwnInputs, raising=False)
    cfg = {"_target_": "runner.datasets.OwnInputs"}
    assert load_data(cfg, input_stats={"a": (1.5, 2.0)}).input_stats == {"a": (1.5, 2.0)}
    for stored in ({"a": (1.5, 3.0)}, {"b": (1.5, 2.0)}):
        with pytest.raises(ConfigError) as e:
            load_data(cfg, input_stats=stored)
        assert str(e.value) == (f"data._target_='runner.datasets.OwnInputs': the model was trained on input "
                                f"series normalised with {stored!r}, this data's are {{'a': (1.5, 2.0)}}, and "
                                "OwnInputs.load() takes no input_stats={name: (mean, std)} to use the model's "
                                "(runner.datasets.SeriesDataset.load does)")


def test_resume_refuses_changed_inputs(tmp_path, covariate_csv):
    p, _, _ = covariate_csv
    ov = tiny("csv", [f"data.path={p}", "data.column=y", "trainer.epochs=3"])
    part, _, _ = train(tmp_path, ov + ["data.inputs=[a]", "trainer.stop_after=1"], "part")
    for inputs, name in (("[]", "none"), ("[a,b]", "more"), ("[b]", "other")):
        with pytest.raises(SystemExit):
            train(tmp_path, ov + [f"data.inputs={inputs}", f"resume={part}"], name)
        s = json.loads((tmp_path / name / "summary.json").read_text())
        given = inputs.strip("[]").split(",") if inputs != "[]" else []
        assert s["error"].startswith(f"ConfigError: resume={part / 'last.npz'}: data.inputs is {given} but the "
                                     "checkpoint's run used ['a']"), s["error"]
    full, _, s_full = train(tmp_path, ov + ["data.inputs=[a]"], "full")
    resumed, _, s = train(tmp_path, ov + ["data.inputs=[a]", f"resume={part}"], "resumed")
    assert s["status"] == "ok" and s["test"] == s_full["test"]
    npz_equal(full / "last.npz", resumed / "last.npz")


@pytest.mark.parametrize("data", ["csv", "elnino"])
def test_a_checkpoint_from_before_data_inputs_resumes_and_evaluates_without_inputs(tmp_path, series_csv, data):
    # a run from before data.inputs stored no such key: it read no inputs, as inputs=[] does
    extra = [f"data.path={series_csv}", "data.column=level"] if data == "csv" else []
    ov = tiny(data, extra + ["trainer.epochs=2"])
    part, _, _ = train(tmp_path, ov + ["trainer.stop_after=1"], "part")

    def older(meta):
        config = dict(meta["config"])
        config["data"] = {k: v for k, v in config["data"].items() if k != "inputs"}
        return {**meta, "config": config, "data": {k: v for k, v in meta["data"].items() if k != "inputs"}}
    old = _with_metadata(part / "last.npz", tmp_path / "old.npz", older)
    _, _, s = train(tmp_path, ov + [f"resume={old}"], "same")
    assert s["status"] == "ok", s["error"]
    # and an evaluation of it normalises no input, scoring as that of the checkpoint it was
    _, _, s_old = train(tmp_path, ["train=false", f"ckpt_path={old}", "plots=false"], "eval_old")
    _, _, s_new = train(tmp_path, ["train=false", f"ckpt_path={part / 'last.npz'}", "plots=false"], "eval_new")
    assert s_old["status"] == "ok", s_old["error"]
    assert s_old["test"] == s_new["test"] and "inputs" not in s_old["normalisation"]
    with pytest.raises(SystemExit):
        train(tmp_path, ov + ["data.inputs=[level]" if data == "elnino" else "data.inputs=[step]",
                              f"resume={old}"], "other")
    s = json.loads((tmp_path / "other" / "summary.json").read_text())
    assert "but the checkpoint's run used []" in s["error"], s["error"]
