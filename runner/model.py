"""The one place where the runner meets grucy's library API.

Everything the trainer does to a model, an optimizer, a scheduler, a loss or a
checkpoint goes through these functions, so a change in the library is one edit here.
Every matrix product of a training step happens inside grucy (its own BLAS: README.md,
"Kernels", on the two-pool trap).
"""
import inspect
import math
import re
from pathlib import Path

import numpy as np
from hydra.errors import InstantiationException
from hydra.utils import get_method, instantiate
from omegaconf import DictConfig, OmegaConf

import grucy
import grucy.io
import grucy.losses
import grucy.optim
from runner import outputs
from runner.config import ConfigError, accepted_arguments


def build_model(cfg_model: DictConfig, input_size: int, output_size: int, seed: int):
    """A many-to-one sequence model: (T, B, input_size) -> (B, output_size)."""
    node = OmegaConf.to_container(cfg_model, resolve=True)
    kwargs = dict(input_size=input_size, output_size=output_size, seed=seed)
    if "dtype" in node:
        try:
            kwargs["dtype"] = np.dtype(node["dtype"]).type
        except TypeError:   # numpy's "data type 'foo' not understood" names no key
            raise ConfigError(f"model.dtype={node['dtype']!r}: expected float32 or float64") from None
    # a user's own model class gets these only if it takes them (None: it takes **kwargs)
    params = accepted_arguments(get_method(node["_target_"]))
    lacks = [k for k in ("input_size", "output_size", "seed") if params is not None and k not in params]
    if lacks:   # model._target_=grucy.GRU failed inside Hydra with a TypeError and traceback.txt
        raise ConfigError(f"model._target_={node['_target_']!r} takes no {', '.join(lacks)}: the "
                          "runner builds a forecaster, (T, B, input_size) -> (B, output_size), "
                          "passing input_size, output_size and seed; use grucy.models.SequenceModel "
                          "or a class of your own that takes them")
    if params is None or "mode" in params:
        kwargs["mode"] = "many_to_one"
    if params is None or "activation" in params:
        kwargs["activation"] = "identity"
    return _construct("model", node, lambda: instantiate(node, **kwargs))


def build_optimizer(cfg_opt: DictConfig, model):
    factory = instantiate(cfg_opt, _convert_="all")
    return _construct("optimizer", cfg_opt, lambda: factory(model.parameters()))


def build_scheduler(cfg_sched, optimizer):
    if not cfg_sched:
        return None
    factory = instantiate(cfg_sched, _convert_="all")
    return _construct("scheduler", cfg_sched, lambda: factory(optimizer))


def warmup_cosine(optimizer, warmup_epochs, epochs, start_factor=1.0 / 3, eta_min=0.0):
    """``scheduler=warmup_cosine``: a linear warm-up from ``start_factor`` times the rate over
    ``warmup_epochs``, then a cosine decay to ``eta_min`` over the rest of the run's
    ``epochs``, as grucy's (and torch's) SequentialLR of a LinearLR and a CosineAnnealingLR.

    warmup_epochs is checked here, by its name: LinearLR's and CosineAnnealingLR's own
    messages would name total_iters and T_max, keys the config does not have."""
    if not 1 <= warmup_epochs < epochs:
        # epochs is scheduler.epochs, the run's trainer.epochs unless the command line set
        # it: calling it trainer.epochs named a value that key did not have
        raise ValueError(f"warmup_epochs must be at least 1 and below epochs ({epochs}: "
                         f"scheduler.epochs, by default the run's trainer.epochs), leaving the "
                         f"decay an epoch, got {warmup_epochs}")
    warm = grucy.optim.LinearLR(optimizer, start_factor=start_factor, total_iters=warmup_epochs)
    decay = grucy.optim.CosineAnnealingLR(optimizer, T_max=epochs - warmup_epochs, eta_min=eta_min)
    return grucy.optim.SequentialLR(optimizer, [warm, decay], milestones=[warmup_epochs])


def _construct(group, node, build):
    """``build()``; a value error naming one of ``node``'s keys becomes a ConfigError.

    grucy checks its arguments and names them ("hidden_size must be >= 1, got 0"), but
    not the config key to change, and as a plain ValueError the run looked like a crash
    (traceback.txt). Errors that name no configured key (a bug in a user's class, say)
    are left as they are.
    """
    try:
        return build()
    except MemoryError as exc:
        raise _too_large(group, node, exc) from None
    except (ValueError, TypeError, InstantiationException) as exc:
        cause = exc.__cause__ if isinstance(exc, InstantiationException) else exc
        if isinstance(cause, MemoryError):
            raise _too_large(group, node, cause) from None
        if not isinstance(cause, (ValueError, TypeError)) or isinstance(cause, ConfigError):
            raise
        values = OmegaConf.to_container(node, resolve=True) if isinstance(node, DictConfig) else node
        text = " ".join(str(cause).split())
        name = re.match(r"\w+", text)
        key = name.group(0) if name else None
        if key is None or key.startswith("_") or key not in values:
            raise
        if text.startswith(f"{key} must "):
            text = text[len(key) + 1:]   # the key is named just before it
        raise ConfigError(f"{group}.{key}={values[key]!r}: {text}") from None


