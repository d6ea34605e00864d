"""The web face (`interview web`, issue #26) in a real browser: Debian's Chromium driven by
Playwright, against a real uvicorn server over the real service, grading through the fake
OpenAI-compatible endpoint (the key-point judge runs for real).

Screenshots: INTERVIEW_WEB_SCREENSHOTS=docs/img pytest -q tests/test_web.py -k screenshots
writes each page at 1280 px and at 390 px (a phone) for docs/web.md."""
from __future__ import annotations

import os
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.conftest import DATA, MINI_CORPUS, REPO
from tests.fake_openai import FakeOpenAI, fill
from tests.servers import free_port

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
AXE = DATA / "axe" / "axe.min.js"
SHOTS = os.environ.get("INTERVIEW_WEB_SCREENSHOTS")
GRADE_WAIT_MS = 240_000  # the first grading loads the judge: a minute on a busy two-core machine
XSS = "<script>alert(1)</script>"
TRANSCRIPT = """# Mock interview

**Q:** What is overfitting and how do you prevent it?

**A:** Overfitting means low training error but high test error. Regularization such as dropout helps.

**Q:** What does a learning rate that is too high do to gradient descent?

**A:** It overshoots the minimum and the loss oscillates or diverges.
"""


def reply_to(body: dict):
    """Any grading, follow-up or rubric request: the smallest reply valid under its schema."""
    fmt = body.get("response_format") or {}
    schema = (fmt.get("json_schema") or {}).get("schema") or fmt.get("schema") or {"type": "object"}
    if set(schema.get("properties") or {}) == {"question"}:  # a follow-up, as the screenshots show it
        return {"question": "How would you notice it during training, before the test set tells you?"}
    return fill(schema)


def _needs_browser():
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        missing = "Playwright is not installed (pip install -e '.[test]')."
    else:
        missing = None if Path(CHROMIUM).exists() else "Chromium is not installed (.ci/run installs it)."
    if missing:
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail(missing)
        pytest.skip(missing)


@contextmanager
def serving(app):
    """A real uvicorn server in a thread on a free loopback port."""
    import uvicorn

    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert time.monotonic() < deadline and thread.is_alive(), "the web server did not start"
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)


class Web:
    def __init__(self, url, service, settings, fake):
        self.url, self.service, self.settings, self.fake = url, service, settings, fake


@contextmanager
def web_over(home: Path, fake: FakeOpenAI):
    """`interview web` in a thread over `home`, the mini corpus and `fake` (one follow-up)."""
    from bot.config import load_settings
    from bot.corpus import load_items
    from bot.service import InterviewService
    from bot.web.app import create_app

    fake.default = reply_to
    s = load_settings({"INTERVIEW_HOME": str(home), "INTERVIEW_LLM_BASE_URL": fake.base_url,
                       "INTERVIEW_LLM_MODEL": "fake-model"})
    s.corpus_paths = [MINI_CORPUS]
    items = load_items([MINI_CORPUS])
    service = InterviewService.open(s, items, background=True)

    def index():
        from bot.index import QuestionIndex

        idx = QuestionIndex(s)
        idx.ingest(items)
        return idx
    app = create_app(s, service, owner="alice", follow_ups=1, index=index)
    try:
        with serving(app) as url:
            yield Web(url, service, s, fake)
    finally:
        service.close()


@pytest.fixture(scope="module")
def web(tmp_path_factory):
    with FakeOpenAI() as fake, web_over(tmp_path_factory.mktemp("web-home"), fake) as w:
        yield w


@pytest.fixture(scope="module")
def browser():
    _needs_browser()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield b
        b.close()


def person(browser, web, profile: str, **kw):
    """A browser context of its own (its own cookies: one person) on `profile`. CSP is bypassed so
    that axe can be injected: escaping, not the CSP, must keep an answer's script from running."""
    ctx = browser.new_context(bypass_csp=True, **kw)
    page = ctx.new_page()
    page.on("dialog", lambda d: pytest.fail(f"a page opened a dialog: {d.message}"))
    page.goto(web.url + "/")
    page.fill("#profile", profile)
    page.press("#profile", "Enter")
    page.wait_for_url(web.url + "/")
    assert page.input_value("#profile") == profile
    return ctx, page


