"""Does splitting a step's work over grucy's thread pool pay? A paired A/B in one process.

    python benchmarks/pool_split.py                 # gate passes, 2 threads, B >= 32 shapes
    python benchmarks/pool_split.py --split steps   # whole steps as row blocks
    python benchmarks/pool_split.py --split steps --shapes 50,64,16,256 50,32,16,512
    python benchmarks/pool_split.py --threads 4 --pairs 21

With more than one thread grucy splits a step two ways (grucy/_gru.pyx, "threads"):
- `passes`: the step's GEMMs take all rows (OpenBLAS splits them when big enough) and the
  gate passes run as row blocks when every block gets at least PAR_MIN_UNITS units (row-block
  steps are off on both sides, so shapes up to STEP_MAX_H measure this too);
- `steps`: each row block does its own GEMMs and passes, one pool run per step, OpenBLAS
  held at one thread meanwhile, where step_blocks allows it (STEP_MIN_UNITS units, H at
  most STEP_MAX_H).
This script times the same call with one of them on and off (its threshold as shipped, or
out of reach), alternating which goes first, and prints the median of the paired ratios
split / whole (< 1: the split is faster). With --split steps the split side lifts
STEP_MAX_H, so that shapes past it show what blocks would do there. Pairs of neighbouring
samples cancel the slow drifts that make separate runs of a 2-thread benchmark disagree by
tens of percent on a shared machine. float32, both variants.
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
          # where step_blocks gives 2 blocks on 2 threads: two of the grid's, then around
          # STEP_MAX_H (the last three are past it, so run as blocks only here)
          "steps": [(100, 32, 8, 64), (100, 64, 32, 128), (100, 128, 8, 32), (50, 16, 16, 128),
                    (50, 32, 16, 128), (50, 32, 16, 192), (50, 64, 16, 256),
                    (50, 32, 16, 512)]}
OFF = 10 ** 12                 # no block reaches this many units: the caller runs it whole
# _gru's settings for each side of a pair: the split as shipped (steps: at any H) or none
SIDES = {"passes": ({"STEP_MIN_UNITS": OFF}, {"PAR_MIN_UNITS": OFF, "STEP_MIN_UNITS": OFF}),
         "steps": ({"STEP_MAX_H": OFF}, {"STEP_MIN_UNITS": OFF})}


def sample(fn, min_s):
    """Seconds per call of fn over a sample of at least min_s seconds."""
    fn()
    t0, k = time.perf_counter(), 0
    while time.perf_counter() - t0 < min_s:
        fn()
        k += 1
    return (time.perf_counter() - t0) / k


def paired_ratio(fn, sides, pairs, min_s):
    """Median over pairs of (time with the split) / (time without), alternating the order;
    sides: (split, whole), each {name: value} for grucy._gru's settings."""
    shipped = {name: getattr(_gru, name) for side in sides for name in side}
    ratios = []
    try:
        for i in range(pairs):
            t = {}
            for k in ((1, 0) if i % 2 else (0, 1)):
                for name, value in {**shipped, **sides[k]}.items():
                    setattr(_gru, name, value)
                t[k] = sample(fn, min_s)
            ratios.append(t[0] / t[1])
    finally:
        for name, value in shipped.items():
            setattr(_gru, name, value)
    return statistics.median(ratios)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--split", choices=sorted(SHAPES), default="passes")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--pairs", type=int, default=15)
    ap.add_argument("--min-ms", type=float, default=50.0)
    ap.add_argument("--shapes", nargs="+", metavar="T,B,I,H",
                    type=lambda v: tuple(int(d) for d in v.split(",")),
                    help="instead of the built-in shapes")
    args = ap.parse_args()
    grucy.set_num_threads(args.threads)
    sides = SIDES[args.split]
    knobs = ", ".join(f"{name} {getattr(_gru, name)}" for side in sides for name in side)
    print(f"threads {grucy.get_num_threads()}, {knobs}, "
          f"{args.pairs} pairs of >= {args.min_ms:g} ms samples; split / whole:")
    for T, B, I, H in args.shapes or SHAPES[args.split]:
        p, dout = problem(T, B, I, H)
        for reset_after in (True, False):
            def inference():
                grucy.gru_forward(**p, reset_after=reset_after, training=False)

            def training():
                out, _, cache = grucy.gru_forward(**p, reset_after=reset_after)
                grucy.gru_backward(dout, None, cache)

            if args.split == "passes":
                blocks = _gru.gate_blocks(B, H)
            else:
                shipped, _gru.STEP_MAX_H = _gru.STEP_MAX_H, OFF
                blocks = _gru.step_blocks(B, H)
                _gru.STEP_MAX_H = shipped
            ri = paired_ratio(inference, sides, args.pairs, args.min_ms / 1e3)
            rt = paired_ratio(training, sides, args.pairs, args.min_ms / 1e3)
            print(f"  ({T}, {B}, {I}, {H}) reset_after={reset_after!s:5}  blocks {blocks}  "
                  f"inference {ri:.3f}  training {rt:.3f}")


if __name__ == "__main__":
    main()
