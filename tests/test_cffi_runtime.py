"""The prebuilt llama.cpp runtime (bot.llm.cffi_runtime): the JSON-schema grammars, the choice of
runtime, and, where llama-cpp-cffi is installed, its grammars checked by llama.cpp itself against
the bundled model's vocabulary (no model weights are computed: seconds)."""
import json

import pytest

from bot.errors import ModelError
from bot.evaluation.keypoints import schema as keypoints_schema
from bot.followups import SCHEMA as FOLLOWUP_SCHEMA
from bot.grading.prompt import reply_schema
from bot.llm.gbnf import schema_to_gbnf

APP_SCHEMAS = [reply_schema(4), reply_schema(1), reply_schema(0), FOLLOWUP_SCHEMA, keypoints_schema()]


def test_grammar_keeps_schema_order_and_bounds():
    g = schema_to_gbnf(reply_schema(4))
    root = g.splitlines()[0]
    assert root.startswith("root ::= ")
    assert root.index("missing-points") < root.index("wrong-claims") < root.index("score")
    assert 'root-missing-points-item ::= ("1" | "2" | "3" | "4") space' in g
    assert "root-wrong-claims-item){0,2})?" in g  # at most 3 claims
    assert 'char{0,120} "\\"" space' in g  # claims and corrections at most 120 characters
    assert 'root-score ::= ("0" | "1" | "2" | "3" | "4" | "5") space' in g
    assert '"\\"" char{4,300} "\\""' in schema_to_gbnf(FOLLOWUP_SCHEMA)
    kp = schema_to_gbnf(keypoints_schema())
    assert "(root-key-points-item (\",\" space root-key-points-item){0,7})" in kp  # 1..8 points, not optional


def test_grammar_literals_are_escaped_and_optional_keys_may_be_left_out():
    g = schema_to_gbnf({"type": "array", "items": {"enum": ['a "b"', "c\\d", "两个  空格"]}})
    assert r'"\"a \\\"b\\\"\""' in g and r'"\"c\\\\d\""' in g and '"\\"两个  空格\\""' in g
    g = schema_to_gbnf({"type": "object", "additionalProperties": False,
                        "properties": {"a": {"type": "integer"}, "b": {"type": "boolean"}}})
    assert g.splitlines()[0] == 'root ::= "{" space (root-a-kv ("," space root-b-kv)? | root-b-kv)? "}" space'


@pytest.mark.parametrize("schema", [
    {"type": "string", "pattern": "^a+$"},
    {"type": "object", "properties": {"a": {"type": "string"}}},  # open objects: extra keys anywhere
    {"$ref": "https://example.com/schema.json"},
    {"type": "array", "minItems": 3, "maxItems": 2},
])
def test_unsupported_schemas_are_refused_not_loosened(schema):
    with pytest.raises(ValueError):
        schema_to_gbnf(schema)


def test_runtime_choice(monkeypatch):
    from bot.llm import cffi_runtime, local

    monkeypatch.setenv("INTERVIEW_LLAMA_RUNTIME", "rust")
    with pytest.raises(ModelError, match="auto, python or cffi"):
        local.choose_runtime()
    monkeypatch.setattr(cffi_runtime, "unavailable_reason", lambda: "this CPU lacks avx2")
    with pytest.raises(ModelError, match="lacks avx2"):
        local.choose_runtime("cffi")
    monkeypatch.delenv("INTERVIEW_LLAMA_RUNTIME")
    monkeypatch.setattr(local.importlib.util, "find_spec", lambda name: None)  # no llama-cpp-python
    with pytest.raises(ModelError, match="llama-cpp-python is not installed and the prebuilt one cannot be used"):
        local.choose_runtime("auto")
    monkeypatch.setattr(cffi_runtime, "unavailable_reason", lambda: None)
    assert local.choose_runtime("auto") == "cffi"
    with pytest.raises(ModelError, match="llama-cpp-python is not installed"):
        local.choose_runtime("python")
    monkeypatch.setenv("INTERVIEW_LLAMA_RUNTIME", "python")  # settings' auto defers to the environment
    with pytest.raises(ModelError, match="llama-cpp-python is not installed"):
        local.choose_runtime("auto")