def tab_to(page, selector: str, limit: int = 60) -> None:
    """Press Tab until `selector` has the focus: it is reachable by keyboard, in focus order."""
    for _ in range(limit):
        if page.evaluate("s => document.activeElement && document.activeElement.matches(s)", selector):
            return
        page.keyboard.press("Tab")
    pytest.fail(f"{selector} is not reachable with Tab")


def start_one(page, web, count: int = 1, topic: str = "overfitting") -> str:
    """Start an interview from the home page, by keyboard; returns its URL."""
    page.goto(web.url + "/")
    tab_to(page, "#topic")
    page.keyboard.type(topic)
    tab_to(page, "#count")
    page.keyboard.press("Control+A")
    page.keyboard.type(str(count))
    tab_to(page, "form.start button[type=submit]")
    page.keyboard.press("Enter")
    page.wait_for_selector("form[data-answer-form] textarea")
    return page.url


def answer(page, text: str) -> float:
    """Type an answer into the focused text area and send it with Ctrl+Enter; the seconds until
    the progress line shows (or the grade itself: a quick grade replaces the progress line before
    a poll sees it, which made this wait time out now and then)."""
    assert page.evaluate("document.activeElement.tagName") == "TEXTAREA"  # focused on arrival
    page.keyboard.insert_text(text)
    t0 = time.monotonic()
    page.keyboard.press("Control+Enter")
    page.wait_for_selector(".progress, [data-grade]", timeout=10_000)
    return time.monotonic() - t0


def axe_serious(page) -> list[dict]:
    page.add_script_tag(path=str(AXE))
    found = page.evaluate("""async () => (await axe.run(document, {runOnly: ['wcag2a', 'wcag2aa', 'wcag21aa',
        'best-practice']})).violations.map(v => ({id: v.id, impact: v.impact, help: v.help,
        where: v.nodes.slice(0, 3).map(n => n.target.join(' '))}))""")
    return [v for v in found if v["impact"] in ("serious", "critical")]


def shot(page, name: str) -> None:
    if SHOTS:
        Path(SHOTS).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(SHOTS) / f"{name}.png"), full_page=True)


# --- in the browser ---------------------------------------------------------------------------

def test_keyboard_only_start_answer_grade_follow_up_summary_progress(browser, web):
    ctx, page = person(browser, web, "alice")
    url = start_one(page, web)
    assert "Question 1 of 1" in page.inner_text("form[data-answer-form]")
    assert axe_serious(page) == []
    waited = answer(page, "Overfitting means low training error but high test error. The model memorises noise.")
    print(f"\nprogress shown {waited:.2f} s after Ctrl+Enter")
    assert waited < 2.0  # target 0.5 s (docs/web.md has the measurement)
    page.wait_for_selector("[data-grade]", timeout=GRADE_WAIT_MS)
    card = page.locator(".turn").first
    # the candidate's own words, marked in their answer and numbered like the key point
    marks = card.locator(".answer mark.ev")
    assert marks.count() >= 1
    assert "Overfitting means low training error but high test error." in marks.first.inner_text()
    assert card.locator("table.kp tr").count() == 5
    assert card.locator("details summary", has_text="Reference answer").count() == 1
    # the follow-up, in the same conversation
    form = page.locator("form[data-answer-form]")
    assert "Follow-up to question 1" in form.inner_text()
    assert axe_serious(page) == []
    answer(page, "Dropout and weight decay reduce overfitting.")
    page.wait_for_selector("#summary", timeout=GRADE_WAIT_MS)
    assert page.locator(".turn").count() == 2 and page.locator(".turn [data-grade]").count() == 2
    assert "Summary" in page.inner_text("#summary")
    assert axe_serious(page) == []
    tab_to(page, "nav a[href='/progress']")
    page.keyboard.press("Enter")
    page.wait_for_url(web.url + "/progress")
    assert page.locator("svg.chart").count() >= 1  # the progress report's own sparklines
    assert page.locator(f"a[href='{url.removeprefix(web.url)}']").count() == 1  # the past interview, linked
    assert axe_serious(page) == []
    ctx.close()


