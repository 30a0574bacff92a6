"""What a run does: ``fit`` (train, then score the best checkpoint on the test split) and
``evaluate`` (forecast from a saved checkpoint without training). Each returns the fields
it adds to summary.json.
"""
import inspect
import logging
import re
from pathlib import Path

from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from runner import baselines, model as M, outputs, stored, trainer
from runner.config import ConfigError, check_target, user_path
from runner.datasets import DataError, Prepared
from runner.rundir import safe_name
from runner.sweep import SWEEP_ID, resumed_sweep

log = logging.getLogger("runner")

# numpy's ValueErrors for an array larger than any it can allocate
NUMPY_TOO_BIG = r"Maximum allowed dimension exceeded|array is too big"


def load_data(cfg_data, stats=None, input_stats=None) -> Prepared:
    """The dataset ``cfg_data`` names, loaded. ``stats``: the ``(mean, std)`` a checkpoint's
    model was trained with, to normalise with instead of this data's own (an evaluation);
    ``input_stats``: its ``{name: (mean, std)}`` of each input series, likewise."""
    dataset = instantiate(cfg_data, _convert_="all")
    if not callable(getattr(dataset, "load", None)):
        # a _target_ naming some other class failed on ".load()" with an AttributeError
        # and traceback.txt
        raise ConfigError(f"data._target_={cfg_data['_target_']!r}: {type(dataset).__name__} has no load() "
                          "method; a dataset's load() returns a runner.datasets.Prepared (README.md, "
                          '"Your own dataset, model or optimizer")')
    params = inspect.signature(dataset.load).parameters
    takes_stats = stats is not None and "stats" in params
    kwargs = {"stats": stats} if takes_stats else {}
    if input_stats is not None and "input_stats" in params:
        kwargs["input_stats"] = input_stats
    try:
        data = dataset.load(**kwargs)
    except MemoryError as exc:   # data.length=10**12: numpy's error named no key
        raise M._too_large("data", cfg_data, exc, "load") from None
    except ValueError as exc:
        # past what numpy can even ask for (data.length=2**63, data.n_train=2**62): a
        # ValueError in its words, naming no key, and a traceback.txt
        if not re.match(NUMPY_TOO_BIG, str(exc)):
            raise
        raise M._too_large("data", cfg_data, exc, "load") from None
    if input_stats and "input_stats" not in kwargs and getattr(data, "input_stats", {}) != input_stats:
        # a user's own load(): the model would read its input channels scaled otherwise
        raise ConfigError(f"data._target_={cfg_data['_target_']!r}: the model was trained on input "
                          f"series normalised with {input_stats!r}, this data's are "
                          f"{getattr(data, 'input_stats', {})!r}, and {type(dataset).__name__}.load() "
                          "takes no input_stats={name: (mean, std)} to use the model's "
                          "(runner.datasets.SeriesDataset.load does)")
    if stats is not None and not takes_stats and (data.mean, data.std) != tuple(stats):
        # a user's own load(): the model would read inputs scaled otherwise than in training
        raise ConfigError(f"data._target_={cfg_data['_target_']!r}: the model was trained on data "
                          f"normalised with mean {stats[0]!r} and std {stats[1]!r}, this data's are "
                          f"{data.mean!r} and {data.std!r}, and {type(dataset).__name__}.load() takes no "
                          "stats=(mean, std) to use the model's (runner.datasets.SeriesDataset.load does)")
    log.info("data %s: %d train, %d val, %d test examples; input %d%s, output %d",
             cfg_data._target_ if hasattr(cfg_data, "_target_") else cfg_data["_target_"],
             len(data.train), len(data.val), len(data.test), data.input_size,
             _channels(data), data.output_size)
    return data


def _channels(data: Prepared) -> str:
    """' (series, 'temp', 'hour', sin, cos)': what each input channel is, in order, where
    data.inputs adds channels (the input count alone left a user to guess which read
    what); '' without them."""
    names = list(getattr(data, "input_stats", None) or {})
    if not names:
        return ""
    parts = ["series", *map(repr, names)]
    if data.input_size == len(parts) + 2:       # a period's seasonal pair, after the inputs
        parts += ["sin", "cos"]
    return f" ({', '.join(parts)})" if data.input_size == len(parts) else ""


