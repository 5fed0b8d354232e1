#!/usr/bin/env python
"""Speed of full-content dataset digests (issue 4, DESIGN.md §8).

Target: one large file hashed at ≥ 90 % of the throughput of ``openssl dgst -sha256`` on
one core (both read the file from the page cache: it is read once before timing).
Coreutils ``sha256sum`` is shown for reference (it is not the bar: on this machine it does
not use the SHA extensions OpenSSL uses).

Also measured:

    directory    a directory of many files, hashed with 1 thread and with the default pool
    stat cache   the same directory again, unchanged (nothing re-read)
    frame        a DataFrame of 1,000,000 rows (ints, floats, strings, categories, datetimes)

    python bench/bench_dataset_digest.py [--size-mib 1024] [--files 400] [--rounds 5]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from mlflow_provenance.datasets.files import StatCache, digest_path, sha256_file


def _time(fn, rounds: int) -> list[float]:
    times = []
    for _ in range(rounds):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size-mib", type=int, default=1024)
    parser.add_argument("--files", type=int, default=400)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="bench-digest-"))
    try:
        big = tmp / "big.bin"
        with open(big, "wb") as f:
            for _ in range(args.size_mib):
                f.write(os.urandom(1 << 20))
        sha256_file(big)  # into the page cache
        size = args.size_mib * (1 << 20)
        ours = _time(lambda: sha256_file(big), args.rounds)
        openssl = _time(lambda: subprocess.run(["openssl", "dgst", "-sha256", str(big)], check=True,
                                               capture_output=True), args.rounds)
        coreutils = _time(lambda: subprocess.run(["sha256sum", str(big)], check=True, capture_output=True), 2)
        big.unlink()

        tree = tmp / "tree"
        for i in range(args.files):
            sub = tree / f"part-{i % 20:02d}"
            sub.mkdir(parents=True, exist_ok=True)
            (sub / f"shard-{i:05d}.bin").write_bytes(os.urandom(256 * 1024 + i))
        digest_path(tree, workers=1)
        tree_bytes = sum(p.stat().st_size for p in tree.rglob("*") if p.is_file())
        one = _time(lambda: digest_path(tree, workers=1), args.rounds)
        pool = _time(lambda: digest_path(tree), args.rounds)
        cache = StatCache(tmp / "cache.sqlite")
        digest_path(tree, cache=cache)
        cached = _time(lambda: digest_path(tree, cache=cache), args.rounds)

        import numpy as np
        import pandas as pd

        from mlflow_provenance.datasets.frames import digest_frame

        n = 1_000_000
        frame = pd.DataFrame({
            "i": np.arange(n), "f": np.random.default_rng(0).random(n), "s": [f"row-{i}" for i in range(n)],
            "c": pd.Categorical(np.where(np.arange(n) % 3 == 0, "a", "b")),
            "t": pd.date_range("2020-01-01", periods=n, freq="s"),
        })
        frame_times = _time(lambda: digest_frame(frame), args.rounds)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    def rate(times: list[float], nbytes: int) -> float:
        return nbytes / statistics.median(times) / (1 << 20)

    ours_rate, openssl_rate = rate(ours, size), rate(openssl, size)
    print(f"| measure | median | MiB/s |")
    print("|---|---:|---:|")
    print(f"| one {args.size_mib} MiB file, mlflow-provenance (1 core) | {statistics.median(ours):.3f} s | {ours_rate:,.0f} |")
    print(f"| same file, `openssl dgst -sha256` | {statistics.median(openssl):.3f} s | {openssl_rate:,.0f} |")
    print(f"| same file, coreutils `sha256sum` (reference) | {statistics.median(coreutils):.3f} s | {rate(coreutils, size):,.0f} |")
    print(f"| **ratio ours / openssl throughput** | **{ours_rate / openssl_rate:.2f}** (target ≥ 0.90) | |")
    print(f"| directory, {args.files} files, {tree_bytes / (1 << 20):,.0f} MiB, 1 thread | {statistics.median(one):.3f} s | {rate(one, tree_bytes):,.0f} |")
    print(f"| same directory, default pool ({os.cpu_count()} cores) | {statistics.median(pool):.3f} s | {rate(pool, tree_bytes):,.0f} |")
    print(f"| same directory again, stat cache hit | {statistics.median(cached) * 1000:.1f} ms | |")
    print(f"| DataFrame, 1,000,000 rows x 5 columns | {statistics.median(frame_times):.3f} s | |")


if __name__ == "__main__":
    sys.exit(main())
