"""The web face: a Starlette app over bot.service. Server-rendered pages (Jinja2, autoescaped: a
candidate's text is always text), one small script of our own for Ctrl+Enter and the progress
stream (server-sent events), no CDN: it works offline and without a build step.

The flow is the terminal's: an answer is saved before it is graded (bot.service.reply), graded in
a background job whose stages the page follows, then a follow-up on what it missed (kept in the
session's meta as Slack keeps it, so a restart keeps it too), then the next question. An answer
still pending when the server died is graded when its page is opened again."""
from __future__ import annotations

import asyncio
import json
import logging
import time
from pathlib import Path
from typing import Callable

from jinja2 import Environment, FileSystemLoader, select_autoescape
from markupsafe import Markup
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.middleware import Middleware
from starlette.middleware.base import BaseHTTPMiddleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, PlainTextResponse, RedirectResponse, Response, StreamingResponse
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from bot.errors import ConflictError, InterviewError, NotFoundError, UsageError
from bot.service import criterion_text
from bot.web import render, security
from bot.web.jobs import FAILED, Jobs
from bot.web.security import AUTH_COOKIE, CSRF_COOKIE, PROFILE_COOKIE, first

log = logging.getLogger(__name__)
HERE = Path(__file__).resolve().parent
CHANNEL = "web"
RESUMABLE = ("web", "terminal")  # Slack sessions live in their thread; the terminal's resume here
FOLLOW_UP = "follow-up"  # answers.source of an answer to a follow-up (bot.sessions.FOLLOW_UP)
MAX_ANSWER_CHARS = 20_000
MODES = {"mix": "what the coach plans (due first, then new)", "review": "only questions due for review",
         "new": "only questions I have not answered"}


def _page_error(e: InterviewError) -> int:
    return 404 if isinstance(e, NotFoundError) else 409 if isinstance(e, ConflictError) else 400


