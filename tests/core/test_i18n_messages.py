"""Core's messages in the reader's language: refusals of typed amounts and fields, enum labels, job words, uploads."""

from __future__ import annotations

import enum
import gettext
import importlib
import io
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po

from core import formatting

CATALOGUES = Path(__file__).resolve().parents[2] / "app" / "translations"
LANGUAGES = ("es", "fr", "nl")
# Every module that defines an enum people see through core.formatting.label.
ENUM_MODULES = (
    "core.jobs",
    "core.periods",
    "grants.models",
    "grants.compliance.models",
    "grants.compliance.rules",
    "grants.closing.checklist",
    "grants.evidence.models",
    "grants.deadlines.models",
    "budgets.models",
    "indicators.models",
    "exports.models",
)
_LOADED: dict[str, gettext.GNUTranslations] = {}
_READ: dict[str, Any] = {}


def _catalogue(language: str) -> Any:
    if language not in _READ:
        with (CATALOGUES / language / "LC_MESSAGES" / "messages.po").open("rb") as handle:
            _READ[language] = read_po(handle, locale=language)
    return _READ[language]


def _translations(language: str) -> gettext.GNUTranslations:
    """The catalogue of ``language`` as the app would load it (compiled in memory from the .po)."""
    if language not in _LOADED:
        compiled = io.BytesIO()
        write_mo(compiled, _catalogue(language))
        compiled.seek(0)
        _LOADED[language] = gettext.GNUTranslations(compiled)
    return _LOADED[language]


def _translated(language: str, message: str) -> bool:
    found = _catalogue(language).get(message)
    return found is not None and bool(found.string) and "fuzzy" not in found.flags


@pytest.fixture
def catalogues() -> Iterator[None]:
    previous = formatting.set_translations_provider(_translations)
    yield
    formatting.set_translations_provider(previous)


# ---------------------------------------------------------------- typed amounts and fields


def test_a_french_reader_is_told_in_french_which_field_holds_a_wrong_amount(catalogues):
    from core.money import to_decimal

    with formatting.in_locale("fr"), pytest.raises(ValueError) as caught:
        to_decimal("douze", "amount")
    assert str(caught.value) == "amount : « douze » n'est pas un nombre"


def test_a_dutch_reader_typing_an_english_amount_is_told_in_dutch_which_mark_to_use(catalogues):
    from wtforms import Form

    from core.forms import LocaleDecimalField

    class AmountForm(Form):
        amount = LocaleDecimalField("Amount")

    with formatting.in_locale("nl"):
        form = AmountForm(formdata=_FormData(amount="1,234.50"))
        assert not form.validate()
    assert list(form.errors) == ["amount"]
    assert form.errors["amount"] == [
        "'1,234.50' is niet geschreven met een komma als decimaalteken; "
        "als bedragen worden geschreven als 1,234.56, kies dan de punt"
    ]


def test_a_validators_refusal_reads_in_dutch_next_to_its_field(catalogues):
    from wtforms import Form, StringField

    from core.forms import currency_code

    class FunderForm(Form):
        default_currency = StringField("Currency", validators=[currency_code])

    with formatting.in_locale("nl"):
        form = FunderForm(formdata=_FormData(default_currency="zzz"))
        assert not form.validate()
    assert form.errors == {"default_currency": ["'ZZZ' is geen ISO 4217-valutacode (bijv. USD, EUR, XCD)"]}


def test_a_number_too_large_for_its_column_is_refused_in_spanish_by_field(catalogues):
    from core.money import numbers_out_of_range
    from grants.models import Grant

    with formatting.in_locale("es"):
        problems = numbers_out_of_range(SimpleNamespace(amount=Decimal("1E+20")), Grant)
    assert problems == {"amount": ["es demasiado grande: como máximo 16 dígitos antes del separador decimal"]}


def test_the_same_refusals_stay_in_english_for_an_english_reader(catalogues):
    from core.money import to_decimal

    with formatting.in_locale("en"), pytest.raises(ValueError, match="^amount: 'douze' is not a number$"):
        to_decimal("douze", "amount")


# ---------------------------------------------------------------- enum labels


