"""Datasets: each one class whose ``load()`` returns a :class:`Prepared` split.

Forecasting datasets produce a 1-D series (and optionally input series beside it, each
an input channel after the series'); :class:`SeriesDataset` turns it into windows
``x[t-window:t] -> x[t:t+horizon]``, split chronologically by where each target starts
(train | val | test = the last ``test_fraction``), each series normalised with its
training part's mean and standard deviation only. A new dataset is a subclass with ``series()`` plus a
YAML naming it (README.md, "Your own dataset, model or optimizer").
"""
import codecs
import csv
import hashlib
import math
import numbers
import re
import warnings
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import List, Optional

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from runner.config import bundled_data, user_path


class DataError(ValueError):
    """A dataset that cannot be built; the message says what to fix."""


def _whole(**values):
    """Counts (a window, a length, a seed) must be whole numbers: 8.0 or 2e3 from a YAML are,
    but int() took window=8.5 as 8 without a word (a data config naming a built-in class
    from a file of the user's own has no schema to type it), and True as 1."""
    for key, v in values.items():
        if isinstance(v, bool) or not (isinstance(v, numbers.Real) and float(v).is_integer()):
            raise DataError(f"{key}={v!r}: must be a whole number")


def _at_least(minimum, **values):
    """Sizes numpy would otherwise reject with 'negative dimensions are not allowed'."""
    for key, v in values.items():
        if v < minimum:
            raise DataError(f"{key}={v}: must be at least {minimum}")


@dataclass
class Split:
    x: np.ndarray            # (N, T, I) float32, normalised inputs, batch-first for slicing
    y: np.ndarray            # (N, O) float32, normalised targets
    labels: List[List[str]]  # (N, O) label of each target (time stamp or index)
    # the series' own values (float64, as read) of the targets and of each input's last
    # step, for predictions.csv: y and x are float32 and normalised, and de-normalising
    # them writes 102.446 as 102.44599994651077. None: y is the truth itself (adding).
    target: Optional[np.ndarray] = None   # (N, O)
    last: Optional[np.ndarray] = None     # (N,), what the persistence baseline forecasts

    def __len__(self):
        return len(self.y)


@dataclass
class Prepared:
    train: Split
    val: Split
    test: Split
    mean: float              # target scale: original = normalised * std + mean
    std: float
    task: str                # "forecast" (persistence/AR baselines apply) or "regression"
    info: dict = field(default_factory=dict)
    # each input series' scale, {name: (mean, std)} in channel order after the target's
    input_stats: dict = field(default_factory=dict)

    @property
    def input_size(self):
        return self.train.x.shape[2]

    @property
    def output_size(self):
        return self.train.y.shape[1]

    def to_original(self, y):
        with np.errstate(over="ignore"):   # beyond float64: inf, which the scores report as null
            return np.asarray(y, dtype=np.float64) * self.std + self.mean


SPLIT_NAMES = {"train": "training", "val": "validation", "test": "test"}


def digests(data: Prepared) -> dict:
    """A sha256 per split of its inputs and targets (shape, dtype, little-endian bytes): what a
    resume compares to tell that the data is the checkpoint run's. The training part's mean
    and standard deviation alone missed a changed validation row or swapped training rows."""
    out = {}
    for name in SPLIT_NAMES:
        h = hashlib.sha256()
        for a in (getattr(data, name).x, getattr(data, name).y):
            a = np.asarray(a)
            h.update(f"{a.dtype.str[1:]}{a.shape}".encode())
            h.update(np.ascontiguousarray(a, dtype=a.dtype.newbyteorder("<")).tobytes())
        out[name] = h.hexdigest()
    return out


