"""The embedded grader: a GGUF model run in process by llama.cpp (llama-cpp-python).

Output is constrained by a grammar built from the JSON schema, so the reply is always JSON of the
right shape. `prepare()` evaluates the fixed prompt prefix into llama.cpp's KV cache; the next
completion whose prompt starts with the same tokens only processes the rest (the answer).
"""
from __future__ import annotations

import json
import os
import threading
from pathlib import Path

from bot.errors import LLMError, ModelError

SENTINEL = "\x00ANSWER_SLOT\x00"


class LocalLLM:
    def __init__(self, model_path: Path, *, n_ctx: int = 4096, threads: int = 0, name: str | None = None):
        try:
            from llama_cpp import Llama
        except ImportError:
            raise ModelError(
                "The embedded model runtime llama-cpp-python is not installed.",
                "Run the install command in README.md (it compiles llama-cpp-python), or configure an "
                "OpenAI-compatible endpoint with INTERVIEW_LLM_BASE_URL and INTERVIEW_LLM_MODEL.",
            ) from None
        if not Path(model_path).is_file():
            raise ModelError(f"Model file {model_path} does not exist.",
                             "Fix INTERVIEW_LOCAL_MODEL, or unset it to use the bundled model.")
        self.name = name or Path(model_path).stem
        self._lock = threading.Lock()
        try:
            self.llm = Llama(
                model_path=str(model_path), n_ctx=n_ctx, n_batch=512,
                n_threads=threads or os.cpu_count() or 2, seed=0, verbose=False,
                # The AMX "extra buffer types" path produces garbage or crashes on some Xeons.
                use_extra_bufts=False,
            )
        except Exception as e:  # llama.cpp reports a bad file as a ValueError
            raise ModelError(f"llama.cpp could not load {model_path}: {e}",
                             "Check the file is a GGUF model; delete it to have the bundled one rebuilt.") from None
        self._formatter = self._chat_formatter()
        self._grammars: dict[str, object] = {}

    def _chat_formatter(self):
        from llama_cpp.llama_chat_format import Jinja2ChatFormatter

        template = self.llm.metadata.get("tokenizer.chat_template")
        if not template:
            raise ModelError(f"{self.name} has no chat template in its GGUF metadata.",
                             "Use an instruction-tuned GGUF model that includes its chat template.")
        vocab = self.llm._model
        eos = self.llm.detokenize([vocab.token_eos()]).decode("utf-8", "ignore")
        bos = self.llm.detokenize([vocab.token_bos()]).decode("utf-8", "ignore") if vocab.token_bos() >= 0 else ""
        return Jinja2ChatFormatter(template=template, eos_token=eos, bos_token=bos, add_generation_prompt=True)

    def _prompt(self, system: str, user: str) -> str:
        msgs = [{"role": "system", "content": system}, {"role": "user", "content": user}]
        return self._formatter(messages=msgs).prompt

    def _grammar(self, schema: dict):
        from llama_cpp import LlamaGrammar

        key = json.dumps(schema, sort_keys=True)
        if key not in self._grammars:
            self._grammars[key] = LlamaGrammar.from_json_schema(key, verbose=False)
        return self._grammars[key]

    def prepare(self, system: str, user_prefix: str) -> None:
        prefix = self._prompt(system, user_prefix + SENTINEL).split(SENTINEL)[0]
        tokens = self.llm.tokenize(prefix.encode("utf-8"), special=True)
        with self._lock:
            cached = list(self.llm._input_ids[: self.llm.n_tokens])
            if cached[: len(tokens)] == tokens:
                return
            self.llm.reset()
            self.llm.eval(tokens)

    def generate_json(self, system: str, user: str, schema: dict, max_tokens: int = 1024) -> str:
        prompt = self._prompt(system, user)
        with self._lock:
            try:
                out = self.llm.create_completion(
                    prompt, max_tokens=max_tokens, temperature=0.0, top_k=1,
                    grammar=self._grammar(schema), seed=0,
                )
            except Exception as e:  # context overflow and the like
                raise LLMError(f"The local model failed: {e}",
                               "Shorten the answer, or use a model with a larger context.") from None
        return out["choices"][0]["text"]
