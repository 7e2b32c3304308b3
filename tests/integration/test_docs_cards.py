"""The guide's finding cards (docs/findings/) are the demos' current cards: same id, severity, title and sentence as
the demo audits of this run. A change to a finding's words fails here until ``make docs-cards`` screenshots it again."""

from __future__ import annotations

import json

from conftest import ROOT

FINDINGS = ROOT / "docs" / "findings"
KINDS = ("shortcut", "probe", "place", "context", "property", "background", "accuracy", "heatmap", "behaviour", "regression",
         "trust", "no_signal", "data", "not_evaluated")
"""DESIGN §13's finding kinds: each has a page."""


def test_every_finding_kind_has_a_page_in_the_guide():
    nav = (ROOT / "mkdocs.yml").read_text(encoding="utf-8")
    for kind in KINDS:
        assert (FINDINGS / f"{kind}.md").is_file() and f"findings/{kind}.md" in nav, kind


def test_the_guides_cards_are_the_demos_current_findings(demo_runs):
    cards = json.loads((FINDINGS / "cards.json").read_text(encoding="utf-8"))
    assert set(cards) >= {"shortcut", "probe", "context", "property", "accuracy", "heatmap"}
    for kind, card in cards.items():
        if not card["checked"]:  # the regression card needs an audit against a baseline that the suite does not run
            assert kind == "regression" and (FINDINGS / "img" / f"{kind}.png").is_file()
            continue
        stem = card["config"].removeprefix("configs/").removesuffix(".yaml")
        _code, out = demo_runs[stem]
        summary = json.loads((out / "summary.json").read_text(encoding="utf-8"))
        found = {f["id"]: f for f in summary["findings"]}
        assert card["id"] in found, f"{kind}: {card['id']} is no longer a finding of {stem}: {sorted(found)}"
        now = found[card["id"]]
        assert now["kind"] == kind
        stale = {k: (card[k], now[k]) for k in ("severity", "title", "sentence") if card[k] != now[k]}
        assert not stale, f"docs/findings/img/{kind}.png is stale (run make docs-cards): {stale}"
        image = FINDINGS / "img" / f"{kind}.png"
        assert image.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and image.stat().st_size < 200_000
        assert f"img/{kind}.png" in (FINDINGS / f"{kind}.md").read_text(encoding="utf-8")
