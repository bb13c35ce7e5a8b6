"""The REST side: the routes beaker-py 2.8.1 still sends over HTTP, and the dataset file store ("fileheap").

Routes under /api/v3 take the user's bearer token; routes under /fileheap take a dataset's storage token, as
Beaker's file store does. Errors are JSON `{"message": ..., "status": ...}`: beaker-py reads `message` and the
HTTP status. Each route has a call name, counted in `BeakerService.calls` with the gRPC method names.
"""

from __future__ import annotations

import hashlib
import json
import re
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, unquote, urlsplit

from tests.services.beakerservice import state as st

if TYPE_CHECKING:
    from tests.services.beakerservice.service import BeakerService

API = "/api/v3"
FILEHEAP = "/fileheap"
Reply = tuple[int, dict[str, str], bytes]


def _json(status: int, body: Any) -> Reply:
    return status, {"Content-Type": "application/json"}, json.dumps(body).encode()


class Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, service: BeakerService) -> None:
        super().__init__(("127.0.0.1", 0), Handler)
        self.service = service


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: Server

    def log_message(self, format: str, *args: Any) -> None:
        return  # the tests read calls from BeakerService.calls, not from stderr

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_POST(self) -> None:
        self._dispatch("POST")

    def do_PUT(self) -> None:
        self._dispatch("PUT")

    def do_PATCH(self) -> None:
        self._dispatch("PATCH")

    def do_DELETE(self) -> None:
        self._dispatch("DELETE")

    def _body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    self.rfile.readline()
                    break
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
            return b"".join(chunks)
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _dispatch(self, method: str) -> None:
        url = urlsplit(self.path)
        query = {k: v[-1] for k, v in parse_qs(url.query).items()}
        body = self._body()
        auth = self.headers.get("Authorization", "")
        token = auth[len("Bearer ") :] if auth.lower().startswith("bearer ") else ""
        route = _route(method, url.path)
        if route is None:
            reply = _json(404, {"message": f"no route for {method} {url.path}", "status": 404})
        else:
            name, params, action = route
            service = self.server.service
            storage = name in _STORAGE_CALLS
            try:
                reply = service._handle(
                    name,
                    token,
                    lambda: action(service, self, params, query, body, token),
                    storage_token=storage,
                )
            except st.CallError as err:
                reply = _json(err.status, {"message": err.message, "status": err.status})
        status, headers, payload = reply
        try:
            self.send_response(status)
            for key, value in headers.items():
                self.send_header(key, value)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True  # the client stopped waiting (a timeout): the call took effect all the same


Action = Callable[["BeakerService", Handler, dict[str, str], dict[str, str], bytes, str], Reply]


def _create_experiment(
    service: BeakerService, h: Handler, params: dict[str, str], query: dict[str, str], body: bytes, token: str
) -> Reply:
    try:
        spec = json.loads(body)
    except json.JSONDecodeError as err:
        raise st.CallError(400, f"invalid experiment spec: {err}") from None
    if not isinstance(spec, dict):
        raise st.CallError(400, "invalid experiment spec: not an object")
    s = service.state
    with s.lock:
        exp = s.create_experiment(params["workspace"], query.get("name"), spec)
        return _json(200, {"id": exp.id, "name": exp.name, "fullName": f"{exp.author}/{exp.name}"})


def _storage(service: BeakerService, ds: st.Dataset) -> dict[str, Any]:
    return {
        "id": ds.storage_id,
        "token": ds.storage_token,
        "tokenExpires": "2099-01-01T00:00:00Z",
        "address": service.address + FILEHEAP,
        "totalSize": sum(len(d) for d in ds.files.values()),
        "numFiles": len(ds.files),
    }


def _create_dataset(
    service: BeakerService, h: Handler, params: dict[str, str], query: dict[str, str], body: bytes, token: str
) -> Reply:
    data = json.loads(body or b"{}")
    name = query.get("name") or ""
    if not name:
        raise st.CallError(400, "dataset name required")
    s = service.state
    with s.lock:
        ds = s.create_dataset(name, str(data.get("workspace") or ""), str(data.get("description") or ""))
        return _json(200, {"id": ds.id, "name": ds.name, "storage": _storage(service, ds)})


def _get_dataset(
    service: BeakerService, h: Handler, params: dict[str, str], query: dict[str, str], body: bytes, token: str
) -> Reply:
    s = service.state
    with s.lock:
        ds = s.dataset(params["dataset"])
        return _json(200, {"id": ds.id, "name": ds.name, "storage": _storage(service, ds)})


def _commit_dataset(
    service: BeakerService, h: Handler, params: dict[str, str], query: dict[str, str], body: bytes, token: str
) -> Reply:
    data = json.loads(body or b"{}")
    s = service.state
    with s.lock:
        ds = s.dataset(params["dataset"])
        if data.get("commit") and ds.committed is None:
            ds.committed = time.time()
        return _json(200, {"id": ds.id, "name": ds.name})


