"""Run a hyperparameter sweep: every trial is a ``train.py fit`` run.

Example: ``python scripts/sweep.py --config configs/sweeps/circles_course.yaml``.
"""

import gc
import sys

# As in train.py: the imports' long-lived objects are frozen, not collected again and again.
gc.disable()
from training.sweep import main  # noqa: E402

gc.freeze()
gc.enable()

if __name__ == "__main__":
    code = main()
    # As in train.py: everything is written; leave the objects torch made to the OS.
    gc.freeze()
    sys.exit(code)
