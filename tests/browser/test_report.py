"""The report in real headless Chromium (Debian's package, driven by Playwright), plus static checks.

Screenshots at 1280 px and 390 px go to test-artifacts/ for the test log.
"""

from __future__ import annotations

import csv
import json
import re
import shutil
from pathlib import Path

import pytest

from conftest import ROOT, require
from pipeline.cli import main

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = ROOT / "test-artifacts"
XSS = "<script>alert(1)</script>"
IMG_XSS = "<img src=x onerror=alert(2)>.jpg"  # a file name (no '/' allowed in it)


@pytest.fixture(scope="module")
def reports(demo_runs):
    return {name: folder for name, (_, folder) in demo_runs.items()}


@pytest.fixture(scope="module")
def xss_report(tmp_path_factory):
    """A dataset whose class and file names carry markup; it must render as text."""
    tmp = tmp_path_factory.mktemp("xss")
    imgs = tmp / "imgs"
    imgs.mkdir()
    src = sorted((ROOT / "data_samples" / "shapes" / "images").iterdir())[:6]
    lines = ["image,label,x0,y0,x1,y1"]
    for i, p in enumerate(src):
        name = IMG_XSS if i == 0 else p.name
        shutil.copy(p, imgs / name)
        lines.append(f'"{name}",{XSS if i % 2 == 0 else "square"},10,10,40,40')
    (tmp / "boxes.csv").write_text("\n".join(lines) + "\n")
    (tmp / "x.yaml").write_text(
        f"""name: xss
model: {{path: {ROOT}/data_samples/shapes/model_good.keras, class_names: ["{XSS}", square, triangle]}}
dataset: {{format: csv, annotations: boxes.csv, images: imgs}}
gate:
  - {{metric: class_accuracy, min: 0.0}}
"""
    )
    main(["audit", str(tmp / "x.yaml"), "--output", str(tmp / "out"), "--no-progress"])
    return tmp / "out" / "report.html"


def test_markup_in_dataset_strings_is_escaped(xss_report):
    html = xss_report.read_text()
    assert XSS not in html and "<img src=x" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html


from conftest import DEMOS as BUNDLED  # noqa: E402

DEMOS = ["demo", "demo_shortcut", "demo_dormant", "demo_cast", "demo_source"]  # the findings demos: every section checked


@pytest.mark.parametrize("name", DEMOS)
def test_report_is_self_contained_and_small(reports, name):
    html = (reports[name] / "report.html").read_text()
    assert not re.search(r"https?://", html), "the report must not reference any web resource"
    assert not re.search(r"""(src|href)\s*=\s*["'](?!data:|#)""", html), "only data: URIs and in-page links"
    size = (reports[name] / "report.html").stat().st_size
    assert size <= 5 * 1024 * 1024, size


@pytest.fixture(scope="module")
def browser():
    require(CHROMIUM.exists(), f"{CHROMIUM} is absent: apt-get install chromium chromium-driver")
    playwright = pytest.importorskip("playwright.sync_api")
    with playwright.sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), args=["--headless", "--no-sandbox", "--disable-gpu"])
        yield b
        b.close()


def _open(browser, path: Path, width: int, unfold: bool = False):
    """The report in a fresh page; ``unfold``: every folded section opened, as a reader who clicks them all."""
    page = browser.new_page(viewport={"width": width, "height": 900})
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on("dialog", lambda d: (errors.append(f"dialog: {d.message}"), d.dismiss()))
    page.goto(path.as_uri())
    if unfold:
        page.evaluate("document.querySelectorAll('details').forEach(d => d.open = true)")
    return page, errors


