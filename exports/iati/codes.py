"""The IATI codelists Grantkeeper uses, read from the small JSON files in ``codelists/``.

Every code written into an activity file or offered in a drop-down comes from here, so
nobody types a code and nothing outside the lists can be written.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from core.errors import DomainValidationError
from core.formatting import gettext as _

CODELISTS = Path(__file__).resolve().parent / "codelists"


@dataclass(frozen=True)
class Codelist:
    name: str
    source: str
    version: str
    complete: bool
    codes: dict[str, str]  # code -> English name, in the file's order

    def label(self, code: str) -> str:
        """ "13040 STD control including HIV/AIDS": the code with its name, as people choose it."""
        return f"{code} {self.codes[code]}" if code in self.codes else code

    def choices(self) -> list[tuple[str, str]]:
        return [(code, self.label(code)) for code in self.codes]

    def check(self, code: str, field: str) -> str:
        """The code itself, or a refusal naming the field and a few of the codes it may be."""
        if code in self.codes:
            return code
        shown = ", ".join(self.label(c) for c in list(self.codes)[:6])
        more = " …" if len(self.codes) > 6 else ""
        message = _(
            "'%(code)s' is not in IATI's %(list)s list; choose one of %(codes)s",
            code=code,
            list=self.name,
            codes=shown + more,
        )
        raise DomainValidationError({field: [message]})


@cache
def codelist(name: str) -> Codelist:
    data = json.loads((CODELISTS / f"{name}.json").read_text(encoding="utf-8"))
    return Codelist(
        name=data["name"],
        source=data["source"],
        version=data["version"],
        complete=bool(data["complete"]),
        codes={str(code): str(label) for code, label in data["codes"]},
    )


def available() -> list[str]:
    return sorted(path.stem for path in CODELISTS.glob("*.json"))
