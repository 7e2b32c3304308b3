"""``models:/NAME/VERSION``, ``models:/NAME@ALIAS`` and ``runs:/RUN_ID/PATH`` URIs (pure)."""

from __future__ import annotations

import re
from dataclasses import dataclass

SCHEMES = ("models:/", "runs:/")
_MODEL = re.compile(r"^models:/(?P<name>[^/@]+)(?:/(?P<version>\d+)|@(?P<alias>[A-Za-z0-9_][A-Za-z0-9_-]*))$")
_RUN = re.compile(r"^runs:/(?P<run>[0-9a-fA-F]{6,64})(?:/(?P<path>.+))?$")
FORMS = "models:/NAME/VERSION, models:/NAME@ALIAS or runs:/RUN_ID/PATH"


@dataclass(frozen=True)
class MlflowUri:
    """A parsed URI: a registry version (``name`` with ``version`` or ``alias``) or a run's artifact ``path``."""

    text: str
    name: str | None = None
    version: str | None = None
    alias: str | None = None
    run_id: str | None = None
    path: str = ""

    @property
    def registry(self) -> bool:
        return self.name is not None


def is_mlflow_uri(text: object) -> bool:
    return isinstance(text, str) and text.startswith(SCHEMES)


def parse(text: str) -> MlflowUri | None:
    """The parsed URI, or None when ``text`` is not one of the three forms."""
    m = _MODEL.match(text)
    if m:
        return MlflowUri(text, name=m["name"], version=m["version"], alias=m["alias"])
    m = _RUN.match(text)
    if m:
        return MlflowUri(text, run_id=m["run"], path=(m["path"] or "").strip("/"))
    return None