class SeriesDataset:
    """Windowed one-step or multi-step forecasting of a univariate series."""

    def __init__(self, window=32, horizon=1, val_fraction=0.1, test_fraction=0.2, period=None):
        _whole(window=window, horizon=horizon)
        if window < 1 or horizon < 1:
            raise DataError(f"window={window} and horizon={horizon} must be at least 1")
        if not (0 < test_fraction < 1 and 0 < val_fraction < 1 and val_fraction + test_fraction < 1):
            raise DataError(f"val_fraction={val_fraction} and test_fraction={test_fraction} "
                            "must be in (0, 1) and sum to less than 1")
        # 0 would silently add no channels, inf two constant ones (sin 0, cos 0)
        if period is not None and not 2 < period < math.inf:
            # sampled at whole steps t, sin and cos of 2 pi t / period are constant for a period
            # of 1 (or 1/k) and sin is 0 for 2: channels that say nothing (Nyquist)
            raise DataError(f"period={period}: must be more than 2 steps and finite (or null for no "
                            "seasonal channels); a period of 2 steps or less gives sin and cos "
                            "channels that are constant or alternate")
        self.window, self.horizon = int(window), int(horizon)
        self.val_fraction, self.test_fraction = float(val_fraction), float(test_fraction)
        self.period = period

    def series(self):
        """Return ``(values (N,), labels or None)``, or ``(values, labels, inputs)``: inputs a
        dict of name to (N,) array, series read beside the target as input channels."""
        raise NotImplementedError

    def non_finite_hint(self):
        """What to do about a NaN or inf in the series, for the error that refuses it."""
        return "fill or drop them first"

    def _place(self, i, labels) -> str:
        """Where value ``i`` of the series is, for an error that names it: its label."""
        return str(labels[i])

    def _check_float32(self, z, values, labels, mean, std, given, val_start, test_start, name=None):
        """Refuse a normalised value that float32, in which the windows are held, cannot:
        a test part 1e40 times the training part's scale, or an evaluation on data in other
        units than the checkpoint's. It became inf, and the run reported an infinite test
        RMSE as a result, or advised a smaller learning rate for an infinite validation
        loss, or failed in the AR baseline's least squares. ``name``: an input's, for its
        values (None: the series')."""
        big = np.flatnonzero(~(np.abs(z) <= np.finfo(np.float32).max))
        if not len(big):
            return
        i = int(big[0])
        part = "training" if i < val_start else "validation" if i < test_start else "test"
        whose = "the checkpoint's training" if given else "the training part's"
        hint = ("is this series in the units the checkpoint was trained on?" if given else
                "the series' parts must be on one scale")
        of = f" of input {name!r}" if name is not None else ""
        at = self._place(i, labels)
        raise DataError(f"the value {float(values[i])!r}{of} at {at} (the {part} part) lies "
                        f"{abs(z[i]):.3g} standard deviations from {whose} mean (mean {mean:.6g}, std "
                        f"{std:.6g}), past float32's range, in which the model reads its windows: {hint}")

    @staticmethod
    def _given_stats(stats, key):
        """``stats`` as ``(mean, std)`` floats; refused unless a finite mean and a positive std."""
        mean, std = (float(v) for v in stats)
        if not (math.isfinite(mean) and 0 < std < math.inf):
            raise DataError(f"{key}={tuple(stats)!r}: expected (mean, std), finite, std > 0")
        return mean, std

    @staticmethod
    def _own_stats(train_part):
        """The training part's ``(mean, std)``; std 0 if it is constant."""
        if train_part.max() == train_part.min():
            # numpy's mean of 70 copies of 0.3 is not 0.3, so their std is a rounding error
            # (~1e-16), not 0: a later 0.31 became ~1e14 standard deviations
            return float(train_part[0]), 0.0
        with np.errstate(over="ignore", under="ignore", invalid="ignore"):   # handled below
            mean, std = float(train_part.mean()), float(train_part.std())
        if not (math.isfinite(mean) and 0 < std < math.inf):
            # values beyond about 1e154 overflow when squared (std inf: every input
            # normalised to 0, a test RMSE of inf reported as a result) and below about
            # 1e-154 underflow (std 0: refused as "constant"); scaled to at most 1 first,
            # they are ordinary numbers
            scale = float(np.abs(train_part).max())
            mean, std = float((train_part / scale).mean()) * scale, float((train_part / scale).std()) * scale
        return mean, std

    @staticmethod
    def _normalise(values, mean, std):
        """``(values - mean) / std``, finite wherever the result is."""
        with np.errstate(over="ignore", invalid="ignore"):
            z = (values - mean) / std
        far = ~np.isfinite(z)
        if far.any():
            # within a std of the float64 limit, values - mean overflows (1.79e308 - -1.7e308);
            # scaled to at most 1 first, it does not. Only those values: scaled, a tiny std
            # can underflow (1e-300 / 1e30), and then 0 / 0 made values at the mean NaN
            scale = float(np.abs(values).max())
            with np.errstate(all="ignore"):
                scaled = (values[far] / scale - mean / scale) / (std / scale)
            z[far] = np.where(np.isnan(scaled), z[far], scaled)
        return z

    def _refuse_non_finite(self, values, labels, name=None):
        bad = np.flatnonzero(~np.isfinite(values))
        if len(bad):
            # a NaN made the training part's std NaN, reported as "constant", or reached
            # only the test windows and their scores
            i = int(bad[0])
            whose = "the series" if name is None else f"input {name!r}"
            raise DataError(f"{whose} has {len(bad)} non-finite value{'s' * (len(bad) > 1)}, "
                            f"the first {values[i]} at {self._place(i, labels)}: {self.non_finite_hint()}")

    def _input_series(self, inputs, n, source):
        """``series()``'s inputs as ``{name: (n,) float64}``, refused unless one value per step."""
        if not isinstance(inputs, dict):
            raise DataError(f"{source} returned inputs of type {type(inputs).__name__}: expected a "
                            "dict of input name to 1-D array")
        out = {}
        for name, v in inputs.items():
            if not isinstance(name, str):
                # "inputs of type dict: expected a dict" said nothing; a checkpoint stores
                # each input's scaling under its name, which an evaluation reads as a string
                raise DataError(f"{source} returned an input named {name!r} of type "
                                f"{type(name).__name__}: expected each input's name as a string")
            v = np.asarray(v, dtype=np.float64)
            if v.shape != (n,):
                raise DataError(f"{source} returned input {name!r} of shape {v.shape}: expected "
                                f"({n},), one value per time step, as the series")
            out[name] = v
        return out

    def load(self, stats=None, input_stats=None) -> Prepared:
        """The windowed, split, normalised series. ``stats``: ``(mean, std)`` to normalise
        with instead of the training part's own, for an evaluation: a model expects the
        scaling it was trained with, not that of the data it is now given. ``input_stats``:
        likewise ``{name: (mean, std)}`` for each input series, by name in order (None: their
        own training parts')."""
        values, labels, *rest = self.series()
        values = np.asarray(values, dtype=np.float64)
        source = f"{type(self).__name__}.series()"
        if len(rest) > 1:
            raise DataError(f"{source} returned {2 + len(rest)} items: expected (values, labels) or "
                            "(values, labels, inputs)")
        if values.ndim != 1:
            # an (N, 1) column (pandas' df[["load"]].values) made 4-D windows, and the AR
            # baseline failed on them in numpy's words, naming neither series() nor the shape
            raise DataError(f"{source} returned values of shape {values.shape}: expected a 1-D "
                            "array (N,), one value per time step")
        n = len(values)
        if labels is None:
            labels = [str(i) for i in range(n)]
        elif len(labels) != n:
            # too few failed in write_predictions after training; too many were cut to the
            # first n, each label then beside another step's value
            raise DataError(f"{source} returned {len(labels)} labels for {n} values: expected one "
                            "label per value, or None for 0, 1, 2, ...")
        inputs = self._input_series(rest[0], n, source) if rest else {}
        self._refuse_non_finite(values, labels)
        for name, v in inputs.items():
            self._refuse_non_finite(v, labels, name)
        if input_stats is not None and list(input_stats) != list(inputs):
            # a model reads its channels by position: other inputs, or the same in another
            # order, are other numbers in each channel than it was trained on
            raise DataError(f"data.inputs={list(inputs)}: the model was trained with "
                            f"data.inputs={list(input_stats)} (the same columns in the same order "
                            "are needed)")
        n_test = int(round(n * self.test_fraction))
        n_val = int(round(n * self.val_fraction))
        test_start, val_start = n - n_test, n - n_test - n_val
        w, h = self.window, self.horizon
        if val_start - w - h + 1 < 1 or n_val < h or n_test < h:
            # say how it splits and what each part needs: the length alone left the user to
            # work out the rounding of the fractions
            raise DataError(f"series of length {n} is too short for window={w}, horizon={h} "
                            f"with val_fraction={self.val_fraction}, test_fraction={self.test_fraction}: "
                            f"it splits into {val_start} training, {n_val} validation and {n_test} test "
                            f"values; training needs at least window + horizon = {w + h}, validation "
                            f"and test at least horizon = {h} each")
        if stats is not None:
            mean, std = self._given_stats(stats, "stats")
        else:
            mean, std = self._own_stats(values[:val_start])
            if not std > 0:
                raise DataError("the training part of the series is constant: nothing to learn")
        z = self._normalise(values, mean, std)
        self._check_float32(z, values, labels, mean, std, stats is not None, val_start, test_start)
        channels, scaling = [z], {}
        for name, v in inputs.items():
            # each input on its own scale: temperature in degrees beside a load in MW
            if input_stats is not None:
                m, s = self._given_stats(input_stats[name], f"input_stats[{name!r}]")
            else:
                m, s = self._own_stats(v[:val_start])
                if not s > 0:
                    # all of it normalised to 0 (or NaN): a channel that says nothing
                    raise DataError(f"data.inputs: {name!r} is constant in the training part "
                                    "(the same value throughout): it tells the model nothing; "
                                    "leave it out")
            zi = self._normalise(v, m, s)
            self._check_float32(zi, v, labels, m, s, input_stats is not None, val_start, test_start, name)
            channels.append(zi)
            scaling[name] = (m, s)
        if self.period:
            # Over t in [0, n - 1] the pair turns by 2 pi (n - 1) / period; below float32's
            # resolution at 1 (the scale of every channel, read in float32 beside them) sin
            # is lost in the sums it enters and cos is 1: two constant channels, as for
            # period=inf. period=1e300 trained as if no period had been given, without a word.
            longest = 2 * math.pi * (n - 1) / float(np.finfo(np.float32).eps)
            if not self.period <= longest:
                # the figure the message gives, to 4 digits, is itself taken: rounded down
                shown = float(f"{longest:.4g}")
                if shown > longest:
                    shown = float(f"{longest - 10 ** (math.floor(math.log10(longest)) - 3):.4g}")
                raise DataError(f"data.period={self.period}: must be at most {shown:.4g} steps for a "
                                f"series of {n} steps (or null for no seasonal channels); a longer "
                                "period's sin and cos channels change by less than float32's "
                                "resolution over the series, constant to the model")
            t = np.arange(n)
            channels += [np.sin(2 * np.pi * t / self.period), np.cos(2 * np.pi * t / self.period)]
        feats = np.stack(channels, axis=1)                      # (N, I)

        # every window of w steps (inputs) and of h (targets), views without copies:
        # a Python loop per window took seconds at a million steps
        inputs = sliding_window_view(feats.astype(np.float32), w, axis=0).swapaxes(1, 2)  # (N-w+1, w, I)
        z_ahead = sliding_window_view(z.astype(np.float32), h)        # (N-h+1, h)
        v_ahead = sliding_window_view(values, h)                      # (N-h+1, h)

        def windows(first, last):
            # targets start at s in [first, last - h]; inputs are the w steps before s
            s0, s1 = max(first, w), last - h + 1
            # copies (C order), each split its own: not views of one another's memory
            return Split(inputs[s0 - w:s1 - w].copy(), z_ahead[s0:s1].copy(),
                         [labels[s:s + h] for s in range(s0, s1)], v_ahead[s0:s1].copy(),
                         values[s0 - 1:s1 - 1].copy())

        return Prepared(windows(0, val_start), windows(val_start, test_start), windows(test_start, n),
                        mean, std, "forecast",
                        {"length": n, "val_start": val_start, "test_start": test_start}, scaling)


