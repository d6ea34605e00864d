"""Settings: environment variables override one TOML config file, which overrides defaults.

The config file is `$INTERVIEW_HOME/config.toml` (or the path in `INTERVIEW_CONFIG`); its keys are
the field names below, e.g. `llm_base_url = "http://localhost:11434/v1"`.
"""
from __future__ import annotations

import math
import os
import re
import tomllib
from dataclasses import dataclass, field, fields
from pathlib import Path

from bot.errors import ConfigError

APP_NAME = "interview-bot"
REPO_ROOT = Path(__file__).resolve().parent.parent
PACKAGE_DIR = Path(__file__).resolve().parent


def _shipped(in_package: str, in_checkout: str) -> Path:
    """Data that ships inside the package (the wheel maps the checkout's top-level `prompts/` and
    `corpus/` to `bot/prompts` and `bot/packs`); a checkout reads them where they are edited."""
    installed = PACKAGE_DIR / in_package
    return installed if installed.is_dir() else REPO_ROOT / in_checkout


PROMPTS_DIR = _shipped("prompts", "prompts")
DEFAULT_CORPUS_DIR = _shipped("packs", "corpus")  # the shipped packs
USER_PACKS = "packs"  # $INTERVIEW_HOME/packs: packs written by `interview corpus import`

# field name -> environment variables, first match wins.
ENV_VARS: dict[str, tuple[str, ...]] = {
    "corpus_paths": ("INTERVIEW_CORPUS",),
    "chroma_url": ("INTERVIEW_CHROMA_URL",),
    "collection": ("INTERVIEW_COLLECTION",),
    "llm_backend": ("INTERVIEW_LLM_BACKEND",),
    "llm_base_url": ("INTERVIEW_LLM_BASE_URL", "OPENAI_BASE_URL"),
    "llm_model": ("INTERVIEW_LLM_MODEL",),
    "llm_api_key": ("INTERVIEW_LLM_API_KEY", "OPENAI_API_KEY"),
    "llm_timeout": ("INTERVIEW_LLM_TIMEOUT",),
    "llm_concurrency": ("INTERVIEW_LLM_CONCURRENCY",),
    "local_model": ("INTERVIEW_LOCAL_MODEL",),
    "local_model_name": ("INTERVIEW_LOCAL_MODEL_NAME",),
    "threads": ("INTERVIEW_THREADS",),
    "llama_runtime": ("INTERVIEW_LLAMA_RUNTIME",),
    "match_threshold": ("INTERVIEW_MATCH_THRESHOLD",),
    "follow_ups": ("INTERVIEW_FOLLOW_UPS",),
    "database_url": ("INTERVIEW_DATABASE_URL",),
    "claim_lease": ("INTERVIEW_CLAIM_LEASE",),
    "sweep_every": ("INTERVIEW_SWEEP_EVERY",),
    "slack_max_files": ("INTERVIEW_SLACK_MAX_FILES",),
    "slack_max_pairs": ("INTERVIEW_SLACK_MAX_PAIRS",),
    "web_user_header": ("INTERVIEW_WEB_USER_HEADER",),
}

# Durations and counts where 0 or less would hang or spin: refused at load time.
POSITIVE = ("llm_timeout", "llm_concurrency", "claim_lease", "sweep_every", "slack_max_files", "slack_max_pairs")


# Settings that carry a secret, by name: a key, token, secret or password is never shown; a URL is
# shown without its credentials (redact_url). One rule, used wherever settings are printed.
SECRET_SETTING_RE = re.compile(r"_(key|token|secret|password)$")
SECRET_PARAM_RE = re.compile(r"(?i)key|token|secret|passw|pwd|sig|auth|credential")
HIDDEN = "***"


def redact_url(url: str) -> str:
    """The URL as it may be shown: the password of `user:password@` (a userinfo without `:` is
    often a token: all of it), and the values of query parameters that carry a credential
    (`?api-key=`, `&token=`) replaced by ***. The userinfo ends at the last `@`, as a password may
    hold `@` or `/` unescaped: better to hide too much than a part."""
    scheme, sep, rest = url.partition("://")
    if sep and "@" in rest:
        userinfo, _, host = rest.rpartition("@")
        user, colon, _ = userinfo.partition(":")
        rest = f"{user + colon if colon else ''}{HIDDEN}@{host}"
    head, question, query = (scheme + sep + rest).partition("?")
    if not question:
        return head
    query, hash_, fragment = query.partition("#")
    params = [(f"{name}={HIDDEN}" if eq and SECRET_PARAM_RE.search(name) else name + eq + value)
              for name, eq, value in (p.partition("=") for p in query.split("&"))]
    return f"{head}?{'&'.join(params)}{hash_}{fragment}"


