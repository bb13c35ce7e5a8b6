"""Validation speed: `olmix validate` vs check-jsonschema on 1,000 configs of ~200 lines.

Both run as one process over the same folder, as a user would run them; the
bare libyaml parse of the same files is the floor. Also `olmix --help` start-up,
and one 2 MB file of mistakes (unknown keys, each a "did you mean" candidate)
against a valid file of the same size: a file of mistakes must cost no more
than its size (on a loaded 2-core machine: the valid file 6.7 s; the file of
mistakes 35 s with a hint computed per key, 6.3 s with hints bounded).
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
from pathlib import Path

FILES = 1000
BIG = 2_000_000  # bytes of the one-file cases
HEAD = "# yaml-language-server: $schema=../schema/mixture.schema.json\n"


def config_text(seed: int) -> str:
    """A valid config of about 200 lines: 7 sources x 3 topics x 3 quality buckets plus settings."""
    lines = [
        f"name: bench-{seed}",
        "description: benchmark mixture",
        "chinchilla_multiple: 0.5",
        "proxy_model_id: olmo3_14m",
        "cluster: ai2/jupiter",
        "seed: 7",
        "sources:",
    ]
    for s in range(7):
        lines += [f"  - name: source{s}", "    max_repetition_factor: 1.5", "    topics:"]
        for t in range(3):
            lines += [f"      - name: topic{t}", "        quality:"]
            for q in range(3):
                lines += [
                    f"          - name: vigintile_{q + 18:04d}",
                    f"            paths: ['s3://bucket/{seed}/source{s}/topic{t}/vigintile_{q + 18:04d}/*.npy']",
                ]
    return HEAD + "\n".join(lines) + "\n"


def big_texts() -> tuple[str, str]:
    """A valid config of BIG bytes (one source per two lines), and one as big of misspelt top-level keys."""
    head = ["name: big", "chinchilla_multiple: 1", "proxy_model_id: olmo3_14m", "sources:"]
    valid, size = list(head), 0
    while size < BIG:
        valid += [f"  - name: s{len(valid):07d}", f"    paths: [p{len(valid)}]"]
        size += len(valid[-1]) + len(valid[-2]) + 2
    typos, size = [*head, "  - name: a", "    paths: [p]"], 0
    while size < BIG:
        typos.append(f"chinchilla_multiplier_{len(typos):07d}: 1")
        size += len(typos[-1]) + 1
    return "\n".join(valid) + "\n", "\n".join(typos) + "\n"


def timed(cmd: list[str]) -> tuple[float, subprocess.CompletedProcess[bytes]]:
    start = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True)
    return time.perf_counter() - start, proc


def main() -> None:
    import yaml

    bin_dir = Path(sys.executable).parent
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "configs"
        folder.mkdir()
        for i in range(FILES):
            (folder / f"c{i:04d}.yaml").write_text(config_text(i))
        files = sorted(folder.glob("*.yaml"))
        lines = sum(f.read_text().count("\n") for f in files) / len(files)

        start = time.perf_counter()
        for f in files:
            yaml.load(f.read_bytes(), Loader=yaml.CSafeLoader)
        floor = time.perf_counter() - start

        olmix_s, proc = timed([str(bin_dir / "olmix"), "validate", str(folder)])
        assert proc.returncode == 0, proc.stderr.decode()
        schema = Path(__file__).resolve().parents[1] / "schema" / "mixture.schema.json"
        cj_s, proc = timed([str(bin_dir / "check-jsonschema"), "--schemafile", str(schema), *map(str, files)])
        assert proc.returncode == 0, proc.stdout.decode()

    print(f"{FILES} files, {lines:.0f} lines each")
    print(f"libyaml parse only (floor)   {floor:6.2f} s  {floor / FILES * 1e3:6.2f} ms/file")
    print(f"olmix validate               {olmix_s:6.2f} s  {olmix_s / FILES * 1e3:6.2f} ms/file  (with line numbers)")
    print(f"check-jsonschema             {cj_s:6.2f} s  {cj_s / FILES * 1e3:6.2f} ms/file")
    print(f"speed-up over check-jsonschema: {cj_s / olmix_s:.1f}x (goal >= 5x)")
    with tempfile.TemporaryDirectory() as tmp:
        valid, typos = big_texts()
        (Path(tmp) / "valid.yaml").write_text(valid)
        (Path(tmp) / "typos.yaml").write_text(typos)
        valid_s, proc = timed([str(bin_dir / "olmix"), "validate", str(Path(tmp) / "valid.yaml")])
        assert proc.returncode == 0, proc.stderr.decode()[-2000:]
        typos_s, proc = timed([str(bin_dir / "olmix"), "validate", str(Path(tmp) / "typos.yaml")])
        mistakes = proc.stderr.count(b"\n")
        assert proc.returncode == 1 and mistakes > 50_000, proc.stderr.decode()[-2000:]
    print(f"{BIG / 1e6:.0f} MB valid file           {valid_s:6.2f} s")
    print(f"{BIG / 1e6:.0f} MB of {mistakes:,} unknown keys {typos_s:6.2f} s  (goal: no slower than the valid file)")
    helps = [timed([str(bin_dir / "olmix"), "--help"])[0] for _ in range(5)]
    print(f"olmix --help: best {min(helps):.3f} s, median {sorted(helps)[2]:.3f} s of 5 (goal < 0.15 s)")
