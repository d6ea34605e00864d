"""The embedded grader: a GGUF model run in process by llama.cpp.

Two runtimes drive llama.cpp: llama-cpp-python (the compiled binding, `python`) or the raw C API of
the prebuilt `llama-cpp-cffi` wheel (`cffi`, bot.llm.cffi_runtime: installs without a compiler).
INTERVIEW_LLAMA_RUNTIME picks one; by default the compiled binding where it is installed, else the
prebuilt one. Both sit behind the same small engine interface (tokens, eval, logits, state,
grammar-constrained completion, abort), and LocalLLM does the rest the same way for both.

Output is constrained by a grammar built from the JSON schema, so the reply is always JSON of the
right shape. `prepare()` evaluates the fixed prompt prefix into llama.cpp's KV cache; the next
completion whose prompt starts with the same tokens only processes the rest (the answer).
"""
from __future__ import annotations

import json
import os
import importlib.util
import re
import sys
import tempfile
import threading
from pathlib import Path

from bot.errors import ContextOverflowError, LLMError, ModelError
from bot.llm.base import LLM, should_yield
from bot.llm.engines import Aborted, LogForwarder

SENTINEL = "\x00ANSWER_SLOT\x00"
TOO_LONG_HINT = ("Shorten the answer (or split it into several), or set INTERVIEW_LOCAL_MODEL to a model with a "
                 "larger context; the answer is saved.")


def context_overflow(name: str, n_prompt: int, n_ctx: int) -> ContextOverflowError | None:
    """The error for a prompt llama.cpp would refuse (it needs one free position to write the
    first token in: `len(prompt) >= n_ctx` raises), else None. Told apart from a broken model so
    that a transcript grades its other answers."""
    if n_prompt < n_ctx:
        return None
    return ContextOverflowError(f"Answer too long for the model {name}: its prompt is {n_prompt} tokens, "
                                f"the model reads at most {n_ctx - 1}.", TOO_LONG_HINT)


def _common_prefix(a, b) -> int:
    n = 0
    for x, y in zip(a, b):
        if x != y:
            break
        n += 1
    return n


class _KeepStreams:
    """Stands in for llama-cpp-python's `suppress_stdout_stderr`, which points the process's file
    descriptors 1 and 2 at /dev/null while a model loads. The model loads in a background thread
    while the first question is shown, so whatever the terminal printed meanwhile (the question,
    the Ctrl-C message) was lost. llama.cpp's own log already goes through llama-cpp-python's log
    callback, which prints nothing below ERROR unless verbose: silencing the streams is not needed."""

    def __init__(self, disable: bool = True):
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> bool:
        return False


_LLAMA_LINE = re.compile(r"^(load|llama|llm|print_info|ggml|gguf|general|init|common)\w*[:\s]")


_log_callback = None


def _route_llama_log() -> None:
    """llama.cpp's log to the `llama.cpp` logger (once per process; the callback must stay alive)."""
    global _log_callback
    if _log_callback is not None:
        return
    import ctypes

    import llama_cpp

    log = LogForwarder()

    def forward(level: int, text: bytes, user_data) -> None:
        if log.wanted(level):
            log(text)

    _log_callback = llama_cpp.llama_log_callback(forward)
    llama_cpp.llama_log_set(_log_callback, ctypes.c_void_p(0))


class _FilteredStderr:
    """While llama.cpp loads a model (in a background thread), file descriptor 2 goes to a
    temporary file; afterwards it is restored and what the rest of the program wrote meanwhile is
    written out again, without llama.cpp's loader lines (the bundled model's harmless
    "control-looking token" warning among them)."""

    def __enter__(self):
        sys.stderr.flush()
        self.tmp = tempfile.TemporaryFile()
        self.saved = os.dup(2)
        os.dup2(self.tmp.fileno(), 2)
        return self

    def __exit__(self, *exc) -> bool:
        try:
            sys.stderr.flush()
        finally:
            os.dup2(self.saved, 2)
            os.close(self.saved)
        self.tmp.seek(0)
        text = self.tmp.read().decode("utf-8", errors="replace")
        self.tmp.close()
        kept = "".join(line for line in text.splitlines(True) if not _LLAMA_LINE.match(line))
        if kept:
            os.write(2, kept.encode("utf-8"))
        return False


