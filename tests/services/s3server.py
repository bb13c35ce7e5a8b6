"""An S3-protocol server on loopback (moto's server mode) that logs every request it answers.

    with S3Server() as server:
        os.environ["AWS_ENDPOINT_URL_S3"] = server.url
        ...
        server.requests  # [Request(method, path, query), ...]

Needs the dev extra (moto[server]).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from types import TracebackType
from typing import Any
from urllib.parse import parse_qs


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    query: dict[str, list[str]]

    @property
    def is_listing(self) -> bool:
        return self.method == "GET" and self.query.get("list-type") == ["2"]

    def __str__(self) -> str:
        query = "&".join(f"{k}={v[0]}" for k, v in sorted(self.query.items()))
        return f"{self.method} {self.path}{'?' + query if query else ''}"


class S3Server:
    """moto's S3 server on 127.0.0.1, on a free port, with a request log."""

    def __init__(self) -> None:
        self.requests: list[Request] = []
        self._lock = threading.Lock()
        self._server: Any = None
        self._thread: threading.Thread | None = None

    def _logged(self, app: Any) -> Any:
        def wsgi(environ: dict[str, Any], start_response: Any) -> Any:
            request = Request(
                environ["REQUEST_METHOD"], environ.get("PATH_INFO", ""), parse_qs(environ.get("QUERY_STRING", ""))
            )
            with self._lock:
                self.requests.append(request)
            return app(environ, start_response)

        return wsgi

    def start(self) -> S3Server:
        try:
            from moto.moto_server.werkzeug_app import (
                DomainDispatcherApplication,
                MotoRequestHandler,
                create_backend_app,
            )
            from werkzeug.serving import make_server
        except ImportError as exc:
            raise RuntimeError("the S3 test server needs moto[server]: pip install -e '.[dev]'") from exc

        class Quiet(MotoRequestHandler):
            def log_request(self, *args: Any, **kwargs: Any) -> None:
                pass  # the request log is `requests`

        app = self._logged(DomainDispatcherApplication(create_backend_app))
        self._server = make_server("127.0.0.1", 0, app, threaded=True, request_handler=Quiet)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return self

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def clear(self) -> None:
        with self._lock:
            self.requests.clear()

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join()

    def __enter__(self) -> S3Server:
        return self.start()

    def __exit__(self, *exc: type[BaseException] | BaseException | TracebackType | None) -> None:
        self.stop()


def s3_env(url: str) -> dict[str, str]:
    """Environment for botocore clients (s3fs, boto3) to talk to the server at `url`, with dummy keys."""
    return {
        "AWS_ENDPOINT_URL_S3": url,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
    }
