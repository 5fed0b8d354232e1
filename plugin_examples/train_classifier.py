"""Train a scikit-learn classifier with MLflow, on a provenance tracking store.

Params, per-epoch metrics, tags, a logged model and a registered model version with an
alias land in MLflow as usual — and in the signed ledger, in the same transactions; the
run also gets its environment manifest. Two calls are ours: ``log_dataset`` records the
data (full-content digest, license, lineage raw → train/test) and ``log_evaluation``
binds the test metrics to the test data's digest, the model, a threshold and a
bootstrap confidence interval.

    python plugin_examples/train_classifier.py [--tracking-uri provenance+sqlite:///mlflow.db]
    mlflow-provenance verify --tracking-uri provenance+sqlite:///mlflow.db
"""

from __future__ import annotations

import argparse
import warnings

import mlflow
import mlflow_provenance
import numpy as np
import pandas as pd
from mlflow.models import infer_signature
from sklearn.datasets import load_wine
from sklearn.linear_model import SGDClassifier
from sklearn.metrics import accuracy_score, f1_score
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import StandardScaler

DEFAULT_URI = "provenance+sqlite:///mlflow.db"
MODEL_NAME = "wine-classifier"
WINE_SOURCE = "https://archive.ics.uci.edu/dataset/109/wine"


def train(tracking_uri: str = DEFAULT_URI, epochs: int = 10, seed: int = 7) -> dict[str, str]:
    """Run the example; return the ids it created (run, model URI, version)."""
    mlflow.set_tracking_uri(tracking_uri)
    mlflow.set_experiment("wine-quality")

    wine = load_wine(as_frame=True)
    frame: pd.DataFrame = wine.frame
    train_df, test_df = train_test_split(frame, test_size=0.25, random_state=seed, stratify=frame["target"])
    features = [c for c in frame.columns if c != "target"]
    scaler = StandardScaler().fit(train_df[features])
    x_train, x_test = scaler.transform(train_df[features]), scaler.transform(test_df[features])
    y_train, y_test = train_df["target"].to_numpy(), test_df["target"].to_numpy()

    params = {"loss": "log_loss", "alpha": 1e-4, "epochs": epochs, "seed": seed, "scaler": "standard"}
    model = SGDClassifier(loss="log_loss", alpha=params["alpha"], random_state=seed)
    classes = np.unique(frame["target"])

    mlflow_provenance.record_seed("split_and_sgd", seed)
    with mlflow.start_run(run_name="sgd-wine") as run:
        mlflow.log_params(params)
        mlflow.set_tags({"team": "ml-platform", "purpose": "provenance example"})
        terms = {"license": "CC-BY-4.0", "owner": "UCI Machine Learning Repository", "source": WINE_SOURCE}
        raw = mlflow_provenance.log_dataset(frame, name="wine-raw", context="source", **terms)
        split = {"name": "train_test_split", "code": train_test_split,
                 "parameters": {"test_size": 0.25, "random_state": seed, "stratify": "target"}}
        mlflow_provenance.log_dataset(train_df, name="wine-train", parents=[raw], transformations=[split], **terms)
        test = mlflow_provenance.log_dataset(test_df, name="wine-test", context="evaluation", parents=[raw],
                                             transformations=[split], **terms)
        for epoch in range(epochs):
            model.partial_fit(x_train, y_train, classes=classes)
            mlflow.log_metrics(
                {
                    "train_accuracy": accuracy_score(y_train, model.predict(x_train)),
                    "test_accuracy": accuracy_score(y_test, model.predict(x_test)),
                },
                step=epoch,
            )
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            info = mlflow.sklearn.log_model(
                model,
                name="model",
                signature=infer_signature(x_test, model.predict(x_test)),
                input_example=x_test[:2],
                registered_model_name=MODEL_NAME,
            )
        predicted = model.predict(x_test)
        mlflow_provenance.log_evaluation(
            {"test_f1_macro": f1_score(y_test, predicted, average="macro"),
             "test_final_accuracy": accuracy_score(y_test, predicted)},
            dataset=test, model=info.model_id, seed=seed,
            thresholds={"test_final_accuracy": 0.8},
            y_true=y_test, y_pred=predicted,
        )
    client = mlflow.MlflowClient()
    version = str(info.registered_model_version)
    client.set_registered_model_alias(MODEL_NAME, "candidate", version)
    return {"run_id": run.info.run_id, "model_uri": info.model_uri, "model_name": MODEL_NAME, "version": version}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tracking-uri", default=DEFAULT_URI)
    parser.add_argument("--epochs", type=int, default=10)
    args = parser.parse_args()
    ids = train(args.tracking_uri, epochs=args.epochs)
    print(f"run {ids['run_id']}: model {ids['model_name']} version {ids['version']} (alias 'candidate')")
    print(f"now check it: mlflow-provenance verify --tracking-uri {args.tracking_uri}")


if __name__ == "__main__":
    main()
