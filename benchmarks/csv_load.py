"""How long ``CSVDataModule`` takes to read and check a CSV file of a million rows.

    python benchmarks/csv_load.py              # 1,000,000 rows, 3 repeats
    python benchmarks/csv_load.py --rows 100000

The file is the circles (two float features, a 0/1 label) written by numpy to
a temporary folder; the time is building the datamodule (pandas reads the
file, every value is checked to be a number, the classes are counted) and
``setup`` (the seeded split into tensors), the median of the repeats.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
from sklearn.datasets import make_circles

from datamodules import CSVDataModule


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    X, y = make_circles(args.rows, noise=0.03, random_state=42)
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "circles.csv"
        table = np.column_stack([X, y])
        np.savetxt(
            path,
            table,
            fmt=["%.6f", "%.6f", "%d"],
            delimiter=",",
            comments="",
            header="x1,x2,label",
        )
        size = path.stat().st_size / 2**20
        times = []
        for _ in range(args.repeats):
            start = time.perf_counter()
            datamodule = CSVDataModule(str(path), features=["x1", "x2"], target="label")
            datamodule.setup("fit")
            times.append(time.perf_counter() - start)
    print(
        f"{args.rows:,} rows ({size:.1f} MiB): {statistics.median(times):.2f} s median"
        f" of {args.repeats} (min {min(times):.2f} s, max {max(times):.2f} s)"
    )


if __name__ == "__main__":
    main()
