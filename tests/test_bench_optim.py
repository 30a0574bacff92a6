"""benchmarks/optim.py: it runs, checks that grucy's step and the numpy formula agree, and
writes a row per model. (Its timings are never asserted: noisy machines.)"""
import pathlib
import subprocess
import sys

import pytest

OPTIM = pathlib.Path(__file__).resolve().parent.parent / "benchmarks" / "optim.py"


def test_the_table_has_a_row_per_model(tmp_path):
    pytest.importorskip("torch")
    out = tmp_path / "optim.md"
    r = subprocess.run([sys.executable, str(OPTIM), "--repeats", "1", "--min-ms", "0.1",
                        "--out", str(out)], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    rows = [line.split("|")[1:3] for line in out.read_text().splitlines()
            if line.startswith("| ") and not line.startswith("| I,")]
    assert [[c.strip() for c in row] for row in rows] == [
        ["1, 32", "3393"], ["8, 128", "53121"], ["128, 512", "986625"]]
