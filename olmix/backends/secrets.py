"""Secret values kept out of a run's log: a masking byte stream, and a check before launch.

A trainer's output arrives in chunks that split lines, and secrets, anywhere;
a secret may itself span lines (a PEM key, a JSON credential). So masking
works on the byte stream: it holds back only a tail that could still be the
start of a secret (at most the longest secret less one byte), so the log
stays live and memory stays bounded whatever the log's size. Besides the
value itself, each long enough line of a multi-line value and its JSON-escaped
form are masked, as programs print them one line at a time or inside JSON.

A value shorter than MIN_SECRET_BYTES cannot be masked without masking
ordinary text too ("a", "42"), so a launch refuses it before submitting.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping, Sequence

from olmix.errors import OlmixError

MASK = b"***"
MIN_SECRET_BYTES = 8


class SecretError(OlmixError):
    """A secret named by the config cannot be passed to the runs safely; nothing was submitted."""


def check_secrets(names: Sequence[str], environ: Mapping[str, str] | None = None) -> None:
    """Raise SecretError unless every named secret is set and long enough to mask in a run's log."""
    env = os.environ if environ is None else environ
    missing = [name for name in names if name not in env]
    # whitespace around a value is masked with it, so only the rest counts (8 spaces would mask every indent)
    short = [
        f"{name} ({n} bytes)"
        for name in names
        if name in env and (n := len(os.fsencode(env[name]).strip())) < MIN_SECRET_BYTES
    ]
    problems = []
    if missing:
        problems.append(f"secret environment variable(s) not set: {', '.join(missing)}")
    if short:
        problems.append(
            f"secret value(s) too short to mask in a run's log without masking ordinary text: {', '.join(short)}; "
            f"a secret has at least {MIN_SECRET_BYTES} bytes"
        )
    if problems:
        raise SecretError("; ".join(problems) + "; nothing was submitted")


def variants(value: bytes) -> set[bytes]:
    """The byte strings to mask for one secret value: itself, its lines, its JSON-escaped form."""
    found = {value}
    for line in value.splitlines():
        if len(line.strip()) >= MIN_SECRET_BYTES:
            found.add(line.strip())
    escaped = json.dumps(value.decode("utf-8", "surrogateescape"), ensure_ascii=False)[1:-1]
    found.add(escaped.encode("utf-8", "surrogateescape"))
    return {v for v in found if len(v) >= MIN_SECRET_BYTES or v == value}


class Masker:
    """Masks every occurrence of the secrets in a byte stream fed in chunks of any size.

    Overlapping or adjacent occurrences are masked as one run. Whatever is fed
    comes out, masked, by the time close() returns.
    """

    def __init__(self, secrets: Iterable[bytes]) -> None:
        self.secrets = sorted({s for s in secrets if s}, key=len, reverse=True)
        self.longest = len(self.secrets[0]) if self.secrets else 0
        self.pending = b""
        self.owed = 0  # leading bytes of `pending` inside a secret whose mask was already written
        self.joined = False  # the output so far ends with a mask that a run at the start of `pending` continues

    def feed(self, chunk: bytes) -> bytes:
        return self._mask(self.pending + chunk, final=False)

    def close(self) -> bytes:
        return self._mask(self.pending, final=True)

    def _safe(self, data: bytes) -> int:
        """Where to stop writing: the first position whose rest could still begin a secret."""
        for p in range(max(0, len(data) - self.longest + 1), len(data)):
            tail = data[p:]
            if any(s.startswith(tail) for s in self.secrets):
                return p
        return len(data)

    def _mask(self, data: bytes, *, final: bool) -> bytes:
        spans = [(0, self.owed)] if self.owed else []
        for secret in self.secrets:
            at = data.find(secret)
            while at != -1:
                spans.append((at, at + len(secret)))
                at = data.find(secret, at + 1)
        runs: list[list[int]] = []
        for start, end in sorted(spans):
            if runs and start <= runs[-1][1]:
                runs[-1][1] = max(runs[-1][1], end)
            else:
                runs.append([start, end])
        # Every secret starting before `cut` lies wholly inside `data`, so the runs starting there are final.
        cut = len(data) if final else self._safe(data)
        out = bytearray()
        pos = 0
        masked = False
        for start, end in runs:
            if start >= cut:
                break
            out += data[pos:start]
            if not (start == 0 and self.joined):
                out += MASK
            pos, masked = end, True
        if pos > cut:
            self.pending, self.owed, self.joined = data[cut:], pos - cut, True
        elif cut > 0:
            out += data[pos:cut]
            self.pending, self.owed, self.joined = data[cut:], 0, masked and pos == cut
        else:  # nothing written: all of it may still begin a secret, and what was owed still is
            self.pending = data
        return bytes(out)