def test_the_score_shows_while_the_model_still_looks_for_wrong_claims(browser, tmp_path):
    """Issue #27 in the browser: with token probabilities the fact check comes first and fixes the
    score, so the page shows the grade (score, key points, evidence) while the model's reply is
    still on its way, then fills in its corrections."""
    said = "Overfitting means low training error but high test error, and more data always makes it worse."
    wrong = "more data always makes it worse"
    release = threading.Event()

    def held(body):
        assert release.wait(60), "the test never let the reply go"
        out = reply_to(body)
        out["wrong_claims"] = [{"claim": wrong, "correction": "More data usually reduces overfitting."}]
        return out

    with FakeOpenAI() as fake, web_over(tmp_path, fake) as web:
        # a server that gives token probabilities (the backend remembers one that gave none)
        fake.top_logprobs = {"true": -0.2, "false": -1.7}
        fake.queue(held)
        ctx, page = person(browser, web, "erin")
        try:
            _early_then_complete(page, web, said, wrong, release)
        finally:
            release.set()
            ctx.close()


def _early_then_complete(page, web, said: str, wrong: str, release: threading.Event) -> None:
    """The grade shows while the reply is held, without corrections; then with them, same score."""
    start_one(page, web)
    answer(page, said)
    page.wait_for_selector("[data-grade]", timeout=GRADE_WAIT_MS)
    card = page.locator(".turn").first
    assert not release.is_set()  # the reply is still held: this is the early grade
    assert "looking for wrong claims" in card.locator(".progress").inner_text()
    early_score = card.locator(".overall .big").inner_text()
    assert card.locator("table.kp tr").count() == 5 and card.locator(".answer mark.ev").count() >= 1
    assert card.locator("h3", has_text="Wrong claims").count() == 0
    release.set()
    page.wait_for_selector(".turn h3:has-text('Wrong claims')", timeout=GRADE_WAIT_MS)
    card = page.locator(".turn").first
    assert card.locator(".progress").count() == 0
    assert wrong in card.locator("ul.wrong").inner_text()
    assert card.locator(".overall .big").inner_text() == early_score  # the reply leaves the score as it was


def test_an_answer_with_a_script_renders_as_text(browser, web):
    ctx, page = person(browser, web, "mallory")
    start_one(page, web)
    answer(page, f"Overfitting is bad {XSS} and <img src=x onerror=alert(2)>")
    page.wait_for_selector("[data-grade]", timeout=GRADE_WAIT_MS)
    shown = page.locator(".turn .answer").first
    assert XSS in shown.inner_text()  # as text, not as markup
    assert shown.locator("script, img").count() == 0
    assert page.evaluate("typeof window.alert") == "function"  # the dialog handler fails on any alert
    ctx.close()


def test_two_people_at_once_each_see_only_their_own(browser, web):
    (cb, bob), (cc, carol) = person(browser, web, "bob"), person(browser, web, "carol")
    bob_url, carol_url = start_one(bob, web), start_one(carol, web)
    bob.keyboard.insert_text("Bob: overfitting means low training error but high test error.")
    carol.keyboard.insert_text("Carol: the model memorises noise instead of the general pattern.")
    bob.keyboard.press("Control+Enter")
    carol.keyboard.press("Control+Enter")
    for page, who in ((bob, "Bob:"), (carol, "Carol:")):
        page.wait_for_selector("[data-grade]", timeout=GRADE_WAIT_MS)
        assert who in page.inner_text(".turn .answer")
    carol.goto(bob_url)
    assert "belongs to another profile" in carol.inner_text("main")
    assert "Bob:" not in carol.content()
    bob.goto(web.url + "/progress")
    carol.goto(web.url + "/progress")
    assert bob_url.removeprefix(web.url) in bob.content() and bob_url.removeprefix(web.url) not in carol.content()
    cb.close()
    cc.close()


