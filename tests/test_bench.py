"""``python -m fercourse bench train``: the training-speed table, with and without bf16 autocast."""

from __future__ import annotations

import pytest

from fercourse.bench import train as bench


@pytest.mark.parametrize("flags", [[], ["--amp", "bf16", "--channels-last", "yes"]])
def test_bench_train_prints_a_row_per_model_with_its_runtime(capsys, flags):
    # No FER2013 in the (isolated, empty) data folder: the synthetic faces are measured.
    args = ["--models", "baseline_cnn", "--seconds", "0.2", "--min-steps", "2", "--device", "cpu"]
    assert bench.main(args + flags) == 0
    out = capsys.readouterr().out
    assert f"amp {flags[1] if flags else 'auto'}" in out
    (row,) = [line for line in out.splitlines() if line.startswith("| baseline_cnn |")]
    assert float(row.split("|")[3]) > 0  # pipeline img/s


def test_measure_records_the_runtime_it_ran_with():
    import fercourse as fc

    data = fc.data.make_synthetic_faces(n=300, seed=0)
    row = bench.measure(
        "baseline_cnn", data, seconds=0.1, min_steps=2, device="cpu", amp="bf16", channels_last=True
    )
    assert row["amp"] == "bfloat16" and row["channels_last"] is True
    assert row["pipeline_ips"] > 0 and 0 < row["data_share"] < 1


def test_bench_train_rejects_an_unknown_model():
    with pytest.raises(SystemExit):
        bench.main(["--models", "resnet9000"])


def test_bench_budget_trains_both_recipes_in_the_same_budget(capsys, tmp_path):
    import fercourse as fc
    from fercourse.bench import budget

    csv = tmp_path / "fer2013.csv"
    fc.data.write_fer2013_csv(fc.data.make_synthetic_faces(n=300, seed=0), csv)
    args = ["--minutes", "0.05", "--model", "baseline_cnn", "--data", str(csv), "--threads", "1"]
    assert budget.main([*args, "--out", str(tmp_path / "out")]) == 0
    out = capsys.readouterr().out
    rows = {line.split("|")[1].strip(): line for line in out.splitlines() if "| **" in line}
    assert set(rows) == {"fercourse", "original"}
    assert "synthetic stand-in" in out and "with flip TTA" in out
    for line in rows.values():  # both scored as they are and with flip TTA
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        assert len(cells) == 8 and 0 <= float(cells[6].rstrip("%")) <= 100
    for recipe in rows:  # each recipe's own budgeted run folder, with the plan it bought
        plan = fc.rundir.RunDir(tmp_path / "out" / recipe).config()["budget"]
        assert plan["budget_s"] == 3.0 and plan["epochs"] >= 1
    original = fc.rundir.RunDir(tmp_path / "out" / "original").config()["config"]
    assert (original["scheduler"], original["class_weighted"], original["lr"]) == (
        "plateau",
        True,
        1e-3,
    )
