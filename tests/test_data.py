"""FER2013 loading: every format, format detection, the cache, FERPlus and bad input."""

from __future__ import annotations

import hashlib
import logging
import os
import re
import time

import cv2
import numpy as np
import pytest
from data_fixtures import (
    synthetic,
    votes_for,
    write_competition,
    write_fer2013_csv,
    write_ferplus,
    write_icml_csv,
    write_image_folders,
)

import fercourse as fc
import fercourse.cli
from fercourse.data import DataError


@pytest.fixture(scope="module")
def faces():
    return synthetic()


@pytest.fixture(scope="module")
def formats(tmp_path_factory, faces):
    """The same synthetic faces written in every FER2013 format (path per format)."""
    root = tmp_path_factory.mktemp("formats")
    return {
        "fer2013.csv": write_fer2013_csv(faces, root / "csv" / "fer2013.csv"),
        "icml_face_data.csv": write_icml_csv(faces, root / "icml" / "icml_face_data.csv"),
        "torchvision": write_fer2013_csv(
            faces, root / "tv" / "fer2013" / "fer2013.csv"
        ).parent.parent,
        "kaggle": write_image_folders(faces, root / "kaggle"),
        "three-folders": write_image_folders(
            faces, root / "three", layout="three", augmented_every=10
        ),
        "competition": write_competition(faces, root / "competition"),
    }


def assert_same(ds, ref):
    np.testing.assert_array_equal(ds.images, ref.images)
    np.testing.assert_array_equal(ds.labels, ref.labels)
    np.testing.assert_array_equal(ds.usage, ref.usage)


@pytest.mark.parametrize(
    "key, fmt",
    [
        ("fer2013.csv", "fer2013.csv"),
        ("icml_face_data.csv", "icml_face_data.csv"),
        ("torchvision", "fer2013.csv"),
        ("kaggle", "kaggle-folders"),
        ("three-folders", "kaggle-folders"),
    ],
)
def test_every_format_loads_to_identical_arrays(formats, faces, key, fmt):
    ds = fc.data.load_fer2013(formats[key], cache=False)
    assert ds.format == fmt
    assert fc.data.detect_format(formats[key]) == fmt
    assert_same(ds, faces)
    assert ds.images.dtype == np.uint8 and ds.labels.dtype == np.int64
    assert not ds.synthetic  # these files carry no synthetic marker


def test_image_folders_use_name_prefixes_and_count_augmented_copies(formats, faces):
    ds = fc.data.load_fer2013(formats["three-folders"], cache=False)
    assert ds.dropped == {"augmented copies (*.jpgN.jpg)": len(range(0, len(faces), 10))}
    assert ds.ids is not None and ds.ids[0].endswith("Training_0.png")
    with_copies = fc.data.load_fer2013(
        formats["three-folders"], include_augmented=True, cache=False
    )
    assert len(with_copies) == len(faces) + ds.dropped["augmented copies (*.jpgN.jpg)"]
    # The copies are mirrored, so pixel hashes miss them; the report finds them by name.
    report = fc.data.data_report(with_copies)
    assert report.copies_of_one_file == len(with_copies) - len(faces)
    assert fc.data.data_report(ds).copies_of_one_file == 0


def test_folder_order_is_not_code_order(tmp_path, faces):
    # Without name prefixes: labels still come from folder names, Usage from train/test.
    root = write_image_folders(faces, tmp_path / "plain", prefixes=False)
    ds = fc.data.load_fer2013(root, cache=False)
    for usage, expected in (("Training", faces.where("Training")), ("PrivateTest", None)):
        part = ds.where(usage)
        if expected is not None:
            assert sorted(map(bytes, part.images)) == sorted(map(bytes, expected.images))
    assert len(ds.where("PublicTest")) == 0  # cannot be told apart without prefixes
    assert len(ds.where("PrivateTest")) == len(faces) - len(faces.where("Training"))
    # Each image keeps its own label (alphabetical folder order would swap sad/surprise/neutral).
    lookup = {im.tobytes(): label for im, label in zip(faces.images, faces.labels)}
    assert all(lookup[im.tobytes()] == label for im, label in zip(ds.images, ds.labels))