class WebFace:
    def __init__(self, settings, service, *, token: str | None = None, owner: str = "local",
                 follow_ups: int | None = None, index: Callable | None = None, workers: int = 32,
                 user_header: str = ""):
        self.settings, self.service = settings, service
        self.token, self.default_owner = token, owner
        self.user_header = user_header.lower()  # a sign-in proxy names the person (Settings.web_user_header)
        if follow_ups is not None:
            service.follow_ups = follow_ups
        self._index_fn, self._index = index, None
        self.jobs = Jobs(workers)
        self.env = Environment(loader=FileSystemLoader(HERE / "templates"), autoescape=select_autoescape(default=True),
                               trim_blocks=True, lstrip_blocks=True)
        self.env.globals.update(status=render.status, score_class=render.score_class, highlight=render.highlight,
                                criterion_text=criterion_text,
                                spark=lambda pts: Markup(_spark(pts)))
        items = list(self.service.items.values())
        self.packs = sorted({(i.corpus, i.language) for i in items})
        self.languages = sorted({i.language for i in items if i.language})
        self.topics = sorted({t for i in items for t in i.tags})

    # --- plumbing -------------------------------------------------------------------------
    def owner(self, request: Request) -> str:
        if self.user_header:
            return request.headers.get(self.user_header, "").strip()  # checked by Guard
        return request.cookies.get(PROFILE_COOKIE) or self.default_owner

    def page(self, request: Request, name: str, status: int = 200, **ctx) -> HTMLResponse:
        html = self.env.get_template(name).render(request=request, csrf=request.state.csrf,
                                                  owner=self.owner(request), signed_in=bool(self.user_header), **ctx)
        return HTMLResponse(html, status)

    def error(self, request: Request, status: int, message: str, hint: str | None = None) -> HTMLResponse:
        return self.page(request, "error.html", status, message=message, hint=hint)

    async def posted(self, request: Request, limit: int = security.MAX_FORM_BYTES):
        """The form of a POST whose CSRF token matches this browser's cookie, else a UsageError."""
        fields, files = await security.form(request, limit)
        if not security.same(first(fields, "csrf"), request.cookies.get(CSRF_COOKIE)):
            raise PermissionError()
        return fields, files

    def mine(self, request: Request, session_id: int):
        s = self.service.session(session_id)
        if s.owner != self.owner(request):
            raise NotFoundError(f"Session {session_id} belongs to another profile.",
                                f"Switch to profile {s.owner!r} at the top of the page to open it.")
        return s

    # --- grading jobs ---------------------------------------------------------------------
    def grade_job(self, rec):
        """Grade a saved answer in the background (once, however many pages ask), then take the
        session's next step (bot.service.go_on: a follow-up on what it missed, kept in the
        session so a restart or another tab keeps it, or the next question)."""
        def work(job):
            turn = self.service.go_on(rec, stage=job.say, preview=job.show_early)
            if turn.error is not None:
                raise turn.error
            return turn.grade
        return self.jobs.run(f"answer:{rec.id}", work, session_id=rec.session_id)[0]

    def resume(self, s) -> None:
        """Answers saved but never graded (the server stopped mid-grading): graded now."""
        for rec in self.service.ungraded(s):
            if rec.status == "pending":
                self.grade_job(rec)

    # --- pages ----------------------------------------------------------------------------
    async def home(self, request: Request, error: str | None = None, hint: str | None = None,
                   values: dict | None = None, status: int = 200):
        owner = self.owner(request)

        def load():
            active = [s for s in self.service.sessions(owner, limit=50)
                      if s.status == "active" and s.channel in RESUMABLE]
            return active, len(self.service.coach.due(owner))
        active, due = await run_in_threadpool(load)
        return self.page(request, "home.html", status, packs=self.packs, languages=self.languages, topics=self.topics,
                         modes=MODES, active=active, due=due, error=error, hint=hint, values=values or {})

    async def start(self, request: Request):
        fields, _ = await self.posted(request)
        values = {k: v if k == "packs" else first(fields, k) for k, v in fields.items()}
        try:
            count = int(first(fields, "count", "5"))
            if not 1 <= count <= 50:
                raise ValueError
        except ValueError:
            return await self.home(request, "The number of questions must be a whole number from 1 to 50.",
                                   None, values, 400)
        mode = first(fields, "mode", "mix")
        if mode not in MODES:
            return await self.home(request, f"Unknown plan {mode!r}.", "Pick one of the listed plans.", values, 400)
        known = {p for p, _ in self.packs}
        packs = [p for p in fields.get("packs", []) if p in known] or None
        try:
            s = await run_in_threadpool(lambda: self.service.start(
                self.owner(request), mode=mode, count=count, topic=first(fields, "topic").strip() or None,
                packs=packs, language=first(fields, "language") or None,
                difficulty=first(fields, "difficulty") or None, channel=CHANNEL))
        except InterviewError as e:
            return await self.home(request, e.message, e.hint, values, 400)
        return RedirectResponse(f"/s/{s.id}", 303)

    async def session_page(self, request: Request):
        sid = int(request.path_params["sid"])
        notice = request.query_params.get("notice")
        return await run_in_threadpool(self._session_page, request, sid, notice)

    def _session_page(self, request: Request, sid: int, notice: str | None, error: str | None = None,
                      draft: str = "", status: int = 200):
        s = self.mine(request, sid)
        self.resume(s)
        recs = self.service.answers(s, follow_ups=True)
        turns = []
        for rec in recs:
            job = self.jobs.get(f"answer:{rec.id}")
            running = job is not None and not job.finished
            turns.append({"rec": rec, "job": job if running else None,
                          "ahead": self.jobs.ahead(job) if running else 0,
                          "error": rec.error if rec.status == "error" else None})
        busy = self.jobs.busy(s.id)
        asked, summary = None, None
        s = self.service.session(sid)
        if s.status == "active" and not busy:
            asked = self.service.asking(s)
            self.service.prepare(asked.item if asked is not None else None)  # warm what its answer needs
            if asked is None:
                s = self.service.wrap_up(s)
        if s.status != "active" or (asked is None and not busy):
            summary = self.service.summary(s)
        return self.page(request, "session.html", status, s=s, turns=turns, busy=bool(busy), asked=asked,
                         summary=summary, notice=notice, error=error, draft=draft, max_chars=MAX_ANSWER_CHARS)

    async def answer(self, request: Request):
        sid = int(request.path_params["sid"])
        fields, _ = await self.posted(request)
        return await run_in_threadpool(self._answer, request, sid, fields)

    def _answer(self, request: Request, sid: int, fields):
        s = self.mine(request, sid)
        action, text = first(fields, "action", "answer"), first(fields, "text")
        back = RedirectResponse(f"/s/{sid}", 303)
        if s.status != "active":
            return RedirectResponse(f"/s/{sid}?notice=This+interview+is+over.", 303)
        if action == "stop":
            self.service.stop(s)
            return back
        if action == "answer" and not text.strip():
            return self._session_page(request, sid, None, "Write an answer first, or press Skip.", text, 400)
        if len(text) > MAX_ANSWER_CHARS:
            return self._session_page(request, sid, None, f"This answer has {len(text)} characters; the limit is "
                                      f"{MAX_ANSWER_CHARS}. Shorten it.", text, 400)
        if self.jobs.busy(sid):
            return RedirectResponse(f"/s/{sid}?notice=Your+previous+answer+is+still+being+graded.", 303)
        try:  # `asked`: what this page asked (a tab left open may ask what was answered elsewhere)
            if action == "skip":
                self.service.pass_on(s, to=first(fields, "asked"))
                return back
            rec = self.service.reply(s, text, to=first(fields, "asked"))  # saved before grading
        except ConflictError as e:
            return RedirectResponse(f"/s/{sid}?notice=" + _q(e.message), 303)
        self.grade_job(rec)
        return RedirectResponse(f"/s/{sid}#a{rec.id}", 303)

    async def retry(self, request: Request):
        sid = int(request.path_params["sid"])
        await self.posted(request)

        def go():
            s = self.mine(request, sid)
            for rec in self.service.ungraded(s):
                self.grade_job(rec)
        await run_in_threadpool(go)
        return RedirectResponse(f"/s/{sid}", 303)

    async def events(self, request: Request):
        """Server-sent events of one job: `stage` (what it waits for, its place in the queue; with
        `preview` once the grade's score is known, when the page reloads to show it while the model
        writes its corrections), then `done` (the page reloads to show the grade)."""
        key = request.path_params["key"]
        job = await run_in_threadpool(self._job_for, request, key)

        async def stream():
            yield "retry: 1000\n\n"
            if job is None:
                yield _sse("done", {"state": "done"})
                return
            sent, last = None, time.monotonic()
            while True:
                version = job.version
                now = {"stage": job.stage, "state": job.state, "ahead": self.jobs.ahead(job),
                       "error": job.error[0] if job.error else None, "preview": job.preview is not None}
                if now != sent:
                    sent, last = now, time.monotonic()
                    yield _sse("stage", now)
                if job.finished:
                    yield _sse("done", now)
                    return
                if time.monotonic() - last > 15:
                    last = time.monotonic()
                    yield ": still here\n\n"
                if await request.is_disconnected():
                    return
                # A change of this job wakes the stream at once; its place in the queue changes
                # with other jobs, so a waiting job looks again sooner.
                await job.changed(version, timeout=0.25 if now["ahead"] else 1.0)
        return StreamingResponse(stream(), media_type="text/event-stream",
                                 headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"})

    def _job_for(self, request: Request, key: str):
        kind, _, ident = key.partition(":")
        if kind == "answer" and ident.isdigit():
            rec = self.service.saved_answer(int(ident))
            if rec.session_id is None:
                raise NotFoundError(f"No answer {ident}.")
            s = self.mine(request, rec.session_id)
            job = self.jobs.get(key)
            if (job is None or job.finished) and rec.status == "pending" and s is not None:
                job = self.grade_job(rec)
            return job
        job = self.jobs.get(key)
        if kind != "score" or job is None or getattr(job, "owner", None) != self.owner(request):
            raise NotFoundError("No such grading here.", "It may have been started before the server restarted.")
        return job

    async def progress(self, request: Request):
        owner = self.owner(request)

        def load():
            return self.service.coach.progress(owner), self.service.coach.history(owner, limit=50)
        p, history = await run_in_threadpool(load)
        return self.page(request, "progress.html", p=p, history=history)

    async def bank(self, request: Request):
        owner = self.owner(request)
        pack, q = request.query_params.get("pack", ""), request.query_params.get("q", "").strip()
        cards = await run_in_threadpool(self.service.coach.cards, owner)
        items = [i for i in self.service.items.values() if (not pack or i.corpus == pack)
                 and (not q or q.lower() in (i.question + " " + " ".join(i.tags) + " " + i.id).lower())]
        items.sort(key=lambda i: (i.corpus, i.id))
        return self.page(request, "bank.html", items=items, answered=set(cards), pack=pack, q=q, packs=self.packs)

    async def item(self, request: Request):
        item = self.service.items.get(request.path_params["item_id"])
        if item is None:
            return self.error(request, 404, f"No question {request.path_params['item_id']!r} in the bank.",
                              "Pick one from the question bank.")
        cards = await run_in_threadpool(self.service.coach.cards, self.owner(request))
        return self.page(request, "item.html", item=item, answered=item.id in cards)

    async def practise(self, request: Request):
        await self.posted(request)
        item = self.service.items.get(request.path_params["item_id"])
        if item is None:
            return self.error(request, 404, "No such question in the bank.")
        s = await run_in_threadpool(lambda: self.service.start(self.owner(request), count=1, chosen=[item],
                                                               channel=CHANNEL))
        return RedirectResponse(f"/s/{s.id}", 303)

    async def score_form(self, request: Request, error: str | None = None, hint: str | None = None,
                         status: int = 200):
        return self.page(request, "score.html", status, error=error, hint=hint,
                         cap_mib=security.MAX_UPLOAD_BYTES // (1024 * 1024))

    async def score(self, request: Request):
        try:
            fields, files = await self.posted(request, security.MAX_UPLOAD_BYTES)
        except security.TooLarge:
            return await self.score_form(request, f"The file is larger than {security.MAX_UPLOAD_BYTES // 2**20} MiB.",
                                         "Split the transcript, or keep only the interview part.", 413)
        name, data = files.get("file", ("", b""))
        if not name or not data.strip():
            return await self.score_form(request, "Choose a transcript file first (it was empty or missing).",
                                         "Markdown, VTT, SRT, Otter text or JSON.", 400)
        if len(data) > security.MAX_UPLOAD_BYTES:
            return await self.score_form(request, f"{name} is larger than {security.MAX_UPLOAD_BYTES // 2**20} MiB.",
                                         "Split the transcript.", 413)
        try:
            text = data.decode("utf-8-sig")
        except UnicodeDecodeError:
            return await self.score_form(request, f"{name} is not UTF-8 text.", "Save it as UTF-8 and upload it again.",
                                         400)
        interviewer = first(fields, "interviewer").strip() or None
        key = "score:" + security.new_token()
        owner = self.owner(request)

        def work(job):
            if self._index is None:
                job.say("indexing the question bank (first time only)…")
                self._index = self._index_fn()
            from bot.reports.html import render_html

            report = self.service.score_transcript(
                text, Path(name).name, index=self._index, interviewer=interviewer,
                progress=lambda done, total: job.say(f"graded {done} of {total} questions…"))
            html = render_html(report)
            self._keep_score(key.partition(":")[2], owner, html)
            return html
        if self._index_fn is None:
            return await self.score_form(request, "Transcript scoring is not set up in this server.",
                                         "Start it with `interview web`.", 503)
        job, _ = self.jobs.run(key, work)
        job.owner = owner
        return RedirectResponse(f"/score/{key.partition(':')[2]}", 303)

    # A finished transcript score is kept in the data dir, so its link outlives the server: the
    # page of a score done before a restart (or by another replica) is read back from there.
    def _score_path(self, jid: str) -> Path:
        return self.settings.home / "web-scores" / f"{jid}.json"

    def _keep_score(self, jid: str, owner: str, html: str) -> None:
        path = self._score_path(jid)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(".partial")
            tmp.write_text(json.dumps({"owner": owner, "html": html}), encoding="utf-8")
            tmp.replace(path)
        except OSError:  # the score still shows from memory; only its later link is lost
            log.warning("could not keep the transcript score %s", path, exc_info=True)

    def _kept_score(self, jid: str, owner: str) -> str | None:
        if not security.TOKEN_RE.fullmatch(jid):
            return None
        try:
            kept = json.loads(self._score_path(jid).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        return kept.get("html") if kept.get("owner") == owner else None

    async def score_result(self, request: Request):
        key = "score:" + request.path_params["jid"]
        job = self.jobs.get(key)
        if job is None or getattr(job, "owner", None) != self.owner(request):
            kept = self._kept_score(request.path_params["jid"], self.owner(request))
            if kept is not None:
                return HTMLResponse(kept)
            return self.error(request, 404, "No such transcript score here.",
                              "A score still being made when the server stopped is lost: upload the transcript again.")
        if job.finished and job.state != FAILED:
            return HTMLResponse(job.result)
        return self.page(request, "score_wait.html", job=job, key=key)

    async def set_profile(self, request: Request):
        fields, _ = await self.posted(request)
        if self.user_header:
            return self.error(request, 403, "Your profile is the name you signed in with.",
                              "Sign in as the other person to see their history.")
        name = first(fields, "profile").strip()
        if not security.PROFILE_RE.match(name):
            return self.error(request, 400, f"{name!r} cannot be a profile name.",
                              "Use 1 to 64 letters, digits, '.', '_', '@' or '-'.")
        r = RedirectResponse("/", 303)
        r.set_cookie(PROFILE_COOKIE, name, max_age=3600 * 24 * 365, httponly=True, samesite="strict")
        return r


def _q(text: str) -> str:
    from urllib.parse import quote_plus

    return quote_plus(text)


def _sse(event: str, data: dict) -> str:
    return f"event: {event}\ndata: {json.dumps(data, ensure_ascii=False)}\n\n"


def _spark(points) -> str:
    from bot.reports.progress_html import _spark as spark  # the progress page's own chart

    return spark(points)


class Guard(BaseHTTPMiddleware):
    """Every request: the token when one is set (cookie, or ?token= once), a CSRF cookie, no
    cross-site posts, and headers that keep pages from running scripts they did not ship."""

    def __init__(self, app, face: WebFace):
        super().__init__(app)
        self.face = face

    async def dispatch(self, request: Request, call_next):
        face = self.face
        if face.user_header and request.url.path != "/healthz":
            user = request.headers.get(face.user_header, "").strip()
            if not security.PROFILE_RE.match(user):
                return _harden(PlainTextResponse(
                    "This interview server is reached through its sign-in page: the request did not say "
                    f"who is signed in (header {face.user_header}).", 401))
        if face.token:
            given = request.query_params.get("token")
            if given is not None and security.same(given, face.token):
                r = RedirectResponse(request.url.path, 303)
                r.set_cookie(AUTH_COOKIE, face.token, httponly=True, samesite="strict")
                return _harden(r)
            if not security.same(request.cookies.get(AUTH_COOKIE), face.token) and request.url.path != "/healthz":
                return _harden(PlainTextResponse(
                    "This interview server needs its access link: open the address `interview web` printed, "
                    "with ?token=... at the end.", 401))
        if request.method == "POST":
            origin = request.headers.get("origin")
            if origin and origin != "null" and origin.split("://", 1)[-1] != request.headers.get("host"):
                return _harden(PlainTextResponse("Cross-site form posts are refused.", 403))
        csrf = request.cookies.get(CSRF_COOKIE)
        request.state.csrf = csrf or security.new_token()
        try:
            response = await call_next(request)
        except PermissionError:
            response = face.error(request, 403, "This form has expired or came from another site.",
                                  "Reload the page and send it again (your text is not lost: go back).")
        if not csrf:
            response.set_cookie(CSRF_COOKIE, request.state.csrf, httponly=True, samesite="strict")
        return _harden(response)


def _harden(r: Response) -> Response:
    r.headers.setdefault("Content-Security-Policy", "default-src 'self'; script-src 'self'; "
                         "style-src 'self' 'unsafe-inline'; img-src 'self' data:; frame-ancestors 'none'")
    r.headers.setdefault("X-Content-Type-Options", "nosniff")
    r.headers.setdefault("Referrer-Policy", "no-referrer")
    return r


def create_app(settings, service, **kw) -> Starlette:
    """The ASGI app (kw: WebFace's options). app.state.face is the face (tests, benchmarks)."""
    face = WebFace(settings, service, **kw)

    async def on_interview_error(request: Request, e: InterviewError):
        return face.error(request, _page_error(e), e.message, e.hint)

    async def on_permission(request: Request, e: PermissionError):
        return face.error(request, 403, "This form has expired or came from another site.",
                          "Reload the page and send it again.")

    async def on_too_large(request: Request, e):
        return face.error(request, 413, "That is too much text for one form.", "Shorten it.")

    async def on_bug(request: Request, e: Exception):
        log.exception("web request failed")
        return face.error(request, 500, f"Internal error: {type(e).__name__}.",
                          "This is a bug; the server's log has the details. Your saved answers are kept.")

    async def report_css(request: Request):
        from bot.reports.html import CSS

        return Response(CSS, media_type="text/css", headers={"Cache-Control": "max-age=3600"})

    async def healthz(request: Request):
        return PlainTextResponse("ok")

    routes = [
        Route("/", face.home), Route("/start", face.start, methods=["POST"]),
        Route("/s/{sid:int}", face.session_page), Route("/s/{sid:int}/answer", face.answer, methods=["POST"]),
        Route("/s/{sid:int}/retry", face.retry, methods=["POST"]),
        Route("/events/{key}", face.events),
        Route("/progress", face.progress), Route("/bank", face.bank), Route("/bank/{item_id}", face.item),
        Route("/bank/{item_id}/practise", face.practise, methods=["POST"]),
        Route("/score", face.score_form), Route("/score", face.score, methods=["POST"]),
        Route("/score/{jid}", face.score_result),
        Route("/profile", face.set_profile, methods=["POST"]),
        Route("/healthz", healthz), Route("/static/report.css", report_css),
        Mount("/static", StaticFiles(directory=HERE / "static"), name="static"),
    ]
    app = Starlette(routes=routes, middleware=[Middleware(Guard, face=face)],
                    exception_handlers={InterviewError: on_interview_error, PermissionError: on_permission,
                                        security.TooLarge: on_too_large, Exception: on_bug})
    app.state.face = face
    return app
