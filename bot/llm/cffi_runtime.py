"""The prebuilt llama.cpp runtime: llama.cpp's C API through the cffi module of the
`llama-cpp-cffi` wheel, for installs without a compiler.

llama-cpp-python has no prebuilt wheels and compiles llama.cpp at install (4-10 minutes on 2
cores). The `llama-cpp-cffi` wheel (0.4.42, manylinux_2_34, x86_64: glibc 2.34 or newer) carries
a compiled CPU build of llama.cpp as the extension module `llama/_llama_cpp_cpu*.so`. Its Python
package is not used: its `__init__` imports transformers and reaches for a model hub. The
extension module is loaded by file path and driven through the raw C API: tokenize, decode,
logits, the state of the KV cache, a grammar sampler, an abort callback.

Why 0.4.42 (measured on a 2-core AMD EPYC, Qwen2.5-Coder-1.5B Q4_K_M, a 600-token prompt, 2
threads, n_batch 512): its prefill runs at 56 tokens/s and generation at 19.8 tokens/s, near the
compiled llama-cpp-python's 61-62 tokens/s prefill; 0.4.18 (the earlier pin), 0.4.21, 0.4.31 and
0.4.37 prefill at about 39 tokens/s. From 0.4.21 on the module was built with GCC 14 and
references `__cxa_call_terminate`, which only GCC 14's libstdc++ has (Debian 12 has GCC 12's):
loaded the usual way (symbols bound at load) it fails with "undefined symbol:
__cxa_call_terminate", so `load` binds its symbols lazily (see there). The `llama-cpp-py-sync`
wheels need glibc 2.38 (Debian 12 has 2.36) and are not used.

Built for AVX/AVX2/FMA/F16C/BMI2 (its llama_print_system_info), without AVX-512 or AMX: it runs
on any x86-64 CPU of the last ten years, and is refused (the compiled binding is then needed) on
CPUs without those instructions.
"""
from __future__ import annotations

import glob
import importlib.machinery
import importlib.util
import json
import os
import platform
import sys
import threading
from pathlib import Path

import numpy as np

from bot.errors import ModelError
from bot.llm.engines import Aborted, LogForwarder

REQUIRED_CPU_FLAGS = ("avx", "avx2", "fma", "f16c", "bmi2")
STATE_TAG = "cffi-0.4.42"  # saved KV states are only read back by the llama.cpp build that wrote them


class RuntimeUnavailable(ModelError):
    """The prebuilt runtime cannot run here (not installed, this CPU lacks its instructions, or its
    library does not load): said as such, not as a bad model file."""

    def __init__(self, reason: str):
        super().__init__(f"The prebuilt llama.cpp runtime cannot be used here: {reason}.",
                         "Run ./install.sh again: it compiles llama-cpp-python where the prebuilt library "
                         "cannot run (a C compiler is needed), and `interview model info` then names it.")


def find_library() -> Path | None:
    """The CPU build's extension module: INTERVIEW_LLAMA_LIB, else inside the installed `llama`
    package (found without importing it)."""
    explicit = os.environ.get("INTERVIEW_LLAMA_LIB")
    if explicit:
        return Path(explicit)
    try:
        spec = importlib.util.find_spec("llama")
    except (ImportError, ValueError):
        return None
    for folder in (spec.submodule_search_locations or []) if spec else []:
        found = sorted(glob.glob(os.path.join(folder, "_llama_cpp_cpu*.so")))
        if found:
            return Path(found[0])
    return None


def cpu_problem() -> str | None:
    """Why this CPU cannot run the prebuilt build, or None."""
    if platform.machine().lower() not in ("x86_64", "amd64"):
        return f"the prebuilt llama.cpp is built for x86-64, this machine is {platform.machine()}"
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            flags = next((line.split(":", 1)[1].split() for line in f if line.startswith("flags")), None)
    except OSError:
        return None  # cannot tell: assume a modern CPU
    if flags is None:
        return None
    missing = [f for f in REQUIRED_CPU_FLAGS if f not in flags]
    if missing:
        return f"this CPU lacks {', '.join(missing)}, which the prebuilt llama.cpp needs"
    return None


