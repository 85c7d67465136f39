"""The single error type the exports package raises when a template, a fill or a mapping is unusable."""

from __future__ import annotations

from collections.abc import Mapping, Sequence


class TemplateError(ValueError):
    """A workbook, a fill request or a mapping spec was refused.

    The message is meant for the person who uploaded the template or wrote the
    mapping: it names the sheet/cell (or mapping key) and says why.  ``details``
    carries the per-key messages when several problems were found at once
    (mapping validation), keyed by a dotted path such as ``cells.0.source``.
    """

    def __init__(self, message: str, details: Mapping[str, Sequence[str]] | None = None) -> None:
        super().__init__(message)
        self.details: dict[str, list[str]] = {k: list(v) for k, v in (details or {}).items()}
