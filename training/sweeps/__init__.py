"""Hyperparameter sweeps on Optuna: the space, the trials, their storage and report."""
