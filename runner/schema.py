"""Typed config schemas: what each config node may contain.

Hydra merges every YAML onto the dataclass named in its defaults list, so a misspelt key
or a value of the wrong type fails at composition time, before any data is built. The
root schema types the trainer and run settings; each built-in group option extends one
of the group schemas below via ``defaults: [/schema/<group>/<name>@_here_]``.

A user's own option (one class plus one YAML in their config dir) needs no schema: its
keys are checked against the class signature by :func:`runner.config.check_target`.
"""
from dataclasses import dataclass, field
from typing import Any, List, Optional

from hydra.core.config_store import ConfigStore
from omegaconf import MISSING


# ----------------------------------------------------------------------------- data
@dataclass
class SeriesDataConfig:
    _target_: str = MISSING
    window: int = 32            # input steps per example
    horizon: int = 1            # future steps predicted per example
    val_fraction: float = 0.1   # of the series, just before the test split
    test_fraction: float = 0.2  # the last part of the series
    # add sin/cos(2*pi*t/period) input channels (seasonality); a float: 365.25 for a year
    # of daily values
    period: Optional[float] = None


@dataclass
class SineConfig(SeriesDataConfig):
    _target_: str = "runner.datasets.Sine"
    length: int = 2000
    frequency: float = 0.04     # cycles per step
    amplitude: float = 1.0
    noise: float = 0.02
    seed: int = 0


@dataclass
class MackeyGlassConfig(SeriesDataConfig):
    _target_: str = "runner.datasets.MackeyGlass"
    length: int = 2000
    tau: int = 17
    beta: float = 0.2
    gamma: float = 0.1
    exponent: float = 10.0
    sample_every: float = 1.0   # time units between samples
    dt: float = 0.1             # integration step
    noise: float = 0.0
    seed: int = 0


@dataclass
class CSVConfig(SeriesDataConfig):
    _target_: str = "runner.datasets.CSVSeries"
    path: str = MISSING
    column: str = MISSING
    time_column: Optional[str] = None
    # other columns read beside column as input channels (covariates), each normalised by
    # its own training part; column stays the one forecast
    inputs: List[str] = field(default_factory=list)


@dataclass
class AddingConfig:
    _target_: str = "runner.datasets.Adding"
    seq_len: int = 50
    n_train: int = 4000
    n_val: int = 500
    n_test: int = 1000
    seed: int = 0


# ---------------------------------------------------------------------------- model
@dataclass
class GRUConfig:
    _target_: str = "grucy.models.SequenceModel"
    hidden_size: int = 32
    num_layers: int = 1
    bidirectional: bool = False
    reset_after: bool = False
    bias: bool = True             # False: no GRU biases (torch's bias=False)
    dropout: float = 0.0
    init: Any = "pytorch"         # a scheme name, or a dict of overrides (grucy.init)
    dtype: str = "float32"


# ------------------------------------------------------------------------ optimizer
@dataclass
class OptimizerConfig:
    _target_: str = MISSING
    _partial_: bool = True      # called later with the model's parameters
    lr: float = 1e-3
    weight_decay: float = 0.0


@dataclass
class SGDConfig(OptimizerConfig):
    _target_: str = "grucy.optim.SGD"
    lr: float = 0.05
    momentum: float = 0.9
    dampening: float = 0.0
    nesterov: bool = False


@dataclass
class AdamConfig(OptimizerConfig):
    _target_: str = "grucy.optim.Adam"
    lr: float = 0.01
    betas: List[float] = field(default_factory=lambda: [0.9, 0.999])
    eps: float = 1e-8
    amsgrad: bool = False


@dataclass
class AdamWConfig(AdamConfig):
    _target_: str = "grucy.optim.AdamW"
    weight_decay: float = 0.01


@dataclass
class RMSpropConfig(OptimizerConfig):
    _target_: str = "grucy.optim.RMSprop"
    lr: float = 0.005
    alpha: float = 0.99
    eps: float = 1e-8
    momentum: float = 0.0
    centered: bool = False


