"""Exports a run's checkpoint as the notes save a model (§2.5), and as ONNX.

Example: ``python scripts/export.py --name linear`` writes
``checkpoints/linear/best.pth`` (the net's ``state_dict``, for
``model.load_state_dict(torch.load(path))``) and ``checkpoints/linear/best.onnx``
(see ``training.outputs.export``). A run of a net of your own exports as it trained:
its ``config.yaml`` names the net's module, which is trusted; for a checkpoint
file alone, name it with ``--trust``.
"""

from __future__ import annotations

from pathlib import Path

from training.command_line.script_process import exit_without_collecting, script_imports
from training.errors import ScriptArgumentParser, UserError, run_script

with script_imports():
    from training.outputs.export import export
    from training.run.folders import log_dir, resolve_ckpt_path
    from training.run.read_config_yaml import trusted_net_module_of_run


def main(argv: list[str] | None = None) -> int:
    def body() -> None:
        parser = ScriptArgumentParser(__doc__, "python scripts/export.py --name NAME")
        parser.add_argument("--name", default="", help="the run: checkpoints/<name>/")
        parser.add_argument(
            "--ckpt_path", default="best", help="last, best (the default) or a checkpoint file"
        )
        parser.add_argument("--root", default=None, help="the run's --trainer.default_root_dir")
        parser.add_argument("--out_dir", type=Path, default=None, help="default: the checkpoint's")
        parser.add_argument(
            "--trust",
            action="append",
            default=[],
            metavar="MODULE",
            help="a module of your own to build the net from: importing it runs its code"
            " (with --name, the one the run's config.yaml names is trusted already)",
        )
        args = parser.parse_args(argv)
        if args.ckpt_path in ("last", "best") and not args.name:
            raise UserError(f"--ckpt_path {args.ckpt_path} needs the run's --name")
        checkpoint = resolve_ckpt_path(args.ckpt_path, args.root, args.name)
        trust = list(args.trust)
        if args.name:  # the user's own config, as the training CLI trusts it
            trust += trusted_net_module_of_run(log_dir(args.root, args.name))
        for path in export(checkpoint, args.out_dir, trust):
            print(path)

    return run_script(body)


if __name__ == "__main__":
    exit_without_collecting(main())
