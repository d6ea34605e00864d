"""Any OpenAI-compatible chat endpoint (OpenAI, vLLM, Ollama, llama.cpp server), via langchain-openai.

Asks for `response_format: json_schema`; endpoints that reject it are asked again with
`json_object` carrying the schema (llama-cpp-python's server constrains its output with it), then
plain `json_object`, then with no response_format (the grader still validates the reply). A
rejection is any error status whose message names the response format: llama-cpp-python's server
answers `json_schema` with HTTP 500 and a validation message, not 400.

Token probabilities (`logprobs`, `top_logprobs`) are read where the server gives them (OpenAI,
vLLM, llama-cpp-python's server): the grader's fact check asks for one token and reads P(true).
A server that answers without them is not asked again.
"""
from __future__ import annotations

import logging
import math
import time

from bot.errors import ConfigError, ContextOverflowError, LLMError
from bot.llm.base import LLM

FORMATS = ("json_schema", "json_object+schema", "json_object", None)
TOP_LOGPROBS = 10  # alternatives read at one position (OpenAI allows up to 20)
REJECTED_FORMAT = ("response_format", "json_schema", "json_object")  # words of a server refusing one
# How servers say a prompt is longer than the model's context: OpenAI, vLLM and llama-cpp-python's
# server (400, code context_length_exceeded, "maximum context length"), llama.cpp's server
# (exceed_context_size_error, "context size"), Ollama ("exceeds the context length").
TOO_LONG_CODES = ("context_length_exceeded", "exceed_context_size_error")
TOO_LONG_WORDS = ("maximum context length", "context length", "context window", "context size")

log = logging.getLogger(__name__)
log.addHandler(logging.NullHandler())  # shown where the app configures logging (Slack), not in a terminal interview