# ------------------------------------------------------------------------ scheduler
@dataclass
class StepLRConfig:
    _target_: str = "grucy.optim.StepLR"
    _partial_: bool = True      # called later with the optimizer
    step_size: int = 10
    gamma: float = 0.5


@dataclass
class CosineConfig:
    _target_: str = "grucy.optim.CosineAnnealingLR"
    _partial_: bool = True
    T_max: int = MISSING
    eta_min: float = 0.0


@dataclass
class LinearLRConfig:
    _target_: str = "grucy.optim.LinearLR"
    _partial_: bool = True
    start_factor: float = 1.0 / 3
    end_factor: float = 1.0
    total_iters: int = 5


@dataclass
class WarmupCosineConfig:
    _target_: str = "runner.model.warmup_cosine"
    _partial_: bool = True
    warmup_epochs: int = 5        # linear warm-up from start_factor x optimizer.lr
    epochs: int = MISSING         # the run's: the cosine decays over epochs - warmup_epochs
    start_factor: float = 1.0 / 3
    eta_min: float = 0.0


@dataclass
class PlateauConfig:
    _target_: str = "grucy.optim.ReduceLROnPlateau"
    _partial_: bool = True
    # "min" only: the runner steps it with the validation loss (runner.config.validate)
    mode: str = "min"
    factor: float = 0.5
    patience: int = 3
    threshold: float = 1e-4
    threshold_mode: str = "rel"   # rel | abs
    cooldown: int = 0
    min_lr: float = 0.0
    eps: float = 1e-8


# -------------------------------------------------------------------------- trainer
@dataclass
class EarlyStoppingConfig:
    patience: Optional[int] = None  # epochs without val improvement before stopping; null = off
    min_delta: float = 0.0          # improvement smaller than this does not count


@dataclass
class TrainerConfig:
    epochs: int = 30
    batch_size: int = 32
    eval_batch_size: int = 512
    loss: str = "mse"                      # mse | mae (grucy.losses)
    clip_grad_norm: Optional[float] = 1.0  # null = no clipping
    # each gradient element into [-value, value], after clip_grad_norm; null = no clipping
    clip_grad_value: Optional[float] = None
    early_stopping: EarlyStoppingConfig = field(default_factory=EarlyStoppingConfig)
    # Stop cleanly after this many epochs in this invocation, leaving last.npz to resume
    # from (e.g. to fit a cluster time limit). null = run to the end.
    stop_after: Optional[int] = None


@dataclass
class RunConfig:
    model: Any = MISSING
    data: Any = MISSING
    optimizer: Any = MISSING
    scheduler: Any = None
    trainer: TrainerConfig = field(default_factory=TrainerConfig)
    name: str = "run"
    seed: int = 0
    threads: Optional[int] = None  # BLAS threads per job; null = runner.app.choose_threads
    quiet: bool = False            # no per-epoch lines on the terminal (the log keeps them)
    plots: bool = True
    train: bool = True             # false + ckpt_path: evaluate a checkpoint, no training
    ckpt_path: Optional[str] = None
    resume: Optional[str] = None   # a last.npz (or its run directory) to continue from


def register() -> None:
    """Put the schemas into Hydra's ConfigStore (idempotent)."""
    cs = ConfigStore.instance()
    cs.store(name="config_schema", node=RunConfig)
    for group, name, node in [
        ("data", "series", SeriesDataConfig),
        ("data", "sine", SineConfig),
        ("data", "mackey_glass", MackeyGlassConfig),
        ("data", "csv", CSVConfig),
        ("data", "adding", AddingConfig),
        ("model", "gru", GRUConfig),
        ("optimizer", "sgd", SGDConfig),
        ("optimizer", "adam", AdamConfig),
        ("optimizer", "adamw", AdamWConfig),
        ("optimizer", "rmsprop", RMSpropConfig),
        ("scheduler", "step", StepLRConfig),
        ("scheduler", "cosine", CosineConfig),
        ("scheduler", "linear", LinearLRConfig),
        ("scheduler", "warmup_cosine", WarmupCosineConfig),
        ("scheduler", "plateau", PlateauConfig),
        ("trainer", "trainer", TrainerConfig),
    ]:
        cs.store(group=f"schema/{group}", name=name, node=node)
