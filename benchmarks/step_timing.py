"""Time the compiled step alone on ResNet50 (weights=None), batch 32: forward 32 / 64, Grad-CAM step,
step + interventions, step + compare_method, and compare_method's host-side work.

    .venv/bin/python benchmarks/step_timing.py
"""
import os, time
os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
import numpy as np, tensorflow as tf, keras
from pipeline.explain.cams import get_method
from pipeline.explain.cams.step import make_step
from pipeline.model.cam_model import build_cam_model
keras.utils.set_random_seed(0)
m = keras.applications.ResNet50(weights=None, input_shape=(224, 224, 3))
path = [l.name for l in m.layers if len(l.output.shape) == 4][-1:]
cam, shape, _ = build_cam_model(m, path, (224, 224), source="x")
pre = lambda x: x[..., ::-1] - tf.constant((103.939, 116.779, 123.68))
x = tf.random.uniform((32, 224, 224, 3), 0, 255)
args = (pre(x), x, tf.ones((32, 1000), bool), tf.constant(np.tile([[10, 10, 100, 100]], (32, 1, 1)), tf.int32), tf.zeros((32, 1), tf.int32), tf.ones((32, 1), bool))
fwd = tf.function(lambda a: m(a, training=False))
plain = make_step(cam, get_method("gradcam"), n_classes=1000, input_size=(224, 224))
iv = make_step(cam, get_method("gradcam"), n_classes=1000, input_size=(224, 224), preprocess=pre, fill="mean")
def t(f, n=3):
    f(); best = 1e9
    for _ in range(n):
        s = time.perf_counter(); f(); best = min(best, time.perf_counter() - s)
    return best
print(f"forward 32: {t(lambda: fwd(args[0]).numpy()):.2f} s")
print(f"forward 64: {t(lambda: fwd(tf.concat([args[0], args[0]], 0)).numpy()):.2f} s")
print(f"step plain: {t(lambda: plain(*args)['cams'].numpy()):.2f} s")
print(f"step +iv:   {t(lambda: iv(*args)['cams'].numpy()):.2f} s")

# compare_method: the same step with a second CAM method, and the host-side extra work per batch
both = make_step(cam, get_method("gradcam"), n_classes=1000, input_size=(224, 224), compare=get_method("layercam"))
print(f"step + compare_method layercam: {t(lambda: both(*args)['cams'].numpy()):.2f} s")
from pipeline.evidence.checks import rank_correlation
from pipeline.explain.scoring import score
maps = both(*args)
cams2 = maps["compare_cams"].numpy()
boxes = np.tile([[[10, 10, 100, 100]]], (32, 1, 1))
s = time.perf_counter()
for _ in range(20):
    score(cams2, boxes, np.ones((32, 1), bool), (224, 224))
    rank_correlation(maps["cams"].numpy(), cams2)
print(f"host side of compare_method (score + rank correlation), per batch: {1000 * (time.perf_counter() - s) / 20:.1f} ms")