def test_jpeg_folders_decode_close_to_the_pixels(tmp_path, faces):
    sub = faces.select(np.arange(40))
    ds = fc.data.load_fer2013(write_image_folders(sub, tmp_path / "jpg", ext=".jpg"), cache=False)
    np.testing.assert_array_equal(ds.labels, sub.labels)
    assert np.abs(ds.images.astype(int) - sub.images).mean() < 3.0


def test_competition_train_csv_loads_training_and_counts_unlabelled_test(formats, faces, caplog):
    with caplog.at_level(logging.WARNING):
        ds = fc.data.load_fer2013(formats["competition"], cache=False)
    assert ds.format == "competition-csv"
    assert_same(ds, faces.where("Training"))
    n_test = len(faces) - len(faces.where("Training"))
    assert ds.dropped == {"test.csv: unlabelled competition test rows": n_test}
    assert "no labels" in caplog.text
    with pytest.raises(DataError, match=r"test\.csv.*no labels"):
        fc.data.load_fer2013(formats["competition"] / "test.csv", cache=False)


def test_torchvision_reads_the_csv_fercourse_writes(tmp_path, faces, monkeypatch):
    from torchvision.datasets import FER2013 as TorchvisionFER2013

    csv = fc.data.write_fer2013_csv(
        faces.select(np.arange(len(faces))), tmp_path / "fer2013" / "fer2013.csv"
    )
    md5 = hashlib.md5(csv.read_bytes()).hexdigest()
    # torchvision checks the real file's md5; point it at ours, keep its reading code as it is.
    resources = dict(TorchvisionFER2013._RESOURCES, fer=("fer2013.csv", md5))
    monkeypatch.setattr(TorchvisionFER2013, "_RESOURCES", resources)
    for split, usages in (("train", ["Training"]), ("test", ["PublicTest", "PrivateTest"])):
        tv = TorchvisionFER2013(str(tmp_path), split=split)
        ref = faces.where(usages)
        samples = [tv[i] for i in range(len(tv))]
        assert len(samples) == len(ref)
        np.testing.assert_array_equal(np.stack([np.asarray(im) for im, _ in samples]), ref.images)
        assert [label for _, label in samples] == ref.labels.tolist()


def test_ferplus_majority_votes_drop_and_count(tmp_path, faces):
    csv = write_fer2013_csv(faces, tmp_path / "fer2013.csv")
    votes, expected = votes_for(faces.labels)
    ferplus = write_ferplus(faces, tmp_path / "fer2013new.csv", votes)
    ds = fc.data.load_fer2013(csv, ferplus=ferplus, cache=False)
    assert ds.format == "fer2013.csv+ferplus"
    assert ds.dropped == {
        "ferplus: contempt (no FER2013 class)": expected["contempt"],
        "ferplus: unknown": expected["unknown"],
        "ferplus: not a face": expected["NF"],
        "ferplus: no majority": expected["none"],
    }
    kept = np.setdiff1d(np.arange(len(faces)), [3, 5, 7, 8, 9, 11, 13])
    np.testing.assert_array_equal(ds.labels, faces.labels[kept])
    np.testing.assert_array_equal(ds.images, faces.images[kept])
    assert fc.data.load_fer2013(csv, ferplus=True, cache=False).dropped == ds.dropped
    report = str(fc.data.data_report(ds))
    assert "ferplus: not a face: 2" in report
    assert fc.data.verify_counts(ds)  # not the real counts: problems are listed


def test_ferplus_needs_csv_row_order(formats, tmp_path, faces):
    votes, _ = votes_for(faces.labels)
    ferplus = write_ferplus(faces, tmp_path / "fer2013new.csv", votes)
    with pytest.raises(DataError, match="row order"):
        fc.data.load_fer2013(formats["kaggle"], ferplus=ferplus, cache=False)
    short = write_ferplus(faces.select(np.arange(20)), tmp_path / "short.csv", votes[:20])
    with pytest.raises(DataError, match="20 rows"):
        fc.data.load_fer2013(formats["fer2013.csv"], ferplus=short, cache=False)