def _resume_path(resume) -> Path:
    p = outputs.checkpoint_file(resume, "last.npz")
    if p.exists() and not p.is_file():     # a pipe said "no checkpoint there", which it is not
        raise ConfigError(f"resume={resume}: not a regular file (expected a last.npz or its run directory)")
    if not p.is_file():
        # the README's way back when last.npz is lost; the refusal did not mention it
        raise ConfigError(f"resume={resume}: no checkpoint there (expected a last.npz or its run "
                          f"directory){outputs.best_fallback(p)}")
    return p


def score_split(model, split, data, batch_size):
    pred = trainer.predict(model, split, batch_size)
    return pred, baselines.scores(pred, split.y, data.std)


def _original_units(data: Prepared, exact, z):
    """(values, their text for predictions.csv) in the series' units: the dataset's own
    values when it kept them (``exact``), else de-normalised ``z`` with only the digits
    its precision carries."""
    if exact is not None:
        return exact, exact
    return data.to_original(z), outputs.decimals(z, data.mean, data.std)


def fit_baselines(data: Prepared):
    """``(the baselines' test scores, the linear fit to plot)``: AR's and ARX's ``(order,
    coef)`` are fitted once, for their scores and the forecast plot's line, which is
    ``("ARX", order, coef)`` with data.inputs (the linear model of the columns the GRU
    reads: AR's line beside it made a GRU with the inputs' help look better than it was),
    else ``("AR", order, coef)``; None for a regression task."""
    if data.task != "forecast":
        return baselines.evaluate(data), None
    ar, arx = baselines.best_ar(data), baselines.best_arx(data)
    return baselines.evaluate(data, ar, arx), (("ARX", *arx) if arx else ("AR", *ar))


def _linear_forecast(data: Prepared, linear):
    """``(label, test forecasts in original units, step 1)`` of fit_baselines' ``linear``."""
    name, order, coef = linear
    x = data.test.x
    pred = (baselines.predict_arx(coef, x, 1 + len(data.input_stats)) if name == "ARX"
            else baselines.predict_ar(coef, x))
    return f"{name}({order})", data.to_original(pred[:, 0])


def report(model, data: Prepared, out_dir: Path, cfg, linear) -> dict:
    """Test and val scores, predictions.csv and the forecast plot for one model. ``linear``:
    fit_baselines' linear fit."""
    bs = int(cfg.trainer.eval_batch_size)
    _, val = score_split(model, data.val, data, bs)
    pred, test = score_split(model, data.test, data, bs)
    split = data.test
    truth, truth_text = _original_units(data, split.target, split.y)
    persist, persist_text = (_original_units(data, split.last, split.x[:, -1, 0])
                             if data.task == "forecast" else (None, None))
    fc = data.to_original(pred)
    outputs.write_predictions(out_dir / "predictions.csv", split.labels, truth_text,
                              outputs.decimals(pred, data.mean, data.std), persist_text)
    if cfg.get("plots", True):
        extra = {}
        if persist is not None:
            extra["persistence"] = persist
            label, values = _linear_forecast(data, linear)
            extra[label] = values
        h = data.output_size      # the plot shows step 1; the RMSE is over every step
        over = f" over {h} steps (step 1 shown)" if h > 1 else ""
        outputs.plot_forecast(out_dir / "forecast.png", truth, fc, extra,
                              title=f"{cfg.get('name', '')}: test RMSE {test['rmse']:.4g}{over}")
    if data.task == "regression":
        test["mse"] = test["rmse"] ** 2
        val["mse"] = val["rmse"] ** 2
    return {"val": val, "test": test}


def _log_result(res, base):
    parts = [f"test rmse {res['test']['rmse']:.4g} (mae {res['test']['mae']:.4g})"]
    for name, b in base.items():
        parts.append(f"{name}{'(' + str(b['order']) + ')' if 'order' in b else ''} {b['rmse']:.4g}")
    log.info(" | ".join(parts))


