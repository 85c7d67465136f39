"""The one error type domain services raise for input they refuse."""

from __future__ import annotations

from core.formatting import gettext as _


class DomainValidationError(ValueError):
    """Input that breaks a rule of the domain.

    ``errors`` maps a field name (or ``"_"`` for the record as a whole, or
    ``"row 7"`` for an import) to a list of messages, so the web layer can
    show each message next to its field and the API can return it as JSON.
    """

    def __init__(self, errors: dict[str, list[str]] | str, field: str = "_") -> None:
        if isinstance(errors, str):
            errors = {field: [errors]}
        self.errors = errors
        super().__init__(self.summary())

    def summary(self) -> str:
        parts = []
        for field, messages in self.errors.items():
            label = field if field != "_" else _("record")
            parts.append(f"{label}: {'; '.join(messages)}")
        return " | ".join(parts)


class ErrorCollector:
    """Gather every problem of one record before refusing it, so a user fixes all at once."""

    def __init__(self) -> None:
        self.errors: dict[str, list[str]] = {}

    def add(self, field: str, message: str) -> None:
        self.errors.setdefault(field, []).append(message)

    def raise_if_any(self) -> None:
        if self.errors:
            raise DomainValidationError(self.errors)