def test_an_enum_label_reads_in_spanish(catalogues):
    from grants.compliance.rules import Status
    from grants.models import GrantStatus

    with formatting.in_locale("es"):
        assert formatting.label(Status.at_risk) == "En riesgo"
        assert formatting.label("period_average") == "Promedio del período"  # a stored value
        assert formatting.label(GrantStatus.closed) == "Cerrada"
    assert formatting.label(Status.at_risk) == "At risk"  # English without a forced language


def test_an_enums_own_label_is_translated_too(catalogues):
    from grants.evidence.models import Sensitivity

    with formatting.in_locale("fr"):
        assert formatting.label(Sensitivity.staff_only) == "Personnel uniquement"


def _enum_members() -> list[enum.Enum]:
    members: list[enum.Enum] = []
    for name in ENUM_MODULES:
        module = importlib.import_module(name)
        for value in vars(module).values():
            if isinstance(value, type) and issubclass(value, enum.Enum) and value.__module__ == name:
                members.extend(value)
    return members


def test_every_enum_label_people_see_is_in_the_catalogues_and_translated():
    """Fails when a model gains an enum member whose words no catalogue translates.

    Its words are marked either by its enum's own ``label`` (a ``lazy_gettext``) or in
    ``core.labels.ENUM_WORDS``; either way every language must have them.
    """
    from core.labels import ENUM_WORDS

    untranslated = set()
    for member in _enum_members():
        with formatting.in_locale("en"):
            words = formatting.label(member)
        for language in LANGUAGES:
            if not _translated(language, words):
                untranslated.add(f"{language}: {type(member).__name__}.{member.name} {words!r}")
    assert not untranslated, "add to core.labels.ENUM_WORDS and translate: " + ", ".join(sorted(untranslated))
    assert "At risk" in ENUM_WORDS and "Period average" in ENUM_WORDS


def test_every_kind_of_record_the_audit_trail_names_is_listed_for_the_catalogues():
    from flask_appbuilder import Model

    from core.labels import RECORD_WORDS
    from grants.landing import record_kind

    for name in (*ENUM_MODULES, "core.signin", "app.users"):  # every model, whichever tests ran before
        importlib.import_module(name)
    kinds = {record_kind(table) for table in Model.metadata.tables if not table.startswith("ab_")}
    assert kinds - set(RECORD_WORDS) == set()
    assert not [kind for kind in kinds for language in LANGUAGES if not _translated(language, kind)]


# ---------------------------------------------------------------- jobs


def test_a_jobs_progress_reads_in_dutch_with_dutch_numbers(catalogues):
    from core.jobs import progress_words

    with formatting.in_locale("nl"):
        assert progress_words("rows", 412, 1000) == "412 van 1.000 rijen"
        assert progress_words("lines", 1, None) == "1 regel"
        assert progress_words("steps", 0, None) == ""
    with formatting.in_locale("en"):
        assert progress_words("rows", 412, 1000) == "412 of 1,000 rows"


def test_what_a_job_stored_in_english_is_shown_in_the_readers_language(catalogues):
    from core.jobs import CANCELLED, INTERRUPTED, shown

    stored = CANCELLED % {"name": "finance"}
    assert stored == "Cancelled by finance before it started; nothing was done."
    with formatting.in_locale("fr"):
        assert shown(stored) == "Annulée par finance avant de commencer ; rien n'a été fait."
        assert shown(INTERRUPTED).startswith("Interrompue : ")
        assert shown("Read 1,000 lines.") == "Read 1,000 lines."  # a sentence no catalogue holds: as stored
    with formatting.in_locale("en"):
        assert shown(stored) == stored


# ---------------------------------------------------------------- uploads


def test_an_upload_that_is_no_workbook_is_refused_in_french(catalogues):
    from core.workbooks import UnsafeWorkbook, check_container

    with formatting.in_locale("fr"), pytest.raises(UnsafeWorkbook) as caught:
        check_container(b"plain text, not a zip")
    assert str(caught.value).startswith("le classeur n'est ni un classeur Excel ni un autre fichier Office")


class _FormData(dict):
    def getlist(self, key):
        return [self[key]] if key in self else []
