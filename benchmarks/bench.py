"""make bench: audit throughput against a bare forward pass and a per-image reference, memory, report cost.

    python benchmarks/bench.py [--n 320] [--models demo,resnet50,mobilenetv2] [--quick]

For each model, on the same synthetic JPEGs (generated into a temp folder) and in one process:

(a) bare compiled forward pass: the same tf.data input pipeline (decode, resize, preprocess,
    prefetch) feeding ``model(x, training=False)`` in a ``tf.function``: what plain evaluation costs;
(b) the full audit hot path: ``pipeline.run.audit`` (load, Grad-CAM, score, stream samples.csv and
    heatmaps), steady state after the first batch (which includes tracing), interventions off;
(b+iv) the same with interventions on (two more forward passes per sample: target >= 0.9 x (a) / 3);
(b+cmp) the same with ``explain.compare_method: layercam`` (target: costs <= 5% of (b));
(c) a per-image reference loop equivalent to the Keras Grad-CAM example (PIL decode, one eager
    gradient-model call per image, host-side upsampling and scoring);
and (b) again with ``explain.jit_compile: true`` (XLA).

Then peak memory (max RSS of a child process) of the audit at N = 500 and N = 2,000 on the demo
CNN, the strategies stage's share of the audit time and its memory at N = 2,000 and 10,000
(``--only-strategies`` runs just those rows), the probes stage's cost (DESIGN §11: on the 300-image
demo with its config's probes and with the defaults, against the audit without them; on ResNet50 and
MobileNetV2 the default probes' passes and seconds, and the property probes' (DESIGN §15) beside them; ``--only-probes``
runs just those rows), and the
report's render time and size for a 10,000-sample audit. Prints a table; the figures
with machine and date go in benchmarks/RESULTS.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
from PIL import Image, ImageDraw  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def make_dataset(folder: Path, n: int, size: tuple[int, int], n_classes: int, seed: int = 0) -> Path:
    """n JPEGs (random background, one filled ellipse) + COCO annotations; returns the annotations path."""
    rng = np.random.default_rng(seed)
    images_dir = folder / "images"
    images_dir.mkdir(parents=True, exist_ok=True)
    images, anns = [], []
    for i in range(n):
        w, h = int(size[1] * rng.uniform(1.0, 1.5)), int(size[0] * rng.uniform(1.0, 1.5))
        arr = rng.integers(0, 256, size=(h // 8, w // 8, 3), dtype=np.uint8)
        img = Image.fromarray(arr).resize((w, h), Image.BILINEAR)
        x0, y0 = int(rng.integers(0, w // 2)), int(rng.integers(0, h // 2))
        x1, y1 = x0 + int(rng.integers(w // 8, w // 2)), y0 + int(rng.integers(h // 8, h // 2))
        ImageDraw.Draw(img).ellipse([x0, y0, x1 - 1, y1 - 1], fill=tuple(int(v) for v in rng.integers(0, 256, 3)))
        name = f"img_{i:06d}.jpg"
        img.save(images_dir / name, quality=90)
        images.append({"id": i + 1, "file_name": name, "width": w, "height": h})
        anns.append({"id": i + 1, "image_id": i + 1, "category_id": 1 + i % min(n_classes, 3), "bbox": [x0, y0, x1 - x0, y1 - y0]})
    cats = [{"id": k + 1, "name": f"class_{k:04d}"} for k in range(n_classes)]
    path = folder / "annotations.json"
    path.write_text(json.dumps({"images": images, "annotations": anns, "categories": cats}))
    return path


def write_config(folder: Path, name: str, model: Path, ann: Path, preprocessing: str, batch_size: int, gallery: int = 48,
                 jit: bool = False, interventions: bool = False, compare: str | None = None, engine: str = "local",
                 strategies: bool = False) -> Path:
    """(b) runs with interventions off and no compare method (the bare Grad-CAM audit); the trust
    checks' randomisation, the preprocessing check, the strategies and the probes stages are off (they run
    before or after the loop: fixed costs, measured in their own rows), unless asked for."""
    cfg = folder / f"{name}.yaml"
    cfg.write_text(
        f"""name: {name}
model: {{path: {model}, preprocessing: {preprocessing}, check_preprocessing: false}}
dataset: {{format: coco, annotations: {ann}, images: {ann.parent / 'images'}}}
explain: {{batch_size: {batch_size}, jit_compile: {str(jit).lower()}, compare_method: {compare or 'null'}}}
evidence: {{interventions: {str(interventions).lower()}}}
trust: {{randomisation: false}}
strategies: {{enabled: {str(strategies).lower()}}}
probes: {{enabled: false}}
engine: {{kind: {engine}, workers: 1, cpus_per_worker: 2}}
gate:
  - {{metric: accuracy, min: 0.0}}