class Sine(SeriesDataset):
    """``amplitude * sin(2 pi frequency t) + noise``."""

    def __init__(self, length=2000, frequency=0.04, amplitude=1.0, noise=0.02, seed=0, **kw):
        super().__init__(**kw)
        _whole(length=length, seed=seed)
        _at_least(1, length=length)
        _at_least(0, seed=seed)   # numpy's generators take no negative seed (a ValueError naming none)
        _at_least(0, noise=noise)   # a standard deviation: -0.1 drew the same series as 0.1
        self.length, self.frequency, self.amplitude = int(length), frequency, amplitude
        self.noise, self.seed = noise, int(seed)

    def non_finite_hint(self):
        # the series is generated: nothing to fill, a setting overflows
        return (f"data.amplitude={self.amplitude}, data.frequency={self.frequency} and "
                f"data.noise={self.noise} must give finite values")

    def series(self):
        rng = np.random.default_rng(self.seed)
        t = np.arange(self.length)
        y = self.amplitude * np.sin(2 * np.pi * self.frequency * t)
        return y + self.noise * rng.standard_normal(self.length), None


class MackeyGlass(SeriesDataset):
    """dx/dt = beta x(t-tau) / (1 + x(t-tau)^n) - gamma x(t), chaotic for tau >= 17.

    Starts from x = 1.2 for t <= 0 and is integrated with 4th-order Runge-Kutta in steps of
    ``dt`` (the delayed term held at its value at the step's start). The series is x(t) at
    t = 50 tau + k sample_every, k = 0, ..., length - 1: a warm-up of 50 tau forgets the
    constant start, and the first sample is the state at its end.
    """

    def __init__(self, length=2000, tau=17, beta=0.2, gamma=0.1, exponent=10.0,
                 sample_every=1.0, dt=0.1, noise=0.0, seed=0, **kw):
        super().__init__(**kw)
        _whole(length=length, seed=seed)
        _at_least(1, length=length)
        _at_least(0, tau=tau, seed=seed, noise=noise)
        if not dt > 0:
            raise DataError(f"dt={dt}: the integration step must be positive")
        steps = sample_every / dt
        if not (steps >= 1 and abs(steps - round(steps)) < 1e-6 * steps):
            # series() samples every round(sample_every / dt) steps: 0 sampled every dt and
            # 0.25 with dt=0.1 every 0.2, silently
            raise DataError(f"sample_every={sample_every}: must be a whole multiple of dt={dt} "
                            "(integration steps between samples)")
        lag = tau / dt
        if abs(lag - round(lag)) > 1e-6 * max(lag, 1.0):
            # series() delays by round(tau / dt) steps: tau=17 with dt=5 became 15, silently
            raise DataError(f"tau={tau}: must be a whole multiple of dt={dt} (the delay is "
                            "counted in integration steps)")
        self.length, self.tau, self.beta, self.gamma = int(length), tau, beta, gamma
        self.exponent, self.sample_every, self.dt = exponent, sample_every, dt
        self.noise, self.seed = noise, int(seed)

    def non_finite_hint(self):
        # the series is generated: nothing to fill, the integration diverged or overflowed
        return (f"the integration diverges or overflows with data.tau={self.tau}, data.beta={self.beta}, "
                f"data.gamma={self.gamma}, data.exponent={self.exponent}, data.dt={self.dt}, "
                f"data.noise={self.noise}; change them")

    def series(self):
        dt = self.dt
        lag = int(round(self.tau / dt))
        every = max(1, int(round(self.sample_every / dt)))
        warm = int(round(50 * self.tau / dt))
        steps = warm + (self.length - 1) * every      # up to the last sample's time
        x = np.empty(steps + lag + 1)                   # x[lag + k] = x(k dt)
        x[:lag + 1] = 1.2
        b, g, p = self.beta, self.gamma, self.exponent

        def f(xt, xd):
            return b * xd / (1.0 + xd ** p) - g * xt

        for i in range(lag, lag + steps):
            xd = x[i - lag]
            xi = x[i]
            k1 = f(xi, xd)
            k2 = f(xi + 0.5 * dt * k1, xd)
            k3 = f(xi + 0.5 * dt * k2, xd)
            k4 = f(xi + dt * k3, xd)
            x[i + 1] = xi + dt / 6.0 * (k1 + 2 * k2 + 2 * k3 + k4)
        # t = 50 tau + k sample_every: the first sample is x(50 tau) itself, not a step after it
        y = x[lag + warm::every]
        if self.noise:
            y = y + self.noise * np.random.default_rng(self.seed).standard_normal(len(y))
        return y, None


