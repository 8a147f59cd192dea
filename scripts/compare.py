"""Compares runs side by side: one table of their results, one PNG of their curves.

Example: ``python scripts/compare.py logs/circles_v0 logs/circles`` prints each
run's epochs, its final and best validation metrics and the config values that
differ between the runs, and writes ``compare.png``: their loss and metric
curves overlaid, labelled by run name (see ``training.outputs.compare``). Any
number of runs, a sweep's trials among them: ``logs/<sweep>/trial-*``.
"""

from __future__ import annotations

from pathlib import Path

from training.command_line.script_process import exit_without_collecting, script_imports
from training.errors import ScriptArgumentParser, run_script

with script_imports():
    from training.outputs.compare import COMPARE_PNG, compare_runs


def main(argv: list[str] | None = None) -> int:
    def body() -> None:
        parser = ScriptArgumentParser(
            __doc__, "python scripts/compare.py logs/<name> [logs/<name> ...] [--out compare.png]"
        )
        parser.add_argument("runs", type=Path, nargs="+", help="the runs' log folders, logs/<name>")
        parser.add_argument(
            "--out", type=Path, default=Path(COMPARE_PNG), help="the PNG of the curves to write"
        )
        args = parser.parse_args(argv)
        table, png = compare_runs(args.runs, args.out)
        print(table)
        print(f"Curves: {png}")

    return run_script(body)


if __name__ == "__main__":
    exit_without_collecting(main())