def test_transcript_upload_shows_the_report_and_the_bank_shows_key_points_after_answering(browser, web, tmp_path):
    ctx, page = person(browser, web, "tom")
    page.goto(web.url + "/bank/ml-001")
    assert "Answer this question once" in page.inner_text("main")
    assert axe_serious(page) == []
    page.goto(web.url + "/score")
    assert axe_serious(page) == []
    f = tmp_path / "mock.md"
    f.write_text(TRANSCRIPT, encoding="utf-8")
    page.set_input_files("#file", str(f))
    page.click("form button.primary")
    page.wait_for_selector("text=Transcript score", timeout=GRADE_WAIT_MS)
    assert "What is overfitting" in page.inner_text("body")
    assert page.locator("svg[aria-label='Score per question']").count() == 1
    # the score's link outlives the server (a new app over the same data dir), for its person only
    from bot.web.app import create_app

    report = page.url.removeprefix(web.url)
    with serving(create_app(web.settings, web.service, owner="alice")) as again:
        page.goto(again + report)
        assert "What is overfitting" in page.inner_text("body")
        stranger = browser.new_context()
        assert "No such transcript score" in stranger.new_page().goto(again + report).text()
        stranger.close()
    # the bank: key points only once the person has answered the item
    page.goto(web.url + "/bank/ml-001")
    page.click("text=Practise this question")
    page.wait_for_selector("form[data-answer-form] textarea")
    answer(page, "Overfitting: low training error, high validation error.")
    page.wait_for_selector("[data-grade]", timeout=GRADE_WAIT_MS)
    page.goto(web.url + "/bank/ml-001")
    assert "Early stopping on a validation set prevents overfitting" in page.inner_text("main")
    ctx.close()


def test_server_killed_mid_grading_grades_the_answer_when_reopened(browser, tmp_path):
    _needs_browser()
    home = tmp_path / "home"
    with FakeOpenAI() as fake:
        fake.queue(("sleep", 120, reply_to))  # the first grading hangs until the server is killed
        fake.default = reply_to
        env = {**os.environ, "INTERVIEW_HOME": str(home), "INTERVIEW_CORPUS": str(MINI_CORPUS),
               "INTERVIEW_LLM_BASE_URL": fake.base_url, "INTERVIEW_LLM_MODEL": "fake-model", "INTERVIEW_FOLLOW_UPS": "0"}
        port = free_port()
        url = f"http://127.0.0.1:{port}"

        def launch():
            log = open(tmp_path / f"web-{time.monotonic_ns()}.log", "wb")
            proc = subprocess.Popen([sys.executable, "-m", "bot", "web", "--port", str(port), "--profile", "dana"],
                                    env=env, cwd=REPO, stdout=log, stderr=subprocess.STDOUT)
            deadline = time.monotonic() + 120
            while True:
                try:
                    urllib.request.urlopen(url + "/healthz", timeout=2).read()
                    return proc
                except OSError:
                    assert proc.poll() is None and time.monotonic() < deadline, Path(log.name).read_text()[-2000:]
                    time.sleep(0.2)

        proc = launch()
        ctx = browser.new_context()
        page = ctx.new_page()
        try:
            page.goto(url + "/")
            start_one(page, Web(url, None, None, None))
            session_url = page.url
            answer(page, "Overfitting means low training error but high test error.")
            deadline = time.monotonic() + GRADE_WAIT_MS / 1000
            while not fake.requests:  # the grading reached the model
                assert time.monotonic() < deadline and proc.poll() is None
                time.sleep(0.1)
            proc.send_signal(signal.SIGKILL)
            proc.wait(10)
            with sqlite3.connect(home / "history.sqlite3") as db:
                assert db.execute("SELECT status FROM answers").fetchall() == [("pending",)]  # saved, not lost
            proc = launch()
            page.goto(session_url)  # reopening grades what was pending
            page.wait_for_selector("[data-grade]", timeout=GRADE_WAIT_MS)
            assert "Overfitting means low training error" in page.inner_text(".turn .answer")
            with sqlite3.connect(home / "history.sqlite3") as db:
                assert db.execute("SELECT status, source FROM answers").fetchall() == [("graded", "session")]
            assert len(fake.requests) == 2  # the killed attempt and one grading after the restart
        finally:
            ctx.close()
            proc.kill()
            proc.wait(10)


