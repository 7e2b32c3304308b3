"""Where the model looks instead (DESIGN §10): atlas, SpRAy strategies, hot spots, and the causal
tests' pixel rules and statistics. Pure NumPy/SciPy (scikit-learn for the kNN graph and k-means);
the tests' forward passes live in :mod:`pipeline.strategies.stage`.

Conventions: a native map is (h, w) on the target layer's grid; a *normalised* map sums to 1.
A region is (H, W) bool at the model's input size (pixel-centre rule, DESIGN §4). A rectangle in
cells is ``(r0, c0, r1, c1)`` half-open on the native grid; in relative image coordinates it is
``(x0, y0, x1, y1)`` in [0, 1]; in pixels ``(c0, r0, c1, r1)`` half-open at the input size (the
order of :func:`pipeline.data.geometry.pixel_boxes`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from pipeline.evidence.interventions import fill_colour
from pipeline.data.geometry import pixel_boxes


CONTROL_DRAWS = 50  # random placements tried per control before the least-overlapping one is taken


STABILITY_ROUNDS, STABILITY_FRACTION = 5, 0.8


NULL_RATIO = 0.5  # a split into k strategies needs λ_k at most this share of the structureless λ_k


DENSE_EIGEN_MAX = 400  # up to this many samples the Laplacian's spectrum is computed densely


@lru_cache(maxsize=32)
def area_matrix(n_cells: int, n_pixels: int) -> np.ndarray:
    """(n_cells, n_pixels): row a = the share of cell a's extent covered by each input pixel.

    Cell a spans [a·n/n_cells, (a+1)·n/n_cells) of the input axis, pixel i spans [i, i+1); the
    rows sum to 1, so ``P_h @ region @ P_w.T`` is each cell's covered share (area average)."""
    edges = np.arange(n_cells + 1) * (n_pixels / n_cells)
    px = np.arange(n_pixels)
    overlap = np.clip(np.minimum(edges[1:, None], px[None, :] + 1) - np.maximum(edges[:-1, None], px[None, :]), 0, None)
    out = overlap / (n_pixels / n_cells)
    out.flags.writeable = False
    return out


def coverage(region: np.ndarray, grid: tuple[int, int]) -> np.ndarray:
    """(H, W) bool region -> (h, w) float: share of each native cell's input pixels inside it."""
    region = np.asarray(region, np.float64)
    return area_matrix(grid[0], region.shape[0]) @ region @ area_matrix(grid[1], region.shape[1]).T


def rect_relative(cells: tuple[int, int, int, int], grid: tuple[int, int]) -> tuple[float, float, float, float]:
    """Cells ``(r0, c0, r1, c1)`` -> relative ``(x0, y0, x1, y1)``."""
    r0, c0, r1, c1 = cells
    return (c0 / grid[1], r0 / grid[0], c1 / grid[1], r1 / grid[0])


def rect_pixels(rect: tuple[float, float, float, float], size: tuple[int, int]) -> tuple[int, int, int, int]:
    """Relative ``(x0, y0, x1, y1)`` -> half-open pixel interval ``(c0, r0, c1, r1)`` at ``size`` (H, W),
    by scoring's pixel-centre rule."""
    px = pixel_boxes(np.asarray(rect, np.float64), (float(size[1]), float(size[0])), size)
    return tuple(int(v) for v in px)  # type: ignore[return-value]


def rect_mask(px: tuple[int, int, int, int], size: tuple[int, int]) -> np.ndarray:
    """(H, W) bool of the pixel rectangle ``(c0, r0, c1, r1)``."""
    c0, r0, c1, r1 = px
    out = np.zeros(size, bool)
    out[max(r0, 0):max(r1, 0), max(c0, 0):max(c1, 0)] = True
    return out


def place_name(rect: tuple[float, float, float, float]) -> str:
    """Plain words for where a relative rectangle sits: "bottom-right corner", "top edge", "centre"..."""
    cx, cy = (rect[0] + rect[2]) / 2, (rect[1] + rect[3]) / 2
    col = "left" if cx < 1 / 3 else "right" if cx > 2 / 3 else ""
    row = "top" if cy < 1 / 3 else "bottom" if cy > 2 / 3 else ""
    if row and col:
        return f"{row}-{col} corner"
    if row or col:
        return f"{row or col} edge"
    return "centre"