def unavailable_reason() -> str | None:
    """None when the prebuilt runtime can be used here, else why not."""
    if find_library() is None:
        return "llama-cpp-cffi is not installed"
    if not find_library().is_file():
        return f"{find_library()} does not exist"
    # The extension module needs cffi's compiled backend (`import cffi` alone also succeeds on any
    # folder named cffi in the working directory).
    if importlib.util.find_spec("_cffi_backend") is None:
        return "cffi is not installed"
    return cpu_problem()


_loaded = None
_load_lock = threading.Lock()


def load():
    """(ffi, lib) of the CPU build, loaded once per process, its log routed to `llama.cpp`."""
    global _loaded
    with _load_lock:
        if _loaded is not None:
            return _loaded
        reason = unavailable_reason()
        if reason is not None:
            raise RuntimeUnavailable(reason)
        path = str(find_library())
        # The module's init function is PyInit__llama_cpp_cpu, so its name must end that way; it is
        # not entered in sys.modules (nothing imports it by name).
        loader = importlib.machinery.ExtensionFileLoader("_llama_cpp_cpu", path)
        spec = importlib.util.spec_from_file_location("_llama_cpp_cpu", path, loader=loader)
        # Lazy binding: the module references `__cxa_call_terminate` (GCC 14's libstdc++; older
        # ones, such as Debian 12's, lack it), and Python's default RTLD_NOW refuses the load
        # ("undefined symbol: __cxa_call_terminate"). The module is not linked with BIND_NOW, and
        # the symbol is only called on the way to std::terminate, which ends the process either
        # way. (LD_BIND_NOW in the environment would still bind everything at load.)
        flags = sys.getdlopenflags()
        sys.setdlopenflags(os.RTLD_LAZY | os.RTLD_LOCAL)
        try:
            module = importlib.util.module_from_spec(spec)  # dlopen happens here
            loader.exec_module(module)
        except (ImportError, OSError) as e:  # e.g. LD_BIND_NOW set, or a library of another build
            raise RuntimeUnavailable(f"{path} does not load ({str(e)[:200]})") from e
        finally:
            sys.setdlopenflags(flags)
        ffi, lib = module.ffi, module.lib
        _route_log(ffi, lib)
        lib.llama_backend_init()
        _loaded = (ffi, lib)
        return _loaded


def _route_log(ffi, lib) -> None:
    log = LogForwarder()

    # The module declares this callback `extern "Python"`: defining it here is what the C side calls.
    @ffi.def_extern(name="llama_cpp_cffi_ggml_log_callback")
    def forward(level, text, user_data):
        if log.wanted(int(level)) and text != ffi.NULL:
            log(ffi.string(text))

    lib.llama_log_set(lib.llama_cpp_cffi_ggml_log_callback, ffi.NULL)


def _flag_reader(ffi):
    """A native `bool (*)(void *)` that is true once the byte its argument points at is nonzero:
    libc's strlen over a one-byte flag and its terminating zero returns 0 or 1, in the register
    a bool is returned in. llama.cpp calls the abort callback between graph nodes from its compute
    thread; a Python callback there would take the GIL hundreds of times per token (and wait on
    whichever Python thread holds it), this reads one byte."""
    import cffi

    abi = cffi.FFI()
    abi.cdef("size_t strlen(const char *);")
    libc = abi.dlopen(None)
    address = int(abi.cast("uintptr_t", abi.addressof(libc, "strlen")))
    return ffi.cast("_Bool(*)(void *)", address)


