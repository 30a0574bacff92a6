"""Does splitting a step's work over grucy's thread pool pay? A paired A/B in one process.

    python benchmarks/pool_split.py                 # gate passes, 2 threads, B >= 32 shapes
    python benchmarks/pool_split.py --split steps   # whole steps as row blocks
    python benchmarks/pool_split.py --threads 4 --pairs 21

With more than one thread grucy splits a step two ways (grucy/_gru.pyx, "threads"):
- `passes`: the step's GEMMs take all rows (OpenBLAS splits them when big enough) and the
  gate passes run as row blocks when every block gets at least PAR_MIN_UNITS units;
- `steps`: each row block does its own GEMMs and passes, one pool run per step, where
  step_blocks allows it (STEP_MIN_UNITS units, and blocks small enough that OpenBLAS keeps
  their GEMMs on one thread).
This script times the same call with one of them on and off (its threshold as shipped, or
out of reach), alternating which goes first, and prints the median of the paired ratios
split / whole (< 1: the split is faster). Pairs of neighbouring samples cancel the slow
drifts that make separate runs of a 2-thread benchmark disagree by tens of percent on a
shared machine. float32, both variants.
"""
import argparse
import pathlib
import statistics
import sys
import time

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent))

import grucy  # noqa: E402
from grucy import _gru  # noqa: E402
from run import problem  # noqa: E402  (benchmarks/run.py: the grid's inputs)

SHAPES = {"passes": [(100, 32, 8, 64), (100, 64, 32, 128), (100, 64, 64, 256),
                     (50, 32, 128, 512)],
          # where step_blocks gives 2 blocks on 2 threads (none of the grid's but the first)
          "steps": [(100, 32, 8, 64), (100, 128, 8, 32), (100, 64, 8, 48), (50, 48, 16, 48)]}
KNOB = {"passes": "PAR_MIN_UNITS", "steps": "STEP_MIN_UNITS"}
OFF = 10 ** 12                 # no block reaches this many units: the caller runs it whole


def sample(fn, min_s):
    """Seconds per call of fn over a sample of at least min_s seconds."""
    fn()
    t0, k = time.perf_counter(), 0
    while time.perf_counter() - t0 < min_s:
        fn()
        k += 1
    return (time.perf_counter() - t0) / k


def paired_ratio(fn, knob, pairs, min_s):
    """Median over pairs of (time with the split) / (time without), alternating the order."""
    threshold = getattr(_gru, knob)
    ratios = []
    try:
        for i in range(pairs):
            t = {}
            for units in ((OFF, threshold) if i % 2 else (threshold, OFF)):
                setattr(_gru, knob, units)
                t[units] = sample(fn, min_s)
            ratios.append(t[threshold] / t[OFF])
    finally:
        setattr(_gru, knob, threshold)
    return statistics.median(ratios)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--split", choices=sorted(SHAPES), default="passes")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--pairs", type=int, default=15)
    ap.add_argument("--min-ms", type=float, default=50.0)
    args = ap.parse_args()
    grucy.set_num_threads(args.threads)
    knob = KNOB[args.split]
    print(f"threads {grucy.get_num_threads()}, {knob} {getattr(_gru, knob)}, "
          f"{args.pairs} pairs of >= {args.min_ms:g} ms samples; split / whole:")
    for T, B, I, H in SHAPES[args.split]:
        p, dout = problem(T, B, I, H)
        for reset_after in (True, False):
            def inference():
                grucy.gru_forward(**p, reset_after=reset_after, training=False)

            def training():
                out, _, cache = grucy.gru_forward(**p, reset_after=reset_after)
                grucy.gru_backward(dout, None, cache)

            blocks = (_gru.gate_blocks if args.split == "passes" else _gru.step_blocks)(B, H)
            ri = paired_ratio(inference, knob, args.pairs, args.min_ms / 1e3)
            rt = paired_ratio(training, knob, args.pairs, args.min_ms / 1e3)
            print(f"  ({T}, {B}, {I}, {H}) reset_after={reset_after!s:5}  blocks {blocks}  "
                  f"inference {ri:.3f}  training {rt:.3f}")


if __name__ == "__main__":
    main()
