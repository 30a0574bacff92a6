"""One results table per multirun sweep: sweep_results.csv, .md and .png in the sweep dir.

Every job rewrites the table from all summary.json files present when it finishes (under
a file lock, so parallel jobs take turns), and the Hydra callback writes it once more at
the end. A job that fails records its failure in its summary instead of raising, because
Hydra skips ``on_multirun_end`` when a job raises; the table still lists it. A job given
another job's directory is refused and listed from JOBS, having no summary of its own.

The sweep's launching process also checks an Optuna search's values before the first trial
(search_space_error), and writes the table one last time when Ctrl-C or SIGTERM stops the
sweep (record_stop), since Hydra skips ``on_multirun_end`` then too.
"""
import csv
import fcntl
import io
import json
import logging
import os
import shlex
import signal
import sys
import threading
import uuid
from contextlib import contextmanager
from pathlib import Path

from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from runner.config import resolution_reason
from runner.outputs import atomic_write, drawing, stored_path
from runner.rundir import MARKER, TOKEN_ENV, claimed, made_above, make_parents

log = logging.getLogger("runner")

COLUMNS = ("job", "status", "overrides", "val_rmse", "test_rmse", "test_mae",
           "persistence_rmse", "ar_rmse", "ar_order", "arx_rmse", "arx_order", "params", "epochs",
           "seconds", "error", "dir")


# Written by the callback when a sweep starts; each job copies it into its summary, so a
# sweep run again into the same directory does not list (or fail on) the last one's jobs.
SWEEP_ID = ".sweep_id"


def sweep_id(sweep_dir):
    p = Path(sweep_dir) / SWEEP_ID
    return p.read_text().strip() if p.is_file() else None


# One JSON line per job of the sweep, entered as it starts: its number, directory (relative
# to the sweep's when inside it) and, if refused, why. A hydra.sweep.subdir that does not
# separate the jobs (subdir=x, or ${model.hidden_size} while sweeping the seed) gave two
# jobs one directory: the second replaced the first's files, and the table said "1 jobs,
# 0 failed" with exit status 0. Hydra hands every job of a sweep the same ${claim:...} sweep
# directory (runner/rundir.py), so the job directories inside it are claimed here, one job
# each.
JOBS = ".sweep_jobs"


def _entries(sweep_dir) -> list:
    """This sweep's JOBS lines, one per job number (a requeued job enters itself again)."""
    current, found = sweep_id(sweep_dir), {}
    try:
        lines = (Path(sweep_dir) / JOBS).read_text().splitlines()
    except OSError:
        return []
    for line in lines:
        try:
            e = json.loads(line)
        except ValueError:
            continue        # a line cut short by a job killed while writing it
        if isinstance(e, dict) and e.get("sweep") == current:
            found.setdefault(str(e.get("job")), e)
    return list(found.values())


# The sweep this one resumes (resume=<sweep>/'${hydra:job.num}'), written when it starts: a
# job it never started, resumed by a later sweep, had nothing there and started from
# scratch, though the sweep resumed here held its progress (runner.tasks follows this back).
# JSON: that sweep's directory relative to this one's, for the two moved or copied together,
# and absolute, for this one moved alone.
RESUMED = ".sweep_resumes"


def _record_resumed(sweep_dir, config) -> None:
    """Write RESUMED if ``config``'s resume= names a place in a runner sweep's directory
    through an interpolation (``A/${hydra:job.num}``, or ``A/j/${hydra:job.num}`` for a
    nested subdir), else remove an earlier sweep's."""
    raw = OmegaConf.to_container(OmegaConf.masked_copy(config, ["resume"]), resolve=False).get("resume")
    parts = Path(os.path.expanduser(raw)).parts if isinstance(raw, str) else ()
    cut = next((i for i, part in enumerate(parts) if "${" in part), 0)
    # read from where the command ran: no job has moved into its directory yet; the nearest
    # directory above the job's place that is a sweep's (a/j/${hydra:job.num}: a nested
    # hydra.sweep.subdir, j/${hydra.job.num}, puts the places below a/j, which is none)
    above = (Path(os.path.abspath(Path(*parts[:k]))).resolve() for k in range(cut, 0, -1))
    earlier = next((d for d in above if (d / SWEEP_ID).is_file()), None)
    here = Path(sweep_dir).resolve()
    if earlier is None or earlier == here:
        (here / RESUMED).unlink(missing_ok=True)
        return
    atomic_write(here / RESUMED, json.dumps({"relative": os.path.relpath(earlier, here),
                                             "absolute": str(earlier)}) + "\n")


