"""Draws a finished fit's plots again, from its log dir.

Example: ``python scripts/plot.py logs/linear`` rewrites ``logs/linear/*.png``
from ``logs/linear/config.yaml``, ``logs/linear/metrics.csv`` and
``checkpoints/linear/best.ckpt`` (see ``training.plots``, notes §2.1.2, §2.6.4,
§2.6.6, §3.1).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import NoReturn

from training.errors import UserError
from training.plots import redraw_fit_plots


class _OneLineErrorParser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise UserError(f"{message} (usage: python scripts/plot.py logs/<name>)")


def main(argv: list[str] | None = None) -> int:
    parser = _OneLineErrorParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("log_dir", type=Path, help="the fit's log dir, <root>/logs/<name>")
    try:
        args = parser.parse_args(argv)
        for path in redraw_fit_plots(args.log_dir):
            print(path)
    except UserError as error:
        print(f"error: {error}", file=sys.stderr)
        return error.exit_code
    return 0


if __name__ == "__main__":
    sys.exit(main())
