"""Fit, validate, test, predict and find a learning rate (lr_find) from YAML configs.

Example: ``python scripts/train.py fit --config configs/linear.yaml``.
"""

from training.command_line.script_process import exit_without_collecting, script_imports

with script_imports():
    from training.command_line.cli import main

if __name__ == "__main__":
    exit_without_collecting(main())