def test_with_the_embedded_model_a_strong_answer_gets_its_grade_and_a_follow_up(browser, tmp_path):
    """One run as a new user has it: `interview web` with the embedded defaults (the bundled
    Qwen2.5 GGUF through llama.cpp, no endpoint), a good answer that leaves one point out typed
    in the browser, its grade, the follow-up on that point and its grade, the summary."""
    _needs_browser()
    env = {k: v for k, v in os.environ.items() if not k.startswith("INTERVIEW_LLM_")}
    env.update(INTERVIEW_HOME=str(tmp_path / "home"), INTERVIEW_CORPUS=str(MINI_CORPUS), INTERVIEW_FOLLOW_UPS="1")
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log = open(tmp_path / "web.log", "wb")
    proc = subprocess.Popen([sys.executable, "-m", "bot", "web", "--port", str(port), "--profile", "erin"],
                            env=env, cwd=REPO, stdout=log, stderr=subprocess.STDOUT)
    ctx = browser.new_context()
    page = ctx.new_page()
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                urllib.request.urlopen(url + "/healthz", timeout=2).read()
                break
            except OSError:
                assert proc.poll() is None and time.monotonic() < deadline, (tmp_path / "web.log").read_text()[-2000:]
                time.sleep(0.2)
        start_one(page, Web(url, None, None, None))
        t0 = time.monotonic()
        waited = answer(page, "Overfitting is when a model does well on the training data but badly on validation "
                              "or test data: it memorises the noise instead of the general pattern. I prevent it "
                              "with regularization such as L2 weight decay and dropout, and with early stopping "
                              "on a validation set.")
        page.wait_for_selector("[data-grade]", timeout=GRADE_WAIT_MS)
        print(f"\nembedded model: progress {waited:.2f} s, grade {time.monotonic() - t0:.1f} s after Ctrl+Enter")
        card = page.locator(".turn").first
        score = float(card.locator(".overall .big").inner_text())
        covered = card.locator("table.kp td.st.ok").count()
        assert score >= 6.0 and covered >= 3, (score, covered, card.inner_text())
        assert card.locator(".answer mark.ev").count() >= 2  # the candidate's own words, marked
        page.wait_for_selector("form[data-answer-form]", timeout=GRADE_WAIT_MS)  # more data was left out
        follow_up = page.locator("form[data-answer-form]").inner_text()
        print(f"follow-up {time.monotonic() - t0:.1f} s after Ctrl+Enter:", follow_up.splitlines()[:2])
        assert "Follow-up to question 1" in follow_up
        answer(page, "More training data, or data augmentation when data is scarce, also reduces overfitting.")
        page.wait_for_selector("#summary", timeout=GRADE_WAIT_MS)
        assert page.locator(".turn [data-grade]").count() == 2
        shot(page, "embedded-session-desktop")
    finally:
        ctx.close()
        proc.terminate()
        proc.wait(30)


def test_screenshots_and_accessibility_of_every_page(browser, web):
    """Every page at 1280 px and at 390 px: no serious accessibility violation (axe-core)."""
    for width, height, suffix in ((1280, 900, "desktop"), (390, 844, "phone")):
        ctx, page = person(browser, web, f"erin-{suffix}", viewport={"width": width, "height": height})
        url = start_one(page, web)
        shot(page, f"question-{suffix}")
        answer(page, "Overfitting means low training error but high test error. Dropout and weight decay help.")
        shot(page, f"grading-{suffix}")
        page.wait_for_selector("[data-grade]", timeout=GRADE_WAIT_MS)
        shot(page, f"grade-{suffix}")
        pages = {"home": "/", "progress": "/progress", "bank": "/bank", "item": "/bank/ml-001", "score": "/score",
                 "error": "/s/999999"}
        for name, path in pages.items():
            page.goto(web.url + path)
            assert axe_serious(page) == [], name
            shot(page, f"{name}-{suffix}")
        page.goto(url)
        assert axe_serious(page) == []
        ctx.close()


# --- over HTTP: safety and bad input ----------------------------------------------------------