def resumed_sweep(sweep_dir):
    """The directory of the sweep that the sweep in ``sweep_dir`` resumed (resolved), if it
    recorded one (RESUMED) and a runner sweep's directory is there still, else None."""
    here = Path(sweep_dir).resolve()
    try:
        r = json.loads((here / RESUMED).read_text())
    except (OSError, ValueError):
        return None
    for p in (r.get("relative"), r.get("absolute")) if isinstance(r, dict) else ():
        if isinstance(p, str) and (here / p / SWEEP_ID).is_file():
            return (here / p).resolve()
    return None


def start_job(sweep_dir, job, out_dir, overrides=()):
    """Enter ``job`` in the sweep's JOBS; the one-line error if ``out_dir`` is another job's
    of this sweep (the job must then leave it alone), else None. Under the table's lock, so
    of two parallel jobs given one directory exactly one has it."""
    sweep_dir = Path(sweep_dir)
    here, mine = sweep_dir.resolve(), Path(out_dir).resolve()
    with _locked(sweep_dir / ".sweep_results.lock"):
        holder = next((e for e in _entries(sweep_dir) if _entry_dir(here, e) == mine
                       and not e.get("refused") and str(e.get("job")) != str(job)), None)
        refused = None
        if holder is not None:
            refused = (f"hydra.sweep.subdir gives job {job} the directory of job {holder['job']} of this "
                       f"sweep, {out_dir}; this job did not run, to keep that job's results: make the "
                       "subdir differ per job (the default is ${hydra.job.num})")
        # relative to the sweep directory, as the table's dir column: stored absolute, a sweep
        # moved elsewhere listed a job that left no summary at its old place
        entry = {"sweep": sweep_id(sweep_dir), "job": job,
                 "dir": stored_path(mine, here), "refused": refused,
                 "overrides": list(overrides)}
        with open(sweep_dir / JOBS, "a") as fh:
            fh.write(json.dumps(entry) + "\n")
    return refused


def _entry_dir(sweep_dir, entry):
    """A JOBS entry's directory, None if it names none: its ``dir`` is relative to
    ``sweep_dir``, or absolute in a JOBS file written before (which this reads as it is)."""
    return None if entry.get("dir") is None else Path(sweep_dir) / entry["dir"]


