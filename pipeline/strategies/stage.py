"""The strategies stage of ``run.audit`` (DESIGN §10): per label, atlas -> strategies -> hot spots ->
causal tests -> aggregates. The clustering and the pixel rules are :mod:`pipeline.strategies.analysis`; the
forward passes go through a :class:`Classifier` (the compiled forward path in a real run, any
NumPy function in tests), so this module imports no TensorFlow.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, replace
from typing import TYPE_CHECKING, Callable, Iterator, Mapping, Sequence

import numpy as np

from pipeline.strategies import hotspots
from pipeline.strategies import analysis as st
from pipeline.evidence import effects
from pipeline.numbers import fixed
from pipeline.config import StrategiesConfig
from pipeline.evidence.interventions import seeded_subset
from pipeline.evidence.sequential import Schedule, effect_reachable, effect_upper, schedule
from pipeline.explain.explained import Classifier, Evidence

if TYPE_CHECKING:
    from pipeline.config import AuditConfig
    from pipeline.console import Progress


Rect = tuple[int, int, int, int]  # pixels (c0, r0, c1, r1), half-open


@dataclass(frozen=True)
class Tests:
    """Mask and transplant test results of one hot spot (DESIGN §10)."""

    n_tested: int
    hotspot_accuracy: float
    control_accuracy: float
    dependence: effects.Effect
    confidence_drop: float
    n_recipients: int
    transplant_flip: float
    control_flip: float
    transplant: effects.Effect
    dependence_upper: float = 1.0  # honest upper bounds of the two effects (DESIGN §18: "not confirmed" below min_effect)
    transplant_upper: float = 1.0
    n_max: int = 0  # the samples and recipients the tests could have run on (n < n_max: stopped when decided)
    n_recipients_max: int = 0
    unprovable: bool = False  # neither test can be confirmed by its maximum: each upper bound below min_effect, or futile (DESIGN §18)


@dataclass(frozen=True)
class Strategy:
    label: str
    id: int
    rows: np.ndarray  # member rows
    share: float  # of the label's explained samples
    accuracy: float
    mean_focus_score: float
    flag_mix: dict[str, int]  # flag -> members with it
    mean_map: np.ndarray  # (h, w) normalised
    exemplars: tuple[int, ...]  # rows nearest the mean map
    hot_spot: st.HotSpot | None
    tests: Tests | None = None
    not_tested: str = ""  # why the hot spot was not tested ("" when tested or when there is none)
    confirmed: bool = False
    watched_unused: bool = False  # tested, and both effects' intervals hold 0 below min_effect (DESIGN §12)
    content: hotspots.HotSpotContent | None = None  # what the hot spot holds (DESIGN §12); None without images
    crops: tuple[np.ndarray, ...] = ()  # the hot spot's pixels in up to 4 exemplars, uint8 (h, w, 3), for the report


@dataclass(frozen=True)
class LabelStrategies:
    label: str
    atlas: st.Atlas
    strategies: tuple[Strategy, ...]
    clustered: bool
    stability: float
    eigenvalues: tuple[float, ...]
    note: str = ""  # e.g. "atlas only (n < min_test_samples)"


@dataclass(frozen=True)
class StrategiesResult:
    labels: tuple[LabelStrategies, ...]
    strategy: np.ndarray  # (N,) strategy id of each row within its label, -1 = not clustered
    overall: dict[str, float]
    per_label: dict[str, dict[str, float]]
    grid: tuple[int, int]
    settings: StrategiesConfig = field(default_factory=StrategiesConfig)

    def confirmed(self) -> list[Strategy]:
        return [s for lab in self.labels for s in lab.strategies if s.confirmed]


def _coverages(ev: Evidence, rows: np.ndarray, label: int, grid: tuple[int, int]) -> np.ndarray:
    out = np.empty((len(rows), *grid))
    for i, row in enumerate(rows):
        out[i] = st.coverage(ev.region_of(int(row), label), grid)
    return out


def _label_strategies(cfg: StrategiesConfig, ev: Evidence, label: int, seed: int) -> tuple[LabelStrategies, np.ndarray, np.ndarray] | None:
    """(clustered label, its rows, their strategy ids) or None when nothing was explained for it."""
    rows = np.flatnonzero(ev.explained == label)
    maps, keep = st.normalised_maps(ev.cams[rows])
    rows = rows[keep]
    if rows.size == 0:
        return None
    cov = _coverages(ev, rows, label, maps.shape[1:])
    name = ev.labels[label]
    atlas = st.atlas(maps, cov)
    if rows.size < cfg.min_test_samples:
        note = f"atlas only: {rows.size} explained samples, fewer than strategies.min_test_samples ({cfg.min_test_samples})"
        return LabelStrategies(name, atlas, (), False, math.nan, (), note), rows, np.full(rows.size, -1)
    flat = maps.reshape(len(maps), -1)
    clustered = rows.size >= cfg.min_samples
    if clustered:
        ids, eigen = st.spectral_partition(flat, neighbours=cfg.neighbours, max_strategies=cfg.max_strategies, seed=seed)
        stab = st.stability(flat, ids, neighbours=cfg.neighbours, max_strategies=cfg.max_strategies, seed=seed) if ids.max() > 0 else 1.0
        note = ""
    else:
        ids, eigen, stab = np.zeros(rows.size, np.int64), np.zeros(0), math.nan
        note = f"one strategy: {rows.size} explained samples, fewer than strategies.min_samples ({cfg.min_samples})"
    found = []
    for sid in range(int(ids.max()) + 1):
        member = ids == sid
        r = rows[member]
        found.append(Strategy(
            label=name, id=sid, rows=r, share=float(member.mean()), accuracy=float(ev.correct[r].mean()),
            mean_focus_score=float(np.nanmean(ev.focus[r])) if np.isfinite(ev.focus[r]).any() else math.nan,
            flag_mix={str(f): int(c) for f, c in zip(*np.unique(np.asarray(ev.flags[r], dtype=str), return_counts=True))},
            mean_map=maps[member].mean(axis=0), exemplars=tuple(int(r[i]) for i in st.exemplars(maps[member], 4)),
            hot_spot=st.hot_spot(maps[member], cov[member], cfg.hotspot_threshold),
        ))
    return LabelStrategies(name, atlas, tuple(found), clustered, stab, tuple(float(v) for v in eigen), note), rows, ids


@dataclass(frozen=True)
class _Plan:
    """One hot spot's test units: tested samples with their control rectangles; recipients with donor
    and control rectangle."""

    key: tuple[int, int]  # (label, strategy id)
    hot: Rect
    regions: Mapping[int, np.ndarray]  # tested rows' (= donors') objects: never blanked or moved
    tested: np.ndarray
    controls: tuple[tuple[Rect, ...], ...]
    recipients: np.ndarray
    donors: np.ndarray
    donor_controls: tuple[Rect, ...]


def _plan(cfg: StrategiesConfig, ev: Evidence, label: int, s: Strategy, seed: int) -> _Plan | str:
    """The test units of a strategy's hot spot, or the reason it is not tested."""
    if s.hot_spot is None:
        return "no off-object heat"
    if not s.hot_spot.off_object_share >= cfg.min_off_object:
        return (f"not tested: off-object share {s.hot_spot.off_object_share:.2f} is below strategies.min_off_object "
                f"({cfg.min_off_object:g}); the heat there follows the objects")
    hot = st.rect_pixels(s.hot_spot.rect, ev.input_size)
    regions = {int(r): ev.region_of(int(r), label) for r in s.rows[ev.correct[s.rows]]}
    free = [r for r, reg in regions.items() if st.overlap_share(reg, hot) <= cfg.max_object_overlap]
    if len(free) < cfg.min_test_samples:
        return (f"not tested: too few samples whose object leaves it free ({len(free)} correct samples with at most "
                f"{cfg.max_object_overlap:.0%} of the hot spot on their object; strategies.min_test_samples is {cfg.min_test_samples})")
    tested = seeded_subset(free, cfg.test_samples, seed)
    rng = np.random.default_rng(seed)
    controls = tuple(tuple(st.control_positions(rng, hot, regions[int(r)], count=cfg.controls, max_overlap=cfg.max_object_overlap,
                                                avoid=hot)) for r in tested)
    others = [r for r in np.flatnonzero(ev.explained >= 0) if label not in ev.labels_of[r] and ev.predicted[r] != label]
    recipients = seeded_subset(others, cfg.test_samples, seed + 1)
    donors = tested[np.arange(recipients.size) % tested.size]
    donor_controls = tuple(st.control_positions(rng, hot, regions[int(d)], count=1, max_overlap=cfg.max_object_overlap, avoid=hot)[0]
                           for d in donors)
    return _Plan((label, s.id), hot, {int(r): regions[int(r)] for r in tested}, tested, controls, recipients, donors, donor_controls)