def test_cache_is_written_next_to_the_source_and_reused(tmp_path, faces, monkeypatch):
    csv = write_fer2013_csv(faces, tmp_path / "fer2013.csv")
    first = fc.data.load_fer2013(csv)
    cache = tmp_path / "fer2013.fercourse.npz"
    assert cache.is_file()

    def no_parsing(*args, **kwargs):
        raise AssertionError("the cache should have been used")

    monkeypatch.setattr(fc.data.load, "read_fer2013_csv", no_parsing)
    start = time.perf_counter()
    second = fc.data.load_fer2013(csv)
    assert time.perf_counter() - start < 1.0
    assert_same(second, first)
    assert (second.format, second.synthetic, second.source) == (
        first.format,
        first.synthetic,
        first.source,
    )
    # A changed source is parsed again.
    monkeypatch.undo()
    edited = faces.select(np.arange(100))
    write_fer2013_csv(edited, csv)
    os.utime(csv, ns=(time.time_ns(), time.time_ns() + 10**9))
    assert len(fc.data.load_fer2013(csv)) == 100


def test_folder_cache_keeps_ids_and_dropped(formats):
    first = fc.data.load_fer2013(formats["three-folders"])
    again = fc.data.load_fer2013(formats["three-folders"])
    assert_same(again, first)
    np.testing.assert_array_equal(again.ids, first.ids)
    assert again.dropped == first.dropped
    assert formats["three-folders"].with_name("three.fercourse.npz").is_file()


def test_default_path_searches_the_data_dir(tmp_path, faces, monkeypatch):
    monkeypatch.setenv("FERCOURSE_DATA", str(tmp_path))
    write_image_folders(faces.select(np.arange(30)), tmp_path / "fer2013-kaggle")
    write_fer2013_csv(faces, tmp_path / "nested" / "fer2013" / "fer2013.csv")
    # A CSV two levels down wins over image folders; the synthetic folder is never picked.
    assert fc.data.find_fer2013() == tmp_path / "nested" / "fer2013" / "fer2013.csv"
    ds = fc.data.load_fer2013()
    assert len(ds) == len(faces) and not ds.synthetic


def test_synthetic_stand_in_when_fer2013_is_absent(tmp_path, monkeypatch, caplog):
    monkeypatch.setenv("FERCOURSE_DATA", str(tmp_path))
    monkeypatch.setattr(fc.data.load, "DEFAULT_SYNTHETIC_N", 300)
    assert fc.data.find_fer2013() is None
    with caplog.at_level(logging.WARNING):
        ds = fc.data.load_fer2013()
    assert ds.synthetic and ds.format == "synthetic" and len(ds) == 300
    assert "SYNTHETIC" in caplog.text and "data fetch" in caplog.text
    assert "synthetic=True" in repr(ds)
    csv = tmp_path / "synthetic" / "fer2013.csv"
    assert csv.is_file() and (tmp_path / "synthetic" / "fer2013.csv.synthetic.json").is_file()
    # Made once: the second call reads the file instead of drawing again.
    monkeypatch.setattr(fc.data.load, "make_synthetic_faces", None)
    again = fc.data.load_fer2013()
    assert_same(again, ds) and again.synthetic
    # The synthetic CSV read directly still says what it is.
    assert fc.data.load_fer2013(csv, cache=False).synthetic
    assert fc.data.detect_format(csv) == "synthetic"
    assert fc.data.find_fer2013() is None


# --- bad input: each case names the file and the row or value ---------------------------------


def _csv_with(tmp_path, lines: list[str], header: str = "emotion,pixels,Usage"):
    path = tmp_path / "fer2013.csv"
    path.write_text("\n".join([header, *lines]) + "\n")
    return path


GOOD = " ".join(["7"] * 2304)


