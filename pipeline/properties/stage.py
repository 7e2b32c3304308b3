"""Cues without a place (DESIGN §15), the stage: does the data let a property of the whole picture tell a class apart,
and does the model answer from it? A shortcut is both.

- **Data side** (no model pass): per image, :func:`pipeline.properties.measures.measure` outside its region, on a seeded,
  label-stratified subset of the scored samples (at most DATA_SAMPLES, decoded as the audit decodes them); for each
  class and (property, direction) the AUC of the class's images against the others', with a bootstrap interval;
  ``tells_apart`` when its lower bound reaches ``probes.property_auc``.
- **Model side**: on the probe samples (the patch probes' own, :func:`pipeline.probes.stage.probe_samples`), every edit
  of :func:`pipeline.properties.measures.edits` outside the region (samples whose region covers more than MAX_REGION of the
  input are left out), one forward pass each in shared batches; its control is the same property pushed the other way
  (or the unedited image). For (edit, class c): the targeted flip into c over the samples whose labels exclude c, minus
  the control's, paired, with its bootstrap interval; ``fools`` when the lower bound reaches ``probes.min_effect``.
  The flipped images get a Grad-CAM pass for c: the share of their heat outside the region (``heat_off_region``).
- **Verdicts** per (class, property, direction): ``shortcut`` (both sides), ``fragile`` (the model side alone),
  ``data`` (the data side alone), ``none``.

The model is a :class:`~pipeline.explain.explained.Classifier`, so this module imports no TensorFlow.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Callable, Mapping, Sequence

import numpy as np

from pipeline.properties import measures as pp
from pipeline.probes.artifacts import NOISE_SEED
from pipeline.evidence import effects
from pipeline.config import ProbesConfig
from pipeline.probes.stage import (EXEMPLARS, HEAT_IMAGES, Exemplar, batched_probabilities, heat_of_flips, label_hits, probe_order,
                                  stratified_by_label)
from pipeline.evidence.sequential import OPEN, Schedule, judge, schedule
from pipeline.explain.explained import Classifier, Evidence
from pipeline.records.probes import PropertyRecord

if TYPE_CHECKING:
    from pipeline.config import AuditConfig
    from pipeline.console import Progress
    from pipeline.data.geometry import InputSpec

DATA_SAMPLES = 2000  # the data side reads at most this many images (seeded, stratified by label)
MAX_REGION = 0.8  # a region covering more of the input leaves too little background to edit
CHUNK = 256  # images decoded at a time for the data side
EDIT_CHUNK = 32  # probe samples edited at once (one edit's float64 temporaries: 32 x H x W x C x 8 bytes each)
SHORTCUT, FRAGILE, DATA, NONE = "shortcut", "fragile", "data", "none"
VERDICTS = (SHORTCUT, FRAGILE, DATA, NONE)


def verdict(tells_apart: bool, fools: bool) -> str:
    """The two facts a shortcut is: the data lets the property tell the class apart, and the model answers from it."""
    return SHORTCUT if tells_apart and fools else FRAGILE if fools else DATA if tells_apart else NONE


TIES, WEAK, NO_TIE, OPPOSITE, UNMEASURED = "ties", "weak", "none", "opposite", "unmeasured"


def data_state(tells_apart: bool, low: float, high: float) -> str:
    """The data side's three states (and two edge cases) from the AUC's interval (DESIGN §15)."""
    if tells_apart:
        return TIES
    if math.isnan(low) or math.isnan(high):
        return UNMEASURED
    return WEAK if low > 0.5 else OPPOSITE if high < 0.5 else NO_TIE


@dataclass(frozen=True)
class PropertyRow:
    """One (class, property, direction). Data side: ``auc`` (and its interval) of the class's images against the others'
    in that direction over ``n_data`` images; model side: over ``n`` probe samples whose labels exclude the class, the
    share classified as it after the edit (``flip``) and after the control (``control_flip``), ``effect`` their paired
    difference, ``heat_off_region`` the flipped images' mean share of heat outside their regions."""

    label: str
    property: str
    direction: str
    auc: float
    auc_lo: float
    auc_hi: float
    n_data: int
    n: int
    from_labels: tuple[str, ...]
    flip: float
    control_flip: float
    effect: effects.Effect
    heat_off_region: float
    n_flipped: int
    tells_apart: bool
    fools: bool
    exemplars: tuple[Exemplar, ...] = ()
    n_max: int = 0  # the probe samples the edit could have run on (n < n_max: it stopped when decided, DESIGN §18)
    marked_row: int = -1  # an image of the class that carries the property most (the finding's "property marked" image)
    marked_value: float = math.nan  # its measure, and the other classes' median, for the caption
    others_value: float = math.nan

    @property
    def verdict(self) -> str:
        return verdict(self.tells_apart, self.fools)

    @property
    def data_state(self) -> str:
        """What the data side says (DESIGN §15): ``ties`` (the AUC's lower bound reaches probes.property_auc), ``weak``
        (the interval lies above 0.5, short of it: too few images to be sure), ``none`` (the interval holds 0.5),
        ``opposite`` (it lies below 0.5: the class leans the other way); ``unmeasured`` without an AUC."""
        return data_state(self.tells_apart, self.auc_lo, self.auc_hi)

    @property
    def edit(self) -> str:
        return f"{self.property}-{self.direction}"


