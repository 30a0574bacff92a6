"""``python -m runner``: compose a config, train (or evaluate), write the run's outputs.

``run(cfg, out_dir)`` is the task function. It never lets an error escape in a multirun:
it records ``"status": "failed"`` and the error in summary.json and returns an infinite
metric, so one bad job cannot stop the sweep or its results table (a job given another
job's directory records its refusal in the sweep's .sweep_jobs instead). A single run that
fails writes the same summary, logs one clear line and exits with status 1.
"""
import logging
import math
import os
import re
import sys
import time
import traceback
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.errors import InstantiationException
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf

from runner import outputs
from runner.config import ConfigError, config_dir, resolve, user_path, validate
from runner.interrupts import Terminated, interrupts_deferred, sigterm_as_interrupt
from runner.rundir import claim, run_name

log = logging.getLogger("runner")

# ${claim:dir} in conf/config.yaml: a directory no other run writes into (runner/rundir.py)
OmegaConf.register_new_resolver("claim", claim, use_cache=True, replace=True)
# ${run_name:default,train,ckpt_path}: name's default, the checkpoint's own for an evaluation
OmegaConf.register_new_resolver("run_name", run_name, use_cache=True, replace=True)

FAILED_METRIC = math.inf   # what a failed job reports to a sweeper (minimising)
# runs this process began: none after a failure means Hydra refused the command line
# before any runner code ran (runner/__main__.py's hints about it apply then only)
runs_begun = 0
SMALL_GEMM = 256 * 32      # hidden_size * batch_size below which one BLAS thread is faster


