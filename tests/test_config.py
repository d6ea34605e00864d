import re

import pytest

from bot.config import load_settings
from bot.errors import ConfigError


def test_defaults_use_embedded_model(tmp_path):
    s = load_settings({"INTERVIEW_HOME": str(tmp_path)})
    assert s.backend == "local" and s.home == tmp_path
    assert s.db_path.parent == tmp_path and s.chroma_path.parent == tmp_path


def test_openai_standard_vars_select_endpoint(tmp_path):
    s = load_settings({"INTERVIEW_HOME": str(tmp_path), "OPENAI_BASE_URL": "http://127.0.0.1:9/v1",
                       "INTERVIEW_LLM_MODEL": "m"})
    assert s.backend == "openai" and s.llm_base_url == "http://127.0.0.1:9/v1"


def test_env_overrides_config_file(tmp_path):
    (tmp_path / "config.toml").write_text('llm_model = "from-file"\nmatch_threshold = 0.5\n')
    s = load_settings({"INTERVIEW_HOME": str(tmp_path), "INTERVIEW_LLM_MODEL": "from-env"})
    assert s.llm_model == "from-env" and s.match_threshold == 0.5


def test_unknown_key_in_config_file(tmp_path):
    (tmp_path / "config.toml").write_text('llm_modle = "x"\n')
    with pytest.raises(ConfigError, match="unknown setting `llm_modle`"):
        load_settings({"INTERVIEW_HOME": str(tmp_path)})


def test_bad_number_names_the_variable(tmp_path):
    with pytest.raises(ConfigError, match="INTERVIEW_MATCH_THRESHOLD"):
        load_settings({"INTERVIEW_HOME": str(tmp_path), "INTERVIEW_MATCH_THRESHOLD": "high"})