@pytest.mark.parametrize("name", DEMOS)
@pytest.mark.parametrize("width", [1280, 390])
def test_report_opens_clean_with_verdict_and_gate_visible(browser, reports, name, width):
    summary = json.loads((reports[name] / "summary.json").read_text())
    page, errors = _open(browser, reports[name] / "report.html", width)
    verdict = page.locator("#verdict .big")
    assert verdict.is_visible() and verdict.inner_text() == summary["verdict"]
    assert not page.locator("#gate table").is_visible()  # folded: the findings lead
    page.locator("#gate > summary").click()  # opening a folded section shows its content
    assert page.locator("#gate table").is_visible()
    assert page.locator("#gate tbody tr").count() == len(summary["gate"])
    # the verdict banner sits in the first screen
    assert page.locator("#verdict").bounding_box()["y"] < 400
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"report-{name}-{width}.png"), full_page=False)
    page.screenshot(path=str(ARTIFACTS / f"report-{name}-{width}-full.png"), full_page=True)
    if width == 390:  # nothing wider than the phone screen except inside scroll boxes
        assert page.evaluate("document.documentElement.scrollWidth") <= 392
    assert errors == []
    page.close()


def test_filters_change_which_cards_are_shown(browser, reports):
    page, errors = _open(browser, reports["demo"] / "report.html", 1280, unfold=True)  # the good model's gallery mixes flags
    cards = page.locator("#gallery .card")
    total = cards.count()
    assert total > 0
    page.select_option("#flag-filter", "right_for_wrong_reason")
    shown = [c for c in cards.all() if c.is_visible()]
    assert 0 < len(shown) < total
    assert all(c.get_attribute("data-flag") == "right_for_wrong_reason" for c in shown)
    assert page.locator("#card-count").inner_text() == f"{len(shown)} of {total} cards"
    page.select_option("#class-filter", "triangle")
    shown_class = [c for c in cards.all() if c.is_visible()]
    assert len(shown_class) < len(shown)
    assert all("triangle" in json.loads(c.get_attribute("data-classes")) for c in shown_class)
    page.select_option("#flag-filter", "")
    page.select_option("#class-filter", "")
    assert sum(c.is_visible() for c in cards.all()) == total
    assert errors == []
    page.close()


def test_escaped_report_runs_no_script_in_browser(browser, xss_report):
    page, errors = _open(browser, xss_report, 1280, unfold=True)
    assert page.locator("#classes").inner_text().count(XSS) >= 1  # shown as text
    assert errors == []
    page.close()


@pytest.mark.parametrize("name", ["demo", "demo_shortcut"])
def test_need_the_object_section_shows_the_evidence(browser, reports, name):
    summary = json.loads((reports[name] / "summary.json").read_text())
    page, errors = _open(browser, reports[name] / "report.html", 1280, unfold=True)
    section = page.locator("#need-object")
    assert section.is_visible() and "Does the model need the object?" in section.inner_text()
    counts = [int(t) for t in page.locator("#agreement-quad b").all_inner_texts()]
    correct_judged = summary["flag_counts"]["ok"] + summary["flag_counts"]["right_for_wrong_reason"]
    assert len(counts) == 4 and sum(counts) == correct_judged
    assert page.locator("#need-object svg.chart circle").count() > 0  # the focus vs dependence scatter
    assert page.locator("#trust-checks li").count() == len(summary["trust"]["checks"]) == 5
    # claim confirmation with its interval, chance agreement and κ beside the 2x2; the exclusions counted
    claims = page.locator("#claims").inner_text()
    ex = summary["explanation"]
    assert "on-target heatmaps confirmed" in claims and "Cohen's κ" in claims and "agreement expected by chance" in claims
    if ex["kappa"] is None:
        assert ex["kappa_reason"] in claims
    assert page.locator("#removal-exclusions b").all_inner_texts() == [str(ex["not_judged_large_region"]), str(ex["blank_also_right"])]
    # every gallery card shows its object-removed and object-only images, decoded
    thumbs = page.locator("#gallery .card .iv img")
    assert thumbs.count() == 2 * page.locator("#gallery .card").count()
    assert all(w > 0 for w in page.eval_on_selector_all("#gallery .card .iv img", "els => els.map(e => e.naturalWidth)"))
    # "still right" on exactly the cards whose sample is still right without the object (blank control applied)
    still = {r["sample_id"] for r in csv.DictReader((reports[name] / "samples.csv").open()) if r["still_right_without_object"] == "true"}
    for card in page.locator("#gallery .card").all():
        assert (card.locator(".still").count() == 1) == (card.get_attribute("data-sample") in still)
    if name == "demo_shortcut":  # the reviewer sees the model still right with the shape gone
        assert page.locator("#gallery .card .still").count() > page.locator("#gallery .card").count() / 2
    ARTIFACTS.mkdir(exist_ok=True)
    section.screenshot(path=str(ARTIFACTS / f"need-object-{name}.png"))
    assert errors == []
    page.close()


