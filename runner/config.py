"""Where the configs live, and checks that run before anything is built.

The runner's configs are the repository's ``conf/`` when the runner runs from a checkout
(so edits there take effect at once), else the copy installed as ``runner/conf`` package
data by ``pip install .``.
"""
import dataclasses
import importlib
import inspect
import math
from pathlib import Path

import hydra.utils
import numpy as np
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import InterpolationResolutionError

from runner import schema

PACKAGE_DIR = Path(__file__).resolve().parent


class ConfigError(ValueError):
    """A config that cannot run; the message is one line naming the key."""


def config_dir() -> str:
    """Absolute path of the directory holding config.yaml: the installed package's own
    runner/conf first, then a checkout's conf/ beside runner/ (an installed copy looked there
    first, that is in site-packages/conf, where any other package's config.yaml won)."""
    for candidate in (PACKAGE_DIR / "conf", PACKAGE_DIR.parent / "conf"):
        if (candidate / "config.yaml").is_file():
            return str(candidate)
    raise FileNotFoundError(
        f"runner configs not found: neither {PACKAGE_DIR / 'conf'} nor "
        f"{PACKAGE_DIR.parent / 'conf'} has config.yaml (reinstall grucy with its runner extra)")


def bundled_data(name: str) -> Path:
    """A data file shipped inside the runner package."""
    return PACKAGE_DIR / "data" / name


def user_path(value) -> Path:
    """A path the user gave (``data.path``, ``resume=``, ``ckpt_path=``), as they meant it:
    ``~`` expanded, and a relative path taken from the directory the command ran in, also
    under ``hydra.job.chdir=true``, which moves the job into its output directory before
    the runner starts (Hydra's own advice there is ``to_absolute_path``). Without chdir, or
    outside a Hydra job (a dataset built in Python), a relative path stays relative, so
    messages can show it as typed."""
    p = Path(str(value)).expanduser()
    if p.is_absolute():
        return p
    if HydraConfig.initialized() and HydraConfig.get().job.chdir:
        return Path(HydraConfig.get().runtime.cwd) / p
    return p


def check_target(node: DictConfig, where: str, extra=()):
    """Fail with one line if ``node`` has keys its ``_target_`` does not accept; return the
    target, imported.

    Built-in options are already typed by their schema; this catches typos in a user's
    own options too. ``extra`` names arguments the runner passes itself (or relies on the
    default of), which the config may not set.
    """
    if node is None or "_target_" not in node:
        keys = ", ".join(str(k) for k in node or ())
        # scheduler=none experiment=elnino: the experiment's factor and patience, meant for
        # its plateau scheduler, landed on the empty option, and the bare message said
        # nothing of where they came from
        came = (f", though it sets {keys}: give the option a _target_ (module.Class), or, if "
                f"these are an experiment's settings for another {where} option, choose that one"
                if keys else "")
        raise ConfigError(f"{where}: no _target_ naming the class to use{came}")
    try:
        target = hydra.utils.get_method(node._target_) if "." in node._target_ else None
    except Exception as exc:  # ImportError, AttributeError, hydra's own wrappers
        raise ConfigError(f"{where}._target_={node._target_!r} cannot be imported: "
                          f"{_import_problem(node._target_) or str(exc).splitlines()[0]}") from None
    if target is None:
        raise ConfigError(f"{where}._target_={node._target_!r} is not a dotted path")
    params = accepted_arguments(target)
    if params is None:
        return target
    for key in node:
        if key.startswith("_") and key.endswith("_"):
            continue
        if key in extra:
            # the runner's own value won (+model.seed=5 trained with the run's seed, silently)
            # or clashed with it ("got multiple values for argument 'params'")
            raise ConfigError(f"{where}.{key}: set by the runner, not by the config; remove it"
                              + (" (the run's seed= seeds the model)" if key == "seed" else ""))
        if key not in params:
            allowed = sorted(k for k in params if k not in extra and k != "self")
            raise ConfigError(f"{where}.{key}: {node._target_} takes no argument {key!r} "
                              f"(allowed: {', '.join(allowed)})")
    return target


def _import_problem(path):
    """What is wrong with the dotted ``path``, said plainly, or None. Hydra's first line was
    only "Error loading 'grucy.models.Nope':"; the rest names a module grucy.models.Nope."""
    module, _, name = path.rpartition(".")
    try:
        found = importlib.import_module(module)
    except Exception as exc:
        return f"module {module!r} cannot be imported ({type(exc).__name__}: {exc})"
    if not hasattr(found, name):
        return f"module {module!r} has no {name!r}"
    return None