def _jobs(plan: _Plan, fill: str) -> Iterator[tuple[str, int, Callable[[Mapping[int, np.ndarray]], np.ndarray]]]:
    """(kind, unit index, image builder) for every edited image of one plan, in a fixed order."""
    reg = plan.regions
    for i, row in enumerate(plan.tested):
        yield "hot", i, lambda im, row=int(row): st.blank(im[row], plan.hot, fill, reg[row])
        for k, rect in enumerate(plan.controls[i]):
            yield f"control{k}", i, lambda im, row=int(row), rect=rect: st.blank(im[row], rect, fill, reg[row])
    for i, (row, donor) in enumerate(zip(plan.recipients, plan.donors)):
        yield "paste", i, lambda im, row=int(row), donor=int(donor): st.paste(im[row], im[donor], plan.hot, reg[donor])
        rect = plan.donor_controls[i]
        yield "paste_control", i, lambda im, row=int(row), donor=int(donor), rect=rect: st.paste(im[row], im[donor], rect, reg[donor])


def _run_forward(plans: Sequence[_Plan], model: Classifier, fill: str, units: Sequence[tuple[np.ndarray, np.ndarray]] | None = None,
                 into: list[dict[str, dict[int, np.ndarray]]] | None = None) -> list[dict[str, dict[int, np.ndarray]]]:
    """Every plan's edited images through the model in shared batches (``units``: per plan the tested and recipient unit
    indices to run, default all), into ``into``: per plan, per kind, the (unit -> (is_label, probability of the unit's
    explained class)) results."""
    units = units if units is not None else [(np.arange(p.tested.size), np.arange(p.recipients.size)) for p in plans]
    wanted = [({int(i) for i in t}, {int(i) for i in r}) for t, r in units]
    rows = sorted({int(p.tested[i]) for p, (t, _) in zip(plans, wanted) for i in t} |
                  {int(x) for p, (_, r) in zip(plans, wanted) for i in r for x in (p.recipients[i], p.donors[i])})
    images = model.images(rows)
    jobs = [(pi, kind, unit, build) for pi, p in enumerate(plans) for kind, unit, build in _jobs(p, fill)
            if unit in wanted[pi][0 if kind == "hot" or kind.startswith("control") else 1]]
    out = into if into is not None else [{} for _ in plans]
    for start in range(0, len(jobs), model.batch_size):
        chunk = jobs[start:start + model.batch_size]
        probs = model.probabilities(np.stack([build(images) for _, _, _, build in chunk]))
        for (pi, kind, unit, _), p in zip(chunk, probs):
            plan = plans[pi]
            row = int(plan.tested[unit]) if kind == "hot" or kind.startswith("control") else int(plan.recipients[unit])
            hit = bool(model.is_label(p[None], plan.key[0])[0])
            out[pi].setdefault(kind, {})[unit] = np.array([hit, p[model.target_class[row]]])
    return out


