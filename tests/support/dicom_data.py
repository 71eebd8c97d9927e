"""pydicom's and pydicom-data's real test files, and reading one as a portal Volume."""

from __future__ import annotations

from pathlib import Path

from pydicom.data import get_testdata_file

from portal.imaging.dicom import find_dicom_series, read_dicom_series
from portal.imaging.volume import Volume


def testdata(name: str) -> Path:
    """A file shipped with pydicom or pydicom-data (never downloaded)."""
    found = get_testdata_file(name, download=False)
    assert found is not None, name
    return Path(str(found))


def read_one_series(path: Path) -> Volume:
    """The single DICOM series under `path`, read."""
    (series,) = find_dicom_series([path])
    return read_dicom_series(series)
