"""An unreachable data store is one short message: what failed, for how many folders, and the ways forward.

The S3 cases run the real `olmix` command against servers on loopback: moto's
S3 server (no credentials, no such bucket), a server that refuses every
request (access denied), and a closed port (no network).
"""

from __future__ import annotations

import http.server
import os
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from olmix.planning.stores import (
    ACCESS_DENIED,
    NO_BUCKET,
    NO_CREDENTIALS,
    NO_NETWORK,
    UNREADABLE,
    StoreFailure,
    UnreachableError,
    classify,
)

OLMIX = str(Path(sys.executable).with_name("olmix"))


def _botocore_errors() -> list[tuple[BaseException, str]]:
    from botocore.exceptions import (  # type: ignore[import-untyped]
        ClientError,
        EndpointConnectionError,
        NoCredentialsError,
    )

    missing = FileNotFoundError("The specified bucket does not exist")
    missing.__cause__ = ClientError({"Error": {"Code": "NoSuchBucket"}}, "ListObjectsV2")
    wrapped = OSError("listing failed")
    wrapped.__cause__ = NoCredentialsError()
    return [
        (NoCredentialsError(), NO_CREDENTIALS),
        (wrapped, NO_CREDENTIALS),  # found along the cause chain
        (ClientError({"Error": {"Code": "AccessDenied"}}, "ListObjectsV2"), ACCESS_DENIED),
        (ClientError({"Error": {"Code": "InvalidAccessKeyId"}}, "ListObjectsV2"), ACCESS_DENIED),
        (missing, NO_BUCKET),
        (EndpointConnectionError(endpoint_url="http://127.0.0.1:9"), NO_NETWORK),
    ]


def test_botocore_and_s3fs_errors_are_classified() -> None:
    pytest.importorskip("botocore")
    for exc, kind in _botocore_errors():
        assert classify(exc) == kind, repr(exc)


@pytest.mark.parametrize(
    ("exc", "kind"),
    [
        (PermissionError(13, "Permission denied"), ACCESS_DENIED),
        (ConnectionRefusedError(111, "Connection refused"), NO_NETWORK),
        (TimeoutError(), NO_NETWORK),
        (socket.gaierror(-2, "Name or service not known"), NO_NETWORK),
        (FileNotFoundError("no such key"), UNREADABLE),
        (ValueError("something else"), UNREADABLE),
    ],
)
def test_python_errors_are_classified(exc: BaseException, kind: str) -> None:
    assert classify(exc) == kind


def test_many_failures_make_one_message_of_at_most_five_lines_in_config_order() -> None:
    folders = [f"s3://ai2-llm/t{i:02d}/" for i in range(37, -1, -1)]  # config order: not sorted
    failures = [
        StoreFailure("s3", f, NO_CREDENTIALS, "NoCredentialsError: Unable to locate credentials") for f in folders
    ]
    failures[5] = StoreFailure(
        "s3", "s3://other/x/", NO_BUCKET, "FileNotFoundError: The specified bucket does not exist"
    )
    message = str(UnreachableError(failures)).splitlines()
    assert message == [
        "cannot list 38 folders of s3://ai2-llm/, s3://other/: no credentials (37), no such bucket (1)",
        "  first: s3://ai2-llm/t37/: NoCredentialsError: Unable to locate credentials",
        "either give credentials for s3:// (AWS_PROFILE, or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY); "
        "check the bucket name,",
        "or read a copy instead: --path-map s3://ai2-llm/=/path/to/copy/ "
        "(`olmix demo-data DIR` writes a synthetic copy of s3://ai2-llm/preprocessed/, "
        "for --path-map s3://ai2-llm/preprocessed/=DIR/)",
    ]


def test_the_copy_to_map_is_the_folder_holding_every_failed_one() -> None:
    def hint(*folders: str) -> str:
        failures = [StoreFailure("s3", f, NO_CREDENTIALS, "NoCredentialsError") for f in folders]
        return str(UnreachableError(failures)).splitlines()[-1]

    assert hint("s3://bucket/a/b/x/", "s3://bucket/a/b/y/", "s3://bucket/a/bc/") == (
        "or read a copy instead: --path-map s3://bucket/a/=/path/to/copy/ "
        "(`olmix demo-data DIR` writes a synthetic copy of s3://ai2-llm/preprocessed/, "
        "for --path-map s3://ai2-llm/preprocessed/=DIR/)"
    )
    # below the folder the demo corpus mirrors, the map names that folder: `olmix demo-data` then fits it as it is
    demo = (
        "or read a copy instead: --path-map s3://ai2-llm/preprocessed/=/path/to/copy/ "
        "(`olmix demo-data /path/to/copy` writes a synthetic one)"
    )
    assert hint("s3://ai2-llm/preprocessed/cc/x/", "s3://ai2-llm/preprocessed/wiki/") == demo
    assert hint("s3://ai2-llm/preprocessed/cc/x/", "s3://ai2-llm/preprocessed/cc/y/") == demo
    assert hint("s3://ai2-llm/preprocessed/cc/x/") == demo


def test_a_local_folder_that_cannot_be_read_offers_no_cloud_advice() -> None:
    failure = StoreFailure("file", "/data/x/", ACCESS_DENIED, "PermissionError: [Errno 13] Permission denied")
    assert str(UnreachableError([failure])).splitlines() == [
        "cannot list 1 folder of /data/x/: access denied (1)",
        "  first: /data/x/: PermissionError: [Errno 13] Permission denied",
    ]


# -- the real command against servers on loopback ----------------------------------------------------------

