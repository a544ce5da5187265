import random
from collections import defaultdict

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nudge_rag.errors import InputError
from nudge_rag.questions import Question, QuestionSet, duplicate_groups, normalize_text
from nudge_rag.questions.normalize import jaccard, near_duplicate_pairs, shingles


@pytest.fixture(scope="module")
def scifact_qs(scifact_dir):
    return QuestionSet.from_beir(scifact_dir)


# -- normalisation and grouping --------------------------------------------------------------------
def test_normalize_text():
    assert normalize_text("What's  the CAPITAL\tof France?!") == "what s the capital of france"
    assert normalize_text("Ｆｕｌｌｗｉｄｔｈ  IL-6") == "fullwidth il 6"
    assert normalize_text(" ...  ") == ""


@given(st.text(max_size=60))
@settings(max_examples=60, deadline=None)
def test_normalize_is_idempotent_and_ignores_case_and_punctuation(text):
    once = normalize_text(text)
    assert normalize_text(once) == once
    assert normalize_text(text.upper() + " ?!") == normalize_text(text.lower())


def test_near_duplicate_pairs_match_brute_force_on_scifact(scifact_qs):
    from scipy import sparse

    keys = sorted({normalize_text(t) for t in scifact_qs.texts})
    sets = [shingles(k) for k in keys]
    # every pair's exact Jaccard at once, from a sparse text x shingle incidence matrix
    vocab = {s: i for i, s in enumerate(sorted(set().union(*sets)))}
    rows = [i for i, s in enumerate(sets) for _ in s]
    cols = [vocab[x] for s in sets for x in s]
    incidence = sparse.csr_matrix((np.ones(len(rows)), (rows, cols)))
    inter = (incidence @ incidence.T).toarray()
    sizes = np.array([len(s) for s in sets])
    sim = inter / (sizes[:, None] + sizes[None, :] - inter)
    i, j = np.nonzero(np.triu(sim >= 0.8 - 1e-12, k=1))
    brute = set(zip(i.tolist(), j.tolist(), strict=True))
    assert all(jaccard(sets[a], sets[b]) >= 0.8 for a, b in list(brute)[:50])
    found = set(near_duplicate_pairs(keys, 0.8))
    assert found <= brute  # banding only proposes; the exact check confirms
    assert len(brute) > 50  # SciFact really has mutated claims ("increases"/"decreases")
    assert len(found) >= 0.99 * len(brute)


def test_groups_on_real_claims(scifact_qs):
    labels = duplicate_groups(scifact_qs.texts)
    by_group = defaultdict(list)
    for text, g in zip(scifact_qs.texts, labels, strict=True):
        by_group[g].append(text)
    assert labels[0] == 0 and len(by_group) < len(scifact_qs)
    # exact threshold groups only identical normalised texts
    exact = duplicate_groups(scifact_qs.texts, threshold=1.0)
    for g in set(exact.tolist()):
        members = {normalize_text(scifact_qs.texts[i]) for i in np.nonzero(exact == g)[0]}
        assert len(members) == 1


def test_text_less_questions_group_by_embedding():
    rng = np.random.default_rng(3)
    base = rng.standard_normal((4, 16))
    emb = np.vstack([base, base[1] + 1e-4 * rng.standard_normal(16)])
    labels = duplicate_groups([None] * 5, emb)
    assert labels.tolist() == [0, 1, 2, 3, 1]


# -- group-aware split --------------------------------------------------------------------------
def test_split_is_reproducible_and_sized(scifact_qs):
    train, val, test = scifact_qs.split(train=0.7, val=0.1, test=0.2, seed=0)
    again = scifact_qs.split(train=0.7, val=0.1, test=0.2, seed=0)
    assert [p.ids for p in (train, val, test)] == [p.ids for p in again]
    n = len(scifact_qs)
    assert len(train) + len(val) + len(test) == n
    assert set(train.ids) | set(val.ids) | set(test.ids) == set(scifact_qs.ids)
    largest_group = np.bincount(duplicate_groups(scifact_qs.texts)).max()
    for part, frac in ((train, 0.7), (val, 0.1), (test, 0.2)):
        assert abs(len(part) - frac * n) <= largest_group + 1
    other = scifact_qs.split(seed=1)
    assert other[1].ids != val.ids


def test_split_keeps_near_duplicates_together_and_has_no_leakage(scifact_qs):
    labels = duplicate_groups(scifact_qs.texts)
    parts = scifact_qs.split(seed=4)
    part_of = {qid: k for k, p in enumerate(parts) for qid in p.ids}
    side_of_group = defaultdict(set)
    for qid, g in zip(scifact_qs.ids, labels, strict=True):
        side_of_group[g].add(part_of[qid])
    assert all(len(sides) == 1 for sides in side_of_group.values())
    assert not parts[0].check_leakage(parts[1], parts[2])


