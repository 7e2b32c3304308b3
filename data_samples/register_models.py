"""Register the demo's models in an MLflow model registry, as a team's training job would (README,
"Periodic review with MLflow").

    python data_samples/register_models.py --tracking-uri http://127.0.0.1:5000 good        # version 1 @challenger
    python data_samples/register_models.py --tracking-uri http://127.0.0.1:5000 dormant     # the next version @challenger

Each call logs one model with MLflow's Keras flavour (mlflow.keras.log_model) in the experiment
"training", registers it as a new version of ``--name`` (default "shapes") and points the alias
``--alias`` (default "challenger") at it. Needs the mlflow extra (make install installs it).
"""

from __future__ import annotations

import argparse
from pathlib import Path

HERE = Path(__file__).resolve().parent
MODELS = {"good": HERE / "shapes" / "model_good.keras", "shortcut": HERE / "shapes_marker" / "model_shortcut.keras",
          "dormant": HERE / "shapes_dormant" / "model_dormant.keras"}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("model", choices=sorted(MODELS))
    p.add_argument("--tracking-uri", required=True)
    p.add_argument("--name", default="shapes")
    p.add_argument("--alias", default="challenger")
    args = p.parse_args()
    import keras
    import mlflow

    mlflow.set_tracking_uri(args.tracking_uri)
    mlflow.set_experiment("training")
    with mlflow.start_run(run_name=f"train-{args.model}"):
        info = mlflow.keras.log_model(keras.models.load_model(MODELS[args.model]), name="model", registered_model_name=args.name)
    version = info.registered_model_version
    mlflow.MlflowClient().set_registered_model_alias(args.name, args.alias, version)
    print(f"registered {MODELS[args.model].name} as models:/{args.name}/{version}, alias @{args.alias}")


if __name__ == "__main__":
    main()
