"""`interview corpus ...`: validate corpus files."""
from __future__ import annotations

from pathlib import Path

import typer

from bot.cli.common import err, handle_errors, out, settings

app = typer.Typer(help="Check and inspect the question corpus.", no_args_is_help=True)


@app.command("check")
@handle_errors
def check(paths: list[Path] = typer.Argument(None, help="Files or folders (default: the configured corpus).")):
    """Validate corpus files; print `file:line: what is wrong` for each problem."""
    from bot.corpus import check_files

    s = settings()
    parsed, problems = check_files(paths or s.corpus_paths)
    for p in problems:
        out.print(p, highlight=False, markup=False, soft_wrap=True)
    n_items = sum(len(cf.items) for cf in parsed)
    if problems:
        err.print(f"[red]{len(problems)} problem(s)[/] in {len(parsed)} file(s).")
        raise typer.Exit(1)
    out.print(f"OK: {n_items} items in {len(parsed)} file(s).")


@app.command("list")
@handle_errors
def list_items(paths: list[Path] = typer.Argument(None, help="Files or folders (default: the configured corpus)."),
               packs: bool = typer.Option(False, "--packs", help="List the packs (name, language, items) instead of the questions."),
               pack: list[str] = typer.Option(None, "--pack", "-p", help="Only this pack's questions (repeatable)."),
               lang: str = typer.Option(None, "--lang", help="Only questions in this language: zh or en."),
               difficulty: str = typer.Option(None, "--difficulty", help="Only easy, medium or hard questions."),
               as_json: bool = typer.Option(False, "--json", help="Print JSON only.")):
    """List the questions with their ids, tags and difficulty, or the packs with --packs."""
    import json

    from rich.table import Table

    from bot.corpus import CorpusError, check_files, narrow

    s = settings()
    parsed, problems = check_files(paths or s.corpus_paths)
    if problems:
        raise CorpusError(problems)
    if packs:
        rows = [{"name": cf.meta.get("name", ""), "title": cf.meta.get("title", ""),
                 "language": cf.meta.get("language", ""), "domain": cf.meta.get("domain", ""),
                 "items": len(cf.items), "path": str(cf.path)} for cf in parsed]
        if as_json:
            print(json.dumps({"packs": rows, "items": sum(r["items"] for r in rows)}, ensure_ascii=False, indent=2))
            return
        t = Table()
        t.add_column("pack", no_wrap=True)
        t.add_column("language")
        t.add_column("items", justify="right")
        t.add_column("title")
        for r in rows:
            t.add_row(r["name"], r["language"], str(r["items"]), r["title"])
        out.print(t)
        out.print(f"{sum(r['items'] for r in rows)} items in {len(rows)} packs.")
        return
    items = narrow([i for cf in parsed for i in cf.items], packs=pack or None, language=lang, difficulty=difficulty)
    if as_json:
        print(json.dumps({"items": [{"id": i.id, "pack": i.corpus, "language": i.language, "question": i.question,
                                     "tags": i.tags, "difficulty": i.difficulty, "key_points": len(i.key_points)}
                                    for i in items]}, ensure_ascii=False, indent=2))
        return
    t = Table("id", "pack", "question", "tags", "difficulty", "key points")
    for i in items:
        t.add_row(i.id, i.corpus, i.question, ", ".join(i.tags), i.difficulty, str(len(i.key_points)))
    out.print(t)