RUNTIMES = ("auto", "python", "cffi")
_NO_RUNTIME_HINT = ("Run ./install.sh (it installs the prebuilt llama.cpp runtime, llama-cpp-cffi, or compiles "
                    "llama-cpp-python where that cannot run), or configure an OpenAI-compatible endpoint with "
                    "INTERVIEW_LLM_BASE_URL and INTERVIEW_LLM_MODEL.")


def choose_runtime(wanted: str | None = None) -> str:
    """`python` (llama-cpp-python) or `cffi` (the prebuilt wheel): the one asked for (argument, or
    where that is auto or absent INTERVIEW_LLAMA_RUNTIME: tests load settings from a dict of their
    own), or with `auto` the compiled binding where it is installed, else the prebuilt one where it
    runs. ModelError when the one needed is missing."""
    if not wanted or wanted.strip().lower() == "auto":  # settings left it to the environment
        wanted = os.environ.get("INTERVIEW_LLAMA_RUNTIME") or "auto"
    wanted = wanted.strip().lower()
    if wanted not in RUNTIMES:
        raise ModelError(f"INTERVIEW_LLAMA_RUNTIME is {wanted!r}.", "Use auto, python or cffi.")
    has_python = importlib.util.find_spec("llama_cpp") is not None
    if wanted == "python" or (wanted == "auto" and has_python):
        if not has_python:
            raise ModelError("The llama.cpp runtime llama-cpp-python is not installed.", _NO_RUNTIME_HINT)
        return "python"
    from bot.llm.cffi_runtime import unavailable_reason

    reason = unavailable_reason()
    if reason is None:
        return "cffi"
    if wanted == "cffi":
        raise ModelError(f"The prebuilt llama.cpp runtime cannot be used: {reason}.", _NO_RUNTIME_HINT)
    raise ModelError(f"No llama.cpp runtime: llama-cpp-python is not installed and the prebuilt one cannot be "
                     f"used ({reason}).", _NO_RUNTIME_HINT)


