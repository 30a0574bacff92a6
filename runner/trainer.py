"""The training loop: epochs over shuffled mini-batches, validation, checkpoints,
early stopping, learning-rate schedules, and exact resume.

Shuffling uses a generator seeded by (seed, epoch), so epoch k's batches do not depend
on how the run got there: a resumed run replays exactly what an uninterrupted one does.
Inside the loop numpy only slices and does element-wise work; matrix products are grucy's.
"""
import dataclasses
import inspect
import logging
import math
import numbers
import re
import shlex
import time
from pathlib import Path

import numpy as np
from hydra.utils import get_method
from omegaconf import OmegaConf

import grucy

from runner import baselines, model as M, outputs, schema
from runner.config import ConfigError
from runner.datasets import SPLIT_NAMES, Prepared, Split, digests
from runner.interrupts import interrupts_deferred

log = logging.getLogger("runner")


class NonFiniteLoss(RuntimeError):
    """The loss became NaN or infinite; the run stops and keeps its last good checkpoint."""


class Progress:
    """One line per epoch with losses and the estimated time left."""

    def __init__(self, epochs):
        self.epochs = epochs
        self.started = time.perf_counter()

    def epoch(self, row, done_this_run, remaining):
        elapsed = time.perf_counter() - self.started
        eta = elapsed / max(done_this_run, 1) * remaining
        log.info("epoch %*d/%d  train %.4g  val %.4g  val_rmse %.4g  lr %.3g  %.2fs  %.0f seq/s  left %s",
                 len(str(self.epochs)), row["epoch"], self.epochs, row["train_loss"], row["val_loss"],
                 row["val_rmse"], row["lr"], row["epoch_time"], row["seqs_per_sec"], _clock(eta),
                 extra={"per_epoch": True})                 # what quiet=true hides


def _clock(seconds):
    seconds = int(round(seconds))
    return f"{seconds // 60}m{seconds % 60:02d}s" if seconds >= 60 else f"{seconds}s"


def time_major(x, dtype=None):
    """(B, T, I) batch-first slice -> (T, B, I) C-contiguous, what grucy's kernels take.

    ``dtype``: the model's; datasets are float32 and a float64 model refuses them.
    """
    return np.ascontiguousarray(x.transpose(1, 0, 2), dtype=dtype)


def predict(model, split: Split, batch_size: int) -> np.ndarray:
    model.eval()
    out, dtype = [], getattr(model, "dtype", None)
    for i in range(0, len(split), batch_size):
        out.append(np.asarray(model.predict(time_major(split.x[i:i + batch_size], dtype))))
    return np.concatenate(out, axis=0).reshape(split.y.shape)


def _finite(v):
    return v is not None and math.isfinite(v)


def _smaller(lr, optimizer, clip, training):
    """What a NaN or infinite loss's message suggests: "a smaller optimizer.lr (now 0.01)
    or ...". A non-zero weight decay is named too: at optimizer.weight_decay=1e300 the
    message sent the user to lr alone. Clipping is a hint for the training loss only, and
    only where it is off: at clip_grad_norm=1.0 "or trainer.clip_grad_norm" sent the user
    to a setting already in force."""
    hints = [f"a smaller optimizer.lr (now {lr:g})"]
    decay = getattr(optimizer, "weight_decay", 0)       # a user's optimizer may have none
    # numbers.Real: a user's optimizer may keep it as a numpy scalar (np.float32 is no float)
    if isinstance(decay, numbers.Real) and decay:
        hints.append(f"a smaller optimizer.weight_decay (now {decay:g})")
    if training:
        hints.append("trainer.clip_grad_norm" if clip is None
                     else f"a smaller trainer.clip_grad_norm (now {clip:g})")
    return " or ".join([", ".join(hints[:-1]), hints[-1]]) if len(hints) > 1 else hints[0]