def _forward_looks(cfg: StrategiesConfig, plans: Sequence[_Plan], model: Classifier, fill: str, ev: Evidence, *, seed: int,
                   sequential: bool, tick: Callable[[int], None]) -> list[Tests]:
    """Every plan's causal tests look by look (DESIGN §18): a hot spot stops at the first look where it is surely confirmed
    (a lower bound reaches ``min_effect``) or surely not (both honest upper bounds lie below it)."""
    orders = [(_unit_order(p.tested.size, _seed(seed, *p.key) + 5), _unit_order(p.recipients.size, _seed(seed, *p.key) + 6))
              for p in plans]
    plan_of = [schedule(max(p.tested.size, p.recipients.size), cfg.interval, sequential) for p in plans]
    got: list[dict[str, dict[int, np.ndarray]]] = [{} for _ in plans]
    outcome: dict[int, Tests] = {}
    active, done = list(range(len(plans))), [0] * len(plans)
    for k in range(max((len(x.looks) for x in plan_of), default=0)):
        if not active:
            break
        units = []
        for pi in active:
            n = plan_of[pi].looks[min(k, len(plan_of[pi].looks) - 1)]
            t, r = orders[pi]
            units.append((t[done[pi]:n], r[done[pi]:n]))
        _run_forward([plans[pi] for pi in active], model, fill, units, [got[pi] for pi in active])
        still = []
        for pi in active:
            sched = plan_of[pi]
            n = sched.looks[min(k, len(sched.looks) - 1)]
            t, r = orders[pi]
            tests = _tests(cfg, plans[pi], got[pi], ev, _seed(seed, *plans[pi].key), np.sort(t[:n]), np.sort(r[:n]), sched.level_at(n),
                           sched)
            if k >= len(sched.looks) - 1 or _decided(cfg, tests):
                outcome[pi] = replace(tests, n_max=plans[pi].tested.size, n_recipients_max=plans[pi].recipients.size)
                tick(1)
            else:
                still.append(pi)
            done[pi] = n
        active = still
    return [outcome[pi] for pi in range(len(plans))]


