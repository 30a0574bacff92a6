"""An Adam step over a GRU model's parameters: grucy, torch.optim and numpy, side by side.

    python benchmarks/optim.py                # -> benchmarks/results/optim.md

One step of Adam over the parameters of a grucy.SequenceModel (one GRU layer and its
linear head), float32, one thread, from the same gradients for everyone:
- grucy: grucy.optim.Adam.step, one compiled pass per parameter (grucy/_optim.pyx) after
  the step's argument checks;
- numpy: grucy.reference.adam_update per parameter, the same formula as numpy operations
  (what grucy.optim ran before the compiled pass; the bits are the same);
- torch: torch.optim.Adam.step with its CPU default (foreach) and with fused=True, the
  gradients set on the tensors once, outside the timing.
Interleaved as benchmarks/run.py times its grid (run.interleaved: each repeat visits all
in a rotated order; medians of --repeats samples of at least --min-ms). The models: the
runner's default (data=sine: I = 1, H = 32, one output) and two larger ones.
"""
import argparse
import datetime
import pathlib
import platform
import sys

import numpy as np

HERE = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))

import grucy  # noqa: E402
from grucy import optim, reference  # noqa: E402
from run import interleaved  # noqa: E402

MODELS = [(1, 32), (8, 128), (128, 512)]          # (I, H); one output


def problem(I, H):
    """A SequenceModel's parameters (live arrays) with I inputs and H units, and gradients
    for them."""
    params = grucy.SequenceModel(I, H, 1, seed=0).parameters()
    rng = np.random.default_rng(1)
    return params, {k: rng.standard_normal(p.shape).astype(p.dtype) for k, p in params.items()}


def contenders(I, H):
    """name -> one Adam step, for a model with I inputs and H units."""
    import torch
    params, grads = problem(I, H)
    fns = {}
    g_opt = optim.Adam(params, lr=1e-3)
    fns["grucy"] = lambda: g_opt.step(grads)
    ref = {k: (p.copy(), np.zeros_like(p), np.zeros_like(p)) for k, p in params.items()}
    state = {"t": 0}

    def numpy_step():
        state["t"] += 1
        for k, (p, m, v) in ref.items():
            reference.adam_update(p, grads[k], m, v, state["t"], 1e-3)
    fns["numpy"] = numpy_step
    for variant, kw in (("torch foreach", {"foreach": True}), ("torch fused", {"fused": True})):
        tensors = [torch.tensor(p.copy(), requires_grad=True) for p in params.values()]
        for t, g in zip(tensors, grads.values()):
            t.grad = torch.tensor(g)
        t_opt = torch.optim.Adam(tensors, lr=1e-3, **kw)
        fns[variant] = t_opt.step
    return fns, sum(p.size for p in params.values())


def check_same_step(I, H):
    """One step of grucy's Adam and of the numpy formula from one start: the same bits, or
    the timings compare different work."""
    params, grads = problem(I, H)
    start = {k: p.copy() for k, p in params.items()}
    optim.Adam(params, lr=1e-3).step(grads)
    for k, p in start.items():
        reference.adam_update(p, grads[k], np.zeros_like(p), np.zeros_like(p), 1, 1e-3)
        if not np.array_equal(p, params[k]):
            raise SystemExit(f"I={I} H={H}: grucy's Adam step differs from the numpy formula at {k}")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=9)
    ap.add_argument("--min-ms", type=float, default=20.0)
    ap.add_argument("--out", default=str(HERE / "results" / "optim.md"))
    args = ap.parse_args()
    import torch
    torch.set_num_threads(1)
    grucy.set_num_threads(1)
    names = ["grucy", "numpy", "torch foreach", "torch fused"]
    rows = []
    for I, H in MODELS:
        check_same_step(I, H)
        fns, n = contenders(I, H)
        fns = {k: fns[k] for k in names}
        med = interleaved(fns, args.repeats, args.min_ms / 1e3,
                          pairs=[("numpy", "grucy"), ("torch foreach", "grucy"),
                                 ("torch fused", "grucy")], settle=0.0)
        rows.append((I, H, n, med))
        print(f"I={I} H={H}: " + ", ".join(f"{k} {med[k] * 1e6:.1f} us" for k in names), flush=True)
    now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    lines = [
        "# Adam step: grucy, numpy and torch.optim", "",
        f"Command: `python benchmarks/optim.py` ({now}; {args.repeats} interleaved repeats, "
        f"samples >= {args.min_ms:g} ms, medians). Machine: {platform.machine()}, numpy "
        f"{np.__version__}, torch {torch.__version__}; one thread, float32.", "",
        "µs per step over all of a SequenceModel's parameters (one GRU layer, a linear head to "
        "one output). `x/grucy` > 1: grucy is faster; the median of the per-repeat ratios.", "",
        "| I, H | parameters | grucy µs | numpy µs | torch foreach µs | torch fused µs "
        "| numpy/grucy | torch foreach/grucy | torch fused/grucy |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for I, H, n, med in rows:
        lines.append(f"| {I}, {H} | {n} | " + " | ".join(f"{med[k] * 1e6:.1f}" for k in names)
                     + " | " + " | ".join(f"{med[f'{k}/grucy']:.2f}" for k in names[1:]) + " |")
    pathlib.Path(args.out).write_text("\n".join(lines) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