def train(cfg, data: Prepared, out_dir: Path, resume=None, checkpoint=None, begin=None,
          overrides=None) -> dict:
    """Fit ``cfg.model`` on ``data``; return a dict for summary.json (status set by caller).

    ``overrides``: the command line's (Hydra's task overrides), None outside a Hydra run (a
    config composed in Python has no command line); those that shape the results are stored
    in the checkpoints, so that every resume hint can name them. Resuming: ``resume`` is the checkpoint's path and ``checkpoint`` what
    ``M.load_checkpoint`` read from it, already passed by :func:`check_resume`. ``begin()``
    (runner.app) is called once the model, optimizer and scheduler are built, before anything
    is written to ``out_dir``."""
    t = cfg.trainer
    seed = int(cfg.seed)
    lossf = M.loss_fn(t.loss)
    best_path, last_path = out_dir / "best.npz", out_dir / "last.npz"
    model_cfg = run_config(cfg)
    threads = grucy.get_num_threads()   # set by runner.app; results depend on it (see resume)
    shaping = None if overrides is None else result_overrides(overrides)

    history, best_val, best_epoch, bad_epochs, start = [], math.inf, 0, 0, 0
    if resume is not None:
        model, opt_state, meta = checkpoint
        st, saved_cfg = meta.get("runner") or {}, meta.get("config") or {}
        # name may change on resume, but only labels this run's directory, summary and plots:
        # its checkpoints keep the stored one, so they equal an uninterrupted run's
        model_cfg.update({k: saved_cfg[k] for k in LABEL_KEYS if k in saved_cfg})
        # data.path likewise: another path to the same data (../a.csv from a subdirectory;
        # tasks.fit checked the data) is this run's, not the run's it continues, whose stored
        # overrides (below) still name the original path
        stored, ours = saved_cfg.get("data"), model_cfg.get("data")
        if isinstance(stored, dict) and isinstance(ours, dict) and "path" in stored and "path" in ours:
            ours["path"] = stored["path"]
        # likewise the original run's overrides (this run's give the same config, maybe
        # spelt otherwise); a checkpoint from before they were stored gets this run's
        shaping = st.get("overrides", shaping)
        optimizer = M.build_optimizer(cfg.optimizer, model)
        scheduler = M.build_scheduler(cfg.get("scheduler"), optimizer)
        history = list(st.get("history", []))
        M.load_scheduler_state(scheduler, st.get("scheduler"), [r["val_loss"] for r in history])
        if opt_state is not None:
            try:
                optimizer.load_state_dict(opt_state)
            except (ValueError, TypeError) as exc:
                # grucy names the buffer ("exp_avg_sq must be finite"), not the file: a
                # traceback.txt, as if the runner had failed
                raise ConfigError(f"resume={resume}: the optimizer state stored in it is damaged "
                                  f"({exc}); the file was edited or not written by the runner") from None
        best_val, best_epoch, bad_epochs = st.get("best_val", math.inf), st.get("best_epoch", 0), st.get("bad_epochs", 0)
        start = int(st.get("epoch", len(history)))
        _carry_timing(history, Path(resume).parent / "metrics.csv")
    else:
        model = M.build_model(cfg.model, data.input_size, data.output_size, seed)
        optimizer = M.build_optimizer(cfg.optimizer, model)
        scheduler = M.build_scheduler(cfg.get("scheduler"), optimizer)
    if begin is not None:
        begin()
    if resume is not None:
        # The new directory starts as the old run left it, so it is a complete run even if
        # no epoch is left to train (resuming a finished run, e.g. a requeued cluster job)
        if Path(resume).parent.resolve() != out_dir.resolve():
            for name, dest in (("best.npz", best_path), (Path(resume).name, last_path)):
                if (Path(resume).parent / name).is_file():
                    outputs.copy_file(Path(resume).parent / name, dest)
            outputs.write_metrics(out_dir / "metrics.csv", history)
        log.info("resumed from %s at epoch %d", resume, start)

    n = len(data.train)
    bs = int(t.batch_size)
    clip = t.clip_grad_norm      # read once: an OmegaConf attribute costs ~10 us, per batch
    clip_value = t.clip_grad_value
    progress = Progress(t.epochs)   # quiet=true mutes the console handler (runner.app)
    patience = t.early_stopping.patience
    data_digests = digests(data)   # once: the data does not change during the run
    # a list, in channel order: what an evaluation normalises each input with (stored_input_stats)
    input_stats = [{"name": k, "mean": m, "std": sd} for k, (m, sd) in data.input_stats.items()]
    stopped_early = False
    epochs_this_run = 0

    def state(epoch):
        return {"runner": {"epoch": epoch, "best_val": best_val, "best_epoch": best_epoch,
                           "bad_epochs": bad_epochs, "scheduler": M.scheduler_state(scheduler),
                           "threads": threads, **({} if shaping is None else {"overrides": shaping}),
                           "history": [{k: v for k, v in r.items() if k not in outputs.TIMING_COLUMNS}
                                       for r in history]},
                "config": model_cfg, "data": {"mean": data.mean, "std": data.std, "task": data.task,
                         "digests": data_digests, "inputs": input_stats}}

    for epoch in range(start + 1, t.epochs + 1):
        if patience is not None and bad_epochs >= patience:
            stopped_early = True
            break
        if t.stop_after is not None and epochs_this_run >= t.stop_after:
            log.info("stopping after %d epochs as asked (trainer.stop_after); continue with: %s",
                     epochs_this_run, f"resume={last_path}" if shaping is None
                     else command(shaping, threads, last_path, model_cfg.get("name")))
            break
        tic = time.perf_counter()
        perm = np.random.default_rng([seed, epoch]).permutation(n)
        model.train()
        total, norms = 0.0, []
        lr = M.get_lr(optimizer)
        for b, i in enumerate(range(0, n, bs)):
            idx = np.sort(perm[i:i + bs])   # sorted: gathers read memory in order
            xb, yb = time_major(data.train.x[idx], getattr(model, "dtype", None)), data.train.y[idx]
            model.zero_grad()
            pred = model.forward(xb)
            loss, dpred = lossf(pred, yb)
            loss = float(loss)
            if not math.isfinite(loss):
                raise NonFiniteLoss(f"training loss became {loss} at epoch {epoch}, batch {b + 1}; "
                                    f"try {_smaller(lr, optimizer, clip, training=True)}; "
                                    f"last good checkpoint: {last_path if epoch > 1 else 'none'}")
            model.backward(dpred)
            norm = M.clip_gradients(model.gradients(), clip)
            M.clip_gradient_values(model.gradients(), clip_value)   # after: grad_norm is unclipped
            if norm is not None:
                norms.append(norm)
            optimizer.step(model.gradients())
            total += loss * len(idx)
        train_loss = total / n
        val_pred = predict(model, data.val, t.eval_batch_size)
        val_loss = float(lossf(val_pred.astype(data.val.y.dtype), data.val.y)[0])
        if not math.isfinite(val_loss):
            raise NonFiniteLoss(f"validation loss became {val_loss} at epoch {epoch}; "
                                f"try {_smaller(lr, optimizer, clip, training=False)}; "
                                f"last good checkpoint: {last_path if epoch > 1 else 'none'}")
        val_rmse = baselines.scores(val_pred, data.val.y, data.std)["rmse"]
        secs = time.perf_counter() - tic
        row = {"epoch": epoch, "train_loss": train_loss, "val_loss": val_loss, "val_rmse": val_rmse,
               "lr": lr, "grad_norm": float(np.mean(norms)) if norms else None,
               "epoch_time": secs, "seqs_per_sec": n / secs if secs > 0 else None}
        history.append(row)
        epochs_this_run += 1
        M.scheduler_step(scheduler, val_loss)
        with interrupts_deferred():               # the epoch's records, all or none
            if val_loss < best_val - t.early_stopping.min_delta:
                best_val, best_epoch, bad_epochs = val_loss, epoch, 0
                M.save_checkpoint(best_path, model, optimizer, state(epoch))
            else:
                bad_epochs += 1
            M.save_checkpoint(last_path, model, optimizer, state(epoch))
            outputs.write_metrics(out_dir / "metrics.csv", history)
            progress.epoch(row, epochs_this_run, t.epochs - epoch)
        if patience is not None and bad_epochs >= patience and epoch < t.epochs:
            stopped_early = True
            break
    if stopped_early:
        log.info("early stopping: no val improvement for %d epochs (best epoch %d)", patience, best_epoch)
    complete = stopped_early or (bool(history) and history[-1]["epoch"] >= t.epochs)
    return {"history": history, "best_epoch": best_epoch, "best_val_loss": best_val,
            "stopped_early": stopped_early, "complete": complete,
            "best_path": best_path, "last_path": last_path, "model": model}