def collect(sweep_dir, final=False, stopped=False) -> list:
    """The table's rows: this sweep's summaries and its refused jobs; ``final`` (the sweep
    is over) adds a failed row for each job entered in JOBS that left no summary, an
    interrupted one where the sweep was ``stopped`` (Ctrl-C or SIGTERM: record_stop)."""
    rows = []
    current = sweep_id(sweep_dir)
    # at any depth: hydra.sweep.subdir=${hydra.job.override_dirname} with data.path=sub/a.csv
    # (or subdir=j/${hydra.job.num}) nests a job's directory, and such a sweep listed no jobs
    # and exited 0 when all of them failed
    # the sweep directory's own summary.json is a job's only when it carries this sweep's id
    # (hydra.sweep.subdir=. puts a job there); otherwise it is some other run's
    top = Path(sweep_dir) / "summary.json"
    for path in sorted(Path(sweep_dir).rglob("summary.json")):
        try:
            s = json.loads(path.read_text())
            if not isinstance(s, dict):
                # JSON, but not a run's record (null, a list): s.get failed, and no job's
                # table was written again
                raise ValueError(f"not a JSON object ({json.dumps(s):.40})")
        except (OSError, ValueError) as exc:
            if path != top:
                rows.append({"job": path.parent.name, "status": "failed",
                             "error": f"unreadable summary: {exc}", "dir": str(path.parent)})
            continue
        if current is None and path == top:
            continue
        if current is not None and s.get("sweep") != current:
            continue   # left by an earlier sweep into this directory
        b = _part(s, "baselines")
        rows.append({
            "job": s.get("job", path.parent.name), "status": s.get("status"),
            "overrides": " ".join(map(str, _list(s.get("overrides")))),
            "val_rmse": _number(_part(s, "val").get("rmse")),
            "test_rmse": _number(_part(s, "test").get("rmse")), "test_mae": _number(_part(s, "test").get("mae")),
            "persistence_rmse": _number(_part(b, "persistence").get("rmse")),
            "ar_rmse": _number(_part(b, "ar").get("rmse")), "ar_order": _part(b, "ar").get("order"),
            # a job with data.inputs: the linear model of the columns its GRU reads (empty
            # without them), the comparison AR alone does not give it
            "arx_rmse": _number(_part(b, "arx").get("rmse")), "arx_order": _part(b, "arx").get("order"),
            "params": s.get("params"), "epochs": s.get("epochs_run"), "seconds": s.get("seconds"),
            "error": s.get("error"), "dir": str(path.parent)})
    listed = {str(r["job"]) for r in rows}
    for e in _entries(sweep_dir):
        if str(e.get("job")) in listed or not (e.get("refused") or final):
            continue
        cut = stopped and not e.get("refused")
        rows.append({"job": e.get("job"), "status": "interrupted" if cut else "failed",
                     "overrides": " ".join(e.get("overrides") or []),
                     "error": ("no summary.json: stopped with the sweep (or it had ended "
                               "before without writing one)" if cut else
                               e.get("refused") or "the job ended without writing its summary.json"),
                     "dir": None if e.get("dir") is None else str(_entry_dir(sweep_dir, e))})

    def key(r):
        ok = _scored(r)
        # job numbers as numbers: as text, failed job 10 was listed before job 2
        job = str(r["job"])
        return (0 if ok else 1, r["val_rmse"] if ok else 0.0, (0, int(job), "") if job.isdigit() else (1, 0, job))
    return sorted(rows, key=key)


def _part(d, key) -> dict:
    """``d[key]`` if it is a mapping, else ``{}``: a summary.json edited by hand (``"val":
    [1]``) failed the whole table in an AttributeError."""
    v = d.get(key)
    return v if isinstance(v, dict) else {}


def _list(v) -> list:
    """A summary's list (its overrides); a string there was listed letter by letter."""
    return v if isinstance(v, list) else []


def _number(v):
    """A score as a number, else None: a string RMSE in an edited summary.json failed the
    sort (a str compared with a float) and so the whole table."""
    return v if isinstance(v, (int, float)) and not isinstance(v, bool) else None


def _scored(row) -> bool:
    """Whether a job is ranked by its validation RMSE: it ended ok with one (an RMSE past
    float64 is stored as null). The table sorts, ranks and plots the others after these."""
    return row["status"] == "ok" and row.get("val_rmse") is not None


def _cell(v):
    if isinstance(v, float):
        return f"{v:.5g}"
    return "" if v is None else str(v)


