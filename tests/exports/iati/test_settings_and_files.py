"""The IATI settings an operator gives, and the schema and codelist files that ship with the package."""

from __future__ import annotations

import filecmp
import json
import tomllib
from pathlib import Path

import pytest

from config.settings import SettingsError
from tests.conftest import make_settings
from tests.exports.iati.conftest import FIXTURES

ROOT = Path(__file__).resolve().parents[3]
PACKAGE = ROOT / "exports" / "iati"


def test_the_organisations_iati_identifier_name_and_type_come_from_the_environment(tmp_path):
    settings = make_settings(
        tmp_path,
        GRANTKEEPER_IATI_ORG_REF="LC-CRO-98765",
        GRANTKEEPER_IATI_ORG_NAME="Windward Sex Worker Coalition",
        GRANTKEEPER_IATI_ORG_TYPE="23",
    )
    assert (settings.iati.org_ref, settings.iati.org_name, settings.iati.org_type) == (
        "LC-CRO-98765",
        "Windward Sex Worker Coalition",
        "23",
    )
    assert make_settings(tmp_path).iati.org_type == "22"  # a national NGO unless told otherwise


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("GRANTKEEPER_IATI_ORG_REF", "not an id"),
        ("GRANTKEEPER_IATI_ORG_TYPE", "NGO"),
        ("GRANTKEEPER_IATI_LANGUAGE", "english"),
    ],
)
def test_a_mistyped_iati_setting_is_refused_naming_the_variable(tmp_path, name, value):
    with pytest.raises(SettingsError, match=name):
        make_settings(tmp_path, **{name: value})


def test_the_package_and_the_test_fixtures_hold_the_same_iati_schemas():
    names = sorted(p.name for p in FIXTURES.glob("*.xsd"))
    assert names == ["iati-activities-schema.xsd", "iati-common.xsd", "iati-organisations-schema.xsd", "xml.xsd"]
    match, mismatch, errors = filecmp.cmpfiles(PACKAGE / "schema", FIXTURES, names, shallow=False)
    assert match == names and not mismatch and not errors


def test_schemas_and_codelists_are_installed_with_the_package():
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    globs = config["tool"]["setuptools"]["package-data"]["exports.iati"]
    assert "schema/*.xsd" in globs and "codelists/*.json" in globs


def test_every_codelist_says_where_it_comes_from_and_which_version():
    from exports.iati.codes import available, codelist

    assert {"Sector", "OrganisationType", "TransactionType", "ActivityStatus"} <= set(available())
    for name in available():
        data = json.loads((PACKAGE / "codelists" / f"{name}.json").read_text())
        assert data["source"] and data["version"].startswith("2.03")
        assert codelist(name).codes
    sectors = codelist("Sector")
    assert sectors.label("13040") == "13040 STD control including HIV/AIDS"
    assert sectors.label("15160") == "15160 Human rights"
