"""Third-party messages that do not apply to this project, each filtered narrowly.

The one list: the scripts call ``quiet_known_noise`` as they start, and the
tests before each test (``tests/conftest.py``), because pytest puts back its
own warning filters around every test.
"""

from __future__ import annotations

import logging
import warnings

# What jsonargparse says, once per run, when Lightning's CLI calls the APIs it deprecates:
# the deprecation itself and a note on how it reports deprecations.
JSONARGPARSE_DEPRECATIONS = (
    r"(?s).*(deprecated in v4\.49\.0|only one JsonargparseDeprecationWarning)"
)
LIGHTNING_CLI = r"lightning\.pytorch\.cli"


class _DropStartingWith(logging.Filter):
    def __init__(self, start: str) -> None:
        super().__init__()
        self.start = start

    def filter(self, record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith(self.start)


# One object each: a logger adds a filter it already holds only once, however often
# quiet_known_noise is called.
# An advert for a cloud service, printed on every fit.
_TIP = _DropStartingWith("💡 Tip")
# The seed is in the config; said before validation, it would precede every error line.
_SEED_SET = _DropStartingWith("Seed set to")
# Tuner.lr_find restores the weights it saved itself a moment before, without weights_only;
# every checkpoint of the project's own is loaded with weights_only=True.
_LR_FIND_RESTORE = _DropStartingWith("`weights_only` was not set")


def quiet_known_noise() -> None:
    """Filters third-party messages that do not apply to this project, each narrowly."""
    # Lightning 2.6 calls a torch pytree API that torch 2.13 deprecates; nothing to fix here.
    warnings.filterwarnings("ignore", message=r"`isinstance\(treespec, LeafSpec\)` is deprecated")
    # Lightning 2.6's CLI calls jsonargparse APIs that 4.49 deprecates; nothing to fix here.
    warnings.filterwarnings(
        "ignore",
        message=JSONARGPARSE_DEPRECATIONS,
        category=DeprecationWarning,
        module=LIGHTNING_CLI,
    )
    # Batches are slices of in-memory tensors: worker processes would only add copying.
    warnings.filterwarnings("ignore", message=r".*does not have many workers.*")
    # The summary's size estimate counts 32 bits a parameter under bf16-mixed; the size is
    # not one of the project's figures, and the parameters are float32 all the same.
    warnings.filterwarnings("ignore", message=r"Precision bf16-mixed is not supported by the model")
    # The learning rate is the optimizer's, which every rank steps alike: it is the same on
    # every rank, and a sync would add a collective per epoch to average equal values.
    warnings.filterwarnings(
        "ignore", message=r"It is recommended to use `self\.log\('lr', \.\.\., sync_dist=True\)`"
    )
    # Metrics are logged once per epoch, never per step, so the step interval never applies.
    warnings.filterwarnings("ignore", message=r".*smaller than the logging interval.*")
    logging.getLogger("lightning.pytorch.utilities.rank_zero").addFilter(_TIP)
    logging.getLogger("lightning.fabric.utilities.seed").addFilter(_SEED_SET)
    logging.getLogger("lightning.pytorch.trainer.connectors.checkpoint_connector").addFilter(
        _LR_FIND_RESTORE
    )
