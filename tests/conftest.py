"""Shared pytest set-up: keep every test on the CPU, seeded, and writing only to tmp folders."""

from __future__ import annotations

import os

import pytest

# Tests never touch the user's data/ or outputs/ unless a test points there on purpose.
os.environ.setdefault("HF_HUB_OFFLINE", "1")


@pytest.fixture(autouse=True)
def _isolated_dirs(tmp_path_factory, monkeypatch):
    monkeypatch.setenv("FERCOURSE_OUTPUTS", str(tmp_path_factory.mktemp("outputs")))
    monkeypatch.setenv("FERCOURSE_DATA", str(tmp_path_factory.mktemp("data")))
    # notebooks/conftest.py makes every fc.check strict for the instructor edition under nbval;
    # tests here run student editions (the grader, the SLURM course), whose checks must not raise.
    monkeypatch.delenv("FERCOURSE_CHECKS_STRICT", raising=False)
    yield


@pytest.fixture(autouse=True)
def _one_thread():
    # Small models at small batches: one thread is as fast, and far faster on a CPU shared with
    # other jobs (no OpenMP spinning). Tests that measure threading set their own.
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(autouse=True)
def _seeded():
    import fercourse as fc

    fc.utils.seed_everything(0)
    yield
