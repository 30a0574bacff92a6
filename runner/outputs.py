"""Files a run leaves in its output directory: metrics.csv, summary.json, predictions.csv,
plots, traceback.txt. Written atomically (temporary file, fsync, rename) so a reader never
sees half a file.

A directory used again (``hydra.run.dir=...``) is cleared of an earlier run's files once the
new run's config holds (:func:`clear_earlier_run`), and only of these names: nothing else in
it is the runner's.
"""
import csv
import io
import json
import logging
import math
import os
import platform
import shutil
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from runner.config import user_path

log = logging.getLogger("runner")

# Wall-clock columns: they differ run to run and are ignored by reproducibility checks.
TIMING_COLUMNS = ("epoch_time", "seqs_per_sec")
METRIC_COLUMNS = ("epoch", "train_loss", "val_loss", "val_rmse", "lr", "grad_norm") + TIMING_COLUMNS


# What a run writes besides runner.log (Hydra's, appended to) and .hydra/ (Hydra's, rewritten).
# The run's training state, which a resume= or ckpt_path= may point at:
STATE_FILES = ("best.npz", "last.npz", "metrics.csv")
# and what describes this run alone, rewritten by every run that gets far enough:
RESULT_FILES = ("config.yaml", "summary.json", "predictions.csv", "loss.png", "forecast.png",
                "traceback.txt")


def clear_earlier_run(out_dir, keep_state=False) -> None:
    """Remove the files an earlier run left in ``out_dir``, the STATE_FILES too unless
    ``keep_state`` (this run resumes or evaluates that run's checkpoint).

    A run that failed before writing them left the earlier run's checkpoints, metrics and
    predictions beside its own "failed" summary, as if they were its results.
    """
    for name in RESULT_FILES + (() if keep_state else STATE_FILES):
        (Path(out_dir) / name).unlink(missing_ok=True)


def checkpoint_file(value, name) -> Path:
    """The file a ``ckpt_path=`` or ``resume=`` value names: the value itself, or ``name``
    (``best.npz``, ``last.npz``) inside it when it is a run directory."""
    p = user_path(value)
    return p / name if p.is_dir() else p


def stored_path(path, base) -> str:
    """``path`` as a file a run writes stores it: relative to ``base`` (the directory the
    file is in) when inside it, else absolute. summary.json stored its own best.npz as an
    absolute path, and a run directory moved or copied elsewhere (another disk, an archive)
    named the old place's file, or a copy's the original's. ``Path(base) / stored`` reads
    it back, and reads an absolute path (a file outside ``base``, or what summaries from
    before this stored) as it is."""
    p, d = Path(os.path.abspath(path)), Path(os.path.abspath(base))
    try:
        return str(p.relative_to(d))
    except ValueError:
        return str(p)


def best_fallback(last) -> str:
    """The README's way back when a run's last.npz is lost or damaged, as the end of a
    refusal: its best.npz, if the run has one, else nothing."""
    best = Path(last).with_name("best.npz")
    if Path(last).name != "last.npz" or not best.is_file():
        return ""
    return f"; its best.npz restarts from the best epoch and replays the rest: resume={best}"


def replacing(path, mode="wb"):
    """grucy.io.replacing: temp file, fsync, rename, fsync the directory, cleaned up on
    failure. Imported here, not at the top: the runner reports config errors before it
    loads grucy (runner.app)."""
    from grucy.io import replacing as grucy_replacing
    return grucy_replacing(path, mode)


def atomic_write(path, text: str) -> None:
    with replacing(path, "w") as fh:
        fh.write(text)


def copy_file(src, dst) -> None:
    """Copy ``src`` to ``dst`` through a temporary file, like atomic_write."""
    with open(src, "rb") as source, replacing(dst) as fh:
        shutil.copyfileobj(source, fh)


def _save_figure(fig, path) -> None:
    """savefig through a temporary file, like atomic_write: a reader never sees half a PNG."""
    with replacing(path) as fh:
        fig.savefig(fh, dpi=100, format=Path(path).suffix.lstrip(".") or "png")


def _fmt(v):
    if isinstance(v, float):
        return repr(v)   # full precision: equal files mean equal numbers
    return "" if v is None else str(v)


def write_metrics(path, rows) -> None:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(METRIC_COLUMNS)
    for r in rows:
        w.writerow([_fmt(r.get(c)) for c in METRIC_COLUMNS])
    atomic_write(path, buf.getvalue())


def read_metrics(path):
    with open(path, newline="") as fh:
        rows = list(csv.DictReader(fh))
    return [{k: (float(v) if v not in ("", None) and k != "epoch" else (int(v) if k == "epoch" else None))
             for k, v in r.items()} for r in rows]