def write_table(sweep_dir, final=False, stopped=False) -> list:
    """Rewrite the sweep's table (collect's rows) as .csv, .md and .png; its heading says
    whether the sweep has ended, and whether it was stopped before its end. Returns the rows."""
    sweep_dir = Path(sweep_dir)
    with _locked(sweep_dir / ".sweep_results.lock"):
        rows = collect(sweep_dir, final, stopped)
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        w.writerow(COLUMNS)
        for r in rows:
            # a job's directory relative to the sweep's (where the table is), so that a sweep
            # moved or copied elsewhere lists its own jobs, not the old place's
            cells = {**r, "dir": _table_dir(r.get("dir"), sweep_dir)}
            w.writerow(["" if cells.get(c) is None else cells.get(c) for c in COLUMNS])
        atomic_write(sweep_dir / "sweep_results.csv", buf.getvalue())
        md_cols = [c for c in COLUMNS if c != "dir"]
        lines = ["| rank | " + " | ".join(md_cols) + " |", "|" + " --- |" * (len(md_cols) + 1)]
        for i, r in enumerate(rows, 1):
            cells = [_cell(r.get(c)).replace("|", "\\|").replace("\n", " ") for c in md_cols]
            lines.append(f"| {i if _scored(r) else '-'} | " + " | ".join(cells) + " |")
        # a table written as jobs finished read like the whole sweep's once the sweep was
        # killed: it says which it is
        state = ("" if final and not stopped else
                 "\n\nThe sweep was stopped (Ctrl-C or SIGTERM) before its end: the jobs it had not "
                 "started are not listed." if stopped else
                 "\n\nSo far: the sweep has not ended (or its launcher was killed), and the jobs "
                 "still running or not yet started are not listed.")
        head = (f"# Sweep results: {_jobs(len(rows))}, {_tally(rows)}{state}\n\n"
                "Sorted by validation RMSE (original units); failed and interrupted jobs last, "
                "failed ones with their error.\n\n")
        atomic_write(sweep_dir / "sweep_results.md", head + "\n".join(lines) + "\n")
        _plot(sweep_dir / "sweep_results.png", rows)   # a warning if it cannot be drawn
    return rows


def _table_dir(job_dir, sweep_dir):
    """sweep_results.csv's ``dir``: ``job_dir`` relative to ``sweep_dir`` when inside it
    (``0``, or ``j/0`` for a nested subdir), else as it is. Resolved first: a .sweep_jobs
    written before its paths were relative holds resolved ones, and the sweep directory may
    be given through a symbolic link."""
    if job_dir is None:
        return None
    try:
        return str(Path(job_dir).resolve().relative_to(Path(sweep_dir).resolve()))
    except ValueError:        # a subdir leading outside the sweep directory
        return str(job_dir)


def _jobs(n) -> str:
    return f"{n} job" if n == 1 else f"{n} jobs"


def _tally(rows) -> str:
    """'3 failed' or '2 failed, 1 interrupted': a job stopped by trainer.stop_after has no
    error, so it is not counted as failed."""
    n_interrupted = sum(r["status"] == "interrupted" for r in rows)
    n_failed = sum(r["status"] not in ("ok", "interrupted") for r in rows)
    return f"{n_failed} failed" + (f", {n_interrupted} interrupted" if n_interrupted else "")


def _plot(path, rows):
    with drawing(path, (8, 0.4 * len(rows) + 1.5)) as ax:   # a bar per job
        ok = [r for r in rows if _scored(r)]
        failed = [r for r in rows if r not in ok]
        # label each bar with what varies across the sweep, not the overrides all jobs share
        split = [set((r.get("overrides") or "").split()) for r in ok + failed]
        common = set.intersection(*split) if split else set()
        labels = []
        for r in ok + failed:
            own = " ".join(o for o in (r.get("overrides") or "").split() if o not in common) or "(defaults)"
            labels.append(f"{r['job']}: {own if len(own) <= 60 else own[:57] + '...'}")
        y = range(len(labels))
        vals = [r["val_rmse"] for r in ok]
        # one diverged job (an RMSE of 3e8 beside 0.02) drew the others' bars zero wide: past
        # a hundredfold spread the axis is logarithmic, the bars starting at half the least
        log = bool(vals) and min(vals) > 0 and max(vals) > 100 * min(vals)
        base = min(vals) / 2 if log else 0.0
        colors = ["tab:blue"] * len(ok) + ["tab:red"] * len(failed)
        ax.barh(list(y), [v - base for v in vals] + [0.0] * len(failed), left=base, color=colors)
        if log:
            ax.set_xscale("log")
        for i, r in enumerate(failed, start=len(ok)):
            # an ok job without a validation score (its RMSE past float64) has no bar either
            unscored = r["status"] == "ok"
            ax.text(base, i, "  ok, no validation score" if unscored else f"  {r['status']}",
                    va="center", color="tab:gray" if unscored else "tab:red")
        ax.set_yticks(list(y))
        ax.set_yticklabels(labels, fontsize=8, parse_math=False)   # overrides, not math ('name=$x^$')
        ax.invert_yaxis()
        ax.set_xlabel("validation RMSE (lower is better" + ("; log scale)" if log else ")"))


