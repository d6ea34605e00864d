"""`interview web`: the web face on this machine (bot.web), over the same core as the terminal."""
from __future__ import annotations

import os
import socket

import typer

from bot.cli import common
from bot.cli.common import err, handle_errors
from bot.errors import UsageError


@handle_errors
def web(host: str = typer.Option("127.0.0.1", "--host", help="Address to listen on; anything but this machine "
                                                               "needs INTERVIEW_WEB_TOKEN."),
        port: int = typer.Option(8000, "--port", help="Port to listen on."),
        profile: str = typer.Option(None, "--profile", help="Whose history a new browser starts with "
                                                            "(default: your user name; the page can switch)."),
        follow_ups: int = typer.Option(None, "--follow-ups", help="Follow-up questions per answer "
                                                                  "(default INTERVIEW_FOLLOW_UPS, 1).")):
    """Practise in the browser: interviews, grades as they happen, progress, the question bank, transcripts."""
    import uvicorn

    from bot.service import InterviewService
    from bot.web.app import create_app
    from bot.web.security import check_bind

    token = os.environ.get("INTERVIEW_WEB_TOKEN") or None
    s = common.settings()
    check_bind(host, token, s.web_user_header)  # before anything slow: a refusal comes at once
    try:  # a clear message for a port in use, rather than uvicorn's log line and exit 1
        with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            probe.bind((host, port))
    except OSError as e:
        raise UsageError(f"Cannot listen on {host}:{port}: {e.strerror}.", "Pick another --port, or stop what uses it.") from None
    items = common.load_items(s)
    # The model loads in the background: the first page shows at once, the first grading waits for it.
    service = InterviewService.open(s, items, background=True)
    app = create_app(s, service, token=token, owner=profile or common.owner(), follow_ups=follow_ups,
                     index=lambda: common.index(s, items), user_header=s.web_user_header)
    shown = "localhost" if host in ("127.0.0.1", "::1") else host
    err.print(f"interview web: open http://{shown}:{port}/" + (f"?token={token}" if token else "")
              + "  (Ctrl-C stops; answers are saved before they are graded)", soft_wrap=True, highlight=False)
    uvicorn.run(app, host=host, port=port, log_level="warning", timeout_graceful_shutdown=3)
    app.state.face.jobs.shutdown()
    if not service.close():
        os._exit(0)  # a call is still inside llama.cpp: skip the teardown that would free it under it
