"""Validation speed: `olmix validate` vs check-jsonschema on 1,000 configs of ~200 lines.

Both run as one process over the same folder, as a user would run them; the
bare libyaml parse of the same files is the floor. Also `olmix --help` start-up.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
from pathlib import Path

FILES = 1000
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
    helps = [timed([str(bin_dir / "olmix"), "--help"])[0] for _ in range(5)]
    print(f"olmix --help: best {min(helps):.3f} s, median {sorted(helps)[2]:.3f} s of 5 (goal < 0.15 s)")