def test_split_does_not_depend_on_input_order(cranfield_dir):
    qs = QuestionSet.from_beir(cranfield_dir)
    order = list(range(len(qs)))
    random.Random(5).shuffle(order)
    shuffled = qs.subset(order)
    a = qs.split(seed=2)
    b = shuffled.split(seed=2)
    assert [sorted(p.ids) for p in a] == [sorted(p.ids) for p in b]


def test_split_errors(cranfield_dir):
    qs = QuestionSet.from_beir(cranfield_dir, splits=["test"])
    with pytest.raises(InputError, match="sum to 1"):
        qs.split(train=0.7, val=0.2, test=0.2)
    with pytest.raises(InputError, match="val=0 leaves validation empty"):
        qs.split(train=0.8, val=0.0, test=0.2)
    tiny = qs[:5]
    with pytest.raises(InputError, match="leaves validation empty"):
        tiny.split(train=0.85, val=0.05, test=0.1)
    train, val, test = qs.split(train=0.8, val=0.2, test=0.0)
    assert test is None and len(train) + len(val) == len(qs)


# -- leakage ------------------------------------------------------------------------------------
def test_leakage_check_finds_planted_rephrasings(cranfield_dir):
    qs = QuestionSet.from_beir(cranfield_dir)
    train, val, test = qs.split(seed=0)
    t0, t1 = train[0], train[1]
    planted = QuestionSet([
        Question("copy", t0.text.upper() + " ??", t0.relevant),   # same normalised text
        Question("near", t1.text.replace("the ", "a ", 1) + "s", t1.relevant),
        *list(test[:3]),
    ])
    report = train.check_leakage(val, planted)
    assert report.leaked_ids(1) == {"copy", "near"}
    kinds = {leak.question_id: (leak.train_id, leak.kind) for leak in report.leaks}
    assert kinds["copy"] == (t0.id, "exact")
    assert kinds["near"] == (t1.id, "near")
    assert "2 of 5 questions in set 1" in report.summary()
    with pytest.raises(InputError, match="leakage"):
        report.raise_if_any()


# -- time split ------------------------------------------------------------------------------------
def _timed(cranfield, n=60):
    qids = list(cranfield.qrels)[:n]
    return QuestionSet([
        Question(q, cranfield.queries[q], cranfield.qrels[q], None,
                 {"source": "logged", "timestamp": f"2026-01-{1 + i % 28:02d}T{i % 24:02d}:00:00Z"})
        for i, q in enumerate(qids)])


def test_split_by_time_with_boundaries(cranfield):
    qs = _timed(cranfield)
    train, val, test = qs.split_by_time(val_start="2026-01-20", test_start="2026-01-25T00:00Z")
    stamps = {q.id: q.metadata["timestamp"] for q in qs}
    assert all(stamps[i] < "2026-01-20" for i in train.ids)
    assert all("2026-01-20" <= stamps[i] < "2026-01-25" for i in val.ids)
    assert all(stamps[i] >= "2026-01-25" for i in test.ids)
    assert len(train) + len(val) + len(test) == len(qs)
    train2, val2, none = qs.split_by_time(val_start=1768867200)  # 2026-01-20 as epoch seconds
    assert none is None and val2.ids == sorted(val.ids + test.ids, key=val2.ids.index)


def test_split_by_time_fractions_follow_time_order(cranfield):
    qs = _timed(cranfield)
    train, val, test = qs.split_by_time(train=0.6, val=0.2, test=0.2)
    latest_train = max(q.metadata["timestamp"] for q in train)
    assert all(q.metadata["timestamp"] >= latest_train for q in val)
    assert (len(train), len(val), len(test)) == (36, 12, 12)


def test_split_by_time_refuses_leakage_unless_told(cranfield):
    base = list(_timed(cranfield, 30))
    late = base[0]
    repeat = Question("again", late.text.lower(), late.relevant, None,
                      {"source": "logged", "timestamp": "2026-02-15T00:00:00Z"})
    qs = QuestionSet(base + [repeat])
    with pytest.raises(InputError, match="duplicate training questions"):
        qs.split_by_time(val_start="2026-01-20", test_start="2026-02-01")
    _, _, test = qs.split_by_time(val_start="2026-01-20", test_start="2026-02-01",
                                  allow_leakage=True)
    assert "again" in test.ids
    with pytest.raises(InputError, match="leaves test empty"):
        qs.split_by_time(val_start="2026-01-20", test_start="2026-02-01", drop_leaked=True)
    qs2 = QuestionSet(base + [repeat, Question("fresh", "what is panel flutter", ["5"], None,
                                               {"timestamp": "2026-02-16"})])
    _, _, test = qs2.split_by_time(val_start="2026-01-20", test_start="2026-02-01",
                                   drop_leaked=True)
    assert test.ids == ["fresh"]


