"""A small synthetic corpus in the layout of the real one, for studies on one machine.

`write_corpus(root)` mirrors `s3://ai2-llm/preprocessed/` under `root`, so
`--path-map s3://ai2-llm/preprocessed/=ROOT/` points the shipped configs at it:

    cc_all_dressed/all_dressed_v3/dclm_plus2_vigilantes/allenai/dolma2-tokenizer/
        {topic}/vigintile_{0001..0020}/part-00000.npy   six topics × 20 quality buckets
    proof-pile-2/v0_decontaminated-0625_tokenized/arxiv/train/allenai/dolma2-tokenizer/part-00000.npy
    wikipedia-dolma-0823/allenai/dolma2-tokenizer/part-00000.npy

Held-out split: every training folder has a `heldout/` folder beside its files
(`.../vigintile_0015/heldout/part-00000.npy`). A `*.npy` glob over the
training folder matches one level only and never picks it up; a recursive
`**` glob would, so configs over this corpus use `*`.

Token files are headerless little-endian uint32 arrays (dolma2 token ids),
every document ending with EOS 100257. All text follows one "language": a
first-order chain in which every token has a few likely successors among
1,024 core tokens. A quality bucket mixes in noise (tokens drawn uniformly
from the whole vocabulary, unlearnable): vigintile_0001 is 90% noise,
vigintile_0020 2%, linearly between; arxiv and wikipedia are nearly clean.
So higher buckets are genuinely more learnable, and a model trained on them
does better on the shared held-out text. Deterministic by seed; only the
standard library, so it works with olmix's core dependencies.
"""

from __future__ import annotations

import array
import os
import random
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from olmix.errors import OlmixError
from olmix.fileio import OutputError, make_dir

PREFIX = "s3://ai2-llm/preprocessed/"  # the folder of the real store that the corpus mirrors
EOS = 100257
VOCAB = 100_000  # noise tokens are drawn below this (EOS and special tokens lie above)
CORE = 1024  # tokens of the clean language
SUCCESSORS = 4
HELDOUT = "heldout"
FILE = "part-00000.npy"

ALL_DRESSED = "cc_all_dressed/all_dressed_v3/dclm_plus2_vigilantes/allenai/dolma2-tokenizer"
ARXIV = "proof-pile-2/v0_decontaminated-0625_tokenized/arxiv/train/allenai/dolma2-tokenizer"
WIKIPEDIA = "wikipedia-dolma-0823/allenai/dolma2-tokenizer"
TOPICS = (
    "science_math_and_technology",
    "software_development",
    "education_and_jobs",
    "news_and_politics",
    "adult_content",
    "art_and_design",
)
VIGINTILES = 20
# Bounds of --tokens-per-bucket. At the most, the corpus is about 166 million tokens (665 MB) and takes a
# few minutes: a demo, not a benchmark corpus, so a larger request is a mistake to name, not work to start.
MIN_TOKENS_PER_BUCKET = 1024
MAX_TOKENS_PER_BUCKET = 1 << 20


class DemoDataError(OlmixError):
    """A corpus olmix will not write: its size is out of bounds."""


def vigintile_noise(bucket: int) -> float:
    """Share of noise tokens in vigintile `bucket` (1 = worst 5%, 20 = best 5%)."""
    return 0.02 + 0.88 * (VIGINTILES - bucket) / (VIGINTILES - 1)


@dataclass(frozen=True)
class Folder:
    """One training folder of the corpus and how noisy its text is."""

    path: str
    noise: float
    train_tokens: int
    heldout_tokens: int


def folders(tokens_per_bucket: int = 16_384, tokens_per_source: int = 65_536) -> Iterator[Folder]:
    """Every training folder of the corpus, relative to its root."""
    heldout = max(tokens_per_bucket // 4, 1024)
    for topic in TOPICS:
        for bucket in range(1, VIGINTILES + 1):
            path = f"{ALL_DRESSED}/{topic}/vigintile_{bucket:04d}"
            yield Folder(path, vigintile_noise(bucket), tokens_per_bucket, heldout)
    yield Folder(ARXIV, 0.05, tokens_per_source, heldout)
    yield Folder(WIKIPEDIA, 0.03, tokens_per_source, heldout)


def _language(seed: int) -> tuple[list[int], list[tuple[int, ...]]]:
    """The core token ids and each core token's successors (as indices into the core)."""
    rng = random.Random(f"olmix-demo-language-{seed}")
    ids = rng.sample(range(VOCAB), CORE)
    successors = [tuple(rng.randrange(CORE) for _ in range(SUCCESSORS)) for _ in range(CORE)]
    return ids, successors


def documents(
    rng: random.Random, n_tokens: int, noise: float, language: tuple[list[int], list[tuple[int, ...]]]
) -> array.array[int]:
    """At least `n_tokens` tokens of whole documents, each ending with EOS."""
    ids, successors = language
    out = array.array("I")
    randrange, random_, choice = rng.randrange, rng.random, rng.choice
    while len(out) < n_tokens:
        state = randrange(CORE)
        for _ in range(randrange(32, 512)):
            if random_() < noise:
                out.append(randrange(VOCAB))
            else:
                state = choice(successors[state])
                out.append(ids[state])
        out.append(EOS)
    return out


def _write_tokens(path: Path, tokens: array.array[int]) -> None:
    if sys.byteorder != "little":
        tokens.byteswap()
    make_dir(path.parent)
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        with open(tmp, "wb") as f:
            tokens.tofile(f)
        os.replace(tmp, path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise OutputError(f"cannot write {path}: {exc.strerror or exc}") from None


def corpus_tokens(tokens_per_bucket: int) -> int:
    """Tokens the corpus holds, held-out included."""
    return sum(f.train_tokens + f.heldout_tokens for f in folders(tokens_per_bucket, tokens_per_bucket * 4))


def write_corpus(
    root: str | os.PathLike[str],
    *,
    seed: int = 0,
    tokens_per_bucket: int = 16_384,
    progress: Callable[[int], None] | None = None,
) -> dict[str, int]:
    """Write the corpus under `root`; the number of tokens written per training folder (held-out excluded).

    `progress`, when given, is called with the tokens just written (about `corpus_tokens` in all).
    """
    if not MIN_TOKENS_PER_BUCKET <= tokens_per_bucket <= MAX_TOKENS_PER_BUCKET:
        raise DemoDataError(
            f"tokens per bucket must be between {MIN_TOKENS_PER_BUCKET:,} and {MAX_TOKENS_PER_BUCKET:,}, "
            f"not {tokens_per_bucket:,} (the demo corpus is {len(TOPICS) * VIGINTILES} buckets and two sources)"
        )
    root = make_dir(root)  # the first folder: a root that cannot be made is named as such
    language = _language(seed)
    written: dict[str, int] = {}
    for folder in folders(tokens_per_bucket, tokens_per_bucket * 4):
        rng = random.Random(f"{seed}:{folder.path}")
        train = documents(rng, folder.train_tokens, folder.noise, language)
        heldout = documents(rng, folder.heldout_tokens, folder.noise, language)
        _write_tokens(root / folder.path / FILE, train)
        _write_tokens(root / folder.path / HELDOUT / FILE, heldout)
        written[folder.path] = len(train)
        if progress is not None:
            progress(len(train) + len(heldout))
    return written