@dataclass(frozen=True)
class PropertiesResult:
    rows: tuple[PropertyRow, ...]  # shortcuts first, then fragility, then data-only, then the rest; by effect within
    n_samples: int  # probe samples edited
    n_data: int  # images measured for the data side
    skipped: tuple[str, ...]  # properties not run, each with its reason ("colour: the evaluation images carry no colour")
    passes: Mapping[str, int]  # forward passes for the edits and Grad-CAM passes for the flipped images
    seconds: float
    data_seconds: float
    overall: dict[str, float] = field(default_factory=dict)
    per_label: dict[str, dict[str, float]] = field(default_factory=dict)


# --------------------------------------------------------------------------- the data side


def _data_rows(ev: Evidence, seed: int) -> np.ndarray:
    """A seeded, label-stratified subset of the scored samples, at most DATA_SAMPLES (sorted rows)."""
    return stratified_by_label(ev, ev.explained >= 0, DATA_SAMPLES, seed)


def measure_rows(ev: Evidence, model: Classifier, rows: np.ndarray) -> tuple[np.ndarray, bool]:
    """((n, len(MEASURES)) measures outside each row's region, whether the images carry colour), decoding in chunks."""
    out, colour_votes = [], []
    for start in range(0, len(rows), CHUNK):
        chunk = [int(r) for r in rows[start:start + CHUNK]]
        images = model.images(chunk)
        stack = np.stack([images[r] for r in chunk])
        outside = np.stack([~ev.region_of(r, int(ev.explained[r])) for r in chunk])
        out.append(pp.measure_batch(stack, outside))
        colour_votes.append((pp.carries_colour(stack), len(chunk)))
    measures = np.concatenate(out) if out else np.zeros((0, len(pp.MEASURES)))
    colour = sum(n for c, n in colour_votes if c) * 2 > sum(n for _, n in colour_votes)
    return measures, colour


def members(ev: Evidence, rows: np.ndarray) -> np.ndarray:
    """(n, L) bool: whether each row carries each label."""
    out = np.zeros((len(rows), len(ev.labels)), bool)
    for i, r in enumerate(rows):
        out[i, list(ev.labels_of[int(r)])] = True
    return out


def data_side(member: np.ndarray, measures: np.ndarray, label: int, edit: pp.Edit, *, level: float, resamples: int,
              seed: int, cache: dict | None = None) -> tuple[float, float, float, int]:
    """(AUC, low, high, images) of ``label``'s images against the others' for the measure that rises in ``edit``'s
    direction; ``member`` (n, L) the measured rows' labels (:func:`members`). A direction and its opposite read the same measure with the sign flipped (AUC 1 - a, interval
    mirrored), so ``cache`` computes each measure's once per label."""
    column = f"colour-{edit.direction}" if edit.property == "colour" else edit.property
    flipped = edit.direction == "down" or (edit.property == "colour" and edit.direction in ("cyan", "blue", "magenta"))
    if edit.property == "colour" and flipped:
        column = f"colour-{pp.OPPOSITE[edit.direction]}"  # cyan's chromaticity is red's negated
    key = (column, label)
    if cache is None or key not in cache:
        values = measures[:, pp.MEASURES.index(column)]
        mine = member[:, label]
        a = pp.auc(values[mine], values[~mine])
        lo, hi = pp.auc_interval(values[mine], values[~mine], level=level, resamples=resamples, seed=seed + 31 * label)
        found = (a, lo, hi, int(np.isfinite(values).sum()))
        if cache is None:
            return found if not flipped else (1 - a, 1 - hi, 1 - lo, found[3])
        cache[key] = found
    a, lo, hi, n = cache[key]
    return (1 - a, 1 - hi, 1 - lo, n) if flipped else (a, lo, hi, n)


