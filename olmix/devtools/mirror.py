"""Small synthetic local mirrors of a config's data, for tests and benchmarks.

`make_mirror(config, root)` creates, for every path pattern of every leaf, a
few files that the pattern matches, under `root/<bucket>/...`, and returns the
path map (`s3://bucket/` → `root/bucket/`) that points the config at them.
Files are sparse: their size (all that planning reads) costs no disk space.

`quality_threshold_config(pct)` writes the quality-threshold experiment
(all_dressed topics × the top vigintiles, arxiv, wikipedia) as YAML text.
"""

from __future__ import annotations

import re
from pathlib import Path

from olmix.config import load_config
from olmix.leaves import leaves
from olmix.resolve import ITEMSIZE, _glob_regex, split_pattern

TOPICS = (
    "science_math_and_technology",
    "software_development",
    "education_and_jobs",
    "news_and_politics",
    "adult_content",
    "art_and_design",
)
ALL_DRESSED = (
    "s3://ai2-llm/preprocessed/cc_all_dressed/all_dressed_v3/dclm_plus2_vigilantes/allenai/dolma2-tokenizer/"
    "{topic}/vigintile_{n:04d}/*.npy"
)
ARXIV = (
    "s3://ai2-llm/preprocessed/proof-pile-2/v0_decontaminated-0625_tokenized/arxiv/train/allenai/dolma2-tokenizer/*.npy"
)
WIKIPEDIA = "s3://ai2-llm/preprocessed/wikipedia-dolma-0823/allenai/dolma2-tokenizer/*.npy"
FIRST_KEPT = {10: 19, 30: 15, 50: 11, 70: 7, 100: 1}  # top pct -> first vigintile kept (through 20)


def quality_threshold_config(pct: int) -> str:
    """YAML of the quality_top{pct}pct experiment."""
    lines = [
        "# yaml-language-server: $schema=../../../../schema/mixture.schema.json",
        f"name: quality-top{pct}pct",
        f"description: Quality threshold experiment - top {pct}% quality data",
        "proxy_model_id: olmo3_14m",
        "chinchilla_multiple: 0.5",
        "sources:",
        "  - name: all_dressed",
        "    topics:",
    ]
    for topic in TOPICS:
        lines += [f"      - name: {topic}", "        quality:"]
        for n in range(FIRST_KEPT[pct], 21):
            lines += [
                f"          - name: vigintile_{n:04d}",
                f'            paths: ["{ALL_DRESSED.format(topic=topic, n=n)}"]',
            ]
    lines += [
        "  - name: arxiv",
        f'    paths: ["{ARXIV}"]',
        "    max_repetition_factor: 1.5",
        "  - name: wikipedia",
        f'    paths: ["{WIKIPEDIA}"]',
        "    max_repetition_factor: 2.0",
    ]
    return "\n".join(lines) + "\n"


def concrete(rest: str, i: int) -> str:
    """A relative file name that the glob `rest` matches (the i-th of several)."""
    out = rest.replace("**/", "").replace("**", f"deep-{i:04d}")
    out = re.sub(r"\[!?([^\]])[^\]]*\]", lambda m: m.group(1) if not m.group(0).startswith("[!") else "_", out)
    out = out.replace("?", "x")
    parts = out.split("*")
    return parts[0] + "".join(f"part-{i:04d}{p}" if j == 0 else f"x{p}" for j, p in enumerate(parts[1:]))


def make_mirror(
    config: str | Path,
    root: str | Path,
    *,
    files_per_pattern: int = 3,
    tokens_per_file: int = 40_000_000,
) -> list[tuple[str, str]]:
    """Create sparse files for every pattern of `config` under `root`; the path map to them.

    File sizes vary a little by leaf and file so that proportional shares are
    not all equal; every leaf holds at least files_per_pattern × tokens_per_file.
    """
    root = Path(root).resolve()
    cfg = load_config(config)
    itemsize = ITEMSIZE[cfg.dtype]
    path_map: dict[str, str] = {}
    for n, leaf in enumerate(leaves(cfg)):
        for pattern in leaf.paths:
            scheme, sep, rest_of_url = pattern.partition("://")
            if not sep:
                raise ValueError(f"{pattern}: a mirror is made for URLs (s3://, gs://), not local paths")
            bucket = rest_of_url.split("/", 1)[0]
            path_map.setdefault(f"{scheme}://{bucket}/", f"{root / bucket}/")
            prefix, rest = split_pattern(rest_of_url)
            for i in range(files_per_pattern):
                name = concrete(rest, i)
                if not _glob_regex(rest).match(name):
                    raise ValueError(f"{pattern}: cannot make a file name it matches")
                target = root / prefix / name
                target.parent.mkdir(parents=True, exist_ok=True)
                tokens = tokens_per_file + 1_000_003 * (n % 7) + 1009 * i
                with open(target, "wb") as f:
                    f.truncate(tokens * itemsize)
    return list(path_map.items())