def _get(url: str, headers: dict | None = None, data: bytes | None = None):
    req = urllib.request.Request(url, data=data, headers=headers or {}, method="POST" if data is not None else "GET")
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, r.read().decode(), r.headers
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode(), e.headers


def test_forms_need_their_csrf_token_and_same_origin(web):
    status, body, headers = _get(web.url + "/")
    assert status == 200 and "script-src 'self'" in headers["Content-Security-Policy"]
    cookie = headers["Set-Cookie"].split(";")[0]
    token = cookie.split("=", 1)[1]
    form = b"count=1&mode=mix&csrf="
    status, body, _ = _get(web.url + "/start", {"Cookie": cookie}, form + b"wrong")
    assert status == 403 and "expired or came from another site" in body and "Traceback" not in body
    status, body, _ = _get(web.url + "/start", {"Cookie": cookie, "Origin": "http://evil.example"},
                           form + token.encode())
    assert status == 403
    status, _, headers = _get(web.url + "/start", {"Cookie": cookie}, form + token.encode())
    assert status == 200  # followed to the new interview


def test_an_upload_over_the_cap_is_refused_with_a_message(web):
    from bot.web.security import MAX_UPLOAD_BYTES

    status, _, headers = _get(web.url + "/score")
    cookie = headers["Set-Cookie"].split(";")[0]
    token = cookie.split("=", 1)[1]
    boundary = "XyZ"
    body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"csrf\"\r\n\r\n{token}\r\n"
            f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"big.md\"\r\n"
            "Content-Type: text/markdown\r\n\r\n").encode() + b"x" * (MAX_UPLOAD_BYTES + 1) + f"\r\n--{boundary}--\r\n".encode()
    status, text, _ = _get(web.url + "/score", {"Cookie": cookie,
                                               "Content-Type": f"multipart/form-data; boundary={boundary}"}, body)
    assert status == 413 and "larger than 5 MiB" in text and "Split the transcript" in text


def test_bad_input_gets_a_clear_page_not_a_traceback(web):
    status, body, _ = _get(web.url + "/s/424242")
    assert status == 404 and "No session 424242" in body and "Traceback" not in body
    status, body, _ = _get(web.url + "/bank/nope-1")
    assert status == 404 and "No question" in body


def test_a_token_guards_every_page_when_one_is_set(web, settings):
    from bot.corpus import load_items
    from bot.service import InterviewService
    from bot.web.app import create_app

    token = "t0ken-long-enough-for-this"
    items = load_items([MINI_CORPUS])
    app = create_app(settings, InterviewService.open(settings, items), token=token, owner="x")
    with serving(app) as url:
        assert _get(url + "/")[0] == 401
        opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor())
        with opener.open(f"{url}/bank?token={token}") as r:  # sets the cookie, then the page
            assert r.status == 200 and r.url == url + "/bank" and "Question bank" in r.read().decode()
        with opener.open(url + "/progress") as r:
            assert r.status == 200
        assert _get(url + "/?token=wrong")[0] == 401


def test_refuses_to_listen_beyond_this_machine_without_a_token(monkeypatch):
    from typer.testing import CliRunner

    from bot.cli import app

    monkeypatch.delenv("INTERVIEW_WEB_TOKEN", raising=False)
    r = CliRunner().invoke(app, ["web", "--host", "0.0.0.0", "--port", str(free_port())])
    assert r.exit_code != 0 and "INTERVIEW_WEB_TOKEN" in r.output and "Traceback" not in r.output
    monkeypatch.setenv("INTERVIEW_WEB_TOKEN", "short")
    r = CliRunner().invoke(app, ["web", "--host", "0.0.0.0", "--port", str(free_port())])
    assert r.exit_code != 0 and "shorter than 16" in r.output