# How a run was invoked, not what it computes: left out of checkpoints, so a resumed
# run's checkpoint equals an uninterrupted one's.
INVOCATION_KEYS = ("resume", "ckpt_path", "train", "quiet", "plots", "threads")


def run_config(cfg) -> dict:
    """The resolved config stored in checkpoints."""
    out = OmegaConf.to_container(cfg, resolve=True)
    for key in INVOCATION_KEYS:
        out.pop(key, None)
    out.get("trainer", {}).pop("stop_after", None)
    return out


# Stored in checkpoints but only labels the outputs (plot titles, the default run dir).
LABEL_KEYS = ("name",)


def _override_key(override) -> str:
    """'+model.init@x=..' -> 'model.init'; '--config-dir=..' -> '--config-dir'."""
    return re.match(r"[~+]*([^=]*)", override).group(1).split("@")[0]


def result_overrides(overrides) -> list:
    """The command-line overrides a resume must repeat (``--config-path=``, ``--config-dir=``
    and ``--config-name=`` included, runner.app adds them): all but how the run was invoked
    (INVOCATION_KEYS, trainer.stop_after), its label (name), where it wrote (hydra.* but
    hydra.searchpath, which finds configs; hydra/launcher) and the search that chose it
    (hparams_search: a single run refuses it, and its trial's values are overrides of their
    own; a search config that sets other keys too gets them spelt out by
    :func:`check_resume`'s refusal). threads is left to :func:`command`, which passes the
    count in use."""
    skip = set(INVOCATION_KEYS) | set(LABEL_KEYS) | {"trainer.stop_after", "hparams_search"}
    kept = []
    for o in overrides or ():
        key = _override_key(o)
        hydra = key == "hydra" or key.startswith(("hydra.", "hydra/"))
        if key in skip or (hydra and key != "hydra.searchpath"):
            continue
        kept.append(o)
    return kept