@pytest.mark.parametrize(
    "line, message",
    [
        (f"0,{' '.join(['7'] * 2303)},Training", r"line 3: expected 2304 pixel values .*got 2303"),
        (f"0,{GOOD}x,Training", r"line 3: non-numeric pixel value '7x'"),
        (f"0,{GOOD[:-3]} 300,Training", r"line 3: pixel value 300 is outside 0-255"),
        (f"7,{GOOD},Training", r"line 3: emotion 7 is outside 0-6"),
        (f"happy,{GOOD},Training", r"line 3: emotion 'happy' is not an integer"),
        (f"0,{GOOD},Validation", r"line 3: unknown Usage 'Validation'"),
        ("", r"line 3: empty row"),
    ],
)
def test_bad_csv_rows_name_the_line_and_value(tmp_path, line, message):
    path = _csv_with(tmp_path, [f"0,{GOOD},Training", line, f"1,{GOOD},PublicTest"])
    with pytest.raises(DataError, match=message) as err:
        fc.data.load_fer2013(path, cache=False)
    assert str(path) in str(err.value)


def test_missing_column_is_named(tmp_path):
    path = _csv_with(tmp_path, [f"0,{GOOD}"], header="emotion,pixels")
    with pytest.raises(DataError, match=r"missing column 'Usage'"):
        fc.data.load_fer2013(path, cache=False)
    no_pixels = _csv_with(tmp_path, ["0,Training"], header="emotion,Usage")
    with pytest.raises(DataError, match=r"missing column 'pixels'"):
        fc.data.load_fer2013(no_pixels, cache=False)


def test_empty_and_missing_inputs(tmp_path):
    with pytest.raises(FileNotFoundError, match="nowhere"):
        fc.data.load_fer2013(tmp_path / "nowhere")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="empty"):
        fc.data.load_fer2013(tmp_path / "empty")
    (tmp_path / "k" / "train" / "happy").mkdir(parents=True)
    with pytest.raises(DataError, match=r"happy: the folder is empty"):
        fc.data.load_fer2013(tmp_path / "k", cache=False)
    (tmp_path / "blank.csv").write_text("")
    with pytest.raises(DataError, match="empty"):
        fc.data.load_fer2013(tmp_path / "blank.csv")


def _one_image_tree(tmp_path, name: str, data: bytes):
    folder = tmp_path / "tree" / "train" / "happy"
    folder.mkdir(parents=True)
    cv2.imwrite(str(folder / "Training_1.png"), np.full((48, 48), 90, np.uint8))
    (folder / name).write_bytes(data)
    return tmp_path / "tree"


def test_unreadable_image_is_named(tmp_path):
    root = _one_image_tree(tmp_path, "Training_2.jpg", b"not a jpeg")
    with pytest.raises(DataError, match=r"Training_2\.jpg: cannot decode"):
        fc.data.load_fer2013(root, cache=False)


def test_images_not_48x48_are_resized_with_a_warning_or_refused(tmp_path, caplog):
    _, big = cv2.imencode(".png", np.full((96, 96), 200, np.uint8))
    root = _one_image_tree(tmp_path, "Training_2.png", big.tobytes())
    with caplog.at_level(logging.WARNING):
        ds = fc.data.load_fer2013(root, cache=False)
    assert ds.images.shape == (2, 48, 48) and (ds.images[1] == 200).all()
    assert "resized 1 images" in caplog.text and "Training_2.png" in caplog.text
    _, wide = cv2.imencode(".png", np.zeros((48, 64), np.uint8))
    (root / "train" / "happy" / "Training_3.png").write_bytes(wide.tobytes())
    with pytest.raises(DataError, match=r"Training_3\.png: the image is 64x48, not square"):
        fc.data.load_fer2013(root, cache=False)


def test_unknown_folders_and_non_images(tmp_path):
    root = _one_image_tree(tmp_path, "notes.txt", b"hello")
    ds = fc.data.load_fer2013(root, cache=False)
    assert ds.dropped == {"files that are not images": 1}  # left out, and counted
    (root / "train" / "contempt").mkdir()
    with pytest.raises(DataError, match="unknown class folder 'contempt'"):
        fc.data.load_fer2013(root, cache=False)


