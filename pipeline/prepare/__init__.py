"""Everything before the first Grad-CAM (DESIGN §8): the samples, the model (loaded, converted, checked), the preprocessing check."""
