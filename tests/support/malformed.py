"""A corpus of small malformed input files, each paired with the refusal it must get.

Every case writes its files into its own folder (so that no two cases pair up or share a
DICOM series), starting from small real data: nibabel's and pydicom's test files, or tiny
arrays written with nibabel, pydicom and pynrrd, then broken on purpose. Nothing here is
committed as data: the tests build the corpus in a temporary folder (about half a second;
a few KB per case, the bombs under 64 KB).

`CORPUS_MAX_VOXELS` and `CORPUS_MAX_ARCHIVE_MB` are the limits the import must run with
for the expected reasons to hold (`Settings.max_voxels`, `Settings.max_archive_mb`).
"""

from __future__ import annotations

import gzip
import io
import stat
import struct
import warnings
import zipfile
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import nibabel as nib
import nrrd
import numpy as np
import pydicom
from pydicom.data import get_testdata_file
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence
from pydicom.uid import JPEGBaseline8Bit

from portal.imaging.dicom_write import write_dicom_series
from portal.imaging.nifti import write_nifti
from portal.imaging.volume import Volume

__all__ = [
    "CASES",
    "CORPUS_MAX_ARCHIVE_MB",
    "CORPUS_MAX_VOXELS",
    "NIBABEL_DATA",
    "UNREADABLE_DICOM",
    "BuiltCase",
    "Case",
    "build_corpus",
]

NIBABEL_DATA = Path(nib.__file__).parent / "tests" / "data"

#: Voxel limit of the import the corpus is run through (16 Mi voxels).
CORPUS_MAX_VOXELS = 16 * 1024**2
#: Archive limit (`Settings.max_archive_mb`) of that import.
CORPUS_MAX_ARCHIVE_MB = 1

# NIfTI-1 header offsets (nifti1.h).
_DIM = 40
_DATATYPE = 70
_BITPIX = 72
_VOX_OFFSET = 108
_MAGIC = 344
# MGH header: version, width, height, depth, nframes, type (big-endian int32).
_MGH_HEADER_BYTES = 284


@dataclass(frozen=True)
class Case:
    """One malformed input.

    Parameters
    ----------
    name : str
        Test id, also the folder the case is written into.
    write : callable
        ``write(folder)`` writes the files and returns them, the one the refusal must
        name first (an archive for ZIP cases, the label map for label cases).
    reason : str
        Lowercase fragment the recorded reason must contain.
    huge : bool
        The file declares (or expands to) far more than the limits: it must be refused
        without allocating anything like its declared size.
    """

    name: str
    write: Callable[[Path], list[Path]]
    reason: str
    huge: bool = False


@dataclass(frozen=True)
class BuiltCase:
    """A case written to disk: its folder, its files and the file the refusal names."""

    case: Case
    folder: Path
    files: tuple[Path, ...]

    @property
    def culprit(self) -> Path:
        return self.files[0]


CASES: list[Case] = []

#: What `find_dicom_series(unreadable=...)` says about the DICOM files that the import
#: still reports as "not an image" (case name -> lowercase fragment).
UNREADABLE_DICOM = {
    "dcm_truncated_in_header": "file is truncated",
    "dcm_sequence_nested_300_deep": "nested too deeply",
}


Writer = Callable[[Path], list[Path]]


def case(name: str, reason: str, *, huge: bool = False) -> Callable[[Writer], Writer]:
    """Register the decorated writer as a case of the corpus."""

    def register(write: Writer) -> Writer:
        CASES.append(Case(name, write, reason.lower(), huge))
        return write

    return register


def build_corpus(root: Path, cases: list[Case] | None = None) -> list[BuiltCase]:
    """Write every case (or those given) into ``root/<case name>/``."""
    built = []
    for c in CASES if cases is None else cases:
        folder = root / c.name
        folder.mkdir(parents=True)
        built.append(BuiltCase(c, folder, tuple(c.write(folder))))
    return built


# --- small valid bases ----------------------------------------------------------------


def _small_array(shape: tuple[int, ...] = (6, 7, 5), dtype: str = "int16") -> np.ndarray:
    rng = np.random.default_rng(sum(shape))
    return rng.integers(0, 1000, size=shape).astype(dtype)


_AFFINE = np.diag([2.0, 2.0, 3.0, 1.0])


def _nifti_bytes(data: np.ndarray | None = None) -> bytes:
    """A small single-file NIfTI-1 (header, 4 bytes extension flag, voxels) as bytes."""
    data = _small_array() if data is None else data
    img = nib.Nifti1Image(data, _AFFINE)
    img.header.set_slope_inter(1.0, 0.0)
    return img.to_bytes()


def _patch(raw: bytes, offset: int, fmt: str, *values: object) -> bytes:
    buf = bytearray(raw)
    struct.pack_into(fmt, buf, offset, *values)
    return bytes(buf)