def _normalisation(data: Prepared, source) -> dict:
    """summary.json's ``normalisation``: the series' mean and std, whether ``from`` the
    checkpoint or the data, and each input's under ``inputs``."""
    out = {"mean": data.mean, "std": data.std, "from": source}
    if data.input_stats:
        out["inputs"] = {k: {"mean": m, "std": sd} for k, (m, sd) in data.input_stats.items()}
    return out


def _unstarted_job(resume, out_dir: Path, sweep_dir):
    """The earlier sweep's directory if ``resume=`` names this sweep job's own place in it
    and no checkpoint was ever written there, else None.

    ``resume=<sweep>/${hydra:job.num}`` continues every job of a sweep, and was refused for
    each job the sweep had not started (stopped by Ctrl-C or a time limit) or stopped before
    its first epoch ended. Such a job has nothing to continue there, so it starts from
    scratch, or from the sweep that sweep resumed (:func:`_resumed_place`).
    Only when the place is exactly this job's (the path ends in this job's directory
    relative to its sweep's, e.g. ``1``) inside a runner sweep's directory (one holding a
    .sweep_id), and the job directory there holds no best.npz or last.npz: a mistyped
    sweep directory, a single run's resume=, or a job directory whose last.npz was lost
    is refused as before, never trained from scratch.
    """
    own = _job_place(out_dir, sweep_dir)
    if not own:                 # no multirun, or a job in the sweep directory itself
        return None
    place = user_path(resume)
    if place.parts[-len(own):] != own:
        return None
    earlier = Path(*place.parts[:-len(own)]) if len(place.parts) > len(own) else Path(".")
    if not (earlier / SWEEP_ID).is_file() or (place.exists() and not place.is_dir()):
        return None
    if _has_checkpoint(place):
        return None
    return earlier


def _job_place(out_dir: Path, sweep_dir):
    """The job directory's parts relative to its sweep's (``("1",)``, ``("j", "1")``), or
    None outside a multirun or for a subdir leading outside the sweep directory."""
    if sweep_dir is None:
        return None
    try:
        return Path(out_dir).resolve().relative_to(Path(sweep_dir).resolve()).parts
    except ValueError:
        return None


def _has_checkpoint(place: Path) -> bool:
    """Whether a job directory holds progress to continue: a best.npz or a last.npz."""
    return any((place / name).exists() for name in ("best.npz", "last.npz"))


def _resumed_place(earlier, own):
    """This job's place in the sweep ``earlier`` resumed, or the one that sweep resumed, and
    so on: the first holding a best.npz or last.npz, else None. ``own``: the job's
    directory relative to its sweep's.

    A sweep that resumed another and was stopped too never started some of its jobs: the
    sweep resuming it found nothing of theirs there, and started them from scratch, though
    the sweep before held their progress. Each sweep records the one it resumed
    (runner.sweep.RESUMED)."""
    seen = {Path(earlier).resolve()}
    sweep = resumed_sweep(earlier)
    while sweep is not None and sweep not in seen:      # a loop of records ends, none found
        seen.add(sweep)
        place = sweep.joinpath(*own)
        if _has_checkpoint(place):
            return place
        sweep = resumed_sweep(sweep)
    return None


