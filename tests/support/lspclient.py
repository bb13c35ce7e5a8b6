"""A small Language Server Protocol client over stdio (JSON-RPC 2.0), for tests.

It starts a real server process, answers the requests a server makes of its
client (configuration, capability registration), and collects the
diagnostics the server publishes.
"""

from __future__ import annotations

import json
import queue
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

# What the YAML server is told when it asks for its settings: validate, hover
# and complete from the file's own modeline, never fetch the schema store.
YAML_SETTINGS = {"validate": True, "hover": True, "completion": True, "schemaStore": {"enable": False}}


class LspError(Exception):
    pass


class LspClient:
    def __init__(self, command: list[str], root: Path, timeout: float = 20.0) -> None:
        self.timeout = timeout
        self.root = root
        self.proc = subprocess.Popen(
            command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, cwd=root
        )
        self._next_id = 0
        self._lock = threading.Lock()
        self._replies: dict[int, queue.Queue[dict[str, Any]]] = {}
        self.diagnostics: dict[str, list[dict[str, Any]]] = {}
        self._diag_event = threading.Condition()
        self.configured = threading.Event()
        self._reader = threading.Thread(target=self._read_loop, daemon=True)
        self._reader.start()

    # --- wire format -------------------------------------------------------

    def _send(self, message: dict[str, Any]) -> None:
        body = json.dumps({"jsonrpc": "2.0", **message}).encode("utf-8")
        assert self.proc.stdin is not None
        with self._lock:
            self.proc.stdin.write(b"Content-Length: %d\r\n\r\n" % len(body) + body)
            self.proc.stdin.flush()

    def _read_message(self) -> dict[str, Any] | None:
        stream = self.proc.stdout
        assert stream is not None
        length = 0
        while True:
            line = stream.readline()
            if not line:
                return None
            line = line.strip()
            if not line:
                break
            name, _, value = line.decode("ascii").partition(":")
            if name.lower() == "content-length":
                length = int(value)
        message: dict[str, Any] = json.loads(stream.read(length))
        return message

    def _read_loop(self) -> None:
        while (message := self._read_message()) is not None:
            if "id" in message and "method" in message:
                self._answer(message)
            elif "id" in message:
                self._replies.setdefault(message["id"], queue.Queue()).put(message)
            elif message.get("method") == "textDocument/publishDiagnostics":
                with self._diag_event:
                    params = message["params"]
                    self.diagnostics[params["uri"]] = params["diagnostics"]
                    self._diag_event.notify_all()

    def _answer(self, request: dict[str, Any]) -> None:
        result: Any = None
        if request["method"] == "workspace/configuration":
            sections = [item.get("section") for item in request["params"]["items"]]
            result = [YAML_SETTINGS if s == "yaml" else {} for s in sections]
            self.configured.set()
        self._send({"id": request["id"], "result": result})

    # --- requests ----------------------------------------------------------

    def request(self, method: str, params: Any) -> Any:
        self._next_id += 1
        ident = self._next_id
        box = self._replies.setdefault(ident, queue.Queue())
        self._send({"id": ident, "method": method, "params": params})
        try:
            reply = box.get(timeout=self.timeout)
        except queue.Empty:
            raise LspError(f"no reply to {method} within {self.timeout}s") from None
        if "error" in reply:
            raise LspError(f"{method}: {reply['error']}")
        return reply.get("result")

    def notify(self, method: str, params: Any) -> None:
        self._send({"method": method, "params": params})

    def initialize(self) -> dict[str, Any]:
        capabilities = {
            "workspace": {"configuration": True, "didChangeConfiguration": {"dynamicRegistration": True}},
            "textDocument": {
                "completion": {"completionItem": {"snippetSupport": False, "documentationFormat": ["plaintext"]}},
                "hover": {"contentFormat": ["plaintext", "markdown"]},
                "publishDiagnostics": {},
            },
        }
        params = {
            "processId": None,
            "rootUri": self.root.as_uri(),
            "capabilities": capabilities,
            "workspaceFolders": [{"uri": self.root.as_uri(), "name": self.root.name}],
        }
        result: dict[str, Any] = self.request("initialize", params)
        self.notify("initialized", {})
        self.notify("workspace/didChangeConfiguration", {"settings": {"yaml": YAML_SETTINGS}})
        if not self.configured.wait(self.timeout):
            raise LspError("the server never asked for its configuration")
        return result

    def open(self, path: Path, text: str | None = None) -> str:
        uri = path.resolve().as_uri()
        text = path.read_text(encoding="utf-8") if text is None else text
        with self._diag_event:
            self.diagnostics.pop(uri, None)
        doc = {"uri": uri, "languageId": "yaml", "version": 1, "text": text}
        self.notify("textDocument/didOpen", {"textDocument": doc})
        return uri

    def wait_diagnostics(self, uri: str) -> list[dict[str, Any]]:
        deadline = time.monotonic() + self.timeout
        with self._diag_event:
            while uri not in self.diagnostics:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise LspError(f"no diagnostics for {uri} within {self.timeout}s")
                self._diag_event.wait(left)
            return self.diagnostics[uri]

    def completion(self, uri: str, line: int, character: int) -> list[dict[str, Any]]:
        """Completion items at a 0-based position."""
        params = {"textDocument": {"uri": uri}, "position": {"line": line, "character": character}}
        result = self.request("textDocument/completion", params)
        items: list[dict[str, Any]] = result["items"] if isinstance(result, dict) else (result or [])
        return items

    def hover(self, uri: str, line: int, character: int) -> str:
        params = {"textDocument": {"uri": uri}, "position": {"line": line, "character": character}}
        result = self.request("textDocument/hover", params)
        if not result:
            return ""
        contents = result["contents"]
        return contents["value"] if isinstance(contents, dict) else str(contents)

    def close(self) -> None:
        try:
            if self.proc.poll() is None:
                self.request("shutdown", None)
                self.notify("exit", None)
                self.proc.wait(timeout=5)
        except (LspError, OSError, subprocess.TimeoutExpired):
            pass
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait()
            for stream in (self.proc.stdin, self.proc.stdout):
                if stream:
                    stream.close()