def redacted(name: str, value):
    """A setting's value as it may be shown (see SECRET_SETTING_RE); unset values stay as they are."""
    if not value:
        return value
    if SECRET_SETTING_RE.search(name):
        return HIDDEN
    return redact_url(value) if name.endswith("_url") else value


def default_home() -> Path:
    from platformdirs import user_data_dir

    return Path(user_data_dir(APP_NAME, appauthor=False))


@dataclass(repr=False)
class Settings:
    home: Path = field(default_factory=default_home)
    corpus_paths: list[Path] = field(default_factory=lambda: [DEFAULT_CORPUS_DIR])
    chroma_url: str | None = None  # e.g. http://chroma.internal:8000 -> server mode
    collection: str = "interview-corpus"
    llm_backend: str = "auto"  # auto | local | openai | none
    llm_base_url: str | None = None
    llm_model: str | None = None
    llm_api_key: str | None = None
    llm_timeout: float = 120.0
    llm_concurrency: int = 4  # gradings sent to an endpoint at once by one process
    local_model: Path | None = None  # any GGUF; default: the bundled Qwen2.5-Coder-1.5B
    local_model_name: str = "qwen2.5-coder-1.5b"  # which bundled model to assemble
    threads: int = 0  # 0 = all cores
    # Which llama.cpp runs the local model: python (llama-cpp-python, compiled at install), cffi (the
    # prebuilt llama-cpp-cffi wheel's library) or auto (the compiled one where installed, else cffi).
    llama_runtime: str = "auto"
    match_threshold: float = 0.4  # bot.matching's match confidence (ACCEPT); bench/transcript_matching.py
    follow_ups: int = 1  # follow-up questions after an answer that misses an important point (0: none)
    # The history: sqlite:///PATH or postgresql://USER:PASSWORD@HOST:PORT/DB (bot.db). Empty: the
    # SQLite file in the data dir (db_path), filled in below.
    database_url: str = ""
    # Slack app replicas over one database: an answer's claim outlives a dead replica this long
    # before another takes it; every replica looks for such answers this often (bot.sessions).
    claim_lease: float = 120.0
    sweep_every: float = 30.0
    # What one Slack message may make the bot do, so that one person cannot keep the model busy for
    # everyone: transcripts scored from one DM, question/answer pairs scored from one transcript
    # (an interview asks at most 20 questions). The reply names what was left out and the setting.
    slack_max_files: int = 3
    slack_max_pairs: int = 20
    # `interview web` behind a sign-in proxy (oauth2-proxy, an ingress with auth): the request
    # header that names the signed-in person, e.g. X-Forwarded-User. Each person is then the
    # profile of that name, cannot switch, and a request without the header is refused. Trust it
    # only where nothing but the proxy can reach the server.
    web_user_header: str = ""

    def __post_init__(self):
        if not self.database_url:
            self.database_url = f"sqlite:///{self.db_path}"

    def __repr__(self) -> str:  # the dataclass repr would print the API key and database password
        return f"Settings({', '.join(f'{f.name}={self.shown(f.name)!r}' for f in fields(self))})"

    def shown(self, name: str):
        """The setting `name` as it may be printed or logged."""
        return redacted(name, getattr(self, name))

    @property
    def chroma_path(self) -> Path:
        return self.home / "chroma"

    @property
    def db_path(self) -> Path:
        return self.home / "history.sqlite3"

    @property
    def packs_dir(self) -> Path:
        return self.home / USER_PACKS

    @property
    def models_dir(self) -> Path:
        return self.home / "models"

    @property
    def backend(self) -> str:
        """The backend `auto` resolves to: a configured endpoint wins over the embedded model."""
        if self.llm_backend != "auto":
            return self.llm_backend
        return "openai" if (self.llm_base_url or (self.llm_api_key and self.llm_model)) else "local"


