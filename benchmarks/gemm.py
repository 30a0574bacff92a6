"""One recurrent step's product through grucy's BLAS and through torch's, side by side.

    python benchmarks/gemm.py                 # 1 thread
    python benchmarks/gemm.py --threads 2

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
"""
import argparse
import statistics

import numpy as np
import torch

import grucy
from pool_split import sample  # benchmarks/pool_split.py: seconds per call of a sample

GRID = [(50, 1, 8, 32), (200, 16, 1, 32), (100, 32, 8, 64), (100, 64, 32, 128),
        (100, 64, 64, 256), (50, 32, 128, 512)]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--repeats", type=int, default=11)
    ap.add_argument("--min-ms", type=float, default=20.0)
    args = ap.parse_args()
    grucy.set_num_threads(args.threads)
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
        h = rng.standard_normal((B, H)).astype(np.float32)
        w = (0.1 * rng.standard_normal((3 * H, H))).astype(np.float32)
        w_t = np.ascontiguousarray(w.T)                     # (H, 3H), as grucy's forward
        out = np.empty((B, 3 * H), np.float32)
        th, tw, tout = torch.from_numpy(h), torch.from_numpy(w), torch.from_numpy(out)
        fns = {"grucy": lambda: grucy.matmul(h, w_t, out),
               "torch": lambda: torch.mm(th, tw.t(), out=tout)}
        t = {"grucy": [], "torch": []}
        for rep in range(args.repeats):
            for name in (("grucy", "torch") if rep % 2 else ("torch", "grucy")):
                t[name].append(sample(fns[name], args.min_ms / 1e3))
        ratios = [a / b for a, b in zip(t["torch"], t["grucy"])]
        q = statistics.quantiles(ratios, n=4, method="inclusive")
        g, tt = statistics.median(t["grucy"]), statistics.median(t["torch"])
        flop = 2 * B * 3 * H * H
        print(f"| {T}, {B}, {I}, {H} | ({B}, {H}) @ ({H}, {3 * H}) | {g * 1e6:.1f} "
              f"| {tt * 1e6:.1f} | {flop / g / 1e9:.1f} | {flop / tt / 1e9:.1f} "
              f"| {statistics.median(ratios):.3f} ({q[0]:.2f}–{q[2]:.2f}) |", flush=True)


if __name__ == "__main__":
    main()
