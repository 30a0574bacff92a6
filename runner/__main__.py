"""``python -m runner [overrides]``; ``python -m runner --help`` lists the config groups."""
from runner.app import main

if __name__ == "__main__":
    main()
