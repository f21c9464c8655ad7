"""The conda environment (cluster) and pyproject.toml (laptops, CI) must install the same stack."""

from __future__ import annotations

import re
import tomllib

import yaml

import fercourse as fc

ROOT = fc.utils.PROJECT_ROOT


def _pins(requirements: list[str]) -> dict[str, str]:
    pins = {}
    for req in requirements:
        req = req.split("#")[0].strip()
        match = re.fullmatch(r"([A-Za-z0-9_.\-]+)==([A-Za-z0-9_.\-]+)", req)
        assert match, f"{req!r} is not pinned exactly (name==version)"
        pins[match.group(1).lower()] = match.group(2)
    return pins


def test_environment_yml_matches_pyproject():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    from_pyproject = _pins(project["dependencies"] + project["optional-dependencies"]["dev"])

    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    pip_section = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
    assert "-e ." in pip_section, "environment.yml must install fercourse itself (-e .)"
    from_conda = _pins([r for r in pip_section if r != "-e ."])

    assert from_conda == from_pyproject
    assert "python=3.11" in env["dependencies"]


def test_opencv_is_below_5():
    # OpenCV 5 ships no Haar cascades; the mirror's face detector needs them.
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    version = _pins(project["dependencies"])["opencv-python-headless"]
    assert int(version.split(".")[0]) < 5
    import cv2

    assert hasattr(cv2, "CascadeClassifier")


def test_installed_versions_match_pins():
    from importlib import metadata

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    for name, version in _pins(project["dependencies"]).items():
        assert metadata.version(name) == version, (
            f"{name}: installed {metadata.version(name)}, pinned {version}"
        )