@app.command("audit")
@handle_errors
def audit(packs: list[str] = typer.Argument(None, help="Pack names (default: every pack of the corpus)."),
          fmt: str = typer.Option("md", "--format", "-f", help="md, html or json."),
          out_path: Path = typer.Option(None, "--out", "-o", help="Write the report to this file instead of stdout."),
          model: bool = typer.Option(False, "--model", help="Also ask the configured LLM: its missing list and a fact "
                                                            "check of each reference statement (slow: seconds per item)."),
          corpus: list[Path] = typer.Option(None, "--corpus", "-c", help="Corpus file or folder instead of the configured one.")):
    """Audit every item: key points the reference does not state, doubtful statements, near-duplicate
    questions, repeated key points, missing fields. Exit 1 on errors, 0 with warnings only."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress

    from bot.audit import audit as run_audit
    from bot.errors import UsageError
    from bot.reports.audit import render_html, render_markdown

    fmt = fmt.strip().lower()
    if fmt not in ("md", "html", "json"):
        raise UsageError(f"Unknown --format {fmt!r}.", "Use md, html or json.")
    s = settings(corpus)
    if packs:
        from bot.corpus import check_files

        known = {cf.meta.get("name") for cf in check_files(s.corpus_paths)[0]}
        unknown = [p for p in packs if p not in known]
        if unknown:
            raise UsageError(f"No pack named {', '.join(unknown)}.", f"Use one of: {', '.join(sorted(known))}.")
    from bot.cli.common import llm

    model_llm = llm(s) if model else None
    with Progress("[progress.description]{task.description}", BarColumn(), MofNCompleteColumn(), console=err,
                  transient=True) as bar:
        task = bar.add_task("auditing", total=None)
        report = run_audit(s.corpus_paths, packs=packs or None, llm=model_llm,
                           progress=lambda done, total: bar.update(task, completed=done, total=total))
    if fmt == "json":
        import json

        text = json.dumps(report.to_dict(), ensure_ascii=False, indent=2)
    else:
        text = render_html(report) if fmt == "html" else render_markdown(report)
    if out_path is not None:
        out_path.parent.mkdir(parents=True, exist_ok=True)
        out_path.write_text(text + "\n", encoding="utf-8")
        err.print(f"Wrote {out_path}")
    else:
        print(text)
    err.print(f"{len(report.errors)} error(s), {len(report.warnings)} warning(s) in "
              f"{sum(report.packs.values())} items of {len(report.packs)} pack(s).")
    if report.errors:
        raise typer.Exit(1)


@app.command("import")
@handle_errors
def import_pack(path: Path = typer.Argument(..., help="CSV/TSV, JSON/JSONL, an Anki text export (.txt) or deck (.apkg)."),
                pack: str = typer.Option(..., "--pack", "-p", help="Name of the new pack (lowercase, e.g. my-ml-notes)."),
                fmt: str = typer.Option(None, "--format", help="csv, tsv, json, jsonl, anki or apkg (default: from the extension)."),
                lang: str = typer.Option(None, "--lang", help="zh or en (default: guessed from the text)."),
                title: str = typer.Option(None, "--title", help="A title for the pack."),
                no_model: bool = typer.Option(False, "--no-model", help="Draft missing key points from the answer's "
                                                                         "sentences instead of asking the model."),
                replace: bool = typer.Option(False, "--replace", help="Overwrite an imported pack of the same name.")):
    """Write a pack into the data dir from questions you keep elsewhere. Items without key points get
    drafted ones, marked `status: draft` for you to review (`interview corpus audit` lists them)."""
    import re

    from rich.progress import BarColumn, MofNCompleteColumn, Progress

    from bot import importers
    from bot.corpus import check_files
    from bot.errors import UsageError

    if not re.fullmatch(r"[a-z0-9][a-z0-9._-]{0,63}", pack):
        raise UsageError(f"--pack {pack!r} is not a pack name.", "Use lowercase letters, digits, '.', '_' or '-'.")
    if lang and lang not in ("zh", "en"):
        raise UsageError(f"--lang {lang!r} is not zh or en.")
    s = settings()
    rows = importers.read(path, fmt)  # every problem as file:line, before anything is written
    dest = s.packs_dir / f"{pack}.md"
    others = [cf for cf in check_files([p for p in s.corpus_paths if p.exists()])[0] if cf.path.resolve() != dest.resolve()]
    if any(cf.meta.get("name") == pack for cf in others):
        raise UsageError(f"A pack named {pack!r} already exists.", "Pick another --pack name.")
    draft = None
    if any(not r.key_points for r in rows) and not no_model:
        from bot.cli.common import llm
        from bot.evaluation.keypoints import KeyPointDrafter

        model = llm(s)
        if model is not None:
            draft = KeyPointDrafter(model, s.home / "keypoints").draft
    with Progress("[progress.description]{task.description}", BarColumn(), MofNCompleteColumn(), console=err,
                  transient=True) as bar:
        task = bar.add_task("drafting key points" if draft else "writing", total=len(rows))
        text, drafted = importers.render_pack(rows, pack, language=lang or importers.guess_language(rows), title=title,
                                              draft=draft, progress=lambda d, t: bar.update(task, completed=d))
    importers.write_pack(text, dest, replace=replace)
    out.print(f"Wrote {len(rows)} items to {dest} (pack {pack}).", soft_wrap=True)
    if drafted:
        out.print(f"{drafted} item(s) have drafted key points (status: draft): review them in the file, then "
                  f"`interview corpus audit {pack}`.", soft_wrap=True)
    out.print(f"Practise on it: interview start --pack {pack}", soft_wrap=True)