@pytest.mark.parametrize("width", [1280, 390])
def test_strategies_section_shows_confirmed_shortcuts_first(browser, reports, width):
    summary = json.loads((reports["demo_shortcut"] / "summary.json").read_text())
    page, errors = _open(browser, reports["demo_shortcut"] / "report.html", width, unfold=True)
    section = page.locator("#strategies")
    assert section.is_visible() and "Where does the model look instead?" in section.inner_text()
    # it comes before the gallery
    assert section.bounding_box()["y"] < page.locator("#gallery").bounding_box()["y"]
    n = int(summary["strategies"]["aggregates"]["overall"]["confirmed_shortcuts"])
    assert page.locator("#confirmed-shortcuts li").count() == n > 0
    # within each class the confirmed shortcuts come first, outlined in red
    for row in page.locator("#strategies .atlas-row").all():
        statuses = [s.get_attribute("data-status") for s in row.locator(".strategy").all()]
        confirmed = [s == "confirmed shortcut" for s in statuses]
        assert confirmed == sorted(confirmed, reverse=True)
    first = page.locator("#strategies .strategy").first
    assert first.get_attribute("data-status") == "confirmed shortcut"
    assert first.evaluate("e => getComputedStyle(e).borderTopColor") == "rgb(201, 42, 42)"
    # every small map and exemplar image decodes
    assert all(w > 0 for w in page.eval_on_selector_all("#strategies img", "els => els.map(e => e.naturalWidth)"))
    if width == 390:
        assert page.evaluate("document.documentElement.scrollWidth") <= 392
    ARTIFACTS.mkdir(exist_ok=True)
    section.screenshot(path=str(ARTIFACTS / f"strategies-demo_shortcut-{width}.png"))
    assert errors == []
    page.close()


def test_strategies_section_on_the_good_demo_confirms_nothing(browser, reports):
    page, errors = _open(browser, reports["demo"] / "report.html", 1280, unfold=True)
    assert page.locator("#strategies #no-shortcuts").is_visible()
    assert page.locator("#strategies .strategy.confirmed").count() == 0
    assert page.locator("#strategies .atlas-row").count() == 3
    assert errors == []
    page.close()


READING = re.compile(r"(\d+)% of the heat lies on the objects, which cover (\d+)% of the image on average \(([\d.]+)× their share\): "
                     r"heat (follows|barely follows|avoids) the objects")


@pytest.mark.parametrize("name", ["demo", "demo_shortcut", "demo_dormant"])
def test_hot_spot_crops_render_and_no_atlas_sentence_contradicts_its_numbers(browser, reports, name):
    summary = json.loads((reports[name] / "summary.json").read_text())
    page, errors = _open(browser, reports[name] / "report.html", 1280, unfold=True)
    # every strategy with a hot spot shows its crops from up to 4 members, and each one decodes
    for card in page.locator("#strategies .strategy").all():
        crops = card.locator("figure.crops img")
        body = card.locator(".strategy-body").inner_text()
        has_spot = body.count("hot spot:") > 0
        assert (crops.count() == 4) == has_spot, card.inner_text()[:200]
        assert not ("looks at its objects" in body and "holds:" in body), body[:200]  # never both words
    widths = page.eval_on_selector_all("#strategies figure.crops img", "els => els.map(e => [e.naturalWidth, e.naturalHeight])")
    assert all(w > 0 and h > 0 for w, h in widths)
    assert bool(widths) == (name == "demo_shortcut")  # the demos without a hot spot off the objects show none
    # the atlas sentence of every class says its own numbers and reads them right
    for lab in summary["strategies"]["labels"]:
        text = page.locator(f'#strategies .atlas-row[data-label="{lab["label"]}"] .atlas p').inner_text()
        m = READING.search(text)
        assert m, text
        on, area, verdict = int(m[1]), int(m[2]), m[4]
        share, covered = lab["atlas"]["on_object_share"], lab["atlas"]["object_area_share"]
        assert on == round(100 * share) and area == round(100 * covered) and float(m[3]) == round(share / covered, 1)
        assert verdict == ("follows" if share >= 3 * covered else "barely follows" if share >= covered else "avoids"), text
        if on > 50:
            assert not re.search(r"most .*off", text), text
    assert errors == []
    page.close()


