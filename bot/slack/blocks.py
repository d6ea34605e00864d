"""Block Kit rendering of questions, grades, summaries, transcript reports and the App Home.

Slack rejects a whole message (`invalid_blocks`) when one part is too big, so every renderer goes
through `sections()` (section text <= 3000 chars) and callers post `chunk()`ed lists (<= 50 blocks
per message, 100 per Home view). Candidate text is escaped: an answer that contains `<!channel>`
must not ping a channel when the bot quotes it back as evidence.
"""
from __future__ import annotations

import re

from bot.corpus import Item
from bot.service import CONTRADICTED, COVERED, MISSING, PARTIAL, Grade, criterion_text

MAX_BLOCKS = 50  # per message
MAX_HOME_BLOCKS = 100  # per views.publish
MAX_SECTION_TEXT = 3000
MAX_FALLBACK_TEXT = 3000  # the notification text; Slack truncates long ones anyway

MARK = {COVERED: "✅", PARTIAL: "◐", MISSING: "❌", CONTRADICTED: "⛔"}
SPARK = "▁▂▃▄▅▆▇█"


def esc(text: str) -> str:
    """Slack mrkdwn escaping: only &, < and > are control characters."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def md_to_mrkdwn(text: str) -> str:
    """The corpus is Markdown; Slack's mrkdwn has *bold* and no headings."""
    text = esc(text)
    text = re.sub(r"\*\*(.+?)\*\*", r"*\1*", text)
    return re.sub(r"(?m)^#{1,6}\s+(.*)$", r"*\1*", text)


def split_text(text: str, limit: int = MAX_SECTION_TEXT) -> list[str]:
    """Pieces of at most `limit` chars, cut at line breaks where possible."""
    pieces: list[str] = []
    current = ""
    for line in text.split("\n"):
        while len(line) > limit:  # one huge line: hard cut
            if current:
                pieces.append(current)
                current = ""
            pieces.append(line[:limit])
            line = line[limit:]
        candidate = f"{current}\n{line}" if current else line
        if len(candidate) > limit:
            pieces.append(current)
            current = line
        else:
            current = candidate
    if current.strip():
        pieces.append(current)
    return [p for p in pieces if p.strip()] or [""]


def sections(text: str) -> list[dict]:
    return [{"type": "section", "text": {"type": "mrkdwn", "text": p}} for p in split_text(text) if p.strip()]


def context(text: str) -> dict:
    return {"type": "context", "elements": [{"type": "mrkdwn", "text": text[:MAX_SECTION_TEXT]}]}


def divider() -> dict:
    return {"type": "divider"}


def chunk(blocks: list[dict], size: int = MAX_BLOCKS) -> list[list[dict]]:
    return [blocks[i:i + size] for i in range(0, len(blocks), size)] or [[]]


def fallback(text: str) -> str:
    return text if len(text) <= MAX_FALLBACK_TEXT else text[:MAX_FALLBACK_TEXT - 1] + "…"


def score_text(score: float | None) -> str:
    return "–" if score is None else f"{score:.1f}/10"


# --- interview ------------------------------------------------------------------------------

def question_blocks(item: Item, number: int, total: int, owner: str) -> list[dict]:
    meta = f"{item.id} · {esc(', '.join(item.tags))} · {item.difficulty}"
    blocks = sections(f"*Question {number} of {total}* for <@{owner}>\n>{esc(item.question)}")
    blocks.append(context(f"{meta}  ·  Answer in this thread. Words: `skip` `hint` `stop` `again`"))
    return blocks


def grading_text(number: int) -> str:
    return f"⏳ Grading your answer to question {number}…"