report: {{output_dir: {folder / ('out_' + name)}, gallery_size: {gallery}}}
"""
    )
    return cfg


def build_model(kind: str, folder: Path) -> tuple[Path, str, int]:
    """(saved model path, preprocessing, n_classes)."""
    import keras

    keras.utils.set_random_seed(0)
    if kind == "demo":
        return ROOT / "data_samples" / "shapes" / "model_good.keras", "scale_0_1", 3
    if kind == "resnet50":
        model = keras.applications.ResNet50(weights=None, input_shape=(224, 224, 3))
        pre = "imagenet_caffe"
    elif kind == "mobilenetv2":
        model = keras.applications.MobileNetV2(weights=None, input_shape=(224, 224, 3))
        pre = "scale_-1_1"
    else:
        raise SystemExit(f"unknown model {kind}")
    path = folder / f"{kind}.keras"
    model.save(path)
    return path, pre, int(model.outputs[0].shape[-1])


def forward_rate(cfg_path: Path) -> float:
    """(a): the audit's own input pipeline feeding a compiled forward pass; steady-state images/s."""
    import tensorflow as tf

    from pipeline.config import load_config
    from pipeline.data.batches import sample_batches
    from pipeline.prepare.stage import prepare

    cfg = load_config(cfg_path)
    prep = prepare(cfg)
    usable = [s for s in prep.samples if s.skip_reason is None]
    model = prep.model.model
    forward = tf.function(lambda x: model(x, training=False), reduce_retracing=True)
    batches = sample_batches(usable, prep.model.input, cfg.explain.batch_size)
    t_first, count = None, 0
    for rows, images, _raw, _ in batches:
        forward(images).numpy()
        if t_first is None:
            t_first = time.perf_counter()
        else:
            count += int((rows.numpy() >= 0).sum())
    return count / (time.perf_counter() - t_first)


def audit_rate(cfg_path: Path) -> tuple[float, dict]:
    """(b): the full audit; steady-state images/s after the first batch, plus its timings."""
    from pipeline.config import load_config
    from pipeline.run import audit

    result = audit(load_config(cfg_path), progress=False)
    return float(result.summary["provenance"]["steady_samples_per_second"]), result.timings


def reference_rate(cfg_path: Path, n: int) -> float:
    """(c): the Keras example's algorithm, one image per eager call, host-side upsample + score."""
    import tensorflow as tf

    from pipeline.config import load_config
    from pipeline.data.batches import preprocessing_fn
    from pipeline.data.images import decode_rgb
    from pipeline.prepare.stage import prepare

    cfg = load_config(cfg_path)
    prep = prepare(cfg)
    am = prep.model
    prep_fn = preprocessing_fn(cfg.model.preprocessing)
    # The example builds one grad model from the (softmax-free) layer graph and calls it per image.
    grad_model = am.cam_model
    samples = [s for s in prep.samples if s.skip_reason is None][:n]
    start = None
    for i, s in enumerate(samples):
        img = tf.image.resize(decode_rgb(s.path).astype(np.float32), am.input_size, method="bilinear")
        x = prep_fn(img)[None]
        with tf.GradientTape() as tape:
            conv, preds = grad_model(x)
            idx = tf.argmax(preds[0])
            channel = preds[:, idx]
        grads = tape.gradient(channel, conv)
        pooled = tf.reduce_mean(grads, axis=(0, 1, 2))
        heat = tf.maximum(conv[0] @ pooled[..., None], 0)[..., 0]
        up = tf.image.resize(heat[..., None], am.input_size, method="bilinear").numpy()[..., 0]
        box = prep.boxes.pixels[s.row, 0]
        _ = up[box[1]:box[3], box[0]:box[2]].sum() / max(up.sum(), 1e-12)
        if i == 0:
            start = time.perf_counter()  # the first call pays for tracing; time the rest
    return (len(samples) - 1) / (time.perf_counter() - start)