def write_json(path, obj) -> None:
    """``obj`` as strict JSON: a NaN or infinite number is written as null (json.dumps
    wrote NaN and Infinity, which JSON has not: jq and JSON.parse refused summary.json of
    a series whose persistence RMSE overflowed)."""
    atomic_write(path, json.dumps(_finite_or_null(obj), indent=2, default=_json_default,
                                  allow_nan=False) + "\n")


def _finite_or_null(o):
    if isinstance(o, dict):
        return {k: _finite_or_null(v) for k, v in o.items()}
    if isinstance(o, (list, tuple)):
        return [_finite_or_null(v) for v in o]
    if isinstance(o, (float, np.floating)) and not math.isfinite(o):
        return None
    return o


def _json_default(o):
    if isinstance(o, np.generic):
        return _finite_or_null(o.item())
    if isinstance(o, np.ndarray):
        return _finite_or_null(o.tolist())
    return str(o)


def versions() -> dict:
    import hydra
    import omegaconf
    out = {"python": platform.python_version(), "numpy": np.__version__,
           "hydra": hydra.__version__, "omegaconf": omegaconf.__version__}
    try:
        import grucy
        out["grucy"] = getattr(grucy, "__version__", "unknown")
        info = grucy.blas_info() if hasattr(grucy, "blas_info") else None
        if info:
            out["blas"] = {k: v for k, v in info.items() if isinstance(v, (str, int, float))}
    except Exception as exc:  # a failed run still writes its summary
        out["grucy"] = f"not importable: {exc}"
    return out


def decimals(z, mean, std) -> np.ndarray:
    """``z * std + mean`` as text with the digits ``z``'s own precision carries.

    ``z`` is in normalised units (a float32 model's predictions, say). Each value gets the
    shortest decimal that normalises back to the same ``z`` in ``z``'s dtype, so a float32
    prediction is not written with the float64 noise of de-normalising it; float64 ``z``
    gets Python's shortest repr. Returns an array of str, ``z``'s shape.
    """
    z = np.asarray(z)
    with np.errstate(over="ignore"):      # a prediction beyond float64 is written as inf
        values = z.astype(np.float64) * std + mean
    flat_z, flat_v = z.ravel(), values.ravel()
    if z.dtype == np.float64:
        return np.array([repr(float(v)) for v in flat_v], dtype=object).reshape(z.shape)
    out = np.empty(flat_z.size, dtype=object)
    todo = np.arange(flat_z.size)
    for digits in range(1, 17):
        if not todo.size:
            break
        # float(f"{v:.{digits}g}") for every value at once, where numpy can get it exactly;
        # Python's own formatting for the rest (a few in a million: near a tie or a power
        # of ten). A Python loop for all of them took 3 s for 200,000 predictions
        read, sure = _rounded(flat_v[todo], digits)
        for k in np.flatnonzero(~sure):
            read[k] = float(f"{flat_v[todo[k]]:.{digits}g}")
        back = ((read - mean) / std).astype(z.dtype)
        ok = back == flat_z[todo]
        out[todo[ok]] = [repr(float(v)) for v in read[ok]]
        todo = todo[~ok]
    out[todo] = [repr(float(v)) for v in flat_v[todo]]     # 17 digits at most
    return out.reshape(z.shape)


# 10^0 .. 10^22, each exact in float64 (parsed, so correctly rounded, and 5^22 < 2^53)
_POWERS_OF_TEN = np.array([float(f"1e{k}") for k in range(23)])


def _rounded(v, digits):
    """``(float(f"{x:.{digits}g}") for each x in v, where that is certain)``: ``v`` (float64)
    rounded to ``digits`` significant decimals, as Python rounds them (half to even, from
    the exact binary value) and reads them back (correctly rounded).

    The decimal is m·10^s with m a whole number of ``digits`` digits. It is certain where
    log10|x| is not within reach of a whole number (so s is right), |x|·10^-s is not
    within its rounding error of a half (so m is), m < 2^53 and 10^|s| is exact in
    float64 (so m·10^s and m/10^-s are one correctly rounded operation, as float() is)."""
    a = np.abs(v)
    with np.errstate(all="ignore"):       # 0, inf and nan are uncertain, left to Python
        log = np.log10(a)
        s = np.floor(log) - (digits - 1)                               # place of the last digit
        exact = np.isfinite(log) & (np.abs(log - np.round(log)) > 1e-9) & (np.abs(s) <= 22)
        s = np.where(exact, s, 0.0)
        p = _POWERS_OF_TEN[np.abs(s).astype(np.intp)]                  # 10^|s|, exact
        q = np.where(s < 0, a * p, a / p)                              # |x| / 10^s, one rounding
        m = np.round(q)                                                # half to even, as Python
        tie = np.abs(np.abs(q - np.floor(q)) - 0.5) <= 4 * np.finfo(np.float64).eps * q
        sure = exact & ~tie & (m < 2.0 ** 53)
        read = np.copysign(np.where(s < 0, m / p, m * p), v)
    return read, sure


