"""Run a hyperparameter sweep: every trial is a ``train.py fit`` run.

Example: ``python scripts/sweep.py --config configs/sweeps/circles_course.yaml``.
"""

from training.command_line.script_process import exit_without_collecting, script_imports

with script_imports():
    from training.sweeps.sweep import main

if __name__ == "__main__":
    exit_without_collecting(main())
