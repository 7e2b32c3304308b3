"""The probes stage of ``run.audit`` (DESIGN §11): add a cue the evaluation set does not show and
measure what it does. Probe samples -> artifact edits and their controls (one forward pass each, in
shared batches) -> targeted flips with paired intervals -> Grad-CAM of the flipped images (heat on
the artifact) -> background swap -> aggregates. The drawing is :mod:`pipeline.probes.artifacts`; the model is
a :class:`~pipeline.explain.explained.Classifier` (the compiled forward path in a run, NumPy in tests),
so this module imports no TensorFlow.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Iterator, Mapping, Sequence

import numpy as np

from pipeline.probes import artifacts as pr
from pipeline.strategies import analysis as st
from pipeline.evidence import effects
from pipeline.config import ProbesConfig
from pipeline.evidence.interventions import seeded_subset
from pipeline.evidence.sequential import (FOOLS, NOT, OPEN, Schedule, decide, effect_reachable, effect_upper, judge, rate_reachable,
                                          schedule, upper_exact)
from pipeline.explain.scoring import score_region
from pipeline.explain.explained import Classifier, Evidence
from pipeline.records.probes import ProbeRecord

if TYPE_CHECKING:
    from pipeline.config import AuditConfig
    from pipeline.console import Progress
    from pipeline.data.geometry import InputSpec
    from pipeline.strategies.stage import StrategiesResult

SWAP_MAX_REGION = 0.5  # an object covering this share of the input leaves too little background to swap
EXEMPLARS = 4
HEAT_IMAGES = 8  # flipped images per fooling cell whose heat on the artifact is measured (a Grad-CAM pass each)
OFF_OBJECT = 0.25  # a control whose pixels the objects cover at most this share of (on average) is off the object (§17)


@dataclass(frozen=True)
class Exemplar:
    """One flipped probe sample for the report: ``before`` / ``after`` (H, W, 3) uint8 at the input
    size, ``before_cam`` the audit's map of the clean image, ``after_cam`` Grad-CAM for the class it
    flipped into (native (h, w))."""

    row: int
    before: np.ndarray
    after: np.ndarray
    before_cam: np.ndarray
    after_cam: np.ndarray
    after_confidence: float = math.nan  # the model's top probability on the edited image (the class it flipped into)


@dataclass(frozen=True)
class ProbeRow:
    """One (probe, place, class): over the ``n`` probe samples whose labels do not include the class
    (their labels: ``from_labels``), the share classified as it after the edit (``flip``) and after
    the control fill (``control_flip``); ``effect`` their paired difference; ``accuracy`` of every
    probe sample after the edit; ``artifact_heat`` the mean share of the flipped images' heat on the
    artifact (NaN when none flipped)."""

    probe: str
    kind: str
    place: str
    rect: tuple[float, float, float, float]
    label: str
    n: int
    from_labels: tuple[str, ...]
    flip: float
    control_flip: float
    effect: effects.Effect
    accuracy: float
    artifact_heat: float  # NaN where the cell does not fool (not measured)
    n_flipped: int
    fools: bool
    heat_area: float = math.nan  # the share of the image the heat on the artifact is counted over (a uniform map's heat)
    exemplars: tuple[Exemplar, ...] = ()
    n_max: int = 0  # the samples the test could have run on (its maximum; n < n_max: it stopped when decided, DESIGN §18)
    control_low: float = math.nan  # the control's targeted flip: its Wilson interval (statistics.interval, Bonferroni-corrected
    # for the (control, class) cells tested)
    control_high: float = math.nan
    object_overlap: float = math.nan  # the mean share of the control's pixels inside the samples' regions
    reads: bool = False  # the control alone fools (its lower bound reaches min_effect) off the object: a place the model reads

    @property
    def place_key(self) -> tuple[str, str]:
        """(place, class): a read place counts once per class, whichever artifact's control found it."""
        return self.place, self.label


@dataclass(frozen=True)
class Swap:
    """The background swap over ``n`` probe samples: accuracy on a same-label donor's background and
    on another label's, their paired ``gap``, ``flip`` = share of other-background images classified
    as the donor's label; ``per_label`` label -> (n, gap); ``note`` why it did not run ("" when it did)."""

    n: int
    accuracy_same: float
    accuracy_other: float
    gap: effects.Effect
    flip: float
    per_label: Mapping[str, tuple[int, float]]
    note: str = ""
    exemplars: tuple[tuple[int, np.ndarray, np.ndarray], ...] = ()  # (row, image, on another class's background) uint8
    n_max: int = 0  # the pairs it could have run on (n < n_max: it stopped when decided, DESIGN §18)


