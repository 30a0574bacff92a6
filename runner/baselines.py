"""Baselines scored on the same test split as the model, so a user sees whether the GRU
earned its keep. They run once, outside the training loop, so numpy's BLAS is fine here.
"""
import numpy as np

from runner.datasets import Prepared


def scores(pred, target, std):
    """RMSE and MAE in original units and RMSE in training-std units (normalised arrays in)."""
    err = np.asarray(pred, np.float64) - np.asarray(target, np.float64)
    rmse_std = float(np.sqrt(np.mean(err ** 2)))
    return {"rmse": rmse_std * std, "mae": float(np.mean(np.abs(err))) * std, "rmse_std": rmse_std}


def persistence(x):
    """Every future step equals the last observed value (channel 0 is the series)."""
    return x[:, -1, 0].astype(np.float64)[:, None]


def _ar_design(x, p):
    lags = x[:, -p:, 0].astype(np.float64)
    return np.hstack([lags, np.ones((len(x), 1))])


def fit_ar(x, y, p):
    """Least-squares AR(p) with intercept, one output per horizon step (direct forecasts).

    By SVD (np.linalg.lstsq), not the normal equations: a smooth series' lags are nearly
    collinear (Mackey-Glass: condition number about 1e7), AᵀA squares that, and the ridge
    of 1e-8 that kept it solvable biased the fit, its test RMSE 20-40 % above least
    squares'. lstsq takes exactly collinear lags too (the minimum-norm solution)."""
    return np.linalg.lstsq(_ar_design(x, p), y.astype(np.float64), rcond=None)[0]


def predict_ar(coef, x):
    return _ar_design(x, coef.shape[0] - 1) @ coef


def best_ar(data: Prepared, max_order=None):
    """AR(p) for p = 1..window fitted on train, p chosen by validation RMSE."""
    window = data.train.x.shape[1]
    orders = range(1, min(window, max_order or window) + 1)
    best = None
    for p in orders:
        coef = fit_ar(data.train.x, data.train.y, p)
        val = scores(predict_ar(coef, data.val.x), data.val.y, data.std)["rmse"]
        if best is None or val < best[0]:
            best = (val, p, coef)
    return best[1], best[2]


def evaluate(data: Prepared) -> dict:
    """Test-split scores of every baseline that applies to this dataset."""
    out = {}
    if data.task == "forecast":
        h = data.output_size
        out["persistence"] = scores(np.repeat(persistence(data.test.x), h, axis=1), data.test.y, data.std)
        order, coef = best_ar(data)
        out["ar"] = dict(scores(predict_ar(coef, data.test.x), data.test.y, data.std), order=order)
    else:
        # regression targets (the adding problem): the constant 1, and the training mean
        const = np.ones_like(data.test.y)
        out["constant_1"] = scores(const, data.test.y, data.std)
        mean = np.full_like(data.test.y, data.train.y.mean())
        out["train_mean"] = scores(mean, data.test.y, data.std)
        for b in out.values():   # the adding problem is scored in MSE, like the model
            b["mse"] = b["rmse"] ** 2
    return out
