"""Exports for auditors: a verifiable snapshot of a model version's provenance, rendered as
a self-contained bundle or in standard formats (W3C PROV, in-toto/SLSA, OpenLineage).

:mod:`.snapshot` collects, from one database snapshot, everything a model version rests
on — its run, the ledger events and records about them, the documents those records name,
the newest signed checkpoint and an inclusion proof of every event in it — and the
renderers turn it into files. Every export names the checkpoint it was cut from.
"""