def _unit_order(n: int, seed: int) -> np.ndarray:
    """The order the looks take a plan's units in: a seeded permutation (every prefix a random subset)."""
    return np.random.default_rng(seed).permutation(n).astype(np.int64)


def _decided(cfg: StrategiesConfig, tests: Tests) -> bool:
    """Surely confirmed, or surely not: neither test can be (:attr:`Tests.unprovable`)."""
    return _confirmed(cfg, tests) or tests.unprovable


def _tests(cfg: StrategiesConfig, plan: _Plan, got: Mapping[str, Mapping[int, np.ndarray]], ev: Evidence, seed: int,
           tested: np.ndarray | None = None, recipients: np.ndarray | None = None, level: float | None = None,
           sched: Schedule | None = None) -> Tests:
    """The two causal tests over the ``tested`` and ``recipients`` units (default all) at the look's ``level`` (default
    strategies.interval, the level of the honest upper bounds too); ``sched`` the looks' plan (the futility rule's last
    look; None: a single look)."""
    tested = np.arange(plan.tested.size) if tested is None else tested
    recipients = np.arange(plan.recipients.size) if recipients is None else recipients
    honest = cfg.interval
    level = honest if level is None else level
    n, m = tested.size, recipients.size
    hot = np.array([got["hot"][i] for i in tested]).reshape(n, 2)
    ctrl = np.array([[got[f"control{k}"][i][0] for k in range(cfg.controls)] for i in tested]).reshape(n, cfg.controls)
    flip = np.array([got["paste"][i][0] for i in recipients]) if m else np.zeros(0)
    ctrl_flip = np.array([got["paste_control"][i][0] for i in recipients]) if m else np.zeros(0)
    mean = lambda x: float(np.mean(x)) if np.size(x) else math.nan  # noqa: E731
    sched = sched or schedule(max(n, m, 1), honest, sequential=False)
    d_dep, d_trans = ctrl.mean(axis=1) - hot[:, 0], flip - ctrl_flip
    up_dep = effect_upper(d_dep, honest) if n else 1.0
    up_trans = effect_upper(d_trans, honest) if m else 1.0

    def settled(d: np.ndarray, upper: float, maximum: int) -> bool:
        return upper < cfg.min_effect or not effect_reachable(d, maximum, cfg.min_effect, sched)

    return Tests(
        n_tested=n, hotspot_accuracy=mean(hot[:, 0]), control_accuracy=mean(ctrl),
        dependence=effects.paired_difference(ctrl, hot[:, 0], level=level, seed=seed),
        confidence_drop=mean(ev.confidence[plan.tested[tested]] - hot[:, 1]),
        n_recipients=m, transplant_flip=mean(flip), control_flip=mean(ctrl_flip),
        transplant=effects.paired_difference(flip, ctrl_flip, level=level, seed=seed + 1),
        dependence_upper=up_dep, transplant_upper=up_trans,
        unprovable=settled(d_dep, up_dep, plan.tested.size) and settled(d_trans, up_trans, plan.recipients.size),
    )


