"""Adversarial tests: one attack per file, each against a database written by real MLflow calls."""