def test_split_by_time_errors(cranfield):
    qs = _timed(cranfield, 10)
    missing = QuestionSet(list(qs) + [Question("x", "what is lift", ["1"])])
    with pytest.raises(InputError, match="question 'x' metadata field 'timestamp'"):
        missing.split_by_time()
    odd = QuestionSet([Question("y", "what is drag", ["1"], None, {"timestamp": "yesterday"})])
    with pytest.raises(InputError, match="'yesterday' is neither ISO 8601"):
        odd.split_by_time()
    with pytest.raises(InputError, match="leaves validation empty"):
        qs.split_by_time(val_start="2030-01-01")
    with pytest.raises(InputError, match="test_start without val_start"):
        qs.split_by_time(test_start="2026-01-05")


_phrase = st.lists(st.sampled_from(["lift", "drag", "wing", "shock", "heat", "flutter",
                                    "boundary", "layer", "nose", "cone"]), min_size=2, max_size=5)


@given(st.lists(st.tuples(_phrase, st.sampled_from(["", "?", "!"]), st.booleans()),
                min_size=12, max_size=60),
       st.integers(0, 2**16))
@settings(max_examples=40, deadline=None)
def test_split_partitions_and_never_separates_a_group(rows, seed):
    texts = [(" ".join(words) + end).upper() if shout else " ".join(words) + end
             for words, end, shout in rows]
    qs = QuestionSet([Question(f"q{i}", t, {f"d{i % 7}": 1.0}) for i, t in enumerate(texts)])
    labels = duplicate_groups(texts)
    try:
        parts = qs.split(train=0.6, val=0.2, test=0.2, seed=seed)
    except InputError as err:  # few groups: an empty part must be reported, not returned
        assert "empty" in str(err)
        return
    ids = [i for p in parts for i in p.ids]
    assert sorted(ids) == sorted(qs.ids)
    part_of = {qid: k for k, p in enumerate(parts) for qid in p.ids}
    for g in set(labels.tolist()):
        members = [qs.ids[i] for i in np.nonzero(labels == g)[0]]
        assert len({part_of[m] for m in members}) == 1
    assert [p.ids for p in qs.split(train=0.6, val=0.2, test=0.2, seed=seed)] == \
        [p.ids for p in parts]


# -- folds -----------------------------------------------------------------------------------------
def test_group_folds_keep_near_duplicates_together_on_real_claims(scifact_qs):
    from nudge_rag.questions import group_fold_labels, group_folds

    fold = group_fold_labels(scifact_qs, k=5, seed=0)
    groups = duplicate_groups(scifact_qs.texts)
    for g in np.unique(groups):  # SciFact's mutated claim pairs share a fold
        assert len(set(fold[groups == g].tolist())) == 1
    sizes = np.bincount(fold, minlength=5)
    assert sizes.sum() == len(scifact_qs) and sizes.min() >= 0.9 * len(scifact_qs) / 5
    pairs = group_folds(scifact_qs, k=5, seed=0)
    held = [qid for _, test in pairs for qid in test.ids]
    assert sorted(held) == sorted(scifact_qs.ids)  # each question held out exactly once
    for train, test in pairs:
        assert not train.check_leakage(test)
    # the folds depend on the set and the seed, not on the order the questions came in
    shuffled = scifact_qs.subset(np.random.default_rng(1).permutation(len(scifact_qs)))
    again = dict(zip(shuffled.ids, group_fold_labels(shuffled, k=5, seed=0), strict=True))
    assert again == dict(zip(scifact_qs.ids, fold, strict=True))
    assert not np.array_equal(group_fold_labels(scifact_qs, k=5, seed=1), fold)


def test_group_folds_refuse_what_cannot_be_cut(cranfield_dir):
    from nudge_rag.questions import group_folds

    qs = QuestionSet.from_beir(cranfield_dir, splits=["test"])[:3]
    with pytest.raises(InputError, match="k=5 folds need at least 5 groups"):
        group_folds(qs, k=5)
    with pytest.raises(InputError, match="k=1 must be an integer >= 2"):
        group_folds(qs, k=1)
    twins = QuestionSet([Question(f"t{i}", "how does wing flutter start?", ["1"])
                         for i in range(6)] + [Question("a", "what is lift?", ["2"]),
                                               Question("b", "why do shells buckle?", ["3"])])
    with pytest.raises(InputError, match="fold .* is empty"):
        group_folds(twins, k=3)