DECODE_CHUNK = 256  # images decoded at a time for the hot spots' content (bounded memory at large inputs)


def _content(cfg: StrategiesConfig, ev: Evidence, label: int, s: Strategy, images: Mapping[int, np.ndarray],
             members: np.ndarray, seed: int) -> tuple[hotspots.HotSpotContent | None, tuple[np.ndarray, ...]]:
    """The hot spot's content over ``members`` (their control positions drawn by the mask test's rule), and
    its crops in the strategy's exemplars."""
    hot = st.rect_pixels(s.hot_spot.rect, ev.input_size)  # type: ignore[union-attr]
    rng = np.random.default_rng(seed)
    patches, controls = [], []
    for r in (int(r) for r in members if int(r) in images):
        ctrl = st.control_positions(rng, hot, ev.region_of(r, label), count=1, max_overlap=cfg.max_object_overlap, avoid=hot)[0]
        patches.append(hotspots.crop(images[r], hot))
        controls.append(hotspots.crop(images[r], ctrl))
    content = hotspots.describe(np.array(patches), np.array(controls), hot, ev.input_size) if patches else None
    return content, tuple(hotspots.crop(images[r], hot) for r in s.exemplars if r in images)


def _with_content(cfg: StrategiesConfig, ev: Evidence, found: Sequence[tuple[int, Strategy]], model: Classifier,
                  seed: int) -> dict[tuple[int, int], Strategy]:
    """Every hot spot's content (DESIGN §12) over a seeded subset of ``test_samples`` members, the images
    decoded in chunks shared between strategies."""
    out: dict[tuple[int, int], Strategy] = {}
    plans = [(label, s, seeded_subset(s.rows, cfg.test_samples, _seed(seed, label, s.id) + 2)) for label, s in found if s.hot_spot is not None]
    while plans:
        chunk, rows = [], set()
        while plans and (not chunk or len(rows) + plans[0][2].size + len(plans[0][1].exemplars) <= DECODE_CHUNK):
            label, s, members = plans.pop(0)
            chunk.append((label, s, members))
            rows |= {int(r) for r in members} | set(s.exemplars)
        images = model.images(sorted(rows))
        for label, s, members in chunk:
            content, crops = _content(cfg, ev, label, s, images, members, _seed(seed, label, s.id) + 2)
            out[(label, s.id)] = replace(s, content=content, crops=crops)
    return out


def is_watched_unused(cfg: StrategiesConfig, tests: Tests | None) -> bool:
    """Tested, and neither edit moved the model: both intervals contain 0 and stay below ``min_effect``."""
    if tests is None:
        return False
    effects = (tests.dependence, tests.transplant)
    defined = [e for e in effects if not math.isnan(e.low)]
    return bool(defined) and all(e.low <= 0 <= e.high and e.high < cfg.min_effect for e in defined)