def grade_blocks(grade: Grade, number: int, total: int, *, follow_up: bool = False) -> list[dict]:
    crit = "  ·  ".join(criterion_text(c) for c in grade.criteria)
    title = f"Follow-up to question {number}" if follow_up else f"Question {number} of {total}"
    blocks = sections(f"*{title}: {score_text(grade.overall)}*")
    blocks.append(context(f"{crit}  ·  graded by {esc(grade.model)}" if crit else f"graded by {esc(grade.model)}"))
    fb = grade.feedback
    if fb.get("reason"):
        blocks += sections(f"⚠️ {esc(fb['reason'])}")
    if fb.get("warning"):
        blocks += sections(f"⚠️ {esc(fb['warning'])}")
    hit = [p for p in grade.key_points if p.status in (COVERED, PARTIAL)]
    wrong = [p for p in grade.key_points if p.status == CONTRADICTED]
    missed = [p for p in grade.key_points if p.status == MISSING]
    if hit:
        lines = ["*Key points covered*"]
        for p in hit:
            lines.append(f"{MARK[p.status]} {esc(p.point)}")
            if p.evidence:
                lines.append(f">_“{esc(p.evidence)}”_")
        blocks += sections("\n".join(lines))
    if wrong:
        blocks += sections("*Contradicted*\n" + "\n".join(
            f"{MARK[CONTRADICTED]} {esc(p.point)}" + (f"\n>_you said “{esc(p.evidence)}”_" if p.evidence else "")
            for p in wrong))
    if missed:
        blocks += sections("*Missed*\n" + "\n".join(f"{MARK[MISSING]} {esc(p.point)}" for p in missed))
    if grade.wrong_claims:
        blocks += sections("*Wrong claims*\n" + "\n".join(
            f"✘ {esc(w.claim)}\n    → {esc(w.correction)}" for w in grade.wrong_claims))
    if fb.get("strengths"):
        blocks += sections(f"*Good*\n{esc(fb['strengths'])}")
    if fb.get("next_step"):
        blocks += sections(f"*Next step*\n{esc(fb['next_step'])}")
    return blocks


def grade_fallback(grade: Grade, number: int) -> str:
    return f"Question {number}: {score_text(grade.overall)}"


def reference_blocks(grade: Grade) -> list[dict]:
    if not grade.reference_answer:
        return []
    return sections("📖 *Reference answer*\n" + md_to_mrkdwn(grade.reference_answer))


def error_blocks(message: str, hint: str | None = None, extra: str = "") -> list[dict]:
    text = f"⚠️ {esc(message)}"
    if hint:
        text += f"\n*Fix:* {esc(hint)}"
    if extra:
        text += f"\n{extra}"
    return sections(text)


def follow_up_blocks(question: str, number: int, owner: str) -> list[dict]:
    blocks = sections(f"*Follow-up to question {number}* for <@{owner}>\n>{esc(question)}")
    blocks.append(context("Answer in this thread, or write `skip` to go on to the next question."))
    return blocks


def reminder_blocks(due: int) -> list[dict]:
    blocks = sections(f"📅 *{due} question{'s are' if due != 1 else ' is'} due for review.* "
                      "Answers you found hard come back just before you would forget them.")
    blocks.append(REVIEW_BUTTON)
    blocks.append(context("`/interview remind off` stops these weekly reminders."))
    return blocks


def hint_blocks(item: Item) -> list[dict]:
    first = item.key_points[0] if item.key_points else ""
    return sections(f"💡 A strong answer covers {len(item.key_points)} points. Start with:\n>{esc(first)}")


def summary_blocks(summary: dict, status: str = "finished") -> list[dict]:
    title = "Interview stopped" if status == "stopped" else "Interview finished"
    blocks = sections(f"🏁 *{title}: mean {score_text(summary['mean'])}*")
    blocks.append(context(f"{summary['graded']} graded · {summary['skipped']} skipped · "
                          f"{summary['questions']} planned"))
    lines = []
    for n, it in enumerate(summary["items"], 1):
        if it["status"] == "skipped":
            score = "skipped"
        elif it["overall"] is not None:
            score = f"{it['overall']:.1f}"
        else:
            score = f"not graded ({it['status']})"
        line = f"{n}. *{score}*  {esc(it['question'])}"
        if it["missing"]:
            line += f"\n      _missed: {esc(it['missing'][0])}_"
        lines.append(line)
    if lines:
        blocks += sections("\n".join(lines))
    if summary["ungraded"]:
        blocks += sections(f"⚠️ {summary['ungraded']} answer(s) are saved but not graded yet; "
                           "write `retry` in this thread to grade them.")
    return blocks


