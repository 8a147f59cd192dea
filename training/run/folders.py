"""Where a run lives, and how its checkpoints are read.

A run named ``<name>`` keeps ``checkpoints/<name>/`` and ``logs/<name>/`` under one root.
"""

from __future__ import annotations

import os
import pickle
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from lightning_modules.net_spec import check_net_matches
from training.errors import UserError
from training.run.run_checkpoint import BEST, LAST

# Room in a folder's name for the ``.N`` that moves an earlier run aside.
_ASIDE_SUFFIX_ROOM = 8


def check_run_name(root: str | Path | None, name: str) -> None:
    """Refuses a run name that is not a plain relative path inside the root.

    ``--name`` becomes ``checkpoints/<name>`` and ``logs/<name>``, and a new
    fit moves an earlier run's folders aside: a name that points at the root
    itself (``""``, ``.``), above it (``..``), outside it (``/tmp/x``), at a
    file, or that the file system cannot hold would move or write what is not
    this run's. Nested names (``group/run``, as sweeps name their trials) are
    plain parts joined by ``/``.
    """
    fix = "pass a plain name such as linear or group/run"
    parts = name.split("/")
    if any(part in ("", ".", "..") for part in parts) or "\0" in name:
        raise UserError(
            f"run name {name!r} is not a folder name inside the root"
            f" (no empty part, '.', '..', or leading or trailing '/'); {fix}"
        )
    base = Path(root or ".")
    existing = next((p for p in (base, *base.parents) if p.exists()), Path("."))
    try:
        name_max = os.pathconf(existing, "PC_NAME_MAX")
    except (OSError, ValueError):
        name_max = 255
    longest = max(parts, key=lambda part: len(part.encode()))
    if len(longest.encode()) + _ASIDE_SUFFIX_ROOM > name_max:
        raise UserError(
            f"run name part {longest[:20]!r}... is {len(longest.encode())} bytes long;"
            f" the file system takes {name_max - _ASIDE_SUFFIX_ROOM} at most: {fix}"
        )
    for folder in (checkpoint_dir(root, name), log_dir(root, name)):
        for path in (folder, *folder.parents):
            if path == base:
                break
            if path.exists() and not path.is_dir():
                raise UserError(
                    f"{path} is a file, not a folder, so run {name!r} cannot live there;"
                    " pass another --name, or move the file away"
                )


def checkpoint_dir(root: str | Path | None, name: str) -> Path:
    return Path(root or ".") / "checkpoints" / name


def log_dir(root: str | Path | None, name: str) -> Path:
    return Path(root or ".") / "logs" / name


def resolve_ckpt_path(ckpt_path: str, root: str | Path | None, name: str) -> Path:
    """``last`` and ``best`` name the run's own files; anything else is a path."""
    if ckpt_path in ("last", "best"):
        check_run_name(root, name)
        path = checkpoint_dir(root, name) / (LAST if ckpt_path == "last" else BEST)
        if not path.is_file():
            raise UserError(
                f"run {name!r} has no {ckpt_path} checkpoint ({path} does not exist);"
                " fit it first, or pass --name of a run that has one"
            )
        return path
    path = Path(ckpt_path)
    if not path.is_file():
        raise UserError(f"checkpoint {path} does not exist; pass an existing file, or last or best")
    return path


def check_writable(directory: Path) -> None:
    """Creates ``directory`` and proves a file can be written there."""
    try:
        directory.mkdir(parents=True, exist_ok=True)
        probe = directory / f".write-probe.{os.getpid()}"
        probe.touch()
        probe.unlink()
    except OSError as error:
        raise UserError(
            f"cannot write to {directory} ({error.strerror});"
            " pass a writable --trainer.default_root_dir"
        ) from error


def keep_earlier_run(root: str | Path | None, name: str) -> list[Path]:
    """Moves an earlier run's folders aside to ``<name>.1``, ``<name>.2``, ...

    A new fit under an existing name starts clean without deleting anything.
    Returns the folders the earlier run now lives in.
    """
    folders = [checkpoint_dir(root, name), log_dir(root, name)]
    existing = [f for f in folders if f.is_dir() and any(f.iterdir())]
    if not existing:
        return []
    n = 1
    # A nested name (``sweep/trial-1``) moves its last part: ``sweep/trial-1.1``.
    while any(f.with_name(f"{f.name}.{n}").exists() for f in folders):
        n += 1
    moved = []
    for folder in existing:
        target = folder.with_name(f"{folder.name}.{n}")
        folder.rename(target)
        moved.append(target)
    return moved


def trusted_net_module(config: dict[str, Any]) -> list[str]:
    """The module of the net a run's own config names: the user's code, as the CLI trusts it."""
    model = config.get("model") or {}
    net = (model.get("init_args") or {}).get("net") if isinstance(model, dict) else None
    class_path = net.get("class_path") if isinstance(net, dict) else None
    return [str(class_path).rpartition(".")[0]] if class_path else []


def read_checkpoint(path: Path, trust: Sequence[str] = ()) -> dict[str, Any]:
    """Loads a checkpoint the safe way (``weights_only=True``), or says what is wrong with it."""
    unreadable = (
        f"cannot read {path}: it is truncated, corrupt or not a checkpoint;"
        " resume from another checkpoint (or fit again)"
    )
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as error:
        # torch names the class or function the pickle wanted to call ("unsupported GLOBAL").
        if "unsupported global" in str(error).lower():
            raise UserError(
                f"refused to load {path}: it holds objects that would run code when loaded;"
                " only plain-data checkpoints are accepted"
            ) from error
        raise UserError(unreadable) from error
    except (RuntimeError, EOFError, OSError, ValueError, KeyError, IndexError, TypeError) as error:
        raise UserError(unreadable) from error
    if not isinstance(checkpoint, dict) or "state_dict" not in checkpoint:
        raise UserError(f"{path} is not a Lightning checkpoint")
    if "net" not in checkpoint.get("hyper_parameters", {}):
        raise UserError(f"{path} is not a checkpoint of this project (it records no net)")
    try:
        check_net_matches(checkpoint["hyper_parameters"]["net"], checkpoint["state_dict"], trust)
    except ValueError as error:
        raise UserError(f"{path}: {error}") from error
    return checkpoint