def _aggregates(found: Sequence[Strategy]) -> dict[str, float]:
    tested = [s.tests for s in found if s.tests is not None]
    dep = [t.dependence.value for t in tested if not math.isnan(t.dependence.value)]
    eff = [t.transplant.value for t in tested if not math.isnan(t.transplant.value)]
    return {"confirmed_shortcuts": float(sum(s.confirmed for s in found)),
            "max_hotspot_dependence": max(dep) if dep else math.nan, "max_transplant_effect": max(eff) if eff else math.nan}


def _confirmed(cfg: StrategiesConfig, tests: Tests) -> bool:
    return any(not math.isnan(e.low) and e.low >= cfg.min_effect for e in (tests.dependence, tests.transplant))


def run_strategies(cfg: StrategiesConfig, ev: Evidence, model: Classifier | None, *, fill: str, seed: int, sequential: bool = False,
                   start: Callable[[int, str], None] | None = None, tick: Callable[[int], None] | None = None) -> StrategiesResult:
    """Atlas and strategies for every label, their hot spots tested through ``model`` (None: no
    tests, e.g. ``validate``). Labels are processed in the label space's order."""
    per_label, assigned = [], np.full(len(ev.explained), -1, np.int64)
    for label in range(len(ev.labels)):
        got = _label_strategies(cfg, ev, label, _seed(seed, label))
        if got is not None:
            per_label.append((label, *got))
            assigned[got[1]] = got[2]
    plans: list[_Plan] = []
    outcome: dict[tuple[int, int], Tests | str] = {}
    for label, lab, _, _ in per_label:
        for s in lab.strategies:
            p = _plan(cfg, ev, label, s, _seed(seed, label, s.id)) if model is not None else "no model to test with"
            if isinstance(p, _Plan):
                plans.append(p)
            else:
                outcome[(label, s.id)] = p
    (start or (lambda total, unit: None))(len(plans), "hot spots")
    results = _forward_looks(cfg, plans, model, fill, ev, seed=seed, sequential=sequential, tick=tick or (lambda n: None)) \
        if plans and model is not None else []
    for p, tests in zip(plans, results):
        outcome[p.key] = tests
    tested = [(label, _with_tests(s, outcome.get((label, s.id), ""), cfg)) for label, lab, _, _ in per_label for s in lab.strategies]
    described = _with_content(cfg, ev, tested, model, seed) if model is not None else {}
    labels = []
    for label, lab, _, _ in per_label:
        done = [described.get((label, s.id), s) for lab_, s in tested if lab_ == label]
        done.sort(key=lambda s: (not s.confirmed, s.id))
        labels.append(LabelStrategies(lab.label, lab.atlas, tuple(done), lab.clustered, lab.stability, lab.eigenvalues, lab.note))
    all_found = [s for lab in labels for s in lab.strategies]
    per = {name: _aggregates([s for s in all_found if s.label == name]) for name in ev.labels}
    grid = tuple(ev.cams.shape[1:])
    return StrategiesResult(tuple(labels), assigned, _aggregates(all_found), per, grid, cfg)  # type: ignore[arg-type]


def _seed(seed: int, label: int, strategy: int = 0) -> int:
    """The seed of one label's clustering (strategy 0) or of one strategy's tests: fixed per (label, strategy)."""
    return seed + 7919 * label + 101 * strategy


def _with_tests(s: Strategy, outcome: Tests | str, cfg: StrategiesConfig) -> Strategy:
    """The strategy with its tests' outcome: the Tests, or the reason its hot spot was not tested."""
    tests = outcome if isinstance(outcome, Tests) else None
    confirmed = tests is not None and _confirmed(cfg, tests)
    return replace(s, tests=tests, not_tested=str(outcome) if tests is None and s.hot_spot is not None else "", confirmed=confirmed,
                   watched_unused=not confirmed and is_watched_unused(cfg, tests))


CSV_COLUMNS = ("label", "strategy", "n_samples", "share", "accuracy", "mean_focus_score", "stability",
               "hotspot_x0", "hotspot_y0", "hotspot_x1", "hotspot_y1", "hotspot_share", "concentration",
               "off_object_share", "hotspot_accuracy", "control_accuracy", "hotspot_dependence",
               "hotspot_dependence_lo", "hotspot_dependence_hi", "transplant_flip", "control_flip",
               "transplant_effect", "transplant_effect_lo", "transplant_effect_hi", "confirmed",
               "hotspot_consistency", "hotspot_consistency_baseline", "hotspot_flatness", "hotspot_kind")


