"""The real CLI through subprocess: a run, a user's own config dir, multiruns on the
basic, joblib and submitit_local launchers with a failing job, and the sweep table."""
import csv
import importlib.util
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

from runner.outputs import TIMING_COLUMNS
from runner.sweep import collect, write_table
from runner.testing import tiny

REPO = Path(__file__).resolve().parents[1]


def cli(args, cwd=REPO, env_extra=None, timeout=300):
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    env.pop("GRUCY_RUNNER_CLAIM", None)     # each call a new invocation (runner/rundir.py)
    env.update(env_extra or {})
    return subprocess.run([sys.executable, "-m", "runner", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=timeout)


def test_cli_single_run_progress_and_quiet(tmp_path):
    ov = [o for o in tiny("sine") if o != "quiet=true"]
    r = cli(ov + [f"hydra.run.dir={tmp_path / 'loud'}"])
    assert r.returncode == 0, r.stderr
    assert "epoch 1/2" in r.stdout + r.stderr and "persistence" in r.stdout + r.stderr
    assert " left " in r.stdout + r.stderr   # the time-left estimate on every epoch line
    log = (tmp_path / "loud" / "runner.log").read_text()
    assert "epoch 2/2" in log
    assert json.loads((tmp_path / "loud" / "summary.json").read_text())["status"] == "ok"

    r = cli(ov + ["quiet=true", f"hydra.run.dir={tmp_path / 'quiet'}"])
    assert r.returncode == 0, r.stderr
    assert "epoch" not in r.stdout + r.stderr
    assert "test rmse" in r.stdout + r.stderr                # the result still shows
    assert "epoch 2/2" in (tmp_path / "quiet" / "runner.log").read_text()   # the log keeps it


def _signalled_at_epoch_2(run_dir, signum):
    """Run a long training into ``run_dir``, send it ``signum`` once its second epoch is
    logged, and return (returncode, stdout, stderr)."""
    import signal
    import time
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    # A shell starts a background job (pytest ... &) with SIGINT ignored, and the child would
    # inherit that: restore the default so that Python turns SIGINT into KeyboardInterrupt.
    p = subprocess.Popen([sys.executable, "-m", "runner", *tiny("sine"), "trainer.epochs=100000",
                          f"hydra.run.dir={run_dir}"], cwd=REPO, env=env, text=True,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    log, deadline = run_dir / "runner.log", time.monotonic() + 120
    try:
        while not (log.exists() and re.search(r"epoch +2/", log.read_text())):
            assert p.poll() is None, p.communicate()          # ended before its second epoch
            assert time.monotonic() < deadline, "no second epoch in 120 s"
            time.sleep(0.1)
        p.send_signal(signum)
        out, err = p.communicate(timeout=60)
    finally:
        if p.poll() is None:                                  # never leave a run behind
            p.kill()
            p.wait()
    return p.returncode, out, err


def test_cli_ctrl_c_says_how_to_resume_without_a_traceback(tmp_path):
    """Ctrl-C printed Hydra's re-raised KeyboardInterrupt traceback after the resume hint."""
    import signal
    run_dir = tmp_path / "run"
    code, out, err = _signalled_at_epoch_2(run_dir, signal.SIGINT)
    assert code == 130, (out, err)
    assert f"resume={run_dir}" in out + err and "Traceback" not in out + err, (out, err)
    assert json.loads((run_dir / "summary.json").read_text())["status"] == "interrupted"


def test_a_ctrl_c_during_the_imports_exits_130_without_a_traceback(tmp_path):
    # the first fraction of a second is imports; a Ctrl-C there printed Python's traceback
    # through them. A stand-in omegaconf first on the path delivers it, at a known point.
    fake = tmp_path / "path" / "omegaconf"
    fake.mkdir(parents=True)
    (fake / "__init__.py").write_text("raise KeyboardInterrupt\n")
    r = cli(["trainer.epochs=1"], cwd=tmp_path,
            env_extra={"PYTHONPATH": os.pathsep.join([str(tmp_path / "path"), str(REPO)])})
    assert r.returncode == 130 and r.stderr == "" and r.stdout == "", r.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["path"]     # no run directory


def test_a_second_signal_while_a_stopped_sweep_writes_its_table_is_let_go(tmp_path):
    # drawing the table takes half a second: a second kill there ended the launcher by
    # SIGTERM's default action (exit -15, no message), a second Ctrl-C with a traceback.
    # In a process of its own: the signals are real, and the test must not take them
    import signal
    (tmp_path / "s").mkdir()
    probe = f"""
import os, signal
from pathlib import Path
from runner import sweep
sweep.started = Path({str(tmp_path / 's')!r})
real = sweep.write_table
def twice(*args, **kwargs):
    os.kill(os.getpid(), signal.SIGTERM)
    os.kill(os.getpid(), signal.SIGINT)
    return real(*args, **kwargs)
sweep.write_table = twice
sweep.record_stop("SIGTERM")
print("handlers back:", signal.getsignal(signal.SIGINT) is signal.default_int_handler,
      signal.getsignal(signal.SIGTERM) is signal.SIG_DFL)
"""
    # SIGINT's default restored, as _signalled_at_epoch_2 does: a pytest started in the
    # background (pytest ... &) passes SIGINT on ignored, and Python then installs no handler
    r = subprocess.run([sys.executable, "-c", probe], cwd=tmp_path, text=True, capture_output=True,
                       env={**os.environ, "PYTHONPATH": str(REPO)}, timeout=120,
                       preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    assert r.returncode == 0, (r.returncode, r.stderr)
    assert r.stderr.startswith("error: the sweep was stopped (SIGTERM) before its end: 0 of the 0 jobs"), r.stderr
    assert r.stdout.strip() == "handlers back: True True"
    assert (tmp_path / "s" / "sweep_results.md").read_text().startswith("# Sweep results: 0 jobs")


def test_a_sigterm_during_the_imports_exits_143_and_leaves_sigterm_to_the_run(tmp_path):
    # SIGTERM's default action ended the process there: exit -15, not the shell's 143. A
    # stand-in omegaconf first on the path sends it, at a known point. Once the imports are
    # done, the default action is given back, for the run's own handling to take over
    fake = tmp_path / "path" / "omegaconf"
    fake.mkdir(parents=True)
    (fake / "__init__.py").write_text("import os, signal\nos.kill(os.getpid(), signal.SIGTERM)\n"
                                      "import time\ntime.sleep(5)\n")
    r = cli(["trainer.epochs=1"], cwd=tmp_path,
            env_extra={"PYTHONPATH": os.pathsep.join([str(tmp_path / "path"), str(REPO)])})
    assert r.returncode == 143 and r.stderr == "" and r.stdout == "", (r.returncode, r.stderr)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["path"]     # no run directory
    probe = ("import signal, runpy\n"
             "runpy.run_module('runner.__main__', run_name='not_main')\n"
             "print(signal.getsignal(signal.SIGTERM) is signal.SIG_DFL)\n")
    r = subprocess.run([sys.executable, "-c", probe], cwd=tmp_path, text=True, capture_output=True,
                       env={**os.environ, "PYTHONPATH": str(REPO)})
    assert r.stdout.strip() == "True", r.stderr


def test_a_grucy_that_cannot_be_imported_is_one_line_and_no_run_directory(tmp_path):
    # An installed runner started from a checkout's root, whose grucy/ has no compiled
    # modules (README, "The experiment runner"): the run logged grucy's ImportError, then
    # could not write its summary.json (the runner writes files through grucy.io) and ended
    # in a traceback, leaving a run directory without one. A stand-in grucy first on the
    # path refuses to import as that one does
    fake = tmp_path / "path" / "grucy"
    fake.mkdir(parents=True)
    (fake / "__init__.py").write_text("raise ImportError('grucy is not built here')\n")
    env = {"PYTHONPATH": os.pathsep.join([str(tmp_path / "path"), str(REPO)])}
    r = cli(["trainer.epochs=1"], cwd=tmp_path, env_extra=env)
    assert (r.returncode, r.stderr) == (1, "error: ImportError: grucy is not built here\n"), r.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["path"]     # no run directory
    r = cli(["--help"], cwd=tmp_path, env_extra=env)                   # runs nothing: no grucy
    assert r.returncode == 0 and "model: bigru, gru, gru_reset_after" in r.stdout, r.stderr


def test_cli_sigterm_is_recorded_as_an_interruption_with_its_continue_command(tmp_path):
    """SIGTERM (kill, a batch system's time limit) ended the process at once: exit 143 with
    no summary.json and no continue command, where Ctrl-C leaves both (a fuzzing pass)."""
    import signal
    run_dir = tmp_path / "run"
    code, out, err = _signalled_at_epoch_2(run_dir, signal.SIGTERM)
    assert code == 143 and "Traceback" not in out + err, (out, err)
    s = json.loads((run_dir / "summary.json").read_text())
    assert s["status"] == "interrupted" and s["error"].startswith("Terminated (SIGTERM): continue with: ")
    assert s["error"].endswith(f"resume={run_dir}"), s["error"]
    assert not list(run_dir.glob(".*.tmp"))


def _children(pid):
    """The PIDs of the live processes whose parent is ``pid`` (from /proc)."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.append(int(stat.parent.name))
    return found


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs Linux's /proc")
def test_sigterm_to_a_parallel_sweep_stops_its_jobs_and_says_what_is_left(tmp_path):
    """kill of a joblib sweep ended its launching process by SIGTERM's default action: exit
    -15 without a word, its two workers orphaned and training on, and the table they went on
    to write counted only their jobs, like a whole sweep's."""
    import signal
    import time
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    sweep = tmp_path / "sweep"
    p = subprocess.Popen([sys.executable, "-m", "runner", "-m", *tiny("sine"), "trainer.epochs=100000",
                          "hydra/launcher=joblib", "hydra.launcher.n_jobs=2", "model.hidden_size=4,5",
                          f"hydra.sweep.dir={sweep}"], cwd=REPO, env=env, text=True,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline, workers = time.monotonic() + 120, []

    def running(pid):
        try:
            return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
        except OSError:
            return False

    try:
        while not all((sweep / j / "runner.log").exists()
                      and re.search(r"epoch +2/", (sweep / j / "runner.log").read_text()) for j in "01"):
            assert p.poll() is None, p.communicate()
            assert time.monotonic() < deadline, "no second epoch in 120 s"
            time.sleep(0.1)
        workers = _children(p.pid)
        assert workers, "no worker processes seen"
        p.send_signal(signal.SIGTERM)
        # orphaned workers held the pipes open, so this timed out
        out, err = p.communicate(timeout=60)
        deadline = time.monotonic() + 30
        while any(running(w) for w in workers):
            assert time.monotonic() < deadline, f"workers {workers} still running"
            time.sleep(0.2)
    finally:
        for pid in [p.pid] + workers:                         # never leave a run behind
            if running(pid):
                os.kill(pid, signal.SIGKILL)
        p.wait()
    assert p.returncode == 143, (out, err)
    assert ("error: the sweep was stopped (SIGTERM) before its end: 0 of the 2 jobs it started had "
            f"finished ok; see {sweep / 'sweep_results.md'}") in err, err
    md = (sweep / "sweep_results.md").read_text()
    assert md.startswith("# Sweep results: 2 jobs, 0 failed, 2 interrupted\n\nThe sweep was stopped"), md
    assert md.count("| interrupted |") == 2 and "no summary.json: stopped with the sweep" in md


def test_sigterm_waits_for_records_and_leaves_other_handlers_alone():
    import signal
    from runner.interrupts import Terminated, interrupts_deferred, sigterm_as_interrupt
    previous = signal.getsignal(signal.SIGTERM)
    try:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        with pytest.raises(Terminated):
            with sigterm_as_interrupt():
                done = []
                with interrupts_deferred():          # held until the records are written
                    os.kill(os.getpid(), signal.SIGTERM)
                    done.append("written")
        assert done == ["written"] and signal.getsignal(signal.SIGTERM) is signal.SIG_DFL
        seen = []
        signal.signal(signal.SIGTERM, lambda signum, frame: seen.append(signum))   # a launcher's
        with sigterm_as_interrupt():
            os.kill(os.getpid(), signal.SIGTERM)
        assert seen == [signal.SIGTERM]
    finally:
        signal.signal(signal.SIGTERM, previous)


def test_a_sigterm_held_after_a_ctrl_c_ends_the_run_as_terminated():
    # both held while the records were written: the SIGTERM (a batch system's time limit)
    # is what the exit status (143) and the summary say, whichever came first
    import signal
    from runner.interrupts import Terminated, interrupts_deferred, sigterm_as_interrupt
    previous = signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGINT)
    try:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        signal.signal(signal.SIGINT, signal.default_int_handler)
        # (a KeyboardInterrupt is caught too, so that a wrong one fails this test, not the session)
        with pytest.raises(KeyboardInterrupt) as stopped:    # not held: at once, as Terminated
            with sigterm_as_interrupt():
                os.kill(os.getpid(), signal.SIGTERM)
                pytest.fail("SIGTERM did not interrupt the block")
        assert stopped.type is Terminated
        with pytest.raises(KeyboardInterrupt) as stopped:
            with sigterm_as_interrupt():
                with interrupts_deferred():
                    os.kill(os.getpid(), signal.SIGINT)
                    os.kill(os.getpid(), signal.SIGTERM)
        assert stopped.type is Terminated
    finally:
        signal.signal(signal.SIGTERM, previous[0])
        signal.signal(signal.SIGINT, previous[1])


def test_interrupt_handling_outside_the_main_thread_is_a_no_op():
    # signal.signal works in the main thread only (ValueError elsewhere): a run in another
    # thread, an application's worker, runs its blocks unchanged and leaves the handlers be
    import signal
    import threading
    from runner.interrupts import interrupts_deferred, sigterm_as_interrupt
    previous = signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGINT)
    done, errors = [], []

    def work():
        try:
            with sigterm_as_interrupt():
                with interrupts_deferred():
                    done.append("written")
        except Exception as exc:
            errors.append(exc)
    try:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        signal.signal(signal.SIGINT, signal.default_int_handler)   # Python's own, as in a run
        t = threading.Thread(target=work)
        t.start()
        t.join()
        assert errors == [] and done == ["written"]
        assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL
        assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    finally:
        signal.signal(signal.SIGTERM, previous[0])
        signal.signal(signal.SIGINT, previous[1])


def test_cli_config_errors_are_one_line_and_nonzero(tmp_path):
    r = cli(["model.hiden_size=3", f"hydra.run.dir={tmp_path}"])
    assert r.returncode != 0
    assert "hiden_size" in r.stderr and "Traceback" not in r.stderr
    r = cli(["data=csv", "data.column=x", f"data.path={tmp_path / 'nope.csv'}", f"hydra.run.dir={tmp_path}"])
    assert r.returncode == 1
    assert "no such file" in r.stderr and "Traceback" not in r.stderr
    r = cli(["name=", f"hydra.run.dir={tmp_path}"])
    assert r.returncode == 1
    assert "error: ConfigError: name='': must be a non-empty label" in r.stderr and "Traceback" not in r.stderr


def test_relative_paths_under_chdir_are_read_from_where_the_command_ran(tmp_path):
    # hydra.job.chdir=true moves the job into its run directory first, and data.path,
    # ckpt_path and resume were read from there: a file beside the user was "no such file"
    (tmp_path / "my.csv").write_text("x\n" + "".join(f"{i % 7}\n" for i in range(60)))
    data = ["data.column=x", "data.path=my.csv"]
    moved = ["hydra.job.chdir=true"]
    r = cli(tiny("csv", data + moved + ["trainer.stop_after=1", "hydra.run.dir=run"]), cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert json.loads((tmp_path / "run" / "summary.json").read_text())["status"] == "interrupted"
    r = cli(tiny("csv", data + moved + ["resume=run", "hydra.run.dir=more"]), cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert json.loads((tmp_path / "more" / "summary.json").read_text())["status"] == "ok"
    # an evaluation reads the checkpoint's data.path (my.csv) from here too
    r = cli(["train=false", "ckpt_path=run", *moved, "hydra.run.dir=eval"], cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "eval" / "predictions.csv").is_file()
    # and a missing file's message says where it was looked for: beside the user
    r = cli(["data=csv", "data.column=x", "data.path=nope.csv", *moved, "hydra.run.dir=bad"],
            cwd=tmp_path)
    assert r.returncode == 1 and "Traceback" not in r.stderr
    assert (f"error: DataError: data.path='nope.csv': no such file (looked for {tmp_path}/nope.csv; "
            "a relative path is read from the directory you run from)") in r.stderr, r.stderr


def test_cli_overrides_with_interpolations_are_recorded_as_typed(tmp_path):
    # the run read Hydra's list of overrides through OmegaConf, which resolved them:
    # "seed=${trainer.epochs}" was recorded as "seed=2", and "trainer.epochs=${nope}"
    # raised there, before the run could report it (a traceback, no summary.json)
    r = cli(tiny("sine", ["seed=${trainer.epochs}", f"hydra.run.dir={tmp_path / 'ok'}"]))
    assert r.returncode == 0, r.stderr
    assert "seed=${trainer.epochs}" in json.loads((tmp_path / "ok" / "summary.json").read_text())["overrides"]
    r = cli(tiny("sine", ["trainer.epochs=${nope}", f"hydra.run.dir={tmp_path / 'bad'}"]))
    assert r.returncode == 1 and "Traceback" not in r.stderr
    assert re.search(r"^error: ConfigError: trainer\.epochs=\$\{nope\}: cannot be resolved", r.stderr, re.M), r.stderr
    s = json.loads((tmp_path / "bad" / "summary.json").read_text())
    assert s["status"] == "failed" and "trainer.epochs=${nope}" in s["overrides"]


@pytest.mark.parametrize("arg, why", [("name=${oc.env:GRUCY_UNSET}", "GRUCY_UNSET' not found"),
                                       ("train=${nope}", "key 'nope' not found"),
                                       ("ckpt_path=${nope}", "key 'nope' not found")])
def test_cli_a_run_directory_key_that_does_not_resolve_is_one_line(tmp_path, arg, why):
    # found by a fuzzing pass: the run directory is made of name, train and ckpt_path, and
    # Hydra resolves it before any runner code; its error formatting failed on the
    # exception and printed some 200 lines ("An error occurred during Hydra's exception
    # formatting")
    assert "GRUCY_UNSET" not in os.environ
    r = cli([arg, "trainer.epochs=1"], cwd=tmp_path)
    assert r.returncode == 1 and len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert r.stderr.startswith(f"error: {arg}: cannot be resolved: ") and why in r.stderr, r.stderr
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("args, key, why", [
    (["hydra.run.dir=${nope}"], "hydra.run.dir", "key 'nope' not found"),
    (["-m", "hydra.sweep.dir=${nope}"], "hydra.sweep.dir", "key 'nope' not found"),
    # resolved per job (it names each job's directory), so only once the sweep has begun
    (["-m", "hydra.sweep.subdir=${oc.env:GRUCY_UNSET}"], "hydra.sweep.subdir", "GRUCY_UNSET' not found")])
def test_cli_a_hydra_directory_that_does_not_resolve_ends_in_one_error_line(tmp_path, args, key, why):
    # Hydra resolves these outside any runner code: its error formatting failed on the
    # exception ("An error occurred during Hydra's exception formatting", which it still
    # prints) and re-raised it, some 90 lines; hydra.sweep.dir was Hydra's own traceback
    assert "GRUCY_UNSET" not in os.environ
    r = cli(args + ["trainer.epochs=1"], cwd=tmp_path)
    assert r.returncode == 1 and "Traceback" not in r.stderr, r.stderr
    assert r.stderr.strip().splitlines()[-1].startswith(f"error: {key}: cannot be resolved: ")
    assert why in r.stderr and len(r.stderr.strip().splitlines()) <= 5, r.stderr


def test_a_search_of_no_trials_is_refused_before_hydra():
    # found by a fuzzing pass: with -m hparams_search=sine_optuna, Optuna's sweeper ran no
    # trial and then asked for the best one: "ValueError: No trials are completed yet"
    from runner.cli import argv_error
    for arg in ("hydra.sweeper.n_trials=0", "hydra.sweeper.n_trials=-3", "+hydra.sweeper.n_trials=0_0"):
        assert argv_error(["-m", "hparams_search=sine_optuna", arg]) == (
            f"{arg}: a search needs at least one trial"), arg
    for arg in ("hydra.sweeper.n_trials=1", "hydra.sweeper.n_trials=1_0"):
        assert argv_error([arg]) is None, arg


def test_what_hydra_refuses_with_a_traceback_is_one_line_before_it(tmp_path, monkeypatch):
    # found by a fuzzing pass: Hydra's ValueError ("Only one of --run, --multirun, --cfg
    # ..."), a FileExistsError from making the run directory, joblib's "n_jobs == 0 in
    # Parallel has no meaning", each a traceback
    from runner.cli import argv_error
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HOME", str(tmp_path))       # ~/afile: the same file, by the home dir
    (tmp_path / "afile").write_text("")
    for argv, message in [
            (["--cfg", "job", "-m"], "--multirun and --cfg: give one of them"),
            (["-m", "--info"], "--multirun and --info: give one of them"),
            (["hydra.run.dir=afile"], "hydra.run.dir=afile: afile exists and is not a directory"),
            (["-m", "hydra.sweep.dir='afile'", "seed=1,2"], "afile exists and is not a directory"),
            (["hydra.run.dir=~/afile"], f"hydra.run.dir=~/afile: {tmp_path / 'afile'} exists and is not"),
            (["-m", "hydra/launcher=joblib", "hydra.launcher.n_jobs=0"],
             "hydra.launcher.n_jobs=0: joblib runs n_jobs jobs at once: 1 or more"),
            (["-m", "hydra/launcher=joblib", "hydra.launcher.n_jobs=00"],      # Hydra reads 0
             "hydra.launcher.n_jobs=00: joblib runs n_jobs jobs at once: 1 or more")]:
        assert message in (argv_error(argv) or ""), argv
    # an argument argparse refuses is Hydra's to refuse, in its own words: no SystemExit here
    for argv in (["--cfg", "job"], ["-m", "seed=1,2"], ["hydra.run.dir=new"], ["hydra.run.dir=."],
                 ["hydra.launcher.n_jobs=-1"], ["hydra.launcher.n_jobs=10"], ["--help"],
                 ["--no-such-flag"]):
        assert argv_error(argv) is None, argv


def test_a_run_directory_key_that_does_not_resolve_is_refused_beside_a_sweep_or_hydra_key():
    # the config is composed without the sweep's values (seed=1,2 is a list only to -m) and
    # without hydra.* settings: with them in, composing failed and the key went unchecked
    from runner.cli import argv_error
    assert "GRUCY_UNSET" not in os.environ
    for argv in (["-m", "name=${oc.env:GRUCY_UNSET}", "seed=1,2"],
                 ["name=${oc.env:GRUCY_UNSET}", "hydra.run.dir=elsewhere"]):
        assert (argv_error(argv) or "").startswith("name=${oc.env:GRUCY_UNSET}: cannot be resolved: "), argv


def test_run_directory_keys_that_resolve_pass_to_hydra():
    from runner.cli import argv_error
    for arg in ("name=w${data.window}", "name=${hydra:job.name}", "name=plain", "train=true",
                "seed=${nope}"):             # seed's is the run's to say (runner.config.resolve)
        assert argv_error([arg]) is None, arg


@pytest.mark.parametrize("arg, given, instead", [
    ("scheduler=null", "null", "scheduler=none is the constant learning rate"),
    ("hparams_search=null", "null", "leave it out"),
    ("model=null", "null", "choose one of: "),
    # Hydra's own groups too (their options come from plugins as well as conf/hydra)
    ("hydra/launcher=null", "null", "leave it out for Hydra's default"),
    ("hydra/sweeper=null", "null", "leave it out for Hydra's default"),
    # not only null: any value Hydra's parser does not read as a name (a fuzzing pass)
    ("scheduler=false", "false", "scheduler=none is the constant learning rate"),
    ("optimizer=1e-3", "a number", "(to set one of its keys: optimizer.<key>=1e-3)"),
])
def test_cli_a_config_group_set_to_null_or_a_number_is_one_line(tmp_path, arg, given, instead):
    # Hydra refused it with a raw traceback ("Config group override must be a string or a
    # list. Got NoneType", or bool, float, ...) naming neither the argument nor what to write
    r = cli([arg, f"hydra.run.dir={tmp_path}"])
    assert r.returncode == 1 and "Traceback" not in r.stderr, r.stderr
    assert r.stderr.startswith(f"error: {arg}: a config group cannot be set to {given}"), r.stderr
    assert instead in r.stderr and len(r.stderr.strip().splitlines()) == 1


def test_only_a_config_group_set_to_something_but_a_name_is_refused_before_hydra():
    from runner.cli import argv_error
    for arg, given in [("experiment=True", "true"), ("+scheduler=0", "a number"),
                       ("scheduler=inf", "a number"), ("scheduler={a:1}", "a dict"),
                       ("hydra/launcher=1_000", "a number")]:
        assert f"{arg}: a config group cannot be set to {given} " in argv_error([arg]), arg
    # after an argument Hydra's parser refuses (its own words, later), the next is still read
    assert argv_error(["scheduler=(", "model=null"]).startswith("model=null: a config group cannot be set to null")
    # names (quoted ones too), lists of them, sweeps, keys inside a group, and syntax
    # Hydra itself refuses in its own words pass through
    for arg in ("scheduler=step", "scheduler='false'", "scheduler=[step]", "scheduler=step,cosine",
                "optimizer.lr=1e-3", "trainer.epochs=false", "scheduler=(", "nogroup=1"):
        assert argv_error([arg]) is None, arg


@pytest.mark.parametrize("arg", ["name=../elsewhere", "name=a/../../elsewhere", "++name=x/.."])
def test_cli_a_name_that_leaves_outputs_is_refused_before_hydra(tmp_path, arg):
    # name=../x wrote the run to ./x: Hydra creates outputs/<name>/<date_time> before any
    # runner check could see the name
    r = cli([arg], cwd=tmp_path)
    assert r.returncode == 1 and "Traceback" not in r.stderr, r.stderr
    assert r.stderr.startswith(f"error: {arg}: a run is written to outputs/<name>/"), r.stderr
    assert list(tmp_path.iterdir()) == []            # nothing created, here or above


def test_a_name_with_dots_inside_a_component_is_not_refused():
    """Mutant a25: the check looked for ".." as a path component; testing the whole text
    instead refused names such as v1..2, which stay under outputs/, and every test name
    that leaves outputs/ has ".." as a component, so nothing noticed."""
    from runner.cli import argv_error
    for arg in ("name=v1..2", "name=a/b..c", "+name=..x"):
        assert argv_error([arg]) is None, arg
    assert argv_error(["name=a/../.."]).startswith("name=a/../..: a run is written to outputs/")


@pytest.mark.parametrize("arg", ["name=${oc.env:NM}", "name=.", "name=a//b", "name=a/./b"])
def test_cli_a_name_that_only_resolves_to_leave_outputs_is_refused_in_one_line(tmp_path, arg):
    # found by a review: the check above reads the literal argument, so NM=../x with
    # name=${oc.env:NM} wrote the run to ./x, and name=. put it straight into outputs/
    (tmp_path / "work").mkdir()
    r = cli([arg, "trainer.epochs=1"], cwd=tmp_path / "work", env_extra={"NM": "../x"})
    assert r.returncode == 1 and len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert "so a name is a relative path with no empty, '.' or '..' part" in r.stderr, r.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["work"]
    assert not any((tmp_path / "work").rglob("summary.json"))


def test_cli_a_run_directory_that_cannot_be_made_is_one_line(tmp_path):
    # found by a review: a file named outputs where the run directory goes, or a name past
    # the file system's limit, ended in a hundred-line traceback from Hydra's formatting
    (tmp_path / "outputs").write_text("not a directory")
    r = cli(["trainer.epochs=1"], cwd=tmp_path)
    assert r.returncode == 1 and len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert r.stderr.startswith("error: cannot make the run directory 'outputs/sine-gru/"), r.stderr
    (tmp_path / "long").mkdir()
    r = cli(["name=" + "n" * 300, "trainer.epochs=1"], cwd=tmp_path / "long")
    assert r.returncode == 1 and len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert "cannot make the run directory" in r.stderr and "name too long" in r.stderr, r.stderr


def test_an_experiment_is_named_after_the_data_and_model_it_runs(tmp_path):
    # found by a review: the recipes named themselves (name: elnino-gru), so experiment=elnino
    # data=sine filed a sine run under outputs/elnino-gru; the default <data>-<model> follows
    # what the command line chose, the recipe's own choices included
    for args, name in ((["experiment=adding"], "adding-gru"),
                       (["experiment=adding", "model=gru_reset_after"], "adding-gru_reset_after")):
        r = cli(args + ["trainer.epochs=1", "data.n_train=64", "data.n_val=32", "data.n_test=32",
                        "plots=false", "quiet=true"], cwd=tmp_path)
        assert r.returncode == 0, r.stderr
        (run,) = (tmp_path / "outputs" / name).iterdir()
        assert json.loads((run / "summary.json").read_text())["name"] == name


def test_cli_nan_loss_exits_nonzero(tmp_path):
    r = cli(tiny("sine", ["optimizer=sgd", "optimizer.lr=1e6", "trainer.clip_grad_norm=null",
                          "model.hidden_size=8", f"hydra.run.dir={tmp_path}"]))
    assert r.returncode == 1
    assert "loss became" in r.stderr
    assert json.loads((tmp_path / "summary.json").read_text())["status"] == "failed"


def test_evaluation_takes_name_and_data_path_from_the_command_line(tmp_path):
    # a CSV run with a relative data.path could be evaluated only from the directory it
    # was trained in: the checkpoint's path was used and data.* overrides were ignored
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    rows = [f"{i},{(i % 7) * 0.25 + 0.01 * i:.2f}" for i in range(120)]
    (tmp_path / "a" / "mine.csv").write_text("step,level\n" + "\n".join(rows) + "\n")
    ov = tiny("csv", ["data.path=mine.csv", "data.column=level", "data.time_column=step", "name=mine"])
    r = cli(ov + [f"hydra.run.dir={tmp_path / 'run'}"], cwd=tmp_path / "a")
    assert r.returncode == 0, r.stderr
    ckpt = f"ckpt_path={tmp_path / 'run' / 'best.npz'}"
    # from elsewhere the stored relative path is not found ...
    r = cli(["train=false", ckpt, "plots=false", f"hydra.run.dir={tmp_path / 'ev0'}"], cwd=tmp_path / "b")
    assert r.returncode == 1 and "no such file" in r.stderr, r.stderr
    # ... unless the command line gives it; an explicit name labels the evaluation
    csv_path = tmp_path / "a" / "mine.csv"
    # without the + (the command's data option, sine, has no path) Hydra refuses the key,
    # and the hint's "data has amplitude, frequency, ..." sent the user to the wrong data
    for how in (["train=false", ckpt], [f"resume={tmp_path / 'run'}"]):
        r = cli(how + [f"data.path={csv_path}", f"hydra.run.dir={tmp_path / 'ev0'}"])
        assert r.returncode == 1 and (f"hint: data.path is not a key of the command line's data "
                                      f"option; to give the checkpoint's data a file, append it: "
                                      f"+data.path={csv_path}\n") in r.stderr, r.stderr
    r = cli(["train=false", ckpt, "plots=false", f"+data.path={csv_path}", "name=checked",
             f"hydra.run.dir={tmp_path / 'ev1'}"], cwd=tmp_path / "b")
    assert r.returncode == 0, r.stderr
    s = json.loads((tmp_path / "ev1" / "summary.json").read_text())
    assert s["status"] == "ok" and s["name"] == "checked"
    assert s["test"] == json.loads((tmp_path / "run" / "summary.json").read_text())["test"]
    assert (tmp_path / "ev1" / "predictions.csv").read_text() == (tmp_path / "run" / "predictions.csv").read_text()
    text = (tmp_path / "ev1" / "config.yaml").read_text()
    assert f"path: {csv_path}" in text and "column: level" in text and "name: checked" in text


def test_a_missing_data_path_given_on_the_command_line_is_not_blamed_on_the_checkpoint(tmp_path):
    """Mutant t37: "this data.path is the checkpoint's (where its run read the series)" was
    added to any missing data.path, also one this command line gave (+data.path=FILE),
    which the checkpoint never named; only a stored path had been tested missing."""
    rows = [f"{i},{(i % 7) * 0.25 + 0.01 * i:.2f}" for i in range(120)]
    (tmp_path / "mine.csv").write_text("step,level\n" + "\n".join(rows) + "\n")
    ov = tiny("csv", [f"data.path={tmp_path / 'mine.csv'}", "data.column=level",
                      "data.time_column=step"])
    r = cli(ov + [f"hydra.run.dir={tmp_path / 'run'}"])
    assert r.returncode == 0, r.stderr
    missing = tmp_path / "nope.csv"
    r = cli(["train=false", f"ckpt_path={tmp_path / 'run'}", "plots=false", f"+data.path={missing}",
             f"hydra.run.dir={tmp_path / 'ev'}"])
    assert r.returncode == 1, r.stderr
    assert r.stderr.strip() == f"error: DataError: data.path='{missing}': no such file", r.stderr


def test_an_evaluation_says_which_command_line_settings_it_does_not_use(tmp_path):
    # found by a review: data=mackey_glass, model.hidden_size=64 or seed=5 beside train=false
    # changed nothing, without a word (the evaluation takes the checkpoint's settings)
    r = cli(tiny("sine", ["plots=false", f"hydra.run.dir={tmp_path / 'run'}"]), cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    r = cli(["train=false", f"ckpt_path={tmp_path / 'run'}", "plots=false", "data=mackey_glass",
             "seed=5", "trainer.eval_batch_size=7", "name=ev", f"hydra.run.dir={tmp_path / 'ev'}"],
            cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    log = (tmp_path / "ev" / "runner.log").read_text()
    assert log.split("not used: ")[1].splitlines()[0].split() == ["data=mackey_glass", "seed=5"], log


def test_an_evaluation_is_filed_under_the_checkpoint_runs_name(tmp_path):
    # Hydra names the directory before any task runs: an evaluation of an El Nino model
    # landed in outputs/sine-gru/..., the command line's defaults
    r = cli(tiny("elnino", ["name=nino", "plots=false"]), cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    (run,) = (tmp_path / "outputs" / "nino").iterdir()
    r = cli(["train=false", f"ckpt_path={run}", "plots=false"], cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert sorted(p.name for p in (tmp_path / "outputs").iterdir()) == ["nino"]
    evals = [p for p in (tmp_path / "outputs" / "nino").iterdir() if p != run]
    assert len(evals) == 1
    assert json.loads((evals[0] / "summary.json").read_text())["name"] == "nino"
    # name= still wins, and an unreadable checkpoint leaves the default to report on
    r = cli(["train=false", f"ckpt_path={run}", "plots=false", "name=again"], cwd=tmp_path)
    assert r.returncode == 0 and (tmp_path / "outputs" / "again").is_dir(), r.stderr
    r = cli(["train=false", f"ckpt_path={tmp_path / 'none.npz'}"], cwd=tmp_path)
    assert r.returncode == 1 and "no such checkpoint" in r.stderr, r.stderr
    assert (tmp_path / "outputs" / "sine-gru").is_dir()


USER_PACKAGE = """
import numpy as np
import grucy
from runner.datasets import SeriesDataset

class Square(SeriesDataset):
    def __init__(self, length=300, period=20, **kw):
        super().__init__(**kw)
        self.length, self.p = length, period

    def series(self):
        t = np.arange(self.length)
        return np.sign(np.sin(2 * np.pi * t / self.p)) + 0.0, None

class SignSGD(grucy.optim.SGD):
    def step(self, grads):
        super().step({k: np.sign(g) for k, g in grads.items()})

def two_layer(input_size, output_size, hidden_size=4, seed=None):
    # a model option may be a function returning a grucy model (checkpoints need one)
    return grucy.SequenceModel(input_size, hidden_size, output_size, num_layers=2, seed=seed)
"""


def test_user_config_dir_adds_a_dataset_optimizer_and_model(tmp_path):
    """One class (or function) plus one YAML each, in the user's own directory."""
    (tmp_path / "mypkg").mkdir()
    (tmp_path / "mypkg" / "__init__.py").write_text(USER_PACKAGE)
    for option, text in [("data/square", "_target_: mypkg.Square\nlength: 300\nwindow: 8\n"),
                         ("optimizer/signsgd", "_target_: mypkg.SignSGD\n_partial_: true\nlr: 0.001\n"),
                         ("model/two_layer", "_target_: mypkg.two_layer\nhidden_size: 3\n")]:
        (tmp_path / "conf" / option).parent.mkdir(parents=True)
        (tmp_path / "conf" / f"{option}.yaml").write_text(text)
    env = {"PYTHONPATH": f"{REPO}{os.pathsep}{tmp_path}"}
    base = [o for o in tiny("sine") if not o.startswith(("data", "model"))]
    r = cli(["--config-dir", str(tmp_path / "conf"), "data=square", "optimizer=signsgd", "model=two_layer",
             f"hydra.run.dir={tmp_path / 'out'}"] + base, env_extra=env)
    assert r.returncode == 0, r.stderr
    s = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert s["status"] == "ok"
    from grucy.io import load
    ck = load(str(tmp_path / "out" / "best.npz"))
    assert ck.model.config()["num_layers"] == 2 and ck.model.config()["hidden_size"] == 3
    assert ck.metadata["config"]["optimizer"]["_target_"] == "mypkg.SignSGD"
    # a typo in the user's YAML is caught against the class signature
    (tmp_path / "conf" / "data" / "square.yaml").write_text("_target_: mypkg.Square\nlenght: 300\n")
    r = cli(["--config-dir", str(tmp_path / "conf"), "data=square", f"hydra.run.dir={tmp_path / 'bad'}"] + base,
            env_extra=env)
    assert r.returncode == 1 and "data.lenght" in r.stderr


def sweep_rows(sweep_dir):
    with open(sweep_dir / "sweep_results.csv", newline="") as fh:
        return list(csv.DictReader(fh))


def check_sweep(sweep_dir, n_jobs, n_failed):
    rows = sweep_rows(sweep_dir)
    assert len(rows) == n_jobs
    assert [r["status"] for r in rows] == ["ok"] * (n_jobs - n_failed) + ["failed"] * n_failed
    vals = [float(r["val_rmse"]) for r in rows if r["status"] == "ok"]
    assert vals == sorted(vals)
    assert all(r["error"] for r in rows if r["status"] == "failed")
    md = (sweep_dir / "sweep_results.md").read_text()
    assert f"{n_jobs} job{'s' * (n_jobs != 1)}, {n_failed} failed" in md
    assert (sweep_dir / "sweep_results.png").read_bytes()[:4] == b"\x89PNG"
    return rows


# lr=1e6 without clipping diverges: that job fails, the sweep goes on
FAILING_SWEEP = ["optimizer=sgd", "trainer.clip_grad_norm=null", "model.hidden_size=8",
                 "optimizer.lr=0.01,0.03,1e6"]


def test_multirun_basic_launcher_with_a_failing_job(tmp_path):
    # default sweep directory (multirun/<date_time>) under the working directory
    ov = [o for o in tiny("sine") if not o.startswith("model.hidden_size")]
    r = cli(["-m"] + ov + FAILING_SWEEP, cwd=tmp_path)
    assert r.returncode == 1, r.stderr          # the sweep ran to its end, then says so
    (sweep_dir,) = (tmp_path / "multirun").iterdir()
    table = sweep_dir.relative_to(tmp_path) / "sweep_results.md"     # as the user wrote it
    assert f"error: 1 of 3 jobs failed; their errors are in {table}" in r.stderr
    rows = check_sweep(sweep_dir, 3, 1)
    assert "optimizer.lr=1000000.0" in rows[-1]["overrides"] and "loss became" in rows[-1]["error"]


@pytest.mark.slow
def test_multirun_joblib_sets_one_blas_thread_per_job(tmp_path):
    pytest.importorskip("hydra_plugins.hydra_joblib_launcher")
    ov = [o for o in tiny("sine") if not o.startswith("model.hidden_size")]
    r = cli(["-m", "hydra/launcher=joblib", "hydra.launcher.n_jobs=2", f"hydra.sweep.dir={tmp_path}",
             "model.hidden_size=4,6"] + ov)
    assert r.returncode == 0, r.stderr
    check_sweep(tmp_path, 2, 0)
    for job in ("0", "1"):
        s = json.loads((tmp_path / job / "summary.json").read_text())
        assert s["threads"] == 1   # 2 cores / 2 parallel jobs: no oversubscription


@pytest.mark.slow
def test_multirun_submitit_local_with_a_failing_job(tmp_path):
    pytest.importorskip("hydra_plugins.hydra_submitit_launcher")
    ov = [o for o in tiny("sine") if not o.startswith("model.hidden_size")]
    r = cli(["-m", "hydra/launcher=submitit_local", "hydra.launcher.timeout_min=5",
             f"hydra.sweep.dir={tmp_path}"] + ov + FAILING_SWEEP[:-1] + ["optimizer.lr=0.01,1e6"], timeout=600)
    assert r.returncode == 1 and "1 of 2 jobs failed" in r.stderr, r.stderr
    check_sweep(tmp_path, 2, 1)


def test_sweep_table_from_summaries(tmp_path):
    def job(n, status, val=None, error=None):
        d = tmp_path / str(n)
        d.mkdir()
        (d / "summary.json").write_text(json.dumps({
            "job": n, "status": status, "error": error, "overrides": [f"x={n}"],
            "val": {"rmse": val} if val is not None else None, "test": {"rmse": 1.0, "mae": 0.5},
            "baselines": {"persistence": {"rmse": 2.0}, "ar": {"rmse": 1.5, "order": 3}}}))
    job(0, "ok", 0.3)
    job(1, "failed", None, "NonFiniteLoss: loss became nan | bad")
    job(2, "ok", 0.1)
    (tmp_path / "3").mkdir()
    (tmp_path / "3" / "summary.json").write_text("{truncated")
    rows = write_table(tmp_path, final=True)
    assert [r["job"] for r in rows[:2]] == [2, 0]
    assert {r["status"] for r in rows[2:]} == {"failed"}
    md = (tmp_path / "sweep_results.md").read_text()
    assert md.startswith("# Sweep results: 4 jobs, 2 failed\n\nSorted by")
    assert "loss became nan \\| bad" in md
    assert [line.split("|")[1].strip() for line in md.splitlines()[6:]] == ["1", "2", "-", "-"]
    # an ok job without a validation score (an RMSE past float64, stored as null) is listed
    # with the unranked, and not ranked: it was given the rank after the last scored job.
    # A table written while the sweep runs (by each job as it ends) says so: killed, the
    # sweep left one that read like its whole result
    job(4, "ok", None)
    rows = write_table(tmp_path)
    assert [r["job"] for r in rows[:2]] == [2, 0] and rows[2]["job"] == 1
    md = (tmp_path / "sweep_results.md").read_text()
    assert md.startswith("# Sweep results: 5 jobs, 2 failed\n\nSo far: the sweep has not ended")
    assert [line.split("|")[1].strip() for line in md.splitlines()[8:]] == ["1", "2", "-", "-", "-"]


def test_the_sweep_plot_draws_a_bar_per_scored_job_and_labels_the_others(tmp_path, monkeypatch, caplog):
    from contextlib import contextmanager
    from runner import outputs, sweep
    drawn, heights = [], []

    @contextmanager
    def keeping(path, figsize):
        with outputs.drawing(path, figsize) as ax:
            yield ax
            drawn.append([(t.get_text(), t.get_color()) for t in ax.texts])
            heights.append(ax.figure.get_figheight())
    monkeypatch.setattr(sweep, "drawing", keeping)
    sweep._plot(tmp_path / "s.png", [{"job": 0, "status": "ok", "val_rmse": 0.5},
                                     {"job": 1, "status": "ok", "val_rmse": None},
                                     {"job": 2, "status": "failed", "val_rmse": None}])
    assert drawn == [[("  ok, no validation score", "tab:gray"), ("  failed", "tab:red")]]
    assert (tmp_path / "s.png").is_file() and "not drawn" not in caplog.text
    # a bar per job: 30 jobs get a taller figure than 3, at least a fifth of an inch more each
    sweep._plot(tmp_path / "t.png", [{"job": j, "status": "ok", "val_rmse": 1.0} for j in range(30)])
    assert heights[1] - heights[0] >= 27 * 0.2


def test_a_diverged_job_puts_the_sweep_plot_on_a_log_axis(tmp_path, monkeypatch, caplog):
    # lr=1e9's RMSE of 2.7e8 beside 0.02 and 0.03 drew the good jobs' bars zero wide
    from contextlib import contextmanager
    from runner import outputs, sweep
    seen = []

    @contextmanager
    def keeping(path, figsize):
        with outputs.drawing(path, figsize) as ax:
            yield ax
            seen.append((ax.get_xscale(), sorted(p.get_x() + p.get_width() for p in ax.patches),
                         [t.get_position()[0] for t in ax.texts]))
    monkeypatch.setattr(sweep, "drawing", keeping)
    rows = [{"job": 0, "status": "ok", "val_rmse": 0.02}, {"job": 1, "status": "ok", "val_rmse": 2.7e8},
            {"job": 2, "status": "ok", "val_rmse": 0.03}, {"job": 3, "status": "failed", "val_rmse": None}]
    sweep._plot(tmp_path / "s.png", rows)
    scale, ends, texts = seen[0]
    assert scale == "log"
    np.testing.assert_allclose(ends, [0.01, 0.02, 0.03, 2.7e8])   # the failed job's: empty at 0.01
    assert texts == [0.01]
    sweep._plot(tmp_path / "t.png", [dict(r, val_rmse=v) for r, v in zip(rows[:3], (0.02, 1.5, 0.03))])
    assert seen[1][0] == "linear"           # a 75-fold spread stays linear
    assert "not drawn" not in caplog.text


def test_sweep_table_csv_carries_each_jobs_baselines(tmp_path):
    """sweep_results.csv's ar_order is the AR baseline's order (a mixup with persistence's
    entry, which has none, left the column empty unnoticed); its numbers are the summary's."""
    import csv
    (tmp_path / "0").mkdir()
    (tmp_path / "0" / "summary.json").write_text(json.dumps({
        "job": 0, "status": "ok", "overrides": ["x=0"], "val": {"rmse": 0.25},
        "test": {"rmse": 1.0, "mae": 0.5},
        "baselines": {"persistence": {"rmse": 2.0}, "ar": {"rmse": 1.5, "order": 3}},
        "params": 77, "epochs_run": 9, "best_epoch": 4, "seconds": 12.5}))
    write_table(tmp_path)
    (row,) = csv.DictReader((tmp_path / "sweep_results.csv").open())
    assert {k: row[k] for k in ("val_rmse", "test_rmse", "test_mae", "persistence_rmse", "ar_rmse",
                                "ar_order")} == {"val_rmse": "0.25", "test_rmse": "1.0", "test_mae": "0.5",
                                                 "persistence_rmse": "2.0", "ar_rmse": "1.5", "ar_order": "3"}
    # epochs is how many the job ran (epochs_run), not its best epoch
    assert {k: row[k] for k in ("params", "epochs", "seconds")} == {"params": "77", "epochs": "9",
                                                                    "seconds": "12.5"}


def test_a_sweep_over_inputs_tables_the_arx_baseline_of_each_job_with_inputs(tmp_path):
    """sweep_results.csv had AR's columns only, so a job with data.inputs was set beside the
    series-alone baseline: arx_rmse and arx_order are ARX's (refitted here with numpy's
    lstsq, apart from runner.baselines), empty for a job without inputs."""
    from runner.datasets import CSVSeries
    rng = np.random.default_rng(0)
    a = rng.standard_normal(400)
    y = np.r_[np.zeros(2), a[:-2]] + 0.1 * rng.standard_normal(400)
    p = tmp_path / "cov.csv"
    p.write_text("t,y,a\n" + "".join(f"{i},{float(y[i])!r},{float(a[i])!r}\n" for i in range(400)))
    r = cli(["-m", *tiny("csv", [f"data.path={p}", "data.column=y", "data.inputs=[],[a]",
                                 "trainer.epochs=1", f"hydra.sweep.dir={tmp_path / 'sw'}"])])
    assert r.returncode == 0, r.stderr
    rows = {r["overrides"].split()[-1]: r for r in sweep_rows(tmp_path / "sw")}
    assert set(rows) == {"data.inputs=[]", "data.inputs=[a]"}, list(rows)
    plain, row = rows["data.inputs=[]"], rows["data.inputs=[a]"]
    assert plain["arx_rmse"] == plain["arx_order"] == "" and plain["ar_rmse"]

    data = CSVSeries(p, "y", inputs=["a"], window=8).load()

    def design(x, k):                    # [1, the series' and a's last k values]
        return np.hstack([np.ones((len(x), 1)), x[:, -k:, :2].reshape(len(x), -1).astype(np.float64)])
    fits = []
    for k in range(1, 9):
        coef = np.linalg.lstsq(design(data.train.x, k), data.train.y.astype(np.float64), rcond=None)[0]
        val = np.sqrt(np.mean((design(data.val.x, k) @ coef - data.val.y) ** 2))
        fits.append((val, k, np.sqrt(np.mean((design(data.test.x, k) @ coef - data.test.y) ** 2)) * data.std))
    _, order, rmse = min(fits, key=lambda f: f[0])
    assert int(row["arx_order"]) == order
    assert float(row["arx_rmse"]) == pytest.approx(rmse, rel=1e-9)
    # and the job's summary.json, which the table is read from, says the same
    s = json.loads((tmp_path / "sw" / row["dir"] / "summary.json").read_text())
    assert s["baselines"]["arx"] == {**s["baselines"]["arx"], "rmse": float(row["arx_rmse"]), "order": order}
    md = (tmp_path / "sw" / "sweep_results.md").read_text()
    assert "| ar_rmse | ar_order | arx_rmse | arx_order |" in md


def test_sweep_table_md_shows_five_significant_digits(tmp_path):
    """The markdown table rounds RMSEs to 5 significant digits: two jobs 0.123456 and
    0.123471 apart in the 4th must stay apart to be ranked by eye."""
    for n, val in ((0, 0.123456), (1, 0.123471)):
        (tmp_path / str(n)).mkdir()
        (tmp_path / str(n) / "summary.json").write_text(json.dumps(
            {"job": n, "status": "ok", "val": {"rmse": val}}))
    write_table(tmp_path)
    md = (tmp_path / "sweep_results.md").read_text()
    assert "| 0.12346 |" in md and "| 0.12347 |" in md, md


def test_a_summary_in_the_sweep_directory_itself_is_no_job(tmp_path):
    """Jobs are the directories below the sweep directory: a summary.json at its top is
    skipped (collect excludes it), not listed as a job of its own."""
    (tmp_path / "summary.json").write_text(json.dumps({"job": "top", "status": "failed", "error": "x"}))
    (tmp_path / "0").mkdir()
    (tmp_path / "0" / "summary.json").write_text(json.dumps({"job": 0, "status": "ok", "val": {"rmse": 1.0}}))
    assert [r["job"] for r in write_table(tmp_path)] == [0]
    (tmp_path / "summary.json").write_text("{not json")      # nor an unreadable one
    assert [r["job"] for r in write_table(tmp_path)] == [0]
    # ... unless it is this sweep's job (hydra.sweep.subdir=. puts one there)
    (tmp_path / ".sweep_id").write_text("this\n")
    for s in ("top", "0"):
        path = tmp_path / ("summary.json" if s == "top" else "0/summary.json")
        path.write_text(json.dumps({"job": s, "status": "ok", "sweep": "this", "val": {"rmse": 1.0}}))
    assert sorted(r["job"] for r in write_table(tmp_path)) == ["0", "top"]


def test_a_sweep_into_its_own_directory_or_from_a_moved_job_lists_its_jobs(tmp_path):
    # hydra.sweep.subdir=.: the job's summary.json sits in the sweep directory, which the
    # table skipped: "failed, the job ended without writing its summary.json", exit 1
    r = cli(["-m"] + tiny("sine", ["hydra.sweep.dir=here", "hydra.sweep.subdir=."]), cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    check_sweep(tmp_path / "here", 1, 0)
    # hydra.job.chdir=true with a relative sweep dir (the default is one): each job looked
    # for the sweep directory below its own, wrote its table there, and the sweep said
    # "the sweep launched no job" and exited 1
    r = cli(["-m", "seed=0,1", "hydra.job.chdir=true"] + tiny("sine", ["hydra.sweep.dir=sw"]),
            cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert {row["job"] for row in check_sweep(tmp_path / "sw", 2, 0)} == {"0", "1"}
    assert sorted(p.parent.name for p in (tmp_path / "sw").rglob("sweep_results.csv")) == ["sw"]


def test_a_hand_edited_summary_fails_its_own_row_not_the_table(tmp_path):
    # found by a fuzzing pass: a summary.json of null, a "val" that is a list or an RMSE
    # that is a string failed every later write of the table (an AttributeError, or a str
    # compared with a float in the sort), so the sweep's table stayed as it was
    summaries = {0: {"job": 0, "status": "ok", "val": {"rmse": 0.5}, "test": {"rmse": 0.6}},
                 1: None, 2: [1, 2],
                 3: {"job": 3, "status": "ok", "val": [1], "test": {"rmse": "x"}, "overrides": "ab"},
                 4: {"job": 4, "status": "ok", "val": {"rmse": "abc"}, "baselines": {"ar": 3}}}
    for n, summary in summaries.items():
        (tmp_path / str(n)).mkdir()
        (tmp_path / str(n) / "summary.json").write_text(json.dumps(summary))
    rows = {str(r["job"]): r for r in write_table(tmp_path, final=True)}
    assert [str(r["job"]) for r in collect(tmp_path)][0] == "0"     # the only one scored
    assert (rows["0"]["val_rmse"], rows["0"]["test_rmse"]) == (0.5, 0.6)
    assert rows["1"]["error"] == "unreadable summary: not a JSON object (null)"
    assert rows["2"]["error"] == "unreadable summary: not a JSON object ([1, 2])"
    assert (rows["3"]["val_rmse"], rows["3"]["test_rmse"], rows["3"]["overrides"]) == (None, None, "")
    assert (rows["4"]["val_rmse"], rows["4"]["ar_rmse"]) == (None, None)
    assert (tmp_path / "sweep_results.md").read_text().startswith("# Sweep results: 5 jobs")


def test_sweep_table_lists_failed_jobs_in_job_order(tmp_path):
    for n in (10, 2, 1):
        (tmp_path / str(n)).mkdir()
        (tmp_path / str(n) / "summary.json").write_text(json.dumps({"job": n, "status": "failed", "error": "x"}))
    assert [r["job"] for r in write_table(tmp_path)] == [1, 2, 10]


@pytest.mark.slow
def test_every_experiment_runs_through_the_cli(tmp_path):
    r = cli(["-m", "experiment=glob(*)", "trainer.epochs=1", "quiet=true", "plots=false",
             f"hydra.sweep.dir={tmp_path}"])
    assert r.returncode == 0, r.stderr
    rows = sweep_rows(tmp_path)
    n = len(list((REPO / "conf" / "experiment").glob("*.yaml")))
    assert len(rows) == n and all(r["status"] == "ok" for r in rows), rows


@pytest.mark.slow
@pytest.mark.skipif(not (REPO / "conf" / "hparams_search").is_dir(), reason="no search configs")
def test_optuna_search_records_failed_trials(tmp_path):
    pytest.importorskip("hydra_plugins.hydra_optuna_sweeper")
    ov = [o for o in tiny("sine") if not o.startswith(("model.hidden_size", "trainer.batch_size"))]
    r = cli(["-m", "hparams_search=sine_optuna", "hydra.sweeper.n_trials=3", f"hydra.sweep.dir={tmp_path}",
             "hydra.sweeper.params={model.hidden_size:'choice(4,6)',optimizer.lr:'choice(0.01,1e6)'}",
             "optimizer=sgd", "trainer.clip_grad_norm=null"] + ov)
    rows = sweep_rows(tmp_path)
    assert len(rows) == 3
    assert all(row["status"] == "ok" or "loss became" in row["error"] for row in rows)
    n_failed = sum(row["status"] != "ok" for row in rows)
    assert r.returncode == (1 if n_failed else 0), r.stderr


@pytest.mark.skipif(not (REPO / "conf" / "hparams_search").is_dir(), reason="no search configs")
@pytest.mark.parametrize("where", ["command line", "params"])
def test_an_optuna_value_hydra_cannot_compose_is_refused_before_the_first_trial(tmp_path, where):
    """The Optuna sweeper composes each trial as it draws it: the trial that drew 'abc' ended
    the search with Hydra's error, after the trials before it had run, and its study (in
    memory) and best trial were lost. The basic sweeper refused the same typo up front."""
    pytest.importorskip("hydra_plugins.hydra_optuna_sweeper")
    search = ("model.hidden_size=choice(8,abc)" if where == "command line" else
              "hydra.sweeper.params={model.hidden_size:'choice(8,abc)'}")
    # run where no sweep directory is given: the timestamped one Hydra claims is taken back
    r = cli(["-m", "hparams_search=sine_optuna", "hydra.sweeper.n_trials=4", search,
             "trainer.epochs=1"], cwd=tmp_path)
    assert r.returncode == 1
    assert r.stderr.rstrip().splitlines()[-1].startswith(
        "error: model.hidden_size=choice(8,abc): a trial that draws abc cannot be composed, and "
        "the search would end there (Error merging override model.hidden_size=abc; Value 'abc' "
        "of type 'str' could not be converted to Integer)"), r.stderr
    assert not list(tmp_path.iterdir())          # no trial ran, and no directory is left


# Runs the runner as `python -m runner` would, with the Optuna sweeper hidden from Hydra's
# plugin scan and from imports: what a machine without the optuna extra sees
WITHOUT_OPTUNA = """
import importlib.util, pkgutil, runpy, sys
walk, find = pkgutil.walk_packages, importlib.util.find_spec
pkgutil.walk_packages = lambda *a, **k: (m for m in walk(*a, **k) if "optuna" not in m[1])
importlib.util.find_spec = lambda name, *a, **k: None if "optuna" in name else find(name, *a, **k)
sys.argv = ["runner"] + sys.argv[1:]
runpy.run_module("runner", run_name="__main__", alter_sys=True)
"""


@pytest.mark.parametrize("args", [["-m", "hparams_search=sine_optuna"], ["-m", "hydra/sweeper=optuna"],
                                  ["hparams_search=sine_optuna"]])
def test_a_search_without_the_optuna_extra_says_what_to_install(tmp_path, args):
    script = tmp_path / "without_optuna.py"
    script.write_text(WITHOUT_OPTUNA)
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    r = subprocess.run([sys.executable, str(script), *args, f"hydra.sweep.dir={tmp_path / 'm'}",
                        f"hydra.run.dir={tmp_path / 'r'}"], cwd=REPO, env=env,
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 1
    assert "Could not find 'hydra/sweeper/optuna'" in r.stderr, r.stderr   # Hydra's own error
    assert 'pip install -e ".[optuna]"' in r.stderr, r.stderr


def test_the_install_hint_names_the_extras_packages_for_an_installed_copy(monkeypatch):
    # `pip install -e ".[optuna]"` means nothing without a checkout; the packages themselves
    # come from grucy's installed metadata, here checked against pyproject.toml's list
    import importlib.metadata
    import shlex
    import tomllib
    from runner.cli import extra_requirements, missing_plugin_hint
    try:
        importlib.metadata.requires("grucy")
    except importlib.metadata.PackageNotFoundError:
        pytest.skip("grucy's metadata is not installed")
    extras = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    for extra, packages in extras.items():
        assert extra_requirements(extra) == packages
    assert extra_requirements("no-such-extra") == []
    find = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a, **k: None if "optuna" in name else find(name, *a, **k))
    hint = missing_plugin_hint(["-m", "hparams_search=sine_optuna"])
    assert hint.endswith("or its packages: pip install "
                         + " ".join(shlex.quote(p) for p in extras["optuna"])), hint


def test_an_extras_requirements_are_those_marked_with_its_name_alone(monkeypatch):
    import importlib.metadata
    from runner import cli
    monkeypatch.setattr(importlib.metadata, "requires", lambda name: [
        "numpy>=1.25", 'a==1 ; extra == "optuna"', "b<2; extra == 'optuna-dashboard'",
        'd; extra == "runner"', 'c; python_version >= "3.8" and extra == "optuna"',
        'e; python_version < "3" and extra == "optuna"', 'f; python_version >= "3.8"'])
    # c: a marker of its own as well (missed); e: not for this Python, as pip would skip it
    assert cli.extra_requirements("optuna") == ["a==1", "c"]
    assert cli.extra_requirements("optuna-dashboard") == ["b<2"]


def test_without_grucys_metadata_the_install_hint_names_the_extras_packages_itself(monkeypatch):
    from runner import cli
    find = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a, **k: None if "optuna" in name else find(name, *a, **k))
    monkeypatch.setattr(cli, "extra_requirements", lambda extra: [])
    hint = cli.missing_plugin_hint(["-m", "hparams_search=sine_optuna"])
    assert hint == ('the Optuna sweeper is not installed: pip install -e ".[optuna]" from a checkout '
                    "(the optuna extra: hydra-optuna-sweeper, optuna)")


def test_no_install_hint_when_the_sweeper_is_there_or_not_asked_for(monkeypatch):
    from runner.cli import missing_plugin_hint
    find = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a, **k: None if "optuna" in name else find(name, *a, **k))
    assert missing_plugin_hint(["-m", "hparams_search=sine_optuna"])
    assert missing_plugin_hint(["-m", "hparams_search=null"]) is None
    assert missing_plugin_hint(["-m", "model.hidden_size=4,8"]) is None
    monkeypatch.setattr(importlib.util, "find_spec", find)
    if find("hydra_plugins.hydra_optuna_sweeper") is not None:
        assert missing_plugin_hint(["-m", "hparams_search=sine_optuna"]) is None


@pytest.mark.parametrize("args, meant", [
    (["trainer.epoch=3"], "did you mean trainer.epochs?"),
    (["-m", "model.hiden_size=4,8"], "did you mean model.hidden_size?"),
    # the key is looked up in the config the group choices compose
    (["data=csv", "data.colum=x", "data.path=a.csv"], "did you mean data.column or data.time_column?"),
    (["modl=bigru"], "did you mean model?"),
])
def test_a_misspelt_key_gets_the_near_ones(tmp_path, args, meant):
    # Hydra's refusal offered "+trainer.epoch=3" (to append to the config), which the
    # runner refuses in turn; the key that was meant is one edit away
    r = cli(args + [f"hydra.run.dir={tmp_path / 'r'}", f"hydra.sweep.dir={tmp_path / 'm'}"])
    assert r.returncode == 1 and "Traceback" not in r.stderr
    key = next(a for a in args if "." in a.split("=")[0] or a.startswith("modl")).split("=")[0]
    assert f"hint: {key} is not a key of the config; {meant}\n" in r.stderr, r.stderr
    assert not (tmp_path / "r").exists()      # refused before a run directory was made


def test_a_multirun_refused_before_its_first_job_leaves_no_sweep_directory(tmp_path):
    # Hydra refuses the key while composing the first job, after the sweep directory and
    # its bookkeeping were made: each such attempt left a timestamped directory behind
    r = cli(["-m", "model.hiden_size=4,8"], cwd=tmp_path)
    assert r.returncode == 1 and "did you mean model.hidden_size?" in r.stderr, r.stderr
    assert list(tmp_path.iterdir()) == []            # multirun/ itself was this run's

    (tmp_path / "multirun").mkdir()                  # the user's: kept
    r = cli(["-m", "model.hidden_size=4,abc"], cwd=tmp_path)
    assert r.returncode == 1 and "abc" in r.stderr, r.stderr
    assert list(tmp_path.iterdir()) == [tmp_path / "multirun"]
    assert list((tmp_path / "multirun").iterdir()) == []

    r = cli(["-m", "model.hiden_size=4,8", "hydra.sweep.dir=a/b/c"], cwd=tmp_path)
    assert r.returncode == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["multirun"]

    mine = tmp_path / "mine"                          # a directory that was there: left as it is
    mine.mkdir()
    (mine / "notes.txt").write_text("keep")
    r = cli(["-m", "model.hiden_size=4,8", f"hydra.sweep.dir={mine}"], cwd=tmp_path)
    assert r.returncode == 1 and (mine / "notes.txt").read_text() == "keep"

    (tmp_path / "earlier").mkdir()                    # with the record of a sweep it resumes
    (tmp_path / "earlier" / ".sweep_id").write_text("earlier\n")
    r = cli(["-m", "model.hiden_size=4,8", "resume=earlier/${hydra:job.num}", "hydra.sweep.dir=s"],
            cwd=tmp_path)
    assert r.returncode == 1 and "did you mean model.hidden_size?" in r.stderr, r.stderr
    assert not (tmp_path / "s").exists()


@pytest.mark.parametrize("column", ["load (kW)", "temp°C", "a[1]"])
def test_a_value_hydra_cannot_parse_gets_a_quoting_that_works(tmp_path, column):
    # Hydra said "Unknown function 'load'" or raised a lexer's exception, and not that the
    # column's name only needed quotes that survive the shell
    csv = tmp_path / "d.csv"
    csv.write_text(f"t,{column}\n" + "".join(f"{i},{np.sin(i / 3):.4f}\n" for i in range(120)),
                   encoding="utf-8")
    ov = tiny("csv", [f"data.path={csv}", f"hydra.run.dir={tmp_path / 'r'}"])
    r = cli(ov + [f"data.column={column}"])
    assert r.returncode == 1 and "Traceback" not in r.stderr
    hint = re.search(r"^hint: data\.column=.*; quote the value for Hydra inside the shell's "
                     r"quotes: (.*)$", r.stderr, re.M)
    assert hint, r.stderr
    r = cli(ov + shlex.split(hint.group(1)))     # as a shell would pass it
    assert r.returncode == 0, r.stderr
    assert yaml.safe_load((tmp_path / "r" / "config.yaml").read_text())["data"]["column"] == column


def test_interval_without_the_optuna_sweeper_gets_a_hint_naming_it(tmp_path):
    # the basic sweeper's refusal was a raw traceback naming neither the override nor the
    # sweeper that takes interval()
    r = cli(["-m", "optimizer.lr=interval(0.001,0.01)", "trainer.epochs=1",
             f"hydra.sweep.dir={tmp_path / 's'}"])
    assert r.returncode == 1
    assert r.stderr.rstrip().splitlines()[-1] == (
        "hint: optimizer.lr=interval(0.001,0.01): interval() is a range for the Optuna sweeper to "
        "search; add hparams_search=<a search config of conf/hparams_search> or "
        "hydra/sweeper=optuna. The default sweeper takes a list (a,b,c) or range()"), r.stderr
    assert not (tmp_path / "s").exists()
    from runner.cli import interval_hint
    for argv in (["-m", "hparams_search=sine_optuna", "optimizer.lr=interval(0.001,0.01)"],
                 ["-m", "hydra/sweeper=optuna", "optimizer.lr=tag(log,interval(0.001,0.01))"],
                 ["-m", "optimizer.lr=0.1,0.2", "model.hidden_size=range(4,9,4)"]):
        assert interval_hint(argv) is None, argv
    assert interval_hint(["-m", "optimizer.lr=tag(log, interval(0.001,0.01))"]).startswith(
        "optimizer.lr=tag(log, interval(0.001,0.01)): interval() is a range")
    # without -m Hydra says "requires --multirun": the sweeper alone would meet it again
    assert "; add -m and hparams_search=<a search config" in interval_hint(["optimizer.lr=interval(0,1)"])
    assert "; add hparams_search=" in interval_hint(["--multirun", "optimizer.lr=interval(0,1)"])


def test_no_quoting_hint_for_values_hydra_parses_or_quoting_cannot_save():
    from runner.cli import quoting_hint
    assert quoting_hint(["data.column=load_kW", "-m", "model.hidden_size=4,8"]) is None
    assert quoting_hint(["data.column='load (kW)'", "name=${oc.env:X}"]) is None
    assert quoting_hint(["data.column=a\"b'(c"]) is None    # both quotes inside: no simple quoting
    # a list or sweep mistyped: quoted, it would be a string the key's type refuses
    assert quoting_hint(["model.hidden_size=[4,8", "-m", "optimizer.lr=choice(0.1,0.2"]) is None


def test_only_an_unused_sweep_directory_this_invocation_made_is_discarded(tmp_path, monkeypatch):
    from omegaconf import OmegaConf
    from runner import sweep
    monkeypatch.setattr(sweep, "made", None)
    monkeypatch.setattr(sweep, "finished", None)

    def start(d):
        sweep.SweepTableCallback().on_multirun_start(OmegaConf.create({"hydra": {"sweep": {"dir": str(d)}}}))
        return d
    new = start(tmp_path / "new" / "sweep")            # made, no job: removed with new/
    sweep.discard_unused()
    assert list(tmp_path.iterdir()) == []
    entered = start(tmp_path / "entered")              # a job entered in it: kept as it is
    sweep.start_job(entered, 0, entered / "0")
    sweep.discard_unused()
    assert [e["job"] for e in sweep._entries(entered)] == [0]
    there = tmp_path / "there"                         # an empty directory that was there: kept
    there.mkdir()
    start(there)
    sweep.discard_unused()
    assert there.is_dir()
    done = start(tmp_path / "done")                    # a multirun that ran to its end: kept
    monkeypatch.setattr(sweep, "finished", (0, {}, done / "sweep_results.md", ""))
    sweep.discard_unused()
    assert done.is_dir() and not new.exists()


def test_an_experiments_option_replaced_on_the_command_line_is_named(tmp_path):
    # Hydra said "Key 'seq_len' not in 'SineConfig'", and not that the key was the
    # experiment's, set for the data=adding that data=sine replaced
    r = cli(["experiment=adding", "data=sine", f"hydra.run.dir={tmp_path / 'r'}"])
    assert r.returncode == 1 and "Key 'seq_len' not in 'SineConfig'" in r.stderr, r.stderr
    assert ("hint: experiment=adding picks data=adding and sets data.seq_len for it, which now "
            "apply to data=sine; leave the option out") in r.stderr, r.stderr
    # a run that fails on its own (here, no data.column) is no refusal of Hydra's: no hint
    r = cli(["experiment=elnino", "data=csv", "data.path=nope.csv", f"hydra.run.dir={tmp_path / 'r'}"])
    assert r.returncode == 1 and "data.column is required" in r.stderr and "hint:" not in r.stderr
    # a value Hydra cannot parse is the first thing to fix: its hint comes first
    r = cli(["experiment=elnino", "data=csv", "data.path=x.csv", "data.column=load (kW)"])
    assert r.returncode == 1 and "\nhint: data.column=load (kW): Hydra reads" in r.stderr, r.stderr


def test_no_experiment_hint_where_no_option_it_sets_was_replaced():
    from runner.cli import experiment_hint
    assert experiment_hint(["experiment=adding", "data=adding", "model=gru"]) is None
    assert experiment_hint(["data=sine"]) is None
    assert experiment_hint(["experiment=nope", "data=sine"]) is None     # Hydra lists the options
    assert experiment_hint(["experiment=sine", "data=csv"]) is None      # it sets no data.* key
    two = experiment_hint(["+experiment=elnino", "scheduler=step", "model=bigru"])
    assert two == ("experiment=elnino picks model=gru and sets model.hidden_size for it, which now "
                   "apply to model=bigru; it picks scheduler=plateau and sets scheduler.factor, "
                   "scheduler.patience for it, which now apply to scheduler=step; leave the option "
                   "out, or choose another experiment")


def test_no_key_hint_where_the_keys_are_right():
    from runner.cli import unknown_key_hint
    assert unknown_key_hint(["model.hidden_size=abc", "trainer.epochs=3"]) is None   # a wrong type
    assert unknown_key_hint(["model=bigru", "model.num_layers=3"]) is None
    assert unknown_key_hint(["+model.hiden=1"]) is None      # the runner's refusal names the keys
    assert unknown_key_hint(["model=lstm", "model.hiden=1"]) is None   # Hydra lists the options
    assert unknown_key_hint(["--config-dir", "/nowhere", "model.hiden=1"]) is None
    assert unknown_key_hint(["--config-name", "mine", "model.hiden=1"]) is None   # not conf/'s
    # nothing near: the keys that are there
    assert unknown_key_hint(["trainer.zzz=1"]).startswith(
        "trainer.zzz is not a key of the config; trainer has batch_size, clip_grad_norm, ")


@pytest.mark.parametrize("search", ["hparams_search=sine_optuna", "hydra/sweeper=optuna"])
def test_a_search_without_dash_m_is_refused(tmp_path, search):
    # without -m Hydra ignores the sweeper and trains the defaults once, like a search that
    # found them
    pytest.importorskip("hydra_plugins.hydra_optuna_sweeper")
    r = cli([search, f"hydra.run.dir={tmp_path}"] + tiny("sine"))
    assert r.returncode == 1, r.stderr
    assert "add -m" in r.stderr and "Traceback" not in r.stderr, r.stderr
    assert not (tmp_path / "metrics.csv").exists()
    assert json.loads((tmp_path / "summary.json").read_text())["status"] == "failed"


def test_a_sweep_run_again_into_its_directory_lists_only_its_own_jobs(tmp_path):
    # a fixed hydra.sweep.dir, re-run after a failure: the first sweep's failed job 1 is
    # still on disk, but it is not this sweep's; it must not fail this one or fill its table
    ov = [o for o in tiny("sine") if not o.startswith("model.hidden_size")] + [
        f"hydra.sweep.dir={tmp_path}", "model.hidden_size=4", "optimizer=sgd", "trainer.clip_grad_norm=null"]
    r = cli(["-m", "optimizer.lr=0.01,1e6"] + ov)
    assert r.returncode == 1, r.stderr
    r = cli(["-m", "optimizer.lr=0.02"] + ov)
    assert r.returncode == 0, r.stderr
    (row,) = check_sweep(tmp_path, 1, 0)
    assert row["job"] == "0" and "optimizer.lr=0.02" in row["overrides"]


def test_a_sweep_with_nested_job_directories_lists_them_and_fails(tmp_path):
    # hydra.sweep.subdir=j/${hydra.job.num} (or an override_dirname with a "/" in a path)
    # put the jobs two levels down: the table listed "0 jobs, 0 failed" and the exit code
    # was 0 with every job failed
    ov = [o for o in tiny("sine") if not o.startswith("model.hidden_size")] + [
        f"hydra.sweep.dir={tmp_path}", "hydra.sweep.subdir=j/${hydra.job.num}", "model.hidden_size=4",
        "optimizer=sgd", "trainer.clip_grad_norm=null"]
    r = cli(["-m", "optimizer.lr=0.01,1e6"] + ov)
    assert r.returncode == 1 and "1 of 2 jobs failed" in r.stderr, r.stderr
    assert "2 jobs, 1 failed" in (tmp_path / "sweep_results.md").read_text()


def test_sweep_jobs_given_one_directory_keep_the_first_and_fail(tmp_path):
    # hydra.sweep.subdir=x gave both jobs sw/x: the second replaced the first's files, the
    # table said "1 jobs, 0 failed" and the exit status was 0
    ov = tiny("sine", [f"hydra.sweep.dir={tmp_path}", "hydra.sweep.subdir=x"])
    r = cli(["-m", "seed=0,1"] + ov)
    assert r.returncode == 1, r.stderr
    assert "1 of 2 jobs failed" in r.stderr, r.stderr
    assert "hydra.sweep.subdir gives job 1 the directory of job 0" in r.stdout + r.stderr
    s = json.loads((tmp_path / "x" / "summary.json").read_text())
    assert (s["job"], s["seed"], s["status"]) == (0, 0, "ok")          # job 0's, untouched
    assert "2 jobs, 1 failed" in (tmp_path / "sweep_results.md").read_text()
    (failed,) = [row for row in sweep_rows(tmp_path) if row["status"] != "ok"]
    assert failed["job"] == "1" and "seed=1" in failed["overrides"] and "hydra.sweep.subdir" in failed["error"]
    # a sweep of one job run again into that directory is a new sweep's job, not refused
    r = cli(["-m", "seed=2"] + ov)
    assert r.returncode == 0, r.stderr
    assert json.loads((tmp_path / "x" / "summary.json").read_text())["seed"] == 2


def test_sweep_jobs_claim_their_directories(tmp_path):
    # in process: a second job into one directory is refused, the same job again (a requeued
    # job) and a later sweep's job are not, and a job entered that left no summary is a
    # failed row once the sweep is over
    from runner import sweep
    (tmp_path / ".sweep_id").write_text("first\n")
    assert sweep.start_job(tmp_path, 0, tmp_path / "x", ["seed=0"]) is None
    assert "job 1 the directory of job 0" in sweep.start_job(tmp_path, 1, tmp_path / "x", ["seed=1"])
    assert sweep.start_job(tmp_path, 0, tmp_path / "x") is None
    assert sweep.start_job(tmp_path, 2, tmp_path / "y", ["seed=2"]) is None
    assert [(r["job"], r["status"]) for r in sweep.collect(tmp_path)] == [(1, "failed")]
    rows = sweep.collect(tmp_path, final=True)
    assert sorted((r["job"], r["status"], r["overrides"]) for r in rows) == [
        (0, "failed", "seed=0"), (1, "failed", "seed=1"), (2, "failed", "seed=2")]
    assert "without writing its summary.json" in next(r["error"] for r in rows if r["job"] == 2)
    (tmp_path / ".sweep_id").write_text("second\n")
    assert sweep.start_job(tmp_path, 1, tmp_path / "x") is None
    assert sweep.collect(tmp_path) == []


def test_a_sweep_that_launches_no_job_fails_naming_the_empty_override(tmp_path):
    # Hydra said "Launching 0 jobs", the table "0 jobs, 0 failed", and the exit status was 0
    ov = [o for o in tiny("sine") if not o.startswith("model.hidden_size")]
    r = cli(["-m", "model.hidden_size=range(5,5)", f"hydra.sweep.dir={tmp_path}"] + ov)
    assert r.returncode == 1, r.stderr
    assert "error: the sweep launched no job: model.hidden_size=range(5,5) sweeps over no value" in r.stderr


def test_an_empty_sweep_in_process_names_the_basic_sweepers_params(tmp_path, capsys):
    # hydra.sweeper.params (a config file's sweep) is where an empty range can be too
    from omegaconf import OmegaConf
    from runner import sweep
    sweep.SweepTableCallback().on_multirun_end(OmegaConf.create({"hydra": {
        "sweep": {"dir": str(tmp_path)}, "overrides": {"task": ["seed=0"]},
        "sweeper": {"params": {"model.hidden_size": "range(8,4)"}}}}))
    assert sweep.exit_status() == 1
    assert ("error: the sweep launched no job: model.hidden_size=range(8,4) sweeps over no value"
            in capsys.readouterr().err)
    sweep.finished = None


def test_an_optuna_search_of_zero_trials_is_named_as_the_empty_sweep(tmp_path, capsys):
    # hydra.sweeper.n_trials=0 launches no job just as an empty range does
    from omegaconf import OmegaConf
    from runner import sweep
    sweep.SweepTableCallback().on_multirun_end(OmegaConf.create({"hydra": {
        "sweep": {"dir": str(tmp_path)}, "overrides": {"task": ["seed=0"]},
        "sweeper": {"n_trials": 0}}}))
    assert sweep.exit_status() == 1
    assert ("error: the sweep launched no job: hydra.sweeper.n_trials=0 sweeps over no value"
            in capsys.readouterr().err)
    sweep.finished = None


def test_a_sweep_says_which_jobs_failed_and_which_were_stopped(tmp_path):
    # trainer.stop_after ends a job "interrupted", with no error: calling it failed sent
    # the user looking for an error that is not there. The exit status stays 1 (not ok).
    ov = tiny("sine", [f"hydra.sweep.dir={tmp_path}", "trainer.epochs=3", "trainer.stop_after=1"])
    r = cli(["-m"] + ov)
    assert r.returncode == 1, r.stderr
    table = tmp_path / "sweep_results.md"
    assert "error: 1 of 1 jobs did not finish: 1 stopped before its last epoch " in r.stderr, r.stderr
    assert "failed" not in r.stderr and str(table) in r.stderr and f"resume={tmp_path / '0'}" in r.stderr
    assert "# Sweep results: 1 job, 0 failed, 1 interrupted" in table.read_text()
    r = cli(["-m"] + ov[:-1] + ["optimizer=sgd", "trainer.clip_grad_norm=null", "optimizer.lr=0.01,1e6",
                                "trainer.stop_after=1,null"])
    assert r.returncode == 1, r.stderr
    assert "error: 3 of 4 jobs did not finish: 2 failed, 1 stopped before its last epoch " in r.stderr, r.stderr
    assert "4 jobs, 2 failed, 1 interrupted" in table.read_text()


def _hint(text, marker):
    """The arguments of the ``python -m runner ...`` command printed after ``marker``."""
    import shlex
    line = text[text.index(marker) + len(marker):].splitlines()[0]
    line = re.split(r" \(and \d+ more\)|; see ", line)[0]
    args = shlex.split(line)
    assert args[:3] == ["python", "-m", "runner"], line
    return args[3:]


def test_every_resume_hint_works_as_printed(tmp_path):
    # the hints said resume=<dir> alone, and a sweep's job, resumed so, was refused for
    # one differing key per attempt: model.hidden_size, then trainer.epochs, ...
    ov = tiny("sine", ["trainer.epochs=3", "trainer.stop_after=1", "hydra.sweep.dir=sw"])
    r = cli(["-m", "model.hidden_size=4,5"] + [o for o in ov if not o.startswith("model.hidden_size")],
            cwd=tmp_path)
    assert r.returncode == 1, r.stderr
    at_end = _hint(r.stderr, "continue each with its own overrides, e.g. ")
    assert at_end[-1] == "resume=sw/0", at_end
    # a resume without the overrides is refused once, naming every key that differs
    r = cli(["resume=sw/0"], cwd=tmp_path)
    assert r.returncode == 1
    for key in ("data.length", "data.window", "model.hidden_size", "trainer.epochs", "trainer.batch_size"):
        assert f"{key} is " in r.stderr, (key, r.stderr)
    refused = _hint(r.stderr, "run it with the original run's overrides: ")
    assert refused == at_end[:-1] + ["resume=sw/0/last.npz"]
    r = cli(refused, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    # the line trainer.stop_after logs
    stopped = _hint((tmp_path / "sw" / "1" / "runner.log").read_text(), "(trainer.stop_after); continue with: ")
    assert "model.hidden_size=5" in stopped and stopped[-1] == f"resume={(tmp_path / 'sw' / '1' / 'last.npz').resolve()}"
    r = cli(stopped, cwd=tmp_path)
    assert r.returncode == 0, r.stderr


def _same_npz(a, b):
    za, zb = np.load(a), np.load(b)
    assert sorted(za.files) == sorted(zb.files), (a, b)
    for k in za.files:
        assert np.array_equal(za[k], zb[k]), (a, b, k)


def _epochs(metrics_csv):
    with open(metrics_csv, newline="") as fh:
        return [{k: v for k, v in r.items() if k not in TIMING_COLUMNS} for r in csv.DictReader(fh)]


def _as_uninterrupted(job, full):
    """Job directory ``job`` of a finished sweep as ``full``, the same job's of an
    uninterrupted sweep, bit for bit: checkpoints, metrics and scores. Its summary."""
    _same_npz(job / "last.npz", full / "last.npz")
    _same_npz(job / "best.npz", full / "best.npz")
    assert _epochs(job / "metrics.csv") == _epochs(full / "metrics.csv")
    s, s_full = (json.loads((d / "summary.json").read_text()) for d in (job, full))
    assert s["test"] == s_full["test"] and s["val"] == s_full["val"]
    return s


def test_a_moved_sweep_is_finished_by_one_resume_even_where_jobs_never_started(tmp_path):
    # resume=<sweep>/${hydra:job.num} continues each job of a sweep, and was refused for each
    # job that had no last.npz: one the stopped sweep never started, or one stopped before its
    # first epoch ended. And sweep_results.csv named each job's directory as it was when
    # written, so a moved sweep's table named the old place
    ov = [o for o in tiny("sine", ["trainer.epochs=3"]) if not o.startswith("model.hidden_size")]
    sizes = "model.hidden_size=4,5,6"
    r = cli(["-m", sizes, *ov, "hydra.sweep.dir=full"], cwd=tmp_path)     # uninterrupted
    assert r.returncode == 0, r.stderr
    r = cli(["-m", sizes, *ov, "trainer.stop_after=1", "hydra.sweep.dir=sw"], cwd=tmp_path)
    assert r.returncode == 1 and "3 stopped before their last epoch" in r.stderr, r.stderr
    # job 1 as if stopped before its first epoch ended (a directory, no checkpoint), job 2 as
    # if the sweep never started it (no directory)
    for name in ("best.npz", "last.npz", "metrics.csv"):
        (tmp_path / "sw" / "1" / name).unlink()
    shutil.rmtree(tmp_path / "sw" / "2")
    shutil.copytree(tmp_path / "sw", tmp_path / "copy")
    (tmp_path / "elsewhere").mkdir()
    shutil.move(tmp_path / "sw", tmp_path / "elsewhere" / "sw")
    for where in ("elsewhere/sw", "copy"):
        rows = {row["job"]: row for row in sweep_rows(tmp_path / where)}
        assert sorted(rows) == ["0", "1", "2"]
        for job in ("0", "1"):       # read against where the table now is
            assert (tmp_path / where / rows[job]["dir"]).samefile(tmp_path / where / job), rows[job]["dir"]
    for where in ("elsewhere/sw", "copy"):
        out = tmp_path / f"resumed_{where.replace('/', '_')}"
        r = cli(["-m", sizes, *ov, f"resume={where}/${{hydra:job.num}}", f"hydra.sweep.dir={out.name}"],
                cwd=tmp_path)
        assert r.returncode == 0, r.stderr
        check_sweep(out, 3, 0)
        assert f"resumed from {where}/0/last.npz at epoch 1" in (out / "0" / "runner.log").read_text()
        for job in ("1", "2"):
            assert (f"resume={where}/{job}: this job of the sweep in {where} never wrote a checkpoint "
                    "there; starting it from scratch") in (out / job / "runner.log").read_text()
        for job in ("0", "1", "2"):
            _as_uninterrupted(out / job, tmp_path / "full" / job)
    # a mistyped sweep directory is still refused, not trained from scratch
    r = cli(["-m", "model.hidden_size=4", *ov, "resume=elsewhere/sx/${hydra:job.num}",
             "hydra.sweep.dir=typo"], cwd=tmp_path)
    assert r.returncode == 1, r.stderr
    (row,) = sweep_rows(tmp_path / "typo")
    assert row["status"] == "failed" and "resume=elsewhere/sx/0: no checkpoint there" in row["error"], row
    assert not (tmp_path / "typo" / "0" / "last.npz").exists()
    # and so is a single run given a job's directory without a checkpoint: not a sweep's job
    r = cli(["model.hidden_size=6", *ov, "resume=elsewhere/sw/2", "hydra.run.dir=single"], cwd=tmp_path)
    assert r.returncode == 1 and "resume=elsewhere/sw/2: no checkpoint there" in r.stderr, r.stderr


def test_a_stopped_sweep_that_resumed_one_is_finished_from_each_jobs_latest_progress(tmp_path):
    # sweep a stopped, sweep b resuming it stopped too before it started (or ended an epoch
    # of) some jobs, and sweep c resuming b: c started those jobs from scratch, though a held
    # their progress. Same numbers, the compute wasted
    ov = [o for o in tiny("sine", ["trainer.epochs=3"]) if not o.startswith("model.hidden_size")]
    sizes = "model.hidden_size=4,5,6"
    r = cli(["-m", sizes, *ov, "hydra.sweep.dir=full"], cwd=tmp_path)     # uninterrupted
    assert r.returncode == 0, r.stderr
    r = cli(["-m", sizes, *ov, "trainer.stop_after=1", "hydra.sweep.dir=a"], cwd=tmp_path)
    assert r.returncode == 1 and "3 stopped before their last epoch" in r.stderr, r.stderr
    r = cli(["-m", sizes, *ov, "trainer.stop_after=1", "resume=a/${hydra:job.num}", "hydra.sweep.dir=b"],
            cwd=tmp_path)
    assert r.returncode == 1 and "3 stopped before their last epoch" in r.stderr, r.stderr
    # in b, job 1 as if never started (no directory), job 2 as if stopped before its first
    # epoch ended (a directory, no checkpoint)
    shutil.rmtree(tmp_path / "b" / "1")
    for name in ("best.npz", "last.npz", "metrics.csv"):
        (tmp_path / "b" / "2" / name).unlink()
    (tmp_path / "lone" / "deeper").mkdir(parents=True)
    shutil.copytree(tmp_path / "b", tmp_path / "lone" / "deeper" / "b")   # without a beside it

    def finish(resumed, into, a):
        r = cli(["-m", sizes, *ov, f"resume={resumed}/${{hydra:job.num}}", f"hydra.sweep.dir={into}"],
                cwd=tmp_path)
        assert r.returncode == 0, r.stderr
        out = tmp_path / into
        check_sweep(out, 3, 0)
        assert f"resumed from {resumed}/0/last.npz at epoch 2" in (out / "0" / "runner.log").read_text()
        for job in ("1", "2"):      # a's epoch, not epoch 0
            log = (out / job / "runner.log").read_text()
            assert f"resumed from {(tmp_path / a).resolve() / job / 'last.npz'} at epoch 1" in log, log
        for job in ("0", "1", "2"):
            assert _as_uninterrupted(out / job, tmp_path / "full" / job)["epochs_run"] == 3

    finish("b", "c", "a")
    finish("lone/deeper/b", "c_lone", "a")          # a found where it was
    (tmp_path / "elsewhere").mkdir()
    for name in ("a", "b"):                         # a found beside b, where both went
        shutil.move(tmp_path / name, tmp_path / "elsewhere" / name)
    finish("elsewhere/b", "c_moved", "elsewhere/a")


def test_a_nested_job_of_a_chain_of_resumed_sweeps_continues_from_its_own_place(tmp_path):
    # hydra.sweep.subdir=j/${hydra.job.num}: each sweep's job 0 is in j/0, and the sweep
    # resumed before is searched at j/0 (not at 0, where no job of it is)
    ov = [o for o in tiny("sine", ["trainer.epochs=3"]) if not o.startswith("model.hidden_size")]
    ov += ["model.hidden_size=4", "hydra.sweep.subdir=j/${hydra.job.num}"]
    r = cli(["-m", *ov, "hydra.sweep.dir=full"], cwd=tmp_path)        # uninterrupted
    assert r.returncode == 0, r.stderr
    r = cli(["-m", *ov, "trainer.stop_after=1", "hydra.sweep.dir=a"], cwd=tmp_path)
    assert r.returncode == 1, r.stderr
    r = cli(["-m", *ov, "trainer.stop_after=1", "resume=a/j/${hydra:job.num}", "hydra.sweep.dir=b"],
            cwd=tmp_path)
    assert r.returncode == 1, r.stderr
    shutil.rmtree(tmp_path / "b" / "j" / "0")           # b's job as if never started
    r = cli(["-m", *ov, "resume=b/j/${hydra:job.num}", "hydra.sweep.dir=c"], cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    log = (tmp_path / "c" / "j" / "0" / "runner.log").read_text()
    assert f"resumed from {(tmp_path / 'a').resolve() / 'j' / '0' / 'last.npz'} at epoch 1" in log, log
    _same_npz(tmp_path / "c" / "j" / "0" / "last.npz", tmp_path / "full" / "j" / "0" / "last.npz")
    assert _epochs(tmp_path / "c" / "j" / "0" / "metrics.csv") == _epochs(tmp_path / "full" / "j" / "0" / "metrics.csv")


def test_a_sweep_records_a_sweep_it_resumes_job_by_job_and_only_that(tmp_path, monkeypatch):
    from omegaconf import OmegaConf
    from runner.sweep import RESUMED, _record_resumed, resumed_sweep
    monkeypatch.chdir(tmp_path)            # a relative resume= is read from where the command ran
    for name in ("a", "b"):
        (tmp_path / name).mkdir()
        (tmp_path / name / ".sweep_id").write_text(f"{name}\n")
    (tmp_path / "plain" / "0").mkdir(parents=True)
    a, b = (tmp_path / "a").resolve(), tmp_path / "b"

    def recorded(resume):
        _record_resumed(b, OmegaConf.create({"resume": resume, "seed": 0}))
        return resumed_sweep(b)
    assert recorded("a/${hydra:job.num}") == a
    assert json.loads((b / RESUMED).read_text()) == {"relative": os.path.join("..", "a"), "absolute": str(a)}
    assert recorded(None) is None and not (b / RESUMED).exists()   # run again, resuming nothing
    assert recorded(f"{tmp_path}/a/${{hydra:job.num}}/last.npz") == a
    assert recorded("a/0") is None                  # one checkpoint for every job
    assert recorded("a/j/${hydra:job.num}") == a    # a nested hydra.sweep.subdir's place
    # not a runner sweep's directory, or its own: nothing recorded (a record read as none
    # now would lead to a sweep run into that place later)
    assert recorded("plain/${hydra:job.num}") is None and not (b / RESUMED).exists()
    assert recorded("b/${hydra:job.num}") is None and not (b / RESUMED).exists()
    _record_resumed(b, OmegaConf.create({"seed": 0}))   # a config without resume
    assert not (b / RESUMED).exists()


def test_a_chain_of_resumed_sweeps_is_followed_to_the_first_holding_the_job(tmp_path):
    # w resumed x, x resumed y, y resumed z: a job neither x nor y holds is found in z, and
    # one whose last.npz is lost but best.npz is there is found (its resume then says so)
    from runner.sweep import RESUMED
    from runner.tasks import _resumed_place
    for name, other in (("w", "x"), ("x", "y"), ("y", "z"), ("z", None)):
        (tmp_path / name).mkdir()
        (tmp_path / name / ".sweep_id").write_text(f"{name}\n")
        if other:
            (tmp_path / name / RESUMED).write_text(json.dumps({"relative": os.path.join("..", other)}))
    (tmp_path / "z" / "j" / "1").mkdir(parents=True)
    (tmp_path / "z" / "j" / "1" / "last.npz").write_bytes(b"")
    assert _resumed_place(tmp_path / "w", ("j", "1")) == (tmp_path / "z" / "j" / "1").resolve()
    (tmp_path / "y" / "j" / "1").mkdir(parents=True)
    (tmp_path / "y" / "j" / "1" / "best.npz").write_bytes(b"")
    assert _resumed_place(tmp_path / "w", ("j", "1")) == (tmp_path / "y" / "j" / "1").resolve()


def test_a_sweep_copied_with_the_one_it_resumed_follows_the_copy(tmp_path, monkeypatch):
    # copied together, the relative record names the copy (the original there still);
    # moved alone, the absolute one still finds the sweep it resumed
    from omegaconf import OmegaConf
    from runner.sweep import _record_resumed, resumed_sweep
    monkeypatch.chdir(tmp_path)
    for name in ("a", "b"):
        (tmp_path / "old" / name).mkdir(parents=True)
        (tmp_path / "old" / name / ".sweep_id").write_text(f"{name}\n")
    _record_resumed(tmp_path / "old" / "b", OmegaConf.create({"resume": "old/a/${hydra:job.num}"}))
    shutil.copytree(tmp_path / "old", tmp_path / "new")
    assert resumed_sweep(tmp_path / "new" / "b") == (tmp_path / "new" / "a").resolve()
    shutil.move(tmp_path / "new" / "b", tmp_path / "alone")
    assert resumed_sweep(tmp_path / "alone") == (tmp_path / "old" / "a").resolve()


def test_a_job_no_sweep_of_a_chain_holds_starts_from_scratch(tmp_path):
    # sweeps recording each other as resumed (or one itself) end the search, none found
    from runner.sweep import RESUMED
    from runner.tasks import _resumed_place
    for name, other in (("x", "y"), ("y", "x"), ("z", "z")):
        (tmp_path / name).mkdir()
        (tmp_path / name / ".sweep_id").write_text(f"{name}\n")
        (tmp_path / name / RESUMED).write_text(json.dumps({"relative": os.path.join("..", other)}))
    assert _resumed_place(tmp_path / "x", ("1",)) is None
    assert _resumed_place(tmp_path / "z", ("1",)) is None
    (tmp_path / "y" / "1").mkdir()
    (tmp_path / "y" / "1" / "last.npz").write_bytes(b"")
    assert _resumed_place(tmp_path / "x", ("1",)) == (tmp_path / "y" / "1").resolve()


def test_a_sweep_tables_job_directories_are_the_sweeps_own_wherever_it_is_moved(tmp_path):
    # a job with a summary (one written before paths in it were relative among them), a
    # nested one, one entered in .sweep_jobs that left none, and one outside the sweep
    sw = tmp_path / "sw"
    (sw / "0").mkdir(parents=True)
    (sw / ".sweep_id").write_text("this\n")
    (sw / "0" / "summary.json").write_text(json.dumps({
        "job": 0, "status": "ok", "sweep": "this", "val": {"rmse": 0.1},
        "checkpoint": str(sw / "0" / "best.npz"), "last_checkpoint": str(sw / "0" / "last.npz")}))
    (sw / "j" / "1").mkdir(parents=True)
    (sw / "j" / "1" / "summary.json").write_text(json.dumps({"job": 1, "status": "ok", "sweep": "this",
                                                            "val": {"rmse": 0.2}}))
    (sw / ".sweep_jobs").write_text("".join(json.dumps({"sweep": "this", "job": j, "dir": str(d)}) + "\n"
                                            for j, d in ((2, sw / "2"), (3, tmp_path / "out"))))
    write_table(sw, final=True)
    shutil.move(sw, tmp_path / "moved")
    rows = sweep_rows(tmp_path / "moved")
    assert [(r["job"], r["status"]) for r in rows] == [("0", "ok"), ("1", "ok"), ("2", "failed"), ("3", "failed")]
    assert [(tmp_path / "moved" / r["dir"]) for r in rows] == [
        tmp_path / "moved" / "0", tmp_path / "moved" / "j" / "1", tmp_path / "moved" / "2", tmp_path / "out"]


def test_a_sweep_table_written_through_a_symbolic_link_lists_its_jobs_as_its_own(tmp_path):
    # .sweep_jobs holds resolved paths, and hydra.sweep.dir may name the sweep through a
    # symbolic link (a cluster's /scratch): the table's dir must still be relative to the
    # sweep, not the job's absolute path, or the table names the old place once moved
    real = tmp_path / "real"
    (real / "0").mkdir(parents=True)
    (real / ".sweep_id").write_text("this\n")
    (real / "0" / "summary.json").write_text(json.dumps({"job": 0, "status": "ok", "sweep": "this",
                                                         "val": {"rmse": 0.1}}))
    (real / ".sweep_jobs").write_text(json.dumps({"sweep": "this", "job": 1,
                                                  "dir": str((real / "1").resolve())}) + "\n")
    link = tmp_path / "link"
    link.symlink_to(real, target_is_directory=True)
    write_table(link, final=True)
    rows = sweep_rows(real)
    assert [(r["job"], r["status"], r["dir"]) for r in rows] == [("0", "ok", "0"), ("1", "failed", "1")]


def test_a_sweep_jobs_entry_without_a_directory_still_gets_its_row(tmp_path):
    # an entry of .sweep_jobs naming no dir (written by hand, or by another version) is a
    # row with an empty dir: the table is written whatever the jobs left
    sw = tmp_path / "sw"
    sw.mkdir()
    (sw / ".sweep_id").write_text("this\n")
    (sw / ".sweep_jobs").write_text(json.dumps({"sweep": "this", "job": 0}) + "\n")
    write_table(sw, final=True)
    assert [(r["job"], r["status"], r["dir"]) for r in sweep_rows(sw)] == [("0", "failed", "")]


def test_sweep_jobs_are_entered_relative_to_a_sweep_that_moves(tmp_path):
    # .sweep_jobs held absolute paths: a sweep moved elsewhere listed a job that left no
    # summary at its old place, and gave its directory to another job of the sweep
    from runner.sweep import start_job
    base = tmp_path.resolve()
    sw, out = base / "sw", base / "out"
    sw.mkdir()
    (sw / ".sweep_id").write_text("this\n")
    for job, d in ((0, sw / "0"), (1, sw / "j" / "1"), (2, out)):   # out: a subdir leading outside
        assert start_job(sw, job, d) is None
    entries = [json.loads(line) for line in (sw / ".sweep_jobs").read_text().splitlines()]
    assert [e["dir"] for e in entries] == ["0", os.path.join("j", "1"), str(out)]
    moved = base / "elsewhere" / "moved"
    moved.parent.mkdir()
    shutil.move(sw, moved)
    write_table(moved, final=True)
    assert [(r["job"], r["status"], r["dir"]) for r in sweep_rows(moved)] == [
        ("0", "failed", "0"), ("1", "failed", os.path.join("j", "1")), ("2", "failed", str(out))]
    assert "job 3 the directory of job 0" in start_job(moved, 3, moved / "0")
    assert "job 3 the directory of job 1" in start_job(moved, 3, moved / "j" / "1")


def test_sweep_jobs_written_with_absolute_paths_are_still_read(tmp_path):
    # the .sweep_jobs of a sweep that ran before the paths were relative
    from runner.sweep import start_job
    sw = tmp_path.resolve() / "sw"
    sw.mkdir()
    (sw / ".sweep_id").write_text("this\n")
    (sw / ".sweep_jobs").write_text("".join(json.dumps({"sweep": "this", "job": j, "dir": str(sw / d)}) + "\n"
                                            for j, d in ((0, "0"), (1, "j/1"))))
    assert "job 2 the directory of job 0" in start_job(sw, 2, sw / "0")
    assert "job 3 the directory of job 1" in start_job(sw, 3, sw / "j" / "1")
    assert start_job(sw, 4, sw / "4") is None
    write_table(sw, final=True)
    nested = os.path.join("j", "1")
    assert [(r["job"], r["status"], r["dir"]) for r in sweep_rows(sw)] == [
        ("0", "failed", "0"), ("1", "failed", nested), ("2", "failed", "0"), ("3", "failed", nested),
        ("4", "failed", "4")]


def test_only_a_sweep_jobs_own_place_without_a_checkpoint_starts_from_scratch(tmp_path):
    from runner.tasks import _unstarted_job
    sw, new = tmp_path / "sw", tmp_path / "new"     # the earlier sweep, the resuming one
    (sw / "0").mkdir(parents=True)
    (sw / ".sweep_id").write_text("id\n")
    assert _unstarted_job(str(sw / "1"), new / "1", new) == sw       # never started: no directory
    assert _unstarted_job(str(sw / "0"), new / "0", new) == sw       # stopped before an epoch ended
    assert _unstarted_job(str(sw / "0"), sw / "0", sw) == sw         # resumed into its own sweep
    assert _unstarted_job(str(sw / "j" / "3"), new / "j" / "3", new) == sw   # subdir=j/${hydra.job.num}
    # refused as before: not this job's place, not a sweep's, not a sweep job, a file named,
    # no subdir to tell the job by
    assert _unstarted_job(str(sw / "1"), new / "2", new) is None
    assert _unstarted_job(str(tmp_path / "sx" / "1"), new / "1", new) is None
    assert _unstarted_job(str(sw / "1"), new / "1", None) is None
    assert _unstarted_job(str(sw / "1" / "last.npz"), new / "1", new) is None
    assert _unstarted_job(str(sw), new, new) is None
    # another job's nested place (j/3 for k/3: the same number, not the same place)
    assert _unstarted_job(str(sw / "j" / "3"), new / "k" / "3", new) is None
    (sw / "2").write_bytes(b"")                 # a file where the job's directory would be
    assert _unstarted_job(str(sw / "2"), new / "2", new) is None
    (sw / "5").mkdir()                          # only last.npz (best.npz lost): it continues
    (sw / "5" / "last.npz").write_bytes(b"")
    assert _unstarted_job(str(sw / "5"), new / "5", new) is None
    (sw / "0" / "best.npz").write_bytes(b"")    # last.npz lost: its refusal names best.npz
    assert _unstarted_job(str(sw / "0"), new / "0", new) is None
    (sw / ".sweep_id").unlink()                 # a directory of some other kind
    assert _unstarted_job(str(sw / "1"), new / "1", new) is None


@pytest.mark.parametrize("original, resumed", [(["optimizer=sgd"], []),
                                               ([], ["optimizer=sgd"]),
                                               ([], ["scheduler=step"])])
def test_a_refused_resume_under_another_group_option_prints_a_command_that_works(
        tmp_path, original, resumed):
    # found by a fuzzing pass: the printed command added key=null for each key only the
    # other option has (optimizer.betas=null beside optimizer=sgd; scheduler._target_=null),
    # and Hydra refused it ("Key 'betas' not in 'SGDConfig'")
    r = cli(tiny("sine", original + ["trainer.epochs=2", "trainer.stop_after=1", "hydra.run.dir=run"]),
            cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    r = cli(tiny("sine", resumed + ["trainer.epochs=2", "resume=run", "hydra.run.dir=x"]), cwd=tmp_path)
    assert r.returncode == 1 and re.search("but the checkpoint's run used|a key the checkpoint's "
                                           "run did not have", r.stderr), r.stderr
    refused = _hint(r.stderr, "run it with the original run's overrides: ")
    assert not [a for a in refused if a.endswith("=null")], refused
    r = cli(refused + ["hydra.run.dir=more"], cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert json.loads((tmp_path / "more" / "summary.json").read_text())["status"] == "ok"


def test_a_resume_hint_keeps_the_run_name(tmp_path):
    """The printed command left name= out, so the continued run went to outputs/sine-gru/
    (the config's default) instead of beside the run it continues. A name Hydra's grammar
    would split (a comma) must come back as one value."""
    name = "my run,1"
    r = cli(tiny("sine") + [f"name='{name}'", "trainer.stop_after=1"], cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    (first,) = (tmp_path / "outputs" / name).iterdir()
    stopped = _hint((first / "runner.log").read_text(), "(trainer.stop_after); continue with: ")
    r = cli(stopped, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert sorted(p.name for p in (tmp_path / "outputs").iterdir()) == [name]
    runs = sorted((tmp_path / "outputs" / name).iterdir())
    assert len(runs) == 2
    second = next(p for p in runs if p != first)
    summary = json.loads((second / "summary.json").read_text())
    assert summary["status"] == "ok" and summary["name"] == name, summary


@pytest.mark.parametrize("spelt", ["f8", "double"])
def test_a_dtype_spelt_another_way_resumes_as_its_name(tmp_path, spelt):
    """model.dtype=f8 trained in float64 but was stored as 'f8', so a resume that said
    float64 was refused as a different setting."""
    run_dir = tmp_path / "run"
    r = cli(tiny("sine") + [f"model.dtype={spelt}", "trainer.stop_after=1",
                            f"hydra.run.dir={run_dir}"], cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    stopped = _hint((run_dir / "runner.log").read_text(), "(trainer.stop_after); continue with: ")
    assert f"model.dtype={spelt}" in stopped
    r = cli([a.replace(f"model.dtype={spelt}", "model.dtype=float64") for a in stopped], cwd=tmp_path)
    assert r.returncode == 0, r.stderr


def test_a_resume_hint_repeats_the_config_dir_and_what_a_config_file_set(tmp_path):
    """A review found the printed command lost --config-dir (the README's way to add a
    dataset: Hydra then "Could not find 'data/square'"), read a run directory named 'a,b'
    as a list, and left out settings no override had made (a config file edited since, or
    a search config's): the refusal printed the same command again."""
    (tmp_path / "conf" / "data").mkdir(parents=True)
    square = tmp_path / "conf" / "data" / "square.yaml"
    square.write_text("_target_: runner.datasets.Sine\nlength: 300\nwindow: 8\n")
    base = [o for o in tiny("sine") if not o.startswith("data")]
    run_dir = tmp_path / "a,b"
    r = cli(["--config-dir", str(tmp_path / "conf"), "data=square", "trainer.epochs=3",
             "trainer.stop_after=1", f"hydra.run.dir='{run_dir}'"] + base, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    stopped = _hint((run_dir / "runner.log").read_text(), "(trainer.stop_after); continue with: ")
    assert stopped[0] == f"--config-dir={tmp_path / 'conf'}"
    square.write_text("_target_: runner.datasets.Sine\nlength: 320\nwindow: 8\n")
    r = cli(stopped, cwd=tmp_path)
    assert r.returncode == 1 and "data.length is 320 but the checkpoint's run used 300" in r.stderr
    refused = _hint(r.stderr, "run it with the original run's overrides: ")
    assert "data.length=300" in refused
    r = cli(refused, cwd=tmp_path)
    assert r.returncode == 0, r.stderr


@pytest.mark.parametrize("tree", ["directory", "package"])
def test_a_resume_hint_repeats_the_config_path(tmp_path, tree):
    """--config-path (Hydra's -cp: a whole config tree of one's own, here a copy of conf/
    whose sine is noisier) was not carried into the hints: the printed resume composed the
    bundled configs and was refused for data.noise. A tree inside a package
    (--config-path=pkg://...) was dropped too, the review found: the hint kept only
    directories."""
    import shutil
    conf = tmp_path / ("my conf" if tree == "directory" else "mypkg/conf")
    shutil.copytree(REPO / "conf", conf)
    sine = conf / "data" / "sine.yaml"
    sine.write_text(sine.read_text().replace("noise: 0.02", "noise: 0.05"))
    if tree == "directory":
        path, env, want = str(conf), None, f"--config-path={conf}"
    else:
        for d in (conf.parent, conf):
            (d / "__init__.py").write_text("")
        path, want = "pkg://mypkg.conf", "--config-path=pkg://mypkg"
        env = {"PYTHONPATH": os.pathsep.join([str(REPO), str(tmp_path)])}
    run_dir = tmp_path / "run"
    r = cli([f"--config-path={path}", "trainer.stop_after=1",
             f"hydra.run.dir={run_dir}"] + tiny("sine"), cwd=tmp_path, env_extra=env)
    assert r.returncode == 0, r.stderr
    stopped = _hint((run_dir / "runner.log").read_text(), "(trainer.stop_after); continue with: ")
    assert stopped[0] == want if tree == "directory" else stopped[0].startswith(want)
    r = cli(stopped, cwd=tmp_path, env_extra=env)
    assert r.returncode == 0, r.stderr


def test_readme_names_every_file_a_sweep_writes_and_every_summary_field(tmp_path):
    r = cli(["-m", f"hydra.sweep.dir={tmp_path}"] + tiny("sine"))
    assert r.returncode == 0, r.stderr
    readme = (REPO / "README.md").read_text()
    sweeps = readme[readme.index("### Sweeps"):]
    sweeps = sweeps[:sweeps.index("\n##", 1)]
    hydra_own = {"multirun.yaml"}
    for f in tmp_path.iterdir():
        if not f.name.isdigit() and f.name not in hydra_own:
            assert f"`{f.name}`" in sweeps, f"README's Sweeps section does not mention {f.name}"
    row = next(line for line in readme.splitlines() if line.startswith("| `summary.json` |"))
    for key in json.loads((tmp_path / "0" / "summary.json").read_text()):
        assert f"`{key}`" in row, f"README's summary.json row does not mention {key!r}"


# ---- run directories: runner/rundir.py ----------------------------------------------------

def _claim_in_new_invocation(path, queue):
    os.environ.pop("GRUCY_RUNNER_CLAIM", None)      # a process of its own, as another run
    from runner.rundir import claim
    queue.put(claim(path))


def test_claim_gives_each_invocation_its_own_directory(tmp_path, monkeypatch):
    import multiprocessing as mp
    from runner.rundir import claim
    monkeypatch.setenv("GRUCY_RUNNER_CLAIM", "first")
    base = tmp_path / "out" / "2026-01-01_00-00-00"
    assert claim(str(base)) == str(base)
    assert claim(str(base)) == str(base)            # the same invocation resolving again
    monkeypatch.setenv("GRUCY_RUNNER_CLAIM", "second")
    assert claim(str(base)) == f"{base}_1"
    (tmp_path / "made_by_hand").mkdir()             # no marker: someone else's directory
    assert claim(str(tmp_path / "made_by_hand")) == f"{tmp_path / 'made_by_hand'}_1"
    # eight processes asking at once for one new directory: eight different answers
    ctx = mp.get_context("spawn")
    q = ctx.Queue()
    procs = [ctx.Process(target=_claim_in_new_invocation, args=(str(tmp_path / "race"), q))
             for _ in range(8)]
    for p in procs:
        p.start()
    got = sorted(q.get(timeout=60) for _ in procs)
    for p in procs:
        p.join()
    assert got == sorted([str(tmp_path / "race")] + [f"{tmp_path / 'race'}_{k}" for k in range(1, 8)])


def test_runs_started_together_write_into_directories_of_their_own(tmp_path):
    # Regression: the default outputs/<name>/<date_time> had one-second resolution, and two
    # runs started in the same second wrote into one directory (one summary, one set of
    # checkpoints survived). Sequential runs with one claimed directory pattern, then two
    # concurrent runs on the defaults.
    fixed = [f"hydra.run.dir=${{claim:{tmp_path / 'run'}}}"]
    for seed in (0, 1):
        r = cli(tiny("sine") + fixed + [f"seed={seed}"], cwd=tmp_path)
        assert r.returncode == 0, r.stderr
    for d, seed in ((tmp_path / "run", 0), (tmp_path / "run_1", 1)):
        assert json.loads((d / "summary.json").read_text())["seed"] == seed
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    env.pop("GRUCY_RUNNER_CLAIM", None)
    procs = [subprocess.Popen([sys.executable, "-m", "runner", *tiny("sine"), f"seed={seed}"],
                              cwd=tmp_path, env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for seed in (2, 3)]
    for p in procs:
        _, err = p.communicate(timeout=300)
        assert p.returncode == 0, err
    seeds = sorted(json.loads(s.read_text())["seed"]
                   for s in (tmp_path / "outputs").glob("*/*/summary.json"))
    assert seeds == [2, 3]


def test_sweep_table_and_exit_status_in_process(tmp_path, capsys):
    # what the multirun tests check through the CLI, on hand-written summaries: only this
    # sweep's jobs, ok jobs ranked by val RMSE, the others unranked and last, the heading's
    # tally, and the exit status with its message
    from omegaconf import OmegaConf
    from runner import sweep
    (tmp_path / ".sweep_id").write_text("this\n")

    def job(n, status, val, sweep_id="this"):
        (tmp_path / str(n)).mkdir()
        (tmp_path / str(n) / "summary.json").write_text(json.dumps({
            "job": n, "status": status, "sweep": sweep_id, "error": None if status == "ok" else "boom",
            "val": {"rmse": val}, "test": {"rmse": 2 * val, "mae": val / 2}}))

    job(0, "ok", 0.4)
    job(1, "interrupted", 0.1)      # stopped by trainer.stop_after: its val RMSE ranks nothing
    job(2, "ok", 0.2)
    job(3, "failed", 0.05, sweep_id="an earlier sweep")
    callback = sweep.SweepTableCallback()
    callback.on_multirun_end(OmegaConf.create({"hydra": {"sweep": {"dir": str(tmp_path)}}}))
    rows = list(csv.DictReader(open(tmp_path / "sweep_results.csv")))
    assert [r["job"] for r in rows] == ["2", "0", "1"]
    assert [float(r["test_mae"]) for r in rows] == [0.1, 0.2, 0.05]
    md = (tmp_path / "sweep_results.md").read_text()
    assert "# Sweep results: 3 jobs, 0 failed, 1 interrupted" in md
    table = [line for line in md.splitlines() if line.startswith("|")][2:]   # below the heading row
    assert [line.split("|")[1].strip() for line in table] == ["1", "2", "-"]
    assert sweep.exit_status() == 1
    assert "1 of 3 jobs did not finish: 1 stopped before its last epoch" in capsys.readouterr().err
    (tmp_path / "1" / "summary.json").unlink()
    callback.on_multirun_end(OmegaConf.create({"hydra": {"sweep": {"dir": str(tmp_path)}}}))
    assert sweep.exit_status() == 0 and capsys.readouterr().err == ""
    job(4, "failed", 1.0)
    callback.on_multirun_end(OmegaConf.create({"hydra": {"sweep": {"dir": str(tmp_path)}}}))
    assert sweep.exit_status() == 1
    assert f"error: 1 of 3 jobs failed; their errors are in {tmp_path / 'sweep_results.md'}" in capsys.readouterr().err
    job(5, "interrupted", 0.3)      # failed and stopped jobs together: each said as what it is
    callback.on_multirun_end(OmegaConf.create({"hydra": {"sweep": {"dir": str(tmp_path)}}}))
    assert sweep.exit_status() == 1
    assert ("error: 2 of 4 jobs did not finish: 1 failed, 1 stopped before its last epoch (trainer.stop_after); "
            f"continue with resume=<job dir>, e.g. resume={tmp_path / '5'}; see ") in capsys.readouterr().err
    job(6, "interrupted", 0.4)
    callback.on_multirun_end(OmegaConf.create({"hydra": {"sweep": {"dir": str(tmp_path)}}}))
    assert sweep.exit_status() == 1
    assert "3 of 5 jobs did not finish: 1 failed, 2 stopped before their last epoch" in capsys.readouterr().err
    sweep.finished = None


def test_an_evaluations_run_name_is_the_checkpoints_only_if_it_stays_under_outputs(tmp_path):
    """run_name takes an evaluation's name from its checkpoint, but a forged "../up" there
    would name a directory outside outputs/: the command line's default is kept instead."""
    import grucy
    from runner.rundir import run_name
    model = grucy.SequenceModel(1, 2, 1, seed=0)
    for stored, want in (("elnino-gru", "elnino-gru"), ("../up", "sine-gru"), ("a/../../b", "sine-gru")):
        path = grucy.save(tmp_path / "best.npz", model, metadata={"config": {"name": stored}})
        assert run_name("sine-gru", False, str(path)) == want, stored


def test_a_training_runs_name_is_never_a_checkpoints(tmp_path):
    """Only an evaluation (train=false) is named after its checkpoint: a training run keeps
    the command line's default whatever ckpt_path says."""
    import grucy
    from runner.rundir import run_name
    path = grucy.save(tmp_path / "best.npz", grucy.SequenceModel(1, 2, 1, seed=0),
                      metadata={"config": {"name": "elnino-gru"}})
    assert run_name("sine-gru", True, str(path)) == "sine-gru"
    assert run_name("sine-gru", False, str(path)) == "elnino-gru"


def test_the_quoting_hint_has_the_form_the_readme_shows():
    # README: a value with parentheses ... is quoted for Hydra inside the shell's quotes,
    # 'data.column="load (kW)"'
    from runner.cli import quoting_hint
    hint = quoting_hint(["data.column=load (kW)"])
    assert hint.endswith("quote the value for Hydra inside the shell's quotes: "
                         "'data.column=\"load (kW)\"'"), hint


def test_a_quoting_hint_quotes_the_items_of_a_list_that_need_it():
    # data.inputs=[temp (C),hour]: Hydra's "Unknown function 'temp'", and quoting the whole
    # list would make it a string; the shell-quoted suggestion must parse, in Hydra's own
    # parser, to the names as typed
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from runner.cli import quoting_hint
    hint = quoting_hint(["data.inputs=[temp (C),hour, wind°]"])
    assert hint is not None and hint.startswith("data.inputs=[temp (C),hour, wind°]: "), hint
    suggested, = shlex.split(hint.rsplit("quotes: ", 1)[1])
    assert suggested == 'data.inputs=["temp (C)",hour,"wind°"]'
    assert OverridesParser.create().parse_override(suggested).value() == ["temp (C)", "hour", "wind°"]
    # a list Hydra parses, or one quoting cannot save (a bracket inside), gets none
    assert quoting_hint(["data.inputs=[temp,hour]", "data.inputs=[]"]) is None
    assert quoting_hint(["data.inputs=[a(b],c"]) is None


def test_a_quoting_hint_for_a_key_appended_with_a_plus():
    from runner.cli import quoting_hint
    hint = quoting_hint(["+data.note=load (kW)"])
    assert hint is not None and hint.endswith("quotes: '+data.note=\"load (kW)\"'"), hint


def test_a_quoting_hint_keeps_a_quote_inside_the_value_as_typed():
    # the value x\"y( quoted with double quotes reads back as x"y(, not what was typed:
    # only the other quote keeps it
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from runner.cli import quoting_hint
    value = 'x\\"y('
    hint = quoting_hint([f"data.column={value}"])
    assert hint is not None
    suggested = shlex.split(hint.rsplit("quotes: ", 1)[1])      # as a shell would pass it
    assert len(suggested) == 1
    assert OverridesParser.create().parse_override(suggested[0]).value() == value


@pytest.mark.parametrize("value", ["range(1,3", "interval(0,1", "sort(3,1", "shuffle(1,2", "tag(a,1",
                                   "glob(a*", "int(3", "float(1", "str(1", "bool(1", "{a:1", "[4,8"])
def test_no_quoting_hint_for_any_mistyped_sweep_function_or_collection(value):
    # each of Hydra's functions (and a list or dict) mistyped: quoted, it would be a string
    from runner.cli import quoting_hint
    assert quoting_hint([f"model.hidden_size={value}"]) is None


@pytest.mark.parametrize("value", ["choice(temp (C),hour)", "int(temp (C))", "shuffle(temp (C)"])
def test_no_quoting_hint_in_brackets_for_a_mistyped_sweep_of_a_list(value):
    # data.inputs is a list, but a sweep function mistyped is no list's item: bracketed
    # and quoted, it would be a list of the function's pieces as column names
    from runner.cli import quoting_hint
    assert quoting_hint(["data=csv", f"data.inputs={value}"]) is None


def test_a_quoting_hint_for_a_later_value_after_one_quoting_cannot_save():
    # a"b'(c has both quotes (no simple quoting): the next value that quoting saves is named
    from runner.cli import quoting_hint
    hint = quoting_hint(["data.column=a\"b'(c", "data.time_column=load (kW)"])
    assert hint is not None and hint.startswith("data.time_column=load (kW): "), hint
    assert hint.endswith("quotes: 'data.time_column=\"load (kW)\"'"), hint


def test_a_list_setting_given_one_name_gets_a_hint_whose_brackets_work(tmp_path):
    # data.inputs=temp ended in OmegaConf's "str is not a ListConfig, list or tuple", which
    # named the key but not the brackets a list is written in
    csv_path = tmp_path / "d.csv"
    csv_path.write_text("t,y,temp\n" + "".join(f"{i},{np.sin(i / 3):.4f},{np.cos(i / 5):.4f}\n"
                                                for i in range(120)))
    ov = tiny("csv", [f"data.path={csv_path}", "data.column=y", f"hydra.run.dir={tmp_path / 'r'}"])
    r = cli(ov + ["data.inputs=temp"])
    assert r.returncode == 1 and "Traceback" not in r.stderr
    last = r.stderr.rstrip().splitlines()[-1]
    assert last == "hint: data.inputs=temp: data.inputs is a list, written in brackets: 'data.inputs=[temp]'", \
        r.stderr
    r = cli(ov + shlex.split(last.rsplit(": ", 1)[1]))     # as a shell would pass it
    assert r.returncode == 0, r.stderr
    assert yaml.safe_load((tmp_path / "r" / "config.yaml").read_text())["data"]["inputs"] == ["temp"]


def test_a_command_line_argparse_refuses_prints_its_usage_once(tmp_path):
    # an override after --cfg's value is not one argparse takes: Hydra prints its usage and
    # error, and then each hint that parses the command line again printed them again
    r = cli(["data=csv", "--cfg", "job", "data.inputs=temp", f"hydra.run.dir={tmp_path}"])
    assert r.returncode == 2 and "Traceback" not in r.stderr, r.stderr
    assert r.stderr.count("usage:") == 1, r.stderr
    assert r.stderr.count("error: unrecognized arguments: data.inputs=temp") == 1, r.stderr


def test_the_list_hint_for_null_a_sweep_and_a_name_that_needs_quotes():
    # each suggestion, as a shell passes it, parses in Hydra's own parser to the list meant
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from runner.cli import list_hint, quoting_hint
    parse = OverridesParser.create().parse_override

    def suggested(hint):
        return [shlex.split(q)[0] for q in re.findall(r"'[^']*'", hint)]
    hint = list_hint(["data=csv", "data.inputs=null"])
    assert hint == "data.inputs=null: data.inputs is a list; [] for none: 'data.inputs=[]'"
    assert [parse(q).value() for q in suggested(hint)] == [[]]
    hint = list_hint(["-m", "data=csv", "data.inputs=temp,hour"])
    assert hint.startswith("data.inputs=temp,hour: data.inputs is a list, written in brackets: "), hint
    one, each = suggested(hint)
    assert parse(one).value() == ["temp", "hour"]
    assert [list(v) for v in parse(each).value().list] == [["temp"], ["hour"]]
    assert parse(each).is_sweep_override()
    # data.inputs=temp (C) was told to quote the value, 'data.inputs="temp (C)"', which the
    # list refused in turn (a string): quoted, and in brackets
    for value, names in (("temp (C)", ["temp (C)"]), ("temp (C),hour", ["temp (C)", "hour"])):
        hint = quoting_hint(["data=csv", f"data.inputs={value}"])
        assert hint is not None and "in brackets (data.inputs is a list)" in hint, hint
        q, = suggested(hint.rsplit("quotes: ", 1)[1])
        assert parse(q).value() == names
    # a str setting quoted as before
    assert quoting_hint(["data=csv", "data.column=temp (C)"]).endswith("quotes: 'data.column=\"temp (C)\"'")


@pytest.mark.parametrize("argv, items", [
    (["data=csv", "data.inputs=2021"], ["2021"]),     # a column named by a number (a year)
    # found by a review: [true] and [1.50] are a bool and a float to Hydra, which the list
    # of names stored as "True" and "1.5"
    (["data=csv", "data.inputs=true"], ["true"]),
    (["data=csv", "data.inputs=1.50"], ["1.50"]),
    # a multirun sweeping another group: data=csv still chooses where data.inputs is a list
    (["-m", "optimizer=adam,sgd", "data=csv", "data.inputs=temp"], ["temp"])])
def test_the_list_hint_for_a_number_and_beside_another_groups_sweep(argv, items):
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from omegaconf import OmegaConf
    from runner.cli import list_hint
    from runner.testing import compose
    hint = list_hint(argv)
    assert hint is not None and f"{argv[-1]}: data.inputs is a list, written in brackets: " in hint, hint
    q, = shlex.split(hint.rsplit(": ", 1)[1])
    assert OverridesParser.create().parse_override(q).value() == items
    cfg = compose(["data=csv", "data.path=x.csv", "data.column=y", q])
    assert OmegaConf.to_container(cfg.data)["inputs"] == items      # the names as typed


def test_the_list_hint_for_a_sweep_quotes_what_hydra_reads_as_no_string():
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from runner.cli import list_hint
    parse = OverridesParser.create().parse_override
    hint = list_hint(["-m", "data=csv", "data.inputs=true,hour"])
    assert hint is not None and hint.startswith("data.inputs=true,hour: data.inputs is a list"), hint
    one, each = [shlex.split(q)[0] for q in re.findall(r"'[^']*'", hint)]
    assert parse(one).value() == ["true", "hour"]
    # each job's override, as the sweeper writes it from the sweep
    jobs = [parse(f"data.inputs={v}").value() for v in parse(each).sweep_string_iterator()]
    assert jobs == [["true"], ["hour"]]


@pytest.mark.parametrize("argv", [["data=csv", "data.column=temp"], ["data=csv", "data.inputs=[temp]"],
                                  ["data=csv", "-m", "data.inputs=[],[temp]"], ["data.inputs=temp"],
                                  ["--config-dir=/nonexistent", "data=csv", "data.inputs=temp"],
                                  ["data=csv", "model.hidden_size=4"]])
def test_no_list_hint_where_the_key_is_no_list_or_its_value_is_one(argv):
    # a str key; lists (and a sweep over lists); data=sine, which has no data.inputs (the
    # unknown-key hint's); a config from elsewhere, which conf/ cannot speak for
    from runner.cli import list_hint
    assert list_hint(argv) is None


def test_no_list_hint_for_an_interpolation_hydra_takes_as_the_list():
    # found by a review: data.inputs=${oc.create:[a]} is a list once resolved, and Hydra
    # takes it; a command refused for another setting got a hint to put it in brackets,
    # which would make it a list of one string
    from omegaconf import OmegaConf
    from runner.cli import list_hint
    from runner.testing import compose
    value = "${oc.create:[a]}"
    cfg = compose(["data=csv", "data.path=x.csv", "data.column=y", f"data.inputs={value}"])
    assert OmegaConf.to_container(cfg.data, resolve=True)["inputs"] == ["a"]
    assert list_hint(["data=csv", f"data.inputs={value}", "model.hidden_size=abc"]) is None


def test_a_stopped_sweep_lists_a_refused_job_as_failed_with_its_reason(tmp_path):
    # stopped, a job that left no summary is interrupted; one the sweep refused (another
    # job's directory) did not run at all, and stays failed with the refusal
    from runner import sweep
    (tmp_path / sweep.SWEEP_ID).write_text("s1\n")
    assert sweep.start_job(tmp_path, 0, tmp_path / "0", ["seed=0"]) is None
    assert sweep.start_job(tmp_path, 1, tmp_path / "0", ["seed=1"]).startswith(
        "hydra.sweep.subdir gives job 1 the directory of job 0")
    rows = {r["job"]: r for r in write_table(tmp_path, final=True, stopped=True)}
    assert rows[0]["status"] == "interrupted" and rows[0]["error"].startswith("no summary.json: stopped")
    assert rows[1]["status"] == "failed"
    assert rows[1]["error"].startswith("hydra.sweep.subdir gives job 1 the directory of job 0")
    assert (tmp_path / "sweep_results.md").read_text().startswith(
        "# Sweep results: 2 jobs, 1 failed, 1 interrupted\n\nThe sweep was stopped")


def test_record_stop_leaves_a_sweep_that_has_ended_alone(tmp_path, monkeypatch, capsys):
    # a Ctrl-C after on_multirun_end wrote the final table: that table stands, unmarked
    from runner import sweep
    (tmp_path / sweep.SWEEP_ID).write_text("s1\n")
    monkeypatch.setattr(sweep, "started", tmp_path)
    monkeypatch.setattr(sweep, "finished", (1, 0, tmp_path / "sweep_results.md"))
    sweep.record_stop("Ctrl-C")
    assert not (tmp_path / "sweep_results.md").exists()
    assert capsys.readouterr().err == ""
    monkeypatch.setattr(sweep, "finished", None)      # still under way: marked stopped
    sweep.record_stop("Ctrl-C")
    err = capsys.readouterr().err
    assert err.startswith("error: the sweep was stopped (Ctrl-C) before its end: 0 of the 0"), err
    # the one command that finishes it (test_a_moved_sweep_is_finished_by_one_resume_...)
    assert f"The sweep's command line with resume={tmp_path}/'${{hydra:job.num}}' finishes it" in err, err
    assert "The sweep was stopped" in (tmp_path / "sweep_results.md").read_text()


def test_a_stopped_sweeps_resume_command_is_one_shell_word_where_its_directory_has_a_space(
        tmp_path, monkeypatch, capsys):
    # printed unquoted, resume=my runs/sw/'${hydra:job.num}' was two arguments to the shell
    from runner import sweep
    sw = tmp_path / "my runs" / "sw"
    sw.mkdir(parents=True)
    (sw / sweep.SWEEP_ID).write_text("s1\n")
    monkeypatch.setattr(sweep, "started", sw)
    monkeypatch.setattr(sweep, "finished", None)
    sweep.record_stop("SIGTERM")
    err = capsys.readouterr().err
    given = err.split("The sweep's command line with ", 1)[1].split(" finishes it", 1)[0]
    assert shlex.split(given) == [f"resume={sw}/${{hydra:job.num}}"], given


def test_record_stop_warns_where_the_table_cannot_be_written(tmp_path, monkeypatch, capsys, caplog):
    # the interruption is what the run reports: a table that cannot be written (a full
    # disk, no permission) is a warning, not a traceback in its place
    import signal
    from runner import sweep
    monkeypatch.setattr(sweep, "started", tmp_path)
    monkeypatch.setattr(sweep, "finished", None)

    def refuse(*args, **kwargs):
        raise PermissionError(13, "Permission denied", "sweep_results.md")
    monkeypatch.setattr(sweep, "write_table", refuse)
    handlers = signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)
    with caplog.at_level("WARNING", logger="runner"):
        sweep.record_stop("SIGTERM")
    assert "sweep table not updated: [Errno 13] Permission denied: 'sweep_results.md'" in caplog.text
    assert capsys.readouterr().err == ""
    assert (signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)) == handlers


def test_the_sweep_plot_says_when_its_axis_is_logarithmic_and_an_rmse_of_0_keeps_it_linear(tmp_path, monkeypatch):
    from contextlib import contextmanager
    from runner import outputs, sweep
    seen = []

    @contextmanager
    def keeping(path, figsize):
        with outputs.drawing(path, figsize) as ax:
            yield ax
            seen.append((ax.get_xscale(), ax.get_xlabel()))
    monkeypatch.setattr(sweep, "drawing", keeping)
    rows = [{"job": 0, "status": "ok", "val_rmse": 0.02}, {"job": 1, "status": "ok", "val_rmse": 2.7e8}]
    sweep._plot(tmp_path / "s.png", rows)
    sweep._plot(tmp_path / "t.png", [dict(rows[0], val_rmse=0.0), dict(rows[1], val_rmse=1e3)])
    sweep._plot(tmp_path / "u.png", [dict(rows[0], val_rmse=1.0), dict(rows[1], val_rmse=2.0)])
    assert seen == [("log", "validation RMSE (lower is better; log scale)"),
                    ("linear", "validation RMSE (lower is better)"),      # no log of 0
                    ("linear", "validation RMSE (lower is better)")]


@pytest.mark.skipif(not (REPO / "conf" / "hparams_search").is_dir(), reason="no search configs")
@pytest.mark.parametrize("search, drawn, why", [
    # the second of two strings (group options) is composed too, not only one of each type
    ("optimizer=choice(adam,nope)", "nope", "In 'config': Could not find 'optimizer/nope'"),
    # a range() is checked as choice() is: 4.0 is not an integer size
    ("model.hidden_size=range(4,6,0.5)", "4.0", "Error merging override model.hidden_size=4.0"),
])
def test_an_optuna_search_space_hydra_cannot_compose_is_refused_for_strings_and_ranges(tmp_path, search, drawn, why):
    pytest.importorskip("hydra_plugins.hydra_optuna_sweeper")
    r = cli(["-m", "hparams_search=sine_optuna", "hydra.sweeper.n_trials=1", search, "trainer.epochs=1"],
            cwd=tmp_path)
    assert r.returncode == 1
    assert r.stderr.rstrip().splitlines()[-1].startswith(
        f"error: {search}: a trial that draws {drawn} cannot be composed, and the search would "
        f"end there ({why}"), r.stderr
    assert not list(tmp_path.iterdir())


def test_interval_hint_reads_the_sweeper_options_as_hydra_does():
    from runner.cli import interval_hint
    # hparams_search=null is no search: interval() still needs the Optuna sweeper
    assert interval_hint(["-m", "hparams_search=null", "optimizer.lr=interval(0,1)"]).startswith(
        "optimizer.lr=interval(0,1): interval() is a range for the Optuna sweeper")
    # + and ++ add or force the same options
    for option in ("+hparams_search=sine_optuna", "++hparams_search=sine_optuna", "+hydra/sweeper=optuna"):
        assert interval_hint(["-m", option, "optimizer.lr=interval(0,1)"]) is None, option


@pytest.mark.parametrize("launcher, detached", [("hydra_plugins.hydra_submitit_launcher.submitit_launcher."
                                                 "LocalLauncher", True),
                                                ("hydra_plugins.hydra_joblib_launcher.joblib_launcher."
                                                 "JoblibLauncher", False)])
def test_a_stopped_submitit_sweep_says_its_jobs_go_on(tmp_path, monkeypatch, capsys, launcher, detached):
    # submitit's jobs are processes of their own, which a signal to the launcher leaves running
    from omegaconf import OmegaConf
    from runner import sweep
    for name in ("made", "finished", "started", "detached"):
        monkeypatch.setattr(sweep, name, getattr(sweep, name))
    sweep.SweepTableCallback().on_multirun_start(OmegaConf.create(
        {"hydra": {"sweep": {"dir": str(tmp_path / "s")}, "launcher": {"_target_": launcher}}}))
    sweep.record_stop("SIGTERM")
    err = capsys.readouterr().err
    assert err.startswith("error: the sweep was stopped (SIGTERM) before its end: 0 of the 0 jobs"), err
    assert ("(submitit's jobs are processes of their own: those still running go on, and each "
            "rewrites the table as it ends)" in err) == detached, err


def test_record_stop_from_a_thread_other_than_the_main_one(tmp_path, monkeypatch, capsys):
    # signal handlers can be changed only in the main thread: from another, the table is
    # written and the stop reported all the same, the handlers left as they are
    import signal
    import threading
    from runner import sweep
    (tmp_path / sweep.SWEEP_ID).write_text("s1\n")
    monkeypatch.setattr(sweep, "started", tmp_path)
    monkeypatch.setattr(sweep, "finished", None)
    handlers = signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)
    errors = []

    def stop():
        try:
            sweep.record_stop("Ctrl-C")
        except BaseException as exc:        # noqa: BLE001 - the thread's, for the test to see
            errors.append(exc)
    t = threading.Thread(target=stop)
    t.start()
    t.join(60)
    assert errors == []
    assert capsys.readouterr().err.startswith("error: the sweep was stopped (Ctrl-C) before its end")
    assert (tmp_path / "sweep_results.md").read_text().startswith("# Sweep results: 0 jobs")
    assert (signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)) == handlers
