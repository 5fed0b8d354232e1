"""Robustness tests: crash atomicity, concurrent writers, random API sequences."""
