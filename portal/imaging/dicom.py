"""Find DICOM image series in files and folders, and read one as a Volume.

Geometry follows the DICOM standard (PS3.3 C.7.6.2.1.1): the row direction
cosine is the direction of increasing column index (voxel axis ``i``), the
column direction cosine that of increasing row index (``j``), and slices are
ordered by their ImagePositionPatient projected on the slice normal
``row x column`` (``k``). File names and InstanceNumber are never trusted for
the order. Positions are LPS in DICOM and converted to RAS+ by negating x and y.

The frames of enhanced multi-frame files are treated like slices, with their
geometry and rescale from the functional groups (see
:mod:`portal.imaging.dicom_frames`). Compressed pixel data (JPEG, JPEG-LS,
JPEG 2000, RLE; deflate is undone when reading) is decoded by pydicom's pixel
handlers, with the pylibjpeg plugins where pydicom has no decoder of its own.
"""

from __future__ import annotations

import itertools
import logging
import multiprocessing
import os
import threading
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import cast

import numpy as np
import pydicom
from pydicom.dataelem import RawDataElement
from pydicom.dataset import Dataset
from pydicom.filereader import read_file_meta_info
from pydicom.pixels import apply_color_lut, apply_modality_lut, get_decoder, pixel_array
from pydicom.uid import (
    UID,
    DeflatedExplicitVRLittleEndian,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    JPEGLSTransferSyntaxes,
)

from portal.imaging.dicom_frames import FrameInfo, frame_infos
from portal.imaging.dicom_headers import (
    NON_IMAGE_MODALITIES,
    READ_ERRORS,
    UNDEFINED_LENGTH,
    DicomSeries,
    find_dicom_series,
    truncation,
    unreadable_reason,
)
from portal.imaging.dicom_write import write_dicom_series
from portal.imaging.errors import ImagingError, exception_text
from portal.imaging.nifti import DEFAULT_MAX_VOXELS
from portal.imaging.volume import LPS_TO_RAS, Volume

__all__ = [
    "NON_IMAGE_MODALITIES",
    "DicomSeries",
    "find_dicom_series",
    "read_dicom_series",
    "write_dicom_series",
]

logger = logging.getLogger(__name__)


# Largest relative deviation of one slice gap from the median gap.
_SPACING_RTOL = 0.01
# Direction cosines written with limited precision still agree to this.
_ORIENTATION_ATOL = 1e-4

# Slices stepping off their normal by more than this are reported as gantry tilt.
_TILT_NOTE_DEG = 0.05


@dataclass(frozen=True)
class _Slice:
    """One 2-D frame: a single-frame file or one frame of a multi-frame file."""

    path: Path
    ds: Dataset
    frame: FrameInfo
    #: The file's pixel data, when a reader process has decoded it already.
    decoded: np.ndarray | None = field(default=None, compare=False, repr=False)

    @property
    def position_lps(self) -> np.ndarray:
        return self.frame.position_lps


def _read_file(path: Path, series_uid: str) -> list[_Slice]:
    """The frames of one file of the series; the pixel data is left in the file.

    pydicom reads a deferred value (defer_size) from the file when it is first asked
    for; plain uncompressed frames are read from it straight into the volume (see
    :func:`_read_native`), without a bytes object per file.
    """
    try:
        ds = pydicom.dcmread(path, force=False, defer_size=_DEFER_BYTES)
        if _transfer_syntax(ds) == DeflatedExplicitVRLittleEndian:
            # Offsets in an inflated stream are not file offsets: read it all now.
            ds = pydicom.dcmread(path, force=False)
        broken = truncation(ds, path)
    except READ_ERRORS as exc:
        raise ImagingError(path, unreadable_reason(exc, path)) from exc
    if broken is not None:
        raise ImagingError(path, broken)
    if str(ds.get("SeriesInstanceUID", "")) != series_uid:
        raise ImagingError(path, "file does not belong to the series being read")
    if "PixelData" not in ds:
        raise ImagingError(path, "no pixel data")
    return [_Slice(path, ds, frame) for frame in frame_infos(ds, path)]


