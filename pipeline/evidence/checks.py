"""The trust checks (DESIGN §6, §13, §16): does behaviour back the heatmap's claims, do the maps depend on the weights,
do they carry signal, is the model better than chance; and the statistics they rest on (Wilson intervals, paired
differences, rank correlation). Pure NumPy."""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np

from pipeline.status import FAIL, NOT_EVALUATED, PASS
from pipeline.records.gate import CheckRecord as TrustCheck  # one trust check's outcome, as summary.json holds it


def agreement_cells(flags: np.ndarray, dependence: np.ndarray, dependence_min: float) -> dict[str, np.ndarray]:
    """The explanation-vs-behaviour 2x2 over correct, judged samples with a dependence value.

    Grad-CAM "on target" is flag ``ok`` (``right_for_wrong_reason`` is off target); behaviour
    "depends" is ``object_dependence >= dependence_min``. Returns row-index arrays per cell:
    ``on_needed``, ``on_not_needed`` (the heatmap misleads), ``off_needed``, ``off_not_needed``.
    """
    flags = np.asarray(flags, dtype=object)
    dep = np.asarray(dependence, np.float64)
    defined = np.isin(flags, ("ok", "right_for_wrong_reason")) & ~np.isnan(dep)
    on = flags == "ok"
    with np.errstate(invalid="ignore"):
        needed = dep >= dependence_min
    return {
        "on_needed": np.flatnonzero(defined & on & needed),
        "on_not_needed": np.flatnonzero(defined & on & ~needed),
        "off_needed": np.flatnonzero(defined & ~on & needed),
        "off_not_needed": np.flatnonzero(defined & ~on & ~needed),
    }


def agreement_values(flags: np.ndarray, dependence: np.ndarray, dependence_min: float) -> np.ndarray:
    """1.0 / 0.0 per defined sample (explanation and behaviour agree), in row order; what the mean is taken of."""
    cells = agreement_cells(flags, dependence, dependence_min)
    agree = np.concatenate([cells["on_needed"], cells["off_not_needed"]])
    rows = np.sort(np.concatenate([agree, cells["on_not_needed"], cells["off_needed"]]))
    return np.isin(rows, agree).astype(np.float64)


def confirmation_values(flags: np.ndarray, dependence: np.ndarray, dependence_min: float, claim: str) -> np.ndarray:
    """1.0 / 0.0 per sample making a Grad-CAM ``claim`` ("on": flag ok, "off": right_for_wrong_reason)
    with a dependence value: whether behaviour confirms it (needs the object, resp. does not)."""
    cells = agreement_cells(flags, dependence, dependence_min)
    if claim == "on":
        yes, no = cells["on_needed"], cells["on_not_needed"]
    else:
        yes, no = cells["off_not_needed"], cells["off_needed"]
    rows = np.sort(np.concatenate([yes, no]))
    return np.isin(rows, yes).astype(np.float64)


def kappa(cells: dict[str, np.ndarray]) -> tuple[float, str]:
    """Cohen's κ of the 2x2 (heat on/off target x needs/does not need the object) and, when it is
    NaN, why: a margin with no sample makes agreement equal to chance by construction."""
    a, b = cells["on_needed"].size, cells["on_not_needed"].size
    c, d = cells["off_needed"].size, cells["off_not_needed"].size
    n = a + b + c + d
    empty = [text for size, text in ((a + b, "no correct sample has its heat on target"),
                                     (c + d, "every correct sample has its heat on target"),
                                     (a + c, "no correct sample needs the object"),
                                     (b + d, "every correct sample needs the object")) if size == 0]
    if n == 0:
        return math.nan, "no correct, judged sample with interventions"
    if empty:
        return math.nan, f"a margin is empty ({empty[0]}), so agreement is chance by construction"
    po = (a + d) / n
    pe = ((a + b) * (a + c) + (c + d) * (b + d)) / n**2
    return (po - pe) / (1 - pe), ""


def chance_agreement(cells: dict[str, np.ndarray]) -> float:
    """The agreement two independent calls with these margins would reach (κ's p_e)."""
    a, b = cells["on_needed"].size, cells["on_not_needed"].size
    c, d = cells["off_needed"].size, cells["off_not_needed"].size
    n = a + b + c + d
    return ((a + b) * (a + c) + (c + d) * (b + d)) / n**2 if n else math.nan


def _ranks(x: np.ndarray) -> np.ndarray:
    """Average ranks along the last axis (ties share their mean rank)."""
    from scipy.stats import rankdata

    return rankdata(x, axis=-1, method="average")