# The whole numbers numpy holds exactly as time stamps (int64)
INT64 = range(-2**63, 2**63)

# How files write a gap, in a value or a time stamp (pandas' and R's NaN, NA, NaT, ...);
# compared lower-case
MISSING = ("nan", "na", "n/a", "null", "none", "nat")


def read_csv_column(path, column, time_column=None):
    """Read one numeric column (and optional labels) with errors that say what to fix."""
    return _read_csv(path, column, time_column)[:2]


def _read_csv(path, column, time_column=None, inputs=()):
    """``(values (N,), labels, input values (N, len(inputs)), lines)``: the ``column`` and
    each of the ``inputs`` columns beside it, every cell checked alike, with errors that say
    what to fix, and the file's line of each row (1-based, the header line 1), for an error
    about a value found later."""
    if isinstance(inputs, str):
        # a bare name iterated as its letters: data.inputs=temp meant [temp]
        raise DataError(f"data.inputs={inputs!r}: expected a list of column names, [{inputs}]")
    if inputs is None or not isinstance(inputs, Iterable):
        # null (YAML's none, as time_column: null is) in a data config of a user's own, which
        # no schema checks: list() failed with a TypeError that named no argument
        raise DataError(f"data.inputs={inputs!r}: expected a list of column names ([] for none)")
    inputs = list(inputs)
    if None in inputs:
        # skipped by the header check, as a time_column of None is, then header.index() failed
        raise DataError(f"data.inputs={inputs!r}: expected a list of column names, not None")
    if not str(path).strip():
        # Path("") is ".", the directory you run from: "a directory, not a file" said nothing
        raise DataError(f"data.path={str(path)!r}: empty; expected the path of a CSV file")
    p = user_path(path)
    if not p.is_file():
        what = ("a directory, not a file" if p.is_dir() else
                # is_file() and exists() are False for a link to nothing: "no such file" for
                # a loop of links, or one whose target went, sent the user looking for the name
                "a symbolic link to nothing (its target is missing, or the links loop)"
                if p.is_symlink() else
                # a device, pipe or socket (/dev/null, <(command)): "no such file" was untrue
                "not a regular file (a device, pipe or socket); save the data to a file"
                if p.exists() else "no such file")
        message = f"data.path={str(path)!r}: {what}"
        if not Path(path).expanduser().is_absolute():
            # which file: a relative path is read from where the run started, maybe not the
            # directory it was written for (an evaluation takes the checkpoint's data.path)
            message += (f" (looked for {p.absolute()}; a relative path is read from the directory "
                        "you run from)")
        raise DataError(message)
    try:
        return _read_csv_column(p, column, time_column, list(inputs))
    except UnicodeDecodeError as exc:
        raise DataError(f"data.path={str(path)!r}: {_not_text(p, exc)}") from None
    except OSError as exc:   # permissions, an I/O error: the file is there but cannot be read
        raise DataError(f"data.path={str(path)!r}: cannot be read ({exc.strerror or exc})") from None


# What a file that is not text starts with, and what to do with it: "save it as UTF-8"
# was no advice for a workbook or a compressed file
NOT_TEXT = ((b"PK\x03\x04", "a zip archive (an Excel .xlsx workbook?), not text: export the sheet "
                             "as CSV (UTF-8)"),
            (b"\xd0\xcf\x11\xe0", "an Excel .xls workbook (or other OLE file), not text: export the "
                                 "sheet as CSV (UTF-8)"),
            (b"\x1f\x8b", "gzip-compressed, not text: decompress it first (gunzip)"),
            (b"PAR1", "a Parquet file, not text: write it out as CSV"),
            (b"\xff\xfe", "UTF-16 text: save it as UTF-8"),
            (b"\xfe\xff", "UTF-16 text: save it as UTF-8"))


# Bytes read at a time to find a non-UTF-8 file's first bad byte: the file may be large
DECODE_CHUNK = 1 << 20


def _not_text(p, exc):
    found = None
    try:
        with open(p, "rb") as fh:
            head = fh.read(max(len(magic) for magic, _ in NOT_TEXT))
            for magic, what in NOT_TEXT:
                if head.startswith(magic):
                    return what
            fh.seek(0)
            found = _first_bad_byte(fh)
    except OSError:
        pass
    where = f"line {found[0]}, byte {found[1]!r}: " if found else ""
    return f"not UTF-8 text ({where}{exc.reason}); save it as UTF-8 or plain ASCII"