class OpenAICompatLLM(LLM):
    caches_prefix = False  # servers cache prefixes themselves

    def __init__(self, model: str | None, base_url: str | None, api_key: str | None, timeout: float = 120.0,
                 concurrency: int = 4):
        if not model:
            raise ConfigError("No model name for the OpenAI-compatible endpoint.",
                              "Set INTERVIEW_LLM_MODEL (e.g. gpt-4o-mini, qwen2.5:7b) or llm_model in config.toml.")
        if not api_key and not base_url:
            raise ConfigError("No API key found for the OpenAI endpoint.",
                              "Set INTERVIEW_LLM_API_KEY (or OPENAI_API_KEY), or INTERVIEW_LLM_BASE_URL for a local server.")
        from langchain_openai import ChatOpenAI

        self.name = model
        self.concurrency = max(1, concurrency)  # requests in flight at once from this process
        self.base_url = base_url
        self.timeout = timeout
        # Local servers (Ollama, vLLM) accept any key, but the client insists on one.
        self.chat = ChatOpenAI(model=model, base_url=base_url, api_key=api_key or "not-needed",
                               temperature=0, timeout=timeout, max_retries=0)
        # Retries are ours, not the client's: a 500 that names the response format is a refusal
        # to step down from at once, not an outage to retry three times with backoff.
        self.retries = 3
        self._format_index = 0
        self._logprobs: bool | None = None  # does this endpoint give token probabilities? (None: not asked yet)

    def prepare(self, system: str, user_prefix: str) -> None:
        return None  # remote servers do their own prefix caching

    def _response_format(self, schema: dict) -> dict | None:
        kind = FORMATS[self._format_index]
        if kind == "json_schema":
            return {"type": "json_schema", "json_schema": {"name": "grade", "schema": schema, "strict": False}}
        if kind == "json_object+schema":
            return {"type": "json_object", "schema": schema}
        if kind == "json_object":
            return {"type": "json_object"}
        return None

    def generate_json(self, system: str, user: str, schema: dict, max_tokens: int = 1024) -> str:
        messages = [("system", system), ("user", user)]
        while True:
            fmt = self._response_format(schema)
            kwargs = {"max_tokens": max_tokens, **({"response_format": fmt} if fmt else {})}
            try:
                return str(self._invoke(messages, can_step_down=bool(fmt) and self._format_index < len(FORMATS) - 1,
                                        **kwargs).content)
            except _FormatRefused:
                self._format_index += 1  # remembered: this endpoint is asked that way from now on

    def distribution(self, messages: list[dict], continuation: str, options: list[str]) -> dict[str, float] | None:
        """Probabilities of each one-token option as the reply's first token, from the endpoint's
        top_logprobs; None when it gives none (remembered), when none of the options is among
        them, or for a `continuation` of the reply (chat endpoints do not continue a reply)."""
        if continuation or self._logprobs is False:
            return None
        reply = self._invoke(messages, can_step_down=False, max_tokens=1, logprobs=True, top_logprobs=TOP_LOGPROBS)
        content = ((reply.response_metadata or {}).get("logprobs") or {}).get("content") or []
        top = content[0].get("top_logprobs") if content else None
        if not top:
            self._logprobs = False
            return None
        self._logprobs = True
        mass = dict.fromkeys(options, 0.0)
        for alt in top:
            word = str(alt.get("token", "")).strip().lower()
            for o in options:
                if word == o.lower():
                    mass[o] += math.exp(float(alt["logprob"]))
        total = sum(mass.values())
        return {o: m / total for o, m in mass.items()} if total > 0 else None

    def _invoke(self, messages, *, can_step_down: bool, **kwargs):
        """One chat call with our retries: 429 and 5xx with backoff (Retry-After), connection
        errors and timeouts; `_FormatRefused` at once when the error names the response format."""
        import openai

        failures = 0
        while True:
            try:
                return self.chat.invoke(messages, **kwargs)
            except openai.APIStatusError as e:
                if _too_long(e):  # this prompt only: not an outage to retry, nor a format to step down from
                    log.warning("%s refused a prompt as too long for %s: %s", self.base_url or "api.openai.com",
                                self.name, e)
                    raise ContextOverflowError(
                        f"Answer too long for the model {self.name}: the endpoint refused the prompt as longer "
                        "than the model's context.",
                        "Shorten the answer (or split it into several), or set INTERVIEW_LLM_MODEL to a model "
                        "with a larger context; the answer is saved.") from None
                if can_step_down and _names_the_format(e):
                    raise _FormatRefused() from None
                if (e.status_code == 429 or e.status_code >= 500) and failures < self.retries:
                    failures += 1
                    time.sleep(_backoff(failures, e))
                    continue
                raise self._status_error(e) from None
            except (openai.APIConnectionError, openai.APITimeoutError) as e:
                if failures < self.retries:
                    failures += 1
                    time.sleep(_backoff(failures, None))
                    continue
                if isinstance(e, openai.APITimeoutError):
                    raise LLMError(f"The LLM endpoint {self.base_url or 'api.openai.com'} did not answer within "
                                   f"{self.timeout:g} s ({self.retries + 1} tries).",
                                   "Raise INTERVIEW_LLM_TIMEOUT, or check the server's load; the answer is saved.") from None
                raise LLMError(f"Could not reach the LLM endpoint {self.base_url or 'api.openai.com'}.",
                               "Check INTERVIEW_LLM_BASE_URL and that the server is running; the answer is saved.") from None

    def _status_error(self, e) -> LLMError:
        import openai

        if isinstance(e, openai.AuthenticationError):
            return LLMError(f"The endpoint {self.base_url or 'api.openai.com'} rejected the API key.",
                            "Set a valid INTERVIEW_LLM_API_KEY (or OPENAI_API_KEY).")
        if isinstance(e, openai.NotFoundError):
            return LLMError(f"The endpoint does not know the model {self.name!r}.",
                            "Set INTERVIEW_LLM_MODEL to a model the server serves.")
        if isinstance(e, openai.RateLimitError):
            return LLMError("The endpoint kept answering 429 (rate limited) after retries.",
                            "Wait a minute and retry; the answer is saved.")
        if isinstance(e, openai.BadRequestError):
            return LLMError(f"The endpoint rejected the request: {e}", "Check INTERVIEW_LLM_MODEL.")
        return LLMError(f"The endpoint failed with HTTP {e.status_code}.", "Retry later; the answer is saved.")


class _FormatRefused(Exception):
    """The endpoint refused the request's response_format: ask again with the next one."""


def _names_the_format(e) -> bool:
    """Does an error status say the request's response_format was the problem?"""
    text = str(getattr(e, "body", None) or "") + " " + str(e)
    return any(word in text for word in REJECTED_FORMAT)


def _too_long(e) -> bool:
    """Does an error status say the prompt is longer than the model's context? Read from the
    error's code, type and message only: a validation error may echo the request, whose answer
    can well speak of a "context window"."""
    body = getattr(e, "body", None)
    if not isinstance(body, dict):
        return isinstance(body, str) and any(word in body.lower() for word in TOO_LONG_WORDS)
    if {str(body.get("code")), str(body.get("type"))} & set(TOO_LONG_CODES):
        return True
    return any(word in str(body.get("message") or "").lower() for word in TOO_LONG_WORDS)


def _backoff(attempt: int, e) -> float:
    """Seconds before retry `attempt` (1, 2, 3): the server's Retry-After when it sends one (capped),
    else 0.5, 1, 2 s."""
    headers = getattr(getattr(e, "response", None), "headers", None) or {}
    try:
        return min(20.0, max(0.0, float(headers.get("retry-after", ""))))
    except ValueError:
        return 0.5 * 2 ** (attempt - 1)