def test_cpu_check_names_what_is_missing(monkeypatch, tmp_path):
    from bot.llm import cffi_runtime

    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text("processor\t: 0\nflags\t\t: fpu sse sse2 avx f16c\n")
    real_open = open
    monkeypatch.setattr(cffi_runtime.platform, "machine", lambda: "x86_64")
    monkeypatch.setattr("builtins.open", lambda p, *a, **k: real_open(cpuinfo if p == "/proc/cpuinfo" else p, *a, **k))
    assert cffi_runtime.cpu_problem() == "this CPU lacks avx2, fma, bmi2, which the prebuilt llama.cpp needs"


def test_a_library_that_does_not_load_is_named_as_the_runtime_not_as_the_model(monkeypatch, tmp_path):
    """A prebuilt library that cannot be loaded (here a file that is not one; LD_BIND_NOW does the
    same to the real one) gets the runtime's error and fix, not "check the GGUF file"."""
    import pytest as _pytest

    from bot.errors import ModelError
    from bot.llm import cffi_runtime
    from bot.llm.local import LocalLLM

    bogus = tmp_path / "_llama_cpp_cpu.cpython-311-x86_64-linux-gnu.so"
    bogus.write_bytes(b"not a shared library")
    monkeypatch.setenv("INTERVIEW_LLAMA_LIB", str(bogus))
    monkeypatch.setattr(cffi_runtime, "_loaded", None)
    monkeypatch.setattr(cffi_runtime, "cpu_problem", lambda: None)
    model = tmp_path / "model.gguf"
    model.write_bytes(b"GGUF")
    with _pytest.raises(ModelError) as e:
        LocalLLM(model, runtime="cffi")
    assert "prebuilt llama.cpp runtime cannot be used here" in e.value.message and "does not load" in e.value.message
    assert "./install.sh" in e.value.hint and "GGUF" not in e.value.hint


def test_close_waits_for_a_tokenization_in_flight():
    """close() frees the model, its vocabulary with it: a prompt tokenized beside it (a grading
    that started as Ctrl-C came) crashed the process. Tokenizing is a call into llama.cpp like
    the others: close() waits for it."""
    import threading
    import time

    from bot.errors import LLMError
    from bot.llm import local

    inside, go = threading.Event(), threading.Event()

    class Engine:  # stands in for CffiEngine: tokenizing takes a while; freed is what close() does
        tokens, freed, aborted = [], False, False

        def tokenize(self, text, add_bos=True, special=False):
            inside.set()
            assert go.wait(10)
            assert not self.freed, "tokenized a freed model"
            return [1, 2, 3]

        def eval(self, tokens):
            if self.aborted:
                raise local.Aborted()

        def abort(self):
            self.aborted = True

        def close(self):
            self.freed = True

    llm = local.LocalLLM.__new__(local.LocalLLM)  # no model file: the engine above
    llm.llm, llm.name, llm.n_ctx, llm._store = Engine(), "fake", 4096, None
    llm._lock, llm._closed, llm._snapshots = threading.Lock(), False, {}
    llm._formatter = lambda messages: "".join(m["content"] for m in messages)
    errors = []

    def warm():
        try:
            llm.prepare("system", "question")
        except Exception as e:  # noqa: BLE001  (what the warm-up thread met)
            errors.append(e)

    warming = threading.Thread(target=warm)
    warming.start()
    assert inside.wait(10)
    closing = threading.Thread(target=llm.close, args=(10.0,))
    closing.start()
    time.sleep(0.2)
    assert not llm.llm.freed  # close() waits for the tokenization
    go.set()
    warming.join(10)
    closing.join(10)
    assert llm.llm.freed
    assert [type(e) for e in errors] == [LLMError]  # the prefill after it stopped: the model closed

def test_config_refuses_an_unknown_runtime(monkeypatch):
    from bot.config import load_settings
    from bot.errors import ConfigError

    assert load_settings({"INTERVIEW_LLAMA_RUNTIME": "cffi"}).llama_runtime == "cffi"
    with pytest.raises(ConfigError, match="llama_runtime"):
        load_settings({"INTERVIEW_LLAMA_RUNTIME": "gpu"})


# --- with the prebuilt library and the bundled model's vocabulary ------------------------------