# --- transcript scoring ---------------------------------------------------------------------

def transcript_blocks(report: dict, filename: str) -> list[dict]:
    """The transcript scorer's report (ScoreReport.to_dict()) as a summary; details go in the HTML file."""
    items = report.get("items") or []
    blocks = sections(f"📄 *Transcript `{esc(filename)}`: {score_text(report.get('overall'))}* "
                      f"over {report.get('graded', 0)} graded answer(s)")
    lines = []
    for it in items:
        shown = f"{it['overall']:.1f}" if it.get("overall") is not None else esc(str(it.get("status", "–")))
        line = f"{it.get('n', len(lines) + 1)}. *{shown}*  {esc(str(it.get('question', '')))}"
        if not it.get("matched", True):
            line += "  _(not in the corpus: graded without a reference)_"
        if it.get("error"):
            line += f"\n      ⚠️ {esc(it['error'])}"
        lines.append(line)
    if lines:
        blocks += sections("\n".join(lines))
    blocks.append(context("Every grade, with evidence and the reference answers, is in the attached report."))
    return blocks


# --- App Home -------------------------------------------------------------------------------

def sparkline(values: list[float]) -> str:
    return "".join(SPARK[min(len(SPARK) - 1, int(v / 10 * len(SPARK)))] for v in values)


REVIEW_BUTTON = {"type": "actions", "elements": [{
    "type": "button", "action_id": "review_now", "style": "primary",
    "text": {"type": "plain_text", "text": "Review now"}}]}


def home_view(stats: dict) -> dict:
    due = stats.get("due", 0)
    blocks: list[dict] = [
        {"type": "header", "text": {"type": "plain_text", "text": "Mock interviews"}},
        {"type": "actions", "elements": [{
            "type": "button", "action_id": "start_interview", **({} if due else {"style": "primary"}),
            "text": {"type": "plain_text", "text": "Start a mock interview"}}]},
        context("Or type `/interview [topic] [count]` in a channel, or `start` in a message to me."),
        divider(),
    ]
    if due:
        blocks += sections(f"📅 *Due for review: {due} question{'s' if due != 1 else ''}*")
        blocks.append(REVIEW_BUTTON)
    elif stats.get("next_due"):
        blocks += sections(f"📅 Nothing is due for review; next on {esc(stats['next_due'])} UTC.")
    if due or stats.get("next_due"):
        blocks.append(context("Weekly reminder in our DM: " + ("*on* (`/interview remind off`)" if stats.get("reminder")
                                                                else "off (`/interview remind on`)")))
        blocks.append(divider())
    if not stats["sessions"]:
        blocks += sections("You have no interviews yet. Press the button to start one.")
        return {"type": "home", "blocks": blocks}
    trend = stats["trend"]
    blocks += sections(f"*Average score:* {score_text(stats['average'])} over {stats['graded']} graded answer(s)\n"
                       f"*Over time* (oldest → newest): `{sparkline([m for _, m in trend])}`  "
                       + "  ".join(f"{d} {m:.1f}" for d, m in trend[-5:]))
    if stats["weakest"]:
        blocks += sections("*Weakest topics*\n" + "\n".join(
            f"• {esc(tag)}: {mean:.1f}/10 ({n} answer{'s' if n != 1 else ''})" for tag, mean, n in stats["weakest"]))
    blocks.append(divider())
    lines = ["*Recent sessions*"]
    for s in stats["sessions"]:
        topic = esc(s["topic"] or "any topic")
        lines.append(f"• {s['date']}  {topic}  {s['answered']}/{s['questions']} answered  "
                     f"*{score_text(s['mean'])}*  _{s['status']}_")
    blocks += sections("\n".join(lines))
    return {"type": "home", "blocks": blocks[:MAX_HOME_BLOCKS]}