def fit(cfg, out_dir: Path, partial=None, begin=None, overrides=None, sweep_dir=None) -> dict:
    """``partial`` (a dict) receives the baselines early, so a failed run still reports them;
    ``begin()`` (runner.app's, with ``begin.done``) is called before anything is written (see
    runner.trainer.train); ``overrides``: the command line's, stored in the checkpoints;
    ``sweep_dir``: the sweep's directory in a multirun (see :func:`_unstarted_job`)."""
    # a missing, unreadable or incompatible resume= fails before the data is loaded and the
    # baselines fitted
    resume = None
    if cfg.get("resume"):
        earlier = _unstarted_job(cfg.resume, out_dir, sweep_dir)
        if earlier is None:
            resume = _resume_path(cfg.resume)
        else:
            place = _resumed_place(earlier, _job_place(out_dir, sweep_dir))
            if place is not None:
                # refused as any resume if its config differs, or its last.npz is lost
                log.warning("resume=%s: this job of the sweep in %s never wrote a checkpoint "
                            "there; continuing from %s, which that sweep resumed",
                            cfg.resume, earlier, place)
                resume = _resume_path(place)
            else:
                log.warning("resume=%s: this job of the sweep in %s never wrote a checkpoint "
                            "there; starting it from scratch", cfg.resume, earlier)
    checkpoint = None
    if resume is not None:
        checkpoint = M.load_checkpoint(resume, key="resume")
        stored.typed_resume_data(checkpoint[2], resume)
        trainer.check_resume(cfg, resume, checkpoint[2])
    data = load_data(cfg.data)
    if checkpoint is not None:
        trainer.check_resume_data(resume, checkpoint[2], data)
    base, linear = fit_baselines(data)
    if partial is not None:
        partial["baselines"] = base
    try:
        result = trainer.train(cfg, data, out_dir, resume=resume, checkpoint=checkpoint,
                               begin=begin, overrides=overrides)
    except MemoryError as exc:
        # the model and data were built (their sizes are checked there): what is left is a
        # batch's activations, caches and gradients. numpy's "Unable to allocate 2.56 GiB"
        # named no key and left traceback.txt
        t, hidden = cfg.trainer, (cfg.get("model") or {}).get("hidden_size")
        raise ConfigError(f"trainer: too large to train ({exc}); reduce trainer.batch_size="
                          f"{t.batch_size} or trainer.eval_batch_size={t.eval_batch_size}"
                          + (f" (or model.hidden_size={hidden})" if hidden else "")) from None
    finally:
        # a refused run leaves the earlier run's metrics.csv: not this run's losses to plot
        rows = _history_rows(out_dir) if begin is None or begin.done else None
        if rows and cfg.get("plots", True):
            outputs.plot_losses(out_dir / "loss.png", rows, title=str(cfg.get("name", "")))
    best = result["best_path"]
    model = M.load_checkpoint(best)[0] if best.is_file() else result["model"]
    res = report(model, data, out_dir, cfg, linear)
    _log_result(res, base)
    out = {"baselines": base, "params": M.count_params(model), "epochs_run": len(result["history"]),
           "best_epoch": result["best_epoch"], "stopped_early": result["stopped_early"],
           "normalisation": _normalisation(data, "data"),
           # relative to out_dir, so that they name its own files wherever it is moved
           "checkpoint": outputs.stored_path(best, out_dir),
           "last_checkpoint": outputs.stored_path(result["last_path"], out_dir), **res}
    out["status"] = "ok" if result["complete"] else "interrupted"
    return out


def _history_rows(out_dir):
    p = out_dir / "metrics.csv"
    return outputs.read_metrics(p) if p.is_file() else []


def _on_command_line(overrides, key) -> bool:
    """Whether ``key`` was set on the command line (``key=``, ``+key=`` or ``++key=``)."""
    return any(re.match(rf"\+{{0,2}}{re.escape(key)}=", o) for o in overrides or ())


def evaluated_config(cfg, saved: dict, overrides=()) -> DictConfig:
    """The config an evaluation ran: the checkpoint's stored one (its model, data and name,
    and how it was trained), with this command line's own settings (train, ckpt_path,
    plots, ...), and trainer.eval_batch_size if it gives one (else the stored one).

    Two keys given on the command line win over the stored ones: ``name``, which labels
    this evaluation like a resumed run's, and ``data.path``, for a series whose stored
    relative path is read from another directory than the one the run started in.
    """
    out = OmegaConf.to_container(cfg, resolve=True)
    kept = dict(saved)
    if _on_command_line(overrides, "name"):
        kept.pop("name", None)
    if isinstance(kept.get("trainer"), dict):
        # the checkpoint run's eval_batch_size unless this command line gives one: the batch
        # splits the products differently, so the schema's default of 512 changed the last
        # digits of the test scores of a run that used another, which the evaluation should
        # reproduce
        own = ({"eval_batch_size": cfg.trainer.eval_batch_size}
               if _on_command_line(overrides, "trainer.eval_batch_size")
               or "eval_batch_size" not in kept["trainer"] else {})
        kept["trainer"] = {**kept["trainer"], **own, "stop_after": cfg.trainer.get("stop_after")}
    out.update(kept)   # whole groups: a stored model or data config is not mixed with the command line's
    if "data" in saved and _on_command_line(overrides, "data.path"):
        if "path" not in saved["data"]:
            raise ConfigError(f"data.path={cfg.data.path}: the checkpoint's data "
                              f"({saved['data'].get('_target_')}) reads no file")
        out["data"] = {**saved["data"], "path": cfg.data.path}
    return OmegaConf.create(out)