def _first_bad_byte(fh):
    """``(line, byte)`` of the first byte of binary file ``fh`` that is not UTF-8, or None.

    exc.start of the reader's error counts from the chunk it was decoding, not the file:
    which line (one accented name in a million rows) is found again from the file's bytes,
    a chunk at a time (the whole file was read into memory for it). As utf-8, not
    utf-8-sig: a byte-order mark is valid UTF-8, and utf-8-sig counted from after it, so a
    file with one was told the byte 3 bytes before the bad one.
    """
    lines, carry = 1, b""
    while True:
        chunk = fh.read(DECODE_CHUNK)
        data = carry + chunk
        try:
            # final only at the end: a character split between two chunks is carried over
            _, used = codecs.utf_8_decode(data, "strict", not chunk)
        except UnicodeDecodeError as bad:
            return lines + data.count(b"\n", 0, bad.start), data[bad.start:bad.start + 1]
        if not chunk:
            return None
        lines += data.count(b"\n", 0, used)
        carry = data[used:]


def _rows(reader, name):
    """``(first line, last line, fields)`` of each row of ``reader`` (a blank line: no fields).

    csv's own error, a field over its size limit (a quote left open runs on to the end of a
    large file, or the file is not text in columns), becomes a DataError naming the line
    the row starts on, not an unexpected error.
    """
    end = 0
    while True:
        try:
            fields = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            raise DataError(f"{name} line {end + 1}: {exc} (a quote left open on this line runs "
                            "on through the file, or it is not a CSV file)") from None
        start, end = end + 1, reader.line_num
        yield start, end, fields


def _read_csv_column(p, column, time_column, inputs=()):
    # utf-8-sig: spreadsheets often start the file with a byte-order mark, which would
    # otherwise become part of the first column's name
    with open(p, newline="", encoding="utf-8-sig") as fh:
        # csv.reader, not DictReader: DictReader pads a short row with None, which was
        # caught only when the padding fell on a column in use, and it cannot tell how
        # many fields a row had once the header repeats a name
        rows = _rows(csv.reader(fh), p.name)
        header = next(rows, (None, None, None))[2]
        if header is None:
            raise DataError(f"{p.name} is empty: expected a header row naming the columns")
        # "date, load" names a column " load"; cells are stripped too (below)
        header = [name.strip() for name in header]
        if time_column is not None and time_column == column:
            # the values were checked as time stamps: "'load' runs backwards (0.24, -0.05, ...)"
            raise DataError(f"data.time_column={time_column!r} is data.column too: the time stamps "
                            "label the values, so they are another column (or null for none)")
        for i, name in enumerate(inputs):
            # each would be read twice, a channel repeated; the target or the stamps as an
            # input are in the window already, or label it
            if name == column or (time_column and name == time_column):
                what = "data.column" if name == column else "data.time_column"
                raise DataError(f"data.inputs: {name!r} is {what}: the inputs are other columns, "
                                "read beside the target")
            if name in inputs[:i]:
                raise DataError(f"data.inputs: {name!r} is named twice")
        named = [(column, f"data.column={column!r}"), (time_column, f"data.time_column={time_column!r}")]
        for name, key in named + [(name, f"data.inputs: {name!r}") for name in inputs]:
            if name is not None and name not in header:
                # a file separated by ';' or tabs reads as one column named "date;load"
                other = [d for d in (";", "\t", "|") if len(header) == 1 and d in header[0]]
                hint = f" (separated by {other[0]!r}? only commas separate columns)" if other else ""
                if not hint and all(_kind(h) is not None for h in header):
                    # a file without a header row (numbers, or dates and numbers): its first
                    # row of data was taken as the names
                    hint = (" (the first line is the header, and this one looks like data: add a "
                            "line naming the columns)")
                if not hint and re.match(r"#.*\s", header[0]):    # a column may be named "#id"
                    hint = (" (the first line is the header, and this one looks like a comment: "
                            "remove the lines above the one naming the columns)")
                if not hint and str(name).strip().lstrip("-").isdigit():
                    # data.column=1 meant the second (or first) column
                    hint = " (a column is chosen by its name in the header, not its position)"
                raise DataError(f"{key} not in {p.name}; columns are: {', '.join(header)}{hint}")
            if name is not None and header.count(name) > 1:
                # a dict of the row would silently keep the last of them
                raise DataError(f"{key}: {p.name} has {header.count(name)} columns of that name")
        # the target's column, then each input's: every cell is read and checked alike
        cells = [(header.index(name), name) for name in (column, *inputs)]
        stamps = header.index(time_column) if time_column else None   # '' is none, as below
        values, labels, lines = [], [], []   # values: row by row, each row's cells in turn
        blank = None                      # (line, what) of the first blank row since the last row
        # one pass of a few operations per row (a million rows are read in about a second);
        # a cell that is not a plain finite number goes to _refuse_value, which says why
        for start, end, fields in rows:   # the file's lines: blank lines are counted
            if not "".join(fields).strip():
                # a blank line, or one of spaces or only commas (spreadsheets end exports
                # with ",,,"): a trailing one ends the file; so far, it may
                blank = blank or (start, "a blank line" if len(fields) <= 1 else "an empty row")
                continue
            if blank:
                # a row after it: the blank line was a row whose cells are missing, as an
                # empty cell is (skipped, "1, 2, <blank>, 4" read as [1, 2, 4], gap closed);
                # every column read is missing there, the time stamps' and inputs' too
                read = [time_column] * (stamps is not None) + [name for _, name in cells]
                raise _missing(f"{p.name} line {blank[0]}", read, blank[1])
            if len(fields) != len(header):
                # which field is which would be a guess (a stray or unquoted comma, a cell
                # left out, a line cut short), so the value taken could be another column's
                n = len(fields)
                hint = "; quote values that contain commas" if n > len(header) else ""
                raise DataError(f"{p.name} {_where(start, end)}: {n} field{'s' * (n != 1)} but the "
                                f"header names {len(header)} columns ({', '.join(header)}){hint}")
            for i, name in cells:
                text = fields[i].strip()
                try:
                    v = float(text)
                except ValueError:
                    v = math.nan
                if not math.isfinite(v) or "_" in text:    # float() reads 1_000 as 1000
                    if _is_gap(text):
                        # each input's gap in the row as well: a row of "5,,," named the target's
                        # alone, and the next run then stopped at the input's
                        raise _missing(f"{p.name} {_where(start, end)}",
                                       [n for j, n in cells if _is_gap(fields[j].strip())])
                    _refuse_value(text, name, f"{p.name} {_where(start, end)}")
                values.append(v)
            if stamps is not None:
                # 'nan' read as a number (its steps nan: an IndexError), NaT as a date ("runs
                # backwards (2024-01, NaT, ...)"): the words for a gap are one in either column
                stamp = fields[stamps].strip()
                if stamp == "" or stamp.lower() in MISSING:
                    raise DataError(f"{p.name} {_where(start, end)}: missing time stamp in column "
                                    f"{time_column!r}")
                labels.append(stamp)
            lines.append(start)
    if not values:
        raise DataError(f"{p.name}: column {column!r} has no rows")
    if time_column:
        _check_regular(labels, p.name, time_column, lines)
    else:
        labels = [str(i) for i in range(len(lines))]
    table = np.array(values).reshape(len(lines), len(cells))
    return table[:, 0].copy(), labels, table[:, 1:].copy(), lines


