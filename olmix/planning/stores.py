"""Why a data store cannot be listed, and one short message for all its folders.

A new user without cloud credentials plans a config of forty folders: forty
identical tracebacks tell them less than one line saying what failed (no
credentials, access denied, no such bucket, no network), for how many
folders, and the two ways forward (credentials, or `--path-map` to a copy of
the data). Failures are classified by the exception's class names along its
cause chain, so botocore, s3fs and gcsfs need not be imported to recognise
their errors.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

from olmix.demodata import PREFIX as DEMO_PREFIX
from olmix.errors import OlmixError

NO_CREDENTIALS = "no credentials"
ACCESS_DENIED = "access denied"
NO_BUCKET = "no such bucket"
NO_NETWORK = "no network"
UNREADABLE = "cannot list"

_NAMES = {
    NO_CREDENTIALS: {
        "NoCredentialsError",
        "PartialCredentialsError",
        "CredentialRetrievalError",
        "NoAuthTokenError",
        "DefaultCredentialsError",
    },
    ACCESS_DENIED: {"AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch", "ExpiredToken", "Forbidden"},
    NO_BUCKET: {"NoSuchBucket"},
    NO_NETWORK: {
        "EndpointConnectionError",
        "ConnectTimeoutError",
        "ConnectionClosedError",
        "ReadTimeoutError",
        "ClientConnectorError",
        "ServerDisconnectedError",
        "gaierror",
    },
}
_CODES = {  # botocore ClientError codes, when the class is the generic one
    "AccessDenied": ACCESS_DENIED,
    "InvalidAccessKeyId": ACCESS_DENIED,
    "SignatureDoesNotMatch": ACCESS_DENIED,
    "ExpiredToken": ACCESS_DENIED,
    "AllAccessDisabled": ACCESS_DENIED,
    "403": ACCESS_DENIED,
    "NoSuchBucket": NO_BUCKET,
}
_CREDENTIALS = {
    "s3": "AWS_PROFILE, or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY",
    "gs": "GOOGLE_APPLICATION_CREDENTIALS, or `gcloud auth application-default login`",
}
_DETAIL_CHARS = 160


class StorageError(OlmixError):
    """The data store cannot be reached or read (missing extra, credentials, network)."""


@dataclass(frozen=True)
class StoreFailure:
    """A folder that could not be listed, and why."""

    protocol: str
    folder: str  # as a URL, ending in '/'
    kind: str  # one of the kinds above
    detail: str  # the exception, as `Type: message`


def _chain(exc: BaseException) -> list[BaseException]:
    out: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and current not in out:
        out.append(current)
        current = current.__cause__ or current.__context__
    return out


def classify(exc: BaseException) -> str:
    """The kind of a listing failure: no credentials, access denied, no such bucket, no network, else cannot list."""
    for link in _chain(exc):
        names = {cls.__name__ for cls in type(link).__mro__}
        for kind, known in _NAMES.items():
            if names & known:
                return kind
        response = getattr(link, "response", None)
        code = response.get("Error", {}).get("Code") if isinstance(response, dict) else None
        if code in _CODES:
            return _CODES[code]
    for link in _chain(exc):
        if isinstance(link, PermissionError):
            return ACCESS_DENIED
        if isinstance(link, FileNotFoundError) and "bucket does not exist" in str(link).lower():
            return NO_BUCKET
        if isinstance(link, ConnectionError | TimeoutError):
            return NO_NETWORK
    return UNREADABLE


def failure(protocol: str, folder: str, exc: BaseException) -> StoreFailure:
    detail = f"{type(exc).__name__}: {exc}"
    if len(detail) > _DETAIL_CHARS:
        detail = detail[: _DETAIL_CHARS - 1] + "…"
    return StoreFailure(protocol, folder, classify(exc), detail)


def _root(failure: StoreFailure) -> str:
    """`s3://bucket/` of a remote folder; the folder itself when local."""
    if failure.protocol == "file":
        return failure.folder
    scheme, _, rest = failure.folder.partition("://")
    return f"{scheme}://{rest.split('/', 1)[0]}/"


def _prefix(failures: Sequence[StoreFailure]) -> str:
    """The deepest folder holding every failed folder of the first one's store: what a copy must mirror."""
    root = _root(failures[0])
    folders = [f.folder for f in failures if _root(f) == root]
    shared = os.path.commonprefix(folders)  # noqa: RUF071 - URLs, cut back to a folder below
    return shared[: shared.rindex("/") + 1] if len(shared) > len(root) else root


def _plural(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"


def _ways(failures: Sequence[StoreFailure]) -> list[str]:
    remote = [f for f in failures if f.protocol != "file"]
    if not remote:
        return []
    protocol = "gs" if remote[0].protocol in ("gs", "gcs") else remote[0].protocol
    credentials = _CREDENTIALS.get(protocol, "the store's usual credentials")
    kinds = list(dict.fromkeys(f.kind for f in remote))
    fixes = {
        NO_CREDENTIALS: f"give credentials for {protocol}:// ({credentials})",
        ACCESS_DENIED: f"use credentials allowed to read it ({credentials})",
        NO_BUCKET: "check the bucket name",
        NO_NETWORK: "connect to the network (or check the endpoint, e.g. AWS_ENDPOINT_URL_S3)",
        UNREADABLE: "fix the error above",
    }
    prefix = _prefix(remote)
    if prefix.startswith(DEMO_PREFIX):  # the demo corpus mirrors this folder: the map must name it, not deeper
        copy = f"--path-map {DEMO_PREFIX}=/path/to/copy/ (`olmix demo-data /path/to/copy` writes a synthetic one)"
    else:
        copy = (
            f"--path-map {prefix}=/path/to/copy/ "
            f"(`olmix demo-data DIR` writes a synthetic copy of {DEMO_PREFIX}, for --path-map {DEMO_PREFIX}=DIR/)"
        )
    return ["either " + "; ".join(fixes[k] for k in kinds) + ",", f"or read a copy instead: {copy}"]


class UnreachableError(StorageError):
    """Folders of a data store that could not be listed, in config order, as one message of at most four lines."""

    def __init__(self, failures: Sequence[StoreFailure]) -> None:
        self.failures = list(failures)
        roots = list(dict.fromkeys(_root(f) for f in self.failures))
        where = ", ".join(roots[:3]) + (f" and {len(roots) - 3} more" if len(roots) > 3 else "")
        counts = Counter(f.kind for f in self.failures)
        kinds = ", ".join(f"{kind} ({counts[kind]})" for kind in dict.fromkeys(f.kind for f in self.failures))
        first = self.failures[0]
        lines = [
            f"cannot list {_plural(len(self.failures), 'folder')} of {where}: {kinds}",
            f"  first: {first.folder}: {first.detail}",
            *_ways(self.failures),
        ]
        self.lines = lines  # the CLI shows each on its own line
        super().__init__("\n".join(lines))