@dataclass(frozen=True)
class ProbesResult:
    rows: tuple[ProbeRow, ...]  # in (probe, place, class) order
    swap: Swap | None
    n_samples: int
    samples_per_label: Mapping[str, int]
    overall: dict[str, float]
    per_label: dict[str, dict[str, float]]
    passes: Mapping[str, int]  # forward passes (edits, controls, swaps) and Grad-CAM passes
    seconds: float
    settings: ProbesConfig = field(default_factory=ProbesConfig)
    note: str = ""  # why nothing was probed ("" when samples were)

    def fooling(self) -> list[ProbeRow]:
        """The rows that fool the model, largest effect first."""
        return sorted((r for r in self.rows if r.fools), key=lambda r: -r.effect.value)


# --------------------------------------------------------------------------- samples


def probe_samples(ev: Evidence, count: int, seed: int) -> np.ndarray:
    """Seeded, correctly classified scored samples, stratified by label (sorted rows)."""
    return np.sort(probe_order(ev, count, seed))


def probe_order(ev: Evidence, count: int, seed: int) -> np.ndarray:
    """:func:`probe_samples` in the order the looks take them (DESIGN §18): every prefix is stratified by label."""
    return stratified_order(ev, ev.correct, count, seed)


def stratified_by_label(ev: Evidence, eligible: np.ndarray, count: int, seed: int) -> np.ndarray:
    """Seeded ``eligible`` samples stratified by explained label: each label's rows in a seeded order, taken in turn
    until ``count`` (sorted rows)."""
    return np.sort(stratified_order(ev, eligible, count, seed))


def stratified_order(ev: Evidence, eligible: np.ndarray, count: int, seed: int) -> np.ndarray:
    """:func:`stratified_by_label` in the order taken (label by label in turn)."""
    rng = np.random.default_rng(seed)
    pools = [list(rng.permutation(np.flatnonzero(eligible & (ev.explained == label)))) for label in range(len(ev.labels))]
    chosen: list[int] = []
    while len(chosen) < count and any(pools):
        for pool in pools:
            if pool and len(chosen) < count:
                chosen.append(int(pool.pop(0)))
    return np.array(chosen, np.int64)


# --------------------------------------------------------------------------- forward passes


def batched_probabilities(model: Classifier, builders: Sequence[Callable[[], np.ndarray]]) -> np.ndarray:
    """(B, C) probabilities of every built image, through the model in shared batches (built lazily, a batch at a time)."""
    out = [model.probabilities(np.stack([b() for b in builders[start:start + model.batch_size]]))
           for start in range(0, len(builders), model.batch_size)]
    return np.concatenate(out) if out else np.zeros((0, 0))


def label_hits(model: Classifier, probs: np.ndarray, n_labels: int) -> np.ndarray:
    """(B, C) probabilities -> (B, L) bool: classified as each label."""
    return np.stack([model.is_label(probs, c) for c in range(n_labels)], axis=1) if len(probs) else np.zeros((0, n_labels), bool)


def _correct(hits: np.ndarray, rows: np.ndarray, ev: Evidence) -> np.ndarray:
    """Per edited image of ``rows``: still classified as one of the sample's labels."""
    return np.array([any(hits[i, lab] for lab in ev.labels_of[int(r)]) for i, r in enumerate(rows)], bool)


# --------------------------------------------------------------------------- artifact edits


@dataclass
class _Edits:
    """Per placement, per probe sample (in sorted order): (L,) hits after the edit and after its control, filled look by
    look for the placements still undecided; the forward passes run for each."""

    edit: np.ndarray  # (P, n, L) bool
    control: np.ndarray  # (P, n, L) bool
    top: np.ndarray  # (P, n) the top class probability after each edit (the report's captions)
    n_edits: int = 0  # forward passes run for the edits (placements with the same rectangle share one) ...
    n_controls: int = 0  # ... and for the controls (placements with the same footprint share one)

    @classmethod
    def empty(cls, placements: int, n: int, labels: int) -> "_Edits":
        return cls(np.zeros((placements, n, labels), bool), np.zeros((placements, n, labels), bool), np.zeros((placements, n)))


def _run_edits(edits: _Edits, placed: Sequence[pr.Placed], active: Sequence[int], positions: np.ndarray, stack: np.ndarray,
               model: Classifier, fill: str, size: tuple[int, int], n_labels: int) -> None:
    """The ``active`` placements' edits and controls on the probe samples at ``positions`` (into ``stack``, the samples in
    sorted order), into ``edits``: each distinct edit (artifact, rectangle) and each distinct control footprint once, in
    shared batches; placements that coincide (a hot spot centred where a corner probe already sits) share their results."""
    if not active or not positions.size:
        return
    edit_of, controls_of, unique, footprints = {}, {}, {}, {}
    for p in active:
        edit_of[p] = unique.setdefault((id(placed[p].artifact), placed[p].rect), len(unique))
        controls_of[p] = footprints.setdefault(placed[p].footprint(size).tobytes(), len(footprints))
    first = {k: placed[next(p for p in active if edit_of[p] == k)] for k in range(len(unique))}
    masks = {k: np.frombuffer(key, bool).reshape(size) for key, k in footprints.items()}
    builders: list[Callable[[], np.ndarray]] = []
    for k in range(len(unique)):
        builders += [lambda i=i, p=first[k]: pr.apply(stack[i], p) for i in positions]
    for k in range(len(footprints)):
        builders += [lambda i=i, m=masks[k]: pr.control(stack[i], m, fill) for i in positions]
    probs = batched_probabilities(model, builders)
    hits = label_hits(model, probs, n_labels).reshape(-1, positions.size, n_labels)
    top = probs.max(axis=1).reshape(-1, positions.size)
    for p in active:
        edits.edit[p, positions] = hits[edit_of[p]]
        edits.control[p, positions] = hits[len(unique) + controls_of[p]]
        edits.top[p, positions] = top[edit_of[p]]
    edits.n_edits += len(unique) * positions.size
    edits.n_controls += len(footprints) * positions.size