# --------------------------------------------------------------------------- the model side


class EditedImages:
    """The probe samples' edited images by (edit name, sample index): EDIT_CHUNK samples of one edit made at once
    (:func:`pipeline.properties.measures.edit_batch`) and kept until another edit is asked for — the forward passes, the
    Grad-CAM of the flipped images and the exemplars each ask edit by edit. Each region's feather is computed once."""

    def __init__(self, images: np.ndarray, outside: np.ndarray, rows: np.ndarray, strength: float):
        self.images, self.outside, self.strength = images, outside, strength  # (n, H, W, C), (n, H, W)
        self.weights = np.stack([pp.feather(o) for o in outside]) if len(outside) else np.zeros(outside.shape)
        # Each sample's noise, whichever edits share a batch and whatever the audit's seed: the edit is part of the test's
        # definition, as the probes' artifacts are (NOISE_SEED); the seed draws the samples. A seed-drawn noise moved the
        # cast demo's noise-up effect on one class from 0.31 to 0.25 on the same 155 images.
        self.seeds = [NOISE_SEED + int(r) for r in rows]
        self.name, self.chunks = "", {}

    def __call__(self, name: str, i: int) -> np.ndarray:
        if name != self.name:
            self.name, self.chunks = name, {}
        k = i // EDIT_CHUNK
        if k not in self.chunks:
            part = slice(k * EDIT_CHUNK, (k + 1) * EDIT_CHUNK)
            prop, direction = name.split("-", 1)
            self.chunks[k] = pp.edit_batch(self.images[part], self.outside[part], self.weights[part], prop, direction,
                                           strength=self.strength, seeds=self.seeds[part])
        return self.chunks[k][i - k * EDIT_CHUNK]


def model_side(ev: Evidence, model: Classifier, rows: np.ndarray, edits: Sequence[pp.Edit],
               edited: EditedImages, positions: np.ndarray | None = None,
               into: tuple[dict[str, np.ndarray], dict[str, np.ndarray]] | None = None) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray], int]:
    """Every distinct pushed direction once per sample at ``positions`` (default all), in shared batches, into ``into``
    (default fresh arrays): ({edit name: (n, L) hits}, {edit name: (n,) top probability}, forward passes). A control that
    is another edit's direction shares its pass."""
    names = list(dict.fromkeys([e.name for e in edits] + [f"{e.property}-{e.control}" for e in edits if e.control]))
    n, labels = len(rows), len(ev.labels)
    positions = np.arange(n) if positions is None else positions
    hits, top = into if into is not None else ({}, {})
    for name in names:
        hits.setdefault(name, np.zeros((n, labels), bool))
        top.setdefault(name, np.zeros(n))
    builders = [lambda i=int(i), name=name: edited(name, i) for name in names for i in positions]
    probs = batched_probabilities(model, builders)
    if len(probs):
        got = label_hits(model, probs, labels).reshape(len(names), positions.size, labels)
        best = probs.max(axis=1).reshape(len(names), positions.size)
        for k, name in enumerate(names):
            hits[name][positions], top[name][positions] = got[k], best[k]
    return hits, top, len(builders)