def rank_correlation(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Spearman correlation of each pair of maps, (B, h, w) x2 -> (B,); NaN when either map is constant."""
    a = np.asarray(a, np.float64).reshape(len(a), -1)
    b = np.asarray(b, np.float64).reshape(len(b), -1)
    ra, rb = _ranks(a), _ranks(b)
    ra -= ra.mean(axis=1, keepdims=True)
    rb -= rb.mean(axis=1, keepdims=True)
    denom = np.sqrt((ra**2).sum(axis=1) * (rb**2).sum(axis=1))
    constant = (np.ptp(a, axis=1) == 0) | (np.ptp(b, axis=1) == 0) | np.isnan(a).any(axis=1) | np.isnan(b).any(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(constant, np.nan, (ra * rb).sum(axis=1) / np.where(denom > 0, denom, 1.0))


def wilson(successes: float, n: int, level: float) -> tuple[float, float]:
    """Wilson score interval of a proportion at two-sided ``level`` (NaN, NaN when n = 0)."""
    from statistics import NormalDist

    if n <= 0:
        return math.nan, math.nan
    z = NormalDist().inv_cdf(0.5 + level / 2)
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z / (1 + z * z / n) * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return max(0.0, centre - half), min(1.0, centre + half)


def paired_difference(before: Sequence[bool], after: Sequence[bool], level: float) -> tuple[float, float, float]:
    """(mean(after) - mean(before), its interval's low and high at two-sided ``level``) for two 0/1 outcomes on the same
    items (accuracy of two settings on the same images): Agresti & Min's (2005) adjusted Wald interval for paired
    proportions, half an observation added to each cell of the 2x2. NaNs for no items."""
    from statistics import NormalDist

    a, b = np.asarray(before, bool), np.asarray(after, bool)
    n = int(a.size)
    if n == 0:
        return math.nan, math.nan, math.nan
    lost, gained = float((a & ~b).sum()) + 0.5, float((~a & b).sum()) + 0.5  # discordant pairs, adjusted
    m = n + 2.0
    centre = (gained - lost) / m
    half = NormalDist().inv_cdf(0.5 + level / 2) * math.sqrt((lost + gained) - (gained - lost) ** 2 / m) / m
    return float(b.mean() - a.mean()), max(-1.0, centre - half), min(1.0, centre + half)


def confirmation_check(confirmed: int, n: int, *, min_confirmed: float, min_claims: int, level: float, enabled: bool) -> TrustCheck:
    """heatmap_confirmation (DESIGN §6): of ``n`` on-target claims (flag ok, judged by removal),
    ``confirmed`` need the object. Fails when the Wilson upper bound of the rate is below
    ``min_confirmed``: significantly fewer than that share of the heatmap's claims hold."""
    name = "heatmap_confirmation"
    if not enabled:
        return TrustCheck(name, math.nan, min_confirmed, NOT_EVALUATED, f"{name}: not evaluated (evidence.interventions is off)", 0)
    if n < min_claims:
        return TrustCheck(name, confirmed / n if n else math.nan, min_confirmed, NOT_EVALUATED,
                          f"{name}: not evaluated (n too small: {n} on-target samples judged by removal, trust.min_claims is {min_claims})", n)
    rate = confirmed / n
    low, high = wilson(confirmed, n, level)
    ok = high >= min_confirmed
    text = (f"{name}: {confirmed} of {n} on-target heatmaps are confirmed by behaviour (the prediction needs the object): "
            f"on_target_confirmed_rate {rate:.3f}, {level:.0%} interval {low:.3f} to {high:.3f}; "
            + (f"upper bound {'>=' if ok else '<'} {min_confirmed:g}" + ("" if ok else ": significantly fewer of the heatmap's claims hold than trust.min_confirmed")))
    return TrustCheck(name, rate, min_confirmed, PASS if ok else FAIL, text, n)


def signal_check(n_no_signal: int, n_scored: int, max_no_signal: float) -> TrustCheck:
    """heatmap_signal (DESIGN §13): fails when more than ``max_no_signal`` of the scored samples are flagged
    no_signal (an all-zero map, or boxes covering the input): the heatmaps carry nothing to judge."""
    name = "heatmap_signal"
    if n_scored == 0:
        return TrustCheck(name, math.nan, max_no_signal, NOT_EVALUATED, f"{name}: not evaluated (no scored sample)", 0)
    share = n_no_signal / n_scored
    ok = share <= max_no_signal
    text = (f"{name}: {n_no_signal} of {n_scored} scored samples have no signal (an all-zero heatmap, or boxes covering the input), "
            f"{share:.0%} {'<=' if ok else '>'} trust.max_no_signal {max_no_signal:.0%}")
    return TrustCheck(name, share, max_no_signal, PASS if ok else FAIL, text, n_scored)


SPREAD_MIN_SHARE = 0.05  # prediction_spread applies when at least two labels each hold this share of the samples


def spread_check(predicted: Sequence[str], labels: Sequence[Sequence[str]], max_one_class: float) -> TrustCheck:
    """prediction_spread: over the scored samples, ``predicted`` (the answer's label, "" for none) and their
    ``labels``. Fails when one answer takes more than ``max_one_class`` of them while at least two labels
    each hold SPREAD_MIN_SHARE of the samples: a constant answer (wrong preprocessing, a dead model) scores
    the majority label's share as accuracy and must not pass as FIT."""
    name = "prediction_spread"
    n = len(predicted)
    counts: dict[str, int] = {}
    for labs in labels:
        for c in set(labs):
            counts[c] = counts.get(c, 0) + 1
    held = sorted((c for c, k in counts.items() if k >= SPREAD_MIN_SHARE * n), key=lambda c: (-counts[c], c))
    if n == 0 or len(held) < 2:
        why = "no scored sample" if n == 0 else f"the labels hold {len(held)} class with at least {SPREAD_MIN_SHARE:.0%} of the samples"
        return TrustCheck(name, math.nan, max_one_class, NOT_EVALUATED, f"{name}: not evaluated ({why})", n)
    answers: dict[str, int] = {}
    for p in predicted:
        answers[p] = answers.get(p, 0) + 1
    top = max(answers, key=lambda c: (answers[c], c))
    share = answers[top] / n
    ok = share <= max_one_class
    shown = ", ".join(f"{c} {counts[c]}" for c in held[:6])
    said = top if top.startswith("a class outside") else f"'{top}'"
    text = (f"{name}: the model answers {said} for {answers[top]} of {n} scored samples ({share:.0%}) "
            f"{'<=' if ok else '>'} trust.max_one_class {max_one_class:.0%}, while the labels hold {len(held)} classes ({shown})")
    return TrustCheck(name, share, max_one_class, PASS if ok else FAIL, text, n)


def chance_check(value: float, low: float, high: float, n_labels: int, n: int, level: float, *, enabled: bool) -> TrustCheck:
    """better_than_chance (DESIGN §16): a model no better than guessing has heatmaps that explain noise, and must not
    pass as FIT. Fails unless balanced accuracy's ``level`` interval lower bound ``low`` is above 1/``n_labels``."""
    name = "better_than_chance"
    if not enabled:
        return TrustCheck(name, math.nan, math.nan, NOT_EVALUATED, f"{name}: not evaluated (trust.better_than_chance is off)", n)
    if n == 0 or n_labels < 2 or math.isnan(low):
        why = "no scored sample" if n == 0 else f"the scored samples hold {n_labels} label" if n_labels < 2 else "no interval"
        return TrustCheck(name, math.nan, math.nan, NOT_EVALUATED, f"{name}: not evaluated ({why})", n)
    chance = 1.0 / n_labels
    ok = low > chance
    text = (f"{name}: balanced accuracy {value:.3f} ({level:.0%} interval {low:.3f} to {high:.3f}, {n} scored samples); its lower "
            f"bound {'>' if ok else '<='} chance 1/{n_labels} = {chance:.3f}"
            + ("" if ok else ": the model does no better than guessing among its labels, so its heatmaps explain noise"))
    return TrustCheck(name, low, chance, PASS if ok else FAIL, text, n)


def randomisation_check(value: float, n: int, max_similarity: float, *, enabled: bool) -> TrustCheck:
    name = "randomisation"
    if not enabled:
        return TrustCheck(name, math.nan, max_similarity, NOT_EVALUATED, f"{name}: not evaluated (trust.randomisation is off)", 0)
    if n == 0 or math.isnan(value):
        return TrustCheck(name, math.nan, max_similarity, NOT_EVALUATED, f"{name}: not evaluated (every map was constant)", n)
    ok = value < max_similarity
    text = (f"{name}: median rank correlation {value:.3f} {'<' if ok else '>='} {max_similarity:g} between the maps of the "
            f"model and of a copy with the layers from the output down to the target layer re-initialised ({n} maps: sample x draw pairs, constant maps left out)")
    return TrustCheck(name, value, max_similarity, PASS if ok else FAIL, text, n)
