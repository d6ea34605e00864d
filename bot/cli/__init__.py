"""The `interview` command: a thin face over the core. One module per command group."""
from __future__ import annotations

import typer

from bot.cli import coach_cmd, corpus_cmd, eval_cmd, index_cmd, interview_cmd, model_cmd, score_cmd, slack_cmd, web_cmd

app = typer.Typer(help="interview-bot: LLM-graded mock interviews, offline by default.",
                  no_args_is_help=True, pretty_exceptions_enable=False, add_completion=False)
app.command("start")(interview_cmd.start)
app.command("grade")(interview_cmd.grade)
app.command("ingest")(index_cmd.ingest)
app.command("match")(index_cmd.match)
app.command("score")(score_cmd.score)
app.command("history")(coach_cmd.history)
app.command("progress")(coach_cmd.progress)
app.command("export")(coach_cmd.export)
app.command("import")(coach_cmd.import_history)
app.command("slack")(slack_cmd.slack)
app.command("web")(web_cmd.web)
app.command("eval")(eval_cmd.eval)
app.command("calibrate")(eval_cmd.calibrate)
corpus_cmd.app.command("keypoints")(eval_cmd.keypoints)
app.add_typer(corpus_cmd.app, name="corpus")
app.add_typer(model_cmd.app, name="model")


def main() -> None:
    app()