def model_looks(cfg: ProbesConfig, ev: Evidence, model: Classifier, rows: np.ndarray, order: np.ndarray, edits: Sequence[pp.Edit],
                edited: EditedImages, clean: np.ndarray, member: np.ndarray, *, plan: Schedule, seed: int, resamples: int,
                tick: Callable[[int], None]) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray], int, dict[str, np.ndarray]]:
    """Every edit look by look (DESIGN §18): an edit (and its control) stops at the first look where each class's cell is
    decided. Returns (hits, top probabilities, forward passes, the sample positions each edit was decided on)."""
    position = {int(r): i for i, r in enumerate(rows)}
    hits: dict[str, np.ndarray] = {}
    top: dict[str, np.ndarray] = {}
    passes, used, active, done = 0, {}, list(edits), 0
    for k, n in enumerate(plan.looks):
        new = np.array([position[int(r)] for r in order[done:n]], np.int64)
        _, _, ran = model_side(ev, model, rows, active, edited, new, (hits, top))
        passes += ran
        seen = np.sort(np.array([position[int(r)] for r in order[:n]], np.int64))
        still = []
        for edit in active:
            k_edit = list(edits).index(edit)
            states = [_edit_cell(cfg, edit, c, seen, hits, clean, member, plan=plan, seed=seed + 29 * (k_edit * len(ev.labels) + c),
                                 resamples=resamples)[1] for c in range(len(ev.labels))]
            if k == len(plan.looks) - 1 or OPEN not in states:
                used[edit.name] = seen
                tick(len(ev.labels))
            else:
                still.append(edit)
        active, done = still, n
    return hits, top, passes, used


def _edit_cell(cfg: ProbesConfig, edit: pp.Edit, c: int, seen: np.ndarray, hits: Mapping[str, np.ndarray], clean: np.ndarray,
               member: np.ndarray, *, plan: Schedule, seed: int, resamples: int) -> tuple[tuple, str]:
    """(among, flip, control, effect) of one (edit, class) on the positions ``seen``, and its decision."""
    among = seen[~member[seen, c]]
    flip = hits[edit.name][among, c]
    ctrl = (hits[f"{edit.property}-{edit.control}"] if edit.control else clean)[among, c]
    effect, state = judge(flip.astype(float), ctrl.astype(float), cfg.min_effect, plan, seed=seed, resamples=resamples, look=seen.size,
                          maximum=int((~member[:, c]).sum()))
    return (among, flip, ctrl, effect), state


def _clean_hits(ev: Evidence, rows: np.ndarray) -> np.ndarray:
    """(n, L) the unedited probe samples' answers: each is correctly classified, as its explained label."""
    out = np.zeros((len(rows), len(ev.labels)), bool)
    out[np.arange(len(rows)), ev.predicted[rows]] = ev.predicted[rows] >= 0
    return out


# --------------------------------------------------------------------------- the stage