def test_broken_toml(tmp_path):
    (tmp_path / "config.toml").write_text("llm_model = \n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_settings({"INTERVIEW_HOME": str(tmp_path)})


def test_replica_durations_from_env_and_file_and_refused_when_not_positive(tmp_path):
    (tmp_path / "config.toml").write_text("sweep_every = 5\n")
    s = load_settings({"INTERVIEW_HOME": str(tmp_path), "INTERVIEW_CLAIM_LEASE": "45"})
    assert (s.claim_lease, s.sweep_every) == (45.0, 5.0)
    with pytest.raises(ConfigError, match="claim_lease.*more than 0") as e:
        load_settings({"INTERVIEW_HOME": str(tmp_path), "INTERVIEW_CLAIM_LEASE": "0"})
    assert "INTERVIEW_CLAIM_LEASE" in e.value.hint
    (tmp_path / "config.toml").write_text("llm_concurrency = -1\n")
    with pytest.raises(ConfigError, match="llm_concurrency"):
        load_settings({"INTERVIEW_HOME": str(tmp_path)})


SECRETS = {"INTERVIEW_LLM_API_KEY": "sk-live-7f3a", "INTERVIEW_LLM_BASE_URL": "https://llm.internal/v1?api-key=az-9c1d",
           "INTERVIEW_DATABASE_URL": "postgresql://bob:hunter2@db.internal:5432/history",
           "INTERVIEW_CHROMA_URL": "http://chroma:s3cret@chroma.internal:8000/?tenant=team&token=tok-55e2"}
HIDDEN_VALUES = ("sk-live-7f3a", "az-9c1d", "hunter2", "s3cret", "tok-55e2")


def test_repr_and_str_of_settings_hide_every_secret_and_keep_the_rest(tmp_path):
    s = load_settings({"INTERVIEW_HOME": str(tmp_path), "INTERVIEW_LLM_MODEL": "m", **SECRETS})
    for shown in (repr(s), str(s), f"{s!r}"):
        assert not [v for v in HIDDEN_VALUES if v in shown], shown
        assert "llm_api_key='***'" in shown and "postgresql://bob:***@db.internal:5432/history" in shown
        assert "http://chroma:***@chroma.internal:8000/?tenant=team&token=***" in shown
        assert "llm_model='m'" in shown and str(tmp_path) in shown
    assert s.llm_api_key == "sk-live-7f3a"  # hidden when shown, not changed


@pytest.mark.parametrize("url, shown", [
    ("postgresql://bob:p@ss/w0rd@db:5432/h", "postgresql://bob:***@db:5432/h"),  # unescaped @ and / in it
    ("https://ghp_token@git.example/x", "https://***@git.example/x"),  # a userinfo without `:` is a token
    ("http://h:8000/v1?key=k1&model=m&Auth_Token=t2#frag", "http://h:8000/v1?key=***&model=m&Auth_Token=***#frag"),
    ("sqlite:////data/history.sqlite3", "sqlite:////data/history.sqlite3"),
    ("http://chroma.internal:8000", "http://chroma.internal:8000"),
])
def test_one_rule_redacts_credentials_in_urls(url, shown):
    from bot.config import redact_url, redacted

    assert redact_url(url) == shown
    assert redacted("database_url", url) == shown and redacted("some_new_token", "t") == "***"
    assert redacted("llm_api_key", None) is None and redacted("collection", "a:b@c") == "a:b@c"


def test_model_info_shows_hosts_but_no_secret(monkeypatch):
    from typer.testing import CliRunner

    from bot.cli import app

    for var, value in {**SECRETS, "INTERVIEW_LLM_MODEL": "m"}.items():
        monkeypatch.setenv(var, value)
    res = CliRunner().invoke(app, ["model", "info"])
    assert res.exit_code == 0, res.output
    assert not [v for v in HIDDEN_VALUES if v in res.output], res.output
    assert "chroma.internal:8000" in res.output and "bob:***@db.internal" in res.output
    assert "https://llm.internal/v1?api-key=***" in res.output and "api key:    set" in res.output


@pytest.mark.parametrize("line, says", [
    ("threads = inf", "`threads` has the value inf, which is not a valid int"),  # int(inf): OverflowError
    ("claim_lease = nan", "`claim_lease` has the value nan, which is not a valid float"),  # nan <= 0 is False
    ("match_threshold = nan", "`match_threshold` has the value nan"),
    ('local_model = "~no-such-user-here/m.gguf"', "`local_model` has the value '~no-such-user-here/m.gguf'"),
    ("llm_backend = 0", "config.toml: llm_backend is '0'"),  # where it was set, not only what
    ("llm_timeout = 0", "config.toml: `llm_timeout` is 0.0; it must be more than 0"),
    ("corpus_paths = " + "[" * 5000 + "]" * 5000, "config.toml: not valid TOML"),  # RecursionError
])
def test_a_bad_value_in_config_toml_is_a_clear_error_naming_the_file(tmp_path, line, says):
    """Found by tests/test_fuzz.py: tracebacks (OverflowError, RuntimeError, RecursionError), NaN
    accepted, and errors that did not say where the value was set."""
    (tmp_path / "config.toml").write_text(line + "\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=re.escape(says)):
        load_settings({"INTERVIEW_HOME": str(tmp_path)})


def test_bad_environment_values_name_the_variable(tmp_path):
    for env, says in ((("INTERVIEW_LLM_BACKEND", "x"), "environment variable INTERVIEW_LLM_BACKEND: llm_backend is 'x'"),
                      (("INTERVIEW_SWEEP_EVERY", "nan"), "environment variable INTERVIEW_SWEEP_EVERY"),
                      (("INTERVIEW_HOME", "~no-such-user-here"), "environment variable INTERVIEW_HOME"),
                      (("INTERVIEW_CONFIG", "~no-such-user-here/c.toml"), "environment variable INTERVIEW_CONFIG")):
        with pytest.raises(ConfigError, match=re.escape(says)):
            load_settings({"INTERVIEW_HOME": str(tmp_path), env[0]: env[1]})


def test_a_config_toml_that_is_a_folder_is_a_clear_error(tmp_path):
    (tmp_path / "config.toml").mkdir()
    with pytest.raises(ConfigError, match="config.toml: cannot be read"):
        load_settings({"INTERVIEW_HOME": str(tmp_path)})
