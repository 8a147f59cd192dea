"""``logs/<name>/config.yaml``: the resolved config of a fit, written once and whole."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml
from jsonargparse import set_dumper
from lightning.pytorch.cli import SaveConfigCallback

from training.run.atomic_files import atomic_write_text

# The characters libyaml writes as PyYAML's own emitter does: the printable part of
# Unicode's first plane. libyaml escapes the characters beyond it (emoji), and the
# two fold a long string with control characters (a tab, a newline) differently.
_LIBYAML_ALIKE = re.compile("[ -~\xa0-\ud7ff\ue000-\ufefe\uff00-\ufffd]*")


def libyaml_writes_alike(data: Any, key: bool = False) -> bool:
    """Whether libyaml writes ``data`` in the same text as PyYAML's pure-Python emitter.

    The strings decide, keys and values: printable first-plane characters only,
    and no empty key (libyaml writes ``'': 1`` where PyYAML writes ``? ''``).
    """
    if isinstance(data, str):
        return bool(data or not key) and _LIBYAML_ALIKE.fullmatch(data) is not None
    if isinstance(data, dict):
        return all(
            libyaml_writes_alike(k, key=True) and libyaml_writes_alike(v) for k, v in data.items()
        )
    if isinstance(data, (list, tuple)):
        return all(libyaml_writes_alike(item) for item in data)
    return True


def yaml_dump(data: Any) -> str:
    """jsonargparse's YAML text (``yaml.safe_dump`` with its options), emitted by libyaml.

    PyYAML's pure-Python emitter takes about 4 ms for a fit's config, a
    percent of a one-epoch fit of a million points; libyaml writes the same
    text in under 1 ms. A config with a string libyaml would write otherwise
    (``libyaml_writes_alike``) takes PyYAML's emitter. Registered for
    jsonargparse's ``yaml`` format, so ``config.yaml`` and ``--print_config``
    both use it.
    """
    fast = hasattr(yaml, "CSafeDumper") and libyaml_writes_alike(data)  # PyYAML may lack libyaml
    return yaml.dump(
        data,
        Dumper=yaml.CSafeDumper if fast else yaml.SafeDumper,
        default_flow_style=False,
        allow_unicode=True,
        sort_keys=False,
    )


set_dumper("yaml", yaml_dump)


class FitConfigSaver(SaveConfigCallback):
    """Writes the resolved ``config.yaml`` beside the metrics, for ``fit`` only.

    ``validate``, ``test`` and ``predict`` leave what ``fit`` wrote alone. The
    config was checked when it was parsed; Lightning's callback checks it again
    while saving, which costs more than a small fit, so it is written as parsed.
    """

    def setup(self, trainer: Any, pl_module: Any, stage: str) -> None:
        if stage != "fit" or self.already_saved or trainer.fast_dev_run:
            return
        log_dir = Path(trainer.log_dir)  # on every rank: it may broadcast
        if trainer.is_global_zero:
            text = self.parser.dump(self.config, skip_unset=False, skip_validation=True)
            atomic_write_text(log_dir / self.config_filename, text)
        self.already_saved = True
