"""Config validation: every error names the file, the key path, what was expected and what was found."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeline.explain.cams import METHODS
from pipeline.config import CAM_METHODS, load_config, resolved_yaml
from pipeline.errors import ConfigError

VALID = """
name: t1
model:
  path: m.keras
dataset:
  format: coco
  annotations: ann.json
  images: imgs
gate:
  - {metric: accuracy, min: 0.9}
  - {metric: mean_focus_score, min: 0.3}
  - {metric: class_mean_energy_in_box, min: 0.4}
"""


def _error(write_config, text: str) -> str:
    path = write_config(text)
    with pytest.raises(ConfigError) as exc:
        load_config(path)
    message = str(exc.value)
    assert str(path) in message
    return message


def test_valid_config_resolves_paths_relative_to_the_config_and_fills_defaults(files, write_config, monkeypatch):
    monkeypatch.chdir("/")
    cfg = load_config(write_config(VALID))
    assert cfg.model.path == files / "m.keras"
    assert cfg.dataset.images == files / "imgs"
    assert cfg.explain.batch_size == 32 and cfg.explain.target == "predicted"
    assert cfg.scoring.focus_metric == "focus_score" and cfg.scoring.focus_min == 0.2
    assert [r.describe() for r in cfg.gate] == ["accuracy >= 0.9", "mean_focus_score >= 0.3", "class_mean_energy_in_box >= 0.4"]
    assert cfg.gate[2].per_class and cfg.gate[2].aggregate == "mean_energy_in_box"
    assert cfg.report.output_dir is None and cfg.report.gallery_size == 48
    assert cfg.resolved["explain"]["batch_size"] == 32
    assert "  batch_size: 32\n" in resolved_yaml(cfg) and "  focus_min: 0.2\n" in resolved_yaml(cfg)


def test_unknown_key_suggests_the_close_one(files, write_config):
    msg = _error(write_config, VALID.replace("  images: imgs", "  images: imgs\n  limt: 3"))
    assert "dataset.limt: unknown key (did you mean 'limit'?)" in msg


def test_a_retired_key_names_its_replacement(files, write_config):
    # DESIGN §3 still lists trust.min_agreement; the check it set became heatmap_confirmation (trust.min_confirmed)
    msg = _error(write_config, VALID + "trust: {min_agreement: 0.5}\n")
    assert "trust.min_agreement: expected trust.min_confirmed" in msg and "retired" in msg and msg.endswith("found 0.5")


def test_unknown_top_level_key(files, write_config):
    msg = _error(write_config, VALID + "explian: {}\n")
    assert "explian: unknown key (did you mean 'explain'?)" in msg


def test_wrong_type_names_expected_and_found(files, write_config):
    msg = _error(write_config, VALID + "explain: {batch_size: lots}\n")
    assert "explain.batch_size: expected an integer >= 1, found 'lots'" in msg


def test_out_of_range(files, write_config):
    msg = _error(write_config, VALID + "scoring: {focus_metric: energy_in_box, focus_min: 1.5}\n")
    assert "scoring.focus_min: expected a number between 0 and 1, found 1.5" in msg


def test_gate_rule_key_path_and_value(files, write_config):
    msg = _error(write_config, VALID.replace("{metric: class_mean_energy_in_box, min: 0.4}", "{metric: class_mean_energy_in_box, min: high}"))
    assert "gate[2].min: expected a number, found 'high'" in msg


def test_gate_rule_unknown_metric_suggests(files, write_config):
    msg = _error(write_config, VALID.replace("metric: accuracy,", "metric: acuracy,"))
    assert "gate[0].metric:" in msg and "did you mean 'accuracy'" in msg


def test_gate_rule_needs_exactly_one_threshold(files, write_config):
    msg = _error(write_config, VALID.replace("{metric: accuracy, min: 0.9}", "{metric: accuracy, min: 0.9, max: 1.0}"))
    assert "gate[0]: expected exactly one of min, max, max_drop, max_rise, found 2 (min, max)" in msg


def test_empty_gate_is_an_error(files, write_config):
    text = VALID.split("gate:")[0] + "gate: []\n"
    assert "gate: expected a non-empty list" in _error(write_config, text)


def test_missing_file(files, write_config):
    msg = _error(write_config, VALID.replace("m.keras", "missing.keras"))
    assert (f"model.path: expected an existing model file (.keras, .h5, .hdf5) or Keras 2 SavedModel folder at {files / 'missing.keras'}, "
            "found nothing there") in msg


def test_missing_required_key(files, write_config):
    msg = _error(write_config, VALID.replace("  format: coco\n", ""))
    assert "dataset.format: expected a value (this key is required), found nothing" in msg


def test_bad_choice_suggests(files, write_config):
    msg = _error(write_config, VALID + "explain: {target: predicted, method: gradcm}\n")
    assert "explain.method: expected one of gradcam, gradcam++, hirescam, layercam (did you mean 'gradcam'?), found 'gradcm'" in msg


def test_yaml_syntax_error_has_line(files, write_config):
    msg = _error(write_config, "name: [unclosed\n")
    assert "expected valid YAML" in msg and "line" in msg


def test_missing_config_file(tmp_path):
    with pytest.raises(ConfigError, match="expected a YAML config file, found nothing there"):
        load_config(tmp_path / "nope.yaml")


def test_registry_and_config_agree_on_methods():
    assert set(CAM_METHODS) == set(METHODS)


def test_bundled_configs_are_valid():
    root = Path(__file__).resolve().parents[2]
    for name in ("demo.yaml", "demo_shortcut.yaml"):
        cfg = load_config(root / "configs" / name)
        assert cfg.gate


def test_a_key_given_twice_is_an_error_naming_the_line(write_config):
    msg = _error(write_config, VALID + "seed: 1\nseed: 2\n")
    assert "key 'seed' appears twice in one mapping" in msg and "line" in msg


def _alias_bomb(levels: int, fan: int = 10) -> str:
    lines = ["a0: &a0 [x]"]
    for i in range(1, levels + 1):
        lines.append(f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * fan) + "]")
    return "\n".join(lines) + "\n"


def test_an_alias_bomb_is_refused_quickly_with_a_reason(write_config):
    import time

    # eight levels of ten aliases: 10^8 values once expanded; the name key points at the bomb
    text = _alias_bomb(8).replace("a0: &a0", "x0: &a0") + VALID.replace("name: t1", "name: *a8")
    start = time.perf_counter()
    msg = _error(write_config, text)
    assert time.perf_counter() - start < 5.0  # expanded, the bomb would take minutes: a bound against that, not a speed test
    assert "expected a config of at most 10,000 YAML values with its aliases expanded" in msg


def test_anchors_for_reuse_still_work(files, write_config):
    text = VALID.replace("gate:\n", "gate: &shared\n") + "report: {gallery_size: 4}\n"
    assert load_config(write_config(text)).gate[0].metric == "accuracy"


def test_a_found_value_is_truncated_before_it_is_rendered(write_config):
    huge = "[" + ", ".join(str(i) for i in range(5000)) + "]"
    msg = _error(write_config, VALID.replace("name: t1", f"name: {huge}"))
    assert "name: expected a non-empty string, found a list [0, 1, 2, 3, ...]" in msg and len(msg) < 400


def test_a_key_with_a_newline_is_escaped_in_a_one_line_message(files, write_config):
    msg = _error(write_config, VALID + 'scoring: {"bad\\nkey": 1}\n')
    assert "\n" not in msg and "scoring.'bad\\nkey': unknown key" in msg


def test_a_tilde_path_for_an_unknown_user_is_a_config_error(files, write_config):
    # found by the property test: Path.expanduser raises RuntimeError for "~name" with no such user
    msg = _error(write_config, VALID + "baseline: ~no_such_user_here/summary.json\n")
    assert "baseline: expected a path (a leading ~ must name an existing user's home), found '~no_such_user_here/summary.json'" in msg

    with pytest.raises(ConfigError, match="expected a YAML config file, found a ~ path naming no user of this machine"):
        load_config("~no_such_user_here/audit.yaml")


def test_strategies_keys_are_checked_and_their_aggregates_need_the_stage(files, write_config):
    cfg = load_config(write_config(VALID + "  - {metric: confirmed_shortcuts, max: 0}\n  - {metric: class_max_hotspot_dependence, max: 0.3}\n"))
    assert cfg.strategies.enabled and cfg.strategies.neighbours == 10 and cfg.strategies.interval == 0.9
    message = _error(write_config, VALID + "strategies: {min_off_object: 1.5}\n")
    assert "strategies.min_off_object" in message and "between 0 and 1" in message and "1.5" in message
    message = _error(write_config, VALID + "strategies: {neighbors: 5}\n")
    assert "strategies.neighbors" in message and "did you mean 'neighbours'" in message
    message = _error(write_config, VALID + "  - {metric: confirmed_shortcuts, max: 0}\nstrategies: {enabled: false}\n")
    assert "gate[3].metric" in message and "strategies.enabled is false" in message


def test_gate_bound_and_statistics_are_checked(files, write_config):
    cfg = load_config(write_config(VALID.replace("{metric: accuracy, min: 0.9}", "{metric: accuracy, min: 0.9, bound: lower}")
                                   + "statistics: {interval: 0.95, resamples: 500}\n"))
    assert cfg.gate[0].bound == "lower" and cfg.gate[1].bound == "point"
    assert cfg.statistics.interval == 0.95 and cfg.statistics.resamples == 500 and cfg.statistics.min_samples == 30
    message = _error(write_config, VALID.replace("{metric: accuracy, min: 0.9}", "{metric: accuracy, min: 0.9, bound: upper}"))
    assert "gate[0].bound" in message and "point or lower" in message and "'upper'" in message
    message = _error(write_config, VALID + "  - {metric: explanation_kappa, min: 0.2, bound: lower}\n")
    assert "gate[3].bound" in message and "explanation_kappa has no interval" in message
    message = _error(write_config, VALID + "evidence: {removal_region: shape}\n")
    assert "evidence.removal_region" in message and "box, mask, dilated" in message
    message = _error(write_config, VALID + "trust: {min_agreement: 0.5}\n")
    assert "trust.min_agreement: expected trust.min_confirmed" in message


def test_probes_keys_are_checked_and_their_aggregates_need_the_stage(files, write_config):
    from PIL import Image

    from pipeline.config import PROBE_KINDS
    from pipeline.probes.artifacts import BUILTIN

    assert PROBE_KINDS == BUILTIN
    Image.new("RGBA", (20, 8), (255, 0, 0, 128)).save(files / "logo.png")
    (files / "not-an-image.png").write_text("hello")
    cfg = load_config(write_config(VALID + "  - {metric: probes_fooled, max: 0}\n  - {metric: class_background_gap, max: 0.3}\n"
                                   "probes: {artifacts: [stamp], overlays: [{name: vendor, path: logo.png, at: [0.5, 0.8]}]}\n"))
    assert cfg.probes.enabled and cfg.probes.samples == 64 and cfg.probes.artifacts == ("stamp",)
    (logo,) = cfg.probes.overlays
    assert logo.name == "vendor" and logo.path == files / "logo.png" and logo.size == 0.25 and logo.at == (0.5, 0.8)
    assert load_config(write_config(VALID)).probes.artifacts == ("watermark", "stamp", "noise", "frame")
    message = _error(write_config, VALID + "probes: {artifacts: [watermark, sticker]}\n")
    assert "probes.artifacts[1]" in message and "watermark, stamp, noise, frame" in message and "'sticker'" in message
    message = _error(write_config, VALID + "probes: {places: [corners, corners]}\n")
    assert "probes.places" in message and "duplicates ['corners']" in message
    message = _error(write_config, VALID + "probes: {overlays: [{name: v, path: not-an-image.png}]}\n")
    assert "probes.overlays[0].path" in message and "an image file" in message and "not-an-image.png" in message
    message = _error(write_config, VALID + "probes: {overlays: [{name: v, path: logo.png, at: [1.2, 0]}]}\n")
    assert "probes.overlays[0].at" in message and "[x, y]" in message
    message = _error(write_config, VALID + "probes: {overlays: [{name: frame, path: logo.png}]}\n")
    assert "probes.overlays[0].name" in message and "not a built-in kind" in message
    message = _error(write_config, VALID + "probes: {overlays: [{path: logo.png}]}\n")
    assert "probes.overlays[0].name" in message and "required" in message
    message = _error(write_config, VALID + "  - {metric: probes_fooled, max: 0}\nprobes: {enabled: false}\n")
    assert "gate[3].metric" in message and "probes.enabled is false" in message and "probes_fooled" in message
    message = _error(write_config, VALID + "  - {metric: background_gap, max: 0.2}\nprobes: {background_swap: false}\n")
    assert "gate[3].metric" in message and "probes.background_swap is false" in message
    message = _error(write_config, VALID + "  - {metric: max_probe_effect, max: 0.2, bound: upper}\n")
    assert "gate[3].bound" in message and "max_probe_effect has no interval" in message
