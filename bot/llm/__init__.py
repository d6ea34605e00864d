"""Pick the LLM backend from settings: a configured endpoint, else the embedded local model."""
from __future__ import annotations

from typing import Callable

from bot.config import Settings
from bot.llm.base import LLM


def get_llm(settings: Settings, progress: Callable[[int, int], None] | None = None) -> LLM | None:
    """The backend's LLM; None for `none` (the grader then uses its model-free signals only)."""
    if settings.backend == "none":
        return None
    if settings.backend == "openai":
        from bot.llm.openai_compat import OpenAICompatLLM

        return OpenAICompatLLM(settings.llm_model, settings.llm_base_url, settings.llm_api_key,
                               timeout=settings.llm_timeout, concurrency=settings.llm_concurrency)
    from bot.llm.local import LocalLLM
    from bot.llm.model_files import ensure_model

    if settings.local_model:
        return LocalLLM(settings.local_model, threads=settings.threads, prefix_dir=settings.home / "prefixes",
                        runtime=settings.llama_runtime)
    path = ensure_model(settings.local_model_name, settings.models_dir, progress)
    return LocalLLM(path, threads=settings.threads, name=settings.local_model_name,
                    prefix_dir=settings.home / "prefixes", runtime=settings.llama_runtime)