def driver_rate(n: int, shape: tuple[int, int], batch: int = 32) -> float:
    """The driver's own cost per sample, measured alone: BatchResults (synthetic, arriving out of
    order in pairs) through the collector into samples.csv and the heatmap memmap."""
    from pipeline.explain.collector import Collector
    from pipeline.data.labels import label_space
    from pipeline.explain.columns import active, computed
    from pipeline.data.samples import Sample
    from pipeline.explain.writers import HeatmapWriter, SamplesWriter
    from pipeline.explain.worker import BatchResult

    groups = ("evidence",)
    rng = np.random.default_rng(0)
    samples = [Sample(i, f"img_{i}.jpg", f"img_{i}.jpg", None, ("a",), -1, (), (64, 64), None) for i in range(n)]
    results = []
    for start in range(0, n, batch):
        rows = np.arange(start, min(start + batch, n))
        values = {}
        for c in computed(groups):
            if c.kind == "text":
                values[c.name] = np.array(["ok"] * len(rows), dtype=object) if c.name == "flag" else np.full(len(rows), "", dtype=object)
            elif c.kind in ("class", "label"):
                values[c.name] = rng.integers(0, 3, len(rows))
            else:
                values[c.name] = rng.random(len(rows))
        results.append(BatchResult(rows, values, rng.random((len(rows), *shape)).astype(np.float32), np.zeros(len(rows), np.int64)))
    for i in range(0, len(results) - 1, 2):  # out of order, as a Ray pool delivers them
        results[i], results[i + 1] = results[i + 1], results[i]
    with tempfile.TemporaryDirectory() as tmp:
        csv_out = SamplesWriter(Path(tmp) / "samples.csv", active(groups))
        heat = HeatmapWriter(Path(tmp), n, shape)
        collector = Collector(samples, label_space(("a", "b", "c"), ()), groups, csv_out, heat)
        start = time.perf_counter()
        for r in results:
            collector.add(r)
        collector.finish()
        csv_out.close()
        seconds = time.perf_counter() - start
        heat.close()
    return n / seconds


_CHILD = """
import sys
from pipeline.cli import main
code = main(["audit", sys.argv[1], "--no-progress"])
hwm = [line for line in open("/proc/self/status") if line.startswith("VmHWM:")][0].split()[1]
print(f"VmHWM {hwm} exit {code}")
"""


def peak_rss_mb(cfg_path: Path) -> float:
    """Peak resident memory of a fresh audit process (its own VmHWM: ru_maxrss of a child would
    include the pages it shares with this big parent at fork time)."""
    out = subprocess.run([sys.executable, "-c", _CHILD, str(cfg_path)], cwd=ROOT, capture_output=True, text=True,
                         env={**os.environ, "PYTHONPATH": str(ROOT)}, check=False)
    line = [ln for ln in out.stdout.splitlines() if ln.startswith("VmHWM")]
    if not line or line[0].split()[-1] not in ("0", "1", "3"):  # a verdict (3: random labels are at chance); 2 is a failure
        raise SystemExit(f"audit of {cfg_path} failed: {out.stderr[-2000:]}")
    return int(line[0].split()[1]) / 1024


PASSES = 4
"""Forward passes per sample with interventions on: Grad-CAM's, object removed, object only, blank control."""


def _spread(num: list[float], den: list[float]) -> str:
    """Per-round ratios num[r] / den[r] (measured side by side in one round): median, best, and range."""
    ratios = sorted(x / y for x, y in zip(num, den))
    return (f"median {float(np.median(ratios)):.2f}, best {ratios[-1]:.2f}, range {ratios[0]:.2f}–{ratios[-1]:.2f} "
            f"over {len(ratios)} rounds")


def fixed_costs(kind: str, folder: Path, model: Path, pre: str, n_classes: int, n: int, batch_size: int) -> None:
    """One default audit (interventions, randomisation check and strategies on) of ``n`` fresh images:
    its wall time and the fixed costs that dominate small audits, from the audit's own timings."""
    from pipeline.config import load_config
    from pipeline.run import audit

    size = (64, 64) if kind == "demo" else (224, 224)
    where = folder / f"fixed{n}"
    ann = make_dataset(where / "data", n, size, n_classes, seed=n + 5)
    cfg = where / "c.yaml"
    cfg.write_text(f"""name: fixed{n}
model: {{path: {model}, preprocessing: {pre}}}
dataset: {{format: coco, annotations: {ann}, images: {ann.parent / 'images'}}}
explain: {{batch_size: {batch_size}}}
gate:
  - {{metric: accuracy, min: 0.0}}
report: {{output_dir: {where / 'out'}}}
""")
    t = time.perf_counter()
    result = audit(load_config(cfg), progress=False)
    wall = time.perf_counter() - t
    p = result.summary["provenance"]
    steady = p["steady_samples_per_second"]
    batch_steady = min(batch_size, n) / steady if steady else float("nan")
    r = p.get("randomisation") or {}
    check = p.get("preprocessing_check") or {}
    print(f"{kind:12s} default audit of {n} images: wall {wall:.1f} s = start-up {p['startup_seconds']:.1f} s (config, model, "
          f"dataset, and the preprocessing check: {check.get('seconds')} s for {check.get('passes')} forward passes) + explain {p['explain_seconds']:.1f} s (first batch {p['first_batch_seconds']:.1f} s, of which tracing "
          f"~{p['first_batch_seconds'] - batch_steady:.1f} s; steady {steady} img/s) + trust {p['trust_seconds']:.1f} s "
          f"(randomisation: setup {r.get('setup')} s, first draw {r.get('first_draw')} s, then {r.get('per_draw')} s a draw over "
          f"{r.get('samples')} samples = {(r.get('per_draw') or float('nan')) / max(r.get('samples') or 1, 1) * 1000:.0f} ms a sample-draw; "
          f"re-initialising {r.get('reinitialise')} s in all) + strategies {p['strategies_seconds']:.1f} s + probes "
          f"{p.get('probes_seconds') or 0:.1f} s ({(result.summary.get('probes') or {}).get('passes')}) + properties "
          f"{p.get('properties_seconds') or 0:.1f} s + report "
          f"{result.timings['report_seconds']:.1f} s", flush=True)