def _hydra_quoted(value: str) -> str:
    """``value`` as one Hydra override value that composes back to exactly ``value``: as
    it is where Hydra reads it so (a path, a plain name), else single-quoted (a run
    directory named 'a,b' made resume= a list; name=1.50 is '1.5', name=true 'True'),
    with the escapes of Hydra's quoted strings (a quote, and the backslashes before one or
    at the end, each escaped) and of OmegaConf's interpolations (a ``${`` and the
    backslashes before it)."""
    if re.fullmatch(r"[A-Za-z0-9_./:+-]*", value) and _parsed(value) == value:
        return value
    body = re.sub(r"(\\*)\$\{", lambda m: m.group(1) * 2 + "\\${", value)
    body = re.sub(r"(\\*)'", lambda m: m.group(1) * 2 + "\\'", body)
    body = re.sub(r"(\\+)$", lambda m: m.group(1) * 2, body)
    return f"'{body}'"


def _parsed(value: str):
    """What Hydra makes of ``key=value`` (``1`` a number, ``null`` None); None if it refuses."""
    from hydra.core.override_parser.overrides_parser import OverridesParser
    try:
        return OverridesParser.create().parse_override(f"key={value}").value()
    except Exception:
        return None


def command(overrides, threads, path, name=None) -> str:
    """The shell command that continues the run whose checkpoint is ``path``: its stored
    ``overrides``, its ``name`` and BLAS ``threads``, each quoted for the shell, then
    resume=. A hint of resume= alone was refused for every setting the original command line
    changed; one without name= put the continued run under the config's default name."""
    args = (list(overrides) + ([f"name={_hydra_quoted(str(name))}"] if name else [])
            + ([f"threads={threads}"] if threads else []) + [f"resume={_hydra_quoted(str(path))}"])
    return " ".join(["python -m runner"] + [shlex.quote(str(a)) for a in args])


