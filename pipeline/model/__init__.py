"""The model on its way in, in the order the data flows (DESIGN §8, §14):

resolve (``model.path`` or a ``models:/`` URI, :mod:`pipeline.tracking`) -> identify (:mod:`.source`, :mod:`.foreign`)
-> read the stored architecture as data (:mod:`.stored`, :mod:`.protobuf`) -> load (:mod:`.load` Keras 3 and KerasHub,
:mod:`.repair` what Keras cannot reload, :mod:`.legacy` Keras 2 and its :mod:`.conversion_check`) -> explainable
model (:mod:`.explainable`: :mod:`.target` layer, :mod:`.dominators`, :mod:`.encoders`, the Grad-CAM
sub-model of :mod:`.cam_model`). Nothing is imported here: the pure modules (:mod:`.dominators`) stay free
of TensorFlow.
"""