def _coerce(name: str, raw, source: str):
    kind = {f.name: f.type for f in fields(Settings)}[name]
    try:
        if name == "corpus_paths":
            items = raw if isinstance(raw, list) else str(raw).split(os.pathsep)
            return [Path(p).expanduser() for p in items if str(p).strip()]
        if "Path" in kind:
            return Path(str(raw)).expanduser()
        if kind.startswith("int"):
            return int(raw)
        if kind.startswith("float"):
            return _not_nan(float(raw))
        return str(raw)
    except (TypeError, ValueError, OverflowError, RuntimeError):  # int(inf); ~user of no such user
        raise ConfigError(
            f"{source}: `{name}` has the value {raw!r}, which is not a valid {kind}.",
            f"Set {name} to a {kind.split(' ')[0]}.",
        ) from None


def _not_nan(value: float) -> float:
    """NaN is refused: every comparison with it is False (a lease that never ends, a threshold never met)."""
    if math.isnan(value):
        raise ValueError("nan")
    return value


def _env_path(env: dict[str, str], var: str) -> Path:
    try:
        return Path(env[var]).expanduser()
    except RuntimeError:  # `~name/...` where this machine has no user `name`
        raise ConfigError(f"environment variable {var}: {env[var]!r} starts with the home folder of no user here.",
                          f"Set {var} to a full path.") from None


def load_settings(env: dict[str, str] | None = None) -> Settings:
    env = dict(os.environ if env is None else env)
    values: dict = {}
    sources: dict[str, str] = {}  # setting -> where its value came from, for the errors below
    home = _env_path(env, "INTERVIEW_HOME") if env.get("INTERVIEW_HOME") else default_home()
    values["home"] = home

    cfg_path = _env_path(env, "INTERVIEW_CONFIG") if env.get("INTERVIEW_CONFIG") else home / "config.toml"
    if cfg_path.exists():
        try:
            data = tomllib.loads(cfg_path.read_text(encoding="utf-8"))
        except (tomllib.TOMLDecodeError, UnicodeDecodeError, RecursionError) as e:
            raise ConfigError(f"{cfg_path}: not valid TOML ({e}).", "Fix the file or delete it.") from None
        except OSError as e:
            raise ConfigError(f"{cfg_path}: cannot be read ({e.strerror}).",
                              "Make it a readable file, or point INTERVIEW_CONFIG elsewhere.") from None
        known = {f.name for f in fields(Settings)} - {"home"}
        for key, raw in data.items():
            if key not in known:
                raise ConfigError(
                    f"{cfg_path}: unknown setting `{key}`.",
                    f"Use one of: {', '.join(sorted(known))}.",
                )
            values[key], sources[key] = _coerce(key, raw, str(cfg_path)), str(cfg_path)
    elif env.get("INTERVIEW_CONFIG"):
        raise ConfigError(f"INTERVIEW_CONFIG points to {cfg_path}, which does not exist.",
                          "Create the file or unset INTERVIEW_CONFIG.")

    for name, names in ENV_VARS.items():
        for var in names:
            if env.get(var):
                sources[name] = f"environment variable {var}"
                values[name] = _coerce(name, env[var], sources[name])
                break

    if "corpus_paths" not in values and (home / USER_PACKS).is_dir():
        values["corpus_paths"] = [DEFAULT_CORPUS_DIR, home / USER_PACKS]  # shipped + imported packs
    settings = Settings(**values)
    for name in POSITIVE:
        if getattr(settings, name) <= 0:
            raise ConfigError(f"{sources[name]}: `{name}` is {getattr(settings, name)}; it must be more than 0.",
                              f"Set {ENV_VARS[name][0]} (or `{name}` in {cfg_path}) to a positive number.")
    if settings.llama_runtime not in ("auto", "python", "cffi"):
        raise ConfigError(f"{sources['llama_runtime']}: llama_runtime is {settings.llama_runtime!r}.",
                          "Use auto, python or cffi.")
    if settings.llm_backend not in ("auto", "local", "openai", "none"):
        raise ConfigError(f"{sources['llm_backend']}: llm_backend is {settings.llm_backend!r}.",
                          "Use auto, local, openai or none.")
    return settings