class ChatTemplate:
    """Renders the GGUF's chat template (Jinja, as Hugging Face's tokenizers do) for a list of
    messages, ending with the assistant's turn opened."""

    def __init__(self, template: str, eos_token: str, bos_token: str):
        from jinja2.ext import loopcontrols
        from jinja2.sandbox import ImmutableSandboxedEnvironment

        env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True, extensions=[loopcontrols])
        env.filters["tojson"] = lambda x, indent=None, **_: json.dumps(x, ensure_ascii=False, indent=indent)
        self._template = env.from_string(template)
        self.eos_token, self.bos_token = eos_token, bos_token

    def __call__(self, messages: list[dict]) -> str:
        def raise_exception(message: str):
            raise ValueError(message)

        return self._template.render(messages=messages, eos_token=self.eos_token, bos_token=self.bos_token,
                                     add_generation_prompt=True, raise_exception=raise_exception)


_TOKEN_DATA = np.dtype([("id", "<i4"), ("logit", "<f4"), ("p", "<f4")])


class CffiEngine:
    """One llama.cpp model and context (one sequence), the tokens in its KV cache tracked."""

    runtime = "cffi"
    state_tag = STATE_TAG

    def __init__(self, model_path: str | Path, *, n_ctx: int = 4096, n_batch: int = 512, threads: int = 2):
        ffi, lib = self._ffi, self._lib = load()
        self.model_path = str(model_path)
        self._model = self._ctx = ffi.NULL
        self._batch = None
        mparams = lib.llama_model_default_params()
        mparams.n_gpu_layers = 0
        self._model = lib.llama_model_load_from_file(self.model_path.encode(), mparams)
        if self._model == ffi.NULL:
            raise ValueError(f"Failed to load model from file: {self.model_path}")
        cparams = lib.llama_context_default_params()
        cparams.n_ctx, cparams.n_batch, cparams.n_ubatch = n_ctx, n_batch, n_batch
        cparams.n_threads = cparams.n_threads_batch = threads
        self._ctx = lib.llama_init_from_model(self._model, cparams)
        if self._ctx == ffi.NULL:
            lib.llama_model_free(self._model)
            raise ValueError(f"Failed to create a llama.cpp context for {self.model_path}")
        self._vocab = lib.llama_model_get_vocab(self._model)
        self.n_ctx = int(lib.llama_n_ctx(self._ctx))
        self.n_batch = n_batch
        self.n_vocab = int(lib.llama_vocab_n_tokens(self._vocab))
        self._batch = lib.llama_batch_init(n_batch, 0, 1)
        self._tokens: list[int] = []  # what the KV cache holds, position by position
        # Abort: llama.cpp polls the callback while it computes; it reads this byte.
        self._abort_flag = ffi.new("char[2]")
        self._abort_fn = _flag_reader(ffi)
        lib.llama_set_abort_callback(self._ctx, self._abort_fn, self._abort_flag)
        self._candidates = ffi.new("llama_token_data[]", self.n_vocab)
        self._cand_np = np.frombuffer(ffi.buffer(self._candidates), dtype=_TOKEN_DATA)
        self._one = ffi.new("llama_token_data[1]")
        self._grammars: dict[str, object] = {}  # schema -> grammar sampler (reset before each use)
        self.chat_template = self._meta("tokenizer.chat_template")

    # --- metadata and tokens ---------------------------------------------------------------
    def _meta(self, key: str) -> str | None:
        ffi, lib = self._ffi, self._lib
        size = lib.llama_model_meta_val_str(self._model, key.encode(), ffi.NULL, 0)
        if size < 0:
            return None
        buf = ffi.new("char[]", size + 1)
        lib.llama_model_meta_val_str(self._model, key.encode(), buf, size + 1)
        return ffi.string(buf, size).decode("utf-8", errors="replace")

    def token_text(self, token: int, special: bool = True) -> bytes:
        ffi, lib = self._ffi, self._lib
        buf = ffi.new("char[]", 64)
        n = lib.llama_token_to_piece(self._vocab, token, buf, 64, 0, special)
        if n < 0:
            buf = ffi.new("char[]", -n)
            n = lib.llama_token_to_piece(self._vocab, token, buf, -n, 0, special)
        return ffi.buffer(buf, n)[:]

    def chat_formatter(self) -> ChatTemplate | None:
        if not self.chat_template:
            return None
        lib = self._lib
        eos = lib.llama_vocab_eos(self._vocab)
        bos = lib.llama_vocab_bos(self._vocab)
        return ChatTemplate(self.chat_template, self.token_text(eos).decode("utf-8", "ignore") if eos >= 0 else "",
                            self.token_text(bos).decode("utf-8", "ignore") if bos >= 0 else "")

    def tokenize(self, text: bytes, add_bos: bool = True, special: bool = False) -> list[int]:
        ffi, lib = self._ffi, self._lib
        cap = len(text) + 8
        buf = ffi.new("int32_t[]", cap)
        n = lib.llama_tokenize(self._vocab, text, len(text), buf, cap, add_bos, special)
        if n < 0:
            cap = -n
            buf = ffi.new("int32_t[]", cap)
            n = lib.llama_tokenize(self._vocab, text, len(text), buf, cap, add_bos, special)
        return list(ffi.unpack(buf, n))

    # --- evaluation ------------------------------------------------------------------------
    @property
    def tokens(self) -> list[int]:
        return self._tokens

    def _decode(self, tokens: list[int], want_logits: bool) -> None:
        lib, batch = self._lib, self._batch
        pos = len(self._tokens)
        batch.n_tokens = len(tokens)
        for i, t in enumerate(tokens):
            batch.token[i] = t
            batch.pos[i] = pos + i
            batch.n_seq_id[i] = 1
            batch.seq_id[i][0] = 0
            batch.logits[i] = 0
        batch.logits[len(tokens) - 1] = 1 if want_logits else 0
        rc = lib.llama_decode(self._ctx, batch)
        if rc != 0:
            self.reset()  # a stopped or failed decode may leave part of the batch in the cache
            if rc == 2 or self._abort_flag[0] != b"\x00":
                raise Aborted()
            raise RuntimeError(f"llama_decode returned {rc}")
        self._tokens.extend(tokens)

    def eval(self, tokens: list[int]) -> None:
        """Evaluate `tokens`, keeping the cached prefix they share (at least the last token is
        evaluated, so the logits belong to it)."""
        if not tokens:
            raise ValueError("nothing to evaluate")
        n = 0
        for a, b in zip(self._tokens, tokens):
            if a != b:
                break
            n += 1
        n = min(n, len(tokens) - 1)
        self._lib.llama_kv_cache_seq_rm(self._ctx, -1, n, -1)
        del self._tokens[n:]
        for start in range(n, len(tokens), self.n_batch):
            chunk = tokens[start:start + self.n_batch]
            self._decode(chunk, want_logits=start + len(chunk) == len(tokens))

    def logits(self) -> np.ndarray:
        """The next-token logits after the last evaluated token (a copy)."""
        ptr = self._lib.llama_get_logits_ith(self._ctx, -1)
        if ptr == self._ffi.NULL:
            raise RuntimeError("no logits: nothing was evaluated")
        return np.frombuffer(self._ffi.buffer(ptr, 4 * self.n_vocab), dtype=np.float32).copy()

    def reset(self) -> None:
        self._lib.llama_kv_cache_clear(self._ctx)
        self._tokens = []

    # --- saved states ----------------------------------------------------------------------
    def save_state(self) -> bytes:
        ffi, lib = self._ffi, self._lib
        size = lib.llama_state_get_size(self._ctx)
        buf = ffi.new("uint8_t[]", size)
        n = lib.llama_state_get_data(self._ctx, buf, size)
        return ffi.buffer(buf, n)[:]

    def load_state(self, data: bytes, tokens) -> bool:
        """Restore a state saved after evaluating `tokens`; False (and an empty cache) when
        llama.cpp refuses it."""
        ffi, lib = self._ffi, self._lib
        if lib.llama_state_set_data(self._ctx, ffi.from_buffer("uint8_t[]", data), len(data)) != len(data):
            self.reset()
            return False
        self._tokens = list(tokens)
        return True

    # --- constrained generation ------------------------------------------------------------
    def _grammar(self, schema: dict):
        from bot.llm.gbnf import schema_to_gbnf

        key = json.dumps(schema)  # key order matters: the grammar emits properties in schema order
        sampler = self._grammars.get(key)
        if sampler is None:
            text = schema_to_gbnf(schema)
            sampler = self._lib.llama_sampler_init_grammar(self._vocab, text.encode("utf-8"), b"root")
            if sampler == self._ffi.NULL:
                raise ValueError(f"llama.cpp refused the grammar of {key}:\n{text}")
            self._grammars[key] = sampler
        else:
            self._lib.llama_sampler_reset(sampler)
        return sampler

    def _allowed(self, grammar, token: int, logit: float) -> bool:
        """Would the grammar accept `token` next? (One candidate: cheap.)"""
        one = self._one
        one[0].id, one[0].logit, one[0].p = token, logit, 0.0
        arr = self._ffi.new("llama_token_data_array *", {"data": one, "size": 1, "selected": -1, "sorted": False})
        self._lib.llama_sampler_apply(grammar, arr)
        return one[0].logit != float("-inf")

    def _pick(self, grammar) -> int:
        """The most probable next token the grammar allows (greedy). The unconstrained argmax is
        tried first, as llama.cpp's own sampler does: it is usually allowed, and checking one
        token is far cheaper than masking all 150k."""
        logits = self.logits()
        best = int(logits.argmax())
        if self._allowed(grammar, best, float(logits[best])):
            return best
        cand = self._cand_np
        cand["id"] = np.arange(self.n_vocab, dtype=np.int32)
        cand["logit"] = logits
        cand["p"] = 0.0
        arr = self._ffi.new("llama_token_data_array *",
                            {"data": self._candidates, "size": self.n_vocab, "selected": -1, "sorted": False})
        self._lib.llama_sampler_apply(grammar, arr)
        masked = cand["logit"]
        i = int(masked.argmax())
        if masked[i] == float("-inf"):
            raise RuntimeError("the grammar allows no token")
        return int(cand["id"][i])

    def complete_json(self, tokens: list[int], schema: dict, max_tokens: int) -> str:
        """Greedy completion of `tokens` under the schema's grammar, up to an end-of-generation
        token or max_tokens (fewer when the context fills)."""
        lib = self._lib
        grammar = self._grammar(schema)
        self.eval(tokens)
        out: list[bytes] = []
        limit = min(max_tokens, self.n_ctx - len(tokens))
        for _ in range(limit):
            token = self._pick(grammar)
            if lib.llama_vocab_is_eog(self._vocab, token):
                break
            lib.llama_sampler_accept(grammar, token)
            out.append(self.token_text(token, special=False))
            if len(self._tokens) >= self.n_ctx:
                break
            self._decode([token], want_logits=True)
        return b"".join(out).decode("utf-8", errors="ignore")

    # --- lifetime --------------------------------------------------------------------------
    def abort(self) -> None:
        """Make the call in flight (and any later one) stop at llama.cpp's next check."""
        self._abort_flag[0] = b"\x01"

    def close(self) -> None:
        ffi, lib = self._ffi, self._lib
        for sampler in self._grammars.values():
            lib.llama_sampler_free(sampler)
        self._grammars.clear()
        if self._batch is not None:
            lib.llama_batch_free(self._batch)
            self._batch = None
        if self._ctx != ffi.NULL:
            lib.llama_free(self._ctx)
            self._ctx = ffi.NULL
        if self._model != ffi.NULL:
            lib.llama_model_free(self._model)
            self._model = ffi.NULL