@pytest.mark.parametrize("width", [1280, 390])
def test_probes_section_shows_the_fooling_probes_first(browser, reports, width):
    summary = json.loads((reports["demo_dormant"] / "summary.json").read_text())
    page, errors = _open(browser, reports["demo_dormant"] / "report.html", width, unfold=True)
    section = page.locator("#probes")
    assert section.is_visible() and "What would fool it?" in section.inner_text()
    # after the strategies, before the gallery
    assert page.locator("#strategies").bounding_box()["y"] < section.bounding_box()["y"] < page.locator("#gallery").bounding_box()["y"]
    fooled = int(summary["aggregates"]["overall"]["probes_fooled"])
    assert page.locator("#fooling-probes li").count() == fooled > 0
    assert page.locator("#fooling-probes").inner_text().count("turns ") == fooled
    cards = page.locator("#probes .probe-card")
    assert 0 < cards.count() <= fooled
    assert cards.first.get_attribute("data-probe") == "vendor-logo"
    # each card: 4 before/after pairs, every image decoded
    assert cards.first.locator(".pair").count() == 4 and cards.first.locator(".pair img").count() == 8
    # each pair says the model's answer before and after: "circle 0.99 → triangle 0.97"
    assert all(re.search(r"\w+ [01]\.\d\d → triangle [01]\.\d\d", c) for c in cards.first.locator(".pair figcaption").all_inner_texts())
    assert all(w > 0 for w in page.eval_on_selector_all("#probes img", "els => els.map(e => e.naturalWidth)"))
    # the table lists every fooling probe before any other row
    marks = [c.inner_text() for c in page.locator("#probe-table tbody tr td:last-child").all()]
    assert marks[:fooled] == ["fools"] * fooled and "fools" not in marks[fooled:]
    # the stage's cost line and the run line's "passes by stage" give the same count
    cost = int(re.search(r"(\d+) forward passes", page.locator("#probe-cost").inner_text()).group(1))
    assert re.search(rf"probes {cost:,} (\+ [\d,]+ Grad-CAM )?\(", page.locator("#run-line").inner_text())
    assert page.locator("#background-swap").is_visible()
    if width == 390:
        assert page.evaluate("document.documentElement.scrollWidth") <= 392
    ARTIFACTS.mkdir(exist_ok=True)
    section.screenshot(path=str(ARTIFACTS / f"probes-demo_dormant-{width}.png"))
    assert errors == []
    page.close()


def test_probes_section_on_the_good_demo_says_nothing_fooled_it(browser, reports):
    page, errors = _open(browser, reports["demo"] / "report.html", 1280, unfold=True)
    assert page.locator("#probes #no-fooling").is_visible()
    assert page.locator("#probes .probe-card").count() == 0
    # its background fragility is shown as such: no shortcut, fragile cards with their before -> after pairs
    assert page.locator("#property-fragility").is_visible() and page.locator("#property-shortcuts").count() == 0
    cards = page.locator("#properties .property-card")
    assert cards.count() > 0 and all(c.get_attribute("class").split()[-1] == "fragile" for c in cards.all())
    assert errors == []
    page.close()


