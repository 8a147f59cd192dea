"""Lightning's private parts the project uses are still there, as it uses them.

``training/lightning_private.py`` holds every such use; after an upgrade that
changes one, this fails with one line naming it.
"""

from __future__ import annotations

import ast
from pathlib import Path

from training.lightning_private import changed_private_parts

ROOT = Path(__file__).resolve().parents[1]
PRIVATE_MODULE = ROOT / "training" / "lightning_private.py"


def test_the_private_parts_of_lightning_the_project_uses_are_unchanged() -> None:
    assert changed_private_parts() == []


def lightning_names(tree: ast.AST) -> set[str]:
    """Names imported from Lightning in a module."""
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("lightning"):
            names.update(alias.asname or alias.name for alias in node.names)
            names.add(node.module or "")
        elif isinstance(node, ast.Import):
            names.update(a.asname or a.name for a in node.names if a.name.startswith("lightning"))
    return names


def private_uses(path: Path) -> list[str]:
    """``trainer._x``, ``L._x``, ``from lightning... import _x``: private names of Lightning's.

    Attributes of the project's own objects (``self._x``) and of other
    libraries are not Lightning's. A Lightning object is recognised by the
    names the project gives one: ``trainer``, ``L``, or a name imported from Lightning.
    """
    tree = ast.parse(path.read_text())
    imported = lightning_names(tree) | {"trainer", "L", "pl_module", "module"}
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("lightning"):
            found += [f"{path.name}: imports {a.name}" for a in node.names if a.name[0] == "_"]
            if any(part.startswith("_") for part in (node.module or "").split(".")):
                found.append(f"{path.name}: imports from {node.module}")
        if (
            isinstance(node, ast.Attribute)
            and node.attr.startswith("_")
            and not node.attr.startswith("__")
            and isinstance(node.value, ast.Name)
            and node.value.id in imported
        ):
            found.append(f"{path.name}:{node.lineno}: {node.value.id}.{node.attr}")
    return found


def test_no_module_but_one_touches_a_private_part_of_lightning() -> None:
    found = [
        use
        for package in ("training", "lightning_modules", "datamodules", "scripts")
        for path in sorted((ROOT / package).rglob("*.py"))
        if path != PRIVATE_MODULE
        for use in private_uses(path)
    ]
    assert found == []


def test_the_private_use_check_finds_a_private_use(tmp_path: Path) -> None:
    source = tmp_path / "uses_private.py"
    source.write_text(
        "from lightning.fabric.utilities.cloud_io import _load\n"
        "def f(trainer):\n    return trainer._checkpoint_connector\n"
    )
    assert private_uses(source) == [
        "uses_private.py: imports _load",
        "uses_private.py:3: trainer._checkpoint_connector",
    ]