def balanced_resnet(folder: Path, ann: Path, n_classes: int = 4, batch_size: int = 32) -> Path:
    """A ResNet50 at 224 x 224 with random weights and ``n_classes`` outputs whose last bias is set so its answers split
    the images evenly, and the annotations relabelled with its answers: an accurate model whose classes split, as the
    whole-audit row asks (a random head answers one class for most images)."""
    import keras
    import tensorflow as tf

    from pipeline.data.batches import preprocessing_fn

    keras.utils.set_random_seed(0)
    model = keras.applications.ResNet50(weights=None, input_shape=(224, 224, 3), classes=n_classes, classifier_activation=None)
    doc = json.loads(ann.read_text())
    pre = preprocessing_fn("imagenet_caffe")
    logits = []
    for start in range(0, len(doc["images"]), batch_size):
        batch = [np.asarray(Image.open(ann.parent / "images" / im["file_name"]).convert("RGB").resize((224, 224), Image.BILINEAR),
                            np.float32) for im in doc["images"][start:start + batch_size]]
        logits.append(model(pre(tf.constant(np.stack(batch))), training=False).numpy())
    logits = np.concatenate(logits)
    dense = model.layers[-1]
    kernel, bias = dense.get_weights()
    bias = bias - logits.mean(axis=0)
    step = float(np.std(logits))
    for _ in range(2000):  # nudge each class's bias, in shrinking steps, until the answers split evenly (within 2%)
        shares = np.bincount((logits + bias).argmax(axis=1), minlength=n_classes) / len(logits)
        if np.abs(shares - 1 / n_classes).max() < 0.02:
            break
        bias = bias - step * (shares - 1 / n_classes)
        step *= 0.995
    dense.set_weights([kernel, bias])
    answers = (logits + bias).argmax(axis=1)
    for a, label in zip(doc["annotations"], answers):
        a["category_id"] = int(label) + 1
    doc["categories"] = [{"id": k + 1, "name": f"class_{k}"} for k in range(n_classes)]
    ann.write_text(json.dumps(doc))
    final = keras.Model(model.input, keras.layers.Activation("softmax", name="probabilities")(model.output))
    path = folder / "resnet50_balanced.keras"
    final.save(path)
    return path


def bare_forwards(model_path: Path, ann: Path, batch_size: int, passes: int = 4) -> float:
    """Seconds for ``passes`` compiled forward passes over the audit's images, decoded, resized and preprocessed once
    beforehand (preloaded): the floor a whole audit is measured against."""
    import keras
    import tensorflow as tf

    from pipeline.data.batches import preprocessing_fn

    model = keras.models.load_model(model_path, compile=False)
    doc = json.loads(ann.read_text())
    pre = preprocessing_fn("imagenet_caffe")
    images = [pre(tf.constant(np.stack([np.asarray(Image.open(ann.parent / "images" / im["file_name"]).convert("RGB")
                                                   .resize((224, 224), Image.BILINEAR), np.float32)
                                        for im in doc["images"][start:start + batch_size]])))
              for start in range(0, len(doc["images"]), batch_size)]
    forward = tf.function(lambda x: model(x, training=False), reduce_retracing=True)
    forward(images[0])  # traced before the clock starts
    t = time.perf_counter()
    for _ in range(passes):
        for batch in images:
            forward(batch).numpy()
    return time.perf_counter() - t


