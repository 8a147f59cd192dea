"""``logs/<name>/config.yaml`` read back: what a later command trusts from the user's own fit.

``scripts/plot.py`` rebuilds a fit's data and model from it; ``scripts/export.py``
trusts the module of the net it names.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from training.errors import UserError
from training.run.folders import trusted_net_module

# Where training.run.config_yaml.FitConfigSaver writes it (SaveConfigCallback's config_filename).
CONFIG_FILE = "config.yaml"


def read_config_yaml(log_dir: Path) -> dict[str, Any]:
    """The config a fit wrote into ``log_dir``, or one line on why there is none to read."""
    log_dir = Path(log_dir)
    path = log_dir / CONFIG_FILE
    if not log_dir.is_dir():
        raise UserError(f"{log_dir} is not a directory; pass a fit's log dir, logs/<name>")
    if not path.is_file():
        raise UserError(
            f"{log_dir} has no {CONFIG_FILE}; pass the log dir of a fit, logs/<name>"
            " (validate, test and predict write none)"
        )
    try:
        config = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as error:
        raise UserError(
            f"cannot read {path} ({_reason(error)}); fit the run again to rewrite it"
        ) from error
    if not isinstance(config, dict) or not all(
        isinstance(config.get(key), dict) for key in ("model", "data")
    ):
        raise UserError(f"{path} has no model and data sections; fit the run again to rewrite it")
    return config


def trusted_net_module_of_run(log_dir: Path) -> list[str]:
    """The module of the net the run's ``config.yaml`` names, as the training CLI trusts it.

    The config is the user's own, written by their fit; the module it names
    already ran in that fit. Nothing where the run has no config (only
    ``fit`` writes one).
    """
    if not (Path(log_dir) / CONFIG_FILE).is_file():
        return []
    return trusted_net_module(read_config_yaml(log_dir))


def _reason(error: OSError | yaml.YAMLError) -> str:
    """What went wrong, in one line: PyYAML's own message quotes the offending line below it."""
    mark = getattr(error, "problem_mark", None)
    if isinstance(error, yaml.MarkedYAMLError) and mark is not None:
        return f"{error.problem or error.context} at line {mark.line + 1}, column {mark.column + 1}"
    return " ".join(str(error).split())
