"""jsonargparse's multi-line reports, cut to the one line that names the problem."""

from __future__ import annotations

from typing import NoReturn

from lightning.pytorch.cli import LightningArgumentParser

from training.errors import UserError


def first_reason(message: str) -> str:
    """The line that names the problem in jsonargparse's multi-line report.

    A bad value is reported as "does not validate against any of the Union
    subtypes", followed by one error per subtype; the first is ours.
    """
    lines = [line.strip() for line in message.splitlines() if line.strip()]
    if "Errors:" in lines:
        reasons: list[list[str]] = []
        for line in lines[lines.index("Errors:") + 1 :]:
            if line.startswith("- "):
                reasons.append([line[2:]])
            elif reasons and not line.startswith("Given value"):
                reasons[-1].append(line)
        reasons = [r for r in reasons if not r[0].startswith("Expected a <class 'NoneType'>")]
        if reasons:
            where = lines[0].rstrip(":") + ": " if lines[0].startswith("Parser key") else ""
            return where + _with_detail(reasons[0])
    return _with_detail(lines) if lines else message


def _with_detail(lines: list[str]) -> str:
    """A line that ends in a colon is only a heading: the next line says what is wrong."""
    if len(lines) > 1 and lines[0].endswith(":"):
        return f"{lines[0]} {lines[1]}"
    return lines[0]


class OneLineErrorParser(LightningArgumentParser):
    """Reports a bad argument or config key as a ``UserError`` instead of usage text."""

    def error(self, message: str, ex: Exception | None = None) -> NoReturn:
        reason = first_reason(str(message))
        if "--help" not in reason:
            reason += " (see --help for the options)"
        raise UserError(reason) from ex
