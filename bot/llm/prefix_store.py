"""llama.cpp states of prompt prefixes, kept on disk per model.

Evaluating a question's grading prefix (instructions, rubric, question, reference, key points:
~800 tokens) takes 6-16 s on 2 cores. A one-shot `interview grade`, `interview start --resume`
or a restarted Slack app used to pay it again; with the state on disk they load it in
milliseconds. A state is keyed by its exact tokens, so it is valid exactly when the prompt text up
to the answer is the same (prompts, question, reference, key points) and the model is the same
file. The store keeps at most MAX_BYTES, dropping the least recently used. It is a cache: any
error reading or writing it costs only speed.
"""
from __future__ import annotations

import hashlib
import os
import re
from pathlib import Path

import numpy as np

MAX_BYTES = 1 << 30  # ~22 MB a prefix for the bundled 1.5B model: about 45 prefixes (20 questions)
MIN_TOKENS = 64  # shorter prefixes cost less to evaluate than to load


class PrefixStore:
    def __init__(self, root: Path, model_id: str, max_bytes: int = MAX_BYTES):
        self.dir = Path(root) / re.sub(r"[^A-Za-z0-9._-]+", "-", model_id)[:120]
        self.max_bytes = max_bytes
        self._index: dict[str, tuple[int, ...]] | None = None
        self.hits = 0

    def _key(self, tokens: tuple[int, ...]) -> str:
        return hashlib.sha256(np.asarray(tokens, dtype=np.int32).tobytes()).hexdigest()[:32]

    def _load_index(self) -> dict[str, tuple[int, ...]]:
        if self._index is None:
            self._index = {}
            try:
                for f in self.dir.glob("*.tokens"):
                    try:
                        self._index[f.stem] = tuple(int(t) for t in np.fromfile(f, dtype=np.int32))
                    except (OSError, ValueError):
                        continue
            except OSError:
                pass
        return self._index

    def best(self, tokens: list[int], better_than: int) -> tuple[tuple[int, ...], bytes] | None:
        """The stored prefix of `tokens` longer than `better_than` tokens, with its state."""
        best_key, best_tokens = None, ()
        for key, stored in self._load_index().items():
            n = len(stored)
            if better_than < n <= len(tokens) and n > len(best_tokens) and tuple(tokens[:n]) == stored:
                best_key, best_tokens = key, stored
        if best_key is None:
            return None
        try:
            path = self.dir / f"{best_key}.state"
            data = path.read_bytes()
            os.utime(path)  # most recently used
        except OSError:
            self._index.pop(best_key, None)
            return None
        self.hits += 1
        return best_tokens, data

    def put(self, tokens: tuple[int, ...], state: bytes) -> None:
        if len(tokens) < MIN_TOKENS:
            return
        key = self._key(tokens)
        try:
            self.dir.mkdir(parents=True, exist_ok=True)
            for suffix, payload in ((".state", state), (".tokens", np.asarray(tokens, dtype=np.int32).tobytes())):
                tmp = self.dir / f"{key}{suffix}.tmp"
                tmp.write_bytes(payload)
                os.replace(tmp, self.dir / f"{key}{suffix}")  # a reader never sees half a file
            self._load_index()[key] = tuple(tokens)
            self._trim()
        except OSError:
            pass  # a full or read-only disk: the next run evaluates the prefix again

    def _trim(self) -> None:
        states = sorted(self.dir.glob("*.state"), key=lambda p: p.stat().st_mtime)
        total = sum(p.stat().st_size for p in states)
        while states and total > self.max_bytes:
            old = states.pop(0)
            total -= old.stat().st_size
            for p in (old, old.with_suffix(".tokens")):
                p.unlink(missing_ok=True)
            self._load_index().pop(old.stem, None)
