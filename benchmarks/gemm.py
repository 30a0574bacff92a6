"""One recurrent step's product through grucy's BLAS and through torch's, side by side.

    python benchmarks/gemm.py                 # 1 thread
    python benchmarks/gemm.py --threads 2
    python benchmarks/gemm.py --forms         # grucy's two forms of the product

A GRU step's recurrent product is hp (B, 3H) = h (B, H) @ W_hhᵀ: the GEMM that both grucy
(`grucy.matmul`, the scipy-openblas32 OpenBLAS its kernels call) and `torch.nn.GRU` (torch's
BLAS, `torch.__config__.show()` names it) issue T times per forward, float32, each in the
form its layer does: grucy's forward of 32 steps or more (H <= 512) multiplies by a
transposed copy of W_hh (grucy._gru.transpose_w_hh), torch by a transposed view. Where torch's
BLAS does it in less time, torch's whole layer can come within a few percent of grucy's
GEMM floor (benchmarks/run.py) at large H, however little grucy spends outside its GEMMs.
Per grid point: --repeats pairs of samples in alternating order (each the mean over >=
--min-ms of calls after a warm-up call), both libraries' median µs and GFLOP/s, and the
median of the per-pair ratios torch / grucy with quartiles (< 1: torch's BLAS is faster).
Both calls go through Python, which adds a few µs to each: read the small shapes with that
in mind.

--forms times grucy's BLAS alone on its two forms of the product, paired the same way:
h @ w_hhᵀ (a transposed operand, what forwards of under 32 steps or H > 512 issue) and
h @ w_hh_t (the transposed copy), at the grid's (B, H) and at H = 768 and 1024, beyond the
copy's H <= 512 (grucy._gru.transpose_w_hh).
"""
import argparse
import statistics

import numpy as np
import torch

import grucy
from pool_split import sample  # benchmarks/pool_split.py: seconds per call of a sample

GRID = [(50, 1, 8, 32), (200, 16, 1, 32), (100, 32, 8, 64), (100, 64, 32, 128),
        (100, 64, 64, 256), (50, 32, 128, 512)]
BEYOND = [(32, 768), (16, 1024), (64, 1024)]          # (B, H) past transpose_w_hh's bound


def paired(fns, repeats, min_ms):
    """Both fns (name -> callable) sampled in alternating order: their median seconds per
    call, and the median and quartiles of the per-pair ratios second / first."""
    (a, fa), (b, fb) = fns.items()
    t = {a: [], b: []}
    for rep in range(repeats):
        for name, fn in (((a, fa), (b, fb)) if rep % 2 else ((b, fb), (a, fa))):
            t[name].append(sample(fn, min_ms / 1e3))
    ratios = [y / x for x, y in zip(t[a], t[b])]
    q = statistics.quantiles(ratios, n=4, method="inclusive")
    return (statistics.median(t[a]), statistics.median(t[b]),
            f"{statistics.median(ratios):.3f} ({q[0]:.2f}–{q[2]:.2f})")


def operands(rng, B, H):
    """h (B, H), w_hh (3H, H), its transposed copy (H, 3H) and hp (B, 3H)."""
    h = rng.standard_normal((B, H)).astype(np.float32)
    w = (0.1 * rng.standard_normal((3 * H, H))).astype(np.float32)
    return h, w, np.ascontiguousarray(w.T), np.empty((B, 3 * H), np.float32)


def forms(args):
    print(f"`python benchmarks/gemm.py --forms --threads {args.threads} --repeats "
          f"{args.repeats}`; grucy: {grucy.blas_info()['config']}\n")
    print("| B, H | h @ w_hhᵀ µs | h @ w_hh_t µs | copy / transposed operand (quartiles) |")
    print("|---|---|---|---|")
    rng = np.random.default_rng(0)
    for B, H in [(B, H) for _, B, _, H in GRID] + BEYOND:
        h, w, w_t, out = operands(rng, B, H)
        view, copy, ratio = paired({"view": lambda: grucy.matmul(h, w, out, trans_b=True),
                                    "copy": lambda: grucy.matmul(h, w_t, out)},
                                   args.repeats, args.min_ms)
        print(f"| {B}, {H} | {view * 1e6:.1f} | {copy * 1e6:.1f} | {ratio} |", flush=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--repeats", type=int, default=11)
    ap.add_argument("--min-ms", type=float, default=20.0)
    ap.add_argument("--forms", action="store_true", help="grucy's two forms, not torch")
    args = ap.parse_args()
    grucy.set_num_threads(args.threads)
    if args.forms:
        return forms(args)
    torch.set_num_threads(args.threads)
    blas = [line.strip(" -") for line in torch.__config__.show().splitlines()
            if "Math Kernel Library" in line or "BLAS_INFO" in line]
    print(f"`python benchmarks/gemm.py --threads {args.threads} --repeats {args.repeats}`; "
          f"grucy: {grucy.blas_info()['config']}; torch {torch.__version__}: "
          f"{blas[0].split(',')[0] if blas else 'BLAS not named'}\n")
    print("| T, B, I, H | step product | grucy µs | torch µs | grucy GFLOP/s | torch GFLOP/s "
          "| torch / grucy (quartiles) |")
    print("|---|---|---|---|---|---|---|")
    rng = np.random.default_rng(0)
    for T, B, I, H in GRID:
        h, w, w_t, out = operands(rng, B, H)            # w_t as grucy's forward reads it
        th, tw, tout = torch.from_numpy(h), torch.from_numpy(w), torch.from_numpy(out)
        g, tt, ratio = paired({"grucy": lambda: grucy.matmul(h, w_t, out),
                               "torch": lambda: torch.mm(th, tw.t(), out=tout)},
                              args.repeats, args.min_ms)
        flop = 2 * B * 3 * H * H
        print(f"| {T}, {B}, {I}, {H} | ({B}, {H}) @ ({H}, {3 * H}) | {g * 1e6:.1f} "
              f"| {tt * 1e6:.1f} | {flop / g / 1e9:.1f} | {flop / tt / 1e9:.1f} "
              f"| {ratio} |", flush=True)


if __name__ == "__main__":
    main()
