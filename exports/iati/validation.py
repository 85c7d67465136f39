"""Validate IATI activity files against the IATI 2.03 schemas shipped in ``schema/`` (lxml, offline).

A file is checked before anyone can download, keep or publish it; each problem names the
grant (the activity it sits in) and the element, in a sentence.
"""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass
from pathlib import Path

from lxml import etree

from core.errors import DomainValidationError
from core.formatting import gettext as _

SCHEMA_DIR = Path(__file__).resolve().parent / "schema"
ACTIVITIES_XSD = SCHEMA_DIR / "iati-activities-schema.xsd"
MAX_PROBLEMS = 20

_local = threading.local()  # an XMLSchema per thread: lxml validators are not shared across threads


def _parser() -> etree.XMLParser:
    # Nothing is fetched or expanded: the schemas sit next to each other, and our XML has no DTD.
    return etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False)


def activities_schema() -> etree.XMLSchema:
    schema = getattr(_local, "schema", None)
    if schema is None:
        schema = etree.XMLSchema(etree.parse(str(ACTIVITIES_XSD), _parser()))
        _local.schema = schema
    return schema


@dataclass(frozen=True)
class Problem:
    grant: str | None  # the grant reference of the activity the problem is in
    element: str  # where, inside the activity (e.g. "budget[2]/value")
    message: str

    def sentence(self) -> str:
        if self.grant:
            return _(
                "%(grant)s: <%(element)s>: %(problem)s", grant=self.grant, element=self.element, problem=self.message
            )
        return _("<%(element)s>: %(problem)s", element=self.element, problem=self.message)


_ACTIVITY = re.compile(r"^/iati-activities/iati-activity(?:\[(\d+)\])?/?(.*)$")
_PREFIX = re.compile(r"^Element '[^']*'(?:, attribute '[^']*')?: ")


def problems(data: bytes, references: list[str] | None = None) -> list[Problem]:
    """Every schema problem of an activity file (at most MAX_PROBLEMS); [] when valid.

    ``references`` are the grant references of the file's activities, in order, so a problem
    inside the Nth activity is said of the Nth grant.
    """
    try:
        document = etree.fromstring(data, _parser())
    except etree.XMLSyntaxError as exc:
        return [Problem(None, "iati-activities", _("the file is not well-formed XML (%(problem)s)", problem=exc.msg))]
    schema = activities_schema()
    if schema.validate(document):
        return []
    found: list[Problem] = []
    for error in schema.error_log:
        grant, element = None, error.path or "iati-activities"
        match = _ACTIVITY.match(element)
        if match:
            index = int(match.group(1) or 1)
            if references and index <= len(references):
                grant = references[index - 1]
            else:
                identifier = document.findtext(f"iati-activity[{index}]/iati-identifier")
                grant = identifier or _("activity %(number)s", number=index)
            element = match.group(2) or "iati-activity"
        else:
            element = element.lstrip("/") or "iati-activities"
        found.append(Problem(grant, element, _PREFIX.sub("", error.message)))
        if len(found) >= MAX_PROBLEMS:
            break
    return found


def check(data: bytes, references: list[str] | None = None) -> None:
    """Refuse a file that breaks the IATI 2.03 schema, naming each grant and element; nothing is kept."""
    found = problems(data, references)
    if found:
        raise DomainValidationError(
            {
                "iati": [
                    _("the IATI file is not valid against the IATI 2.03 schema: %(problem)s", problem=p.sentence())
                    for p in found
                ]
            }
        )
