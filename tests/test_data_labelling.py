"""Label it yourself (01_data): parsing answers, agreement, Cohen's kappa, FER+ votes, the widget."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from data_fixtures import synthetic, votes_for, write_fer2013_csv, write_ferplus
from sklearn.metrics import cohen_kappa_score, confusion_matrix

import fercourse as fc


@pytest.fixture(scope="module")
def faces():
    return synthetic(n=240, seed=3)


@pytest.mark.parametrize(
    "answers, codes",
    [
        ("h s n", [3, 4, 6]),
        ("hsn", [3, 4, 6]),
        ("H,S;N", [3, 4, 6]),
        ("happy, Sad neutral", [3, 4, 6]),
        ("happy", [3]),
        ("3 4 6", [3, 4, 6]),
        ("346", [3, 4, 6]),
        ("\N{GRINNING FACE WITH SMILING EYES}\N{NEUTRAL FACE}", [3, 6]),
        (["angry", 6, "u", np.int64(1)], [0, 6, 5, 1]),
        (np.array([2, 2]), [2, 2]),
        ("", []),
        ("   ", []),
        (None, []),
        ([], []),
    ],
)
def test_parse_labels_reads_letters_names_codes_and_emoji(answers, codes):
    parsed = fc.data.parse_labels(answers)
    assert parsed.dtype == np.int64
    assert parsed.tolist() == codes


@pytest.mark.parametrize(
    "answers, message",
    [("h x n", "answer 2: 'x'"), (["happy", 7], "answer 2: 7"), ([True], "answer 1: True")],
)
def test_parse_labels_names_a_bad_answer_and_its_position(answers, message):
    with pytest.raises(ValueError, match=message):
        fc.data.parse_labels(answers)


def test_letters_cover_every_emotion_once():
    assert sorted(fc.data.LETTERS.values()) == sorted(fc.EMOTIONS)
    assert len(set(fc.data.LETTERS)) == fc.NUM_CLASSES


@pytest.mark.parametrize("seed", range(5))
def test_agreement_and_kappa_match_sklearn(seed):
    rng = np.random.default_rng(seed)
    reference = rng.integers(0, 7, size=60)
    answers = np.where(rng.random(60) < 0.6, reference, rng.integers(0, 7, size=60))
    result = fc.data.label_agreement(answers, reference)
    assert result.n == result.total == 60 and result.skipped == 0
    assert result.accuracy == pytest.approx(np.mean(answers == reference))
    assert result.kappa == pytest.approx(cohen_kappa_score(reference, answers))
    np.testing.assert_array_equal(
        result.confusion, confusion_matrix(reference, answers, labels=range(7))
    )
    frame = result.confusion_frame()
    assert list(frame.index) == list(fc.EMOTIONS) == list(frame.columns)
    assert frame.index.name == "reference" and frame.columns.name == "answer"


def test_kappa_of_chance_and_perfect_labellers():
    reference = np.array([0, 1, 2, 3, 3, 3, 4, 5, 6, 6])
    assert fc.data.label_agreement(reference, reference).kappa == pytest.approx(1.0)
    always_happy = fc.data.label_agreement(["happy"] * 10, reference)
    assert always_happy.accuracy == pytest.approx(0.3)
    assert always_happy.kappa == pytest.approx(0.0)  # p_o == p_e
    assert fc.data.cohen_kappa(np.array([[8, 2], [2, 8]])) == pytest.approx(0.6)
    assert np.isnan(fc.data.cohen_kappa(np.zeros((7, 7))))
    one_class = np.zeros((7, 7))
    one_class[3, 3] = 5  # both labellings use one class: kappa is undefined
    assert np.isnan(fc.data.cohen_kappa(one_class))


def test_partial_answers_are_scored_and_too_many_refused():
    reference = [3, 4, 4, 6]
    half = fc.data.label_agreement("h h", reference)
    assert (half.n, half.total, half.accuracy) == (2, 4, 0.5)
    assert "2 of 4 faces" in str(half) and "50%" in str(half)
    nothing = fc.data.label_agreement("", reference)
    assert nothing.n == 0 and np.isnan(nothing.accuracy) and np.isnan(nothing.kappa)
    assert str(nothing) == "no faces compared yet (0 of 4)"
    assert np.isnan(nothing.summary()["agreement"])
    with pytest.raises(ValueError, match="5 answers for 4 faces"):
        fc.data.label_agreement("h h h h h", reference)
    with pytest.raises(ValueError, match="codes 0-6"):
        fc.data.label_agreement("h", [9])


def test_reference_without_a_label_is_skipped():
    result = fc.data.label_agreement("h s n", [3, -1, 5])
    assert (result.n, result.skipped, result.accuracy) == (2, 1, 0.5)
    assert "1 without a reference label" in str(result)


def test_ferplus_votes_say_how_many_voters_chose_each_label():
    # FER+ columns: neutral, happiness, surprise, sadness, anger, disgust, fear, contempt, ...
    votes = np.array(
        [
            [0, 8, 2, 0, 0, 0, 0, 0, 0, 0],  # happy wins (8 of 10)
            [6, 0, 0, 4, 0, 0, 0, 0, 0, 0],  # neutral wins, sad 4
            [0, 0, 0, 0, 0, 0, 0, 10, 0, 0],  # contempt: no FER2013 emotion wins
        ]
    )
    reference = [3, 4, 5]  # FER2013 says happy, sad, surprise
    result = fc.data.label_agreement("h n u", reference, ferplus_votes=votes)
    f = result.ferplus
    assert f["faces_with_majority"] == 2
    assert f["agrees_with_majority"] == pytest.approx(1.0)  # happy, neutral
    assert f["your_vote_share"] == pytest.approx((0.8 + 0.6 + 0.0) / 3)
    assert f["reference_vote_share"] == pytest.approx((0.8 + 0.4 + 0.0) / 3)
    assert result.summary()["FER+ majority"] == pytest.approx(1.0)
    assert "FER+ majority chosen on 100% of 2 faces" in str(result)
    assert "4.7 chose the answer and 4.0 the reference label" in str(result)
    np.testing.assert_array_equal(fc.data.ferplus_labels(votes), [3, 6, -1])
    with pytest.raises(ValueError, match=r"\(3, 10\)"):
        fc.data.label_agreement("h", reference, ferplus_votes=votes[:2])


def test_ferplus_votes_for_a_csv_in_row_order(tmp_path, faces, monkeypatch):
    monkeypatch.setenv("FERCOURSE_DATA", str(tmp_path / "elsewhere"))
    csv = write_fer2013_csv(faces, tmp_path / "fer2013.csv")
    data = fc.data.load_fer2013(csv, cache=False)
    assert fc.data.ferplus_votes_for(data) is None  # no fer2013new.csv yet
    votes, _ = votes_for(faces.labels)
    write_ferplus(faces, tmp_path / "fer2013new.csv", votes)
    found = fc.data.ferplus_votes_for(data)  # found next to fer2013.csv
    np.testing.assert_array_equal(found, votes)
    # The FER+ majority agrees with these labels wherever a FER2013 emotion wins.
    agreement = fc.data.label_agreement(data.labels, fc.data.ferplus_labels(found))
    assert agreement.accuracy == 1.0 and agreement.skipped == 7
    with pytest.raises(FileNotFoundError):
        fc.data.ferplus_votes_for(data, tmp_path / "missing.csv")


def test_ferplus_votes_for_data_in_another_order_warns_and_gives_none(tmp_path, faces):
    votes, _ = votes_for(faces.labels)
    path = write_ferplus(faces, tmp_path / "fer2013new.csv", votes)
    shuffled = faces.select(np.arange(len(faces))[::-1])
    with pytest.warns(UserWarning, match="not in the same order"):
        assert fc.data.ferplus_votes_for(shuffled, path) is None
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert fc.data.ferplus_votes_for(fc.data.make_synthetic_faces(n=50)) is None


def test_labelling_sample_is_seeded_random_and_from_one_part(faces):
    a = fc.data.labelling_sample(faces, n=12, seed=1)
    assert a.dtype == np.int64 and len(a) == len(set(a.tolist())) == 12
    assert (faces.usage[a] == "Training").all()
    np.testing.assert_array_equal(a, fc.data.labelling_sample(faces, n=12, seed=1))
    assert not np.array_equal(a, fc.data.labelling_sample(faces, n=12, seed=2))
    assert not np.array_equal(a, np.sort(a))  # in a random order, not sorted by index
    test = fc.data.labelling_sample(faces, n=10_000, usage="PrivateTest")
    assert len(test) == (faces.usage == "PrivateTest").sum()
    with pytest.raises(ValueError, match="no Validation faces"):
        fc.data.labelling_sample(faces, usage="Validation")


def test_labeller_records_clicks_and_undo(faces):
    indices = fc.data.labelling_sample(faces, n=3)
    labeller = fc.data.Labeller(faces, indices)
    assert labeller.answers == [] and "face 1 of 3" in labeller.status.value
    first_png = labeller.image.value
    labeller.buttons[fc.EMOTIONS.index("happy")].click()
    assert labeller.answers == ["happy"] and "face 2 of 3" in labeller.status.value
    assert labeller.image.value != first_png
    labeller.back.click()
    assert labeller.answers == [] and labeller.image.value == first_png
    for name in ("sad", "neutral", "surprise", "angry"):  # one click too many: ignored
        labeller.answer(name)
    assert labeller.answers == ["sad", "neutral", "surprise"]
    assert all(b.disabled for b in labeller.buttons)
    assert "all 3 faces labelled" in labeller.status.value and "s n u" in labeller.status.value
    assert labeller.as_letters() == "s n u"
    assert repr(labeller) == "Labeller(3 of 3 faces labelled)"
    result = fc.data.label_agreement(labeller.answers, faces.labels[indices])
    assert result.n == 3
    assert "application/vnd.jupyter.widget-view+json" in labeller._repr_mimebundle_()


def test_duplicate_pairs_of_the_report(faces):
    doubled = faces.select(np.r_[np.arange(len(faces)), [0, 0, 5]])
    doubled.labels[-1] = (faces.labels[5] + 1) % 7  # one copy labelled differently
    report = fc.data.data_report(doubled)
    first, copy = report.duplicate_pairs()
    n = len(faces)
    assert sorted(zip(first.tolist(), copy.tolist())) == [(0, n), (0, n + 1), (5, n + 2)]
    agreement = fc.data.label_agreement(doubled.labels[copy], doubled.labels[first])
    assert agreement.n == 3 and agreement.accuracy == pytest.approx(2 / 3)
    empty = fc.data.data_report(faces).duplicate_pairs()
    assert [len(a) for a in empty] == [0, 0]


def test_plot_faces_to_label_numbers_the_faces_without_their_labels(faces):
    indices = fc.data.labelling_sample(faces, n=10)
    fig = fc.explain.plot_faces_to_label(faces, indices, cols=4)
    shown = [ax for ax in fig.axes if ax.images]
    assert [ax.get_title() for ax in shown] == [str(k) for k in range(1, 11)]
    assert len(fig.axes) == 12  # 3 rows of 4, the last two empty
    assert "SYNTHETIC" in fig._suptitle.get_text()


def test_plot_label_conflicts_shows_each_group_with_its_labels(faces):
    empty = fc.explain.plot_label_conflicts(faces, fc.data.data_report(faces))
    assert "no identical images" in empty.axes[0].texts[0].get_text()
    doubled = faces.select(np.r_[np.arange(len(faces)), [5]])
    doubled.labels[-1] = (faces.labels[5] + 1) % 7
    fig = fc.explain.plot_label_conflicts(doubled, fc.data.data_report(doubled))
    titles = sorted(ax.get_title().split("\n")[0] for ax in fig.axes if ax.images)
    assert titles == sorted(fc.EMOTIONS[c] for c in (faces.labels[5], doubled.labels[-1]))
