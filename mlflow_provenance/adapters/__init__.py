"""MLflow adapters: the only modules that import ``mlflow`` (DESIGN.md §4).

``entrypoints``     factories MLflow loads for ``provenance+<inner>`` URIs (no heavy imports)
``binding``         attaches the ledger recorder to an MLflow SQL store's sessions and methods
``tracking_store``  the tracking store: MLflow's SqlAlchemyStore, every write recorded
``registry_store``  the model-registry store, likewise
"""
