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