def _read_slices(series: DicomSeries) -> list[_Slice]:
    per_file = _read_in_processes(series)
    if per_file is None:
        per_file = [_read_file(path, series.series_uid) for path in series.paths]
    slices = [s for frames in per_file for s in frames]
    if not slices:
        raise ImagingError(series.series_uid, "series has no files")
    return slices


def _check_consistent(slices: Sequence[_Slice]) -> tuple[np.ndarray, np.ndarray]:
    """Orientation (6 cosines) and PixelSpacing shared by all slices."""
    first = slices[0]
    rows, cols = int(first.ds.Rows), int(first.ds.Columns)
    iop, spacing = first.frame.orientation, first.frame.pixel_spacing_mm
    for s in slices[1:]:
        if (int(s.ds.Rows), int(s.ds.Columns)) != (rows, cols):
            raise ImagingError(
                s.path,
                f"image size {int(s.ds.Rows)}x{int(s.ds.Columns)} differs from "
                f"{rows}x{cols} of the first file in the series",
            )
        if not np.allclose(s.frame.orientation, iop, atol=_ORIENTATION_ATOL):
            raise ImagingError(s.path, "ImageOrientationPatient differs within the series")
        if not np.allclose(s.frame.pixel_spacing_mm, spacing, rtol=1e-4):
            raise ImagingError(s.path, "PixelSpacing differs within the series")
    return iop, spacing


def _slice_step_lps(slices: Sequence[_Slice], normal: np.ndarray) -> np.ndarray:
    """World step in LPS mm from one sorted slice to the next (the ``k`` column)."""
    if len(slices) == 1:
        ds = slices[0].ds
        thickness = float(ds.get("SliceThickness") or ds.get("SpacingBetweenSlices") or 1.0)
        return normal * abs(thickness)
    distances = np.array([float(s.position_lps @ normal) for s in slices])
    gaps = np.diff(distances)
    median = float(np.median(gaps))
    if median <= 0 or np.min(gaps) <= 1e-6 * max(median, 1.0):
        i = int(np.argmin(gaps))
        raise ImagingError(
            slices[i + 1].path,
            f"two slices share position {distances[i]:.4f} mm along the normal",
        )
    worst = float(np.max(np.abs(gaps - median)))
    if worst > _SPACING_RTOL * median:
        raise ImagingError(
            slices[0].path,
            f"irregular slice spacing: gaps from {gaps.min():.4f} to {gaps.max():.4f} mm "
            f"(median {median:.4f} mm, tolerance {100 * _SPACING_RTOL:g}%)",
        )
    # The mean step between first and last position keeps any gantry tilt
    # (positions not moving along the normal) in the affine instead of dropping it.
    return (slices[-1].position_lps - slices[0].position_lps) / (len(slices) - 1)


def _geometry_notes(
    slices: Sequence[_Slice], step_lps: np.ndarray, normal: np.ndarray
) -> list[str]:
    """What the reviewer should know about the geometry: tilt, assumed positions."""
    notes = []
    if any(s.frame.assumed for s in slices):
        notes.append(
            "no patient position or orientation in the files: shown as an axis-aligned "
            "stack at the origin, so orientation letters and mm positions are not real"
        )
    length = float(np.linalg.norm(step_lps))
    if len(slices) > 1 and length > 0:
        cosine = min(1.0, abs(float(step_lps @ normal)) / length)
        tilt = float(np.degrees(np.arccos(cosine)))
        if tilt > _TILT_NOTE_DEG:
            notes.append(
                f"gantry tilt of {tilt:.2f} degrees: slices are sheared along the table, "
                "kept in the affine (not resampled), so voxels are not rectangular"
            )
    return notes


