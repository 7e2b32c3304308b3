"""The Keras 2 demo (configs/demo_legacy.yaml): the good demo model re-saved by tf_keras as a SavedModel folder,
data_samples/shapes/model_good_keras2/, as a team on TensorFlow <= 2.15 would have it.

The same architecture is built with tf_keras (make_shapes.build_model), the Keras 3 model's weights are copied
layer by layer, and both models' outputs are checked equal on the evaluation images before saving. Needs the
[legacy] extra (tf-keras; make install installs it). Run: .venv/bin/python data_samples/make_legacy.py
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from make_shapes import build_model, training_arrays  # noqa: E402


def main() -> None:
    import keras
    import tf_keras

    good = keras.saving.load_model(HERE / "shapes" / "model_good.keras", compile=False)
    legacy = build_model(good.name, tf_keras)
    for layer in good.layers:
        if layer.get_weights():
            legacy.get_layer(layer.name).set_weights(layer.get_weights())
    images, _ = training_arrays(64, seed=123, shortcut=False)  # shapes images as the audit feeds them, in [0, 1]
    diff = np.abs(np.asarray(good(images[:64], training=False)) - np.asarray(legacy(images[:64], training=False))).max()
    if diff > 1e-5:
        raise SystemExit(f"the tf_keras copy differs from the Keras 3 model by {diff:g}")
    out = HERE / "shapes" / "model_good_keras2"
    shutil.rmtree(out, ignore_errors=True)
    legacy.save(str(out))  # a folder: tf_keras writes a SavedModel with keras_metadata.pb
    print(f"wrote {out} (max |difference| on 64 images {diff:.1g})")


if __name__ == "__main__":
    main()
