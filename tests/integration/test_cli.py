"""The `portal` command as a user runs it (click's runner, real database and files)."""

from __future__ import annotations

from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
from click.testing import CliRunner
from sqlalchemy import func, select

from portal.cli import _ensure_admin, main, prepare_demo
from portal.config import Settings
from portal.db.models import Project, Study, User
from portal.db.session import Database
from tests.conftest import PASSWORD
from tests.integration.test_importer import _case


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    return {"PORTAL_DATA_DIR": str(tmp_path / "data"), "PORTAL_SECRET_KEY": "x" * 32}


def test_db_upgrade_user_add_and_import(env: dict[str, str], tmp_path: Path) -> None:
    runner = CliRunner()
    assert runner.invoke(main, ["db", "upgrade"], env=env).exit_code == 0
    added = runner.invoke(
        main,
        ["user", "add", "nina", "--role", "expert", "--password-stdin"],
        input=PASSWORD + "\n",
        env=env,
    )
    assert added.exit_code == 0, added.output
    dup = runner.invoke(
        main, ["user", "add", "nina", "--password-stdin"], input=PASSWORD + "\n", env=env
    )
    assert dup.exit_code != 0 and "already exists" in dup.output

    _case(tmp_path / "cases")
    (tmp_path / "cases" / "junk.dat").write_bytes(b"\x00" * 300)
    result = runner.invoke(main, ["import", str(tmp_path / "cases"), "--project", "trial"], env=env)
    assert result.exit_code == 1
    assert "imported 1" in result.output
    assert f"refused: {tmp_path / 'cases' / 'junk.dat'}:" in result.output

    database = Database(Settings.from_env(env).resolved_database_url)
    with database.session() as s:
        assert s.scalar(select(func.count()).select_from(Study)) == 1
        nina = s.scalar(select(User).where(User.username == "nina"))
        assert nina is not None and nina.role == "expert"
    database.dispose()


def test_demo_is_rerunnable_without_duplicates(demo_settings: Settings) -> None:
    database = Database(demo_settings.resolved_database_url)
    # Other tests add studies to other projects of this catalog; count the demo's.
    in_demo = select(func.count()).select_from(Study).join(Project).where(Project.name == "demo")
    with database.session() as s:
        before = s.scalar(in_demo)
    report, generated = prepare_demo(demo_settings)
    assert report.imported == [] and report.refused == [] and len(report.skipped) == before
    assert generated is None
    with database.session() as s:
        assert s.scalar(in_demo) == before
        assert s.scalar(select(func.count()).select_from(User).where(User.username == "admin")) == 1
        assert before is not None and before >= 6
    database.dispose()


def test_admin_password_is_generated_once(db: Database) -> None:
    generated = _ensure_admin(db, "")
    assert generated and len(generated) >= 12
    assert _ensure_admin(db, "") is None
    with db.session() as s:
        admin = s.scalar(select(User).where(User.username == "admin"))
        assert admin is not None and admin.role == "admin"


def test_geometry_of_demo_dicom_matches_its_nifti_source(demo_settings: Settings) -> None:
    """Our importer's DICOM geometry and voxels equal nibabel's reading of the source NIfTI."""
    from portal.imaging.dicom import find_dicom_series, read_dicom_series

    source = demo_settings.data_dir / "demo-source"
    database = Database(demo_settings.resolved_database_url)
    with database.session() as s:
        nifti = s.scalar(select(Study).where(Study.name == "MNI152 T1 1mm"))
        dicom = s.scalar(select(Study).where(Study.name == "MNI152 T1 1mm (DICOM)"))
        assert nifti is not None and dicom is not None
        nifti_affine, dicom_affine = np.array(nifti.affine_ras), np.array(dicom.affine_ras)
        dicom_files = [demo_settings.store_dir / f for f in dicom.volumes[0].files]
    database.dispose()
    [nifti_path] = sorted(source.rglob("mni152_1mm.nii.gz"))
    ref = nib.load(nifti_path)
    assert np.allclose(nifti_affine, ref.affine, atol=1e-4)
    assert np.allclose(dicom_affine, ref.affine, atol=1e-4)
    [series] = find_dicom_series(dicom_files)
    volume = read_dicom_series(series)
    assert np.array_equal(volume.data, np.asanyarray(ref.dataobj))
