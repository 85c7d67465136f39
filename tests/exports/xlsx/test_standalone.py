"""The workbook code in exports/xlsx knows nothing of grants, the database or the web app."""

from __future__ import annotations

import ast
from pathlib import Path

import exports.xlsx

XLSX = Path(exports.xlsx.__file__).resolve().parent
# Project packages the workbook code may use: its own modules, the exports error type, the one
# guarded reader of uploaded workbooks (core.workbooks, which imports only core.formatting for its words),
# and core.formatting itself: the refusals are said in the reader's language where they are raised, as
# core.workbooks already does; core.formatting imports nothing of the project but core.clock (checked below).
ALLOWED_PROJECT = ("exports.xlsx", "exports.errors", "core.workbooks", "core.formatting")
PROJECT_ROOTS = {"app", "budgets", "config", "core", "exports", "grants", "indicators"}


def _imports(path: Path) -> list[str]:
    names: list[str] = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.append(node.module)
    return names


def test_a_developer_can_use_the_workbook_code_without_the_rest_of_the_app() -> None:
    offending = {
        f"{path.name}: {name}"
        for path in sorted(XLSX.glob("*.py"))
        for name in _imports(path)
        if name.split(".")[0] in PROJECT_ROOTS
        and not any(name == allowed or name.startswith(allowed + ".") for allowed in ALLOWED_PROJECT)
    }
    assert not offending, sorted(offending)


def test_the_guarded_workbook_reader_it_shares_imports_only_the_words_it_refuses_in() -> None:
    """core.workbooks writes its refusals in the reader's language (core.formatting), nothing else of the project."""
    import core.formatting
    import core.workbooks

    names = _imports(Path(core.workbooks.__file__))
    assert not [n for n in names if n.split(".")[0] in PROJECT_ROOTS and n != "core.formatting"]
    beneath = _imports(Path(core.formatting.__file__))
    assert not [n for n in beneath if n.split(".")[0] in PROJECT_ROOTS and n not in ("core", "core.clock")]