def resume_command(path):
    """:func:`command` for a run directory or checkpoint ``path``, read from its last.npz;
    None if it has none, or one from before the overrides were stored."""
    try:
        meta = M.load_checkpoint(outputs.checkpoint_file(path, "last.npz"))[2]
    except Exception:   # missing or unreadable: the caller says it the old way
        return None
    st = meta.get("runner") or {}
    if "overrides" not in st:
        return None
    return command(st["overrides"], st.get("threads"), path, (meta.get("config") or {}).get("name"))


def _override_value(value):
    """A config value as Hydra override syntax, or None where that is not simple to say."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    if isinstance(value, int) or (isinstance(value, float) and math.isfinite(value)):
        return repr(value)
    if isinstance(value, str) and not re.search(r"['\\$]", value):
        return f"'{value}'"          # quoted: '30' stays a string, 'a,b' one value
    return None


_ABSENT = object()   # a key one of two configs does not have (not the same as null)


def _differences(saved, current, prefix=""):
    """Dotted keys whose values differ between two config dicts, with both values; _ABSENT
    where a dict lacks the key."""
    if isinstance(saved, dict) and isinstance(current, dict):
        for key in sorted(set(saved) | set(current), key=str):
            yield from _differences(saved.get(key, _ABSENT), current.get(key, _ABSENT), f"{prefix}{key}.")
    elif saved != current:
        yield prefix.rstrip("."), saved, current


def _difference(key, saved, current) -> str:
    """One line of a refused resume. A key only one side has came with another option of a
    group (optimizer=sgd's momentum): "used None" for it read as a setting of null."""
    if saved is _ABSENT:
        return f"{key} is {current!r}, a key the checkpoint's run did not have"
    if current is _ABSENT:
        return f"{key} is not set, but the checkpoint's run used {saved!r}"
    return f"{key} is {current!r} but the checkpoint's run used {saved!r}"


def _class_defaults(saved, current):
    """``saved`` with each group's keys that only ``current`` has filled in by the default of
    the class both name: a checkpoint written before the schema had a key (optimizer.dampening,
    scheduler.threshold) ran with that default, and resuming it is no different for them.
    The trainer has no class: its keys are filled in by the schema's defaults
    (trainer.clip_grad_value, null: a run from before it clipped no values)."""
    out = dict(saved)
    a, b = saved.get("trainer"), current.get("trainer")
    if isinstance(a, dict) and isinstance(b, dict):
        defaults = dataclasses.asdict(schema.TrainerConfig())
        out["trainer"] = {**{k: v for k, v in defaults.items() if k in b and k not in a}, **a}
    for group in ("model", "data", "optimizer", "scheduler"):
        a, b = saved.get(group), current.get(group)
        if not (isinstance(a, dict) and isinstance(b, dict) and a.get("_target_") == b.get("_target_")):
            continue
        try:
            params = inspect.signature(get_method(a["_target_"])).parameters
        except Exception:   # not importable here: compare the keys as they are
            continue
        # a tuple default (CSVSeries' inputs=()) is the list a config holds
        out[group] = {**{k: list(p.default) if isinstance(p.default, tuple) else p.default
                         for k, p in params.items()
                         if k in b and k not in a and p.default is not inspect.Parameter.empty}, **a}
    return out


def _check_state(path, meta) -> None:
    """Refuse a runner state no run writes (a damaged or hand-edited checkpoint): a string
    epoch ended the resume in int()'s ValueError, a history of numbers in a TypeError, both
    with traceback.txt; a negative epoch trained the run over again from epoch 0, one past
    ``epochs`` trained nothing and recorded the run "interrupted", and a NaN best_val, which
    no loss is below, kept the resumed epochs from ever writing best.npz."""
    def count(v, most):
        return isinstance(v, int) and not isinstance(v, bool) and 0 <= v <= most

    def number(v):
        return isinstance(v, (int, float)) and not isinstance(v, bool) and not math.isnan(v)

    st, config, bad = meta["runner"], meta["config"], []
    if not isinstance(config, dict) or not isinstance(st, dict):
        bad.append(f"its {'config' if not isinstance(config, dict) else 'run state'} is a "
                   f"{type(config if not isinstance(config, dict) else st).__name__}, not a mapping")
    else:
        history = st.get("history", [])
        if not (isinstance(history, list)
                and all(isinstance(r, dict) and number(r.get("val_loss")) for r in history)):
            bad.append(f"history {history!r:.60} is not a list of epochs with their val_loss")
            history = []
        # the checkpoint run's own trainer.epochs: the command line's may differ (refused
        # below, by name, as any setting)
        trainer = config.get("trainer")
        epochs = trainer.get("epochs") if isinstance(trainer, dict) else None
        if not count(epochs, math.inf):
            epochs = math.inf
        epoch = st.get("epoch", len(history))
        if not count(epoch, epochs):
            bad.append(f"epoch {epoch!r} is not a whole number from 0 to its trainer.epochs={epochs}")
        else:
            bad += [f"{key} {st[key]!r} is not a whole number from 0 to its epoch {epoch}"
                    for key in ("best_epoch", "bad_epochs") if key in st and not count(st[key], epoch)]
        if "best_val" in st and not number(st["best_val"]):
            bad.append(f"best_val {st['best_val']!r} is not a number")
    if bad:
        raise ConfigError(f"resume={path}: the run state stored in it is damaged ({'; '.join(bad)}); "
                          "the file was edited or not written by the runner")


def check_resume(cfg, path, meta) -> None:
    """Refuse resuming from ``path`` (its checkpoint ``meta``) under a config whose results
    would differ from the uninterrupted run's. tasks.fit calls it before loading the data,
    so a refused resume costs no data load and no baseline fits, and hands the checked
    checkpoint to train().

    Every stored setting is compared, not a list of them: a list missed
    trainer.early_stopping and trainer.eval_batch_size, and would miss the next key added.
    """
    if not meta.get("config") or not meta.get("runner"):
        # saved by grucy itself: every setting would differ from "None", and the message
        # asked for "the same overrides as the original run", which there never was
        raise ConfigError(f"resume={path}: not a checkpoint written by the runner (no run state to "
                          f"continue); evaluate it with train=false ckpt_path={path}")
    _check_state(path, meta)
    current = {k: v for k, v in run_config(cfg).items() if k not in LABEL_KEYS}
    saved = _class_defaults({k: v for k, v in meta["config"].items() if k not in LABEL_KEYS}, current)
    # every difference at once: one per attempt sent the user round the loop once per key
    differences = list(_differences(saved, current))
    if isinstance((meta.get("data") or {}).get("digests"), dict):
        # the data itself is compared once loaded (check_resume_data): data.path as text
        # refused ./a.csv for a.csv, and a resume from any other working directory
        differences = [d for d in differences if d[0] != "data.path"]
    problems = [_difference(*d) for d in differences]
    # BLAS threads split the products differently, which changes the last digits
    st = meta["runner"]
    threads, saved_threads = grucy.get_num_threads(), st.get("threads")
    if saved_threads is not None and saved_threads != threads:
        problems.append(f"threads is {threads} (BLAS threads in use) but the checkpoint's run used "
                        f"{saved_threads}, which changes the results' last digits")
    if not problems:
        return
    if "overrides" in st:
        # a setting that differs though no stored override sets it (a search config's, or
        # a config file's edited since) is spelt out too, as far as an override can say it;
        # not a key the checkpoint's config lacks: it came with another option of a group
        # (optimizer=sgd's momentum, resumed with the default adam), and key=null for it
        # made the printed command one Hydra refuses ("Key 'momentum' not in 'AdamConfig'")
        given = {_override_key(o) for o in st["overrides"]}
        said = [(key, _override_value(a)) for key, a, b in differences
                if key not in given and b is not _ABSENT and a is not _ABSENT]
        extra = [f"{key}={value}" for key, value in said if value is not None]
        fix = ("run it with the original run's overrides: "
               + command(st["overrides"] + extra, saved_threads, path, meta["config"].get("name")))
    else:   # a checkpoint from before the overrides were stored
        fix = ("pass the same overrides as the original run (its summary.json lists them)"
               + (f" and threads={saved_threads}" if saved_threads is not None else ""))
    raise ConfigError(f"resume={path}: {'; '.join(problems)}; {fix}")


def stored_stats(meta, where):
    """The training part's ``(mean, std)`` a runner checkpoint's ``meta`` stores, or None
    (not the runner's, or written before they were stored). ``where`` names the checkpoint
    (``resume=...``) in the ConfigError for values no run stores: a string there ended an
    evaluation in a bare "could not convert string to float"."""
    stored = (meta.get("data") or {}) if meta.get("runner") else {}
    if not {"mean", "std"} <= set(stored):
        return None
    mean, std = stored["mean"], stored["std"]
    if not (all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
                for v in (mean, std)) and std > 0):
        raise ConfigError(f"{where}: the checkpoint's stored normalisation (mean {mean!r}, std "
                          f"{std!r}) is not a finite mean and a positive std; the file is "
                          "damaged or was not written by the runner")
    return float(mean), float(std)


