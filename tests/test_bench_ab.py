"""benchmarks/ab.py: each timing process runs the tree it was given, and the table has a row
per shape and mode. (Its timings are never asserted: noisy machines.)"""
import pathlib
import subprocess
import sys

import grucy

AB = pathlib.Path(__file__).resolve().parent.parent / "benchmarks" / "ab.py"
TREE = pathlib.Path(grucy.__file__).resolve().parent.parent     # the tree under test


def ab(*args, cwd):
    return subprocess.run([sys.executable, str(AB), *map(str, args), "--rounds", "1",
                           "--seconds", "0.01"], capture_output=True, text=True, cwd=cwd,
                          timeout=300)


def test_a_tree_without_a_grucy_of_its_own_is_refused(tmp_path):
    # Run from TREE, the timing process finds TREE's grucy when tmp_path has none: without
    # the check the table compared one build with itself and reported ratios near 1.
    r = ab(tmp_path, TREE, "--shapes", "1,1,1,1", cwd=TREE)
    assert r.returncode != 0
    assert f"{tmp_path}: imported grucy from {TREE / 'grucy'}, not from this tree" in r.stderr


def test_the_table_has_a_row_per_shape_and_mode(tmp_path):
    r = ab(TREE, TREE, "--shapes", "1,1,1,1", "3,2,1,2", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    rows = [line.split("|")[1:3] for line in r.stdout.splitlines()
            if line.startswith("| ") and not line.startswith("| T,")]
    assert [[c.strip() for c in row] for row in rows] == [
        ["1, 1, 1, 1", "inference"], ["1, 1, 1, 1", "training"],
        ["3, 2, 1, 2", "inference"], ["3, 2, 1, 2", "training"]]


def test_a_malformed_shape_is_refused_naming_it(tmp_path):
    r = ab(TREE, TREE, "--shapes", "1,1,1", cwd=tmp_path)
    assert r.returncode == 2 and "'1,1,1': expected T,B,I,H" in r.stderr


def _spinners():
    """Processes running ab.py's busy loop."""
    found = set()
    for d in pathlib.Path("/proc").iterdir():
        try:
            if d.name.isdigit() and b"while True: pass" in (d / "cmdline").read_bytes():
                found.add(d.name)
        except OSError:           # ended meanwhile
            pass
    return found


def test_busy_processes_run_beside_the_timing_and_are_gone_after(tmp_path):
    before = _spinners()
    r = ab(TREE, TREE, "--shapes", "1,1,1,1", "--busy", "2", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert "--busy 2`" in r.stdout, r.stdout          # the command line it prints says so
    assert _spinners() <= before                      # none of its own left spinning
