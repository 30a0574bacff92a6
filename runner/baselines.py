"""Baselines scored on the same test split as the model, so a user sees whether the GRU
earned its keep. They run once, before training; the AR fits keep off numpy's threaded
LAPACK all the same (_lag_qr says why).
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


def _lag_qr(x, y, top, rows=2048, channels=1):
    """R and Qᵀy of the QR of the design [1, x_{t-1}, ..., x_{t-top}] (nearest lag first):
    AR(p)'s design is its first p + 1 columns, so every order's least squares comes from
    this one factorisation (_solve). With ``channels`` C > 1 each lag is the first C
    channels' values at that step, [1, x_{t-1}, a_{t-1}, ..., x_{t-2}, a_{t-2}, ...], so
    ARX(p)'s design is its first p C + 1 columns (best_arx).

    Householder reflections in numpy's own loops (einsum, outer), not np.linalg.qr or
    lstsq: numpy's LAPACK splits these small products over its BLAS threads, and on two
    busy cores one lstsq took 34-200 ms (1 ms on one thread), a second or more for the
    32 orders, after which numpy's threads spun beside grucy's first epoch.

    ``rows`` at a time (a tall-skinny QR): each block is factorised below the R of those
    before it, whose rows' Qᵀy it carries, so the working matrix stays in cache. The whole
    design at once took 7 s for a million steps, most of it writing (n, top) temporaries."""
    k = top * channels + 1
    rows = max(rows, 4 * k)
    acc = np.empty((0, k + y.shape[1]))                         # (<= k, k + horizon)
    for b in range(0, len(x), rows):
        xb = x[b:b + rows, ::-1][:, :top, :channels].reshape(-1, k - 1).astype(np.float64)
        m = np.vstack([acc, np.hstack([np.ones((len(xb), 1)), xb,
                                       y[b:b + rows].astype(np.float64)])])
        for j in range(k):
            col = m[j:, j]
            norm = np.sqrt(np.einsum("i,i->", col, col))
            if norm == 0.0:
                continue
            v = col.copy()
            v[0] += np.copysign(norm, col[0])      # the sign that does not cancel
            v /= np.sqrt(np.einsum("i,i->", v, v))
            m[j:, j:] -= 2.0 * np.multiply.outer(v, np.einsum("i,ij->j", v, m[j:, j:]))
        acc = m[:k]
    return acc[:, :k], acc[:, k:]


def _solve(r, qty, p):
    """AR(p)'s least-squares coefficients from _lag_qr's factors, as predict_ar takes them
    (lags oldest first, then the intercept). By SVD of the small triangular block, so
    collinear lags (a noise-free sine) get the minimum-norm solution, as lstsq's."""
    c = np.linalg.lstsq(r[:p + 1, :p + 1], qty[:p + 1], rcond=None)[0]
    return np.vstack([c[1:][::-1], c[:1]])


def fit_ar(x, y, p):
    """Least-squares AR(p) with intercept, one output per horizon step (direct forecasts).

    By QR, not the normal equations: a smooth series' lags are nearly collinear
    (Mackey-Glass: condition number about 1e7), AᵀA squares that, and the ridge of 1e-8
    that kept it solvable biased the fit, its test RMSE 20-40 % above least squares'."""
    return _solve(*_lag_qr(x, y, p), p)


def predict_ar(coef, x):
    return _ar_design(x, coef.shape[0] - 1) @ coef


def _by_validation(data: Prepared, top, solve, predict):
    """``(p, coef)`` of the order p = 1..top whose ``solve(p)`` coefficients give the least
    validation RMSE through ``predict(coef, x)`` (the first of equals)."""
    best = None
    for p in range(1, top + 1):
        coef = solve(p)
        val = scores(predict(coef, data.val.x), data.val.y, data.std)["rmse"]
        if best is None or val < best[0]:
            best = (val, p, coef)
    return best[1], best[2]


def best_ar(data: Prepared, max_order=None):
    """AR(p) for p = 1..window fitted on train, p chosen by validation RMSE."""
    top = min(data.train.x.shape[1], max_order or data.train.x.shape[1])
    r, qty = _lag_qr(data.train.x, data.train.y, top)
    return _by_validation(data, top, lambda p: _solve(r, qty, p), predict_ar)


def _arx_design(x, p, channels):
    """[1, lag 1's channels, ..., lag p's], as _lag_qr orders them."""
    lags = x[:, ::-1][:, :p, :channels].reshape(len(x), -1).astype(np.float64)
    return np.hstack([np.ones((len(x), 1)), lags])


def best_arx(data: Prepared):
    """``(order, coef)`` of ARX(p), the series' and each input's last p values (channels 0
    to len(data.input_stats)) with an intercept, least squares on train, p = 1..window
    chosen by validation RMSE; None without inputs.

    With data.inputs the AR baseline reads the series alone, and a GRU that also reads
    the inputs beat it without earning it: this is the linear model of the same
    columns. (Not the seasonal channels: AR has none either, and a period's runs keep
    the baselines they had.)"""
    if not data.input_stats:
        return None
    C = 1 + len(data.input_stats)
    top = data.train.x.shape[1]
    r, qty = _lag_qr(data.train.x, data.train.y, top, channels=C)
    return _by_validation(data, top,
                          lambda p: np.linalg.lstsq(r[:p * C + 1, :p * C + 1], qty[:p * C + 1],
                                                    rcond=None)[0],        # (p C + 1, horizon)
                          lambda coef, x: predict_arx(coef, x, C))


def predict_arx(coef, x, channels):
    return _arx_design(x, (coef.shape[0] - 1) // channels, channels) @ coef


def evaluate(data: Prepared, ar=None, arx=None) -> dict:
    """Test-split scores of every baseline that applies to this dataset. ``ar``, ``arx``:
    the ``(order, coef)`` best_ar(data) and best_arx(data) returned, where the caller has
    them already."""
    out = {}
    if data.task == "forecast":
        h = data.output_size
        out["persistence"] = scores(np.repeat(persistence(data.test.x), h, axis=1), data.test.y, data.std)
        order, coef = ar or best_ar(data)
        out["ar"] = dict(scores(predict_ar(coef, data.test.x), data.test.y, data.std), order=order)
        arx = arx or best_arx(data)
        if arx is not None:
            order, coef = arx
            pred = predict_arx(coef, data.test.x, 1 + len(data.input_stats))
            out["arx"] = dict(scores(pred, data.test.y, data.std), order=order)
    else:
        # regression targets (the adding problem): the constant 1, and the training mean
        const = np.ones_like(data.test.y)
        out["constant_1"] = scores(const, data.test.y, data.std)
        mean = np.full_like(data.test.y, data.train.y.mean())
        out["train_mean"] = scores(mean, data.test.y, data.std)
        for b in out.values():   # the adding problem is scored in MSE, like the model
            b["mse"] = b["rmse"] ** 2
    return out