def stored_input_stats(meta, where):
    """Each input series' ``{name: (mean, std)}`` a runner checkpoint's ``meta`` stores, in
    channel order; ``{}`` for a run without inputs or from before they were stored, None
    where :func:`stored_stats` is None. ``where`` as there."""
    if stored_stats(meta, where) is None:
        return None
    out = {}
    for entry in meta["data"].get("inputs") or []:
        ok = (isinstance(entry, dict) and isinstance(entry.get("name"), str)
              and entry["name"] not in out
              and all(isinstance(entry.get(k), (int, float)) and not isinstance(entry.get(k), bool)
                      and math.isfinite(entry[k]) for k in ("mean", "std"))
              and entry["std"] > 0)
        if not ok:
            raise ConfigError(f"{where}: the checkpoint's stored normalisation of an input ({entry!r:.80}) "
                              "is not a name with a finite mean and a positive std; the file is "
                              "damaged or was not written by the runner")
        out[entry["name"]] = (float(entry["mean"]), float(entry["std"]))
    return out


def check_resume_data(path, meta, data: Prepared) -> None:
    """Refuse resuming on data other than the checkpoint's run trained on.

    The config can be the same while the file it names is not (data.path rewritten or
    extended since): the run went on, normalised differently, and its results were
    neither the original run's nor a fresh one's. Every runner checkpoint stores the
    training part's mean and standard deviation, and a digest of each split (see
    runner.datasets.digests): a changed validation row or swapped training rows leave the
    mean and standard deviation as they were. A checkpoint from before the digests were
    stored is checked by the statistics alone.
    """
    stats = stored_stats(meta, f"resume={path}")
    if stats is None:
        return
    stored = meta["data"]
    what = [f"the training part's {key} is {getattr(data, key)!r}, it was {value!r}"
            for key, value in zip(("mean", "std"), stats)
            if not math.isclose(value, getattr(data, key), rel_tol=1e-12, abs_tol=0.0)]
    if isinstance(stored.get("digests"), dict):
        now = digests(data)
        changed = [SPLIT_NAMES[k] for k in SPLIT_NAMES if stored["digests"].get(k) != now[k]]
        if changed:
            names = ", ".join(changed[:-1]) + " and " + changed[-1] if len(changed) > 1 else changed[0]
            what.append(f"the {names} windows differ")
    if what:
        raise ConfigError(f"resume={path}: the data differs from the checkpoint's run ({'; '.join(what)}): "
                          "the file or series changed since; resume on the same data, or start a new run")


def _carry_timing(history, metrics_path):
    """Keep the original run's wall-clock columns for the epochs it already did."""
    if not metrics_path.is_file():
        return
    try:
        old = {r["epoch"]: r for r in outputs.read_metrics(metrics_path)}
    except (OSError, ValueError, KeyError, TypeError) as exc:
        # a file edited by hand failed the resume with a bare "could not convert string to
        # float"; the columns are wall-clock times only (the numbers come from the checkpoint)
        log.warning("%s is unreadable (%s); the earlier epochs' timing columns are left empty",
                    metrics_path, exc)
        old = {}
    for r in history:
        for c in outputs.TIMING_COLUMNS:
            r[c] = (old.get(r["epoch"]) or {}).get(c)
