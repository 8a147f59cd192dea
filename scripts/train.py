"""Fit, validate, test and predict from YAML configs.

Example: ``python scripts/train.py fit --config configs/linear.yaml``.
"""

import gc
import sys

# Importing torch, Lightning and the libraries they import makes millions of
# objects that live as long as the process. Each full collection during the
# imports walks all of them again: about a second here. They are frozen instead
# (kept out of every later collection), and collection resumes for the run.
gc.disable()
from training.cli import main  # noqa: E402

gc.freeze()
gc.enable()

if __name__ == "__main__":
    code = main()
    # Everything is written and closed. Python's exit would now walk every object
    # torch and Lightning made, about a second; frozen objects are left to the OS.
    gc.freeze()
    sys.exit(code)
