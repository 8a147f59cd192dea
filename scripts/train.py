"""Fit, validate, test and predict from YAML configs.

Example: ``python scripts/train.py fit --config configs/linear.yaml``.
"""

import sys

from training.cli import main

if __name__ == "__main__":
    sys.exit(main())
