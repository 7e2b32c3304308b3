"""Checkpoints for --resume: round trip of batch results; a manifest that differs names what."""

from __future__ import annotations

import numpy as np
import pytest

from pipeline.explain.checkpoint import CheckpointStore
from pipeline.errors import AuditError
from pipeline.explain.worker import BatchResult

MANIFEST = {"config_sha256": "c1", "model_sha256": "m1", "dataset_fingerprint": "d1", "limit": None, "n_samples": 10}


def test_batches_round_trip_with_text_columns(tmp_path):
    store = CheckpointStore(tmp_path)
    store.start(MANIFEST)
    result = BatchResult(np.array([4, 5]), {"flag": np.array(["ok", "skipped"], dtype=object), "confidence": np.array([0.5, np.nan]),
                                            "predicted": np.array([2, -1])}, np.ones((2, 3, 3), np.float32), np.array([2, -1]))
    store.save(result)
    (back,) = list(store.load())
    assert back.rows.tolist() == [4, 5] and back.values["flag"].tolist() == ["ok", "skipped"] and back.values["flag"].dtype == object
    assert np.array_equal(back.values["confidence"], result.values["confidence"], equal_nan=True)
    assert np.array_equal(back.cams, result.cams) and back.target_class.tolist() == [2, -1] and store.batches_done() == 1
    assert not list(tmp_path.glob("checkpoint/*.tmp"))  # written under a temporary name, then renamed


@pytest.mark.parametrize("key,words", [("model_sha256", "the model file"), ("dataset_fingerprint", "the evaluation set"),
                                        ("config_sha256", "the config file")])
def test_a_manifest_that_differs_is_refused_naming_what(tmp_path, key, words):
    store = CheckpointStore(tmp_path)
    store.start(MANIFEST)
    with pytest.raises(AuditError) as exc:
        store.check({**MANIFEST, key: "other"}, tmp_path)
    assert f"--resume: expected the interrupted run's inputs, found a different {words}" in str(exc.value)
    store.check(dict(MANIFEST), tmp_path)  # the same inputs resume
