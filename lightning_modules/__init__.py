"""LightningModules that hold the notes' models with their loss, optimizer and metrics."""

from lightning_modules.classification import ClassificationModule
from lightning_modules.regression import RegressionModule

__all__ = ["ClassificationModule", "RegressionModule"]
