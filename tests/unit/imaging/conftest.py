"""Shared fixtures: the demo dataset is built once per session (about 5 s)."""

from __future__ import annotations

from pathlib import Path

import nibabel
import pytest

from portal.imaging.demo import DemoStudy, build_demo_dataset

NIBABEL_DATA = Path(nibabel.__file__).parent / "tests" / "data"


@pytest.fixture(scope="session")
def demo_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("demo")


@pytest.fixture(scope="session")
def demo_studies(demo_dir: Path) -> list[DemoStudy]:
    return build_demo_dataset(demo_dir)


@pytest.fixture(scope="session")
def studies_by_name(demo_studies: list[DemoStudy]) -> dict[str, DemoStudy]:
    return {study.name: study for study in demo_studies}


@pytest.fixture(scope="session")
def mni_1mm(studies_by_name: dict[str, DemoStudy]) -> DemoStudy:
    return studies_by_name["MNI152 T1 1mm"]