@pytest.fixture(scope="module")
def vocab():
    from bot.config import load_settings
    from bot.llm import cffi_runtime
    from bot.llm.model_files import ensure_model

    reason = cffi_runtime.unavailable_reason()
    if reason is not None:
        pytest.skip(f"prebuilt runtime: {reason}")
    settings = load_settings({})
    path = settings.local_model or settings.models_dir / "qwen2.5-coder-1.5b-instruct-q4_k_m.gguf"
    if not path.is_file():
        path = ensure_model(settings.local_model_name, settings.models_dir)
    ffi, lib = cffi_runtime.load()
    params = lib.llama_model_default_params()
    params.vocab_only = True  # tokenizer only: no weights read
    model = lib.llama_model_load_from_file(str(path).encode(), params)
    assert model != ffi.NULL
    yield ffi, lib, lib.llama_model_get_vocab(model)
    lib.llama_model_free(model)


def _accepts(vocab, schema: dict, text: str) -> bool:
    """Does llama.cpp's grammar sampler for `schema` let the model write `text`, token by token,
    and then stop?"""
    ffi, lib, v = vocab
    grammar = lib.llama_sampler_init_grammar(v, schema_to_gbnf(schema).encode(), b"root")
    assert grammar != ffi.NULL, schema_to_gbnf(schema)
    try:
        buf = ffi.new("int32_t[]", 4096)
        n = lib.llama_tokenize(v, text.encode(), len(text.encode()), buf, 4096, False, False)
        for token in list(buf[0:n]) + [lib.llama_vocab_eos(v)]:
            one = ffi.new("llama_token_data[1]", [{"id": token, "logit": 0.0, "p": 0.0}])
            arr = ffi.new("llama_token_data_array *", {"data": one, "size": 1, "selected": -1, "sorted": False})
            lib.llama_sampler_apply(grammar, arr)
            if one[0].logit == float("-inf"):
                return False
            if token != lib.llama_vocab_eos(v):
                lib.llama_sampler_accept(grammar, token)
        return True
    finally:
        lib.llama_sampler_free(grammar)


@pytest.mark.parametrize("schema", APP_SCHEMAS, ids=["grade4", "grade1", "grade0", "followup", "keypoints"])
def test_llama_cpp_compiles_the_app_grammars(vocab, schema):
    ffi, lib, v = vocab
    grammar = lib.llama_sampler_init_grammar(v, schema_to_gbnf(schema).encode(), b"root")
    assert grammar != ffi.NULL
    lib.llama_sampler_free(grammar)


def test_grammar_accepts_valid_replies_and_refuses_invalid_ones(vocab):
    s = reply_schema(4)
    good = {"missing_points": [2, 4], "wrong_claims": [{"claim": "BN 随机删除神经元", "correction": "那是 dropout"}],
            "score": 1}
    assert _accepts(vocab, s, json.dumps(good, ensure_ascii=False))
    assert _accepts(vocab, s, '{"missing_points":[],"wrong_claims":[],"score":5}')
    assert not _accepts(vocab, s, '{"missing_points": [5], "wrong_claims": [], "score": 1}')  # no key point 5
    assert not _accepts(vocab, s, '{"score": 1, "missing_points": [], "wrong_claims": []}')  # order
    assert not _accepts(vocab, s, '{"missing_points": [], "wrong_claims": [], "score": 6}')
    assert not _accepts(vocab, s, '{"missing_points": [], "wrong_claims": [], "score": 1, "x": 1}')
    too_long = {"claim": "x" * 121, "correction": "y"}
    assert not _accepts(vocab, s, json.dumps({"missing_points": [], "wrong_claims": [too_long], "score": 1}))
    assert not _accepts(vocab, FOLLOWUP_SCHEMA, '{"question": "abc"}')  # minLength 4
    assert _accepts(vocab, FOLLOWUP_SCHEMA, '{"question": "训练时显存主要花在哪里？"}')
    assert not _accepts(vocab, FOLLOWUP_SCHEMA, '{"question": "a\nb c d"}')  # a raw newline is not JSON
    assert not _accepts(vocab, keypoints_schema(), '{"key_points": []}')  # minItems 1