@pytest.mark.parametrize("width", [1280, 390])
def test_properties_section_on_the_cast_demo_shows_the_shortcut_with_its_pictures(browser, reports, width):
    summary = json.loads((reports["demo_cast"] / "summary.json").read_text())
    rows = [r for r in summary["probes"]["properties"]["rows"] if r["verdict"] != "none"]  # weak data rows are summary.json's only
    shortcuts = [r for r in rows if r["verdict"] == "shortcut"]
    page, errors = _open(browser, reports["demo_cast"] / "report.html", width, unfold=True)
    section = page.locator("#properties")
    assert section.is_visible() and "Cues without a place" in section.inner_text()
    assert page.locator("#property-shortcuts li").count() == len(shortcuts) > 0
    cards = page.locator("#properties .property-card")
    first = cards.first
    assert "shortcut" in first.get_attribute("class") and first.get_attribute("data-label") == "circle"
    # each card's pairs: the unedited image and the edited one, both decoded, the answer after the edit in the caption
    pairs = first.locator(".pair")
    assert 0 < pairs.count() <= 4 and first.locator(".pair img").count() == 2 * pairs.count()
    assert all(re.search(r"→ circle [01]\.\d\d$", c) for c in first.locator(".pair figcaption").all_inner_texts())
    assert all(w > 0 for w in page.eval_on_selector_all("#properties img", "els => els.map(e => e.naturalWidth)"))
    # the table: shortcuts first, every row that says something
    verdicts = [c.inner_text() for c in page.locator("#property-table tbody tr td:nth-child(3)").all()]
    assert verdicts[:len(shortcuts)] == ["shortcut"] * len(shortcuts) and "shortcut" not in verdicts[len(shortcuts):]
    assert len(verdicts) == len(rows)
    cost = int(re.search(r"(\d+) forward passes", page.locator("#property-cost").inner_text()).group(1))
    assert re.search(rf"properties {cost:,} (\+ [\d,]+ Grad-CAM )?\(", page.locator("#run-line").inner_text())
    if width == 390:
        assert page.evaluate("document.documentElement.scrollWidth") <= 392
    ARTIFACTS.mkdir(exist_ok=True)
    section.screenshot(path=str(ARTIFACTS / f"properties-demo_cast-{width}.png"))
    assert errors == []
    page.close()


FIRST_SCREEN = 900  # px: the viewport's height at 1280 px
HEIGHTS = {"FIT TO DEPLOY": 6000, "NOT FIT": 8000, "INCONCLUSIVE": 8000}  # px at 1280 wide, the page as it opens (DESIGN §17)


@pytest.mark.parametrize("name", ["demo_shortcut", "demo_dormant", "demo_cast", "demo_source"])
def test_the_first_findings_title_and_first_evidence_image_lie_on_the_first_screen(browser, reports, name):
    summary = json.loads((reports[name] / "summary.json").read_text())
    page, errors = _open(browser, reports[name] / "report.html", 1280)
    first = summary["findings"][0]
    card = page.locator(".finding").first
    assert card.get_attribute("data-id") == first["id"] and first["severity"] == "blocker"
    title, image = card.locator("h3"), card.locator(".ev img").first
    for box in (title.bounding_box(), image.bounding_box()):
        assert box["y"] >= 0 and box["y"] + box["height"] <= FIRST_SCREEN, box
    assert first["title"] in title.inner_text() and first["action"] in card.locator(".action").inner_text()
    assert page.evaluate("(img) => img.complete && img.naturalWidth > 0", image.element_handle())
    # every caption carries the model's answer with its confidence (or, for a crop, what the hot spot holds)
    for e, caption in zip(first["evidence"], card.locator(".ev figcaption").all_inner_texts()):
        assert caption == e["caption"]
    if name == "demo_dormant":  # the logo before → after, each pair two images
        assert card.locator(".ev figure.before_after").count() == 4 and card.locator(".ev figure.before_after img").count() == 8
    if name == "demo_cast":  # a circle's warm background on its heatmap, then backgrounds edited before → after
        assert [e["view"] for e in first["evidence"]] == ["heat"] + ["before_after"] * (len(first["evidence"]) - 1)
        pairs = card.locator(".ev figure.before_after")
        assert pairs.count() == len(first["evidence"]) - 1 >= 2 and card.locator(".ev figure.before_after img").count() == 2 * pairs.count()
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"first-screen-{name}.png"))
    assert errors == []
    page.close()


OPEN = {"demo": {"probes"}, "demo_shortcut": {"strategies", "gallery"}, "demo_dormant": {"probes"},
        "demo_cast": {"probes"}, "demo_source": {"probes"}}  # the sections holding a blocker's or a warning's evidence