def run_properties(cfg: ProbesConfig, ev: Evidence, model: Classifier, *, cams: np.ndarray, gray: bool, seed: int, level: float = 0.9,
                   resamples: int = 1000, sequential: bool = False, start: Callable[[int, str], None] | None = None,
                   tick: Callable[[int], None] | None = None) -> PropertiesResult:
    """Both sides for every class and (property, direction) of ``cfg.properties``. ``gray``: the model takes one channel
    (its luma), so colour and saturation are not edited; nor are they when the evaluation images carry no colour."""
    t0 = time.perf_counter()
    data = _data_rows(ev, seed + 23)
    measures, colour = measure_rows(ev, model, data)
    data_seconds = time.perf_counter() - t0
    skipped = tuple(f"{p}: {'the model takes one channel (its luma)' if gray else 'the evaluation images carry no colour'}"
                    for p in cfg.properties if p in ("colour", "saturation") and (gray or not colour))
    edits = pp.edits(cfg.properties, colour=colour and not gray)
    order, rows, images, outside = _probe_samples(cfg, ev, model, seed)
    edited = EditedImages(images, outside, rows, cfg.property_strength)
    clean = _clean_hits(ev, rows)
    data_member, probe_member = members(ev, data), members(ev, rows)
    plan = schedule(len(order), level, sequential)
    (start or (lambda total, unit: None))(len(edits) * len(ev.labels), "cells")
    hits, top, n_passes, used = model_looks(cfg, ev, model, rows, order, edits, edited, clean, probe_member, plan=plan, seed=seed,
                                            resamples=resamples, tick=tick or (lambda n: None)) if rows.size and edits else ({}, {}, 0, {})
    cache: dict = {}
    found = []
    for k, edit in enumerate(edits):
        for c in range(len(ev.labels)):
            cell_seed = seed + 29 * (k * len(ev.labels) + c)
            if hits:
                (among, flip, ctrl, effect), _ = _edit_cell(cfg, edit, c, used[edit.name], hits, clean, probe_member, plan=plan,
                                                            seed=cell_seed, resamples=resamples)
            else:
                among, flip, ctrl = np.zeros(0, np.int64), np.zeros(0, bool), np.zeros(0, bool)
                effect = effects.paired_difference(flip.astype(float), ctrl.astype(float), level=level, seed=cell_seed, resamples=resamples)
            a, lo, hi, n_data = data_side(data_member, measures, c, edit, level=level, resamples=resamples, seed=seed + 37, cache=cache)
            found.append((edit, c, among, flip, ctrl, effect, (a, lo, hi, n_data)))
    jobs = [(edit.name, int(i), c) for edit, c, among, flip, _, effect, _ in found
            if not math.isnan(effect.low) and effect.low >= cfg.min_effect for i in among[flip][:HEAT_IMAGES]]
    heat, maps = heat_of_flips(model, jobs, lambda job: edited(job[0], job[1]), lambda job: outside[job[1]])
    out = []
    for edit, c, among, flip, ctrl, effect, (a, lo, hi, n_data) in found:
        fools = not math.isnan(effect.low) and effect.low >= cfg.min_effect
        flipped = among[flip] if flip.size else np.zeros(0, np.int64)
        shares = heat.get((edit.name, c), [])
        ex = tuple(Exemplar(int(rows[i]), np.clip(images[i], 0, 255).astype(np.uint8), np.clip(edited(edit.name, int(i)), 0, 255).astype(np.uint8),
                            np.asarray(cams[int(rows[i])], np.float32), maps[(edit.name, int(i), c)], float(top[edit.name][i]))
                   for i in flipped[:EXEMPLARS] if (edit.name, int(i), c) in maps) if fools else ()
        marked, value, others = _marked(data, data_member, measures, c, edit)
        out.append(PropertyRow(
            label=ev.labels[c], property=edit.property, direction=edit.direction, auc=a, auc_lo=lo, auc_hi=hi, n_data=n_data,
            n=int(among.size), n_max=int((~probe_member[:, c]).sum()),
            from_labels=tuple(sorted({ev.labels[lab] for r in rows[among] for lab in ev.labels_of[int(r)]})),
            flip=float(flip.mean()) if flip.size else math.nan, control_flip=float(ctrl.mean()) if ctrl.size else math.nan,
            effect=effect, heat_off_region=float(np.mean(shares)) if shares else math.nan, n_flipped=int(flipped.size),
            tells_apart=not math.isnan(lo) and lo >= cfg.property_auc, fools=fools, exemplars=ex, marked_row=marked, marked_value=value,
            others_value=others))
    ordered = tuple(sorted(out, key=lambda r: (VERDICTS.index(r.verdict), -(r.effect.value if not math.isnan(r.effect.value) else -1),
                                              -(r.auc if not math.isnan(r.auc) else 0))))
    overall, per_label = aggregates(ordered, ev.labels)
    return PropertiesResult(ordered, int(rows.size), int(data.size), skipped, {"edits": n_passes, "gradcam": len(jobs)},
                            time.perf_counter() - t0, data_seconds, overall, per_label)