def whole_audit(tmp: Path, sizes: tuple[int, ...], batch_size: int) -> None:
    """The whole-audit row (DESIGN §18): a ResNet50 at 224 x 224 (random weights, labels its own balanced answers, four
    classes), the default config, ``python -m pipeline audit`` timed as a whole process against four bare forward passes
    over the same preloaded images, side by side in one run; the seconds and passes by stage from summary.json."""
    for n in sizes:
        folder = tmp / f"whole{n}"
        ann = make_dataset(folder / "data", n, (224, 224), 4, seed=n + 11)
        model = balanced_resnet(folder, ann, batch_size=batch_size)
        cfg = folder / "audit.yaml"
        cfg.write_text(f"""name: whole{n}
model: {{path: {model}, preprocessing: imagenet_caffe}}
dataset: {{format: coco, annotations: {ann}, images: {ann.parent / 'images'}}}
gate:
  - {{metric: accuracy, min: 0.9}}
  - {{metric: mean_focus_score, min: 0.3}}
  - {{metric: right_for_wrong_reason_rate, max: 0.05}}
  - {{metric: class_mean_energy_in_box, min: 0.4}}
report: {{output_dir: {folder / 'out'}}}
""")
        bare = bare_forwards(model, ann, batch_size)
        t = time.perf_counter()
        done = subprocess.run([sys.executable, "-m", "pipeline", "audit", str(cfg), "--no-progress"], cwd=ROOT, capture_output=True,
                              text=True)
        wall = time.perf_counter() - t
        if done.returncode not in (0, 1, 3):
            raise SystemExit(f"whole audit of {n} images failed: {done.stderr[-2000:]}")
        p = json.loads((folder / "out" / "summary.json").read_text())["provenance"]
        stages = ("explain", "trust", "strategies", "probes", "properties")
        after = sum(p.get(f"{s}_seconds") or 0.0 for s in stages[1:])
        passes = p.get("passes") or {}
        by_stage = ", ".join(f"{s} {p.get(f'{s}_seconds') or 0:.0f} s ({(passes.get(s) or {}).get('forward', 0):,} forward"
                             f" + {(passes.get(s) or {}).get('gradcam', 0):,} Grad-CAM)" for s in stages)
        check = passes.get("preprocessing_check") or {}
        print(f"whole audit, ResNet50 224x224, {n} images, default config: wall {wall:.0f} s, four bare forwards {bare:.0f} s, "
              f"ratio {wall / bare:.2f}; explain loop {p['explain_seconds'] / bare:.2f} x four forwards; the stages after the loop "
              f"{after:.0f} s = {after / bare:.2f} x; start-up {p['startup_seconds']:.0f} s (preprocessing check "
              f"{check.get('forward', 0):,} forward); by stage: {by_stage}", flush=True)


def strategies_cost(tmp: Path, sizes: tuple[int, ...], batch_size: int) -> None:
    """The strategies stage (DESIGN §10) on the demo CNN at the defaults (interventions on; the
    randomisation check off, so the share is of the rest of the audit): its share of the audit's
    time, the clustering alone, and the audit's peak memory with the stage on and off."""
    from pipeline.strategies import analysis as st
    from pipeline.config import load_config
    from pipeline.run import audit

    model = ROOT / "data_samples" / "shapes" / "model_good.keras"
    for n in sizes:
        folder = tmp / f"strategies{n}"
        folder.mkdir()
        ann = make_dataset(folder / "data", n, (64, 64), 3, seed=n + 1)
        on = write_config(folder, f"strat{n}", model, ann, "scale_0_1", batch_size, interventions=True, strategies=True)
        off = write_config(folder, f"nostrat{n}", model, ann, "scale_0_1", batch_size, interventions=True, strategies=False)
        prov = audit(load_config(on), progress=False).summary["provenance"]
        cams = np.load(folder / f"out_strat{n}" / "heatmaps.npz")["cams"]
        maps, _ = st.normalised_maps(cams[~np.isnan(cams).any(axis=(1, 2))])
        flat = maps.reshape(len(maps), -1)
        t = time.perf_counter()
        ids, _ = st.spectral_partition(flat, neighbours=10, max_strategies=6, seed=0)
        st.stability(flat, ids, neighbours=10, max_strategies=6, seed=0)
        alone = time.perf_counter() - t
        mem_on, mem_off = peak_rss_mb(on), peak_rss_mb(off)
        print(f"strategies N={n}: stage {prov['strategies_seconds']:.1f} s of the audit's {prov['seconds']:.1f} s "
              f"({prov['strategies_seconds'] / prov['seconds']:.1%}); clustering + stability of all {len(flat)} maps as one label "
              f"{alone:.1f} s; peak memory {mem_on:.0f} MB with the stage, {mem_off:.0f} MB without", flush=True)


def _demo_variant(folder: Path, name: str, probes: str | None) -> Path:
    """configs/demo.yaml with its probes section replaced by ``probes`` ("" = the defaults; None = kept as it is)."""
    import re

    text = (ROOT / "configs" / "demo.yaml").read_text().replace("../", f"{ROOT}/")
    if probes is not None:
        text = re.sub(r"^probes:.*?(?=^trust:)", probes, text, flags=re.S | re.M)
    if "enabled: false" in (probes or ""):  # a rule on the probes' aggregates needs the stage
        text = "\n".join(line for line in text.splitlines() if "probes_fooled" not in line) + "\n"
    text = text.replace("name: demo-shapes", f"name: {name}").replace("output_dir: auto", f"output_dir: {folder / name}")
    cfg = folder / f"{name}.yaml"
    cfg.write_text(text)
    return cfg