@pytest.mark.parametrize("name", BUNDLED)
def test_every_bundled_configs_page_is_short(browser, reports, name):
    """NOT FIT pages at most 8,000 px and FIT pages at most 6,000 px at 1280 px wide, sections as they open (DESIGN §17)."""
    summary = json.loads((reports[name] / "summary.json").read_text())
    page, errors = _open(browser, reports[name] / "report.html", 1280)
    height = page.evaluate("document.documentElement.scrollHeight")
    assert height <= HEIGHTS[summary["verdict"]], (name, summary["verdict"], height)
    assert errors == []
    page.close()


@pytest.mark.parametrize("name", DEMOS)
def test_page_height_sections_fold_and_open_and_images_keep_their_aspect(browser, reports, name):
    summary = json.loads((reports[name] / "summary.json").read_text())
    page, errors = _open(browser, reports[name] / "report.html", 1280)
    assert page.evaluate("document.documentElement.scrollHeight") <= HEIGHTS[summary["verdict"]]
    # every section is a <details>; only those holding a blocker's or warning's evidence are open
    sections = page.eval_on_selector_all("main > details.section", "els => els.map(e => [e.id, e.open])")
    acting = [f for f in summary["findings"] if f["severity"] != "note"]
    assert {s for s, is_open in sections if is_open} == OPEN[name]
    assert page.locator(".finding").count() == len(acting)
    for sid, is_open in sections:  # opening a folded section shows its content
        if not is_open:
            page.locator(f"#{sid} > summary").click()
            assert page.evaluate(f"document.getElementById('{sid}').open")
            assert page.locator(f"#{sid} > :not(summary)").first.is_visible()
    # no displayed image differs from its source's aspect by more than 2%
    ratios = page.evaluate("""() => [...document.images].filter(i => i.naturalWidth && i.clientWidth && i.clientHeight)
        .map(i => [i.naturalWidth / i.naturalHeight, i.clientWidth / i.clientHeight, i.alt])""")
    assert ratios and all(abs(src / shown - 1) <= 0.02 for src, shown, _ in ratios), [r for r in ratios if abs(r[0] / r[1] - 1) > 0.02][:3]
    assert errors == []
    page.close()


@pytest.mark.parametrize("name", DEMOS)
def test_no_text_fault_in_the_page(browser, reports, name):
    """No "nan", "None" or "-0.000" anywhere (every section open); counts are integers; the banner counts
    evaluated and not-evaluated rules apart; the check that was not evaluated shows no result; terms are glossed."""
    summary = json.loads((reports[name] / "summary.json").read_text())
    page, errors = _open(browser, reports[name] / "report.html", 1280, unfold=True)
    text = page.inner_text("body")
    assert not re.search(r"\bnan\b", text, re.I) and "None" not in text and not re.search(r"-0\.0+\b(?!\d)", text)
    for count in ("confirmed_shortcuts", "probes_fooled"):
        assert not re.search(count + r"\s+\d+\.\d", text), count
    idle = sum(r["status"] == "not evaluated" for r in summary["gate"])
    evaluated = len(summary["gate"]) - idle
    passed = sum(r["status"] == "pass" for r in summary["gate"])
    banner = page.locator("#rule-counts").inner_text()
    assert banner.startswith(f"{passed} of {evaluated} rules pass" + (f" ({idle} not evaluated)" if idle else ""))
    assert "Every gate rule passed" not in text
    confirmation = next(c for c in summary["trust"]["checks"] if c["name"] == "heatmap_confirmation")
    if confirmation["status"] == "not evaluated":
        assert "not evaluated\nheatmap and behaviour agree" in page.locator("#need-object").inner_text()
    terms = page.eval_on_selector_all("dfn", "els => els.map(e => [e.textContent, e.title])")
    assert {t for t, gloss in terms if gloss} >= {"Focus score", "pointing game", "strategies", "SpRAy", "hot spot", "consistency",
                                                 "flatness", "Cohen's κ", "Wilson"}
    assert "/" not in page.locator("#run-line").inner_text().split(" · ")[0]  # the model file's name, not an absolute path
    assert errors == []
    page.close()
