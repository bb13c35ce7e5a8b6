"""Resolution of 120 leaves × 100 files on moto's S3 server, beside a one-request-per-file baseline.

Goal: requests = listing pages only (one listing of ≤ 1000 keys per leaf folder here).
"""

from __future__ import annotations

import os
import time
from concurrent.futures import ThreadPoolExecutor

from olmix.leaves import Leaf
from olmix.planning.resolve import filesystem, resolve
from tests.services.s3server import S3Server, s3_env

LEAVES, FILES = 120, 100
BUCKET = "olmix-bench"


def main() -> None:
    with S3Server() as server:
        os.environ.update(s3_env(server.url))
        import boto3  # type: ignore[import-untyped]

        client = boto3.client("s3")
        client.create_bucket(Bucket=BUCKET)
        keys = [f"src/leaf-{n:03d}/part-{i:03d}.npy" for n in range(LEAVES) for i in range(FILES)]
        with ThreadPoolExecutor(16) as pool:
            list(pool.map(lambda k: client.put_object(Bucket=BUCKET, Key=k, Body=b"\0" * 64), keys))
        leaves = [Leaf(f"leaf-{n:03d}", (f"s3://{BUCKET}/src/leaf-{n:03d}/*.npy",), 1.0, ()) for n in range(LEAVES)]

        server.clear()
        start = time.perf_counter()
        resolved = resolve(leaves, "uint32")
        wall = time.perf_counter() - start
        requests = list(server.requests)
        listings = sum(r.is_listing for r in requests)
        assert sum(len(r.files) for r in resolved) == LEAVES * FILES
        print(
            f"olmix resolve: {LEAVES} leaves × {FILES} files: {len(requests)} requests "
            f"({listings} listing pages, {len(requests) - listings} other), {wall:.2f} s"
        )

        server.clear()
        fs = filesystem("s3")
        start = time.perf_counter()
        with ThreadPoolExecutor(32) as pool:  # the baseline: ask each file for its size
            sizes = list(pool.map(lambda k: fs.info(f"{BUCKET}/{k}")["size"], keys))
        wall = time.perf_counter() - start
        assert len(sizes) == LEAVES * FILES
        print(f"one request per file (baseline): {len(server.requests)} requests, {wall:.2f} s")


if __name__ == "__main__":
    main()
