"""`interview ingest` and `interview match`: the Chroma index of the corpus."""
from __future__ import annotations

import json
from pathlib import Path

import typer

from bot.cli import common
from bot.cli.common import err, handle_errors, out


@handle_errors
def ingest(corpus: list[Path] = typer.Option(None, "--corpus", "-c", help="Extra corpus file or folder (repeatable)."),
           prune: bool = typer.Option(False, "--prune", help="Also remove from the index every pack not in the corpus.")):
    """Embed the corpus into the Chroma index: adds new items, updates edited ones, deletes items removed
    from their pack. Packs not in the corpus stay in the index unless --prune."""
    s = common.settings()
    if corpus:
        s.corpus_paths = s.corpus_paths + list(corpus)
    items = common.load_items(s)
    with err.status(f"embedding {len(items)} items…"):
        report = common.index(s, sync=False).ingest(items, prune=prune)
    out.print(f"Ingested {len(items)} items into {s.chroma_url or s.chroma_path}: {report.summary()}.", soft_wrap=True)
    for label, ids in (("added", report.added), ("updated", report.updated), ("deleted", report.deleted)):
        if ids:
            out.print(f"  {label}: {', '.join(ids)}", soft_wrap=True)


@handle_errors
def match(question: str = typer.Argument(..., help="A free-text question, Chinese or English."),
          k: int = typer.Option(3, "-k", help="How many candidates to show."),
          as_json: bool = typer.Option(False, "--json", help="Print JSON only.")):
    """Find the corpus question a free-text question asks for."""
    from bot.matching import QuestionMatcher

    s = common.settings()
    items = common.load_items(s)
    matcher = QuestionMatcher(common.index(s, items), {i.id: i for i in items}, k=max(k, 5))
    m = matcher.best(question)
    ranked = m.candidates[:k]
    best = ranked[0] if ranked and m.matched else None
    questions = {i.id: i.question for i in items}
    if as_json:
        cands = [{"question_id": iid, "question": questions[iid], "similarity": sc} for sc, iid in ranked]
        print(json.dumps({"match": cands[0] if best else None, "confidence": m.confidence, "threshold": matcher.threshold,
                          "candidates": cands}, ensure_ascii=False, indent=2))
        return
    if best is None:
        out.print(f"No match (match confidence {m.confidence:.2f} < threshold {matcher.threshold})." if ranked
                  else "No match.")
    for sc, iid in ranked:
        mark = "→" if best and iid == best[1] else " "
        out.print(f"{mark} {iid}  {sc:.3f}  {questions[iid]}", highlight=False)
