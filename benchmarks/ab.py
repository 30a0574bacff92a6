"""Two builds of grucy timed against each other: the same calls, fresh processes, as ratios.

    git worktree add ../grucy-old <rev>                      # the build to compare with
    (cd ../grucy-old && python setup.py build_ext --inplace)
    python benchmarks/ab.py ../grucy-old .                  # default shapes, 1 thread
    python benchmarks/ab.py ../grucy-old . --threads 2 --rounds 12 --shapes 100,32,8,64
    python benchmarks/ab.py ../grucy-old . --threads 2 --busy 3      # beside 3 busy processes

Each round starts one process per tree, in alternating order, that imports grucy from its
tree and times every shape and mode for about --seconds each (median of five samples
after a warm-up call); the table shows per shape and mode both trees' medians, in µs per
call, and the median over rounds of new / old (< 1: the new tree is faster), with its
quartiles. Fresh processes because one process can import only one build of an extension
module; alternating rounds because this kind of machine drifts by tens of percent within
minutes, and a ratio taken within a round cancels the drift (benchmarks/run.py's `x floor`
pairs its samples for the same reason). `--busy N` keeps N other processes spinning on the
CPUs throughout (a machine whose cores other work is using: README, "Kernels").

The modes are those of benchmarks/run.py: "inference" is `gru_forward(training=False)`,
"training" is `gru_forward` then `gru_backward`; float32, `reset_after=True` (torch's
function), zero h0 and biases, weights N(0, 0.1²), inputs N(0, 1).
"""
import argparse
import json
import pathlib
import statistics
import subprocess
import sys

DEFAULT_SHAPES = ["1,1,1,1", "50,1,8,32", "200,16,1,32", "100,32,8,64"]

CHILD = r"""
import json, pathlib, sys, time
tree, threads, seconds, shapes = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), json.loads(sys.argv[4])
sys.path.insert(0, tree)
import numpy as np
import grucy
here = pathlib.Path(grucy.__file__).resolve().parent
if here != pathlib.Path(tree).resolve() / "grucy":
    sys.exit(f"{tree}: imported grucy from {here}, not from this tree (is it built in place?)")
grucy.set_num_threads(threads)

def timed(fn):
    fn()
    samples = []
    for _ in range(5):
        t0, k = time.perf_counter(), 0
        while time.perf_counter() - t0 < seconds / 5:
            fn()
            k += 1
        samples.append((time.perf_counter() - t0) / k)
    return sorted(samples)[2]

res = {}
for T, B, I, H in shapes:
    rng = np.random.default_rng(0)
    p = dict(x=rng.standard_normal((T, B, I)).astype(np.float32), h0=np.zeros((B, H), np.float32),
             w_ih=(0.1 * rng.standard_normal((3 * H, I))).astype(np.float32),
             w_hh=(0.1 * rng.standard_normal((3 * H, H))).astype(np.float32),
             b_ih=np.zeros(3 * H, np.float32), b_hh=np.zeros(3 * H, np.float32))
    dout = rng.standard_normal((T, B, H)).astype(np.float32)

    def inference():
        grucy.gru_forward(**p, reset_after=True, training=False)

    def training():
        _, _, cache = grucy.gru_forward(**p, reset_after=True)
        grucy.gru_backward(dout, None, cache)

    for mode, fn in (("inference", inference), ("training", training)):
        res[f"{T}, {B}, {I}, {H}|{mode}"] = timed(fn)
print(json.dumps(res))
"""


def run_child(tree, args, shapes):
    out = subprocess.run([sys.executable, "-c", CHILD, str(tree), str(args.threads),
                          str(args.seconds), json.dumps(shapes)],
                         capture_output=True, text=True)
    if out.returncode != 0:
        sys.exit(out.stderr.strip() or f"{tree}: the timing process failed")
    return json.loads(out.stdout)


def shape(text):
    dims = tuple(int(v) for v in text.split(","))
    if len(dims) != 4 or min(dims) < 1:
        raise argparse.ArgumentTypeError(f"{text!r}: expected T,B,I,H, four integers >= 1")
    return dims


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("old", type=pathlib.Path, help="source tree of the build to compare with")
    ap.add_argument("new", type=pathlib.Path, help="source tree of the build under test")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--rounds", type=int, default=10)
    ap.add_argument("--seconds", type=float, default=0.25, help="timing per shape and mode")
    ap.add_argument("--shapes", type=shape, nargs="+", default=[shape(s) for s in DEFAULT_SHAPES])
    ap.add_argument("--busy", type=int, default=0,
                    help="other processes kept spinning on the CPUs while it times")
    args = ap.parse_args()
    times = {"old": [], "new": []}
    busy = [subprocess.Popen([sys.executable, "-c", "while True: pass"])
            for _ in range(args.busy)]
    try:
        for r in range(args.rounds):
            for name in (("old", "new") if r % 2 == 0 else ("new", "old")):
                times[name].append(run_child(getattr(args, name), args, args.shapes))
            print(f"round {r + 1}/{args.rounds}", file=sys.stderr, flush=True)
    finally:
        for b in busy:
            b.kill()
            b.wait()
    print(f"`python benchmarks/ab.py {args.old} {args.new} --threads {args.threads} "
          f"--rounds {args.rounds}" + (f" --busy {args.busy}" if args.busy else "") + "`\n")
    print("| T, B, I, H | mode | old µs | new µs | new / old (quartiles) |")
    print("|---|---|---|---|---|")
    for key in times["old"][0]:
        old = [t[key] for t in times["old"]]
        new = [t[key] for t in times["new"]]
        ratios = [n / o for n, o in zip(new, old)]
        q = statistics.quantiles(ratios, n=4, method="inclusive") if len(ratios) > 1 else ratios * 3
        dims, mode = key.split("|")
        print(f"| {dims} | {mode} | {statistics.median(old) * 1e6:.1f} "
              f"| {statistics.median(new) * 1e6:.1f} | {statistics.median(ratios):.3f} "
              f"({q[0]:.2f}–{q[2]:.2f}) |")


if __name__ == "__main__":
    main()
