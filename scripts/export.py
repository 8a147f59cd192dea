"""Exports a run's checkpoint as the notes save a model (§2.5), and as ONNX.

Example: ``python scripts/export.py --name linear`` writes
``checkpoints/linear/best.pth`` (the net's ``state_dict``, for
``model.load_state_dict(torch.load(path))``) and ``checkpoints/linear/best.onnx``
(see ``training.export``).
"""

from __future__ import annotations

import sys
from pathlib import Path

from training.errors import ScriptArgumentParser, UserError, run_script
from training.export import export
from training.runs import resolve_ckpt_path


def main(argv: list[str] | None = None) -> int:
    parser = ScriptArgumentParser(__doc__, "python scripts/export.py --name NAME")
    parser.add_argument("--name", default="", help="the run: checkpoints/<name>/")
    parser.add_argument(
        "--ckpt_path", default="best", help="last, best (the default) or a checkpoint file"
    )
    parser.add_argument("--root", default=None, help="the run's --trainer.default_root_dir")
    parser.add_argument("--out_dir", type=Path, default=None, help="default: the checkpoint's")

    def body() -> None:
        args = parser.parse_args(argv)
        if args.ckpt_path in ("last", "best") and not args.name:
            raise UserError(f"--ckpt_path {args.ckpt_path} needs the run's --name")
        for path in export(resolve_ckpt_path(args.ckpt_path, args.root, args.name), args.out_dir):
            print(path)

    return run_script(body)


if __name__ == "__main__":
    sys.exit(main())