def _where(start, end):
    # a row that spans lines (a quoted field with line breaks) is named by all of them: a
    # quote left open made the rest of the file one row, reported at its last line as a
    # row of too few fields
    return f"line {start}" if start == end else (
        f"lines {start}-{end} (one row: a quoted field spans them; a quote left open?)")


def _is_gap(text):
    """Whether a (stripped) cell is how files write a gap: empty, NaN, NA, null, ..."""
    return text == "" or text.lower() in MISSING


def _missing(where, columns, what=None):
    """The DataError for a row whose ``columns`` have no value; ``what``: how the row looks
    (a blank line)."""
    named = (f"value in column {columns[0]!r}" if len(columns) == 1 else
             f"values in columns {', '.join(map(repr, columns))}")
    return DataError(f"{where}: missing {named} ({what + '; ' if what else ''}gaps are not filled "
                     "silently; fill or drop them first)")


def _refuse_value(text, column, where):
    """The DataError for a value cell that is not a finite number written plainly."""
    if _is_gap(text):
        raise _missing(where, [column])
    try:
        if "_" in text:     # float() reads 1_000 as 1000, Python's literal grammar
            raise ValueError(text)
        float(text)
    except ValueError:
        shown = text if len(text) <= 40 else text[:37] + "..."
        # "10,104" is the usual case: a spreadsheet's thousands separator, or a decimal
        # comma; float() takes neither, and neither is guessed here
        hint = ("; write numbers without thousands separators and with a decimal point"
                if re.fullmatch(r"[+-]?[\d._]*[,_][\d.,_]*", text) else "")
        raise DataError(f"{where}: column {column!r} value {shown!r} is not a number{hint}") from None
    raise DataError(f"{where}: column {column!r} value {text!r} is not finite")


# numpy's datetime64 units, for the size of a step in a message
UNIT_NAMES = {"Y": "year", "M": "month", "W": "week", "D": "day", "h": "hour", "m": "minute",
              "s": "second", "ms": "millisecond", "us": "microsecond", "ns": "nanosecond"}