def _too_large(group, node, exc, what="build") -> ConfigError:
    """numpy's "Unable to allocate 213. PiB for an array with shape (300000000, 100000000)"
    named no key and left a traceback.txt: name the sizes configured, what to change."""
    values = OmegaConf.to_container(node, resolve=True) if isinstance(node, DictConfig) else node
    ints = {k: v for k, v in values.items() if isinstance(v, int) and not isinstance(v, bool)
            and not str(k).startswith("_") and "seed" not in str(k)}
    sizes = [f"{group}.{k}={v}" for k, v in sorted(ints.items(), key=lambda kv: -kv[1])]   # largest first
    return ConfigError(f"{group}: too large to {what} ({exc}); reduce "
                       f"{' or '.join(sizes) if sizes else 'its sizes'}")


def scheduler_step(scheduler, val_loss: float) -> None:
    """Advance one epoch; a plateau scheduler is told the validation loss."""
    if scheduler is None:
        return
    if _wants_metric(scheduler):
        scheduler.step(val_loss)
    else:
        scheduler.step()


def _wants_metric(scheduler) -> bool:
    try:
        params = [p for p in inspect.signature(scheduler.step).parameters.values()
                  if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    except (TypeError, ValueError):
        return False
    return bool(params) and params[0].default is inspect.Parameter.empty


def scheduler_state(scheduler):
    if scheduler is not None and hasattr(scheduler, "state_dict"):
        return _jsonable(scheduler.state_dict())
    return None


def load_scheduler_state(scheduler, state, val_history):
    """Restore a scheduler: from its state dict when it has one, else by replaying epochs."""
    if scheduler is None:
        return
    if state is not None and hasattr(scheduler, "load_state_dict"):
        scheduler.load_state_dict(state)
    else:
        for v in val_history:
            scheduler_step(scheduler, v)


def get_lr(optimizer) -> float:
    return float(optimizer.lr)


def loss_fn(name: str):
    """``loss(pred, target) -> (float, dpred)`` from grucy.losses."""
    return getattr(grucy.losses, name)


def clip_gradients(grads, max_norm):
    """Clip ``grads`` to ``max_norm`` (None: leave them); return their global L2 norm before
    clipping either way: metrics.csv's grad_norm was empty whenever clipping was off."""
    if max_norm:
        return float(grucy.optim.clip_grad_norm(grads, max_norm))
    return math.sqrt(sum(float(np.square(g, dtype=np.float64).sum()) for g in grads.values() if g is not None))


def clip_gradient_values(grads, max_value):
    """Clip every element of ``grads`` into [-max_value, max_value] (None: leave them)."""
    if max_value is not None:
        grucy.optim.clip_grad_value(grads, max_value)


def count_params(model) -> int:
    return int(sum(p.size for p in model.parameters().values()))


def save_checkpoint(path: Path, model, optimizer=None, metadata=None) -> None:
    """grucy's .npz checkpoint (no pickle; grucy writes it atomically)."""
    grucy.io.save(str(path), model, optimizer=optimizer, metadata=_jsonable(metadata))


def load_checkpoint(path, key=None):
    """-> (model, optimizer_state, metadata).

    ``key`` (``"ckpt_path"``, ``"resume"``): the setting that named ``path``; a file that is
    not a grucy checkpoint is then a ConfigError under that key, not an unexpected error.
    """
    try:
        ck = grucy.io.load(str(path))
    except ValueError as exc:
        if key is None:
            raise
        # a damaged last.npz: the run's best.npz is the way back (README), if it has one
        hint = outputs.best_fallback(path) if key == "resume" else ""
        raise ConfigError(f"{key}={path}: {exc}{hint}") from None
    if key is not None:
        # no run saves one (a NaN loss stops it first): an evaluation of it wrote NaN
        # forecasts and null scores as "ok", and a resume blamed the learning rate
        for name, value in ck.model.parameters().items():
            if not np.isfinite(value).all():
                hint = outputs.best_fallback(path) if key == "resume" else ""
                raise ConfigError(f"{key}={path}: parameter {name!r} holds NaN or infinite values; "
                                  f"the file is damaged or was not written by the runner{hint}")
    return ck.model, ck.optimizer_state, ck.metadata or {}


def _jsonable(obj):
    """Plain JSON types (numpy scalars and arrays become floats and lists)."""
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, np.generic):
        return obj.item()
    return obj