class _PythonEngine:
    """llama-cpp-python's Llama behind the engine interface (see bot.llm.cffi_runtime.CffiEngine)."""

    runtime = "python"
    state_tag = ""  # the prefix store's names from before there were two runtimes

    def __init__(self, model_path, *, n_ctx: int, n_batch: int, threads: int):
        try:
            import llama_cpp._internals
            import llama_cpp.llama
            import llama_cpp.llama_chat_format
            from llama_cpp import Llama
        except ImportError:
            raise ModelError("The llama.cpp runtime llama-cpp-python is not installed.", _NO_RUNTIME_HINT) from None
        for module in (llama_cpp.llama, llama_cpp._internals, llama_cpp.llama_chat_format):
            module.suppress_stdout_stderr = _KeepStreams
        _route_llama_log()
        self.model_path = str(model_path)
        self.llm = Llama(model_path=self.model_path, n_ctx=n_ctx, n_batch=n_batch, n_threads=threads,
                         n_threads_batch=threads, seed=0, verbose=False)
        self.n_ctx = self.llm.n_ctx()
        self.n_vocab = self.llm.n_vocab()
        self._grammars: dict[str, object] = {}
        self._aborting = False
        self._install_abort()

    def chat_formatter(self):
        from llama_cpp.llama_chat_format import Jinja2ChatFormatter

        template = self.llm.metadata.get("tokenizer.chat_template")
        if not template:
            return None
        vocab = self.llm._model
        eos = self.llm.detokenize([vocab.token_eos()]).decode("utf-8", "ignore")
        bos = self.llm.detokenize([vocab.token_bos()]).decode("utf-8", "ignore") if vocab.token_bos() >= 0 else ""
        formatter = Jinja2ChatFormatter(template=template, eos_token=eos, bos_token=bos, add_generation_prompt=True)
        return lambda messages: formatter(messages=messages).prompt

    def tokenize(self, text: bytes, add_bos: bool = True, special: bool = False) -> list[int]:
        return self.llm.tokenize(text, add_bos=add_bos, special=special)

    @property
    def tokens(self):
        return self.llm._input_ids[: self.llm.n_tokens]

    def eval(self, tokens: list[int]) -> None:
        self.llm.n_tokens = min(_common_prefix(self.tokens, tokens), len(tokens) - 1)  # eval() drops the KV cache past it
        self._call(self.llm.eval, tokens[self.llm.n_tokens:])

    def logits(self):
        import numpy as np

        return np.ctypeslib.as_array(self.llm._ctx.get_logits(), shape=(self.n_vocab,)).copy()

    def save_state(self) -> bytes:
        import ctypes

        import llama_cpp

        ctx = self.llm._ctx.ctx
        size = llama_cpp.llama_state_get_size(ctx)
        buf = (ctypes.c_uint8 * int(size))()
        n = int(llama_cpp.llama_state_get_data(ctx, buf, size))
        return bytes(memoryview(buf)[:n])

    def load_state(self, data: bytes, tokens) -> bool:
        import ctypes

        import llama_cpp

        arr = (ctypes.c_uint8 * len(data)).from_buffer_copy(data)
        if llama_cpp.llama_state_set_data(self.llm._ctx.ctx, arr, len(data)) != len(data):
            self.llm.reset()
            return False
        self.llm.input_ids[: len(tokens)] = tokens
        self.llm.n_tokens = len(tokens)
        self.llm._requires_eval = True  # the logits belong to the snapshot, not the new prompt
        return True

    def complete_json(self, tokens: list[int], schema: dict, max_tokens: int) -> str:
        from llama_cpp import LlamaGrammar

        key = json.dumps(schema)  # key order matters: the grammar emits properties in schema order
        if key not in self._grammars:
            self._grammars[key] = LlamaGrammar.from_json_schema(key, verbose=False)
        out = self._call(self.llm.create_completion, tokens, max_tokens=max_tokens, temperature=0.0, top_k=1,
                         grammar=self._grammars[key], seed=0)
        return out["choices"][0]["text"]

    def _call(self, fn, *args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except RuntimeError:
            if self._aborting:
                raise Aborted() from None
            raise

    def reset(self) -> None:
        self.llm.reset()

    def _install_abort(self) -> None:
        """The abort callback, installed before any call (a computation in flight keeps the
        callback it started with): the same native one-byte flag reader as the prebuilt
        runtime's (bot.llm.cffi_runtime._flag_reader), through ctypes."""
        import ctypes

        import llama_cpp

        self._abort_flag = ctypes.create_string_buffer(2)
        strlen = ctypes.cast(ctypes.CDLL(None).strlen, ctypes.c_void_p).value
        self._abort_fn = llama_cpp.ggml_abort_callback(strlen)  # kept alive as long as the context
        llama_cpp.llama_set_abort_callback(self.llm._ctx.ctx, self._abort_fn,
                                           ctypes.cast(self._abort_flag, ctypes.c_void_p))

    def abort(self) -> None:
        """Stop the call in flight at llama.cpp's next check."""
        self._aborting = True
        self._abort_flag[0] = b"\x01"

    def close(self) -> None:
        self.llm.close()


class LocalLLM(LLM):
    concurrency = 1  # one llama.cpp context: calls take turns
    caches_prefix = True
    writes_slowly = True  # ~14 tokens/s on 2 cores: a sentence costs seconds (bot.followups)
    uses_our_cores = True

    def __init__(self, model_path: Path, *, n_ctx: int = 4096, threads: int = 0, name: str | None = None,
                 prefix_dir: Path | None = None, runtime: str | None = None):
        self.runtime = choose_runtime(runtime)
        if not Path(model_path).is_file():
            raise ModelError(f"Model file {model_path} does not exist.",
                             "Fix INTERVIEW_LOCAL_MODEL, or unset it to use the bundled model.")
        self.name = name or Path(model_path).stem
        self._lock = threading.Lock()

        cores = os.cpu_count() or 2
        try:
            with _FilteredStderr():
                if self.runtime == "cffi":
                    from bot.llm.cffi_runtime import CffiEngine as engine
                else:
                    engine = _PythonEngine
                # Every core by default: grading on an idle 2-core machine took 6.0 s with 2
                # threads vs 7.8 s with 1. Generation stalls when a thread shares its core with
                # another busy process (8 tok/s on 1 thread vs 2.9 on 2), so on a shared
                # machine set INTERVIEW_THREADS=1.
                self.llm = engine(model_path, n_ctx=n_ctx, n_batch=512, threads=threads or cores)
        except ModelError:
            raise
        except Exception as e:  # llama.cpp reports a bad file as a ValueError
            raise ModelError(f"llama.cpp could not load {model_path}: {e}",
                             "Check the file is a GGUF model; delete it to have the bundled one rebuilt.") from None
        self._formatter = self.llm.chat_formatter()
        if self._formatter is None:
            raise ModelError(f"{self.name} has no chat template in its GGUF metadata.",
                             "Use an instruction-tuned GGUF model that includes its chat template.")
        self.n_ctx = self.llm.n_ctx  # read once: the context is gone after close()
        self._snapshots: dict[tuple[int, ...], bytes] = {}  # prompt prefix tokens -> llama.cpp state
        self._closed = False
        self._store = None
        if prefix_dir is not None:
            from bot.llm.prefix_store import PrefixStore

            size = Path(model_path).stat().st_size
            tag = f"-{self.llm.state_tag}" if self.llm.state_tag else ""
            self._store = PrefixStore(prefix_dir, f"{Path(model_path).stem}-{size}-ctx{n_ctx}{tag}")

    def close(self, timeout: float = 30.0) -> bool:
        """Free the model once no thread is inside llama.cpp. The interpreter's exit must not
        free it under a running warm-up: that was the segfault after Ctrl-C. The call in flight
        is aborted (llama.cpp checks between the steps of its computation), so this takes a
        fraction of a second; returns False when it still did not end within `timeout` (the
        caller then exits without cleanup)."""
        self._closed = True
        try:
            self.llm.abort()
        except Exception:  # no abort here: wait for the call to end
            pass
        if not self._lock.acquire(timeout=timeout):
            return False
        try:
            self.llm.close()
        finally:
            self._lock.release()
        return True

    def _check_open(self) -> None:
        if self._closed:
            raise LLMError("The embedded model was closed.", "Start the command again.")

    def _prompt(self, system: str, user: str) -> str:
        msgs = [{"role": "system", "content": system}, {"role": "user", "content": user}]
        return self._formatter(msgs)

    def _tokenize_prompt(self, prompt: str) -> list[int]:
        # Under self._lock, as every call into llama.cpp: close() frees the model (its vocabulary
        # with it) once it holds the lock, and a tokenization running beside it crashed the
        # process (a segfault after Ctrl-C, seen with the prebuilt runtime).
        return self.llm.tokenize(prompt.encode("utf-8"), special=True)

    def prepare(self, system: str, user_prefix: str) -> None:
        """Evaluate a prompt prefix and keep a snapshot of it, so any later prompt that starts
        with it (the next answer to the same question) only evaluates its own tail."""
        prefix = self._prompt(system, user_prefix + SENTINEL).split(SENTINEL)[0]
        with self._lock:
            self._check_open()
            tokens = self._tokenize_prompt(prefix)
            if self._restore(tokens) >= len(tokens):
                return
            done = min(self._common(tokens), len(tokens) - 1)
            with self._aborted_as_closed():
                while done < len(tokens):
                    if should_yield():
                        # An answer waits: leave now. The cache keeps what was evaluated, which the
                        # answer's prompt reuses where it starts the same way.
                        return
                    done = min(done + self.PREFILL_CHUNK, len(tokens))
                    self.llm.eval(tokens[:done])
            self._snapshot(tokens)

    # Tokens evaluated between two looks at whether an answer waits (about half a second here).
    PREFILL_CHUNK = 64

    # llama.cpp keeps one sequence in its KV cache: the grading prompt and the fact-check prompt
    # (different system prompts) evicted each other, so every answer paid ~800 prefix tokens
    # (6-7 s here) again. Snapshots of the few prefixes in use (~28 KB a token for the 1.5B
    # model) are restored in milliseconds.
    MAX_SNAPSHOTS = 4

    def _common(self, tokens: list[int]) -> int:
        """How many leading tokens of `tokens` the live KV cache already holds."""
        return _common_prefix(self.llm.tokens, tokens)

    def _snapshot(self, tokens: list[int]) -> None:
        data = self.llm.save_state()
        self._remember(tuple(tokens), data)
        if self._store is not None:
            self._store.put(tuple(tokens), data)

    def _remember(self, tokens: tuple[int, ...], data: bytes) -> None:
        """Keep a snapshot in memory, most recent last, at most MAX_SNAPSHOTS (~20-35 MB each)."""
        self._snapshots.pop(tokens, None)
        self._snapshots[tokens] = data
        while len(self._snapshots) > self.MAX_SNAPSHOTS:
            self._snapshots.pop(next(iter(self._snapshots)))

    def _restore(self, tokens: list[int]) -> int:
        """Load the snapshot sharing the longest prefix with `tokens` if it beats the live cache;
        return the number of tokens now cached that match."""
        have = self._common(tokens)
        best, best_n = None, have
        for key in self._snapshots:
            n = _common_prefix(key, tokens)
            if n > best_n:
                best, best_n = key, n
        if self._store is not None:  # a longer prefix saved by an earlier run
            found = self._store.best(tokens, best_n)
            if found is not None:
                best, best_n = found[0], len(found[0])
                self._remember(*found)
        if best is None:
            return have
        data = self._snapshots[best]
        self._remember(best, data)  # most recently used last
        if not self.llm.load_state(data, best):
            return 0
        return best_n

    def _aborted_as_closed(self):
        """Within: a call stopped by close() raises the closed model's LLMError."""
        import contextlib

        @contextlib.contextmanager
        def guard():
            try:
                yield
            except Aborted:
                raise LLMError("The embedded model was closed.", "Start the command again.") from None

        return guard()

    def generate_json(self, system: str, user: str, schema: dict, max_tokens: int = 1024) -> str:
        prompt = self._prompt(system, user)
        with self._lock:
            self._check_open()
            tokens = self._tokenize_prompt(prompt)
            too_long = context_overflow(self.name, len(tokens), self.n_ctx)
            if too_long is not None:
                raise too_long
            try:
                self._restore(tokens)
                return self.llm.complete_json(tokens, schema, max_tokens)
            except Aborted:
                raise LLMError("The embedded model was closed.", "Start the command again.") from None
            except Exception as e:  # a fault inside llama.cpp (an overflow was refused above)
                raise LLMError(f"The local model failed: {e}", "Retry; the answer is saved.") from None

    def distribution(self, messages: list[dict], continuation: str, options: list[str]) -> dict[str, float] | None:
        """Probabilities of each one-token option right after the chat prompt + continuation.

        Reads the model's whole belief (a score, true/false) instead of its single argmax token.
        The conversation so far is still in the KV cache, so this evaluates only the new tokens."""
        import numpy as np

        prompt = self._formatter(messages) + continuation
        with self._lock:
            self._check_open()
            ids = []
            for opt in options:
                tok = self.llm.tokenize(opt.encode("utf-8"), add_bos=False, special=False)
                if len(tok) != 1:
                    return None  # this tokenizer splits the option: no single-token distribution
                ids.append(tok[0])
            tokens = self._tokenize_prompt(prompt)
            with self._aborted_as_closed():
                self._restore(tokens)
                self.llm.eval(tokens)
            chosen = self.llm.logits()[ids].astype(np.float64)
        p = np.exp(chosen - chosen.max())
        p /= p.sum()
        return {opt: float(x) for opt, x in zip(options, p)}
