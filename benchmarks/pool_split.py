"""Does splitting the gate passes over grucy's thread pool pay? A paired A/B in one process.

    python benchmarks/pool_split.py                 # 2 threads, the grid's B >= 32 shapes
    python benchmarks/pool_split.py --threads 4 --pairs 21

With more than one thread, grucy runs each step's gate passes as row blocks on its pool when
every block gets at least grucy._gru.PAR_MIN_UNITS units (rows · H). This script times the
same call with the split on and off (PAR_MIN_UNITS set to 1 or out of reach), alternating
which goes first, and prints the median of the paired ratios split / whole (< 1: the split
is faster). Pairs of neighbouring samples cancel the slow drifts that make separate runs of
a 2-thread benchmark disagree by tens of percent on a shared machine. reset_after=True,
float32; the GEMMs are the same in both arms.
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

SHAPES = [(100, 32, 8, 64), (100, 64, 32, 128), (100, 64, 64, 256), (50, 32, 128, 512)]
OFF = 10 ** 12                 # no block reaches this many units: the caller runs it whole


def sample(fn, min_s):
    """Seconds per call of fn over a sample of at least min_s seconds."""
    fn()
    t0, k = time.perf_counter(), 0
    while time.perf_counter() - t0 < min_s:
        fn()
        k += 1
    return (time.perf_counter() - t0) / k


def paired_ratio(fn, pairs, min_s):
    """Median over pairs of (time with the split) / (time without), alternating the order."""
    threshold = _gru.PAR_MIN_UNITS
    ratios = []
    try:
        for i in range(pairs):
            t = {}
            for units in ((OFF, threshold) if i % 2 else (threshold, OFF)):
                _gru.PAR_MIN_UNITS = units
                t[units] = sample(fn, min_s)
            ratios.append(t[threshold] / t[OFF])
    finally:
        _gru.PAR_MIN_UNITS = threshold
    return statistics.median(ratios)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--pairs", type=int, default=15)
    ap.add_argument("--min-ms", type=float, default=50.0)
    args = ap.parse_args()
    grucy.set_num_threads(args.threads)
    print(f"threads {grucy.get_num_threads()}, PAR_MIN_UNITS {_gru.PAR_MIN_UNITS}, "
          f"{args.pairs} pairs of >= {args.min_ms:g} ms samples; split / whole:")
    for T, B, I, H in SHAPES:
        p, dout = problem(T, B, I, H)

        def inference():
            grucy.gru_forward(**p, reset_after=True, training=False)

        def training():
            out, _, cache = grucy.gru_forward(**p, reset_after=True)
            grucy.gru_backward(dout, None, cache)

        blocks = _gru.gate_blocks(B, H)
        ri = paired_ratio(inference, args.pairs, args.min_ms / 1e3)
        rt = paired_ratio(training, args.pairs, args.min_ms / 1e3)
        print(f"  ({T}, {B}, {I}, {H})  blocks {blocks}  inference {ri:.3f}  training {rt:.3f}")


if __name__ == "__main__":
    main()
