"""How fast `interview web` answers a person in a real browser (issue #26 targets: a page is
interactive within 1 s; progress shows within 0.5 s of Ctrl+Enter).

Starts one `interview web` process over a fresh history and the mini corpus, grading through the
fake OpenAI-compatible endpoint (tests/fake_openai.py) after --latency seconds, and drives Debian's
Chromium with Playwright, one person:
- every page loaded --loads times: the browser's own navigation timing (domInteractive, load);
- --answers one-question interviews: Ctrl+Enter -> the progress line (or the grade) on the page,
  and Ctrl+Enter -> the grade card. The first grading loads the key-point judge and is reported
  apart.

    python bench/web_pages.py --loads 5 --answers 5
Writes bench/results/web_pages.json. Run it alone: it measures a two-core machine.
"""
from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(REPO), str(REPO / "tests")]

from common import write  # noqa: E402
from fake_openai import FakeOpenAI  # noqa: E402
from web_load import reply_after, web_server  # noqa: E402

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
PAGES = ["/", "/progress", "/bank", "/bank/ml-001", "/score"]
ANSWER = "Overfitting means low training error but high test error: the model memorises noise. Use dropout."


def timing(page) -> dict:
    return page.evaluate("""() => { const n = performance.getEntriesByType('navigation')[0];
        return {interactive: n.domInteractive, loaded: n.loadEventEnd}; }""")


def summary(xs: list[float]) -> dict:
    return {"median": round(statistics.median(xs), 3), "max": round(max(xs), 3), "n": len(xs)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--loads", type=int, default=5, help="loads of each page")
    ap.add_argument("--answers", type=int, default=5, help="answers after the first (which loads the judge)")
    ap.add_argument("--latency", type=float, default=1.0, help="the fake endpoint's seconds per grading")
    a = ap.parse_args()
    from playwright.sync_api import sync_playwright

    home = Path(tempfile.mkdtemp(prefix="web-pages-"))
    with FakeOpenAI() as fake:
        fake.default = reply_after(a.latency)
        with web_server(home, fake, "--profile", "bench") as (url, _):
            with sync_playwright() as p:
                browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
                page = browser.new_page()
                progress, graded = [], []
                first = None
                for n in range(a.answers + 1):
                    page.goto(url + "/")
                    page.fill("#topic", "overfitting")
                    page.fill("#count", "1")
                    page.click("form.start button[type=submit]")
                    page.wait_for_selector("form[data-answer-form] textarea")
                    page.keyboard.insert_text(f"{ANSWER} (run {n})")  # a new answer: a repeat reuses its grade
                    t0 = time.monotonic()
                    page.keyboard.press("Control+Enter")
                    page.wait_for_selector(".progress, [data-grade]", timeout=60_000)
                    shown = time.monotonic() - t0
                    page.wait_for_selector("[data-grade]", timeout=300_000)
                    took = time.monotonic() - t0
                    if n == 0:
                        first = {"progress_s": round(shown, 3), "grade_s": round(took, 2)}
                    else:
                        progress.append(shown)
                        graded.append(took)
                session = page.url.split("#")[0].removeprefix(url)
                pages = {}
                for path in [*PAGES, session]:
                    runs = []
                    for _ in range(a.loads):
                        page.goto(url + path)
                        runs.append(timing(page))
                    pages[path] = {k: summary([r[k] / 1000 for r in runs]) for k in ("interactive", "loaded")}
                browser.close()
    write("web_pages", {
        "endpoint_latency_s": a.latency, "cpus": os.cpu_count(), "load_avg_1m": round(os.getloadavg()[0], 2),
        "first_answer": first,
        "submit_to_progress_s": summary(progress), "submit_to_grade_s": summary(graded),
        "pages_s": pages,
    })


if __name__ == "__main__":
    main()