def probes_cost_demo(tmp: Path, rounds: int) -> None:
    """The probes stage on the 300-image demo: its share of the same audit's time (the audit's own
    seconds, start to end, without interpreter start-up), for the demo config's probes (stamp, noise)
    and for the defaults (every built-in kind), in interleaved rounds with an audit without probes."""
    from pipeline.config import load_config
    from pipeline.run import audit

    folder = tmp / "probes_demo"
    folder.mkdir()
    variants = {"config": _demo_variant(folder, "p-config", None), "defaults": _demo_variant(folder, "p-defaults", ""),
                "off": _demo_variant(folder, "p-off", "probes: {enabled: false}\n")}
    got: dict[str, list[dict]] = {k: [] for k in variants}
    for _ in range(rounds):
        for key, cfg in variants.items():
            s = audit(load_config(cfg), progress=False).summary
            props = (s["probes"] or {}).get("properties") or {}
            got[key].append({"seconds": s["provenance"]["seconds"], "probes": s["provenance"]["probes_seconds"],
                             "passes": (s["probes"] or {}).get("passes"), "properties": s["provenance"].get("properties_seconds") or 0.0,
                             "property_passes": props.get("passes"),
                             "data_seconds": s["provenance"].get("properties_data_seconds")})
    off = [r["seconds"] for r in got["off"]]
    for key in ("config", "defaults"):
        runs = got[key]
        within = [r["probes"] / (r["seconds"] - r["probes"]) for r in runs]
        versus = [r["probes"] / o for r, o in zip(runs, off)]
        passes = runs[0]["passes"]
        print(f"probes on the demo ({key}): {sum(passes[k] for k in ('edits', 'controls', 'swaps'))} forward passes "
              f"({passes}) in {np.median([r['probes'] for r in runs]):.2f} s (median of {rounds}); added time / the same audit's "
              f"time without them: median {np.median(within):.2f} (range {min(within):.2f}-{max(within):.2f}); / an audit run "
              f"without probes in the same round: median {np.median(versus):.2f}; audit {np.median([r['seconds'] for r in runs]):.1f} s, "
              f"without probes {np.median(off):.1f} s", flush=True)
        pp = runs[0]["property_passes"] or {}
        forward = sum(passes[k] for k in ("edits", "controls", "swaps"))
        print(f"property probes on the demo ({key}, DESIGN §15): {pp.get('edits', 0)} forward passes and {pp.get('gradcam', 0)} "
              f"Grad-CAM passes ({pp.get('edits', 0) / max(forward, 1):.2f}x the patch probes' forward passes) in "
              f"{np.median([r['properties'] for r in runs]):.2f} s (median of {rounds}; the data side "
              f"{np.median([r['data_seconds'] or 0 for r in runs]):.2f} s of it); / the patch probes' time: "
              f"{np.median([r['properties'] / max(r['probes'], 1e-9) for r in runs]):.2f}", flush=True)


