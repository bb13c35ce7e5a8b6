"""`olmix demo-data`: write the synthetic demo corpus."""

from __future__ import annotations

import sys

import click

from olmix.cli import echo, reports_errors
from olmix.commands.options import examples
from olmix.demodata import MAX_TOKENS_PER_BUCKET, MIN_TOKENS_PER_BUCKET


@click.command(
    "demo-data",
    epilog=examples("olmix demo-data demo/data", "olmix demo-data /tmp/corpus --seed 1 --tokens-per-bucket 65536"),
)
@click.argument("directory", type=click.Path(file_okay=False))
@click.option("--seed", type=int, default=0, show_default=True, help="Same seed, same corpus, byte for byte.")
@click.option(
    "--tokens-per-bucket",
    type=click.IntRange(min=MIN_TOKENS_PER_BUCKET, max=MAX_TOKENS_PER_BUCKET),
    default=16_384,
    show_default=True,
    help="Training tokens per quality bucket (arxiv and wikipedia get four times as many), "
    f"{MIN_TOKENS_PER_BUCKET:,} to {MAX_TOKENS_PER_BUCKET:,}.",
)
@reports_errors
def demo_data(directory: str, seed: int, tokens_per_bucket: int) -> None:
    """Write a small synthetic corpus in the layout of s3://ai2-llm/preprocessed/ under DIRECTORY.

    Six all_dressed topics × 20 vigintiles, arxiv and wikipedia; headerless
    uint32 dolma2 token files, every document ending with EOS; higher
    vigintiles are more learnable. Each training folder has a `heldout/`
    folder beside its files that a `*.npy` glob does not match. Point a
    config at it with --path-map s3://ai2-llm/preprocessed/=DIRECTORY/.
    """
    from olmix.demodata import corpus_tokens, write_corpus

    # a bar on a terminal (the largest corpus takes minutes); nothing in a log
    bar = click.progressbar(length=corpus_tokens(tokens_per_bucket), label="writing tokens", file=sys.stderr)
    with bar:
        written = write_corpus(directory, seed=seed, tokens_per_bucket=tokens_per_bucket, progress=bar.update)
    echo(f"wrote {len(written)} training folders, {sum(written.values()):,} training tokens, under {directory}")