def test_ferplus_bad_votes_are_named(tmp_path, faces):
    csv = write_fer2013_csv(faces, tmp_path / "fer2013.csv")
    votes, _ = votes_for(faces.labels)
    ferplus = write_ferplus(faces, tmp_path / "fer2013new.csv", votes)
    text = ferplus.read_text().splitlines()
    text[4] = text[4].rsplit(",", 1)[0] + ",many"
    ferplus.write_text("\n".join(text) + "\n")
    with pytest.raises(DataError, match=r"line 5: vote NF='many'"):
        fc.data.load_fer2013(csv, ferplus=ferplus, cache=False)


# --- issue #15: bad inputs that used to pass silently or fail without a name -----------------


def _jpeg_bytes() -> bytes:
    yy, xx = np.mgrid[:48, :48]
    ok, data = cv2.imencode(".jpg", ((xx * 3 + yy * 2) % 256).astype(np.uint8))
    assert ok
    return data.tobytes()


def test_truncated_jpeg_in_a_kaggle_folder_is_an_error_naming_it(tmp_path):
    data = _jpeg_bytes()
    # cv2.imread decodes this with grey rows and a stderr line naming no file.
    root = _one_image_tree(tmp_path, "Training_2.jpg", data[: len(data) // 2])
    with pytest.raises(DataError, match=r"Training_2\.jpg: the JPEG file is truncated") as err:
        fc.data.load_fer2013(root, cache=False)
    assert str(root / "train" / "happy" / "Training_2.jpg") in str(err.value)
    # A complete JPEG, also one with bytes after its end marker, still loads.
    (root / "train" / "happy" / "Training_2.jpg").write_bytes(data + b"trailing\x00")
    assert len(fc.data.load_fer2013(root, cache=False)) == 2


def test_truncated_png_is_an_error_naming_it(tmp_path):
    _, png = cv2.imencode(".png", np.full((48, 48), 90, np.uint8))
    root = _one_image_tree(tmp_path, "Training_2.png", png.tobytes()[:-20])
    with pytest.raises(DataError, match=r"Training_2\.png: the PNG file is truncated"):
        fc.data.load_fer2013(root, cache=False)


def test_header_only_csv_is_an_error_naming_the_file(tmp_path, monkeypatch, capsys):
    path = _csv_with(tmp_path, [])
    with pytest.raises(DataError, match=r"fer2013\.csv: no faces") as err:
        fc.data.load_fer2013(path, cache=False)
    assert str(path) in str(err.value)
    # Found automatically under data/, and through the report command (it used to crash in
    # pixel_std with a reshape error).
    monkeypatch.setenv("FERCOURSE_DATA", str(tmp_path))
    with pytest.raises(DataError, match=r"fer2013\.csv: no faces"):
        fc.data.load_fer2013()
    assert fercourse.cli.main(["data", "report"]) == 1
    assert f"error: {path}: no faces" in capsys.readouterr().err


def test_latin1_byte_names_the_file_and_line(tmp_path):
    path = tmp_path / "fer2013.csv"
    rows = [f"0,{GOOD},Training", f"1,{GOOD},Trainin\xe9"]
    path.write_bytes(("\n".join(["emotion,pixels,Usage", *rows]) + "\n").encode("latin-1"))
    with pytest.raises(DataError, match=r"fer2013\.csv, line 3: .*\\xe9.* not UTF-8") as err:
        fc.data.load_fer2013(path, cache=False)
    assert str(path) in str(err.value)


@pytest.mark.parametrize("token", ["1_0", "\u0661", "+-1"])
def test_pixel_tokens_python_reads_but_the_parser_does_not_are_named(tmp_path, token):
    path = _csv_with(tmp_path, [f"0,{GOOD[:-1]}{token},Training"])
    with pytest.raises(DataError, match=re.escape(f"line 2: non-numeric pixel value '{token}'")):
        fc.data.load_fer2013(path, cache=False)
