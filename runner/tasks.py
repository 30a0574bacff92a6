"""What a run does: ``fit`` (train, then score the best checkpoint on the test split) and
``evaluate`` (forecast from a saved checkpoint without training). Each returns the fields
it adds to summary.json.
"""
import logging
from pathlib import Path

from hydra.utils import instantiate
from omegaconf import OmegaConf

from runner import baselines, model as M, outputs, trainer
from runner.config import ConfigError
from runner.datasets import Prepared

log = logging.getLogger("runner")


def load_data(cfg_data) -> Prepared:
    data = instantiate(cfg_data, _convert_="all").load()
    log.info("data %s: %d train, %d val, %d test examples; input %d, output %d",
             cfg_data._target_ if hasattr(cfg_data, "_target_") else cfg_data["_target_"],
             len(data.train), len(data.val), len(data.test), data.input_size, data.output_size)
    return data


def _resume_path(resume) -> Path:
    p = Path(str(resume)).expanduser()
    if p.is_dir():
        p = p / "last.npz"
    if not p.is_file():
        raise ConfigError(f"resume={resume}: no checkpoint there (expected a last.npz or its run directory)")
    return p


def score_split(model, split, data, batch_size):
    pred = trainer.predict(model, split, batch_size)
    return pred, baselines.scores(pred, split.y, data.std)


def report(model, data: Prepared, out_dir: Path, cfg) -> dict:
    """Test and val scores, predictions.csv and the forecast plot for one model."""
    bs = int(cfg.trainer.eval_batch_size)
    _, val = score_split(model, data.val, data, bs)
    pred, test = score_split(model, data.test, data, bs)
    truth, fc = data.to_original(data.test.y), data.to_original(pred)
    persist = data.to_original(data.test.x[:, -1, 0]) if data.task == "forecast" else None
    outputs.write_predictions(out_dir / "predictions.csv", data.test.labels, truth, fc, persist)
    if cfg.get("plots", True):
        extra = {}
        if persist is not None:
            extra["persistence"] = persist
            order, coef = baselines.best_ar(data)
            extra[f"AR({order})"] = data.to_original(baselines.predict_ar(coef, data.test.x)[:, 0])
        outputs.plot_forecast(out_dir / "forecast.png", truth, fc, extra,
                              title=f"{cfg.get('name', '')}: test RMSE {test['rmse']:.4g}")
    if data.task == "regression":
        test["mse"] = test["rmse"] ** 2
        val["mse"] = val["rmse"] ** 2
    return {"val": val, "test": test}


def _log_result(res, base):
    parts = [f"test rmse {res['test']['rmse']:.4g} (mae {res['test']['mae']:.4g})"]
    for name, b in base.items():
        parts.append(f"{name}{'(' + str(b['order']) + ')' if 'order' in b else ''} {b['rmse']:.4g}")
    log.info(" | ".join(parts))


def fit(cfg, out_dir: Path, partial=None) -> dict:
    """``partial`` (a dict) receives the baselines early, so a failed run still reports them."""
    data = load_data(cfg.data)
    base = baselines.evaluate(data)
    if partial is not None:
        partial["baselines"] = base
    resume = _resume_path(cfg.resume) if cfg.get("resume") else None
    try:
        result = trainer.train(cfg, data, out_dir, resume=resume)
    finally:
        rows = _history_rows(out_dir)
        if rows and cfg.get("plots", True):
            outputs.plot_losses(out_dir / "loss.png", rows, title=str(cfg.get("name", "")))
    best = result["best_path"]
    model = M.load_checkpoint(best)[0] if best.is_file() else result["model"]
    res = report(model, data, out_dir, cfg)
    _log_result(res, base)
    out = {"baselines": base, "params": M.count_params(model), "epochs_run": len(result["history"]),
           "best_epoch": result["best_epoch"], "stopped_early": result["stopped_early"],
           "checkpoint": str(best), "last_checkpoint": str(result["last_path"]), **res}
    out["status"] = "ok" if result["complete"] else "interrupted"
    return out


def _history_rows(out_dir):
    p = out_dir / "metrics.csv"
    return outputs.read_metrics(p) if p.is_file() else []


def evaluate(cfg, out_dir: Path) -> dict:
    """Forecast the test split from ``cfg.ckpt_path``; data config taken from the checkpoint."""
    path = Path(str(cfg.ckpt_path)).expanduser()
    if path.is_dir():
        path = path / "best.npz"
    if not path.is_file():
        raise ConfigError(f"ckpt_path={cfg.ckpt_path}: no such checkpoint")
    model, _, meta = M.load_checkpoint(path, key="ckpt_path")
    saved = (meta or {}).get("config") or {}
    data_cfg = OmegaConf.create(saved["data"]) if "data" in saved else cfg.data
    data = load_data(data_cfg)
    base = baselines.evaluate(data)
    res = report(model, data, out_dir, cfg)
    _log_result(res, base)
    log.info("predictions written to %s", out_dir / "predictions.csv")
    return {"status": "ok", "mode": "evaluate", "checkpoint": str(path), "baselines": base,
            "params": M.count_params(model), **res}
