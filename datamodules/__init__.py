"""LightningDataModules that make and split the notes' datasets."""

from datamodules.circles import CirclesDataModule
from datamodules.linear import LinearDataModule

__all__ = ["CirclesDataModule", "LinearDataModule"]