CONFIG = """\
name: unreachable
proxy_model_id: olmo3_1m
sources:
  - {name: zeta, paths: ['s3://BUCKET/zeta/*.npy']}
  - name: mid
    quality:
      - {name: hi, paths: ['s3://BUCKET/mid/hi/*.npy', 's3://BUCKET/zeta/*.npy']}
      - {name: lo, paths: ['s3://BUCKET/mid/lo/*.npy']}
  - {name: alpha, paths: ['s3://BUCKET/alpha/*.npy']}
"""
FOLDERS = ["zeta", "mid/hi", "mid/lo", "alpha"]  # in config order, each once


def preview(tmp_path: Path, env: dict[str, str], bucket: str = "olmix-unreachable") -> subprocess.CompletedProcess[str]:
    config = tmp_path / "c.yaml"
    config.write_text(CONFIG.replace("BUCKET", bucket))
    clean = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    clean.update(
        {
            "XDG_CACHE_HOME": str(tmp_path / "cache"),
            "HOME": str(tmp_path),  # no ~/.aws
            "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "no-credentials"),
            "AWS_CONFIG_FILE": str(tmp_path / "no-config"),
            "AWS_EC2_METADATA_DISABLED": "true",  # no instance metadata service to ask
            "AWS_MAX_ATTEMPTS": "1",
            "AWS_DEFAULT_REGION": "us-east-1",
            **env,
        }
    )
    clean.pop("OLMIX_PATH_MAP", None)
    return subprocess.run(
        [OLMIX, "launch", "run", "--dry-run", "--config", str(config)],
        capture_output=True,
        text=True,
        env=clean,
        check=False,
    )


def ways(bucket: str, first: str) -> list[str]:
    return [
        first,
        f"or read a copy instead: --path-map s3://{bucket}/=/path/to/copy/ "
        "(`olmix demo-data DIR` writes a synthetic copy of s3://ai2-llm/preprocessed/, "
        "for --path-map s3://ai2-llm/preprocessed/=DIR/)",
    ]


@pytest.fixture(scope="module")
def moto_url() -> Iterator[str]:
    pytest.importorskip("s3fs")
    pytest.importorskip("moto")
    from tests.services.s3server import S3Server

    with S3Server() as server:
        yield server.url


@pytest.mark.slow
def test_no_credentials(tmp_path: Path, moto_url: str) -> None:
    proc = preview(tmp_path, {"AWS_ENDPOINT_URL_S3": moto_url})
    assert proc.returncode == 1
    lines = proc.stderr.splitlines()
    assert lines == [
        "cannot list 4 folders of s3://olmix-unreachable/: no credentials (4)",
        "  first: s3://olmix-unreachable/zeta/: NoCredentialsError: Unable to locate credentials",
        *ways(
            "olmix-unreachable",
            "either give credentials for s3:// (AWS_PROFILE, or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY),",
        ),
    ]


@pytest.mark.slow
def test_no_such_bucket(tmp_path: Path, moto_url: str) -> None:
    keys = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}
    proc = preview(tmp_path, {"AWS_ENDPOINT_URL_S3": moto_url, **keys}, bucket="olmix-no-such-bucket")
    assert proc.returncode == 1
    assert proc.stderr.splitlines() == [
        "cannot list 4 folders of s3://olmix-no-such-bucket/: no such bucket (4)",
        "  first: s3://olmix-no-such-bucket/zeta/: FileNotFoundError: The specified bucket does not exist",
        *ways("olmix-no-such-bucket", "either check the bucket name,"),
    ]


class _Refusing(http.server.BaseHTTPRequestHandler):
    """Answers every request as S3 does to credentials that may not read the bucket."""

    def do_GET(self) -> None:
        body = b"<?xml version='1.0' encoding='UTF-8'?>"
        body += b"<Error><Code>AccessDenied</Code><Message>Access Denied</Message></Error>"
        self.send_response(403)
        self.send_header("Content-Type", "application/xml")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_HEAD = do_GET

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.mark.slow
def test_access_denied(tmp_path: Path) -> None:
    pytest.importorskip("s3fs")
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Refusing)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}"
        keys = {"AWS_ACCESS_KEY_ID": "someone", "AWS_SECRET_ACCESS_KEY": "else"}
        proc = preview(tmp_path, {"AWS_ENDPOINT_URL_S3": url, **keys})
    finally:
        server.shutdown()
        server.server_close()
    assert proc.returncode == 1
    lines = proc.stderr.splitlines()
    assert lines[0] == "cannot list 4 folders of s3://olmix-unreachable/: access denied (4)"
    assert lines[1].startswith("  first: s3://olmix-unreachable/zeta/: PermissionError: ")
    assert lines[2:] == ways(
        "olmix-unreachable",
        "either use credentials allowed to read it (AWS_PROFILE, or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY),",
    )


@pytest.mark.slow
def test_no_network(tmp_path: Path) -> None:
    pytest.importorskip("s3fs")
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    keys = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}
    proc = preview(tmp_path, {"AWS_ENDPOINT_URL_S3": f"http://127.0.0.1:{port}", **keys})
    assert proc.returncode == 1
    lines = proc.stderr.splitlines()
    assert lines[0] == "cannot list 4 folders of s3://olmix-unreachable/: no network (4)"
    assert lines[1].startswith("  first: s3://olmix-unreachable/zeta/: EndpointConnectionError: ")
    assert lines[2:] == ways(
        "olmix-unreachable", "either connect to the network (or check the endpoint, e.g. AWS_ENDPOINT_URL_S3),"
    )
