"""Secret values never reach a run's log, however the trainer's output is cut; short ones are refused."""

from __future__ import annotations

import itertools
import json
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from olmix.backends.local import LocalBackend
from olmix.backends.secrets import MASK, MIN_SECRET_BYTES, Masker, SecretError, check_secrets, variants
from olmix.launch import launcher
from tests.support.launches import CONFIG, make_plan, wait_finished

PEM = (
    "-----BEGIN PRIVATE KEY-----\n"
    "MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC7VJTUt9Us8cKj\n"
    "MzEfYyjiWA4R4/M2bS1GB4t7NXp98C3SC6dVMvDuictGeurT8jNbvJZHtCSuYEvu\n"
    "NMoSfm76oqFvAp8Gy0iz5sxjZmSnXyCdPEovGhLa0VzMaQ8s+CLOyS56YyCFGeJZ\n"
    "-----END PRIVATE KEY-----\n"
)
CREDENTIAL = json.dumps(
    {"type": "service_account", "private_key_id": "5f1c2a9e8b7d6c4f3a2b1e0d9c8b7a6f5e4d3c2b", "private_key": PEM},
    indent=2,
)


def masked(secrets: list[bytes], chunks: list[bytes]) -> bytes:
    masker = Masker(secrets)
    return b"".join(masker.feed(c) for c in chunks) + masker.close()


def cut(data: bytes, points: list[int]) -> list[bytes]:
    edges = [0, *sorted(p % (len(data) + 1) for p in points), len(data)]
    return [data[a:b] for a, b in itertools.pairwise(edges)]


