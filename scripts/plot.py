"""Draws a finished fit's plots again, from its log dir.

Example: ``python scripts/plot.py logs/linear`` rewrites ``logs/linear/*.png``
from ``logs/linear/config.yaml``, ``logs/linear/metrics.csv`` and
``checkpoints/linear/best.ckpt`` (see ``training.outputs.plots``, notes §2.1.2, §2.6.4,
§2.6.6, §3.1).
"""

from __future__ import annotations

from pathlib import Path

from training.command_line.script_process import exit_without_collecting, script_imports
from training.errors import ScriptArgumentParser, run_script

with script_imports():
    from training.outputs.plots import redraw_fit_plots


def main(argv: list[str] | None = None) -> int:
    def body() -> None:
        parser = ScriptArgumentParser(__doc__, "python scripts/plot.py logs/<name>")
        parser.add_argument("log_dir", type=Path, help="the fit's log dir, <root>/logs/<name>")
        args = parser.parse_args(argv)
        for path in redraw_fit_plots(args.log_dir):
            print(path)

    return run_script(body)


if __name__ == "__main__":
    exit_without_collecting(main())