def _pixels(s: _Slice) -> np.ndarray:
    try:
        # pydicom caches the decoded array on the dataset, so the frames of
        # one multi-frame file are decoded once.
        stored = s.ds.pixel_array
    except (RuntimeError, NotImplementedError, ValueError, AttributeError, KeyError) as exc:
        syntax = s.ds.file_meta.get("TransferSyntaxUID")
        name = getattr(syntax, "name", "") or "unknown transfer syntax"
        raise ImagingError(
            s.path, f"cannot decode pixel data ({name}, {syntax}): {exception_text(exc, s.path)}"
        ) from exc
    if s.frame.index is not None and int(s.ds.get("NumberOfFrames", 1) or 1) > 1:
        stored = stored[s.frame.index]
    if _is_palette(s.ds):
        try:
            stored = apply_color_lut(stored, s.ds)
        except (ValueError, KeyError, IndexError, AttributeError) as exc:
            raise ImagingError(
                s.path, f"unreadable palette colour lookup table ({exception_text(exc, s.path)})"
            ) from exc
    if _is_colour(s.ds):
        return _rgb_u8(s, stored)
    if stored.ndim != 2:
        raise ImagingError(s.path, f"expected one 2-D monochrome frame, got {stored.shape}")
    if s.frame.rescale is not None:
        slope, intercept = s.frame.rescale
        return stored.astype(np.float64) * slope + intercept
    return np.asarray(apply_modality_lut(stored, s.ds))


def _is_palette(ds: Dataset) -> bool:
    return str(ds.get("PhotometricInterpretation", "")).strip() == "PALETTE COLOR"


def _palette_max(ds: Dataset) -> int:
    """Largest value in the palette colour lookup table of `ds`."""
    entries, first, _bits = (int(v) for v in ds.RedPaletteColorLookupTableDescriptor)
    entries = entries or 65536  # 0 means 2**16 entries
    table = apply_color_lut(np.arange(first, first + entries), ds)
    return int(table.max())


def _is_colour(ds: Dataset) -> bool:
    """RGB or YBR samples, or palette indices that a colour lookup table turns into RGB."""
    return int(ds.get("SamplesPerPixel", 1) or 1) == 3 or _is_palette(ds)


def _rgb_u8(s: _Slice, stored: np.ndarray) -> np.ndarray:
    """One colour frame as (rows, columns, 3) uint8 RGB.

    pydicom already converts YBR_FULL, YBR_FULL_422, YBR_ICT and YBR_RCT to RGB
    and undoes planar configuration; deeper samples are scaled down to 8 bits,
    which is what a screen shows anyway.
    """
    if stored.ndim != 3 or stored.shape[2] != 3:
        raise ImagingError(s.path, f"expected one RGB frame, got an array of {stored.shape}")
    if stored.dtype == np.uint8:
        return stored
    if _is_palette(s.ds):
        # 16-bit palette entries; some writers put 8-bit values in them (as GDCM also
        # assumes when no entry of the whole table exceeds 255).
        return (stored if _palette_max(s.ds) <= 255 else stored >> 8).astype(np.uint8)
    bits = int(s.ds.get("BitsStored") or stored.dtype.itemsize * 8)
    scale = 255.0 / float(2**bits - 1)
    return np.rint(np.clip(stored, 0, 2**bits - 1) * scale).astype(np.uint8)


def _smallest_dtype(values: np.ndarray) -> np.ndarray:
    """int16/int32 when all values are whole numbers that fit, else float32."""
    if values.dtype.kind in "iu":
        low, high = int(values.min()), int(values.max())
    elif np.array_equal(values, np.round(values)):
        low, high = int(values.min()), int(values.max())
    else:
        return values.astype(np.float32)
    for dtype in (np.int16, np.int32):
        info = np.iinfo(dtype)
        if info.min <= low and high <= info.max:
            return values.astype(dtype)
    return values.astype(np.float32)