def _download(
    service: BeakerService, h: Handler, params: dict[str, str], query: dict[str, str], body: bytes, token: str
) -> Reply:
    s = service.state
    with s.lock:
        ds = s.dataset(params["dataset"])
        path = params["path"]
        if path not in ds.files:
            raise st.CallError(404, f"file {path!r} not found")
        data = ds.files[path]
    match = re.fullmatch(r"bytes=(\d+)-(\d*)", h.headers.get("Range", ""))
    if match:
        start = int(match.group(1))
        end = int(match.group(2)) + 1 if match.group(2) else len(data)
        return 206, {"Content-Type": "application/octet-stream"}, data[start:end]
    return 200, {"Content-Type": "application/octet-stream"}, data


def _write_secret(
    service: BeakerService, h: Handler, params: dict[str, str], query: dict[str, str], body: bytes, token: str
) -> Reply:
    s = service.state
    with s.lock:
        s.add_secret(params["workspace"], params["secret"])  # the value is dropped, never kept
    return 200, {}, b""


# -- fileheap: the dataset file store, authorised by the dataset's storage token ----------------------------


def _put_file(
    service: BeakerService, h: Handler, params: dict[str, str], query: dict[str, str], body: bytes, token: str
) -> Reply:
    s = service.state
    with s.lock:
        ds = s.dataset_by_storage(params["storage"], token)
        path = params["path"]
        digest = h.headers.get("Digest")
        if digest:
            upload = next((u for u in s.uploads.values() if _digest(bytes(u.data)) == digest), None)
            if upload is None or upload.dataset_storage_id != ds.storage_id:
                raise st.CallError(400, f"no finished upload with digest {digest!r}")
            body = bytes(upload.data)
            del s.uploads[upload.id]
        ds.files[path] = body
        ds.file_times[path] = time.time()
    return 200, {}, b""


def _start_upload(
    service: BeakerService, h: Handler, params: dict[str, str], query: dict[str, str], body: bytes, token: str
) -> Reply:
    s = service.state
    with s.lock:
        ds = next((d for d in s.datasets.values() if d.storage_token == token), None)
        if ds is None:
            raise st.CallError(403, "invalid storage token")
        upload = st.Upload(id=st.new_id(), dataset_storage_id=ds.storage_id)
        s.uploads[upload.id] = upload
    return 201, {"Upload-ID": upload.id}, b""


def _write_upload(
    service: BeakerService, h: Handler, params: dict[str, str], query: dict[str, str], body: bytes, token: str
) -> Reply:
    s = service.state
    with s.lock:
        upload = s.uploads.get(params["upload"])
        if upload is None:
            raise st.CallError(404, f"upload {params['upload']!r} not found")
        offset = int(h.headers.get("Upload-Offset") or 0)
        length = int(h.headers.get("Upload-Length") or 0)
        if offset != len(upload.data):
            raise st.CallError(409, f"upload offset {offset} does not match {len(upload.data)} bytes received")
        upload.data.extend(body)
        upload.length = length
        done = len(upload.data) >= length
        return 200, ({"Digest": _digest(bytes(upload.data))} if done else {}), b""


def _digest(data: bytes) -> str:
    return "SHA256 " + hashlib.sha256(data).hexdigest()


_ROUTES: list[tuple[str, str, str, Action]] = [
    ("POST", API + r"/workspaces/(?P<workspace>[^/]+)/experiments", "CreateExperiment", _create_experiment),
    ("POST", API + r"/datasets", "CreateDataset", _create_dataset),
    ("GET", API + r"/datasets/(?P<dataset>[^/]+)", "GetDatasetStorage", _get_dataset),
    ("PATCH", API + r"/datasets/(?P<dataset>[^/]+)", "CommitDataset", _commit_dataset),
    ("GET", API + r"/datasets/(?P<dataset>[^/]+)/files/(?P<path>.+)", "DownloadDatasetFile", _download),
    ("PUT", API + r"/workspaces/(?P<workspace>[^/]+)/secrets/(?P<secret>[^/]+)/value", "WriteSecret", _write_secret),
    ("PUT", FILEHEAP + r"/datasets/(?P<storage>[^/]+)/files/(?P<path>.+)", "UploadDatasetFile", _put_file),
    ("POST", FILEHEAP + r"/uploads", "StartUpload", _start_upload),
    ("PATCH", FILEHEAP + r"/uploads/(?P<upload>[^/]+)", "WriteUpload", _write_upload),
]
_STORAGE_CALLS = {"UploadDatasetFile", "StartUpload", "WriteUpload"}
REST_CALLS = tuple(name for _, _, name, _ in _ROUTES)


def _route(method: str, path: str) -> tuple[str, dict[str, str], Action] | None:
    for route_method, pattern, name, action in _ROUTES:
        match = re.fullmatch(pattern, path)
        if route_method == method and match:
            return name, {k: unquote(v) for k, v in match.groupdict().items()}, action
    return None
