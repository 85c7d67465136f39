"""The one way packages contribute to each other without importing upwards.

A lower package (``grants``) declares an extension point as a ``Registry``;
higher packages (``budgets``, ``indicators``) add their contributions to it
from their ``contributions`` module, which the composition root (``app``)
loads for every domain. The lower package then asks the registry instead of
importing the higher one. Extension points used by ``exports`` but fed by the
domains below it are declared here in ``core`` (see ``core.datasets``).

Every extension point in the codebase is an instance of this class:

- ``grants.compliance.rules.RULES``: requirement rule types;
- ``grants.deadlines.missing.MISSING_WORK``: "still missing" checks for a deadline;
- ``grants.evidence.targets.TARGETS``: what evidence can be linked to;
- ``grants.page.PANELS``: the grant page's panels;
- ``grants.closing.checklist.CHECKLIST``: the lines of a period's closing checklist;
- ``grants.closing.views.ACTIONS``: the action panels of the period page;
- ``core.datasets.DATASETS``: the named datasets exports can fill templates with.
- ``core.datasets.FIGURES``: the single figures a mapping can put in one cell.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping
from typing import Generic, TypeVar

T = TypeVar("T")


class Registry(Generic[T]):
    """Named contributions to one extension point, listed by ``order`` then in the order they were added.

    Contributions arrive in the order the domains load (layer by layer), which
    is not always the order people expect to read them in: ``order`` places one
    in listings (lower first) without the contributors knowing of each other.
    """

    def __init__(self, purpose: str) -> None:
        self.purpose = purpose
        self._items: dict[str, T] = {}
        self._rank: dict[str, tuple[int, int]] = {}
        self._added = 0

    def add(self, key: str, item: T, *, order: int = 0) -> T:
        """Add (or replace, when a module is loaded again) the contribution named ``key``."""
        if key not in self._rank:
            self._added += 1
        self._rank[key] = (order, self._rank.get(key, (0, self._added))[1])
        self._items[key] = item
        self._items = dict(sorted(self._items.items(), key=lambda pair: self._rank[pair[0]]))
        return item

    def remove(self, key: str) -> T | None:
        """Take the contribution named ``key`` away (None if there was none)."""
        self._rank.pop(key, None)
        return self._items.pop(key, None)

    @contextlib.contextmanager
    def replaced(self, items: Mapping[str, T] | None = None) -> Iterator[Registry[T]]:
        """Hold only ``items`` inside the block, then exactly what was there before (for tests)."""
        saved = self._items, self._rank
        self._items, self._rank = {}, {}
        for key, item in (items or {}).items():
            self.add(key, item)
        try:
            yield self
        finally:
            self._items, self._rank = saved

    def get(self, key: str) -> T | None:
        return self._items.get(key)

    def __getitem__(self, key: str) -> T:
        try:
            return self._items[key]
        except KeyError:
            raise KeyError(f"no {self.purpose} named {key!r}") from None

    def __contains__(self, key: object) -> bool:
        return key in self._items

    def __iter__(self) -> Iterator[str]:
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)

    def keys(self) -> list[str]:
        return list(self._items)

    def values(self) -> list[T]:
        return list(self._items.values())

    def items(self) -> list[tuple[str, T]]:
        return list(self._items.items())

    def __repr__(self) -> str:
        return f"Registry({self.purpose!r}, {list(self._items)})"
