"""``logs/<name>/config.yaml`` read back: what a later command trusts from the user's own fit."""

from __future__ import annotations

from pathlib import Path

import yaml

from training.errors import UserError
from training.run.folders import trusted_net_module

# Where training.run.config_yaml.FitConfigSaver writes it (SaveConfigCallback's config_filename).
CONFIG_FILE = "config.yaml"


def trusted_net_module_of_run(log_dir: Path) -> list[str]:
    """The module of the net the run's ``config.yaml`` names, as the training CLI trusts it.

    The config is the user's own, written by their fit; the module it names
    already ran in that fit. Nothing where the run has no config (only
    ``fit`` writes one).
    """
    path = Path(log_dir) / CONFIG_FILE
    if not path.is_file():
        return []
    try:
        config = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as error:
        raise UserError(f"cannot read {path} ({error}); fit the run again to rewrite it") from error
    return trusted_net_module(config) if isinstance(config, dict) else []
