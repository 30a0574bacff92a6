"""Fresh output directories: ``${claim:path}`` in conf/config.yaml's hydra.run.dir and
hydra.sweep.dir.

Hydra names a run's directory after the second it started and writes into it whether or not
another run already did: two runs started in the same second (a shell loop with ``&``, a
cluster array) shared one directory, and one's summary and checkpoints replaced the other's.
``claim(path)`` returns ``path`` if this invocation can have it, else the first free of
``path_1``, ``path_2``, ...: creating a directory is atomic, so of two processes asking for
the same one exactly one gets it. The winner writes its invocation's token into
``.claimed``; a later resolution by the same invocation (Hydra resolves the sweep directory
again in each job's config, and in the job processes of the joblib and submitit launchers,
which inherit the token from the environment) finds its token there and gets the same
directory back.

A directory given without ``${claim:...}`` (``hydra.run.dir=mydir``) is used as Hydra uses
it: a sweep re-run into a fixed directory is a documented use (runner/sweep.py).

``${run_name:...}`` is ``name``'s default, which the directory is named after: see
:func:`run_name`.
"""
import os
import sys
import uuid
from pathlib import Path

from runner.outputs import checkpoint_file

TOKEN_ENV = "GRUCY_RUNNER_CLAIM"      # this invocation's token, inherited by its job processes
MARKER = ".claimed"


def _token() -> str:
    token = os.environ.get(TOKEN_ENV)
    if not token:
        token = os.environ[TOKEN_ENV] = uuid.uuid4().hex
    return token


def claim(path: str) -> str:
    """The first of path, path_1, path_2, ... that is new or already this invocation's.

    A run's ``outputs/<name>/<date_time>`` must stay under outputs/: runner.app refuses a
    ``name=../x`` on the command line before Hydra makes the directory, but a name that only
    resolves to one (``name=${oc.env:NM}``) reached here and was written outside it."""
    parts = str(path).split("/")
    if parts[0] == "outputs" and len(parts) > 2 and not safe_name("/".join(parts[1:-1])):
        _refuse(f"name={'/'.join(parts[1:-1])!r}: a run is written to outputs/<name>/<date_time>, "
                "so a name is a relative path with no empty, '.' or '..' part (this one would "
                "leave outputs/, write into it directly or name one directory two ways); use "
                "hydra.run.dir=DIR for a run directory elsewhere")
    try:
        return _claim(Path(str(path)))
    except OSError as exc:      # a file named outputs, a name past the file system's limit
        _refuse(f"cannot make the run directory {str(path)!r}: {exc.strerror or exc}")


def _refuse(message):
    """End the invocation with a one-line error. A resolver's exception reached Hydra's
    error formatting, which failed on it and printed a hundred-line traceback instead;
    SystemExit passes through Hydra as it is."""
    print(f"error: {message}", file=sys.stderr)
    raise SystemExit(1)


# The directories above a run or sweep directory that this process created, so that
# runner.sweep.discard_unused can take back an unused sweep's multirun/ as well
made_above = []


def make_parents(path: Path) -> None:
    """mkdir -p of path's parent, noting in ``made_above`` what did not exist."""
    made_above.extend(p for p in path.parents if not p.exists())
    path.parent.mkdir(parents=True, exist_ok=True)


def claimed(path, token) -> bool:
    """Whether the invocation with ``token`` claimed ``path`` (its marker holds the token)."""
    try:
        return (Path(path) / MARKER).read_text().strip() == token
    except OSError:             # no marker: a directory someone else made, or a claim
        return False            #   between its mkdir and its write; not ours


def _claim(base: Path) -> str:
    token = _token()
    make_parents(base)
    k = 0
    while True:
        candidate = base if k == 0 else base.with_name(f"{base.name}_{k}")
        try:
            candidate.mkdir()
        except FileExistsError:
            if claimed(candidate, token):
                return str(candidate)
            k += 1
            continue
        (candidate / MARKER).write_text(token + "\n")
        return str(candidate)


def safe_name(name) -> bool:
    """Whether ``name`` keeps a run under outputs/ (outputs/<name>/<date_time>): relative, no
    empty, ``.`` or ``..`` part (``name=..`` wrote outside it, ``name=/`` straight into it)."""
    return (isinstance(name, str) and bool(name) and not name.startswith("/")
            and all(part not in ("", ".", "..") for part in name.split("/")))


def run_name(default: str, train, ckpt_path) -> str:
    """``name`` when not given: ``default`` (``<data>-<model>`` as chosen on the command line),
    except for an evaluation (``train=false ckpt_path=...``), which takes the name stored in
    the checkpoint. Hydra names the run directory before any task runs, and an evaluation's
    directory was named after the command line's defaults (``outputs/sine-gru/...`` for an
    El Nino model). A checkpoint that cannot be read leaves ``default``: the evaluation then
    reports what is wrong with it."""
    if train or not ckpt_path:
        return default
    from runner.model import load_checkpoint   # grucy: only when needed
    try:
        # the same file runner.tasks.evaluate reads (so it is read twice: a small .npz)
        meta = load_checkpoint(checkpoint_file(ckpt_path, "best.npz"))[2]
        name = (meta.get("config") or {}).get("name")
    except Exception:                      # missing, damaged or foreign: not this resolver's to say
        return default
    # a forged ../.. would put the directory outside outputs/ (evaluate then refuses it)
    return name if safe_name(name) else default