def write_predictions(path, labels, target, pred, persistence=None) -> None:
    """Long format: one row per example and horizon step, in original units; ``labels``
    (N, O) gives each row's time, that of the step's own target.

    Values are written as given when they are text (see :func:`decimals`), else by repr.
    """
    def cell(v):
        return v if isinstance(v, str) else repr(float(v))

    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    cols = ["time", "step", "target", "prediction"] + (["persistence"] if persistence is not None else [])
    w.writerow(cols)
    for i, times in enumerate(labels):
        for k in range(len(target[i])):
            row = [times[k], k + 1, cell(target[i][k]), cell(pred[i][k])]
            if persistence is not None:
                row.append(cell(persistence[i]))
            w.writerow(row)
    atomic_write(path, buf.getvalue())


def _pyplot():
    import matplotlib
    matplotlib.use("Agg", force=True)   # headless: no display needed, ever
    import matplotlib.pyplot as plt
    return plt


@contextmanager
def drawing(path, figsize):
    """The axes of a figure saved to ``path`` (atomically) when the block ends.

    A plot is a picture of results already written, so one that cannot be drawn is a
    warning in the log, not a failed run: a series near the float64 limit (±1e308) trained,
    and then matplotlib's tick placement overflowed and the run ended "failed" with its test
    scores unreported. Numeric warnings inside the drawing are matplotlib's to handle.
    """
    fig = None
    try:
        with np.errstate(all="ignore"):
            plt = _pyplot()
            fig, ax = plt.subplots(figsize=figsize)
            yield ax
            fig.tight_layout()
            _save_figure(fig, path)
    except Exception as exc:
        log.warning("%s not drawn: %s: %s", Path(path).name, type(exc).__name__, exc)
    finally:
        if fig is not None:
            plt.close(fig)


def plot_losses(path, rows, title="") -> None:
    with drawing(path, (6, 4)) as ax:
        ep = [r["epoch"] for r in rows]
        ax.plot(ep, [r["train_loss"] for r in rows], label="train")
        ax.plot(ep, [r["val_loss"] for r in rows], label="validation")
        ax.set_xlabel("epoch")
        ax.set_ylabel("loss (normalised units)")
        if all(r["train_loss"] > 0 and r["val_loss"] > 0 for r in rows):
            ax.set_yscale("log")
        ax.set_title(title, parse_math=False)   # a name is a label: '$x^$' is not math to render
        ax.legend()


def envelope(values, bins=1000):
    """``(x, values[x])``: the first and last point and each of ``bins`` runs' lowest and
    highest, in order, where ``values`` is over four times as long (else all of them).
    Drawn a few runs to a pixel this covers what the whole line covers: the forecast plot
    of a 200,000-step test part took 8 s to draw. Non-finite points are all kept (the line
    breaks at them)."""
    y = np.asarray(values, dtype=np.float64)
    n = len(y)
    if n <= 4 * bins:
        return np.arange(n), y
    k = -(-n // bins)                  # run length: at most bins runs cover n
    m = -(-n // k)                     # runs: the last is short by under k points, padded
    finite = np.isfinite(y)
    keep = ~finite
    keep[[0, -1]] = True
    for fill, pick in ((np.inf, np.argmin), (-np.inf, np.argmax)):
        runs = np.concatenate([np.where(finite, y, fill), np.full(k * m - n, fill)]).reshape(m, k)
        # padding comes after the last run's real points, which win its ties
        keep[pick(runs, axis=1) + k * np.arange(m)] = True
    x = np.flatnonzero(keep)
    return x, y[x]


def plot_forecast(path, target, pred, baselines=None, title="") -> None:
    """First horizon step on the test split, original units."""
    with drawing(path, (9, 4)) as ax:
        ax.plot(*envelope(target[:, 0]), color="black", lw=1.2, label="truth")
        ax.plot(*envelope(pred[:, 0]), lw=1.0, label="model")
        for name, values in (baselines or {}).items():
            ax.plot(*envelope(values), lw=0.8, ls="--", label=name)
        ax.set_xlabel("test example")
        ax.set_ylabel("value")
        ax.set_title(title, parse_math=False)   # a name is a label: '$x^$' is not math to render
        ax.legend(loc="best", fontsize=8)
