"""Helpers for tests and notebooks: compose the runner's config in-process, shrunk."""
from hydra import compose as _compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from omegaconf import OmegaConf, open_dict

from runner.config import config_dir

# Small enough that a run takes a fraction of a second.
TINY = {
    "sine": ["data.length=300", "data.window=8"],
    "mackey_glass": ["data.length=300", "data.window=8"],
    "elnino": ["data.window=8"],
    "csv": ["data.window=8"],
    "adding": ["data.seq_len=10", "data.n_train=64", "data.n_val=16", "data.n_test=32"],
}
TINY_TRAINER = ["trainer.epochs=2", "trainer.batch_size=16", "model.hidden_size=4",
                "plots=false", "quiet=true", "name=test"]


def compose(overrides=(), config_name="config", return_hydra_config=False):
    """The composed config for ``overrides``, as ``python -m runner`` would build it."""
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=config_dir(), version_base="1.3"):
        cfg = _compose(config_name, overrides=list(overrides), return_hydra_config=True)
    # the default name reads ${hydra:runtime.choices...}, which only resolves inside a Hydra
    # run: without this, run(compose([...]), out_dir) failed on it before writing anything
    if "name" in cfg and "${hydra:" in str(OmegaConf.to_container(cfg, resolve=False)["name"]):
        choices = cfg.hydra.runtime.choices
        cfg.name = f"{choices.get('data')}-{choices.get('model')}"
    if not return_hydra_config:
        with open_dict(cfg):
            del cfg["hydra"]
    return cfg


def tiny(data="sine", extra=()):
    """Overrides for a run of ``data`` on tiny settings."""
    return [f"data={data}"] + TINY.get(data, []) + TINY_TRAINER + list(extra)