"""strategies.csv's columns (DESIGN §10, §12); a value that does not apply is None (written empty)."""


def record(lab: LabelStrategies, s: Strategy, interval: float) -> dict[str, object]:
    """One strategy as a flat record: every CSV column, plus the untested reason and the test sizes."""
    h, t = s.hot_spot, s.tests
    rect = h.rect if h is not None else (None,) * 4
    out: dict[str, object] = {
        "label": s.label, "strategy": s.id, "n_samples": int(s.rows.size), "share": s.share, "accuracy": s.accuracy,
        "mean_focus_score": s.mean_focus_score, "stability": lab.stability if lab.clustered else None,
        **dict(zip(("hotspot_x0", "hotspot_y0", "hotspot_x1", "hotspot_y1"), rect)),
        "hotspot_share": h.share if h else None, "concentration": h.concentration if h else None,
        "off_object_share": h.off_object_share if h else None,
        "hotspot_accuracy": t.hotspot_accuracy if t else None, "control_accuracy": t.control_accuracy if t else None,
        "hotspot_dependence": t.dependence.value if t else None, "hotspot_dependence_lo": t.dependence.low if t else None,
        "hotspot_dependence_hi": t.dependence.high if t else None, "transplant_flip": t.transplant_flip if t else None,
        "control_flip": t.control_flip if t else None, "transplant_effect": t.transplant.value if t else None,
        "transplant_effect_lo": t.transplant.low if t else None, "transplant_effect_hi": t.transplant.high if t else None,
        "confirmed": s.confirmed,
        **_content_columns(s.content),
    }
    out.update({"flag_mix": dict(s.flag_mix), "place": st.place_name(h.rect) if h else None, "not_tested": s.not_tested or None,
                "n_tested": t.n_tested if t else 0, "n_recipients": t.n_recipients if t else 0,
                "n_tested_max": t.n_max if t else 0, "n_recipients_max": t.n_recipients_max if t else 0,
                "confidence_drop": t.confidence_drop if t else None, "exemplar_rows": list(s.exemplars),
                "watched_unused": s.watched_unused, "sentence": sentence(s, interval)})
    c = s.content
    if c is not None:
        out.update({"hotspot_colour": c.colour or None, "hotspot_rgb": list(c.rgb), "hotspot_members": c.n,
                    "hotspot_matches": c.matches, "hotspot_same_colour": c.same_colour, "hotspot_patch": list(c.patch)})
    return out


def _content_columns(c: hotspots.HotSpotContent | None) -> dict[str, object]:
    if c is None:
        return dict.fromkeys(("hotspot_consistency", "hotspot_consistency_baseline", "hotspot_flatness", "hotspot_kind"))
    return {"hotspot_consistency": c.consistency, "hotspot_consistency_baseline": c.consistency_baseline,
            "hotspot_flatness": c.flatness, "hotspot_kind": c.kind}


def section(result: StrategiesResult) -> dict[str, object]:
    """summary.json's ``strategies``: settings, aggregates and, per label, atlas summary and strategies."""
    return {
        "settings": asdict(result.settings), "grid": list(result.grid),
        "aggregates": {"overall": result.overall, "per_class": result.per_label},
        "labels": [{
            "label": lab.label, "n_explained": lab.atlas.n, "clustered": lab.clustered, "stability": lab.stability,
            "eigenvalues": list(lab.eigenvalues), "note": lab.note,
            "atlas": atlas_record(lab, result.settings.hotspot_threshold),
            "strategies": [record(lab, s, result.settings.interval) for s in lab.strategies],
        } for lab in result.labels],
    }


