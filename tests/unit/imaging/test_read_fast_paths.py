"""The readers' fast paths give exactly what the plain paths gave: same dtype, same voxels.

NIfTI: ``.nii.gz`` is inflated with ISA-L instead of nibabel's gzip reader; checked
against the same image written as ``.nii``. DICOM: integer rescale straight into
int16/int32, uncompressed pixel data read from the file, compressed series decoded in
worker processes; checked against the reading they replaced (pydicom's float64
modality LUT, ``np.stack``, then the smallest dtype that holds the values).
"""

from __future__ import annotations

import gzip
import os
from pathlib import Path

import nibabel as nib
import numpy as np
import pydicom
import pytest
from pydicom.pixels import apply_modality_lut
from pydicom.uid import JPEG2000Lossless, JPEGLSLossless

from portal.imaging import dicom
from portal.imaging.dicom import DicomSeries, find_dicom_series, read_dicom_series
from portal.imaging.dicom_write import write_dicom_series
from portal.imaging.errors import ImagingError
from portal.imaging.nifti import _load_header_checked, read_nifti
from portal.imaging.volume import Volume

RNG = np.random.default_rng(7)
INT16 = RNG.integers(-1000, 3000, (20, 30, 40)).astype(np.int16)


def _nifti_cases() -> dict[str, nib.Nifti1Image]:
    scaled = nib.Nifti1Image(INT16, np.eye(4))
    scaled.header.set_slope_inter(0.5, -3.0)
    with_nan = RNG.random((8, 9, 10)).astype(np.float32)
    with_nan[0, 0, 0] = np.nan
    extended = nib.Nifti1Image(INT16, np.eye(4))
    extended.header.extensions.append(nib.nifti1.Nifti1Extension(6, b"a comment"))
    return {
        "int16": nib.Nifti1Image(INT16, np.eye(4)),
        "scaled": scaled,
        "4d": nib.Nifti1Image(RNG.random((10, 11, 12, 3)).astype(np.float32), np.eye(4)),
        "big-endian": nib.Nifti1Image(INT16.astype(">i2"), np.eye(4)),
        "nan": nib.Nifti1Image(with_nan, np.eye(4)),
        "2d": nib.Nifti1Image(INT16[:, :, 0], np.eye(4)),
        "nifti2": nib.Nifti2Image(INT16, np.eye(4)),
        "uint8": nib.Nifti1Image((INT16 % 200).astype(np.uint8), np.eye(4)),
        "extension": extended,
    }


@pytest.mark.parametrize("name", sorted(_nifti_cases()))
def test_nii_gz_reads_like_nii(tmp_path: Path, name: str) -> None:
    img = _nifti_cases()[name]
    nib.save(img, tmp_path / "a.nii.gz")
    nib.save(img, tmp_path / "a.nii")
    fast, plain = read_nifti(tmp_path / "a.nii.gz"), read_nifti(tmp_path / "a.nii")
    assert fast.data.dtype == plain.data.dtype
    assert np.array_equal(fast.data, plain.data)
    assert np.array_equal(fast.affine_ras, plain.affine_ras)
    # The image handed on names the file: its proxy reads like nib.load's.
    loaded = _load_header_checked(tmp_path / "a.nii.gz", 10**9)
    reference = nib.load(tmp_path / "a.nii.gz")
    assert type(loaded) is type(reference)
    assert loaded.header.binaryblock == reference.header.binaryblock
    assert np.array_equal(
        np.asanyarray(loaded.dataobj), np.asanyarray(reference.dataobj), equal_nan=True
    )


def test_damage_inside_gzip_voxels_is_an_error_not_wrong_voxels(tmp_path: Path) -> None:
    path = tmp_path / "a.nii.gz"
    nib.save(nib.Nifti1Image(INT16, np.eye(4)), path)
    raw = bytearray(path.read_bytes())
    middle = len(raw) // 2
    raw[middle : middle + 50] = bytes(50)
    path.write_bytes(bytes(raw))
    with pytest.raises(ImagingError, match="truncated or corrupt voxel data"):
        read_nifti(path)


