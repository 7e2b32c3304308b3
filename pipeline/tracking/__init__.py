"""MLflow tracking and the model registry (DESIGN §8 ``tracking/``; the optional ``mlflow`` extra).

``client`` connects (tracking URI order,
fast failure, quiet logs); ``models`` downloads a registered or logged Keras model to a cache;
``baselines`` finds the audit run of a registered version; ``runs`` logs one audit as one run and
tags the registry. MLflow is imported only by these modules, and only when a config or the command
line asks for it. The URIs themselves are parsed by :mod:`pipeline.config.uris` (pure), which the config's
validation uses too.
"""
