"""The gate passes' compiled copies timed against each other, in one process, as ratios.

    python benchmarks/copies.py                          # AVX-512 against AVX2+FMA, 1 thread
    python benchmarks/copies.py --old 0 --new 1 --threads 2   # AVX2+FMA against the baseline

grucy/_gates.h compiles every gate pass three times (baseline, AVX2+FMA, AVX-512) and runs
the newest the CPU has. This times one build's kernels with the passes' copy switched back
and forth (`grucy._gru._set_simd`): everything else, GEMMs and memory included, is the same
code in the same process, so the ratio is what the copy alone changes. Per shape and mode,
--repeats pairs of samples in alternating order (each sample the mean over >= --min-ms of
calls after a warm-up call); the table gives both copies' median ms and the median of the
per-pair ratios new / old with their quartiles (< 1: the newer copy is faster).

The modes are those of benchmarks/run.py: "inference" is `gru_forward(training=False)`,
"training" is `gru_forward` then `gru_backward`; float32, `reset_after=True`, zero h0 and
biases, weights N(0, 0.1²), inputs N(0, 1).
"""
import argparse
import statistics
import sys

import numpy as np

import grucy
from grucy import _gru
from pool_split import sample  # benchmarks/pool_split.py: seconds per call of a sample

GRID = [(200, 16, 1, 32), (100, 32, 8, 64), (100, 64, 32, 128), (100, 64, 64, 256),
        (50, 32, 128, 512)]


def calls(T, B, I, H):
    rng = np.random.default_rng(0)
    f32 = np.float32
    p = dict(x=rng.standard_normal((T, B, I)).astype(f32), h0=np.zeros((B, H), f32),
             w_ih=(0.1 * rng.standard_normal((3 * H, I))).astype(f32),
             w_hh=(0.1 * rng.standard_normal((3 * H, H))).astype(f32),
             b_ih=np.zeros(3 * H, f32), b_hh=np.zeros(3 * H, f32))
    dout = rng.standard_normal((T, B, H)).astype(f32)

    def inference():
        grucy.gru_forward(**p, reset_after=True, training=False)

    def training():
        _, _, cache = grucy.gru_forward(**p, reset_after=True)
        grucy.gru_backward(dout, None, cache)

    return (("inference", inference), ("training", training))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--old", type=int, default=1, help="level of the copy to compare with "
                    "(0 baseline, 1 AVX2+FMA; default 1)")
    ap.add_argument("--new", type=int, default=2, help="level of the copy under test "
                    "(default 2, AVX-512)")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--repeats", type=int, default=15)
    ap.add_argument("--min-ms", type=float, default=20.0)
    args = ap.parse_args()
    for level in (args.old, args.new):
        if _gru._set_simd(level) != level:
            name = _gru.SIMD_NAMES[level] if 0 <= level < len(_gru.SIMD_NAMES) else level
            sys.exit(f"this CPU or build has no copy {name} (its best: "
                     f"{_gru.SIMD_NAMES[_gru._set_simd()]})")
    _gru._set_simd()
    grucy.set_num_threads(args.threads)
    old, new = _gru.SIMD_NAMES[args.old], _gru.SIMD_NAMES[args.new]
    print(f"`python benchmarks/copies.py --old {args.old} --new {args.new} --threads "
          f"{args.threads} --repeats {args.repeats}`\n")
    print(f"| T, B, I, H | mode | {old} ms | {new} ms | new / old (quartiles) |")
    print("|---|---|---|---|---|")
    try:
        for dims in GRID:
            for mode, fn in calls(*dims):
                t = {args.old: [], args.new: []}
                for rep in range(args.repeats):
                    for level in ((args.old, args.new) if rep % 2 else (args.new, args.old)):
                        _gru._set_simd(level)
                        t[level].append(sample(fn, args.min_ms / 1e3))
                ratios = [n / o for n, o in zip(t[args.new], t[args.old])]
                q = statistics.quantiles(ratios, n=4, method="inclusive")
                print(f"| {', '.join(map(str, dims))} | {mode} "
                      f"| {statistics.median(t[args.old]) * 1e3:.3f} "
                      f"| {statistics.median(t[args.new]) * 1e3:.3f} "
                      f"| {statistics.median(ratios):.3f} ({q[0]:.2f}–{q[2]:.2f}) |",
                      flush=True)
    finally:
        _gru._set_simd()


if __name__ == "__main__":
    main()
