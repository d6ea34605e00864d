"""The OpenAI-compatible backend against a fake server on 127.0.0.1 that speaks the real protocol."""
import pytest

from bot.config import load_settings
from bot.errors import ConfigError, LLMError
from bot.grading.grader import Grader
from bot.grading.question import Question
from bot.llm import get_llm
from bot.llm.openai_compat import OpenAICompatLLM
from tests.fake_openai import FakeOpenAI

Q = Question("x-1", "What is overfitting?", "Fitting noise: low training error, high test error.",
             ["low training error but high test error", "the model fits noise", "more data or regularization helps"],
             "en")
ANSWER = "Overfitting is when the model memorises noise: training error is low but test error is high."
REPLY = {"missing_points": [2], "wrong_claims": [], "score": 3}


@pytest.fixture
def server():
    with FakeOpenAI() as s:
        yield s


def test_settings_select_the_endpoint_and_grade(server, tmp_path):
    s = load_settings({"INTERVIEW_HOME": str(tmp_path), "INTERVIEW_LLM_BASE_URL": server.base_url,
                       "INTERVIEW_LLM_MODEL": "qwen2.5:7b", "INTERVIEW_LLM_API_KEY": "sk-test"})
    llm = get_llm(s)
    server.queue(REPLY)
    g = Grader(llm).grade(Q, ANSWER)
    req = server.requests[0]
    assert req["body"]["model"] == "qwen2.5:7b" and req["auth"] == "Bearer sk-test"
    assert req["body"]["response_format"]["type"] == "json_schema"
    assert req["body"]["messages"][0]["role"] == "system" and ANSWER in req["body"]["messages"][1]["content"]
    assert g.model == "qwen2.5:7b"
    from bot.llm.fake import FakeLLM

    assert g.overall == Grader(FakeLLM([REPLY])).grade(Q, ANSWER).overall  # the endpoint's reply, graded as such


def test_falls_back_when_json_schema_is_rejected(server):
    server.queue(("status", 400, {"error": {"message": "response_format json_schema is not supported"}}), REPLY)
    llm = OpenAICompatLLM("m", server.base_url, None)
    Grader(llm).grade(Q, ANSWER)
    fmt = server.requests[1]["body"]["response_format"]
    assert fmt["type"] == "json_object" and fmt["schema"]["required"]  # the schema rides along


def test_a_500_naming_the_format_steps_down_at_once_and_is_remembered(server):
    """llama-cpp-python's server answers json_schema with HTTP 500 and a validation message."""
    refusal = {"error": {"message": "1 validation error: ('body', 'response_format', 'type') Input should be "
                                    "'text' or 'json_object'", "type": "internal_server_error"}}
    server.queue(("status", 500, refusal), REPLY, REPLY)
    llm = OpenAICompatLLM("m", server.base_url, None)
    Grader(llm).grade(Q, ANSWER)
    Grader(llm).grade(Q, ANSWER)
    kinds = [r["body"]["response_format"]["type"] for r in server.requests]
    assert kinds == ["json_schema", "json_object", "json_object"]  # no retries of the refusal


def test_every_format_refused_ends_with_no_response_format(server):
    refuse = ("status", 400, {"error": {"message": "response_format is not supported"}})
    server.queue(refuse, refuse, refuse, REPLY)
    OpenAICompatLLM("m", server.base_url, None).generate_json("s", "u", {"type": "object"})
    assert [r["body"].get("response_format", {}).get("type") for r in server.requests] == \
        ["json_schema", "json_object", "json_object", None]


def test_a_server_error_is_retried_then_reported(server):
    boom = ("status", 503, {"error": {"message": "overloaded"}}, {"Retry-After": "0"})
    server.queue(boom, REPLY)
    text = OpenAICompatLLM("m", server.base_url, "k").generate_json("s", "u", {"type": "object"})
    assert '"score": 3' in text and len(server.requests) == 2
    server.requests.clear()
    server.queue(boom, boom, boom, boom)
    with pytest.raises(LLMError, match="HTTP 503"):
        OpenAICompatLLM("m", server.base_url, "k").generate_json("s", "u", {"type": "object"})
    assert len(server.requests) == 4  # the first try and three retries


def test_bad_key_is_a_clear_error(server):
    server.queue(("status", 401, {"error": {"message": "Incorrect API key", "type": "invalid_request_error"}}))
    with pytest.raises(LLMError, match="rejected the API key") as e:
        OpenAICompatLLM("m", server.base_url, "sk-bad").generate_json("s", "u", {})
    assert "INTERVIEW_LLM_API_KEY" in e.value.hint


def test_rate_limit_is_retried(server):
    server.queue(("status", 429, {"error": {"message": "slow down"}}, {"Retry-After": "0"}), REPLY)
    text = OpenAICompatLLM("m", server.base_url, "k").generate_json("s", "u", {"type": "object"})
    assert '"score": 3' in text and len(server.requests) == 2


def test_unreachable_endpoint():
    llm = OpenAICompatLLM("m", "http://127.0.0.1:9/v1", "k", timeout=2)
    llm.retries = 0
    with pytest.raises(LLMError, match="Could not reach"):
        llm.generate_json("s", "u", {})


def test_missing_model_name_is_a_config_error():
    with pytest.raises(ConfigError, match="INTERVIEW_LLM_MODEL"):
        OpenAICompatLLM(None, "http://127.0.0.1:1/v1", None)


def test_token_probabilities_feed_the_fact_check_where_the_server_gives_them(server):
    server.top_logprobs = {"true": -0.105, "True": -3.0, "false": -2.5, "The": -4.0}  # P ~ 0.90, 0.05, 0.08
    server.queue(REPLY)
    g = Grader(OpenAICompatLLM("m", server.base_url, None)).grade(Q, ANSWER)
    assert server.probes and all(p["body"].get("max_completion_tokens", p["body"].get("max_tokens")) == 1 and p["body"]["top_logprobs"] == 10
                                 for p in server.probes)
    assert ANSWER in server.probes[0]["body"]["messages"][-1]["content"]  # the statement, fenced as data
    # "true" and "True" are one option: (0.900 + 0.050) / (0.950 + 0.082)
    assert [round(c.p_true, 2) for c in g.fact_checks] == [0.92] * len(g.fact_checks) and g.fact_checks
    assert "factual" in {s["name"] for s in g.signals}


def test_a_server_without_token_probabilities_is_asked_once(server):
    server.queue(REPLY, REPLY)
    llm = OpenAICompatLLM("m", server.base_url, None)
    first, second = Grader(llm).grade(Q, ANSWER), Grader(llm).grade(Q, ANSWER)
    assert len(server.probes) == 1 and len(server.requests) == 2  # one probe, then never again
    assert first.fact_checks == [] and second.fact_checks == []
    assert "factual" not in {s["name"] for s in first.signals}