def _probe_samples(cfg: ProbesConfig, ev: Evidence, model: Classifier, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(order, rows, images, outside): the probe samples whose scored region covers at most MAX_REGION of the input, in
    their seeded order and sorted; their decoded images (n, H, W, 3) and the pixels outside their regions (n, H, W)."""
    order = probe_order(ev, cfg.samples, seed + 11)
    regions = {int(r): ev.region_of(int(r), int(ev.explained[r])) for r in order}
    order = np.array([r for r in order if regions[int(r)].mean() <= MAX_REGION], np.int64)
    rows = np.sort(order)
    decoded = model.images([int(r) for r in rows]) if rows.size else {}
    size = ev.input_size
    images = np.stack([decoded[int(r)] for r in rows]) if rows.size else np.zeros((0, *size, 3), np.float32)
    outside = np.stack([~regions[int(r)] for r in rows]) if rows.size else np.zeros((0, *size), bool)
    return order, rows, images, outside


def _marked(rows: np.ndarray, member: np.ndarray, measures: np.ndarray, label: int, edit: pp.Edit) -> tuple[int, float, float]:
    """The data side's image of ``label`` that carries the property most in ``edit``'s direction, its value and the other
    classes' median (-1, NaN, NaN when there is none)."""
    values = pp.measure_direction({k: measures[:, i] for i, k in enumerate(pp.MEASURES)}, edit.property, edit.direction)
    mine = member[:, label] & np.isfinite(values)
    rest = ~mine & np.isfinite(values)
    if not mine.any():
        return -1, math.nan, math.nan
    best = np.flatnonzero(mine)[int(np.argmax(values[mine]))]
    return int(rows[best]), float(values[best]), float(np.median(values[rest])) if rest.any() else math.nan


def aggregates(rows: Sequence[PropertyRow], labels: Sequence[str]) -> tuple[dict[str, float], dict[str, dict[str, float]]]:
    """``properties_fooled`` (shortcuts: they join the probes' ``probes_fooled``), ``max_property_effect`` (a shortcut's, for
    ``max_probe_effect``) and ``properties_fragile`` (model side alone), overall and per class."""
    def of(sub: Sequence[PropertyRow]) -> dict[str, float]:
        effects = [r.effect.value for r in sub if r.verdict == SHORTCUT and not math.isnan(r.effect.value)]
        return {"properties_fooled": float(sum(r.verdict == SHORTCUT for r in sub)), "max_property_effect": max(effects) if effects else math.nan,
                "properties_fragile": float(sum(r.verdict == FRAGILE for r in sub))}

    return of(rows), {name: of([r for r in rows if r.label == name]) for name in labels}


def merge(aggregate: dict[str, float], found: Mapping[str, float]) -> None:
    """A scope's aggregates with the properties' joined: property shortcuts count in ``probes_fooled`` and
    ``max_probe_effect`` (an existing probes rule gates them), ``properties_fragile`` is its own."""
    aggregate["probes_fooled"] = aggregate.get("probes_fooled", 0.0) + found["properties_fooled"]
    mine, theirs = aggregate.get("max_probe_effect", math.nan), found["max_property_effect"]
    aggregate["max_probe_effect"] = theirs if math.isnan(mine) else mine if math.isnan(theirs) else max(mine, theirs)
    aggregate["properties_fragile"] = found["properties_fragile"]


# --------------------------------------------------------------------------- records (summary.json, properties.csv)

CSV_COLUMNS = ("class", "property", "direction", "auc", "auc_lo", "flip", "control_flip", "effect", "effect_lo", "effect_hi",
               "heat_off_region", "verdict")
"""properties.csv's columns (DESIGN §15)."""

EDIT_WORDS = {
    ("brightness", "up"): "a brighter background", ("brightness", "down"): "a darker background",
    ("contrast", "up"): "a higher-contrast background", ("contrast", "down"): "a flatter background",
    ("saturation", "up"): "a more saturated background", ("saturation", "down"): "a gray background",
    ("sharpness", "up"): "a sharpened background", ("sharpness", "down"): "a blurred background",
    ("noise", "up"): "a noisy background", ("jpeg", "up"): "a heavily compressed (JPEG) background",
}
DATA_WORDS = {
    ("brightness", "up"): "brighter", ("brightness", "down"): "darker", ("contrast", "up"): "higher in contrast",
    ("contrast", "down"): "flatter", ("saturation", "up"): "more saturated", ("saturation", "down"): "grayer",
    ("sharpness", "up"): "sharper", ("sharpness", "down"): "blurrier", ("noise", "up"): "noisier", ("jpeg", "up"): "more compressed",
}


def edit_words(prop: str, direction: str) -> str:
    """"a red background", "a blurred background"."""
    return f"a {direction} background" if prop == "colour" else EDIT_WORDS[(prop, direction)]


def data_words(prop: str, direction: str) -> str:
    """"redder", "blurrier": how a class's backgrounds differ."""
    return {"red": "redder", "yellow": "yellower", "green": "greener", "cyan": "more cyan", "blue": "bluer",
            "magenta": "more magenta"}[direction] if prop == "colour" else DATA_WORDS[(prop, direction)]


def sentence(row: PropertyRow) -> str:
    """"a red background turns 42% of square and triangle images into circle (the opposite push: 3%); the circles'
    backgrounds are redder than the others' (AUC 0.97)"."""
    from pipeline.probes.stage import and_list

    control = "the unedited image" if row.property in ("noise", "jpeg") else "the opposite push"
    text = (f"{edit_words(row.property, row.direction)} turns {row.flip:.0%} of {and_list(row.from_labels)} images into {row.label} "
            f"({control}: {row.control_flip:.0%})")
    return text + data_clause(row)


def data_clause(row: PropertyRow) -> str:
    """"; the circle images' backgrounds are redder than the others' (AUC 0.97)", worded by the data side's state: "nothing
    ties" only when the AUC's interval holds 0.5."""
    state, adj = row.data_state, data_words(row.property, row.direction)
    auc = f"AUC {row.auc:.2f}, interval {row.auc_lo:.2f} to {row.auc_hi:.2f}"
    if state == TIES:
        return f"; the {row.label} images' backgrounds are {adj} than the others' ({auc})"
    if state == WEAK:
        return f"; the {row.label} images' backgrounds are {adj} than the others' ({auc}), too few images to be sure"
    if state == OPPOSITE:
        return f"; the {row.label} images' backgrounds lean the other way ({auc})"
    if state == NO_TIE:
        return f"; nothing in the evaluation set ties it to {row.label} ({auc})"
    return ""


def record(row: PropertyRow) -> PropertyRecord:
    """One properties.csv row (every CSV column) plus the sentence, its words, counts and exemplars for summary.json."""
    return PropertyRecord(
        label=row.label, property=row.property, direction=row.direction, auc=row.auc, auc_lo=row.auc_lo, auc_hi=row.auc_hi,
        flip=row.flip, control_flip=row.control_flip, effect=row.effect.value, effect_lo=row.effect.low, effect_hi=row.effect.high,
        heat_off_region=row.heat_off_region, verdict=row.verdict, n=row.n, n_max=row.n_max, n_data=row.n_data, n_flipped=row.n_flipped,
        from_labels=tuple(row.from_labels), tells_apart=row.tells_apart, fools=row.fools, data_state=row.data_state,
        sentence=sentence(row), edit_words=edit_words(row.property, row.direction), data_words=data_words(row.property, row.direction),
        exemplar_rows=tuple(x.row for x in row.exemplars), exemplar_after_confidence=tuple(x.after_confidence for x in row.exemplars),
        marked_row=row.marked_row, marked_value=row.marked_value, others_value=row.others_value)


def section(result: PropertiesResult) -> dict[str, object]:
    """summary.json's ``probes.properties``: the rows that say something (any verdict but ``none``, or weak data) and the rest's
    count, the skipped properties, passes and the aggregates (its times are provenance's, so two engines' summaries are equal)."""
    shown = [record(r).to_json() for r in result.rows if r.verdict != NONE or r.data_state == WEAK]
    return {"n_samples": result.n_samples, "n_data": result.n_data, "skipped": list(result.skipped), "passes": dict(result.passes),
            "aggregates": {"overall": result.overall, "per_class": result.per_label},
            "rows": shown, "quiet": len(result.rows) - len(shown)}


def properties_stage(cfg: AuditConfig, ev: "Evidence", model: "Classifier", cams: np.ndarray, spec: "InputSpec",
                     bar: "Progress | None" = None) -> "PropertiesResult | None":
    """DESIGN §15: cues without a place, on the data and on the model (background-only edits of the probe samples)."""
    if not cfg.probes.enabled or not cfg.probes.properties:
        return None
    return run_properties(cfg.probes, ev, model, cams=cams, gray=spec.gray or spec.channels == 1, seed=cfg.seed,
                          level=cfg.statistics.interval, resamples=cfg.statistics.resamples, sequential=cfg.statistics.sequential,
                          start=bar.start if bar else None, tick=bar.tick if bar else None)