Job = tuple[Any, int, int]  # (edit key, probe sample index, label it flipped into)


def heat_of_flips(model: Classifier, jobs: Sequence[Job], image: Callable[[Job], np.ndarray],
                  region: Callable[[Job], np.ndarray]) -> tuple[dict[tuple[Any, int], list[float]], dict[Job, np.ndarray]]:
    """Grad-CAM of each flipped edited image ``image(job)`` for the label it flipped into, in shared batches: the share
    of its energy in ``region(job)`` (H, W) bool per (edit key, label), and the maps per job."""
    heat: dict[tuple[Any, int], list[float]] = {}
    maps: dict[Job, np.ndarray] = {}
    if model.explain is None:
        return heat, maps
    for start in range(0, len(jobs), model.batch_size):
        chunk = jobs[start:start + model.batch_size]
        cams = model.explain(np.stack([image(job) for job in chunk]), np.array([c for _, _, c in chunk], np.int64))
        shares = score_region(cams, np.stack([region(job) for job in chunk])).energy_in_box
        for job, share, cam in zip(chunk, shares, cams):
            heat.setdefault((job[0], job[2]), []).append(float(share))
            maps[job] = np.asarray(cam, np.float32)
    return heat, maps


def _overlaps(placed: Sequence[pr.Placed], regions: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """(P, n): the share of each placement's control pixels (its footprint) inside each probe sample's region."""
    out = np.zeros((len(placed), len(regions)))
    for p, placement in enumerate(placed):
        foot = placement.footprint(size)
        area = max(int(foot.sum()), 1)
        out[p] = (regions & foot).reshape(len(regions), -1).sum(axis=1) / area if len(regions) else out[p]
    return out


@dataclass(frozen=True)
class _Tests:
    """What every cell of the probes shares: the probe samples (sorted), their labels' membership (n, L), the controls'
    object overlap (P, n), the looks and the levels (the effect's per look; a read place's, corrected for every control
    and class tested and for the looks)."""

    rows: np.ndarray
    among: np.ndarray  # (n, L) bool: the sample's labels exclude the label
    overlap: np.ndarray
    plan: Schedule
    cells: int  # (control, class) cells tested: a read place's interval is corrected for them

    def read_level(self, n: int) -> float:
        """A read place's level at the look of ``n`` samples: that look's share of the error, split over the cells."""
        return 1.0 - (1.0 - self.plan.level_at(n)) / self.cells


def _tests(ev: Evidence, placed: Sequence[pr.Placed], rows: np.ndarray, level: float, sequential: bool) -> _Tests:
    size = ev.input_size
    regions = np.stack([ev.region_of(int(r), int(ev.explained[r])) for r in rows]) if rows.size else np.zeros((0, *size), bool)
    among = np.array([[c not in ev.labels_of[int(r)] for c in range(len(ev.labels))] for r in rows], bool).reshape(len(rows), len(ev.labels))
    plan = schedule(len(rows), level, sequential)
    # a read place is one claim picked among every (control, class) tested: its interval is corrected for them (Bonferroni)
    cells = max(1, len({p.footprint(size).tobytes() for p in placed}) * len(ev.labels))
    return _Tests(rows, among, _overlaps(placed, regions, size), plan, cells)


def _cell(cfg: ProbesConfig, ev: Evidence, t: _Tests, edits: _Edits, p: int, c: int, used: np.ndarray, *, seed: int,
          resamples: int) -> tuple[dict, str]:
    """One (probe, place, class) on the probe samples at ``used`` (sorted positions): its row fields without heat and its
    decision (fools or reads: decided; ``not`` when an honest upper bound of both lies below ``min_effect``)."""
    from pipeline.evidence.checks import wilson

    among = used[t.among[used, c]]
    n_max = int(t.among[:, c].sum())
    flip, ctrl = edits.edit[p, among, c], edits.control[p, among, c]
    effect, verdict = judge(flip.astype(float), ctrl.astype(float), cfg.min_effect, t.plan, seed=seed + 17 * (p * len(ev.labels) + c),
                            resamples=resamples, look=used.size, maximum=n_max)
    low, high = wilson(float(ctrl.sum()), int(ctrl.size), t.read_level(used.size)) if ctrl.size else (math.nan, math.nan)
    over = float(t.overlap[p, among].mean()) if among.size else math.nan
    fools = verdict == FOOLS
    reads = not math.isnan(low) and low >= cfg.min_effect and over <= OFF_OBJECT
    flat = int(ctrl.sum())  # the control's flips into the class: a read place needs their lower bound at the maximum to reach min_effect
    quiet = verdict == NOT and (over > OFF_OBJECT or upper_exact(flat, int(ctrl.size), t.plan.level) < cfg.min_effect
                                or not rate_reachable(flat, int(ctrl.size), n_max, cfg.min_effect, t.read_level(t.plan.maximum)))
    state = FOOLS if fools or reads else NOT if quiet else OPEN
    names = sorted({ev.labels[lab] for r in t.rows[among] for lab in ev.labels_of[int(r)]})
    return dict(label=ev.labels[c], n=int(among.size), from_labels=tuple(names), n_max=n_max,
                flip=float(flip.mean()) if flip.size else math.nan, control_flip=float(ctrl.mean()) if ctrl.size else math.nan,
                effect=effect, fools=fools, control_low=low, control_high=high, object_overlap=over, reads=reads), state


def _looks(cfg: ProbesConfig, ev: Evidence, placed: Sequence[pr.Placed], t: _Tests, order: np.ndarray, stack: np.ndarray, model: Classifier,
           fill: str, *, seed: int, resamples: int, tick: Callable[[int], None]) -> tuple[_Edits, dict[int, np.ndarray]]:
    """Every placement's edits and controls look by look (DESIGN §18): a placement stops at the first look where every
    class's cell is decided. Returns the edits and, per placement, the sample positions its cells were decided on."""
    n_labels, size = len(ev.labels), ev.input_size
    edits = _Edits.empty(len(placed), len(t.rows), n_labels)
    position = {int(r): i for i, r in enumerate(t.rows)}
    used: dict[int, np.ndarray] = {}
    active, done = list(range(len(placed))), 0
    for k, n in enumerate(t.plan.looks):
        new = np.array([position[int(r)] for r in order[done:n]], np.int64)
        _run_edits(edits, placed, active, new, stack, model, fill, size, n_labels)
        seen = np.sort(np.array([position[int(r)] for r in order[:n]], np.int64))
        final = k == len(t.plan.looks) - 1
        still = []
        for p in active:
            states = [_cell(cfg, ev, t, edits, p, c, seen, seed=seed, resamples=resamples)[1] for c in range(n_labels)]
            if final or OPEN not in states:
                used[p] = seen
                tick(n_labels)
            else:
                still.append(p)
        active, done = still, n
    return edits, used


def _rows(cfg: ProbesConfig, ev: Evidence, placed: Sequence[pr.Placed], t: _Tests, edits: _Edits, used: Mapping[int, np.ndarray], *,
          seed: int, resamples: int) -> Iterator[tuple[int, int, np.ndarray, np.ndarray, dict]]:
    """(placement, label, the sample positions the edit turned into the label, those its control turned, row fields without
    heat) for every (probe, place, class), on the samples its look decided it on."""
    size = ev.input_size
    for p, placement in enumerate(placed):
        seen = used[p]
        correct_after = _correct(edits.edit[p, seen], t.rows[seen], ev)
        for c in range(len(ev.labels)):
            fields, _ = _cell(cfg, ev, t, edits, p, c, seen, seed=seed, resamples=resamples)
            fields.update(probe=placement.artifact.name, kind=placement.artifact.kind, place=placement.place,
                          rect=pr.relative(placement.rect, size), accuracy=float(correct_after.mean()) if seen.size else math.nan,
                          heat_area=float(placement.heat_region(size).mean()))
            among = seen[t.among[seen, c]]
            yield (p, c, among[edits.edit[p, among, c]], among[edits.control[p, among, c]], fields)


def _without_contradicted_reads(found: list[tuple[int, int, np.ndarray, np.ndarray, dict]], min_effect: float,
                                level: float) -> list[tuple[int, int, np.ndarray, np.ndarray, dict]]:
    """A read place says any edit of it turns images into the class (DESIGN §17); another edit of the same place that
    clearly does not (an artifact or a flat fill whose flips into the class have a Wilson upper bound below
    ``min_effect``) says the fill's content fooled, not the place: in a world of flat shapes a flat patch *is* a square.
    Those (place, class) are not read."""
    def quiet(flipped: np.ndarray, n: int) -> bool:
        return n > 0 and upper_exact(flipped.size, n, level) < min_effect

    calm = {(f["place"], f["label"]) for _, _, flips, ctrl, f in found if quiet(flips, f["n"]) or quiet(ctrl, f["n"])}
    for *_, fields in found:
        if fields["reads"] and (fields["place"], fields["label"]) in calm:
            fields["reads"] = False
    return found


def _with_heat(found: Sequence[tuple[int, int, np.ndarray, np.ndarray, dict]], placed: Sequence[pr.Placed], rows: np.ndarray,
               images: Mapping[int, np.ndarray], edits: _Edits, model: Classifier, cams: np.ndarray, fill: str,
               size: tuple[int, int]) -> tuple[list[ProbeRow], int]:
    """The rows with the heat on the artifact of the edited images that flipped, and the report's exemplars: the edit's for
    a row that fools, the flat-filled control's for a place the model reads (DESIGN §17); (rows, Grad-CAM passes)."""
    # the heat on the artifact is measured where it says something: the cells that fool, on up to HEAT_IMAGES flips each
    edit_jobs = [(p, int(i), c) for p, c, flipped, _, fields in found if fields["fools"] for i in flipped[:HEAT_IMAGES]]
    heat, maps = heat_of_flips(model, edit_jobs, lambda job: pr.apply(images[int(rows[job[1]])], placed[job[0]]),
                               lambda job: placed[job[0]].heat_region(size))
    ctrl_jobs = [(("control", p), int(i), c) for p, c, _, ctrl, fields in found if fields["reads"] and not fields["fools"]
                 for i in ctrl[:EXEMPLARS]]
    _, ctrl_maps = heat_of_flips(model, ctrl_jobs, lambda job: pr.control(images[int(rows[job[1]])], placed[job[0][1]].footprint(size), fill),
                                 lambda job: placed[job[0][1]].heat_region(size))
    out = []
    for p, c, flipped, ctrl, fields in found:
        shares = heat.get((p, c), [])
        before = lambda i: (int(rows[i]), _u8(images[int(rows[i])]))  # noqa: E731
        if fields["fools"]:
            ex = tuple(Exemplar(*before(i), _u8(pr.apply(images[int(rows[i])], placed[p])), np.asarray(cams[int(rows[i])], np.float32),
                                maps[(p, int(i), c)], float(edits.top[p, i]) if edits.top is not None else math.nan)
                       for i in flipped[:EXEMPLARS] if (p, int(i), c) in maps)
        elif fields["reads"]:
            ex = tuple(Exemplar(*before(i), _u8(pr.control(images[int(rows[i])], placed[p].footprint(size), fill)),
                                np.asarray(cams[int(rows[i])], np.float32), ctrl_maps[(("control", p), int(i), c)])
                       for i in ctrl[:EXEMPLARS] if (("control", p), int(i), c) in ctrl_maps)
        else:
            ex = ()
        out.append(ProbeRow(**fields, artifact_heat=float(np.mean(shares)) if shares else math.nan, n_flipped=int(flipped.size), exemplars=ex))
    return out, len(edit_jobs) + len(ctrl_jobs)


def _u8(image: np.ndarray) -> np.ndarray:
    return np.clip(image, 0, 255).astype(np.uint8)


# --------------------------------------------------------------------------- background swap


def _swap_pairs(ev: Evidence, subjects: np.ndarray, fraction: Mapping[int, float], seed: int) -> list[tuple[int, int, int]]:
    """(sample, same-label donor, other-label donor) for every subject that has both (seeded)."""
    rng = np.random.default_rng(seed)
    donors = np.array(sorted(r for r, f in fraction.items() if 0 < f < SWAP_MAX_REGION), np.int64)
    out = []
    for r in subjects:
        label = int(ev.explained[r])
        same = donors[(ev.explained[donors] == label) & (donors != r)]
        other = donors[np.array([int(ev.explained[d]) not in ev.labels_of[int(r)] for d in donors], bool)] if donors.size else donors
        if same.size and other.size:
            out.append((int(r), int(rng.choice(same)), int(rng.choice(other))))
    return out


def _swap(ev: Evidence, pairs: Sequence[tuple[int, int, int]], images: Mapping[int, np.ndarray], model: Classifier, fill: str, *,
          seed: int, level: float, resamples: int, min_effect: float = math.inf, order: np.ndarray | None = None,
          sequential: bool = False) -> tuple[Swap, int]:
    """The background swap over ``pairs`` (sample, same-label donor, other-label donor); ``sequential``: look by look over
    the samples in ``order`` (DESIGN §18), stopping when the gap surely reaches ``min_effect`` or surely does not."""
    regions = {r: ev.region_of(r, int(ev.explained[r])) for pair in pairs for r in pair}
    rank = {int(r): i for i, r in enumerate(order if order is not None else [p[0] for p in pairs])}
    ordered = sorted(pairs, key=lambda p: rank.get(p[0], len(rank)))
    plan = schedule(len(ordered), level, sequential)
    hits: dict[tuple[int, int, int], np.ndarray] = {}
    for k, n in enumerate(plan.looks):
        fresh = [p for p in ordered[:n] if p not in hits]
        builders = [lambda r=r, d=d: pr.swap_background(images[r], regions[r], images[d], regions[d], fill) for r, same, other in fresh
                    for d in (same, other)]
        got = label_hits(model, batched_probabilities(model, builders), len(ev.labels))
        for i, p in enumerate(fresh):
            hits[p] = got[2 * i:2 * i + 2]
        chosen = sorted(ordered[:n])  # sorted by sample: the fixed-size run's order
        gap, same_ok, other_ok, flip, rows = _gap(ev, chosen, hits, seed=seed, level=plan.level_at(n), resamples=resamples)
        differences = same_ok.astype(float) - other_ok.astype(float)
        upper = effect_upper(differences, plan.level)
        if (k == len(plan.looks) - 1 or decide(gap.low, upper, min_effect, final=False) != OPEN
                or not effect_reachable(differences, plan.maximum, min_effect, plan)):
            break
    per = {}
    for label in range(len(ev.labels)):
        mine = ev.explained[rows] == label
        if mine.any():
            per[ev.labels[label]] = (int(mine.sum()), float(same_ok[mine].mean() - other_ok[mine].mean()))
    shown = tuple((r, _u8(images[r]), _u8(pr.swap_background(images[r], regions[r], images[o], regions[o], fill)))
                  for r, _, o in chosen[:EXEMPLARS])
    return Swap(len(chosen), float(same_ok.mean()), float(other_ok.mean()), gap, float(flip.mean()), per, exemplars=shown,
                n_max=len(pairs)), 2 * len(hits)


def _gap(ev: Evidence, pairs: Sequence[tuple[int, int, int]], hits: Mapping[tuple[int, int, int], np.ndarray], *, seed: int,
         level: float, resamples: int) -> tuple[effects.Effect, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(gap, right on the same label's background, right on another's, answered the donor's label, the samples) over
    ``pairs``."""
    rows = np.array([p[0] for p in pairs], np.int64)
    same = np.stack([hits[p][0] for p in pairs]) if pairs else np.zeros((0, len(ev.labels)), bool)
    other = np.stack([hits[p][1] for p in pairs]) if pairs else np.zeros((0, len(ev.labels)), bool)
    same_ok, other_ok = _correct(same, rows, ev), _correct(other, rows, ev)
    flip = np.array([other[i, int(ev.explained[o])] for i, (_, _, o) in enumerate(pairs)], bool)
    gap = effects.paired_difference(same_ok.astype(float), other_ok.astype(float), level=level, seed=seed, resamples=resamples)
    return gap, same_ok, other_ok, flip, rows


def _no_swap(note: str) -> Swap:
    nan = effects.Effect(math.nan, math.nan, math.nan, 0)
    return Swap(0, math.nan, math.nan, nan, math.nan, {}, note)


# --------------------------------------------------------------------------- the stage


def run_probes(cfg: ProbesConfig, ev: Evidence, model: Classifier, artifacts: Sequence[pr.Artifact], *, cams: np.ndarray,
               hot_spots: Sequence[tuple[str, tuple[float, float, float, float]]] = (), fill: str, seed: int, level: float = 0.9,
               resamples: int = 1000, sequential: bool = False, tick: Callable[[int], None] | None = None,
               start: Callable[[int, str], None] | None = None) -> ProbesResult:
    """Every artifact at every place on the probe samples, with controls and heat, and the background swap. ``cams``
    (N, h, w) the audit's maps (the exemplars' "before"); ``hot_spots`` (name, relative rect) of the strategies; ``level``
    and ``resamples`` of the intervals (``statistics``); ``sequential``: every cell looks at 16, 32, ... samples and stops
    when decided (DESIGN §18); ``start(total, unit)`` and ``tick(n)`` report progress in cells."""
    t0 = time.perf_counter()
    size, n_labels = ev.input_size, len(ev.labels)
    order = probe_order(ev, cfg.samples, seed + 11)
    rows = np.sort(order)
    placed = [p for a in artifacts for p in pr.placements(a, size, places=cfg.places, margin=cfg.margin, hot_spots=hot_spots)]
    pool = [r for label in range(n_labels) for r in seeded_subset(np.flatnonzero(ev.explained == label), cfg.samples, seed + 7)]
    fraction = {int(r): float(ev.region_of(int(r), int(ev.explained[r])).mean()) for r in pool} if cfg.background_swap else {}
    pairs = _swap_pairs(ev, rows, fraction, seed + 13) if cfg.background_swap else []
    images = model.images(sorted({int(r) for r in rows} | {d for p in pairs for d in p}))
    rows = np.array([r for r in rows if int(r) in images], np.int64)
    order = np.array([r for r in order if int(r) in images], np.int64)
    pairs = [p for p in pairs if all(x in images for x in p)]
    (start or (lambda total, unit: None))(len(placed) * n_labels, "cells")
    t = _tests(ev, placed, rows, level, sequential)
    stack = np.stack([images[int(r)] for r in rows]) if rows.size else np.zeros((0, *size, 3), np.float32)
    edits, used = _looks(cfg, ev, placed, t, order, stack, model, fill, seed=seed, resamples=resamples, tick=tick or (lambda n: None))
    found = _without_contradicted_reads(list(_rows(cfg, ev, placed, t, edits, used, seed=seed, resamples=resamples)), cfg.min_effect,
                                        level)
    out, n_gradcam = _with_heat(found, placed, rows, images, edits, model, cams, fill, size)
    swap, n_swap = (None, 0)
    if cfg.background_swap:
        swap, n_swap = _swap(ev, pairs, images, model, fill, seed=seed + 19, level=level, resamples=resamples, min_effect=cfg.min_effect,
                             order=order, sequential=sequential) if pairs else \
            (_no_swap(f"not run: no probe sample has both a same-label and an other-label sample whose object covers less than "
                      f"{SWAP_MAX_REGION:.0%} of the input"), 0)
    overall, per_label = aggregates(out, swap, ev.labels)
    counts = {ev.labels[lab]: int((ev.explained[rows] == lab).sum()) for lab in range(n_labels)}
    passes = {"edits": edits.n_edits, "controls": edits.n_controls, "swaps": n_swap, "gradcam": n_gradcam}
    note = "" if rows.size else "no probe sample: the audit has no correctly classified scored sample to edit"
    return ProbesResult(tuple(out), swap, int(rows.size), counts, overall, per_label, passes, time.perf_counter() - t0, cfg, note)


def aggregates(rows: Sequence[ProbeRow], swap: Swap | None, labels: Sequence[str]) -> tuple[dict[str, float], dict[str, dict[str, float]]]:
    """``probes_fooled`` (fooling rows, and each (place, class) whose control alone fools off the object, §17),
    ``max_probe_effect``, ``background_gap`` overall and per label (DESIGN §11)."""
    def of(sub: Sequence[ProbeRow], gap: float) -> dict[str, float]:
        effects = [r.effect.value for r in sub if not math.isnan(r.effect.value)]
        read = {r.place_key for r in sub if r.reads}
        return {"probes_fooled": float(sum(r.fools for r in sub) + len(read)), "max_probe_effect": max(effects) if effects else math.nan,
                "background_gap": gap}

    overall = of(rows, swap.gap.value if swap is not None else math.nan)
    per = {name: of([r for r in rows if r.label == name],
                    swap.per_label[name][1] if swap is not None and name in swap.per_label else math.nan) for name in labels}
    return overall, per


# --------------------------------------------------------------------------- records (summary.json, probes.csv)

CSV_COLUMNS = ("probe", "kind", "place", "x0", "y0", "x1", "y1", "class", "n", "n_max", "flip", "control_flip", "effect", "effect_lo",
               "effect_hi", "accuracy", "artifact_heat", "fools")
"""probes.csv's columns (DESIGN §11)."""

KIND_WORDS = {"watermark": "a stock-photo watermark", "stamp": "a date stamp", "noise": "a patch of random noise",
              "frame": "a dark frame"}


def place_words(place: str, rect: tuple[float, float, float, float]) -> str:
    """Where a probe sits, in plain words: "at the bottom-right corner", "on circle's hot spot (strategy 0, ...)"."""
    if place == pr.FRAME_PLACE:
        return "around the image"
    if place == "at":
        return f"where the config puts it (top-left at x {rect[0]:.2f}, y {rect[1]:.2f})"
    if place.startswith("hotspot:"):
        label, _, sid = place[len("hotspot:"):].rpartition("/")
        return f"on {label}'s hot spot (strategy {sid}, the {st.place_name(rect)})"
    return "at the centre" if place == "centre" else f"at the {place} corner"


def and_list(names: Sequence[str]) -> str:
    """"a", "a and b", "a, b and c" ("no" for none)."""
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1] if names else "no"


def sentence(row: ProbeRow) -> str:
    """One plain sentence: "a stock-photo watermark at the bottom-right corner turns 65% of apple and banana
    images into orange (the same area filled: 5%); 80% of their heat lies on it"."""
    what = KIND_WORDS.get(row.kind, f"the overlay '{row.probe}'")
    text = (f"{what} {place_words(row.place, row.rect)} turns {row.flip:.0%} of {and_list(row.from_labels)} images into {row.label} "
            f"(the same area filled: {row.control_flip:.0%})")
    if row.n_flipped and not math.isnan(row.artifact_heat):
        text += f"; {row.artifact_heat:.0%} of their heat lies on it"
        if row.heat_area > 0:
            text += f" ({row.artifact_heat / row.heat_area:.1f}× its share of the image)"
    return text


def record(row: ProbeRow) -> ProbeRecord:
    """One probes.csv row (every CSV column) plus the sentence, its words and counts for summary.json."""
    x0, y0, x1, y1 = row.rect
    return ProbeRecord(
        probe=row.probe, kind=row.kind, place=row.place, x0=x0, y0=y0, x1=x1, y1=y1, label=row.label, n=row.n, n_max=row.n_max,
        flip=row.flip, control_flip=row.control_flip, effect=row.effect.value, effect_lo=row.effect.low, effect_hi=row.effect.high,
        accuracy=row.accuracy, artifact_heat=row.artifact_heat, fools=row.fools, n_flipped=row.n_flipped, heat_area=row.heat_area,
        from_labels=tuple(row.from_labels), sentence=sentence(row), control_lo=row.control_low, control_hi=row.control_high,
        object_overlap=row.object_overlap, reads=row.reads, place_words=place_words(row.place, row.rect),
        what=KIND_WORDS.get(row.kind, f"the overlay '{row.probe}'"), exemplar_rows=tuple(x.row for x in row.exemplars),
        exemplar_after_confidence=tuple(x.after_confidence for x in row.exemplars))


def swap_sentence(swap: Swap) -> str:
    """"on another class's background, accuracy falls from 0.98 to 0.12; 85% answer the background's class"."""
    if swap.note:
        return f"Background swap {swap.note}."
    move = "falls" if swap.accuracy_other < swap.accuracy_same else "stays" if swap.accuracy_other == swap.accuracy_same else "rises"
    return (f"on another class's background, accuracy {move} from {swap.accuracy_same:.2f} to {swap.accuracy_other:.2f}; "
            f"{swap.flip:.0%} answer the background's class")


def section(result: ProbesResult) -> dict[str, object]:
    """summary.json's ``probes``: settings, samples, passes, the rows, the background swap and the aggregates
    (its time is provenance's ``probes_seconds``, with the other timings)."""
    from dataclasses import asdict

    swap = result.swap
    return {
        "settings": {**asdict(result.settings), "overlays": [{**asdict(o), "path": str(o.path)} for o in result.settings.overlays]},
        "n_samples": result.n_samples, "samples_per_label": dict(result.samples_per_label), "passes": dict(result.passes),
        "note": result.note or None,
        "aggregates": {"overall": result.overall, "per_class": result.per_label},
        "rows": [record(r).to_json() for r in result.rows],
        "fooling": [sentence(r) for r in result.fooling()],
        "background_swap": None if swap is None else {
            "n": swap.n, "n_max": swap.n_max, "accuracy_same": swap.accuracy_same, "accuracy_other": swap.accuracy_other, "background_gap": swap.gap.value,
            "background_gap_lo": swap.gap.low, "background_gap_hi": swap.gap.high, "background_flip": swap.flip,
            "per_class": {k: {"n": n, "background_gap": g} for k, (n, g) in swap.per_label.items()}, "note": swap.note or None,
            "exemplar_rows": [r for r, _, _ in swap.exemplars],
            "sentence": swap_sentence(swap)},
    }


def probe_artifacts(cfg: AuditConfig, spec: "InputSpec") -> "list[pr.Artifact]":
    """The built-in artifacts and the user's overlays (read here: I/O at the stage's edge) at the input size, in the
    model's channel space."""
    from PIL import Image

    size = spec.input_size
    out = [pr.builtin(kind, cfg.probes.size, size) for kind in cfg.probes.artifacts]
    for o in cfg.probes.overlays:
        with Image.open(o.path) as img:
            rgba = np.asarray(img.convert("RGBA"), np.float64)
        out.append(pr.overlay(o.name, rgba, o.size, size, o.at))
    return [a.in_channels(spec.channels, spec.gray) for a in out]


def probes_stage(cfg: AuditConfig, ev: "Evidence", model: "Classifier", cams: np.ndarray,
                 strategies: "StrategiesResult | None", spec: "InputSpec", bar: "Progress | None" = None) -> "ProbesResult | None":
    """DESIGN §11: the artifacts at the corners, the centre and every strategy's hot spot (tested or not: every
    strategy whose off-object heat reaches strategies.min_off_object; one whose heat follows its objects has none
    to probe), and the background swap."""
    if not cfg.probes.enabled:
        return None
    spots = [(f"{s.label}/{s.id}", s.hot_spot.rect) for lab in (strategies.labels if strategies else ()) for s in lab.strategies
             if s.hot_spot is not None and s.hot_spot.off_object_share >= cfg.strategies.min_off_object]
    return run_probes(cfg.probes, ev, model, probe_artifacts(cfg, spec), cams=cams, hot_spots=spots, fill=cfg.evidence.fill,
                      seed=cfg.seed, level=cfg.statistics.interval, resamples=cfg.statistics.resamples,
                      sequential=cfg.statistics.sequential, start=bar.start if bar else None, tick=bar.tick if bar else None)