@contextmanager
def _locked(path):
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


# (jobs, {status: [job dirs]} of the jobs not ok, table, why no job ran) of the multirun
# that just ended in this process, for the exit status
finished = None

# The sweep directory of the multirun started in this process (its launcher's) and
# whether its jobs are submitit's, for record_stop
started = None
detached = False

# The sweep directory of the multirun started in this process, if this invocation made it
# (its own ${claim:...}, or a hydra.sweep.dir that did not exist): what discard_unused may
# remove
made = None


def discard_unused() -> None:
    """Remove the sweep directory this invocation made for a multirun that stopped before
    any job started (``-m model.hiden_size=4,8``: Hydra refuses the key while composing the
    first job). It held only the bookkeeping (multirun.yaml and the markers), and each such
    attempt left another timestamped directory. Anything else in it, or any job entered in
    JOBS, keeps it."""
    if made is None or finished is not None or _entries(made):
        return
    for name in ("multirun.yaml", SWEEP_ID, JOBS, RESUMED, MARKER):
        try:
            (made / name).unlink()
        except OSError:
            pass
    try:
        made.rmdir()
        for d in made.parents:   # and multirun/ itself, if this process made it
            if d not in made_above:
                break
            d.rmdir()
    except OSError:             # something else is in it: not ours to remove
        pass


def _sweep_overrides(config):
    """``(the command line's overrides, hydra.sweeper.params' as overrides)`` of a multirun's
    config, as written (unresolved)."""
    task = OmegaConf.select(config, "hydra.overrides.task", default=None)
    params = OmegaConf.select(config, "hydra.sweeper.params", default=None)
    return (list(OmegaConf.to_container(task, resolve=False)) if task is not None else [],
            [f"{k}={v}" for k, v in OmegaConf.to_container(params, resolve=False).items()]
            if isinstance(params, DictConfig) else [])


def _why_no_job(config) -> str:
    """The sweep's overrides that sweep over no value (model.hidden_size=range(5,5)): Hydra
    said "Launching 0 jobs", wrote a "0 jobs, 0 failed" table and exited 0."""
    from hydra.core.override_parser.overrides_parser import OverridesParser
    task, params = _sweep_overrides(config)
    given = task + params
    empty = []
    parser = OverridesParser.create()
    for text in given:
        try:
            (o,) = parser.parse_overrides([text])
            if o.is_sweep_override() and not list(o.sweep_string_iterator()):
                empty.append(text)
        except Exception:      # glob() needs Hydra's config loader; not for this message
            continue
    trials = OmegaConf.select(config, "hydra.sweeper.n_trials", default=None)   # Optuna's
    if isinstance(trials, int) and trials <= 0:
        empty.append(f"hydra.sweeper.n_trials={trials}")
    return f": {', '.join(empty)} sweeps over no value" if empty else ""


