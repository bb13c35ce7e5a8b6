"""Resolution against a real S3-protocol server (moto's server mode) on loopback."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from olmix.leaves import Leaf
from olmix.planning.resolve import ResolveError, resolve

pytest.importorskip("s3fs")
pytest.importorskip("moto")

from tests.services.s3server import S3Server, s3_env

pytestmark = pytest.mark.slow  # starts an S3 server on loopback

BUCKET = "olmix-test"


@pytest.fixture(scope="module")
def server() -> Iterator[S3Server]:
    with S3Server() as s:
        yield s


@pytest.fixture
def s3(server: S3Server, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[S3Server, Any]]:
    import boto3  # type: ignore[import-untyped]

    for key, value in s3_env(server.url).items():
        monkeypatch.setenv(key, value)
    client = boto3.client("s3")
    client.create_bucket(Bucket=BUCKET)
    yield server, client
    for obj in client.list_objects_v2(Bucket=BUCKET).get("Contents", []):
        client.delete_object(Bucket=BUCKET, Key=obj["Key"])
    client.delete_bucket(Bucket=BUCKET)


def _put(client: Any, files: dict[str, int]) -> None:
    for key, size in files.items():
        client.put_object(Bucket=BUCKET, Key=key, Body=b"\0" * size)


def test_one_listing_per_prefix_and_no_per_file_request(s3: tuple[S3Server, Any]) -> None:
    server, client = s3
    files = {f"{topic}/v{q}/part-{i}.npy": 4 * (i + 1) for topic in ("t1", "t2") for q in (1, 2) for i in range(5)}
    _put(client, {**files, "t1/v1/notes.txt": 3, "t2/deep/x/part-0.npy": 8})
    leaves = [Leaf(f"{t}:v{q}", (f"s3://{BUCKET}/{t}/v{q}/*.npy",), 1.0, ()) for t in ("t1", "t2") for q in (1, 2)]
    # a second pattern on an already-listed prefix, and a recursive one
    leaves.append(Leaf("again", (f"s3://{BUCKET}/t1/v1/part-0.npy", f"s3://{BUCKET}/t2/**/part-0.npy"), 1.0, ()))
    server.clear()

    got = resolve(leaves, "uint32")

    assert [r.tokens for r in got[:4]] == [15, 15, 15, 15]  # 1+2+3+4+5 tokens per bucket
    assert tuple(got[4].files.items()) == (
        (f"s3://{BUCKET}/t1/v1/part-0.npy", 1),
        (f"s3://{BUCKET}/t2/deep/x/part-0.npy", 2),
        (f"s3://{BUCKET}/t2/v1/part-0.npy", 1),
        (f"s3://{BUCKET}/t2/v2/part-0.npy", 1),
    )
    requests = list(server.requests)
    assert all(r.is_listing for r in requests), [str(r) for r in requests]
    prefixes = sorted(r.query["prefix"][0] for r in requests)
    assert prefixes == ["t1/v1/", "t1/v2/", "t2/", "t2/v1/", "t2/v2/"]


def test_unmatched_patterns_on_s3_are_errors(s3: tuple[S3Server, Any]) -> None:
    _server, client = s3
    _put(client, {"a/part-0.npy": 4, "a/odd.npy": 5})
    leaves = [
        Leaf("none", (f"s3://{BUCKET}/a/*.bin",), 1.0, ()),
        Leaf("gone", (f"s3://{BUCKET}/nowhere/*.npy",), 1.0, ()),
        Leaf("odd", (f"s3://{BUCKET}/a/odd.npy",), 1.0, ()),
    ]
    with pytest.raises(ResolveError) as info:
        resolve(leaves, "uint32")
    assert [i.leaf for i in info.value.issues] == ["none", "gone", "odd"]