def _usual_step(steps, rtol=0.0, atol=0.0):
    """The step that most of ``steps`` are within ``atol + rtol·|step|`` of (the smallest of
    equally good ones, or the middle of those within reach of it) and how many are.

    The most common, not the median: with two step sizes the median named the minority's
    first step a "jump" (0, 1, 2, 3, 5, 7, 9: "jumps from 0 to 1"), and with as many of
    each it was a step the file never takes. Counted around each step itself, not by
    chaining neighbours that agree: a chain of float32 stamps' steps, each within the
    tolerance of the next, spanned more than it from end to end, and steps of the chain
    were then refused as differing from its smallest, which the message called usual.
    """
    ordered = np.sort(steps)
    reach = atol + rtol * np.abs(ordered)
    counts = (np.searchsorted(ordered, ordered + reach, side="right")
              - np.searchsorted(ordered, ordered - reach, side="left"))
    k = int(np.argmax(counts))
    # of the equally good steps within reach of that one, the middle: the usual step of
    # 0.1, not 0.09999 (a step of 0.1 rounded at 200 in float32)
    tied = np.flatnonzero((counts == counts[k]) & (ordered <= ordered[k] + reach[k]))
    m = int(tied[len(tied) // 2])
    return ordered[m], int(counts[m])


def _float32_written(stamps):
    """True if every stamp reads as numpy prints a float32 (0.1, 0.90000004, 1.3000001):
    stamps computed in float32 carry its rounding, not float64's."""
    with np.errstate(over="ignore"):
        narrow = stamps.astype(np.float32)
    return bool(np.isfinite(narrow).all()) and all(float(str(v)) == x for v, x in zip(narrow, stamps))


def _digits_written(labels):
    """How many decimal places the stamps are written with (1950.083: 3), the most of any;
    None unless every one is a plain decimal (no exponent)."""
    places = [re.fullmatch(r"\s*[+-]?(?:\d+\.?(\d*)|\.(\d+))\s*", str(s)) for s in labels]
    if not all(places):
        return None
    return max(len(m.group(1) or m.group(2) or "") for m in places)


def _dates(labels):
    """``labels`` (a list of stamps, or one) as datetime64; ValueError if they are not ISO dates.

    numpy reads a zone (2024-01-01T00:00Z, ...+01:00) as UTC, correct for spacing, and warns
    once per stamp that datetime64 keeps no zone: noise on the user's terminal.
    """
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "no explicit representation of timezones")
        return np.array(labels, dtype="datetime64")


def _stamps(labels):
    """``labels`` as whole numbers, dates or decimal numbers; None if they are none of these."""
    try:
        # before dates: numpy reads 0, 1, 2 as the years 0, 1, 2 (and a step as "1 year")
        ints = [int(s) for s in labels]
    except ValueError:
        pass
    else:
        # past int64 numpy made an object array (isfinite failed on it, a traceback) or, across
        # 2**63, float64, whose rounding read distinct stamps as repeated
        return np.array(ints, dtype=np.int64) if all(i in INT64 for i in ints) else ints
    try:
        return _dates(labels)
    except ValueError:
        pass
    try:
        return np.array([float(s) for s in labels])
    except ValueError:
        return None


def _kind(label):
    """What one time stamp reads as: "number", "date" (ISO) or None (free-form)."""
    try:
        float(label)
        return "number"
    except ValueError:
        pass
    try:
        _dates(label)
        return "date"
    except ValueError:
        return None


def _check_one_format(labels, fname, time_column, lines=None):
    """Refuse time stamps mostly numbers or ISO dates but not all: written two ways
    (2024-01 and 2024/02, a stamp with a note), they were taken as free-form labels and
    their spacing went unchecked, so a missing or repeated row passed silently."""
    kinds = [_kind(label) for label in labels]
    usual = max(("number", "date"), key=kinds.count)
    count = kinds.count(usual)
    if count * 2 < len(kinds):
        return   # mostly free-form: labels, not stamps
    i = next(k for k, kind in enumerate(kinds) if kind != usual)
    first = kinds.index(usual)
    what = "a number" if usual == "number" else "an ISO date"
    line = f" (line {lines[i]})" if lines else ""
    raise DataError(f"{fname}: {time_column!r} mixes formats: {labels[i]!r}{line} is not {what} like "
                    f"{labels[first]!r} and {count - 1} other stamp{'s' * (count != 2)}, so their spacing "
                    "cannot be checked; write every time stamp the same way")


def _check_regular(labels, fname, time_column, lines=None):
    """Fail on missing, extra or repeated time stamps when they are dates or numbers."""
    stamps = _stamps(labels)
    if stamps is None:
        _check_one_format(labels, fname, time_column, lines)
        return  # free-form labels: nothing to check
    if isinstance(stamps, list):
        i = next(k for k, v in enumerate(stamps) if v not in INT64)
        line = f" (line {lines[i]})" if lines else ""
        raise DataError(f"{fname}: {time_column!r} time stamp {labels[i]!r:.40}{line} is a whole "
                        "number beyond 64 bits; write stamps that fit (an offset from the first, "
                        "say) or leave time_column out")
    bad = np.isnat(stamps) if stamps.dtype.kind == "M" else ~np.isfinite(stamps)
    if bad.any():
        # the missing ones are refused by line while reading: these are written otherwise
        # (inf, 1e400, -nan), and their steps were "runs backwards (inf, 3, ...)"
        i = int(np.flatnonzero(bad)[0])
        line = f" (line {lines[i]})" if lines else ""
        what = "a date" if stamps.dtype.kind == "M" else "a finite number"
        raise DataError(f"{fname}: {time_column!r} time stamp {labels[i]!r}{line} is not {what}")
    if len(stamps) < 2:
        # one stamp has no step; two can still repeat or run backwards (and a series this
        # short is refused by SeriesDataset.load, which says what length it needs)
        return
    steps = np.diff(stamps)
    unit = UNIT_NAMES.get(np.datetime_data(stamps.dtype)[0]) if stamps.dtype.kind == "M" else None
    if stamps.dtype.kind == "M" and stamps.dtype == np.dtype("datetime64[D]"):
        # daily stamps of a monthly or yearly series have uneven day counts; compare months
        # when every stamp is the same day of its month or every one the month's last day
        # (2000-01-31, 2000-02-29, ...: how many exports stamp a month)
        months = stamps.astype("datetime64[M]")
        day = stamps - months.astype("datetime64[D]")
        month_end = (stamps + 1).astype("datetime64[M]") != months
        if np.all(day == day[0]) or np.all(month_end):
            steps, unit = np.diff(months), "month"
    steps = steps.astype(np.float64)
    if stamps.dtype.kind == "f":
        # decimal stamps (0.1, 0.2, ...) are not exact in binary: their differences vary in
        # the last bits, while a real gap or repeat is off by a whole step. The bits are the
        # stamps' own, not the step's: Unix seconds in tenths (1700000000.1) differ by 0.1
        # give or take 2.4e-7, a few ulp of 1.7e9, which rtol=1e-6 of 0.1 alone refused
        rtol, atol = 1e-6, 4 * float(np.spacing(np.abs(stamps).max()))
        usual, agree = _usual_step(steps, rtol, atol)
        if agree < len(steps) and _float32_written(stamps):
            # written from float32 (np.arange(n, dtype=np.float32) * 0.1 saved as text):
            # each stamp is off by up to half a float32 ulp, 1.2e-6 of a step of 0.1 at 1.3
            atol = 4 * float(np.spacing(np.float32(np.abs(stamps).max())))
            usual, agree = _usual_step(steps, rtol, atol)
        digits = _digits_written(labels) if agree < len(steps) else None
        if digits is not None:
            # rounded to the digits printed (monthly decimal years at three places, 1950.083,
            # 1950.167, 1950.250: steps of 0.084 and 0.083), each stamp is within half a unit
            # of its last digit of its time, and each step within one unit of the usual one.
            # Only while that unit is under a quarter of the step: a missing row still shows
            unit_ = 10.0 ** -digits
            wide = _usual_step(steps, rtol, atol + unit_ * (1 + 1e-9))
            if wide[0] > 4 * unit_:
                atol, (usual, agree) = atol + unit_ * (1 + 1e-9), wide
    else:
        rtol = atol = 0.0
        usual, agree = _usual_step(steps)

    def same(a, b):
        return np.isclose(a, b, rtol=rtol, atol=atol)

    if not usual > 0:
        # a newest-first export is evenly spaced too, but would train on the future
        i = int(np.flatnonzero(same(steps, usual))[0])
        how = "repeats its time stamps" if usual == 0 else "runs backwards"
        fix = "one row per time step expected" if usual == 0 else "sort the file oldest first"
        raise DataError(f"{fname}: {time_column!r} {how} ({labels[i]}, {labels[i + 1]}, ...); {fix}")
    bad = np.flatnonzero(~same(steps, usual))
    if len(bad):
        # a repeat or a step back first: two rows swapped (1, 3, 2, 4) were "a step of 2"
        # at the first of them, not the rows out of order that they are
        back = bad[steps[bad] <= 0]
        i = int(back[0] if len(back) else bad[0])
        line = lines[i + 1] if lines else i + 3
        dst = _dst_hint(stamps, steps[i], usual)
        if steps[i] == 0:
            raise DataError(f"{fname}: {time_column!r} repeats {labels[i]} (line {line}); "
                            f"one row per time step expected{dst}")
        if steps[i] < 0:
            raise DataError(f"{fname}: {time_column!r} steps back from {labels[i]} to {labels[i + 1]} "
                            f"(line {line}); the rows are out of order{dst}")

        # date-times are read in the unit of their finest field: a daily series stamped at
        # midnight missing a day was "a step of 172800 seconds, expected 86400 seconds"
        scale, name = _coarsest_unit(stamps, (steps[i], usual)) if unit else (1, None)

        def size(step):
            step, word = step / scale, name or unit
            return f"{step:.6g}" + (f" {word}{'' if step == 1 else 's'}" if word else "")

        others = f"; {len(bad)} steps differ from it, this is the first" if len(bad) > 1 else ""
        raise DataError(f"{fname}: {time_column!r} is not evenly spaced: from {labels[i]} to "
                        f"{labels[i + 1]} (line {line}) is a step of {size(steps[i])}, expected "
                        f"{size(usual)} (the step of {agree} of its {len(steps)} steps{others}){dst}")


def _clock_unit(stamps):
    """The unit code of date-time ``stamps`` read to a field finer than the day ("h", "m",
    "s", ...), else None (dates, or not date-times)."""
    code = np.datetime_data(stamps.dtype)[0] if stamps.dtype.kind == "M" else None
    return code if code in ("h", "m", "s", "ms", "us", "ns") else None


def _coarsest_unit(stamps, steps):
    """``(how many of the stamps' units, its name)`` of the largest of day, hour, minute,
    ..., down to the stamps' own unit, of which every one of ``steps`` is a whole number;
    ``(1, None)`` for stamps in days or longer (their unit is the right one)."""
    code = _clock_unit(stamps)
    if code is None:
        return 1, None
    for big in ("D", "h", "m", "s", "ms", "us", "ns"):
        n = float(np.timedelta64(1, big) / np.timedelta64(1, code))
        if n >= 1 and all(float(s) % n == 0 for s in steps):
            return n, UNIT_NAMES[big]
    return 1, None


def _dst_hint(stamps, step, usual):
    """A hint when a step of date-time stamps is off the usual one by exactly an hour: local
    wall-clock time skips an hour where daylight-saving time starts and repeats one where it
    ends, and the error alone ("a step of 2 hours, expected 1 hour") did not say why."""
    code = _clock_unit(stamps)
    if code is None:
        return ""
    if abs(step - usual) != np.timedelta64(1, "h") / np.timedelta64(1, code):
        return ""
    return ("; a daylight-saving change? Local wall-clock time skips or repeats an hour there: "
            "write the stamps in UTC or with their offset (2024-03-31T01:00+01:00)")


class CSVSeries(SeriesDataset):
    """One numeric column of a user's CSV file, in file order, and ``inputs``: other
    columns of it read beside it as input channels (covariates), not forecast."""

    def __init__(self, path, column, time_column=None, inputs=(), **kw):
        super().__init__(**kw)
        self.path, self.column, self.time_column = path, column, time_column
        self.inputs = inputs
        self._lines = None        # the file's line of each row, once series() has read it

    def _place(self, i, labels) -> str:
        # without a time_column the labels are row numbers 0, 1, ...: the file's line
        # instead, as every error about a cell names it
        if self.time_column or getattr(self, "_lines", None) is None:
            return super()._place(i, labels)
        return f"{user_path(self.path).name} line {self._lines[i]}"

    def series(self):
        """``(values, labels)``, and with ``inputs`` a third item, ``{name: values}``."""
        values, labels, more, self._lines = _read_csv(self.path, self.column, self.time_column,
                                                      self.inputs)
        if not self.inputs:
            return values, labels
        return values, labels, {name: more[:, i] for i, name in enumerate(self.inputs)}


class ElNino(CSVSeries):
    """Monthly Nino 1+2 SST (degC), 1950 onwards; ``path: bundled`` uses the shipped copy."""

    # inputs named here, not left to **kw: a resume of a checkpoint from before the key
    # existed compares it with this default (runner.trainer._class_defaults)
    def __init__(self, path="bundled", column="sst_nino12_degC", time_column="month", inputs=(), **kw):
        if path == "bundled":
            path = bundled_data("elnino_nino12_monthly.csv")
        super().__init__(path, column, time_column, inputs, **kw)


class Adding:
    """The adding problem (Hochreiter & Schmidhuber 1997; Le et al. 2015 variant).

    Each step carries a value in U(0, 1) and a marker; exactly two steps are marked, one
    in each half of the sequence; the target is the sum of the two marked values.
    Predicting the constant 1 scores MSE = Var(sum) = 1/6 in expectation.
    Split into independent train/val/test sets (no time order to respect).
    """

    def __init__(self, seq_len=50, n_train=4000, n_val=500, n_test=1000, seed=0):
        _whole(seq_len=seq_len, n_train=n_train, n_val=n_val, n_test=n_test, seed=seed)
        if seq_len < 2:
            raise DataError(f"seq_len={seq_len}: needs at least 2 steps")
        _at_least(1, n_train=n_train, n_val=n_val, n_test=n_test)
        _at_least(0, seed=seed)
        self.seq_len, self.seed = int(seq_len), int(seed)
        self.sizes = (int(n_train), int(n_val), int(n_test))

    def sample(self, n, rng):
        t = self.seq_len
        x = np.zeros((n, t, 2), dtype=np.float32)
        x[:, :, 0] = rng.uniform(0.0, 1.0, size=(n, t))
        half = t // 2
        a = rng.integers(0, half, size=n)
        b = rng.integers(half, t, size=n)
        rows = np.arange(n)
        x[rows, a, 1] = 1.0
        x[rows, b, 1] = 1.0
        y = (x[rows, a, 0] + x[rows, b, 0])[:, None].astype(np.float32)
        return Split(x, y, [[str(i)] for i in range(n)])

    def load(self) -> Prepared:
        rng = np.random.default_rng(self.seed)
        train, val, test = (self.sample(n, rng) for n in self.sizes)
        return Prepared(train, val, test, 0.0, 1.0, "regression", {"seq_len": self.seq_len})
