"""Regenerate the finding cards the guide shows (``make docs-cards``): one screenshot per finding kind, from the demo reports.

Usage: ``python docs/cards.py [RUNS]``. RUNS is a folder holding the demo audits (``RUNS/<config stem>/report.html``);
without it the demos are audited into a temporary folder first (about 30 minutes on 2 cores). For each entry of
:data:`CARDS` it screenshots the report's card (``article.finding[data-id=...]``, 1280 px wide, Chromium headless)
into ``docs/findings/img/<kind>.png`` (a 64-colour palette PNG, to keep the repository small) and writes
``docs/findings/cards.json``: the kind, the demo, the finding's id, title and sentence. A test compares that file with
the demos' current findings, so a card whose words changed fails the suite until this script is run again.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "docs" / "findings"

CARDS: dict[str, tuple[str, str]] = {
    "shortcut": ("demo_shortcut", "shortcut:circle+square+triangle:corners"),
    "probe": ("demo_dormant", "probe:triangle:vendor-logo@at"),
    "context": ("demo_source", "context:square:surroundings"),
    "property": ("demo_cast", "property:circle:cue@background"),
    "accuracy": ("demo_vit", "accuracy:*:*"),
    "heatmap": ("demo_mask", "heatmap:*:centre"),
}
"""Finding kind -> (demo config stem, the finding's id in that demo's audit)."""

REGRESSION = ("demo_dormant", "regression:*:accuracy", "  - {metric: accuracy, max_drop: 0.03}", "demo")
"""No demo fails a change rule alone: the dormant-cue model with one change rule, audited against the good demo's
summary.json (the periodic review of docs/periodic-review.md). Its card is regenerated here; the suite does not run
this audit, so cards.json marks it ``"checked": false``."""


def audit_demos(folder: Path) -> None:
    for stem in sorted({stem for stem, _ in CARDS.values()} | {REGRESSION[0], REGRESSION[3]}):
        subprocess.run([sys.executable, "-m", "pipeline", "audit", str(ROOT / "configs" / f"{stem}.yaml"),
                        "--output", str(folder / stem), "--no-progress"], cwd=ROOT, check=False)


def audit_regression(runs: Path) -> None:
    """RUNS/regression/: the dormant demo with the change rule, against RUNS/demo/summary.json."""
    stem, _id, rule, baseline = REGRESSION
    config = ROOT / "configs" / f".cards_{stem}.yaml"  # beside the demo's own, so its relative paths hold
    text, added = re.subn(r"(?m)^(gate:.*\n)", lambda m: f"{m.group(1)}{rule}\n", (ROOT / "configs" / f"{stem}.yaml").read_text(), count=1)
    if not added:  # the rule must be in the gate, or the card would show an audit without it
        raise SystemExit(f"configs/{stem}.yaml: expected a line starting 'gate:', found none")
    config.write_text(text)
    try:
        subprocess.run([sys.executable, "-m", "pipeline", "audit", str(config), "--output", str(runs / "regression"),
                        "--baseline", str(runs / baseline / "summary.json"), "--no-progress"], cwd=ROOT, check=False)
    finally:
        config.unlink()


def finding(runs: Path, stem: str, finding_id: str) -> dict:
    summary = json.loads((runs / stem / "summary.json").read_text())
    found = [f for f in summary["findings"] if f["id"] == finding_id]
    if not found:
        raise SystemExit(f"{runs / stem / 'summary.json'}: expected a finding {finding_id}, found {[f['id'] for f in summary['findings']]}")
    return found[0]


def screenshot(report: Path, finding_id: str, target: Path) -> None:
    from PIL import Image
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=["--headless", "--no-sandbox", "--disable-gpu"])
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.goto(report.as_uri())
        page.locator(f'article.finding[data-id="{finding_id}"]').screenshot(path=str(target))
        browser.close()
    Image.open(target).convert("RGB").quantize(colors=64).save(target, optimize=True)


def main(argv: list[str]) -> int:
    with tempfile.TemporaryDirectory(prefix="gradcam-cards-") as tmp:
        runs = Path(argv[0]) if argv else Path(tmp)
        if not argv:
            audit_demos(runs)
        (OUT / "img").mkdir(parents=True, exist_ok=True)
        cards = {}
        for kind, (stem, finding_id) in CARDS.items():
            f = finding(runs, stem, finding_id)
            screenshot(runs / stem / "report.html", finding_id, OUT / "img" / f"{kind}.png")
            cards[kind] = {"config": f"configs/{stem}.yaml", "id": finding_id, "severity": f["severity"],
                           "title": f["title"], "sentence": f["sentence"], "checked": True}
        stem, finding_id, rule, baseline = REGRESSION
        if not (runs / "regression").is_dir():
            audit_regression(runs)
        f = finding(runs, "regression", finding_id)
        screenshot(runs / "regression" / "report.html", finding_id, OUT / "img" / "regression.png")
        cards["regression"] = {"config": f"configs/{stem}.yaml", "rule": rule.strip("- "), "baseline": f"configs/{baseline}.yaml",
                               "id": finding_id, "severity": f["severity"], "title": f["title"], "sentence": f["sentence"],
                               "checked": False}
        (OUT / "cards.json").write_text(json.dumps(cards, indent=2, ensure_ascii=False) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