# What an evaluation takes from its command line; every other setting is the checkpoint's
EVAL_OWN = {"train", "ckpt_path", "name", "data.path", "trainer.eval_batch_size", "plots",
            "quiet", "threads"}


def _ignored(overrides) -> list:
    """The overrides an evaluation of a runner checkpoint does not use."""
    out = []
    for o in overrides or ():
        key = trainer._override_key(o)
        if key not in EVAL_OWN and key != "hydra" and not key.startswith(("hydra.", "hydra/", "-")):
            out.append(o)
    return out


def _check_fits(model, data: Prepared, path, cfg_data) -> None:
    """Refuse a model that cannot forecast ``data``, naming what differs.

    A runner checkpoint brings its own data config, so it fits; one saved by grucy itself
    is evaluated on the command line's data, and a mismatch failed inside the model with
    a ValueError and a traceback.txt.
    """
    conf = model.config() if hasattr(model, "config") else {}
    needed = {"input_size": data.input_size, "output_size": data.output_size,
              "mode": "many_to_one", "batch_first": False}
    for key, value in needed.items():
        if key in conf and conf[key] != value:
            raise ConfigError(f"ckpt_path={path}: the model has {key}={conf[key]!r}, but the data "
                              f"({cfg_data.get('_target_')}) needs {key}={value!r}")


