"""Ready mappings shipped with Grantkeeper: real funder templates with a mapping that fills their own cells.

Each is a template file and a mapping spec (YAML, the same file format users
export and import) kept side by side in this folder; ``SOURCE.md`` names where
the funders' files come from and under which licence. A funder gets one in a
click (``exports.services.use_ready_mapping``).
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources

import yaml

__all__ = ["ReadyMapping", "READY", "ready_mapping", "ready_mappings"]


@dataclass(frozen=True)
class ReadyMapping:
    key: str
    name: str  # the template's name once a funder uses it
    template_file: str
    mapping_file: str
    source: str  # where the template comes from, in words

    def template_bytes(self) -> bytes:
        return resources.files(__package__).joinpath(self.template_file).read_bytes()

    def mapping_text(self) -> str:
        return resources.files(__package__).joinpath(self.mapping_file).read_text(encoding="utf-8")

    @property
    def description(self) -> str:
        data = yaml.safe_load(self.mapping_text()) or {}
        return str(data.get("description") or "")


READY: dict[str, ReadyMapping] = {
    r.key: r
    for r in (
        ReadyMapping(
            "dfid_logframe",
            "Logframe (results framework)",
            "dfid_logframe.xlsx",
            "dfid_logframe.yaml",
            "UK DFID/FCDO logframe template, as published in arqaamio/LogframeLab-server",
        ),
        ReadyMapping(
            "pepfar_psnuxim",
            "PSNUxIM targets",
            "pepfar_psnuxim.xlsx",
            "pepfar_psnuxim.yaml",
            "PEPFAR COP25 PSNUxIM template, as published in pepfar-datim/datapackr",
        ),
        ReadyMapping(
            "gf_progress_update",
            "Progress update (Global Fund style)",
            "gf_progress_update.xlsx",
            "gf_progress_update.yaml",
            "Grantkeeper's own template in the layout of a Global Fund progress update",
        ),
    )
}


def ready_mappings() -> list[ReadyMapping]:
    return list(READY.values())


def ready_mapping(key: str) -> ReadyMapping | None:
    return READY.get(key)