def test_truncated_gzip_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "a.nii.gz"
    nib.save(nib.Nifti1Image(INT16, np.eye(4)), path)
    path.write_bytes(path.read_bytes()[: len(path.read_bytes()) // 2])
    with pytest.raises(ImagingError, match="truncated or corrupt voxel data"):
        read_nifti(path)


def test_gzip_bomb_is_read_only_as_far_as_the_header_declares(tmp_path: Path) -> None:
    header = nib.Nifti1Image(np.zeros((4, 4, 4), np.uint8), np.eye(4))
    path = tmp_path / "bomb.nii.gz"
    nib.save(header, tmp_path / "small.nii")
    small = (tmp_path / "small.nii").read_bytes()
    # 64 voxels declared, 200 MB of zeros behind them.
    with gzip.open(path, "wb", compresslevel=1) as fh:
        fh.write(small)
        for _ in range(200):
            fh.write(bytes(1024 * 1024))
    volume = read_nifti(path)
    assert volume.shape == (4, 4, 4)


def _reference(series: DicomSeries) -> np.ndarray:
    """The reading the fast path replaced: float64 modality LUT, stack, smallest dtype."""
    datasets = [pydicom.dcmread(p) for p in series.paths]
    datasets.sort(key=lambda ds: float(ds.ImagePositionPatient[2]))
    values = np.stack([apply_modality_lut(ds.pixel_array, ds) for ds in datasets], axis=-1)
    values = values.transpose(1, 0, 2)
    if values.dtype.kind == "f" and not np.array_equal(values, np.round(values)):
        return values.astype(np.float32)
    for dtype in (np.int16, np.int32):
        info = np.iinfo(dtype)
        if info.min <= values.min() and values.max() <= info.max:
            return values.astype(dtype)
    return values.astype(np.float32)


def _series(
    folder: Path,
    stored: np.ndarray,
    *,
    bits_stored: int | None = None,
    slope: float | list[float] | None = None,
    intercept: float | list[float] | None = None,
) -> DicomSeries:
    """A CT series of `stored` values ((i, j, k) order) with the given pixel module."""
    shape = stored.shape
    paths = write_dicom_series(
        Volume(np.zeros(shape, np.int16), np.eye(4), "CT", "fast"),
        folder,
        patient_name="Fast^Path",
        study_description="s",
        series_description="fast",
        modality="CT",
    )
    bits = stored.dtype.itemsize * 8
    for k, path in enumerate(paths):
        ds = pydicom.dcmread(path)
        ds.BitsAllocated, ds.BitsStored = bits, bits_stored or bits
        ds.HighBit = (bits_stored or bits) - 1
        ds.PixelRepresentation = int(stored.dtype.kind == "i")
        ds.PixelData = np.ascontiguousarray(stored[:, :, k].T).astype(stored.dtype).tobytes()
        for keyword, value in (("RescaleSlope", slope), ("RescaleIntercept", intercept)):
            if value is None:
                if keyword in ds:
                    delattr(ds, keyword)
            else:
                setattr(ds, keyword, value[k] if isinstance(value, list) else value)
        ds.save_as(path, enforce_file_format=True)
    (series,) = find_dicom_series([folder])
    return series


SHAPE = (24, 20, 12)
CASES = {
    # 12-bit CT: high bits set to garbage (cleared on reading), intercept -1024.
    "ct-12-bit": dict(
        stored=(RNG.integers(0, 4096, SHAPE) | (RNG.integers(0, 2, SHAPE) << 14)).astype(np.uint16),
        bits_stored=12,
        slope=1,
        intercept=-1024,
    ),
    # Signed 12-bit: negative values come back sign-extended.
    "signed-12-bit": dict(
        stored=(RNG.integers(-2048, 2048, SHAPE) & 0x0FFF).astype(np.int16),
        bits_stored=12,
        slope=1,
        intercept=0,
    ),
    "beyond-int16": dict(
        stored=RNG.integers(0, 60000, SHAPE).astype(np.uint16), slope=1, intercept=-1024
    ),
    "stored-beyond-int16-result-within": dict(
        stored=RNG.integers(30000, 40000, SHAPE).astype(np.uint16), slope=1, intercept=-32768
    ),
    "slope-2": dict(
        stored=RNG.integers(0, 3000, SHAPE).astype(np.uint16), slope=2, intercept=-1000
    ),
    "negative-slope": dict(
        stored=RNG.integers(0, 300, SHAPE).astype(np.uint16), slope=-3, intercept=7
    ),
    "fractional-slope": dict(
        stored=RNG.integers(0, 3000, SHAPE).astype(np.uint16), slope=0.5, intercept=-10
    ),
    "no-rescale": dict(stored=RNG.integers(0, 1000, SHAPE).astype(np.uint16)),
    "uint8": dict(stored=RNG.integers(0, 256, SHAPE).astype(np.uint8), slope=1, intercept=-100),
    "rescale-per-slice": dict(
        stored=RNG.integers(0, 4096, SHAPE).astype(np.uint16),
        slope=1,
        intercept=[-1024 - 10 * k for k in range(SHAPE[2])],
    ),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_dicom_fast_path_equals_float64_modality_lut(tmp_path: Path, name: str) -> None:
    series = _series(tmp_path, **CASES[name])  # type: ignore[arg-type]
    volume = read_dicom_series(series)
    expected = _reference(series)
    assert volume.data.dtype == expected.dtype
    assert np.array_equal(volume.data, expected)


def _compress(series: DicomSeries, folder: Path, syntax: str) -> DicomSeries:
    folder.mkdir()
    for path in series.paths:
        ds = pydicom.dcmread(path)
        ds.compress(syntax)
        ds.save_as(folder / path.name, enforce_file_format=True)
    (compressed,) = find_dicom_series([folder])
    return compressed


@pytest.mark.parametrize("syntax", [JPEGLSLossless, JPEG2000Lossless])
def test_compressed_series_decoded_in_processes_equal_uncompressed(
    tmp_path: Path, syntax: str
) -> None:
    shape = (64, 64, 10)
    stored = RNG.integers(0, 4096, shape).astype(np.uint16)
    plain = _series(tmp_path / "plain", stored, bits_stored=12, slope=1, intercept=-1024)
    compressed = _compress(plain, tmp_path / "compressed", syntax)
    if (os.cpu_count() or 1) > 1:
        read_in_processes = dicom._read_in_processes(compressed)
        assert read_in_processes is not None
        assert all(s.decoded is not None for frames in read_in_processes for s in frames)
    volume = read_dicom_series(compressed)
    assert volume.data.dtype == np.int16
    assert np.array_equal(volume.data, read_dicom_series(plain).data)


def test_undecodable_file_read_in_processes_is_named(tmp_path: Path) -> None:
    stored = RNG.integers(0, 4096, (64, 64, 10)).astype(np.uint16)
    plain = _series(tmp_path / "plain", stored, bits_stored=12, slope=1, intercept=-1024)
    compressed = _compress(plain, tmp_path / "compressed", JPEG2000Lossless)
    broken = compressed.paths[3]
    ds = pydicom.dcmread(broken)
    ds.PixelData = pydicom.encaps.encapsulate([b"\xff\x4f\xff\x51" + bytes(64)])
    ds.save_as(broken, enforce_file_format=True)
    with pytest.raises(ImagingError, match="cannot decode pixel data") as err:
        read_dicom_series(compressed)
    assert err.value.path == str(broken)


def test_fractional_rescale_of_a_series_read_in_processes(tmp_path: Path) -> None:
    """The general path reads the compressed bytes the reader processes left in the files."""
    stored = RNG.integers(0, 4096, (64, 64, 10)).astype(np.uint16)
    plain = _series(tmp_path / "plain", stored, bits_stored=12, slope=0.25, intercept=-10)
    compressed = _compress(plain, tmp_path / "compressed", JPEGLSLossless)
    volume = read_dicom_series(compressed)
    assert volume.data.dtype == np.float32
    assert np.array_equal(volume.data, _reference(plain))