# Compressed series of at least this many files are read and decoded in worker
# processes on a machine with more than one core: pydicom's decoder plugins hold the
# GIL, so threads cannot run them side by side (measured: 2 threads decode JPEG-LS or
# JPEG 2000 no faster than 1). Uncompressed series are read here: sending the parsed
# headers back costs about what parsing them does (measured on 300 CT slices).
_PROCESS_READ_MIN_FILES = 8
# At most this many reader processes or threads.
_MAX_WORKERS = 4
# Modules the reader processes' server imports once, before it forks them.
_READER_PRELOAD = (__name__, "openjpeg", "libjpeg", "jpeg_ls", "rle")
_PIXEL_DATA = 0x7FE00010
# Values longer than this (pixel data) stay in the file until asked for.
_DEFER_BYTES = 64 * 1024
# Uncompressed transfer syntaxes whose pixel bytes are little-endian as stored.
_NATIVE_LITTLE_ENDIAN = frozenset(
    {ImplicitVRLittleEndian, ExplicitVRLittleEndian, DeflatedExplicitVRLittleEndian}
)
# What pydicom and its decoder plugins raise for pixel data they cannot decode.
_DECODE_ERRORS = (RuntimeError, NotImplementedError, ValueError, AttributeError, KeyError)


def _worker_count(n_tasks: int) -> int:
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cpus = os.cpu_count() or 1
    return max(1, min(_MAX_WORKERS, cpus, n_tasks))