def normalised_maps(cams: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(n, h, w) native CAMs -> ((m, h, w) maps each divided by its sum, (n,) bool kept).

    All-zero and non-finite maps are left out (they say nothing about where the model looks)."""
    cams = np.asarray(cams, np.float64)
    sums = cams.reshape(len(cams), int(np.prod(cams.shape[1:]))).sum(axis=1)
    keep = np.isfinite(sums) & (sums > 0)
    return cams[keep] / sums[keep, None, None], keep


@dataclass(frozen=True)
class Atlas:
    """One label's mean normalised map and mean coverage (h, w), over ``n`` samples; ``on_object``
    = mean share of a sample's heat inside its own region, ``object_area`` = mean region share."""

    mean_map: np.ndarray
    mean_coverage: np.ndarray
    n: int
    on_object: float
    object_area: float


def atlas(maps: np.ndarray, coverages: np.ndarray) -> Atlas:
    """``maps`` (n, h, w) normalised, ``coverages`` (n, h, w) in [0, 1]."""
    return Atlas(maps.mean(axis=0), coverages.mean(axis=0), len(maps),
                 float((maps * coverages).sum(axis=(1, 2)).mean()), float(coverages.mean()))


def _knn_affinity(features: np.ndarray, neighbours: int):
    """Symmetrised binary kNN graph (A + Aᵀ)/2, sparse (n, n), itself excluded."""
    from sklearn.neighbors import NearestNeighbors

    k = min(neighbours, len(features) - 1)
    a = NearestNeighbors(n_neighbors=k).fit(features).kneighbors_graph(mode="connectivity")
    return (a + a.T) * 0.5


def laplacian_spectrum(features: np.ndarray, *, neighbours: int, count: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """The ``count`` smallest eigenvalues (ascending) of the normalised Laplacian I − D^-½AD^-½ of
    the kNN graph, with their eigenvectors (n, count). Never a dense n×n matrix beyond
    ``DENSE_EIGEN_MAX`` samples (then ``eigsh`` on D^-½AD^-½, whose largest are the smallest of L)."""
    from scipy.sparse import diags
    from scipy.sparse.linalg import eigsh

    a = _knn_affinity(features, neighbours)
    d = np.asarray(a.sum(axis=1)).ravel()
    scale = diags(1.0 / np.sqrt(np.maximum(d, 1e-12)))
    s = (scale @ a @ scale).tocsr()
    n = len(features)
    count = min(count, n)
    if n <= DENSE_EIGEN_MAX:
        values, vectors = np.linalg.eigh(np.eye(n) - s.toarray())
        return values[:count], vectors[:, :count]
    v0 = np.random.default_rng(seed).uniform(0.5, 1.5, n)
    mu, vectors = eigsh(s, k=count, which="LA", v0=v0, tol=1e-8)
    order = np.argsort(-mu)
    return 1.0 - mu[order], vectors[:, order]


def eigengap_k(eigenvalues: np.ndarray, max_k: int, null: np.ndarray | None = None) -> int:
    """The k in 1..max_k with the largest gap λ_{k+1} − λ_k (ascending eigenvalues); 1 is a valid answer.

    With ``null`` (the same spectrum of structureless data, :func:`null_features`), a k > 1 is a
    candidate only when λ_k ≤ ½ λ_k(null): its k groups are more separated than a cloud of the same
    size and marginals would be split by chance. Without that, the kNN graph of one noisy group (no
    strategy structure at all) is cut in two at about one seed in five."""
    upto = min(max_k, len(eigenvalues) - 1)
    if upto < 1:
        return 1
    gaps = np.diff(eigenvalues[: upto + 1])
    if null is not None:
        k = np.arange(1, upto + 1)
        bound = np.full(upto, np.inf)
        bound[: min(upto, len(null))] = NULL_RATIO * null[:upto]
        gaps = np.where((k == 1) | (eigenvalues[:upto] <= bound), gaps, -np.inf)
    return int(np.argmax(gaps)) + 1


def null_features(features: np.ndarray, seed: int) -> np.ndarray:
    """Each column permuted independently (seeded): the same marginals, no structure between samples."""
    rng = np.random.default_rng(seed)
    return np.stack([rng.permutation(col) for col in features.T], axis=1)


def _by_size(labels: np.ndarray) -> np.ndarray:
    """Relabel so that id 0 is the largest group (ties: the group whose first member comes first)."""
    ids = np.unique(labels)
    order = sorted(ids, key=lambda g: (-(labels == g).sum(), int(np.flatnonzero(labels == g)[0])))
    lookup = {int(g): i for i, g in enumerate(order)}
    return np.array([lookup[int(g)] for g in labels], np.int64)


def spectral_partition(features: np.ndarray, *, neighbours: int, max_strategies: int, seed: int,
                       k: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(n,) strategy ids (0 = largest) and the eigenvalues the number was chosen from.

    ``features`` (n, d): flattened normalised maps. kNN graph, normalised Laplacian, eigengap K
    (or the given ``k``), k-means (seeded, 10 starts) on the row-normalised first K eigenvectors
    (DESIGN §10)."""
    from sklearn.cluster import KMeans

    n = len(features)
    if n < 3:
        return np.zeros(n, np.int64), np.zeros(0)
    values, vectors = laplacian_spectrum(features, neighbours=neighbours, count=max_strategies + 1, seed=seed)
    if k is None:
        null, _ = laplacian_spectrum(null_features(features, seed), neighbours=neighbours, count=max_strategies + 1, seed=seed)
        k = eigengap_k(values, max_strategies, null)
    if k == 1:
        return np.zeros(n, np.int64), values
    emb = vectors[:, :k]
    emb = emb / np.maximum(np.linalg.norm(emb, axis=1, keepdims=True), 1e-12)
    labels = KMeans(n_clusters=k, n_init=10, random_state=seed).fit_predict(emb)
    return _by_size(labels), values


def stability(features: np.ndarray, labels: np.ndarray, *, neighbours: int, max_strategies: int, seed: int) -> float:
    """Mean adjusted Rand index between ``labels`` and the partitions of 5 seeded 80% subsamples into
    the same number of strategies (the stability of this partition, not of the choice of K)."""
    from sklearn.metrics import adjusted_rand_score

    n = len(features)
    size = int(round(STABILITY_FRACTION * n))
    if size < 3:
        return math.nan
    scores = []
    for r in range(STABILITY_ROUNDS):
        rows = np.sort(np.random.default_rng(seed + 1 + r).choice(n, size=size, replace=False))
        sub, _ = spectral_partition(features[rows], neighbours=neighbours, max_strategies=max_strategies, seed=seed,
                                    k=int(labels.max()) + 1)
        scores.append(adjusted_rand_score(labels[rows], sub))
    return float(np.mean(scores))


def exemplars(maps: np.ndarray, count: int) -> np.ndarray:
    """Indices of the ``count`` maps nearest (Euclidean) the group's mean map, nearest first."""
    flat = maps.reshape(len(maps), -1)
    dist = np.linalg.norm(flat - flat.mean(axis=0), axis=1)
    return np.argsort(dist, kind="stable")[:count]


@dataclass(frozen=True)
class HotSpot:
    """A strategy's off-object hot spot: ``cells`` (r0, c0, r1, c1) on the native grid, ``rect``
    relative (x0, y0, x1, y1); ``share`` = Σ of the mean map inside it, ``concentration`` = share /
    area fraction, ``off_object_share`` energy-weighted over the strategy's samples."""

    cells: tuple[int, int, int, int]
    rect: tuple[float, float, float, float]
    share: float
    concentration: float
    off_object_share: float


def hot_spot_cells(mean_map: np.ndarray, mean_coverage: np.ndarray, threshold: float) -> tuple[int, int, int, int] | None:
    """Bounding rectangle (r0, c0, r1, c1) of the 4-connected component, containing the maximum of
    O = M ⊙ (1 − C), of the cells where O ≥ ``threshold`` · max O; None when O is zero everywhere."""
    from scipy import ndimage

    off = mean_map * (1.0 - mean_coverage)
    peak = off.max()
    if not peak > 0:
        return None
    components, _ = ndimage.label(off >= threshold * peak)  # default structure: 4-connectivity
    at = np.unravel_index(np.argmax(off), off.shape)
    rows, cols = np.nonzero(components == components[at])
    return int(rows.min()), int(cols.min()), int(rows.max()) + 1, int(cols.max()) + 1


def off_object_place(mean_map: np.ndarray, mean_coverage: np.ndarray, threshold: float) -> tuple[tuple[float, float, float, float], float] | None:
    """An atlas's strongest off-object place: (its relative rectangle, the share of the atlas's heat that lies there off the
    objects); None when no heat lies off the objects (a heatmap finding names it, DESIGN §13)."""
    if mean_map.ndim != 2 or not mean_map.size:
        return None
    cells = hot_spot_cells(mean_map, mean_coverage, threshold)
    if cells is None:
        return None
    r0, c0, r1, c1 = cells
    off = mean_map * (1 - mean_coverage)
    share = float(off[r0:r1, c0:c1].sum() / mean_map.sum()) if mean_map.sum() > 0 else 0.0
    return rect_relative(cells, mean_map.shape), share


def hot_spot(maps: np.ndarray, coverages: np.ndarray, threshold: float) -> HotSpot | None:
    """``maps`` (n, h, w) normalised and ``coverages`` (n, h, w) of one strategy's samples."""
    grid = maps.shape[1:]
    cells = hot_spot_cells(maps.mean(axis=0), coverages.mean(axis=0), threshold)
    if cells is None:
        return None
    r0, c0, r1, c1 = cells
    inside = maps[:, r0:r1, c0:c1]
    share = float(inside.sum(axis=(1, 2)).mean())
    area = (r1 - r0) * (c1 - c0) / (grid[0] * grid[1])
    total = inside.sum()
    off = float((inside * (1.0 - coverages[:, r0:r1, c0:c1])).sum() / total) if total > 0 else math.nan
    return HotSpot(cells, rect_relative(cells, grid), share, share / area, off)


def overlap_share(region: np.ndarray, px: tuple[int, int, int, int]) -> float:
    """Share of the rectangle's pixels inside ``region`` (H, W) bool."""
    c0, r0, c1, r1 = px
    area = (r1 - r0) * (c1 - c0)
    return float(region[r0:r1, c0:c1].sum() / area) if area > 0 else 0.0


def _integral(mask: np.ndarray) -> np.ndarray:
    out = np.zeros((mask.shape[0] + 1, mask.shape[1] + 1), np.int64)
    np.cumsum(np.cumsum(mask, axis=0), axis=1, out=out[1:, 1:])
    return out


def _window_sums(integral: np.ndarray, r0: np.ndarray, c0: np.ndarray, h: int, w: int) -> np.ndarray:
    return integral[r0 + h, c0 + w] - integral[r0, c0 + w] - integral[r0 + h, c0] + integral[r0, c0]


def control_positions(rng: np.random.Generator, px: tuple[int, int, int, int], region: np.ndarray, *, count: int,
                      max_overlap: float, avoid: tuple[int, int, int, int] | None = None) -> list[tuple[int, int, int, int]]:
    """``count`` seeded placements of the rectangle ``px`` inside the image whose overlap with
    ``region`` is at most ``max_overlap`` of their area and that do not intersect ``avoid`` (the hot
    spot). Each takes the first of ``CONTROL_DRAWS`` uniform draws that qualifies, else the draw
    with the least overlap (region share + share inside ``avoid``)."""
    c0, r0, c1, r1 = px
    h, w = r1 - r0, c1 - c0
    size = region.shape
    area = max(h * w, 1)
    in_region = _integral(region)
    in_avoid = _integral(rect_mask(avoid, size)) if avoid is not None else None
    out = []
    for _ in range(count):
        rows = rng.integers(0, size[0] - h + 1, CONTROL_DRAWS)
        cols = rng.integers(0, size[1] - w + 1, CONTROL_DRAWS)
        reg = _window_sums(in_region, rows, cols, h, w) / area
        hit = _window_sums(in_avoid, rows, cols, h, w) / area if in_avoid is not None else np.zeros(CONTROL_DRAWS)
        ok = np.flatnonzero((reg <= max_overlap) & (hit == 0))
        pick = int(ok[0]) if ok.size else int(np.argmin(reg + hit))
        out.append((int(cols[pick]), int(rows[pick]), int(cols[pick]) + w, int(rows[pick]) + h))
    return out


def edited_area(px: tuple[int, int, int, int], size: tuple[int, int], protect: np.ndarray | None = None) -> np.ndarray:
    """(H, W) bool: the rectangle's pixels, less the ``protect`` region (the sample's own object):
    the tests move or remove what lies off the object, never the object itself."""
    area = rect_mask(px, size)
    return area & ~protect if protect is not None else area


def blank(image: np.ndarray, px: tuple[int, int, int, int], fill: str, protect: np.ndarray | None = None) -> np.ndarray:
    """The image (H, W, 3, 0-255) with the rectangle's pixels (less ``protect``) replaced by the
    interventions' fill (``mean``: mean colour of the pixels kept; ``gray``: 127.5)."""
    inside = edited_area(px, image.shape[:2], protect)
    out = np.array(image, np.float32, copy=True)
    out[inside] = fill_colour(np.asarray(image, np.float64), ~inside, fill).astype(np.float32)
    return out


def paste(recipient: np.ndarray, donor: np.ndarray, px: tuple[int, int, int, int], protect: np.ndarray | None = None) -> np.ndarray:
    """The recipient with the donor's pixels inside the rectangle (same place), less ``protect``
    (the donor's object: its pixels stay the recipient's)."""
    inside = edited_area(px, recipient.shape[:2], protect)
    out = np.array(recipient, np.float32, copy=True)
    out[inside] = donor[inside]
    return out