def choose_threads(cfg) -> int:
    """BLAS threads for this job: ``threads`` when set, else automatic.

    Automatic: the cores divided among the jobs that run at once (joblib's n_jobs,
    submitit's cpus_per_task), and one thread for small models, whose per-step GEMMs
    (batch x 3*hidden) are too small to split. Training sequences/s on the 2-core Xeon,
    data=sine, one thread vs two (median epoch, three runs each, interleaved): hidden 32
    batch 32: 46k vs 38k; 64 and 32: 19.7k vs 15.5k; 64 and 64: 25.0k vs 24.5k; 128 and
    32: 6.8k vs 6.9k; 256 and 32 (8192): 1.39k vs 1.87k; 512 and 16: 305 vs 363.
    """
    if cfg.get("threads"):
        return int(cfg.threads)
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    hidden = int((cfg.get("model") or {}).get("hidden_size", 0) or 0)
    batch = int(cfg.trainer.batch_size)
    if hidden * batch < SMALL_GEMM:
        return 1
    if not HydraConfig.initialized():
        return cores
    hc = HydraConfig.get()
    launcher = str(hc.launcher.get("_target_", ""))
    if "joblib" in launcher.lower():
        n_jobs = int(hc.launcher.get("n_jobs", -1) or -1)
        parallel = n_jobs if n_jobs > 0 else max(1, cores + 1 + n_jobs)   # joblib: -1 = all cores
        return max(1, cores // min(parallel, cores))
    if "submitit" in launcher.lower():
        return int(hc.launcher.get("cpus_per_task") or 1)
    return cores


def _source(s) -> str:
    """A Hydra config source as --config-path/--config-dir take it: a package's with pkg://."""
    return f"pkg://{s.path}" if s.schema == "pkg" else s.path


def _hydra_info():
    if not HydraConfig.initialized():
        return {"multirun": False, "overrides": [], "invocation": [], "job": None,
                "sweep_dir": None}
    hc = HydraConfig.get()
    multirun = hc.mode == RunMode.MULTIRUN
    # as typed: read through OmegaConf, "seed=${trainer.epochs}" was recorded as "seed=30",
    # and "trainer.epochs=${nope}" raised here, before the run could report it
    overrides = OmegaConf.to_container(hc.overrides.task, resolve=False)
    # how Hydra found the config besides the overrides, for a resume hint to repeat: a dataset
    # added with --config-dir (README) was "Could not find 'data/square'" without it, and a
    # run from a copy of conf/ (--config-path, a directory or a package) resumed with the
    # bundled configs instead
    invocation = [f"--config-path={_source(s)}" for s in hc.runtime.config_sources
                  if s.provider == "main" and (s.schema == "pkg" or (
                      s.schema == "file"
                      and os.path.realpath(s.path) != os.path.realpath(config_dir())))]
    invocation += [f"--config-dir={_source(s)}" for s in hc.runtime.config_sources
                   if s.provider == "command-line" and s.schema in ("file", "pkg")]
    if hc.job.config_name != "config":
        invocation.append(f"--config-name={hc.job.config_name}")
    return {"multirun": multirun, "overrides": list(overrides), "invocation": invocation,
            "job": hc.job.get("num") if multirun else None,
            # the sweep's table and .sweep_jobs: a relative hydra.sweep.dir (the default) is
            # the command's, not the job's under hydra.job.chdir=true
            "sweep_dir": str(user_path(hc.sweep.dir)) if multirun else None}


def check_run_mode() -> None:
    """Refuse a search config in a single run: without -m Hydra runs it once, silently.

    A sweeper only acts in a multirun; ``python -m runner hparams_search=...`` trained the
    defaults once and looked like a search that found them.
    """
    if not HydraConfig.initialized() or HydraConfig.get().mode != RunMode.RUN:
        return
    choices = HydraConfig.get().runtime.choices
    search, sweeper = choices.get("hparams_search"), choices.get("hydra/sweeper")
    if search or sweeper not in (None, "basic"):
        what = f"hparams_search={search}" if search else f"hydra/sweeper={sweeper}"
        raise ConfigError(f"{what} is a search over many runs, and without -m Hydra does one plain "
                          f"run: add -m (python -m runner -m {what} ...)")


# Errors whose message already says what to fix: no traceback.txt for them. Matched by
# name because importing the trainer (for NonFiniteLoss) would import grucy before the
# config is validated.
EXPECTED_ERRORS = ("ConfigError", "DataError", "NonFiniteLoss")


def describe(exc: BaseException):
    """``(one-line message, the exception behind it)`` for the terminal and summary.json.

    Hydra wraps what a dataset or model constructor raised in an InstantiationException
    whose text spans three lines and quotes the cause's repr; report the cause itself,
    under the config key it came from: the constructor's ``window=0`` is the command
    line's ``data.window=0`` (its arguments are that node's keys), and a message naming
    none of its arguments gets the key in front (``data: ...``).
    """
    key, arguments = None, set()
    if isinstance(exc, InstantiationException) and exc.__cause__ is not None:
        found = re.search(r"^full_key: (\S+)$", str(exc), re.M)
        key = found.group(1) if found else None
        arguments = _arguments(str(exc))
        exc = exc.__cause__
    text = " ".join(line.strip() for line in str(exc).splitlines() if line.strip())
    where, named = "", 0
    if key and arguments:
        # only the constructor's own arguments: a path's /site=7/ or a column 'a=b' is text
        names = "|".join(sorted(map(re.escape, arguments)))
        text, named = re.subn(rf"(?<![\w./'\"=-])({names})=(?!=)", rf"{key}.\1=", text)
    if key and not named:
        where = f"{key}: "
    return f"{where}{type(exc).__name__}: {text}", exc


def _arguments(text) -> set:
    """The argument names of the constructor an InstantiationException's ``text`` names
    ("Error in call to target 'runner.datasets.Sine'"), through its classes' __init__
    (Sine passes window= on to SeriesDataset's); empty where it cannot be found."""
    import importlib
    import inspect
    found = re.search(r"target '([\w.]+)'", text)
    parts, target = found.group(1).split(".") if found else [], None
    # imported here, not by hydra.utils.get_object, which logs an error where it fails
    for i in range(len(parts) - 1, 0, -1):
        try:
            target = importlib.import_module(".".join(parts[:i]))
            for name in parts[i:]:
                target = getattr(target, name)
            break
        except Exception:    # the message is still worth giving, without the key names
            target = None
    calls = ([vars(c)["__init__"] for c in inspect.getmro(target) if "__init__" in vars(c)]
             if inspect.isclass(target) else [target] if callable(target) else [])
    names = set()
    for call in calls:
        try:
            names |= {p.name for p in inspect.signature(call).parameters.values()
                      if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}
        except (TypeError, ValueError):      # a builtin without a signature
            pass
    return names - {"self"}


def _uses_checkpoint_in(cfg, out_dir: Path) -> bool:
    """Whether ``resume=`` or ``ckpt_path=`` names a checkpoint in ``out_dir``: that run's
    state is what this one continues or evaluates, not a leftover. ``cfg`` is resolved."""
    for key, default in (("resume", "last.npz"), ("ckpt_path", "best.npz")):
        value = cfg.get(key)
        if value and outputs.checkpoint_file(value, default).parent.resolve() == out_dir.resolve():
            return True
    return False


def _per_epoch_off(record):
    """quiet=true: drop the per-epoch lines (runner.trainer.Progress marks them), keep the rest."""
    return not getattr(record, "per_epoch", False)


def _quiet_console(quiet: bool):
    for h in logging.getLogger().handlers:
        if isinstance(h, logging.StreamHandler) and not isinstance(h, logging.FileHandler):
            (h.addFilter if quiet else h.removeFilter)(_per_epoch_off)


def _peek(cfg, key):
    """``cfg.get(key)``, None if it does not resolve (``seed=${nope}``): the run then fails
    on it with a message (runner.config.resolve) instead of raising before summary.json."""
    try:
        return cfg.get(key)
    except Exception:
        return None


class _Begin:
    """``begin()``: from here the directory is this run's. The trainer and the evaluation
    call it once everything that can refuse the config (the data, the model, optimizer and
    scheduler, a resumed or evaluated checkpoint) has passed. An earlier run's files would
    look like this run's results if it failed later, so they go; a refused run leaves them
    all as they were (clearing them right after validate() lost the model to a refused
    scheduler.gamma=-1). ``done`` says whether it has run."""

    def __init__(self, cfg, out_dir):
        self.cfg, self.out_dir, self.done = cfg, out_dir, False

    def __call__(self):
        keep = _uses_checkpoint_in(self.cfg, self.out_dir)
        outputs.clear_earlier_run(self.out_dir, keep_state=keep)
        outputs.atomic_write(self.out_dir / "config.yaml", OmegaConf.to_yaml(self.cfg))
        self.done = True


def run(cfg: DictConfig, out_dir=None) -> float:
    """Train or evaluate one config; return the validation RMSE (what sweepers minimise)."""
    global runs_begun
    runs_begun += 1
    started = time.perf_counter()
    out_dir = Path(out_dir or HydraConfig.get().runtime.output_dir)
    info = _hydra_info()
    if info["multirun"] and info["sweep_dir"]:
        # before anything here touches the directory: if it is another job's of this sweep,
        # this job's summary and checkpoints would replace that job's (runner/sweep.py)
        from runner.sweep import start_job, write_table
        refused = start_job(info["sweep_dir"], info["job"], out_dir, info["overrides"])
        if refused:
            log.error("run failed: %s", refused)
            try:
                write_table(info["sweep_dir"])   # lists it as failed, as a failed job would
            except Exception as exc:
                log.warning("sweep table not updated: %s", exc)
            return FAILED_METRIC
    out_dir.mkdir(parents=True, exist_ok=True)
    # a directory used again (hydra.run.dir=...) kept an earlier failure's traceback.txt
    # beside this run's summary
    (out_dir / "traceback.txt").unlink(missing_ok=True)
    _quiet_console(bool(_peek(cfg, "quiet")))
    summary = {"status": "failed", "error": None, "name": _peek(cfg, "name"), "job": info["job"],
               "overrides": info["overrides"], "seed": _peek(cfg, "seed"), "threads": None, "test": None,
               "val": None, "baselines": None, "params": None, "seconds": None, "versions": None}
    metric = FAILED_METRIC
    begin = _Begin(cfg, out_dir)
    try:
        resolve(cfg)
        check_run_mode()
        validate(cfg)
        import grucy   # after validation: a config typo is reported even without a built grucy
        threads = choose_threads(cfg)
        grucy.set_num_threads(threads)
        summary["threads"] = grucy.get_num_threads()   # capped at the CPUs (grucy.set_num_threads)
        if summary["threads"] < threads:
            log.info("threads=%d: %d CPUs here, running on %d", threads, summary["threads"],
                     summary["threads"])
        from runner import tasks
        if cfg.train:
            # outside Hydra (a config composed in Python) there is no command line to store
            result = tasks.fit(cfg, out_dir, partial=summary, begin=begin,
                               overrides=(info["invocation"] + info["overrides"]
                                          if HydraConfig.initialized() else None),
                               sweep_dir=info["sweep_dir"])
        else:
            result = tasks.evaluate(cfg, out_dir, partial=summary, overrides=info["overrides"],
                                    begin=begin)
        summary.update(result)   # sets status: "ok", or "interrupted" by trainer.stop_after
        val = (summary.get("val") or {}).get("rmse")
        metric = float(val) if val is not None and math.isfinite(val) else FAILED_METRIC
    except KeyboardInterrupt as exc:
        # Ctrl-C (or SIGTERM: runner.interrupts): say so (not "failed" with no error) and how
        # to continue, then stop. Only a training run with a finished epoch (last.npz) can
        # continue: resume= on anything else is refused with "no checkpoint there"
        summary["status"] = "interrupted"
        if _peek(cfg, "train") and begin.done and (out_dir / "last.npz").is_file():
            from runner.trainer import resume_command   # the overrides the run's checkpoint stores
            hint = f"continue with: {resume_command(out_dir) or f'resume={out_dir}'}"
        else:
            hint = "nothing to resume (no epoch finished); run the command again"
        terminated = isinstance(exc, Terminated)
        summary["error"] = f"{'Terminated (SIGTERM)' if terminated else 'KeyboardInterrupt'}: {hint}"
        log.warning("%s; %s", "terminated" if terminated else "interrupted", hint)
        raise
    except Exception as exc:  # recorded, never lost: see the module docstring
        summary["status"] = "failed"
        summary["error"], cause = describe(exc)
        log.error("run failed: %s", summary["error"])
        if type(cause).__name__ not in EXPECTED_ERRORS:
            log.debug("%s", traceback.format_exc())
            outputs.atomic_write(out_dir / "traceback.txt", traceback.format_exc())
    finally:
        summary["seconds"] = time.perf_counter() - started
        # a Ctrl-C here waits for the record: one as the run ended, or a second while the
        # first was recorded, came during versions() (some 20 ms) and left no summary.json.
        # The summary says what happened before it (ok, if the run had ended); the exit
        # status says that Ctrl-C came
        with interrupts_deferred():
            summary["versions"] = outputs.versions()
            if info["multirun"] and info["sweep_dir"]:
                from runner.sweep import sweep_id
                summary["sweep"] = sweep_id(info["sweep_dir"])   # which sweep this job belongs to
            outputs.write_json(out_dir / "summary.json", summary)
            if info["multirun"] and info["sweep_dir"]:
                try:
                    from runner.sweep import write_table
                    write_table(info["sweep_dir"])
                except Exception as exc:
                    log.warning("sweep table not updated: %s", exc)
    if summary["status"] == "failed" and not info["multirun"]:
        print(f"error: {summary['error']}", file=sys.stderr)
        sys.exit(1)
    return metric


@hydra.main(version_base="1.3", config_path=config_dir(), config_name="config")
def main(cfg: DictConfig) -> float:
    with sigterm_as_interrupt():
        return run(cfg)
