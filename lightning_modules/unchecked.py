"""Bookkeeping attributes set many times per step, without ``nn.Module``'s checks."""

from __future__ import annotations

from typing import Any


class UncheckedAttributes:
    """Sets the attributes named in ``unchecked_attributes`` without ``nn.Module``'s checks.

    ``nn.Module.__setattr__`` checks every value it is given against
    parameters, buffers and submodules, about 2 µs each on a 2-core CPU.
    Lightning and torchmetrics set a few bookkeeping attributes many times in
    every step, none of which is ever one of those; a class that lists them
    has them set directly, as Lightning's own ``_ResultMetric`` sets every
    attribute. Every other attribute takes the path of the class it is mixed
    into (``nn.Module``'s, and torchmetrics' own checks on a metric).
    """

    unchecked_attributes: frozenset[str] = frozenset()

    def __setattr__(self, name: str, value: Any) -> None:
        if name in self.unchecked_attributes:
            object.__setattr__(self, name, value)
        else:
            super().__setattr__(name, value)