def probes_cost_model(kind: str, folder: Path, model: Path, pre: str, n_classes: int, batch_size: int, n: int = 64) -> None:
    """The default probes on ``n`` samples of a large model with random weights: each sample is taken as
    correctly classified as what the model answers on the clean image (it classifies none right, and the cost
    does not depend on the labels), so flips, and their Grad-CAM passes, come from the edits alone."""
    from dataclasses import replace

    from pipeline.probes import stage as probe_stage
    from pipeline.config import ProbesConfig, load_config
    from pipeline.conclude.stage import probe_artifacts
    from pipeline.explain.forward import stage_inputs
    from pipeline.prepare.stage import predict_samples, prepare

    where = folder / "probes"
    ann = make_dataset(where / "data", n, (224, 224), n_classes, seed=n + 9)
    cfg = load_config(write_config(where, "probes", model, ann, pre, batch_size))
    prep = predict_samples(cfg, prepare(cfg))
    rows = len(prep.samples)
    cams = np.ones((rows, *prep.model.layer_shape[:2]), np.float32)
    zeros = np.zeros(rows)
    values = {"predicted": zeros.astype(int), "correct": np.ones(rows), "focus_score": zeros, "explained_confidence": np.ones(rows),
              "flag": np.full(rows, "ok", dtype=object)}
    ev, clf = stage_inputs(cfg, prep, values, cams, zeros.astype(int))
    images = clf.images(range(rows))
    answer = np.concatenate([clf.probabilities(np.stack([images[r] for r in range(i, min(i + batch_size, rows))])).argmax(axis=1)
                             for i in range(0, rows, batch_size)])
    label = prep.space.class_label[answer]
    ev = replace(ev, explained=label, predicted=label, labels_of=[frozenset([int(x)]) for x in label])
    t = time.perf_counter()
    result = probe_stage.run_probes(ProbesConfig(), ev, clf, probe_artifacts(cfg, prep.model.input), cams=cams, fill="mean", seed=0)
    wall = time.perf_counter() - t
    forward = sum(result.passes[k] for k in ("edits", "controls", "swaps"))
    print(f"{kind:12s} default probes on {result.n_samples} samples: {wall:.1f} s for {forward} forward passes and "
          f"{result.passes['gradcam']} Grad-CAM passes ({result.passes}; no hot spots)", flush=True)
    from pipeline.properties import stage as property_stage

    t = time.perf_counter()
    props = property_stage.run_properties(ProbesConfig(), ev, clf, cams=cams, gray=False, seed=0)
    own = time.perf_counter() - t
    print(f"{kind:12s} default property probes (DESIGN §15) on {props.n_samples} samples: {own:.1f} s ({own / wall:.2f}x the patch "
          f"probes' time; the data side {props.data_seconds:.1f} s on {props.n_data} images) for {props.passes['edits']} forward passes "
          f"({props.passes['edits'] / max(forward, 1):.2f}x theirs) and {props.passes['gradcam']} Grad-CAM passes", flush=True)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--n", type=int, default=320, help="images per throughput run (default 320)")
    p.add_argument("--models", default="demo,resnet50,mobilenetv2")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--reference-n", type=int, default=48, help="images for the per-image reference loop")
    p.add_argument("--quick", action="store_true", help="small sizes, for a smoke run")
    p.add_argument("--rounds", type=int, default=3, help="interleaved rounds of every variant (per-round ratios: best and median)")
    p.add_argument("--no-ray", action="store_true", help="skip the Ray engine runs")
    p.add_argument("--variants", default="a,b,iv,cmp,ray", help="which of a,b,iv,cmp,ray to run (a and b are always run)")
    p.add_argument("--skip-extras", action="store_true", help="skip XLA, the per-image reference, memory and report runs")
    p.add_argument("--only-strategies", action="store_true", help="run only the strategies stage's cost rows")
    p.add_argument("--only-probes", action="store_true", help="run only the probes stage's cost rows")
    p.add_argument("--only-whole", action="store_true", help="run only the whole-audit row (ResNet50, 500 and 2,000 images)")
    args = p.parse_args()
    if args.quick:
        args.n, args.reference_n = 96, 8
    import tensorflow as tf

    print(f"# make bench: {platform.node()}, {os.cpu_count()} CPUs, Python {platform.python_version()}, TensorFlow {tf.__version__}, {time.strftime('%Y-%m-%d %H:%M')}")
    with tempfile.TemporaryDirectory(prefix="gradcam-bench-") as tmp:
        tmp = Path(tmp)
        if args.only_strategies:
            strategies_cost(tmp, (400, 2000) if args.quick else (2000, 10_000), args.batch_size)
            return
        if args.only_whole:
            whole_audit(tmp, (100,) if args.quick else (500, 2000), args.batch_size)
            return
        if args.only_probes:
            probes_cost_demo(tmp, 1 if args.quick else args.rounds)
            for kind in (k for k in args.models.split(",") if k != "demo"):
                (tmp / kind).mkdir()
                model, pre, n_classes = build_model(kind, tmp / kind)
                probes_cost_model(kind, tmp / kind, model, pre, n_classes, args.batch_size, 16 if args.quick else 64)
            return
        rows = []
        for kind in args.models.split(","):
            folder = tmp / kind
            folder.mkdir()
            model, pre, n_classes = build_model(kind, folder)
            size = (64, 64) if kind == "demo" else (224, 224)
            # the demo CNN takes ~10 ms a batch: give it 6x the images so the rate is not noise
            ann = make_dataset(folder / "data", args.n * (6 if kind == "demo" else 1), size, n_classes)
            cfg = write_config(folder, kind, model, ann, pre, args.batch_size)
            # A process runs its first few hundred images slower (oneDNN primitive caches, allocator,
            # thread pools), and this VM's speed drifts: warm up once, then run every variant in
            # interleaved rounds and keep the best of each, so the ratios compare like with like.
            variants = {
                "a": lambda: forward_rate(cfg),
                "b": lambda: audit_rate(cfg)[0],
                "iv": lambda: audit_rate(write_config(folder, f"{kind}_iv", model, ann, pre, args.batch_size, interventions=True))[0],
                "cmp": lambda: audit_rate(write_config(folder, f"{kind}_cmp", model, ann, pre, args.batch_size, compare="layercam"))[0],
            }
            if not args.no_ray and "ray" in args.variants:
                variants["ray"] = lambda: audit_rate(write_config(folder, f"{kind}_ray", model, ann, pre, args.batch_size, engine="ray"))[0]
            variants = {k: v for k, v in variants.items() if k in ("a", "b") or k in args.variants.split(",")}
            forward_rate(cfg)
            runs = {k: [] for k in variants}
            for _ in range(args.rounds):
                for key, fn in variants.items():
                    runs[key].append(fn())
            best = {k: max(v) for k, v in runs.items()}
            a, b = best["a"], best["b"]
            print(f"{kind:12s} (a) forward {a:8.1f} img/s  (b) audit {b:8.1f} img/s  (b)/(a) = {b / a:.2f} (best of each); "
                  f"per round {_spread(runs['b'], runs['a'])}", flush=True)
            if not args.skip_extras:
                xla, _ = audit_rate(write_config(folder, f"{kind}_xla", model, ann, pre, args.batch_size, jit=True))
                c = reference_rate(cfg, args.reference_n)
                rows.append((kind, a, b, c))
                print(f"{'':12s} (c) per-image reference {c:7.1f} img/s  (b)/(c) = {b / c:.1f}  | audit with XLA {xla:8.1f} img/s ({xla / b:.2f}x)",
                      flush=True)
            if "iv" in best:
                share = [a_r / PASSES for a_r in runs["a"]]
                print(f"{'':12s} (b+iv) interventions on {best['iv']:8.1f} img/s = {best['iv'] / (a / PASSES):.2f} x (a)/{PASSES} "
                      f"(best of each); per round {_spread(runs['iv'], share)}", flush=True)
            if "cmp" in best:
                print(f"{'':12s} (b+cmp) compare_method layercam {best['cmp']:8.1f} img/s: costs {1 - best['cmp'] / b:+.1%} of (b)", flush=True)
            if "ray" in best:
                print(f"{'':12s} ray engine, 1 worker {best['ray']:8.1f} img/s: overhead (b)/ray = {b / best['ray']:.2f}", flush=True)
            print(f"{'':12s} runs: " + "; ".join(f"{k} " + ", ".join(f"{v:.1f}" for v in r) for k, r in runs.items()), flush=True)
            if not args.skip_extras:
                fixed_costs(kind, folder, model, pre, n_classes, 64, args.batch_size)
                if kind != "demo":
                    probes_cost_model(kind, folder, model, pre, n_classes, args.batch_size)

        if args.skip_extras:
            return
        for shape in ((16, 16), (7, 7)):
            rate = driver_rate(20_000, shape)
            print(f"driver alone (collector: reorder, samples.csv rows, heatmap memmap; {shape[0]}x{shape[1]} CAMs, evidence columns): "
                  f"{rate:,.0f} samples/s", flush=True)

        mem_n = (200, 800) if args.quick else (500, 2000, 8000)
        mem = {}
        for n in mem_n:
            folder = tmp / f"mem{n}"
            folder.mkdir()
            ann = make_dataset(folder / "data", n, (64, 64), 3, seed=n)
            cfg = write_config(folder, f"mem{n}", ROOT / "data_samples" / "shapes" / "model_good.keras", ann, "scale_0_1", args.batch_size)
            mem[n] = peak_rss_mb(cfg)
        print("peak memory (demo CNN, VmHWM of the audit process): "
              + ", ".join(f"N={n}: {mem[n]:.0f} MB" for n in mem_n)
              + f"; N={mem_n[1]} / N={mem_n[0]} = {mem[mem_n[1]] / mem[mem_n[0]]:.3f}", flush=True)

        strategies_cost(tmp, (400, 2000) if args.quick else (2000, 10_000), args.batch_size)
        probes_cost_demo(tmp, 1 if args.quick else args.rounds)
        fixed_costs("demo", tmp / "demo", ROOT / "data_samples" / "shapes" / "model_good.keras", "scale_0_1", 3,
                    400 if args.quick else 2000, args.batch_size)

        whole_audit(tmp, (100,) if args.quick else (500, 2000), args.batch_size)

        n_report = 1000 if args.quick else 10_000
        folder = tmp / "report"
        folder.mkdir()
        ann = make_dataset(folder / "data", n_report, (64, 64), 3, seed=7)
        cfg = write_config(folder, "report", ROOT / "data_samples" / "shapes" / "model_good.keras", ann, "scale_0_1", 64)
        from pipeline.config import load_config
        from pipeline.run import audit

        result = audit(load_config(cfg), progress=False)
        size_mb = (result.output_dir / "report.html").stat().st_size / 1e6
        print(f"report for {n_report} samples: rendered in {result.timings['report_seconds']:.2f} s, report.html {size_mb:.2f} MB "
              f"(audit explain loop {result.timings['explain_seconds']:.1f} s)", flush=True)


if __name__ == "__main__":
    main()
