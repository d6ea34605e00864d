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
        cores = os.cpu_count() or 2
        try:
            self.llm = Llama(
                model_path=str(model_path), n_ctx=n_ctx, n_batch=512,
                # Generation is memory-bound and stalls badly when a thread shares its core with
                # another process (measured: 8 tok/s on 1 thread vs 2.9 on 2 with one core busy),
                # so leave one core free for generation; the prompt batch uses every core.
                n_threads=threads or max(1, cores - 1), n_threads_batch=threads or cores,
                seed=0, verbose=False,
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

        key = json.dumps(schema)  # key order matters: the grammar emits properties in schema order
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

    def distribution(self, messages: list[dict], continuation: str, options: list[str]) -> dict[str, float] | None:
        """Probabilities of each one-token option right after the chat prompt + continuation.

        Reads the model's whole belief (a score, true/false) instead of its single argmax token.
        The conversation so far is still in the KV cache, so this evaluates only the new tokens."""
        import numpy as np

        ids = []
        for opt in options:
            tok = self.llm.tokenize(opt.encode("utf-8"), add_bos=False, special=False)
            if len(tok) != 1:
                return None  # this tokenizer splits the option: no single-token distribution
            ids.append(tok[0])
        prompt = self._formatter(messages=messages).prompt + continuation
        tokens = self.llm.tokenize(prompt.encode("utf-8"), special=True)
        with self._lock:
            cached = self.llm._input_ids[: self.llm.n_tokens]
            n = 0
            for a, b in zip(cached, tokens):
                if a != b:
                    break
                n += 1
            self.llm.n_tokens = min(n, len(tokens) - 1)  # eval() drops the KV cache past this point
            self.llm.eval(tokens[self.llm.n_tokens:])
            logits = np.ctypeslib.as_array(self.llm._ctx.get_logits(), shape=(self.llm.n_vocab(),))
            chosen = logits[ids].astype(np.float64)
        p = np.exp(chosen - chosen.max())
        p /= p.sum()
        return {opt: float(x) for opt, x in zip(options, p)}
