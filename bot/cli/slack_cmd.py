"""`interview slack`: run the Slack app (Socket Mode by default, `--http` for the Events API)."""
from __future__ import annotations

import logging

import typer

from bot.cli import common
from bot.cli.common import err, handle_errors
from bot.errors import UsageError


@handle_errors
def slack(http: bool = typer.Option(False, "--http", help="Serve the Events API over HTTP instead of Socket Mode "
                                                          "(needs SLACK_SIGNING_SECRET and a public URL)."),
          port: int = typer.Option(3000, "--port", help="HTTP port for --http; Slack posts to /slack/events.")):
    """Run the Slack app: /interview, answers in threads, transcript scoring, App Home."""
    from bot.service import InterviewService
    from bot.slack.app import RedactTokens, build_app, http_server, load_slack_config, run_socket_mode

    config = load_slack_config(http=http)  # first: a token problem is reported before slow loading
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    for handler in logging.getLogger().handlers:
        handler.addFilter(RedactTokens())

    s = common.settings()
    items = common.load_items(s)
    idx = common.index(s, items)  # synced now, so the first transcript is scored without a wait
    service = InterviewService.open(s, items, llm=common.llm(s))
    app = build_app(s, service, config=config, index=idx, base_url=config.api_url, sweep_every=s.sweep_every)
    if http:
        try:
            server = http_server(app, port=port)
        except OSError as e:
            raise UsageError(f"Cannot listen on port {port}: {e.strerror}.", "Pick another --port.") from None
        err.print(f"Listening for Slack events on http://0.0.0.0:{port}/slack/events (Ctrl-C stops).")
        try:
            server.serve_forever()
        except KeyboardInterrupt:
            server.server_close()
            _stop(service)
        server.server_close()
    else:
        err.print("Connecting to Slack in Socket Mode (Ctrl-C stops).")
        try:
            run_socket_mode(app, config.app_token)
        except KeyboardInterrupt:
            _stop(service)


def _stop(service) -> None:
    """Ctrl-C: answers are saved before they are graded, and one still pending is graded when the
    app starts again; wait for the model to be free (no crash at exit), then exit 130."""
    import os
    import sys

    sys.__stderr__.write("\nStopped. Answers not graded yet are graded when the app starts again.\n")
    sys.__stderr__.flush()
    if not service.close():
        os._exit(130)  # a call is still inside llama.cpp: skip the teardown that would free it
    raise typer.Exit(130)
