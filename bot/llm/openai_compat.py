"""Any OpenAI-compatible chat endpoint (OpenAI, vLLM, Ollama, llama.cpp server), via langchain-openai.

Asks for `response_format: json_schema`; endpoints that reject it are asked again with
`json_object`, then with no response_format (the grader still validates the reply).
"""
from __future__ import annotations

from bot.errors import ConfigError, LLMError

FORMATS = ("json_schema", "json_object", None)


class OpenAICompatLLM:
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
        # Local servers (Ollama, vLLM) accept any key, but the client insists on one.
        self.chat = ChatOpenAI(model=model, base_url=base_url, api_key=api_key or "not-needed",
                               temperature=0, timeout=timeout, max_retries=3)
        self._format_index = 0

    def prepare(self, system: str, user_prefix: str) -> None:
        return None  # remote servers do their own prefix caching

    def _response_format(self, schema: dict) -> dict | None:
        kind = FORMATS[self._format_index]
        if kind == "json_schema":
            return {"type": "json_schema", "json_schema": {"name": "grade", "schema": schema, "strict": False}}
        if kind == "json_object":
            return {"type": "json_object"}
        return None

    def generate_json(self, system: str, user: str, schema: dict, max_tokens: int = 1024) -> str:
        import openai

        messages = [("system", system), ("user", user)]
        while True:
            fmt = self._response_format(schema)
            kwargs = {"max_tokens": max_tokens}
            if fmt:
                kwargs["response_format"] = fmt
            try:
                return str(self.chat.invoke(messages, **kwargs).content)
            except openai.BadRequestError as e:
                if "response_format" in str(e) and self._format_index < len(FORMATS) - 1:
                    self._format_index += 1
                    continue
                raise LLMError(f"The endpoint rejected the request: {e}", "Check INTERVIEW_LLM_MODEL.") from None
            except openai.AuthenticationError:
                raise LLMError(f"The endpoint {self.base_url or 'api.openai.com'} rejected the API key.",
                               "Set a valid INTERVIEW_LLM_API_KEY (or OPENAI_API_KEY).") from None
            except openai.NotFoundError:
                raise LLMError(f"The endpoint does not know the model {self.name!r}.",
                               "Set INTERVIEW_LLM_MODEL to a model the server serves.") from None
            except openai.RateLimitError:
                raise LLMError("The endpoint kept answering 429 (rate limited) after retries.",
                               "Wait a minute and retry; the answer is saved.") from None
            except (openai.APIConnectionError, openai.APITimeoutError):
                raise LLMError(f"Could not reach the LLM endpoint {self.base_url or 'api.openai.com'}.",
                               "Check INTERVIEW_LLM_BASE_URL and that the server is running; the answer is saved.") from None
            except openai.APIStatusError as e:
                raise LLMError(f"The endpoint failed with HTTP {e.status_code}.",
                               "Retry later; the answer is saved.") from None