def atlas_record(lab: LabelStrategies, threshold: float) -> dict[str, object]:
    """A label's atlas as summary.json holds it (maps rounded to 6 decimals) with its strongest off-object place, found on
    the rounded maps (what a reader of the summary sees): ``{"rect": [x0, y0, x1, y1], "share": heat share}`` or None."""
    mean_map, coverage = np.round(lab.atlas.mean_map, 6), np.round(lab.atlas.mean_coverage, 6)
    place = st.off_object_place(np.asarray(mean_map, float), np.asarray(coverage, float), threshold)
    return {"on_object_share": lab.atlas.on_object, "object_area_share": lab.atlas.object_area,
            "mean_map": mean_map.tolist(), "mean_coverage": coverage.tolist(),
            "off_object": None if place is None else {"rect": list(place[0]), "share": place[1]}}


def sentence(s: Strategy, interval: float) -> str:
    """The strategy's finding in one plain paragraph (report, junit)."""
    h, t = s.hot_spot, s.tests
    head = f"For '{s.label}', {s.share:.0%} of the samples (strategy {s.id}: {s.rows.size} samples, accuracy {s.accuracy:.2f})"
    if h is None:
        return f"{head} put no heat off their objects."
    place = st.place_name(h.rect)
    if t is None and s.not_tested.startswith("not tested: off-object share"):
        return (f"{head} look at their objects: of the heat in their densest region (the {place}, {h.share:.0%} of it) only "
                f"{h.off_object_share:.0%} lies outside the objects, below strategies.min_off_object, so there is no off-object "
                "hot spot to test.")
    where = (f"{head} put {h.share:.0%} of their heat in the {place} ({h.concentration:.1f}× its area's share), "
             f"{h.off_object_share:.0%} of it outside the objects" + (f", where {s.content.description()}" if s.content else ""))
    if t is None:
        return f"{where}; {s.not_tested or 'not tested'}."
    level = f"{interval:.0%} interval"
    early = f" (decided at {t.n_tested} of {t.n_max})" if 0 < t.n_tested < t.n_max else ""
    text = (f"{where}. Blank that {place} on {t.n_tested} correct samples{early} whose object leaves it free and '{s.label}' accuracy "
            f"goes from 1.00 to {t.hotspot_accuracy:.2f}, against {t.control_accuracy:.2f} when the same rectangle is blanked elsewhere "
            f"(dependence {_effect_text(t.dependence, level)})")
    if t.n_recipients:
        text += (f"; paste it onto {t.n_recipients} samples of other labels and {t.transplant_flip:.0%} of them turn into "
                 f"'{s.label}', against {t.control_flip:.0%} for a patch from elsewhere in the same image "
                 f"(effect {_effect_text(t.transplant, level)})")
    if s.confirmed:
        return text + ". Confirmed shortcut."
    if s.watched_unused:
        return text + (". Watched, but unused in this data: neither edit changes the predictions (both intervals hold 0). A cue that "
                       "this evaluation set lacks could sit here; the probes place their artifacts here to find out.")
    return text + ". Not confirmed: neither interval's lower bound reaches strategies.min_effect."


def _effect_text(e: effects.Effect, level: str) -> str:
    if math.isnan(e.value):
        return "undefined: no sample to measure it on"
    if math.isnan(e.low) or math.isnan(e.high):
        return f"{fixed(e.value, 2)}, no {level}: too few samples"
    return f"{fixed(e.value, 2)}, {level} {fixed(e.low, 2)} to {fixed(e.high, 2)}"


def strategies_stage(cfg: AuditConfig, ev: "Evidence", model: "Classifier", bar: "Progress | None" = None) -> "StrategiesResult | None":
    """DESIGN §10 on the audit's own maps and regions; the hot spots' causal tests run the compiled forward path, look by
    look (``statistics.sequential``, DESIGN §18)."""
    if not cfg.strategies.enabled:
        return None
    return run_strategies(cfg.strategies, ev, model, fill=cfg.evidence.fill, seed=cfg.seed, sequential=cfg.statistics.sequential,
                          start=bar.start if bar else None, tick=bar.tick if bar else None)