def test_evidence_is_marked_in_the_answer_and_escaped():
    from bot.grading.result import KeyPointResult
    from bot.web.render import highlight

    kps = [KeyPointResult("a", "covered", evidence="low   training error"),
           KeyPointResult("b", "partial", evidence="<b>x</b>"), KeyPointResult("c", "missing")]
    out = str(highlight("It has LOW training error and <b>x</b> too.", kps))
    assert '<mark class="ev ok" title="key point 1: covered">LOW training error<sup' in out
    assert '<mark class="ev mid" title="key point 2: partly covered">&lt;b&gt;x&lt;/b&gt;<sup' in out
    assert "<b>" not in out
    # Overlapping evidence: the clause quoted for point 1 inside the sentence quoted for point 2.
    kps = [KeyPointResult("a", "covered", evidence="zeroes units in training"),
           KeyPointResult("b", "partial", evidence="zeroes units in training and scales the rest")]
    out = str(highlight("Dropout zeroes units in training and scales the rest.", kps))
    assert out == ('Dropout <mark class="ev ok" title="key point 1: covered; key point 2: partly covered">'
                   'zeroes units in training<sup aria-label="key point 1">1</sup></mark>'
                   '<mark class="ev mid" title="key point 2: partly covered"> and scales the rest'
                   '<sup aria-label="key point 2">2</sup></mark>.')


def test_behind_a_sign_in_proxy_each_person_is_the_user_it_names(web):
    """INTERVIEW_WEB_USER_HEADER: the proxy's header is the profile; no header, no page; nobody
    switches to another's history."""
    from bot.errors import UsageError
    from bot.web.app import create_app
    from bot.web.security import check_bind

    check_bind("0.0.0.0", None, "X-Forwarded-User")  # a proxy in front is enough to listen widely
    with pytest.raises(UsageError, match="INTERVIEW_WEB_USER_HEADER"):
        check_bind("0.0.0.0", None, "")
    with pytest.raises(UsageError, match="not a header name"):
        check_bind("127.0.0.1", None, "X-User: admin")
    app = create_app(web.settings, web.service, owner="nobody", follow_ups=0, user_header="X-Forwarded-User")
    with serving(app) as url:
        status, body, _ = _get(url + "/")
        assert status == 401 and "sign-in" in body
        status, body, _ = _get(url + "/", {"X-Forwarded-User": "<script>"})
        assert status == 401
        status, body, headers = _get(url + "/", {"X-Forwarded-User": "dana"})
        assert status == 200 and "Signed in as <strong>dana</strong>" in body and 'action="/profile"' not in body
        cookie = headers["Set-Cookie"].split(";")[0]
        token = cookie.split("=", 1)[1]
        dana = {"X-Forwarded-User": "dana", "Cookie": cookie}
        status, body, _ = _get(url + "/profile", dana, f"profile=eve&csrf={token}".encode())
        assert status == 403 and "signed in with" in body
        status, body, _ = _get(url + "/start", dana, f"count=1&mode=mix&csrf={token}".encode())
        assert status == 200 and "profile dana" in body
        session_url = re.search(r'href="(/s/\d+)"', body) or re.search(r'action="(/s/\d+)', body)
        assert session_url, body[:500]
        status, body, _ = _get(url + session_url.group(1), {"X-Forwarded-User": "eve"})
        assert status == 404 and "belongs to another profile" in body


def test_an_event_stream_wakes_when_its_job_changes_not_at_its_next_poll():
    import asyncio

    from bot.web.jobs import Job

    async def main():
        job = Job("answer:1", 0, 1)
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        threading.Timer(0.05, job.say, args=("grading…",)).start()
        await job.changed(job.version, timeout=10)  # a grading thread's stage reaches the stream
        woke = loop.time() - t0
        seen = job.version
        t1 = loop.time()
        await job.changed(seen, timeout=0.2)  # nothing changes: the stream waits its whole timeout
        quiet = loop.time() - t1
        await job.changed(seen - 1, timeout=10)  # a change it has not seen yet: no wait at all
        return woke, quiet, job.stage, job._waiters

    got = []  # a thread of its own: the browser tests' driver keeps an event loop in this one
    runner = threading.Thread(target=lambda: got.append(asyncio.run(main())))
    runner.start()
    runner.join(30)
    woke, quiet, stage, waiters = got[0]
    assert stage == "grading…" and woke < 2, woke
    assert quiet >= 0.19
    assert waiters == []  # a stream that timed out leaves nothing behind