def search_space_error(config):
    """The first value of a ``choice()`` or ``range()`` the Optuna sweeper would draw and
    Hydra cannot compose (``model.hidden_size=choice(8,abc)``), as a message, else None.

    The basic sweeper composes every job before the first starts, so such a typo stopped a
    sweep before it ran anything; the Optuna sweeper composes each trial as it draws it,
    and the trial that drew ``abc`` ended the search with Hydra's error, its study (held
    in memory) and best trial lost. Each value is composed alone, the other searched keys
    at their defaults; of numbers (and other values but strings, which may name a group's
    option) one of each type, so range(4, 1000) composes once (about 0.1 s each)."""
    target = str(OmegaConf.select(config, "hydra.sweeper._target_", default="") or "")
    if "optuna" not in target.lower():
        return None
    from hydra.core.global_hydra import GlobalHydra
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.core.override_parser.types import ChoiceSweep, RangeSweep
    parser = OverridesParser.create()
    given, searched = _sweep_overrides(config)
    fixed = []
    for text in given:
        try:
            sweeps = parser.parse_override(text).is_sweep_override()
        except Exception:        # Hydra's own error for it comes with the first trial
            return None
        (searched if sweeps else fixed).append(text)
    loader = GlobalHydra.instance().config_loader()
    for text in searched:
        try:
            o = parser.parse_override(text)
        except Exception:
            return None
        if not isinstance(o.value(), (ChoiceSweep, RangeSweep)):
            continue             # interval(): any value in it has the type of its ends
        seen = set()
        for typed, value in zip(o.sweep_iterator(), o.sweep_string_iterator()):
            if type(typed) in seen and not isinstance(typed, str):
                if isinstance(o.value(), RangeSweep):
                    break        # all of one type: the rest would compose alike
                continue
            seen.add(type(typed))
            try:
                loader.load_sweep_config(config, fixed + [f"{o.get_key_element()}={value}"])
            except Exception as exc:
                # Hydra's "Error merging override ...", and what omegaconf said of the value
                why = "; ".join(str(e).strip().splitlines()[0] for e in (exc, exc.__cause__)
                                if e is not None and str(e).strip())
                return (f"{text}: a trial that draws {value} cannot be composed, and the search "
                        f"would end there ({why})")
    return None


class SweepTableCallback(Callback):
    """Writes the sweep table when a multirun ends (runs in the launching process)."""

    def on_multirun_start(self, config, **kwargs) -> None:
        try:
            sweep_dir = Path(config.hydra.sweep.dir)
        except OmegaConfBaseException as exc:
            # hydra.sweep.dir=${nope}: Hydra would warn of this callback's error, and then
            # its sweeper would fail on the same value with an 80-line traceback. SystemExit
            # passes through both (they catch Exception).
            print(f"error: hydra.sweep.dir: cannot be resolved: {resolution_reason(exc)}",
                  file=sys.stderr)
            raise SystemExit(1)
        global made, started, detached
        started = sweep_dir
        detached = "submitit" in str(OmegaConf.select(config, "hydra.launcher._target_", default=""))
        # ${claim:...} gave it to this invocation (runner/rundir.py), or it is new
        ours = claimed(sweep_dir, os.environ.get(TOKEN_ENV)) or not sweep_dir.exists()
        made = sweep_dir if ours else None
        make_parents(sweep_dir)
        sweep_dir.mkdir(exist_ok=True)
        atomic_write(sweep_dir / SWEEP_ID, uuid.uuid4().hex + "\n")
        atomic_write(sweep_dir / JOBS, "")   # an earlier sweep's jobs are not this one's
        _record_resumed(sweep_dir, config)
        # after the directory is known to be made here: discard_unused takes it back (a
        # ${claim:...} has made it already, and the refusal left it behind)
        error = search_space_error(config)
        if error:
            print(f"error: {error}", file=sys.stderr)
            raise SystemExit(1)

    def on_multirun_end(self, config, **kwargs) -> None:
        global finished
        sweep_dir = Path(config.hydra.sweep.dir)
        if sweep_dir.is_dir():
            rows = write_table(sweep_dir, final=True)
            not_ok = {}
            for r in rows:
                if r["status"] != "ok":
                    not_ok.setdefault(r["status"], []).append(r["dir"])
            finished = (len(rows), not_ok, sweep_dir / "sweep_results.md",
                        None if rows else _why_no_job(config))
            log.info("sweep results (%d jobs, %s): %s", len(rows), _tally(rows), finished[2])


