"""`python run.py iati` as an operator runs it, on a fresh instance with the demo loaded."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from lxml import etree

from tests.exports.iati.conftest import FIXTURES

ROOT = Path(__file__).resolve().parents[3]
IATI_ENV = {
    "GRANTKEEPER_IATI_ORG_REF": "LC-CRO-98765",
    "GRANTKEEPER_IATI_ORG_NAME": "Windward Sex Worker Coalition",
    "GRANTKEEPER_IATI_ORG_TYPE": "22",
}


def run(args, instance: Path, extra_env=None):
    env = {k: v for k, v in os.environ.items() if not k.startswith("GRANTKEEPER_") and k != "DATABASE_URL"}
    env["GRANTKEEPER_INSTANCE"] = str(instance)
    env.update(extra_env or {})
    return subprocess.run(
        [sys.executable, "run.py", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300
    )


@pytest.fixture(scope="module")
def demo_instance(tmp_path_factory):
    instance = tmp_path_factory.mktemp("iati-instance")
    result = run(["init", "--demo"], instance)
    assert result.returncode == 0, result.stderr
    return instance


def test_the_cli_writes_a_valid_file_of_two_grants_and_keeps_it(demo_instance, tmp_path):
    out = tmp_path / "activities.xml"
    result = run(
        ["iati", "--grant", "RCM-HIV-2026-SW", "--grant", "CNF-CORE-2026", "-o", str(out)], demo_instance, IATI_ENV
    )
    assert result.returncode == 0, result.stderr
    assert "2 IATI activities, valid against the IATI 2.03 schemas" in result.stdout
    schema = etree.XMLSchema(etree.parse(str(FIXTURES / "iati-activities-schema.xsd")))
    document = etree.parse(str(out))
    schema.assertValid(document)
    assert [a.findtext("iati-identifier") for a in document.getroot()] == [
        "LC-CRO-98765-RCM-HIV-2026-SW",
        "LC-CRO-98765-CNF-CORE-2026",
    ]
    import hashlib

    assert hashlib.sha256(out.read_bytes()).hexdigest() in result.stdout


def test_the_cli_names_the_missing_setting_and_writes_nothing(demo_instance, tmp_path):
    out = tmp_path / "activities.xml"
    result = run(["iati", "--grant", "RCM-HIV-2026-SW", "-o", str(out)], demo_instance)
    assert result.returncode == 2
    assert "GRANTKEEPER_IATI_ORG_REF" in result.stderr
    assert not out.exists()


def test_the_cli_names_an_unknown_grant(demo_instance, tmp_path):
    result = run(["iati", "--grant", "NO-SUCH-GRANT", "-o", str(tmp_path / "x.xml")], demo_instance, IATI_ENV)
    assert result.returncode == 2
    assert "NO-SUCH-GRANT" in result.stderr


def test_a_bad_organisation_type_is_refused_naming_the_setting(demo_instance, tmp_path):
    result = run(
        ["iati", "--grant", "RCM-HIV-2026-SW", "-o", str(tmp_path / "x.xml")],
        demo_instance,
        {**IATI_ENV, "GRANTKEEPER_IATI_ORG_TYPE": "99"},
    )
    assert result.returncode == 2
    assert "GRANTKEEPER_IATI_ORG_TYPE" in result.stderr and "OrganisationType" in result.stderr
