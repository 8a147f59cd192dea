"""Fit, validate, test and predict from YAML configs.

Example: ``python scripts/train.py fit --config configs/linear.yaml``.
"""

import gc
import sys

from training.cli import main

if __name__ == "__main__":
    code = main()
    # Everything is written and closed. Python's exit would now walk every object
    # torch and Lightning made, about a second; frozen objects are left to the OS.
    gc.freeze()
    sys.exit(code)
