"""``python -m runner [overrides]``; ``python -m runner --help`` lists the config groups."""
import sys

from runner.app import main
from runner.sweep import exit_status

if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:    # the run said how to resume and wrote its summary already
        sys.exit(130)            # 128 + SIGINT, the shell's code, without a traceback
    sys.exit(exit_status())      # a multirun with a failed job exits 1 (runner/sweep.py)