def evaluate(cfg, out_dir: Path, partial=None, overrides=(), begin=None) -> dict:
    """Forecast the test split from ``cfg.ckpt_path`` with the checkpoint's data config.

    config.yaml is rewritten with :func:`evaluated_config`, and ``partial`` (a dict)
    receives its name and seed early, so that what the evaluation writes describes the
    model evaluated, not the data, model and seed chosen on the command line. ``begin()``
    is called once the checkpoint and its data are found to fit, before anything is written.
    """
    path = outputs.checkpoint_file(cfg.ckpt_path, "best.npz")
    if path.exists() and not path.is_file() and not path.is_dir():   # said "no such checkpoint"
        raise ConfigError(f"ckpt_path={cfg.ckpt_path}: not a regular file (expected a checkpoint "
                          ".npz, or a run directory holding best.npz)")
    if not path.is_file():
        if user_path(cfg.ckpt_path).is_dir():
            # a directory given: "no such checkpoint" read as if the directory were missing
            raise ConfigError(f"ckpt_path={cfg.ckpt_path}: a directory without best.npz (expected a "
                              "checkpoint .npz, or a run directory holding best.npz)")
        raise ConfigError(f"ckpt_path={cfg.ckpt_path}: no such checkpoint")
    model, _, meta = M.load_checkpoint(path, key="ckpt_path")      # meta: {} if none
    saved = stored.saved_config(meta, path)
    # how this command line would give the file, for a checkpoint's data.path not found
    path_override = "data.path" if "path" in (cfg.get("data") or {}) else "+data.path"
    path_is_stored = "path" in (saved.get("data") or {}) and not _on_command_line(overrides, "data.path")
    if saved and not safe_name(saved.get("name", "x")):
        # a forged name wrote the evaluation outside outputs/ (runner.rundir.run_name keeps
        # the default for the directory; the summary would still have carried it)
        raise ConfigError(f"ckpt_path={path}: the checkpoint's name {saved['name']!r:.80} "
                          "leads outside outputs/ (a damaged or forged checkpoint)")
    ignored = _ignored(overrides) if saved else []
    if saved and _on_command_line(overrides, "data.inputs"):
        given = list((cfg.get("data") or {}).get("inputs") or [])
        trained = list((saved.get("data") or {}).get("inputs") or [])
        if given != trained:
            # not left unused like other data settings: the model reads its channels by
            # position, so these inputs cannot be evaluated with it at all
            raise ConfigError(f"data.inputs={given}: the checkpoint's model was trained with "
                              f"data.inputs={trained}, and an evaluation reads those columns (the "
                              "same, in that order; data.path=FILE names another file holding them)")
        # the checkpoint's own list: the evaluation reads those columns, so it was not "not
        # used" (the warning read as if they were left out)
        ignored = [o for o in ignored if trainer._override_key(o) != "data.inputs"]
    cfg = evaluated_config(cfg, saved, overrides)
    if "data" not in saved:
        # validate() let data=csv's required keys wait for the checkpoint's data config; one
        # saved by grucy itself has none (MissingMandatoryValue and traceback.txt)
        unset = [k for k in cfg.data if OmegaConf.is_missing(cfg.data, k)]
        if unset:
            raise ConfigError(f"ckpt_path={path}: holds no run config (saved by grucy itself), so "
                              f"it is evaluated on the command line's data, which needs "
                              f"{', '.join('data.' + k for k in unset)}")
    try:
        # the stored data config names a class of that run's, maybe a user's own not
        # importable here: Hydra's ImportError was an unexpected error with traceback.txt
        target = check_target(cfg.data, "data")
    except ConfigError as exc:
        raise ConfigError(f"ckpt_path={path}: the checkpoint's {exc}") from None
    if "data" in saved:
        cfg.data = stored.check_data(cfg.data, target, path)
    if ignored:
        # data=mackey_glass or model.hidden_size=64 changed nothing, without a word
        log.warning("an evaluation uses the checkpoint's own data, model and settings (only "
                    "name, data.path and trainer.eval_batch_size come from the command line); "
                    "not used: %s", " ".join(ignored))
    if partial is not None:
        partial["name"], partial["seed"] = cfg.get("name"), cfg.get("seed")
    # the model expects the scaling it was trained with: data other than its run's (a longer
    # CSV) is normalised with the stored statistics, not its own training part's
    stats = trainer.stored_stats(meta, f"ckpt_path={path}")
    input_stats = trainer.stored_input_stats(meta, f"ckpt_path={path}")
    try:
        data = load_data(cfg.data, stats, input_stats)
    except DataError as exc:
        if not (path_is_stored and str(exc).startswith("data.path=")):
            raise
        # "data.path='load.csv': no such file" did not say where the path came from, nor how
        # to give another
        raise DataError(f"{exc}; this data.path is the checkpoint's (where its run read the series): "
                        f"give the file with {path_override}=FILE") from None
    _check_fits(model, data, path, cfg.data)
    if begin is not None:
        begin()
    outputs.atomic_write(out_dir / "config.yaml", OmegaConf.to_yaml(cfg))
    source = "checkpoint" if stats is not None else "data"
    # each input too: the series' scaling alone left a user guessing how the input
    # channels were read
    inputs = "".join(f"{', ' if i else '; inputs '}{k!r} mean {m!r} std {sd!r}"
                     for i, (k, (m, sd)) in enumerate(data.input_stats.items()))
    log.info("normalised with the %s's training mean %r and std %r%s", source, data.mean, data.std, inputs)
    base, linear = fit_baselines(data)
    res = report(model, data, out_dir, cfg, linear)
    _log_result(res, base)
    log.info("predictions written to %s", out_dir / "predictions.csv")
    return {"status": "ok", "mode": "evaluate", "checkpoint": outputs.stored_path(path, out_dir),
            "name": cfg.get("name"),
            "seed": cfg.get("seed"), "baselines": base, "params": M.count_params(model),
            "normalisation": _normalisation(data, source), **res}