def accepted_arguments(target):
    """Names ``target`` accepts, following ``**kwargs`` up a class's bases; None = anything."""
    owners = [c for c in target.__mro__ if c is not object] if inspect.isclass(target) else [target]
    names = set()
    for owner in owners:
        func = owner.__init__ if inspect.isclass(owner) else owner
        if inspect.isclass(owner) and "__init__" not in vars(owner):
            continue
        try:
            params = inspect.signature(func).parameters
        except (TypeError, ValueError):
            return None
        names.update(k for k, p in params.items() if p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL))
        if not any(p.kind is p.VAR_KEYWORD for p in params.values()):
            return names
    return None


def _check_known_keys(node: DictConfig, schema_cls, where: str) -> None:
    """Reject keys the schema does not know in the run and trainer settings.

    The schema stops ``trainer.epoch=3``, but Hydra's own hint for that error is
    ``+trainer.epoch=3``, which adds the key past the schema; nothing would read it.
    Group nodes (model, data, ...) are checked against their class by check_target.
    """
    fields = {f.name: f for f in dataclasses.fields(schema_cls)}
    for key in node:
        if key not in fields:
            raise ConfigError(f"{where}{key}: unknown setting (known: {', '.join(sorted(fields))})")
    for key in fields:
        if key not in node:
            # ~seed (or ~trainer) on the command line deletes the key: reading it
            # raised OmegaConf's ConfigAttributeError, an unexpected error with traceback.txt
            raise ConfigError(f"{where}{key}: removed (~{where}{key}), but every run needs it: "
                              f"drop ~{where}{key}")
        sub = fields[key].type
        if dataclasses.is_dataclass(sub) and isinstance(node[key], DictConfig):
            _check_known_keys(node[key], sub, f"{where}{key}.")


def resolve(cfg: DictConfig) -> None:
    """``OmegaConf.resolve(cfg)``; an interpolation that does not resolve (``${nope}``, an unset
    ``${oc.env:VAR}``, ``${a}x`` for a number) is a ConfigError naming its key.

    OmegaConf's own error named no key for most of these, and as an unexpected error it
    left a traceback.txt for a typo on the command line.
    """
    try:
        OmegaConf.resolve(cfg)
    except InterpolationResolutionError as exc:
        key, raw = _unresolvable(cfg)
        raise ConfigError(f"{key or exc.full_key or '?'}={raw if key else '...'}: cannot be resolved: "
                          f"{resolution_reason(exc)}") from None


def resolution_reason(exc) -> str:
    """OmegaConf's reason an interpolation does not resolve, on one line: its message
    without the full_key/object_type tail it appends."""
    return " ".join(str(getattr(exc, "msg", None) or exc).split("full_key:")[0].split())


def _unresolvable(cfg: DictConfig):
    """``(key, its interpolation)`` of the first value in ``cfg`` that does not resolve,
    found through the public API: the unresolved values, then each interpolation selected."""
    def first(raw, where):
        pairs = raw.items() if isinstance(raw, dict) else enumerate(raw)
        for k, value in pairs:
            key = (f"{where}.{k}" if where else str(k)) if isinstance(raw, dict) else f"{where}[{k}]"
            if isinstance(value, (dict, list)):
                found = first(value, key)
                if found:
                    return found
            elif isinstance(value, str) and "${" in value:
                try:
                    OmegaConf.select(cfg, key, throw_on_resolution_failure=True)
                except InterpolationResolutionError:
                    return key, value
        return None
    return first(OmegaConf.to_container(cfg, resolve=False), "") or (None, None)


PLATEAU = "grucy.optim.ReduceLROnPlateau"
COSINES = ("grucy.optim.CosineAnnealingLR", "runner.model.warmup_cosine")   # decay to eta_min


