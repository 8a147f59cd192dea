"""LightningDataModules that make and split the notes' datasets."""

from datamodules.blobs import BlobsDataModule
from datamodules.circles import CirclesDataModule
from datamodules.csv_file import CSVDataModule
from datamodules.linear import LinearDataModule
from datamodules.moons import MoonsDataModule

__all__ = [
    "BlobsDataModule",
    "CSVDataModule",
    "CirclesDataModule",
    "LinearDataModule",
    "MoonsDataModule",
]
