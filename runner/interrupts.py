"""Ctrl-C and SIGTERM during a run: recorded as an interruption, never mid-record.

A Ctrl-C raises KeyboardInterrupt wherever the run is; the runner records
``"status": "interrupted"`` with the command that continues it (runner.app). SIGTERM, what
``kill`` and a batch system's time limit send, is taken the same way while a run is under
way (``sigterm_as_interrupt``), as Terminated. Records written together (an epoch's
checkpoints and metrics; the summary) hold both until they are written
(``interrupts_deferred``).
"""
import contextlib
import signal
import threading


class Terminated(KeyboardInterrupt):
    """SIGTERM during a run, handled as a Ctrl-C is (``python -m runner`` exits 143)."""


def raise_terminated(signum, frame):
    """The SIGTERM handler: raise Terminated where the main thread is."""
    raise Terminated


@contextlib.contextmanager
def sigterm_as_interrupt():
    """Raise Terminated on SIGTERM within the block, where SIGTERM would otherwise end the
    process at once (its default action) and leave no summary.json or continue command.
    Not where something else handles SIGTERM (submitit's handlers, for preemption and
    requeueing), nor outside the main thread."""
    if (threading.current_thread() is not threading.main_thread()
            or signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL):
        yield
        return
    previous = signal.signal(signal.SIGTERM, raise_terminated)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


@contextlib.contextmanager
def interrupts_deferred():
    """Hold Ctrl-C (SIGINT), and SIGTERM where sigterm_as_interrupt took it, until the block
    ends, then raise KeyboardInterrupt (Terminated for SIGTERM).

    An epoch's records (best.npz, last.npz, metrics.csv) are written together: a Ctrl-C
    between them left last.npz an epoch behind best.npz and the metrics, and one inside
    zipfile's constructor printed an "Exception ignored ... ZipFile.__del__" traceback
    after the resume hint. summary.json too: a Ctrl-C as a run ended, or a second one
    while the first was being recorded, left none. Only where Python's own handler (or
    ours) is in place: the main thread, the signal not ignored or taken over by the caller.
    """
    held = [s for s, ours in ((signal.SIGINT, signal.default_int_handler),
                              (signal.SIGTERM, raise_terminated)) if signal.getsignal(s) is ours]
    if threading.current_thread() is not threading.main_thread() or not held:
        yield
        return
    caught = []
    previous = {s: signal.signal(s, lambda signum, frame: caught.append(signum)) for s in held}
    try:
        yield
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
    if caught:
        raise Terminated if signal.SIGTERM in caught else KeyboardInterrupt