def test_a_secret_is_masked_wherever_the_chunks_split_it() -> None:
    secret = PEM.encode()
    stream = b"loading key " + secret + b"step 1 loss 3.2\n"
    for i in range(len(stream) + 1):
        for j in (i, i + 1, i + 7, i + len(secret) // 2):
            assert masked([secret], cut(stream, [i, j])) == b"loading key " + MASK + b"step 1 loss 3.2\n"


@pytest.mark.slow
@settings(max_examples=300, deadline=None)
@given(
    before=st.binary(max_size=40),
    after=st.binary(max_size=40),
    points=st.lists(st.integers(0, 10_000), max_size=8),
    repeat=st.integers(1, 3),
)
def test_no_cut_lets_a_secret_or_a_piece_of_it_through(
    before: bytes, after: bytes, points: list[int], repeat: int
) -> None:
    secrets = [s for value in (PEM, CREDENTIAL, "abcdefgh-abcdefgh") for s in variants(value.encode())]
    # overlapping and back-to-back occurrences, and a secret that is a prefix of another
    stream = before + (b"abcdefgh-abcdefgh-abcdefgh" + CREDENTIAL.encode() + PEM.encode()) * repeat + after
    out = masked(secrets, cut(stream, points))
    assert out == masked(secrets, [stream])  # the cut changes nothing
    for secret in secrets:
        assert secret not in out
    for line in PEM.splitlines() + CREDENTIAL.splitlines():
        if len(line.strip()) >= MIN_SECRET_BYTES:
            assert line.strip().encode() not in out


@settings(max_examples=200, deadline=None)
@given(text=st.binary(max_size=300), points=st.lists(st.integers(0, 400), max_size=6))
def test_a_log_without_secrets_passes_unchanged(text: bytes, points: list[int]) -> None:
    secret = b"s3cr3t-value-0042"
    text = text.replace(secret, b"")
    assert masked([secret], cut(text, points)) == text


def test_only_a_possible_start_of_a_secret_is_held_back() -> None:
    secret = b"s3cr3t-value-0042"
    masker = Masker([secret])
    assert masker.feed(b"step 1 loss 3.2\n") == b"step 1 loss 3.2\n"  # the log stays live
    assert masker.feed(b"token s3cr3t-va") == b"token "
    assert masker.feed(b"lue-0042 done\n") == MASK + b" done\n"
    assert masker.close() == b""


def test_memory_stays_bounded_by_the_longest_secret() -> None:
    secret = PEM.encode()
    masker = Masker([secret])
    longest = 0
    for _ in range(2_000):  # 4 MB of output that keeps looking like the start of the secret
        masker.feed(secret[:-1] * 2)
        longest = max(longest, len(masker.pending))
    assert longest <= len(secret) - 1


def test_variants_of_a_multi_line_value() -> None:
    found = variants(PEM.encode())
    assert PEM.encode() in found
    assert b"-----BEGIN PRIVATE KEY-----" in found
    assert json.dumps(PEM)[1:-1].encode() in found  # as printed inside JSON: \n escaped
    assert all(len(v) >= MIN_SECRET_BYTES for v in found)


def test_check_secrets() -> None:
    check_secrets(["A"], {"A": "x" * MIN_SECRET_BYTES})
    with pytest.raises(SecretError) as info:
        check_secrets(["A", "B", "C"], {"A": "42", "C": "x" * MIN_SECRET_BYTES})
    message = str(info.value)
    assert "not set: B" in message
    assert f"A (2 bytes); a secret has at least {MIN_SECRET_BYTES} bytes" in message
    assert "C (" not in message and ", C" not in message
    with pytest.raises(SecretError, match=r"A \(0 bytes\)"):
        check_secrets(["A"], {"A": " " * MIN_SECRET_BYTES + "\n"})


def test_a_multi_line_secret_never_reaches_a_file_of_a_real_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OLMIX_TEST_PEM", PEM)
    monkeypatch.setenv("OLMIX_TEST_CREDENTIAL", CREDENTIAL)
    # The trainer prints each secret whole, line by line, in pieces that straddle flushes, and inside JSON.
    script = tmp_path / "trainer.py"
    script.write_text(
        "import json, os, sys, time\n"
        "out = sys.stdout.buffer\n"
        "for name in ('OLMIX_TEST_PEM', 'OLMIX_TEST_CREDENTIAL'):\n"
        "    value = os.environ[name].encode()\n"
        "    out.write(b'whole: ' + value + b'\\n')\n"
        "    for line in value.splitlines():\n"
        "        out.write(b'line: ' + line + b'\\n')\n"
        "    for i in range(0, len(value), 7):\n"
        "        out.write(value[i : i + 7]); out.flush(); time.sleep(0.001)\n"
        "    out.write(json.dumps({'env': os.environ[name]}).encode() + b'\\n')\n"
        "out.write(b'done\\n')\n"
    )
    backend = LocalBackend()
    launcher.launch(
        make_plan(["r"]),
        CONFIG,
        backend,
        tmp_path / "out",
        command=[sys.executable, str(script)],
        secrets=["OLMIX_TEST_PEM", "OLMIX_TEST_CREDENTIAL"],
    )
    group_dir = tmp_path / "out" / "g-0123abcd"
    found = wait_finished(group_dir, backend)
    assert found["r"] is not None and found["r"].exit_code == 0
    log = (group_dir / "r" / "train.log").read_bytes()
    assert log.startswith(b"whole: ***\n") and log.endswith(b"done\n")
    written = [p for p in group_dir.rglob("*") if p.is_file()]
    assert len(written) >= 6
    pieces = {line.strip() for value in (PEM, CREDENTIAL) for line in value.splitlines()}
    pieces = {p for p in pieces if len(p) >= MIN_SECRET_BYTES}
    leaks = [(p.name, piece) for p in written for piece in pieces if piece.encode() in p.read_bytes()]
    assert leaks == []


def test_a_short_secret_is_refused_before_anything_is_submitted(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OLMIX_TEST_SHORT", "42")
    with pytest.raises(SecretError, match="OLMIX_TEST_SHORT \\(2 bytes\\)"):
        launcher.launch(
            make_plan(), CONFIG, LocalBackend(), tmp_path / "out", command=["true"], secrets=["OLMIX_TEST_SHORT"]
        )
    assert not (tmp_path / "out").exists()


def test_the_schema_states_the_same_minimum() -> None:
    from olmix import schemas

    assert f"shorter than {MIN_SECRET_BYTES} bytes" in schemas.load("mixture")["properties"]["secrets"]["description"]


@settings(max_examples=300, deadline=None)
@given(
    stream=st.lists(st.sampled_from([b"ab", b"a", b"b", b"abababab", b"-", b"x", b"y"]), max_size=30).map(b"".join),
    sizes=st.lists(st.integers(1, 9), min_size=1, max_size=5),
)
def test_self_overlapping_secrets_in_tiny_chunks(stream: bytes, sizes: list[int]) -> None:
    secrets = [b"abababab", b"babababa-x"]
    chunks: list[bytes] = []
    at = 0
    while at < len(stream):
        size = sizes[len(chunks) % len(sizes)]
        chunks.append(stream[at : at + size])
        at += size
    out = masked(secrets, chunks)
    assert out == masked(secrets, [stream])
    assert b"abababab" not in out


@pytest.mark.parametrize("stream", [b"ababababa-y", b"xababababab-abababab-x", b"babababa-xabababab"])
def test_every_two_cuts_of_overlapping_secrets(stream: bytes) -> None:
    secrets = [b"abababab", b"babababa-x"]
    whole = masked(secrets, [stream])
    for i in range(len(stream) + 1):
        for j in range(i, len(stream) + 1):
            assert masked(secrets, cut(stream, [i, j])) == whole, (i, j)


def test_the_end_of_a_masked_secret_stays_masked_while_it_may_begin_another() -> None:
    # "ababababa": the first secret is masked up to where "babababa" may begin the second one,
    # which then turns out not to be there; the first one's end must not come out with it.
    secrets = [b"abababab", b"babababa-x"]
    assert masked(secrets, [b"ababababa", b"-", b"y"]) == masked(secrets, [b"ababababa-y"]) == MASK + b"a-y"


def covered(secrets: list[bytes], data: bytes) -> bytes:
    """A second, plain reading of the rule: mark every byte of every occurrence, one mask per marked run."""
    marked = [False] * len(data)
    for secret in secrets:
        at = data.find(secret)
        while at != -1:
            marked[at : at + len(secret)] = [True] * len(secret)
            at = data.find(secret, at + 1)
    out = bytearray()
    for i, byte in enumerate(data):
        if not marked[i]:
            out.append(byte)
        elif i == 0 or not marked[i - 1]:
            out += MASK
    return bytes(out)


@pytest.mark.slow
@settings(max_examples=500, deadline=None)
@given(
    secrets=st.lists(
        st.binary(min_size=1, max_size=7).map(lambda b: bytes(97 + c % 4 for c in b)), min_size=1, max_size=3
    ),
    data=st.binary(max_size=40).map(lambda b: bytes(97 + c % 4 for c in b)),
    points=st.lists(st.integers(0, 40), max_size=6),
)
def test_any_cut_masks_what_a_plain_reading_masks(secrets: list[bytes], data: bytes, points: list[int]) -> None:
    assert masked(secrets, cut(data, points)) == covered(secrets, data)