def _chunks(n_items: int, n_parts: int) -> list[range]:
    step = max(1, -(-n_items // n_parts))
    return [range(start, min(n_items, start + step)) for start in range(0, n_items, step)]


def _transfer_syntax(ds: Dataset) -> UID | None:
    syntax = getattr(ds, "file_meta", Dataset()).get("TransferSyntaxUID")
    return UID(str(syntax)) if syntax else None


def _is_compressed(syntax: UID | None) -> bool:
    try:
        return syntax is not None and syntax.is_compressed
    except ValueError:  # not a transfer syntax pydicom knows
        return False


def _native_layout(ds: Dataset) -> tuple[np.dtype, int] | None:
    """(stored dtype, unused high bits) of a plain uncompressed frame, else None.

    Plain: little-endian, one frame, one sample, 8/16/32 bits allocated, pixel data
    at least as long as declared. Everything else (multi-frame, colour, 1-bit,
    big-endian, short pixel data) is left to pydicom's decoder.
    """
    if _transfer_syntax(ds) not in _NATIVE_LITTLE_ENDIAN:
        return None
    try:
        rows, cols = int(ds.Rows), int(ds.Columns)
        allocated, stored = int(ds.BitsAllocated), int(ds.BitsStored)
        representation = int(ds.PixelRepresentation)
        samples = int(ds.get("SamplesPerPixel", 1) or 1)
        n_frames = int(ds.get("NumberOfFrames", 1) or 1)
    except (AttributeError, TypeError, ValueError):
        return None
    plain = samples == 1 and n_frames == 1 and representation in (0, 1) and rows * cols > 0
    if not plain or allocated not in (8, 16, 32) or not 1 <= stored <= allocated:
        return None
    element = ds.get_item(_PIXEL_DATA, keep_deferred=True)
    if isinstance(element, RawDataElement):
        length = element.length if element.value is None else len(element.value)
    elif element is not None and isinstance(element.value, bytes):
        length = len(element.value)
    else:
        return None
    if length == UNDEFINED_LENGTH or length < rows * cols * allocated // 8:
        return None
    return np.dtype(f"<{'iu'[representation == 0]}{allocated // 8}"), allocated - stored


def _read_native(s: _Slice, unused_bits: int, out: np.ndarray) -> None:
    """The stored values of a plain frame (see :func:`_native_layout`) into ``out``.

    The same values as ``ds.pixel_array`` (the bits above BitsStored cleared, or set
    to the sign bit for signed data) without pydicom's decoder, whose set-up costs more
    than the conversion itself for a 512x512 slice. Pixel data a reader process left
    in the file is read straight into ``out``.
    """
    element = s.ds.get_item(_PIXEL_DATA, keep_deferred=True)
    if isinstance(element, RawDataElement) and element.value is None:
        with s.path.open("rb") as fh:
            fh.seek(element.value_tell)
            n_read = fh.readinto(memoryview(out).cast("B"))
        if n_read != out.nbytes:
            raise ImagingError(s.path, "file is truncated (it changed while being read)")
    else:
        out[...] = np.frombuffer(s.ds.PixelData, out.dtype, count=out.size).reshape(out.shape)
    if unused_bits:
        # As pydicom: shift the unused high bits out and back (arithmetic for signed).
        np.left_shift(out, unused_bits, out=out)
        np.right_shift(out, unused_bits, out=out)


def _decoding_plugin(ds: Dataset) -> str:
    """The pydicom plugin to decode ``ds`` with, or "" to let pydicom choose.

    For JPEG-LS pydicom tries pylibjpeg (libjpeg) first: ~20 ms for a 512x512 CT
    slice, where CharLS (pyjpegls, installed with highdicom) takes ~5 ms.
    """
    syntax = _transfer_syntax(ds)
    if syntax not in JPEGLSTransferSyntaxes:
        return ""
    try:
        available = get_decoder(syntax).available_plugins
    except NotImplementedError:
        return ""
    return "pyjpegls" if "pyjpegls" in available else ""


def _decode_file(path: Path, ds: Dataset) -> np.ndarray:
    """All frames of one file as pydicom decodes them (stored values, no modality LUT)."""
    try:
        # pixel_array(ds), not ds.pixel_array: nothing cached on (and pickled with) ds.
        return pixel_array(ds, decoding_plugin=_decoding_plugin(ds))
    except _DECODE_ERRORS as exc:
        syntax = ds.file_meta.get("TransferSyntaxUID")
        name = getattr(syntax, "name", "") or "unknown transfer syntax"
        raise ImagingError(path, f"cannot decode pixel data ({name}, {syntax}): {exc}") from exc


def _read_and_decode(path: Path, series_uid: str) -> list[_Slice]:
    """:func:`_read_file` in a reader process, with compressed frames decoded there too.

    A decoding error is not raised here: the frames go back undecoded and the caller
    meets the error again when it stacks them, after the geometry checks, as it would
    reading in one process. Decoded, the compressed bytes go back as pydicom's deferred
    value (read from the file again if asked for), not as a copy through the pipe.
    """
    slices = _read_file(path, series_uid)
    ds = slices[0].ds if slices else None
    if ds is not None and _is_compressed(_transfer_syntax(ds)):
        raw = ds.get_item(_PIXEL_DATA, keep_deferred=True)
        try:
            decoded = _decode_file(path, ds)
        except ImagingError:
            return slices
        if isinstance(raw, RawDataElement):
            ds[_PIXEL_DATA] = raw._replace(value=None)
        slices = [replace(s, decoded=decoded) for s in slices]
    return slices


# The reader processes, shared by all reads in this process (see _reader_processes).
_reader_pool: ProcessPoolExecutor | None = None
_reader_pool_lock = threading.Lock()


def _reader_processes() -> ProcessPoolExecutor:
    """The worker processes compressed series are decoded in, started on first use.

    They are kept for the life of this process: each is a new interpreter that imports
    numpy, pydicom and, as multiprocessing does in every process it starts, the main
    script (~1 s for the ``portal`` command), which a pool per series would pay on every
    read. They come from a forkserver, not a plain fork: the importing process runs
    threads (the job queue's), and forking a threaded process can deadlock.
    """
    global _reader_pool
    with _reader_pool_lock:
        if _reader_pool is None:
            context = multiprocessing.get_context("forkserver")
            context.set_forkserver_preload(list(_READER_PRELOAD))
            _reader_pool = ProcessPoolExecutor(_worker_count(_MAX_WORKERS), mp_context=context)
        return _reader_pool


def _discard_reader_processes(broken: ProcessPoolExecutor) -> None:
    global _reader_pool
    with _reader_pool_lock:
        if _reader_pool is broken:
            _reader_pool = None
    broken.shutdown(wait=False, cancel_futures=True)


def _read_in_processes(series: DicomSeries) -> list[list[_Slice]] | None:
    """:func:`_read_and_decode` of every file, in worker processes; None if not worth it."""
    paths = series.paths
    if _worker_count(len(paths)) < 2 or len(paths) < _PROCESS_READ_MIN_FILES:
        return None
    if multiprocessing.current_process().daemon:
        return None  # daemonic processes may not start children
    try:
        first = read_file_meta_info(paths[0]).get("TransferSyntaxUID")
    except READ_ERRORS:
        return None  # reading it again in this process reports what is wrong
    if not _is_compressed(UID(str(first)) if first else None):
        return None
    processes = _reader_processes()
    try:
        try:
            # Small chunks: one slow file at the end keeps only one process busy.
            results = processes.map(
                _read_and_decode, paths, itertools.repeat(series.series_uid), chunksize=2
            )
        except OSError as exc:  # no processes to be had (out of PIDs or memory)
            _discard_reader_processes(processes)
            logger.info("reading %d DICOM files in this process: %s", len(paths), exc)
            return None
        # The first file, in path order, that fails is reported; map's iterator then
        # cancels the files not started yet.
        return list(results)
    except BrokenProcessPool as exc:
        _discard_reader_processes(processes)
        raise ImagingError(
            paths[0], "a reader process died (out of memory, or a pixel decoder crashed)"
        ) from exc


def _integer_rescale(s: _Slice) -> tuple[int, int] | None:
    """Whole-number (slope, intercept) of the frame's modality rescale, (1, 0) for none.

    None for what needs the general path: a Modality LUT Sequence, a fractional or
    unreadable slope or intercept. Mirrors :func:`pydicom.pixels.apply_modality_lut`.
    """
    if s.frame.rescale is not None:
        slope, intercept = s.frame.rescale
    elif s.ds.get("ModalityLUTSequence"):
        return None
    elif "RescaleSlope" in s.ds and "RescaleIntercept" in s.ds:
        try:
            slope, intercept = float(s.ds.RescaleSlope), float(s.ds.RescaleIntercept)
        except (TypeError, ValueError):
            return None
    else:
        return 1, 0
    if not (float(slope).is_integer() and float(intercept).is_integer()):
        return None
    return int(slope), int(intercept)


def _fits(dtype: type[np.integer], low: int, high: int) -> bool:
    info = np.iinfo(dtype)
    return info.min <= low and high <= info.max


def _stored_frames(
    slices: Sequence[_Slice], rows: int, cols: int, threads: ThreadPoolExecutor, parts: int
) -> tuple[list[np.ndarray], np.ndarray | None, tuple[int, int] | None] | None:
    """The stored values of every frame in ``slices`` order, the array holding them all
    when there is one, and the range BitsStored allows them when known; None if they
    are not all 2-D integers of the declared size.

    Plain uncompressed frames of one stored dtype go into one ``(k, rows, cols)`` array,
    read in ``parts`` threads (file reads, shifts and copies run without the GIL); their
    values lie in BitsStored's range, as the unused bits were cleared or sign-extended.
    Other frames are decoded by pydicom, or were by the reader processes.
    """
    layouts = [_native_layout(s.ds) for s in slices]
    first = layouts[0]
    if first is not None and all(layout == first for layout in layouts):
        stored = np.empty((len(slices), rows, cols), dtype=first[0])

        def read(chunk: range) -> None:
            for k in chunk:
                _read_native(slices[k], first[1], stored[k])

        list(threads.map(read, _chunks(len(slices), parts)))
        bits = first[0].itemsize * 8 - first[1]
        signed = first[0].kind == "i"
        declared = (-(2 ** (bits - 1)), 2 ** (bits - 1) - 1) if signed else (0, 2**bits - 1)
        return list(stored), stored, declared
    decoded: dict[int, np.ndarray] = {}
    frames = []
    for s in slices:
        if id(s.ds) not in decoded:
            decoded[id(s.ds)] = s.decoded if s.decoded is not None else _decode_file(s.path, s.ds)
        array = decoded[id(s.ds)]
        if s.frame.index is not None and int(s.ds.get("NumberOfFrames", 1) or 1) > 1:
            array = array[s.frame.index]
        if array.shape != (rows, cols) or array.dtype.kind not in "iu":
            return None
        frames.append(array)
    return frames, None, None


def _stack_integer(
    slices: Sequence[_Slice], rescales: Sequence[tuple[int, int]], rows: int, cols: int
) -> np.ndarray | None:
    """Frames rescaled in integer arithmetic straight into one int16/int32 array.

    The dtype is :func:`_smallest_dtype`'s, chosen from each frame's stored minimum and
    maximum before anything is written, so no float64 copy of the series is made; when
    the stored values fit it as they are (12-bit CT into int16), the rescale is done in
    place. Returns None (general path) for frames that are not 2-D integers of the
    declared size, and for values beyond int32.
    """
    n, workers = len(slices), _worker_count(len(slices))
    if rows * cols == 0:
        return None  # pydicom's decoder says what is wrong with the file
    with ThreadPoolExecutor(workers) as threads:
        found = _stored_frames(slices, rows, cols, threads, workers)
        if found is None:
            return None
        frames, stored, declared = found
        parts = _chunks(n, workers)
        # When BitsStored's range already gives int16 after the rescale (12-bit CT), the
        # values would pick int16 too: no need to look at them.
        if declared is None or not _fits(
            np.int16,
            min(min(declared[0] * a + b, declared[1] * a + b) for a, b in rescales),
            max(max(declared[0] * a + b, declared[1] * a + b) for a, b in rescales),
        ):
            per_part = threads.map(lambda part: [_extremes(frames[k]) for k in part], parts)
            extremes = [e for part in per_part for e in part]
        else:
            extremes = [declared] * n
        pairs = list(zip(extremes, rescales, strict=True))
        if any(abs(a) * max(-lo, hi) >= 2**62 or abs(b) >= 2**62 for (lo, hi), (a, b) in pairs):
            return None  # int64 arithmetic could overflow (and nothing that big is int32)
        ends = [(lo * a + b, hi * a + b) for (lo, hi), (a, b) in pairs]
        low, high = min(min(e) for e in ends), max(max(e) for e in ends)
        fits = [t for t in (np.int16, np.int32) if _fits(t, low, high)]
        if not fits:
            return None
        kind = fits[0]
        # Slope 1 with stored values and intercept that fit the result: a copy (or
        # nothing, in place) and one addition, exact without widening.
        simple = [a == 1 and _fits(kind, *ext) and _fits(kind, b, b) for ext, (a, b) in pairs]
        same_size = stored is not None and stored.itemsize == np.dtype(kind).itemsize
        # (k, rows, cols) in memory is (i, j, k) in Fortran order: the transpose is free.
        if stored is not None and same_size and all(simple):
            in_place, out = True, stored.view(kind)
        else:
            in_place, out = False, np.empty((n, rows, cols), kind)

        def rescale(chunk: range) -> None:
            for k in chunk:
                slope, intercept = rescales[k]
                if simple[k]:
                    if not in_place:
                        np.copyto(out[k], frames[k], casting="unsafe")  # exact: values fit
                    if intercept:
                        np.add(out[k], intercept, out=out[k])
                else:
                    wide = frames[k].astype(np.int64) * slope + intercept
                    np.copyto(out[k], wide, casting="unsafe")  # exact: the results fit

        list(threads.map(rescale, parts))
    return out.transpose(2, 1, 0)


def _extremes(frame: np.ndarray) -> tuple[int, int]:
    return int(frame.min()), int(frame.max())


def _stack_monochrome(slices: Sequence[_Slice], rows: int, cols: int) -> np.ndarray:
    """The rescaled frames as ``(i, j, k)``: int16/int32 when whole numbers fit, else float32."""
    rescales = [_integer_rescale(s) for s in slices]
    if all(r is not None for r in rescales):
        data = _stack_integer(slices, cast(list[tuple[int, int]], rescales), rows, cols)
        if data is not None:
            return data
    # Stored frames are (rows, columns) = (j, i); stack along k then swap.
    stacked = np.stack([_pixels(s) for s in slices], axis=-1)
    return _smallest_dtype(np.ascontiguousarray(stacked.transpose(1, 0, 2)))


def read_dicom_series(series: DicomSeries, *, max_voxels: int = DEFAULT_MAX_VOXELS) -> Volume:
    """Read a DICOM image series (single-frame files or multi-frame) into a Volume.

    Parameters
    ----------
    series : DicomSeries
        As returned by :func:`find_dicom_series`; file order does not matter.
        The frames of multi-frame files are sorted like single-frame slices,
        by their PlanePositionSequence along the normal; a multi-frame file
        without any position becomes an axis-aligned stack at the origin
        spaced by SpacingBetweenSlices (as SimpleITK does, but SimpleITK
        ignores SpacingBetweenSlices and uses 1 mm).
    max_voxels : int
        Refuse series with more voxels, checked before decoding pixels.

    Returns
    -------
    Volume
        Voxels ``(i, j, k)`` = (column, row, slice) after the modality LUT
        (or the PixelValueTransformationSequence of each frame)
        (int16 or int32 when the rescaled values are whole, else float32;
        MONOCHROME1 is inverted so that bright means high), RAS+ affine.

    Raises
    ------
    ImagingError
        Naming the first offending file: unreadable file, pixel data in a
        transfer syntax that cannot be decoded (named in the message), missing
        geometry, size or orientation differing within the series, duplicate
        positions or slice gaps varying by more than 1 %.
    """
    slices = _read_slices(series)
    iop, pixel_spacing = _check_consistent(slices)
    # Cosines written with few digits are not quite unit vectors (0.9995 long in a
    # real CT): unnormalised, they would shrink the voxel size. GDCM and dcm2niix
    # normalise them too.
    lengths = np.linalg.norm(iop.reshape(2, 3), axis=1)
    if not np.all(np.abs(lengths - 1.0) < 0.01):
        raise ImagingError(
            slices[0].path, f"ImageOrientationPatient is not two unit vectors: {iop.tolist()}"
        )
    row_cos, col_cos = iop[:3] / lengths[0], iop[3:] / lengths[1]
    normal = np.cross(row_cos, col_cos)
    slices = sorted(slices, key=lambda s: float(s.position_lps @ normal))
    first = slices[0].ds
    rows, cols = int(first.Rows), int(first.Columns)
    n_voxels = rows * cols * len(slices)
    if n_voxels > max_voxels:
        raise ImagingError(
            slices[0].path, f"series has {n_voxels} voxels, more than the limit of {max_voxels}"
        )

    affine_lps = np.eye(4)
    # PixelSpacing is (between rows, between columns): the column gap goes
    # with the row direction cosine (axis i), the row gap with axis j.
    affine_lps[:3, 0] = row_cos * pixel_spacing[1]
    affine_lps[:3, 1] = col_cos * pixel_spacing[0]
    affine_lps[:3, 2] = _slice_step_lps(slices, normal)
    affine_lps[:3, 3] = slices[0].position_lps
    notes = _geometry_notes(slices, affine_lps[:3, 2], normal)

    if _is_colour(first):
        # Frames are (rows, columns, 3) = (j, i, rgb): stack along k, then (i, j, k, rgb).
        colour = np.stack([_pixels(s) for s in slices], axis=2)
        return Volume(
            np.ascontiguousarray(colour.transpose(1, 0, 2, 3)),
            LPS_TO_RAS @ affine_lps,
            str(first.get("Modality", "")) or series.modality,
            str(first.get("SeriesDescription", "")) or series.description,
            tuple(notes),
        )
    data = _stack_monochrome(slices, rows, cols)
    if str(first.get("PhotometricInterpretation", "")) == "MONOCHROME1":
        # Widen first: max + min - value can overflow int16.
        wide = data.astype(np.float64 if data.dtype.kind == "f" else np.int64)
        data = _smallest_dtype(wide.max() + wide.min() - wide)
    description = str(first.get("SeriesDescription", "")) or series.description
    modality = str(first.get("Modality", "")) or series.modality
    logger.debug("read DICOM series of %d frames, shape %s", len(slices), data.shape)
    return Volume(data, LPS_TO_RAS @ affine_lps, modality, description, tuple(notes))