def record_stop(signal_name) -> None:
    """A multirun stopped by Ctrl-C or SIGTERM (``signal_name``) before its end, in the
    process that launched it: rewrite the table with every job that started, those that
    left no summary marked interrupted, under a heading that says the sweep was stopped,
    and say so. Hydra skips on_multirun_end then, and a parallel sweep stopped silently:
    its table counted the finished jobs as if they were all."""
    if started is None or finished is not None or not started.is_dir():
        return
    # a second Ctrl-C or kill while the table is drawn (half a second: matplotlib's import)
    # ended the launcher with a traceback or by SIGTERM's default action, without the
    # message: the sweep is stopping already, so further ones are let go until it has said so
    held = ({s: signal.signal(s, signal.SIG_IGN) for s in (signal.SIGINT, signal.SIGTERM)}
            if threading.current_thread() is threading.main_thread() else {})
    try:
        _record_stop(signal_name)
    finally:
        for s, handler in held.items():
            signal.signal(s, handler)


def _record_stop(signal_name):
    try:
        rows = write_table(started, final=True, stopped=True)
    except Exception as exc:      # the run's own interruption is what to report, not this
        log.warning("sweep table not updated: %s", exc)
        return
    ok = sum(r["status"] == "ok" for r in rows)
    # submitit's jobs are processes (or batch jobs) of their own: a signal to the launcher
    # alone leaves them running, and each rewrites the table as it ends
    running = (" (submitit's jobs are processes of their own: those still running go on, "
               "and each rewrites the table as it ends)" if detached else "")
    print(f"error: the sweep was stopped ({signal_name}) before its end: {ok} of the "
          f"{_jobs(len(rows))} it started had finished ok{running}; see {started / 'sweep_results.md'}. The "
          # the directory quoted for the shell: "my runs/sw" split the argument in two
          f"sweep's command line with resume={shlex.quote(str(started))}/'${{hydra:job.num}}' "
          "finishes it: each job with a last.npz continues, one without from the sweep this one "
          "resumed where that holds its checkpoint, the others start from scratch",
          file=sys.stderr)


def exit_status() -> int:
    """1 if the multirun that just ended had no job, or one that did not finish ok, else 0.

    Jobs never raise (see the module docstring), so the sweep runs to its end; the failure
    shows up here instead, once, after the table is written: a script or CI step running a
    sweep sees it. The message says what happened to them: a job that trainer.stop_after
    stopped did not fail and has no error to look for, but a resume to run.
    """
    if finished and not finished[0]:
        # nothing trained is no result to exit 0 on
        print(f"error: the sweep launched no job{finished[3]}", file=sys.stderr)
        return 1
    if not finished or not finished[1]:
        return 0
    n, not_ok, table, _ = finished
    n_bad = sum(len(dirs) for dirs in not_ok.values())
    if set(not_ok) == {"failed"}:
        msg = f"{n_bad} of {n} jobs failed; their errors are in {table}"
    else:
        parts = []
        for status, dirs in sorted(not_ok.items(), key=lambda kv: str(kv[0])):
            if status == "interrupted":
                more = f" (and {len(dirs) - 1} more)" if len(dirs) > 1 else ""
                # each job with its own overrides: resume= alone was refused for every
                # setting the sweep's command line changed
                from runner.trainer import resume_command
                example = resume_command(dirs[0])
                how = (f"continue each with its own overrides, e.g. {example}" if example else
                       f"continue with resume=<job dir>, e.g. resume={dirs[0]}")
                its = "its" if len(dirs) == 1 else "their"
                parts.append(f"{len(dirs)} stopped before {its} last epoch (trainer.stop_after); {how}{more}")
            else:
                parts.append(f"{len(dirs)} {status}")
        msg = f"{n_bad} of {n} jobs did not finish: {', '.join(parts)}; see {table}"
    print(f"error: {msg}", file=sys.stderr)
    return 1
