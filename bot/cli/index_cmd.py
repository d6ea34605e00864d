"""`interview ingest` and `interview match`: the Chroma index of the corpus."""
from __future__ import annotations

import json
from pathlib import Path

import typer

from bot.cli import common
from bot.cli.common import err, handle_errors, out


@handle_errors
def ingest(corpus: list[Path] = typer.Option(None, "--corpus", "-c", help="Extra corpus file or folder (repeatable).")):
    """Embed the corpus into the Chroma index: adds new items, updates edited ones, deletes removed ones."""
    s = common.settings()
    if corpus:
        s.corpus_paths = s.corpus_paths + list(corpus)
    items = common.load_items(s)
    with err.status(f"embedding {len(items)} items…"):
        report = common.index(s, sync=False).ingest(items)
    out.print(f"Ingested {len(items)} items into {s.chroma_url or s.chroma_path}: {report.summary()}.")
    for label, ids in (("added", report.added), ("updated", report.updated), ("deleted", report.deleted)):
        if ids:
            out.print(f"  {label}: {', '.join(ids)}")


@handle_errors
def match(question: str = typer.Argument(..., help="A free-text question, Chinese or English."),
          k: int = typer.Option(3, "-k", help="How many candidates to show."),
          as_json: bool = typer.Option(False, "--json", help="Print JSON only.")):
    """Find the corpus question a free-text question asks for."""
    s = common.settings()
    idx = common.index(s, common.load_items(s))
    hits = idx.search(question, k)
    best = hits[0] if hits and hits[0].similarity >= s.match_threshold else None
    if as_json:
        print(json.dumps({"match": best.to_dict() if best else None, "threshold": s.match_threshold,
                          "candidates": [h.to_dict() for h in hits]}, ensure_ascii=False, indent=2))
        return
    if best is None:
        out.print(f"No match (best similarity {hits[0].similarity:.3f} < threshold {s.match_threshold}).")
    for h in hits:
        mark = "→" if best and h.item_id == best.item_id else " "
        out.print(f"{mark} {h.item_id}  {h.similarity:.3f}  {h.question}", highlight=False)
