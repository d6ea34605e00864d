"""Grade identity. A stored grade is reused only when everything that made it is unchanged:

- the grading version: every prompt file, the reply schema, the rubric constants of the signals
  and the verdicts (cut-offs, scales), the feedback's sentences, the learned weights
  (`weights.json`), the reducer, and the model's name;
- the question's fingerprint: its text, reference answer and key points.
"""
from __future__ import annotations

import hashlib
import json

from bot.config import PROMPTS_DIR

PROMPT_FILES = ("grade_system.md", "grade_user.md", "factcheck_system.md", "factcheck_user.md")


def _h(*parts: str) -> str:
    h = hashlib.sha256()
    for p in parts:
        h.update(p.encode("utf-8"))
        h.update(b"\x00")
    return h.hexdigest()


def constants() -> str:
    """Every number and schema outside the weights file that changes a grade, as one text."""
    from bot.grading import combine, grader, judged, lexical, prechecks, prompt, signals, verdicts
    from bot.judge import model as judge_model

    return json.dumps({
        "schema": prompt.reply_schema(8), "score_enum": prompt.SCORE_ENUM,
        "answer_sim": signals.ANSWER_SIM, "fact": [signals.FACT_LOW, signals.FACT_HIGH],
        "max_wrong": signals.MAX_WRONG, "sim_scale": verdicts.SIM_SCALE, "reducer": combine.REDUCER,
        "partly_quote_terms": verdicts.PARTLY_QUOTE_TERMS,
        "injection_cap": combine.INJECTION_CAP, "off_topic": prechecks.OFF_TOPIC_SIMILARITY,
        "statements": [grader.MIN_STATEMENT_CHARS, grader.MAX_STATEMENTS], "feedback": grader._FEEDBACK,
        "cuts": [lexical.SENTENCE_END, lexical.CLAUSE_SEP], "judge_cuts": judged.CUTS, "judge_logit": verdicts.JUDGE_LOGIT,
        "key_point_margin": combine.KEY_POINT_MARGIN, "score_without_model": grader.SCORE_WITHOUT_MODEL,
        "judge": judge_model.shipped_version(), "max_contradicted": signals.MAX_CONTRADICTED,
        "reference_language": grader.REFERENCE_LANGUAGE,
    }, sort_keys=True)


def grading_version(model: str) -> str:
    from bot.grading import combine

    prompts = [(PROMPTS_DIR / name).read_text(encoding="utf-8") for name in PROMPT_FILES]
    weights = combine.WEIGHTS_PATH.read_text(encoding="utf-8") if combine.WEIGHTS_PATH.exists() else ""
    return "g-" + _h(*prompts, constants(), weights, model)[:10]


def question_fingerprint(question: str, reference: str, key_points: list[str]) -> str:
    return _h(question.strip(), reference.strip(), *[k.strip() for k in key_points])[:16]
