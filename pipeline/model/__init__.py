"""The model on its way in, in the order the data flows (DESIGN §8, §14):

resolve (``model.path`` or a ``models:/`` URI, :mod:`pipeline.tracking`) -> load (:mod:`.load` Keras 3 and
KerasHub, :mod:`.legacy` Keras 2) -> check (:mod:`.preprocessing`, the Keras 2 conversion) -> explainable
model (:mod:`.explainable`: :mod:`.target` layer, :mod:`.dominators`, :mod:`.encoders`, the Grad-CAM
sub-model of :mod:`.cam_model`). Nothing is imported here: the pure modules (:mod:`.dominators`) stay free
of TensorFlow.
"""