def _write(path: Path, raw: bytes) -> list[Path]:
    path.write_bytes(raw)
    return [path]


def _gz(raw: bytes) -> bytes:
    return gzip.compress(raw, compresslevel=9, mtime=0)


def _valid_image(folder: Path, name: str = "case.nii.gz") -> Path:
    return write_nifti(folder / name, _small_array(), _AFFINE)


# --- NIfTI ----------------------------------------------------------------------------


@case("nii_empty_file", "file is empty")
def _nii_empty(folder: Path) -> list[Path]:
    return _write(folder / "empty.nii", b"")


@case("nii_gz_zero_length", "file is empty")
def _nii_gz_zero(folder: Path) -> list[Path]:
    return _write(folder / "empty.nii.gz", b"")


@case("nii_gz_of_nothing", "file is empty")
def _nii_gz_nothing(folder: Path) -> list[Path]:
    return _write(folder / "nothing.nii.gz", _gz(b""))


@case("nii_truncated_header", "shorter than a nifti-1 header (200 of 348 bytes)")
def _nii_truncated_header(folder: Path) -> list[Path]:
    return _write(folder / "short.nii", (NIBABEL_DATA / "anatomical.nii").read_bytes()[:200])


@case("nii_truncated_data", "truncated")
def _nii_truncated_data(folder: Path) -> list[Path]:
    raw = (NIBABEL_DATA / "anatomical.nii").read_bytes()
    return _write(folder / "half.nii", raw[: 352 + (len(raw) - 352) // 2])


@case("nii_gz_truncated_stream", "truncated")
def _nii_gz_truncated(folder: Path) -> list[Path]:
    raw = _gz(_nifti_bytes(_small_array((16, 16, 16))))
    return _write(folder / "cut.nii.gz", raw[: len(raw) * 2 // 3])


@case("nii_gz_corrupt_stream", "corrupt gzip stream")
def _nii_gz_corrupt(folder: Path) -> list[Path]:
    raw = bytearray(_gz(_nifti_bytes()))
    # Keep the gzip member header (10 bytes), scramble the deflate blocks.
    raw[12:-8] = bytes((b * 7 + 13) % 256 for b in raw[12:-8])
    return _write(folder / "scrambled.nii.gz", bytes(raw))


# nibabel reads ahead past the header, into the damage, and then says only that it cannot
# work out the file type: the reason should be "corrupt gzip stream" (see the report).
@case("nii_gz_corrupt_voxel_stream", "not a readable nifti file")
def _nii_gz_corrupt_voxels(folder: Path) -> list[Path]:
    """A readable header and first voxels, then a deflate block of invalid type."""
    raw = _nifti_bytes(_small_array((16, 16, 16)))
    comp = zlib.compressobj(9, zlib.DEFLATED, 31)
    stream = bytearray(comp.compress(raw[:2048]) + comp.flush(zlib.Z_FULL_FLUSH))
    voxels_at = len(stream)
    stream += comp.compress(raw[2048:]) + comp.flush()
    stream[voxels_at] |= 0b111  # BFINAL=1, BTYPE=11 (reserved)
    return _write(folder / "badblock.nii.gz", bytes(stream))


@case("nii_gz_corrupt_deep_in_voxels", "corrupt")
def _nii_gz_corrupt_deep(folder: Path) -> list[Path]:
    """Zeros that compress to almost nothing, with a block of invalid type 900 KB in."""
    raw = _nifti_bytes(np.zeros((128, 128, 64), np.uint8))
    comp = zlib.compressobj(9, zlib.DEFLATED, 31)
    stream = bytearray(comp.compress(raw[: 900 * 1024]) + comp.flush(zlib.Z_FULL_FLUSH))
    bad_at = len(stream)
    stream += comp.compress(raw[900 * 1024 :]) + comp.flush()
    stream[bad_at] |= 0b111  # BFINAL=1, BTYPE=11 (reserved)
    return _write(folder / "deep.nii.gz", bytes(stream))


@case("nii_gz_not_gzip", "not gzip-compressed")
def _nii_gz_not_gzip(folder: Path) -> list[Path]:
    return _write(folder / "plain.nii.gz", b"this is not gzip data\n" * 20)


@case("nii_wrong_magic", "wrong magic")
def _nii_wrong_magic(folder: Path) -> list[Path]:
    return _write(folder / "magic.nii", _patch(_nifti_bytes(), _MAGIC, "4s", b"xx1\0"))


@case("nii_dim0_zero", "dim[0] is 0")
def _nii_dim0_zero(folder: Path) -> list[Path]:
    return _write(folder / "dim0.nii", _patch(_nifti_bytes(), _DIM, "<h", 0))


@case("nii_dim0_eight", "dim[0] is 8")
def _nii_dim0_eight(folder: Path) -> list[Path]:
    return _write(folder / "dim8.nii", _patch(_nifti_bytes(), _DIM, "<h", 8))


@case("nii_negative_dim", "negative size")
def _nii_negative_dim(folder: Path) -> list[Path]:
    return _write(folder / "negative.nii", _patch(_nifti_bytes(), _DIM + 4, "<h", -7))


@case("nii_zero_dim", "zero size")
def _nii_zero_dim(folder: Path) -> list[Path]:
    return _write(folder / "zero.nii", _patch(_nifti_bytes(), _DIM + 6, "<h", 0))


@case("nii_declared_beyond_max_voxels", "more than the limit", huge=True)
def _nii_huge(folder: Path) -> list[Path]:
    """NIfTI-1 dims are int16: 32767^3 with 40 bytes of data."""
    raw = _nifti_bytes(np.zeros((2, 2, 5), np.int16))
    raw = _patch(raw, _DIM, "<8h", 3, 32767, 32767, 32767, 1, 1, 1, 1)
    return _write(folder / "huge.nii", raw)


@case("nii2_declared_60000_cubed", "more than the limit", huge=True)
def _nii2_huge(folder: Path) -> list[Path]:
    """A NIfTI-2 file declaring 60000^3 voxels followed by 40 bytes of data."""
    hdr = nib.Nifti2Header()
    hdr.set_data_dtype(np.uint8)
    hdr.set_data_shape((60000, 60000, 60000))
    hdr["vox_offset"] = 544
    return _write(folder / "huge2.nii", hdr.binaryblock + bytes(40))


@case("nii2_dims_overflow_int64", "more than the limit", huge=True)
def _nii2_overflow(folder: Path) -> list[Path]:
    """Dims whose product wraps around in int64 (2^32 * 2^32 = 2^64 -> 0)."""
    hdr = nib.Nifti2Header()
    hdr.set_data_dtype(np.uint8)
    hdr["dim"][:4] = (3, 2**32, 2**32, 1)
    hdr["vox_offset"] = 544
    return _write(folder / "wrap.nii", hdr.binaryblock + bytes(40))


@case("nii_vox_offset_beyond_end", "truncated")
def _nii_vox_offset(folder: Path) -> list[Path]:
    return _write(folder / "offset.nii", _patch(_nifti_bytes(), _VOX_OFFSET, "<f", 1.0e6))


@case("nii_complex_dtype", "complex")
def _nii_complex(folder: Path) -> list[Path]:
    data = _small_array().astype(np.complex64)
    return _write(folder / "complex.nii", nib.Nifti1Image(data, _AFFINE).to_bytes())


@case("nii_rgb_dtype", "rgb")
def _nii_rgb(folder: Path) -> list[Path]:
    rgb = np.zeros((6, 7, 5), dtype=[("R", "u1"), ("G", "u1"), ("B", "u1")])
    return _write(folder / "rgb.nii", nib.Nifti1Image(rgb, _AFFINE).to_bytes())


@case("nii_unknown_datatype_code", "data code 1234 not recognized")
def _nii_unknown_dtype(folder: Path) -> list[Path]:
    return _write(folder / "dtype.nii", _patch(_nifti_bytes(), _DATATYPE, "<2h", 1234, 16))


@case("nii_gz_bomb", "more than the limit", huge=True)
def _nii_gz_bomb(folder: Path) -> list[Path]:
    """A header declaring 4096^3 float32 followed by 16 MiB of zeros, gzip'd to ~16 KB."""
    hdr = nib.Nifti1Header()
    hdr.set_data_dtype(np.float32)
    hdr.set_data_shape((4096, 4096, 4096))
    hdr["vox_offset"] = 352
    stream = io.BytesIO()
    with gzip.GzipFile(fileobj=stream, mode="wb", compresslevel=9, mtime=0) as gz:
        gz.write(hdr.binaryblock + bytes(4))
        zeros = bytes(1024**2)
        for _ in range(16):
            gz.write(zeros)
    return _write(folder / "bomb.nii.gz", stream.getvalue())


# --- MGH / MGZ ------------------------------------------------------------------------


def _mgh_bytes() -> bytes:
    return gzip.decompress((NIBABEL_DATA / "test.mgz").read_bytes())


@case("mgh_truncated_data", "truncated")
def _mgh_truncated(folder: Path) -> list[Path]:
    return _write(folder / "cut.mgh", _mgh_bytes()[: _MGH_HEADER_BYTES + 20])


@case("mgz_truncated_header", "shorter than an mgh header")
def _mgz_truncated_header(folder: Path) -> list[Path]:
    return _write(folder / "short.mgz", _gz(_mgh_bytes()[:60]))


@case("mgh_wrong_version", "version 7 is not supported")
def _mgh_wrong_version(folder: Path) -> list[Path]:
    return _write(folder / "version.mgh", _patch(_mgh_bytes(), 0, ">i", 7))


@case("mgz_declared_beyond_max_voxels", "more than the limit", huge=True)
def _mgz_huge(folder: Path) -> list[Path]:
    raw = _patch(_mgh_bytes(), 4, ">3i", 50000, 50000, 50000)
    return _write(folder / "huge.mgz", _gz(raw))


@case("mgh_negative_dims", "negative size")
def _mgh_negative(folder: Path) -> list[Path]:
    return _write(folder / "negative.mgh", _patch(_mgh_bytes(), 4, ">3i", 3, -4, 5))


@case("mgh_unknown_type", "type code 99 is not supported")
def _mgh_unknown_type(folder: Path) -> list[Path]:
    return _write(folder / "type.mgh", _patch(_mgh_bytes(), 20, ">i", 99))


# --- NRRD -----------------------------------------------------------------------------


def _nrrd_header(fields: dict[str, str], magic: str = "NRRD0004") -> bytes:
    lines = [magic, *(f"{k}: {v}" for k, v in fields.items())]
    return ("\n".join(lines) + "\n\n").encode()


_NRRD_FIELDS = {
    "type": "int16",
    "dimension": "3",
    "space": "left-posterior-superior",
    "sizes": "4 5 6",
    "space directions": "(1,0,0) (0,1,0) (0,0,2)",
    "endian": "little",
    "encoding": "raw",
    "space origin": "(0,0,0)",
}
_NRRD_DATA = _small_array((4, 5, 6)).tobytes(order="F")


@case("nrrd_bad_magic", "not a readable nrrd file")
def _nrrd_bad_magic(folder: Path) -> list[Path]:
    return _write(folder / "magic.nrrd", _nrrd_header(_NRRD_FIELDS, "NRRX0004") + _NRRD_DATA)


@case("nrrd_missing_sizes", "invalid sizes")
def _nrrd_missing_sizes(folder: Path) -> list[Path]:
    fields = {k: v for k, v in _NRRD_FIELDS.items() if k != "sizes"}
    return _write(folder / "nosizes.nrrd", _nrrd_header(fields) + _NRRD_DATA)


@case("nrrd_unsupported_encoding", "encoding 'zstd' is not supported")
def _nrrd_encoding(folder: Path) -> list[Path]:
    fields = {**_NRRD_FIELDS, "encoding": "zstd"}
    return _write(folder / "zstd.nrrd", _nrrd_header(fields) + _NRRD_DATA)


@case("nrrd_detached_data_missing", "data file 'missing.raw' named in the header does not exist")
def _nrrd_detached_missing(folder: Path) -> list[Path]:
    fields = {**_NRRD_FIELDS, "data file": "missing.raw"}
    return _write(folder / "detached.nrrd", _nrrd_header(fields))


@case("nrrd_detached_data_outside_folder", "outside the header's folder")
def _nrrd_detached_outside(folder: Path) -> list[Path]:
    """A detached data file outside the header's folder (could read any server file)."""
    fields = {**_NRRD_FIELDS, "data file": "../secret.raw"}
    outside = folder / "sub"
    outside.mkdir()
    (folder / "secret.raw").write_bytes(_NRRD_DATA)
    header = _write(outside / "escape.nrrd", _nrrd_header(fields))
    return [*header, folder / "secret.raw"]


@case("nrrd_declared_beyond_max_voxels", "more than the limit", huge=True)
def _nrrd_huge(folder: Path) -> list[Path]:
    fields = {**_NRRD_FIELDS, "sizes": "40000 40000 40000"}
    return _write(folder / "huge.nrrd", _nrrd_header(fields) + _NRRD_DATA[:40])


@case("nrrd_truncated_raw", "truncated")
def _nrrd_truncated(folder: Path) -> list[Path]:
    return _write(folder / "cut.nrrd", _nrrd_header(_NRRD_FIELDS) + _NRRD_DATA[:100])


@case("nrrd_gzip_bomb", "decompression bomb", huge=True)
def _nrrd_gzip_bomb(folder: Path) -> list[Path]:
    """Declares 4x5x6 int16 (240 bytes) but the gzip stream inflates to 48 MiB."""
    fields = {**_NRRD_FIELDS, "encoding": "gzip"}
    comp = zlib.compressobj(9, zlib.DEFLATED, 31)
    body = comp.compress(_NRRD_DATA)
    zeros = bytes(1024**2)
    for _ in range(48):
        body += comp.compress(zeros)
    body += comp.flush()
    return _write(folder / "bomb.nrrd", _nrrd_header(fields) + body)


@case("nrrd_unknown_type", "voxel type 'quaternion' is not supported")
def _nrrd_unknown_type(folder: Path) -> list[Path]:
    fields = {**_NRRD_FIELDS, "type": "quaternion"}
    return _write(folder / "type.nrrd", _nrrd_header(fields) + _NRRD_DATA)


def _seg_nrrd(folder: Path, segment_fields: dict[str, str]) -> list[Path]:
    image = folder / "case.nrrd"
    image.write_bytes(_nrrd_header(_NRRD_FIELDS) + _NRRD_DATA)
    labels = np.zeros((4, 5, 6), np.uint8)
    labels[1:3, 1:4, 2:5] = 1
    fields = {**_NRRD_FIELDS, "type": "uint8", **segment_fields}
    seg = folder / "case.seg.nrrd"
    seg.write_bytes(_nrrd_header(fields) + labels.tobytes(order="F"))
    return [seg, image]


@case("seg_nrrd_unreadable_segment_metadata", "unreadable metadata of segment")
def _seg_broken(folder: Path) -> list[Path]:
    return _seg_nrrd(
        folder, {"Segment0_Name": "tumour", "Segment0_LabelValue": "one", "Segment0_Layer": "0"}
    )


@case("seg_nrrd_segment_layer_out_of_range", "segment 0 has layer 3")
def _seg_layer(folder: Path) -> list[Path]:
    return _seg_nrrd(
        folder, {"Segment0_Name": "tumour", "Segment0_LabelValue": "1", "Segment0_Layer": "3"}
    )


@case("seg_nrrd_undeclared_label_values", "no segment declares")
def _seg_undeclared(folder: Path) -> list[Path]:
    return _seg_nrrd(
        folder, {"Segment0_Name": "tumour", "Segment0_LabelValue": "2", "Segment0_Layer": "0"}
    )


# --- DICOM ----------------------------------------------------------------------------


def _series(folder: Path, seed: str, n_slices: int = 4) -> list[Path]:
    """A tiny valid MR series (8x6 pixels), files renamed s0.dcm... in slice order."""
    data = _small_array((8, 6, n_slices))
    volume = Volume(data, np.diag([0.8, 0.8, 2.5, 1.0]), "MR", "corpus")
    written = write_dicom_series(
        volume,
        folder / ".tmp",
        patient_name="Corpus^Synthetic",
        study_description="corpus",
        series_description=seed,
        uid_seed=seed,
    )
    paths = []
    for k, path in enumerate(written):
        paths.append(path.rename(folder / f"s{k}.dcm"))
    (folder / ".tmp").rmdir()
    return paths


def _one_slice(folder: Path, seed: str) -> tuple[Path, Dataset]:
    """One valid single-file DICOM image and its dataset."""
    (path,) = _series(folder, seed, 1)
    return path, pydicom.dcmread(path)


def _save(ds: Dataset, path: Path) -> list[Path]:
    ds.save_as(path, enforce_file_format=False)
    return [path]


def _edit_one(folder: Path, seed: str, index: int, edit: Callable[[Dataset], None]) -> list[Path]:
    """A valid series with one file changed; that file first in the list."""
    paths = _series(folder, seed)
    ds = pydicom.dcmread(paths[index])
    edit(ds)
    ds.save_as(paths[index], enforce_file_format=False)
    return [paths[index], *(p for p in paths if p != paths[index])]


@case("dcm_not_dicom", "not a nifti, mgh/mgz, nrrd or dicom image")
def _dcm_not_dicom(folder: Path) -> list[Path]:
    return _write(folder / "notes.dcm", b"Not a DICOM file, just text.\n" * 10)


@case("dcm_no_preamble", "not a nifti, mgh/mgz, nrrd or dicom image")
def _dcm_no_preamble(folder: Path) -> list[Path]:
    path, _ = _one_slice(folder, "no-preamble")
    raw = path.read_bytes()
    # Drop the 128-byte preamble and "DICM": pydicom refuses it without force=True.
    return _write(path, raw[132:])


@case("dcm_truncated_in_header", UNREADABLE_DICOM["dcm_truncated_in_header"])
def _dcm_truncated_header(folder: Path) -> list[Path]:
    path, _ = _one_slice(folder, "truncated-header")
    raw = path.read_bytes()
    at = raw.index(b"\x20\x00\x0d\x00")  # StudyInstanceUID, mid-element
    return _write(path, raw[: at + 12])


@case("dcm_truncated_in_pixel_data", "file is truncated")
def _dcm_truncated_pixels(folder: Path) -> list[Path]:
    path, _ = _one_slice(folder, "truncated-pixels")
    raw = path.read_bytes()
    return _write(path, raw[:-30])


@case("dcm_missing_pixel_data", "no pixel data")
def _dcm_missing_pixels(folder: Path) -> list[Path]:
    path, ds = _one_slice(folder, "missing-pixels")
    del ds.PixelData
    return _save(ds, path)


@case("dcm_pixel_data_too_short", "less than expected (40 vs 96 bytes)")
def _dcm_short_pixels(folder: Path) -> list[Path]:
    path, ds = _one_slice(folder, "short-pixels")
    ds.PixelData = ds.PixelData[:40]
    return _save(ds, path)


@case("dcm_unknown_transfer_syntax", "'1.2.826.0.1.3680043.9999.1' is not supported")
def _dcm_unknown_syntax(folder: Path) -> list[Path]:
    path, ds = _one_slice(folder, "unknown-syntax")
    ds.file_meta.TransferSyntaxUID = "1.2.826.0.1.3680043.9999.1"
    return _save(ds, path)


@case("dcm_undecodable_jpeg", "cannot decode pixel data")
def _dcm_bad_jpeg(folder: Path) -> list[Path]:
    path, ds = _one_slice(folder, "bad-jpeg")
    ds.file_meta.TransferSyntaxUID = JPEGBaseline8Bit
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 8, 8, 7, 0
    frame = b"\xff\xd8\xff\xe0" + bytes(range(256)) * 2 + b"\xff\xd9"
    ds.PixelData = pydicom.encaps.encapsulate([frame])
    ds["PixelData"].VR = "OB"
    return _save(ds, path)


@case("dcm_rows_zero", "'rows' value of '0' is invalid")
def _dcm_rows_zero(folder: Path) -> list[Path]:
    path, ds = _one_slice(folder, "rows-zero")
    ds.Rows = 0
    return _save(ds, path)


@case("dcm_bits_allocated_12", "'bits allocated' value of '12' is invalid")
def _dcm_bits_12(folder: Path) -> list[Path]:
    path, ds = _one_slice(folder, "bits-12")
    ds.BitsAllocated, ds.BitsStored, ds.HighBit = 12, 12, 11
    return _save(ds, path)


@case("dcm_samples_per_pixel_4", "'samples per pixel' value of '4' is invalid")
def _dcm_samples_4(folder: Path) -> list[Path]:
    path, ds = _one_slice(folder, "samples-4")
    ds.SamplesPerPixel = 4
    ds.PlanarConfiguration = 0
    ds.PhotometricInterpretation = "ARGB"
    return _save(ds, path)


@case("dcm_sequence_nested_300_deep", UNREADABLE_DICOM["dcm_sequence_nested_300_deep"])
def _dcm_deep_sequence(folder: Path) -> list[Path]:
    """300 levels of ReferencedSeriesSequence, spliced in as raw bytes (undefined lengths)."""
    path, ds = _one_slice(folder, "deep-sequence")
    ds.ReferencedSeriesSequence = Sequence([])
    _save(ds, path)
    raw = path.read_bytes()
    tag = b"\x08\x00\x15\x11SQ\x00\x00"
    at = raw.index(tag)
    (length,) = struct.unpack_from("<I", raw, at + 8)
    undefined = b"\xff\xff\xff\xff"
    if length == 0xFFFFFFFF:
        end = raw.index(b"\xfe\xff\xdd\xe0" + bytes(4), at) + 8
    else:
        end = at + 12 + length
    item, item_end = b"\xfe\xff\x00\xe0" + undefined, b"\xfe\xff\x0d\xe0" + bytes(4)
    seq_end = b"\xfe\xff\xdd\xe0" + bytes(4)
    nested = b""
    for _ in range(300):
        nested = tag + undefined + item + nested + item_end + seq_end
    return _write(path, raw[:at] + nested + raw[end:])


@case("dcm_real_file_pixel_data_cut", "less than expected (640 vs 8192 bytes)")
def _dcm_real_cut(folder: Path) -> list[Path]:
    """pydicom's own MR_small.dcm with its PixelData value declared longer than the file."""
    ds = pydicom.dcmread(get_testdata_file("MR_small.dcm"))
    ds.PixelData = ds.PixelData[: 64 * 10]
    return _save(ds, folder / "mr_small_cut.dcm")


@case("dcm_series_rows_differ", "image size 4x8 differs from 6x8")
def _dcm_rows_differ(folder: Path) -> list[Path]:
    def edit(ds: Dataset) -> None:
        ds.Rows = 4
        ds.PixelData = ds.PixelData[: 4 * 8 * 2]

    return _edit_one(folder, "rows-differ", 3, edit)


@case("dcm_series_orientation_differs", "imageorientationpatient differs")
def _dcm_orientation_differs(folder: Path) -> list[Path]:
    def edit(ds: Dataset) -> None:
        ds.ImageOrientationPatient = [0, 1, 0, 0, 0, -1]

    return _edit_one(folder, "orientation-differs", 2, edit)


@case("dcm_series_duplicate_positions", "share position")
def _dcm_duplicate_positions(folder: Path) -> list[Path]:
    paths = _series(folder, "duplicate-positions")
    ref = pydicom.dcmread(paths[1])
    ds = pydicom.dcmread(paths[2])
    ds.ImagePositionPatient = ref.ImagePositionPatient
    ds.save_as(paths[2], enforce_file_format=False)
    return [paths[2], *paths[:2], paths[3]]


@case("dcm_series_irregular_spacing", "irregular slice spacing")
def _dcm_irregular(folder: Path) -> list[Path]:
    def edit(ds: Dataset) -> None:
        x, y, z = (float(v) for v in ds.ImagePositionPatient)
        ds.ImagePositionPatient = [x, y, z + 1.5]

    paths = _edit_one(folder, "irregular-spacing", 3, edit)
    # The reader names the first slice of the series.
    return sorted(paths, key=lambda p: p.name)


@case("dcm_series_missing_position", "missing or unreadable imagepositionpatient")
def _dcm_missing_position(folder: Path) -> list[Path]:
    return _edit_one(folder, "missing-position", 1, lambda ds: delattr(ds, "ImagePositionPatient"))


@case("dcm_series_missing_orientation", "missing or unreadable imageorientationpatient")
def _dcm_missing_orientation(folder: Path) -> list[Path]:
    return _edit_one(
        folder, "missing-orientation", 2, lambda ds: delattr(ds, "ImageOrientationPatient")
    )


@case("dcm_series_pixel_spacing_differs", "pixelspacing differs")
def _dcm_spacing_differs(folder: Path) -> list[Path]:
    def edit(ds: Dataset) -> None:
        ds.PixelSpacing = [1.6, 1.6]

    return _edit_one(folder, "spacing-differs", 3, edit)


# --- ZIP ------------------------------------------------------------------------------


def _zip(path: Path, entries: list[tuple[str | zipfile.ZipInfo, bytes]]) -> list[Path]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "Duplicate name" is the point of one case
        with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
            for name, data in entries:
                zf.writestr(name, data)
    return [path]


def _valid_nii() -> bytes:
    return _gz(_nifti_bytes())


@case("zip_entry_dotdot", "'..' path component")
def _zip_dotdot(folder: Path) -> list[Path]:
    return _zip(folder / "dotdot.zip", [("ok.nii.gz", _valid_nii()), ("../evil.nii.gz", b"x")])


@case("zip_entry_backslash_dotdot", "'..' path component")
def _zip_backslash(folder: Path) -> list[Path]:
    return _zip(folder / "backslash.zip", [("scans\\..\\..\\evil.nii.gz", _valid_nii())])


@case("zip_entry_absolute_path", "absolute path")
def _zip_absolute(folder: Path) -> list[Path]:
    return _zip(folder / "absolute.zip", [("/tmp/evil.nii.gz", _valid_nii())])


@case("zip_entry_windows_drive", "absolute path")
def _zip_drive(folder: Path) -> list[Path]:
    return _zip(folder / "drive.zip", [("C:/evil.nii.gz", _valid_nii())])


@case("zip_entry_symlink", "symbolic link")
def _zip_symlink(folder: Path) -> list[Path]:
    link = zipfile.ZipInfo("scan.nii.gz")
    link.external_attr = (stat.S_IFLNK | 0o777) << 16
    return _zip(folder / "symlink.zip", [(link, b"/etc/passwd")])


@case("zip_entry_device_file", "not a regular file")
def _zip_fifo(folder: Path) -> list[Path]:
    fifo = zipfile.ZipInfo("scan.nii")
    fifo.external_attr = (stat.S_IFIFO | 0o644) << 16
    return _zip(folder / "fifo.zip", [(fifo, b"")])


@case("zip_bomb_over_archive_limit", "exceeds the limit", huge=True)
def _zip_bomb_total(folder: Path) -> list[Path]:
    """One 40 MiB entry of zeros (about 40 KB compressed) against a 1 MiB limit."""
    info = zipfile.ZipInfo("bomb.nii")
    info.compress_type = zipfile.ZIP_DEFLATED
    path = folder / "bomb.zip"
    with zipfile.ZipFile(path, "w") as zf, zf.open(info, "w", force_zip64=True) as out:
        zeros = bytes(1024**2)
        for _ in range(40):
            out.write(zeros)
    return [path]


@case("zip_bomb_ratio", "zip bomb")
def _zip_bomb_ratio(folder: Path) -> list[Path]:
    """Under the size limit, but expanding about 1000 times."""
    return _zip(folder / "ratio.zip", [("zeros.nii", bytes(900 * 1024))])


@case("zip_declared_size_lie", "cannot be extracted")
def _zip_size_lie(folder: Path) -> list[Path]:
    """Central directory and local header claim 1000 bytes; the stream holds 900 KiB."""
    path = folder / "lie.zip"
    _zip(path, [("liar.nii", bytes(range(256)) * 3600)])
    raw = bytearray(path.read_bytes())
    true_size = 256 * 3600
    for sig, offset in ((b"PK\x03\x04", 22), (b"PK\x01\x02", 24)):
        at = raw.index(sig)
        assert struct.unpack_from("<I", raw, at + offset)[0] == true_size
        struct.pack_into("<I", raw, at + offset, 1000)
    return _write(path, bytes(raw))


@case("zip_nested_archive", "nested zip archive")
def _zip_nested(folder: Path) -> list[Path]:
    inner = io.BytesIO()
    with zipfile.ZipFile(inner, "w") as zf:
        zf.writestr("inner.nii.gz", _valid_nii())
    return _zip(folder / "outer.zip", [("inner.zip", inner.getvalue())])


@case("zip_corrupt_central_directory", "not a readable zip archive")
def _zip_corrupt_cd(folder: Path) -> list[Path]:
    path = folder / "corrupt.zip"
    _zip(path, [("a.nii.gz", _valid_nii())])
    raw = path.read_bytes()
    at = raw.index(b"PK\x01\x02")
    return _write(path, raw[:at] + b"XX\x01\x02" + raw[at + 4 :])


@case("zip_truncated", "not a readable zip archive")
def _zip_truncated(folder: Path) -> list[Path]:
    path = folder / "cut.zip"
    _zip(path, [("a.nii.gz", _valid_nii())])
    return _write(path, path.read_bytes()[:-40])


@case("zip_encrypted_entry", "encrypted")
def _zip_encrypted(folder: Path) -> list[Path]:
    path = folder / "secret.zip"
    _zip(path, [("a.nii.gz", _valid_nii())])
    raw = bytearray(path.read_bytes())
    for sig, offset in ((b"PK\x03\x04", 6), (b"PK\x01\x02", 8)):
        at = raw.index(sig)
        raw[at + offset] |= 0x1
    return _write(path, bytes(raw))


@case("zip_duplicate_entry", "appears twice")
def _zip_duplicate(folder: Path) -> list[Path]:
    return _zip(folder / "twice.zip", [("a.nii.gz", _valid_nii()), ("a.nii.gz", b"other")])


# --- label maps -----------------------------------------------------------------------


def _label_case(folder: Path, labels: np.ndarray, name: str = "case-label.nii.gz") -> list[Path]:
    _valid_image(folder)
    label = folder / name
    nib.save(nib.Nifti1Image(labels, _AFFINE), label)
    return [label, folder / "case.nii.gz"]


@case("label_float_not_whole", "whole numbers")
def _label_float(folder: Path) -> list[Path]:
    labels = np.zeros((6, 7, 5), np.float32)
    labels[2:4, 2:4, 1:3] = 1.5
    return _label_case(folder, labels)


@case("label_negative_values", "negative")
def _label_negative(folder: Path) -> list[Path]:
    labels = np.zeros((6, 7, 5), np.int16)
    labels[2:4, 2:4, 1:3] = -3
    return _label_case(folder, labels)


@case("label_values_over_65535", "at most 65535")
def _label_large(folder: Path) -> list[Path]:
    labels = np.zeros((6, 7, 5), np.int32)
    labels[2:4, 2:4, 1:3] = 70000
    return _label_case(folder, labels)


@case("label_nan_values", "must be finite")
def _label_nan(folder: Path) -> list[Path]:
    labels = np.zeros((6, 7, 5), np.float32)
    labels[1, 1, 1] = np.nan
    return _label_case(folder, labels, "case_seg.nii.gz")


@case("label_grid_mismatch", "label grid does not match the image")
def _label_grid(folder: Path) -> list[Path]:
    return _label_case(folder, np.zeros((6, 7, 4), np.uint8))


@case("label_nrrd_negative_values", "whole numbers from 0 to 65535")
def _label_nrrd_negative(folder: Path) -> list[Path]:
    _valid_image(folder)
    labels = np.zeros((6, 7, 5), np.int16)
    labels[0, 0, 0] = -1
    label = folder / "case-label.nrrd"
    nrrd.write(
        str(label),
        labels,
        {
            "space": "left-posterior-superior",
            "space directions": np.diag([-2.0, -2.0, 3.0]),
            "space origin": np.zeros(3),
        },
    )
    return [label, folder / "case.nii.gz"]