def validate(cfg: DictConfig) -> None:
    """The checks a run needs before data is loaded or a model built."""
    missing = sorted(OmegaConf.missing_keys(cfg))
    if not cfg.train:
        # an evaluation takes its data config from the checkpoint: "data=csv data.path=FILE"
        # was refused for want of a data.column the checkpoint already has
        missing = [m for m in missing if not m.startswith("data.")]
    if missing:
        raise ConfigError(f"{', '.join(missing)} {'is' if len(missing) == 1 else 'are'} required "
                          f"(no default): add {' '.join(m + '=...' for m in missing)}")
    _check_known_keys(cfg, schema.RunConfig, "")
    if not str(cfg.name).strip():
        # name= (or name='') left out the directory level: the run went to outputs/<date_time>
        raise ConfigError(f"name={cfg.name!r}: must be a non-empty label (a run is written to "
                          "outputs/<name>/<date_time>); leave name out for <data>-<model>")
    if cfg.train:   # an evaluation takes the checkpoint's data config (and data.path: runner.tasks)
        check_target(cfg.data, "data")
    # batch_first: the trainer feeds time-major (T, B, I) batches
    check_target(cfg.model, "model",
                 extra=("input_size", "output_size", "mode", "activation", "seed", "batch_first"))
    m = cfg.model
    if isinstance(m.get("dtype"), str):
        # f8, double and '<f8' build the same model as float64 but were stored as written,
        # so a resume that said float64 was refused as a different setting
        try:
            name = np.dtype(m.dtype).name
        except TypeError:   # not a dtype: runner.model says what it expects
            name = None
        if name in ("float32", "float64"):
            m.dtype = name
    if m.get("_target_") == "grucy.models.SequenceModel" and m.get("dropout") and m.get("num_layers") == 1:
        # grucy drops out between stacked layers only: on one layer it changed nothing, and a
        # sweep over model.dropout gave identical runs (a user's own model may mean otherwise)
        raise ConfigError(f"model.dropout={m.dropout}: applies between stacked layers, so it has no "
                          "effect with model.num_layers=1; set num_layers >= 2 or dropout=0")
    check_target(cfg.optimizer, "optimizer", extra=("params",))
    if cfg.get("scheduler"):
        check_target(cfg.scheduler, "scheduler", extra=("optimizer",))
    sched = cfg.get("scheduler")
    if sched and sched.get("_target_") == PLATEAU and sched.get("mode", "min") != "min":
        # mode=max halved the learning rate while the validation loss fell: "max" waits for
        # the metric to rise, and the runner steps it with a loss. Refused rather than left
        # out of the schema: +scheduler.mode=max passed the schema, and check_target allows it.
        raise ConfigError(f"scheduler.mode={sched.mode!r}: the runner steps the plateau scheduler "
                          "with the validation loss, which falls as the model improves; only 'min' fits")
    if (sched and sched.get("_target_") in COSINES
            and sched.get("eta_min", 0.0) > cfg.optimizer.get("lr", math.inf)):
        # eta_min=1.0 over lr=0.01 took the rate 0.01 -> 0.155 -> 0.505: an annealing that
        # raises the learning rate is a typo, not a schedule (torch allows it; the runner asks)
        raise ConfigError(f"scheduler.eta_min={sched.eta_min}: above optimizer.lr="
                          f"{cfg.optimizer.lr}, so cosine annealing would raise the learning "
                          "rate; eta_min is the rate it decays to")
    for group, later in (("optimizer", "the model's parameters"), ("scheduler", "the optimizer")):
        # false made Hydra call the class at once, without them: a TypeError, traceback.txt
        if cfg.get(group) and cfg[group].get("_partial_") is not True:
            raise ConfigError(f"{group}._partial_={cfg[group].get('_partial_')}: must be true, the "
                              f"runner builds the {group} later with {later}")
    t = cfg.trainer
    if t.loss not in ("mse", "mae"):
        raise ConfigError(f"trainer.loss={t.loss!r}: expected 'mse' or 'mae'")
    for key in ("epochs", "batch_size", "eval_batch_size"):
        if t[key] < 1:
            raise ConfigError(f"trainer.{key}={t[key]}: must be at least 1")
    # 0 or less would stop before the first epoch and report an untrained model as a result
    for key, value in (("early_stopping.patience", t.early_stopping.patience), ("stop_after", t.stop_after)):
        if value is not None and value < 1:
            raise ConfigError(f"trainer.{key}={value}: must be at least 1 (or null for off)")
    for key in ("clip_grad_norm", "clip_grad_value"):
        if t[key] is not None and not 0 < t[key] < math.inf:
            # grucy's own message names its argument (max_norm, clip_value), not the key to
            # change; 0 would zero every gradient, and inf is what null says
            raise ConfigError(f"trainer.{key}={t[key]}: must be positive and finite "
                              "(or null for no clipping)")
    if not 0 <= t.early_stopping.min_delta < math.inf:
        # nan passed a "< 0" test, and then no epoch counted as an improvement: no best.npz
        raise ConfigError(f"trainer.early_stopping.min_delta={t.early_stopping.min_delta}: "
                          "must be >= 0 and finite")
    if cfg.seed < 0:
        # numpy's generators (shuffling, grucy's initialisation) take no negative seed
        raise ConfigError(f"seed={cfg.seed}: must be >= 0")
    if cfg.threads is not None and cfg.threads < 1:
        raise ConfigError(f"threads={cfg.threads}: must be at least 1 (or null for auto)")
    if not cfg.train and not cfg.ckpt_path:
        raise ConfigError("train=false needs ckpt_path=<a checkpoint .npz> to evaluate")
    if not cfg.train and cfg.resume:
        # an evaluation ignored it: the model evaluated was ckpt_path's, whatever resume= said
        raise ConfigError(f"resume={cfg.resume} trains on from a run, and train=false trains nothing: "
                          "drop one (evaluate a run's model with ckpt_path=<run dir>/best.npz)")
    if cfg.train and cfg.ckpt_path:
        # training ignored it: a user who meant "start from this checkpoint" got a fresh model
        raise ConfigError(f"ckpt_path={cfg.ckpt_path} is read only with train=false (evaluate "
                          "it); to continue training from a run, use resume=<its last.npz>")


schema.register()
