"""``python -m runner [overrides]``; ``python -m runner --help`` lists the config groups."""
import signal
import sys

from runner.interrupts import Terminated, raise_terminated, sigterm_as_interrupt

# a SIGTERM during the imports below ended the process by its default action (exit -15, where
# the shell's 143 was promised): taken as Terminated there, and given back to the default
# after them for sigterm_as_interrupt (which leaves alone a handler someone else installed)
_during_imports = signal.getsignal(signal.SIGTERM) is signal.SIG_DFL
if _during_imports:
    signal.signal(signal.SIGTERM, raise_terminated)

try:     # a second of imports (Hydra, numpy, grucy): a Ctrl-C there is no run to report on
    from omegaconf.errors import OmegaConfBaseException

    from runner import app
    from runner.app import main
    from runner.cli import (argv_error, experiment_hint, grucy_error, interval_hint, list_hint,
                            missing_plugin_hint, quoting_hint, unknown_key_hint)
    from runner.config import resolution_reason
    from runner.sweep import discard_unused, exit_status, record_stop
    try:         # every run needs it: refused below, before Hydra makes a run directory
        import grucy  # noqa: F401
        grucy_missing = None
    except ImportError as exc:
        grucy_missing = exc
except KeyboardInterrupt as exc:  # as after it, without Python's traceback through the imports
    sys.exit(143 if isinstance(exc, Terminated) else 130)
finally:
    if _during_imports:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)

if __name__ == "__main__":
    refused = argv_error(sys.argv[1:]) or grucy_error(sys.argv[1:], grucy_missing)
    if refused:                  # Hydra's own refusal is a raw traceback (or none at all)
        print(f"error: {refused}", file=sys.stderr)
        sys.exit(1)
    try:
        # here as well as around each run: a sweep's launcher process (joblib's, submitit's)
        # runs no job itself, and killed by SIGTERM's default action it left its workers
        # training on, orphaned, its table counting only the jobs they went on to finish
        with sigterm_as_interrupt():
            main()
    except KeyboardInterrupt as exc:   # the run said how to resume, wrote its summary already
        terminated = isinstance(exc, Terminated)
        record_stop("SIGTERM" if terminated else "Ctrl-C")    # if a sweep was under way
        # 128 + the signal, the shell's code, without a traceback: SIGINT's or SIGTERM's
        sys.exit(143 if terminated else 130)
    except OmegaConfBaseException as exc:
        # a hydra.* setting that does not resolve (hydra.run.dir=${nope}, a sweep's subdir,
        # which resolves per job): Hydra resolves them outside any runner code, and its error
        # formatting failed on the exception and re-raised it, a hundred-line traceback
        key = str(getattr(exc, "full_key", "") or "")
        if not key.startswith("hydra."):
            raise
        print(f"error: {key}: cannot be resolved: {resolution_reason(exc)}", file=sys.stderr)
        sys.exit(1)
    except SystemExit as exc:    # Hydra's error said what it could not find, not what to install,
        failed = exc.code not in (0, None)  # which key was meant, where it came from, or quoting
        argv, refused = sys.argv[1:], failed and not app.runs_begun   # by Hydra, not a run
        hint = failed and (missing_plugin_hint(argv) or unknown_key_hint(argv)
                           or (refused and (quoting_hint(argv) or list_hint(argv)
                                            or experiment_hint(argv) or interval_hint(argv))))
        if failed:
            discard_unused()     # a multirun refused before its first job leaves no directory
        if hint:
            print(f"hint: {hint}", file=sys.stderr)
        raise
    sys.exit(exit_status())      # a multirun with a failed job exits 1 (runner/sweep.py)
