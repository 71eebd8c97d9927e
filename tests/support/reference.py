"""Independent readers and a corpus of real images to check portal's readers against.

Readers return voxels in ``(i, j, k)`` order with a 4x4 voxel-to-RAS+ affine in mm, the
convention of :mod:`portal.imaging.volume`:

* :func:`read_sitk_series` - SimpleITK's ``ImageSeriesReader`` (GDCM) on the files that
  ``GetGDCMSeriesFileNames`` lists for a folder: its LPS direction, origin and spacing
  become a RAS affine and its ``(k, j, i)`` array is transposed to ``(i, j, k)``.
* :func:`run_dcm2niix` and :func:`read_dcm2niix` - the dcm2niix converter, its NIfTI
  read with nibabel. dcm2niix reorders voxels (it flips the row order, may reverse the
  slices), so compare it in world space with :func:`world_match`.
* :func:`modality_lut_volume` - pydicom's ``apply_modality_lut`` frame by frame, each
  frame put at the slice its ImagePositionPatient lands on.

A missing tool raises (``ImportError``, ``RuntimeError``): CI installs both, so a test
using them fails rather than skips.

The corpus (:func:`real_dicom_cases`, :func:`generated_dicom_cases`,
:func:`nibabel_reference_files`) is built from installed packages only: pydicom's test
files, pydicom-data, deid-data, nibabel's test data and nilearn's MNI152 templates.
"""

from __future__ import annotations

import random
import shutil
import subprocess
import warnings
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import nibabel as nib
import numpy as np
import pydicom
import SimpleITK as sitk
from pydicom.dataset import Dataset
from pydicom.pixels import apply_modality_lut

from portal.imaging.dicom import find_dicom_series
from portal.imaging.dicom_write import write_dicom_series
from portal.imaging.volume import LPS_TO_RAS, Volume

__all__ = [
    "DicomCase",
    "Dcm2niixImage",
    "WorldMatch",
    "generated_dicom_cases",
    "has_patient_geometry",
    "mni_crop",
    "modality_lut_volume",
    "nibabel_reference_files",
    "read_dcm2niix",
    "read_sitk_series",
    "real_dicom_cases",
    "reslice",
    "run_dcm2niix",
    "world_match",
]

ATOL_MM = 1e-4


# --- reference readers ------------------------------------------------------------


def read_sitk_series(folder: Path) -> tuple[np.ndarray, np.ndarray]:
    """The one series in ``folder`` as SimpleITK reads it: ``(data_ijk, affine_ras)``.

    Colour series come back ``(i, j, k, components)``. A multi-frame file is read by
    ``ImageSeriesReader`` as a 4-D image with one entry along the fourth axis; that axis
    is dropped.
    """
    reader = sitk.ImageSeriesReader()
    names = reader.GetGDCMSeriesFileNames(str(folder))
    if not names:
        raise RuntimeError(f"SimpleITK finds no DICOM series in {folder}")
    reader.SetFileNames(names)
    image = reader.Execute()
    if image.GetDimension() == 4 and image.GetSize()[3] == 1:
        image = image[:, :, :, 0]
    if image.GetDimension() != 3:
        raise RuntimeError(f"SimpleITK read a {image.GetDimension()}-D image from {folder}")
    direction = np.array(image.GetDirection(), dtype=np.float64).reshape(3, 3)
    affine_lps = np.eye(4)
    affine_lps[:3, :3] = direction * np.array(image.GetSpacing())
    affine_lps[:3, 3] = image.GetOrigin()
    array = sitk.GetArrayFromImage(image)  # (k, j, i[, c])
    axes = (2, 1, 0, 3) if array.ndim == 4 else (2, 1, 0)
    return np.ascontiguousarray(array.transpose(axes)), LPS_TO_RAS @ affine_lps


def run_dcm2niix(folder: Path, out_dir: Path) -> Path:
    """Convert the one series in ``folder`` with dcm2niix; return its image NIfTI.

    Overlays that dcm2niix writes beside the image (``*_ROI1.nii``) are ignored.
    """
    exe = shutil.which("dcm2niix")
    if exe is None:
        raise RuntimeError("dcm2niix is not on PATH (pip install dcm2niix)")
    out_dir.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(
        [exe, "-z", "n", "-b", "n", "-f", "%s", "-o", str(out_dir), str(folder)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    written = sorted(p for p in out_dir.glob("*.nii") if "_ROI" not in p.name)
    if len(written) != 1:
        raise RuntimeError(
            f"dcm2niix wrote {[p.name for p in written]} for {folder} "
            f"(exit {done.returncode}): {done.stdout[-400:]}{done.stderr[-400:]}"
        )
    return written[0]


@dataclass(frozen=True)
class Dcm2niixImage:
    """A dcm2niix NIfTI: stored values (first volume), scl_slope/scl_inter, affine."""

    stored: np.ndarray
    slope: float
    inter: float
    affine_ras: np.ndarray


def read_dcm2niix(path: Path) -> Dcm2niixImage:
    img = nib.load(path)
    stored = np.asanyarray(img.dataobj.get_unscaled())
    if stored.dtype.names:  # RGB24 NIfTI: a structured array
        stored = np.stack([stored[name] for name in stored.dtype.names], axis=-1)
    elif stored.ndim > 3:
        stored = stored.reshape(*stored.shape[:3], -1)[..., 0]
    return Dcm2niixImage(
        stored, float(img.dataobj.slope), float(img.dataobj.inter), np.asarray(img.affine)
    )


# --- comparison in world space ---------------------------------------------------


@dataclass(frozen=True)
class WorldMatch:
    """How the voxels of a reference grid land on ours.

    ``index_map`` is the 4x4 integer matrix from a reference voxel index to ours
    (a signed permutation plus a shift) and ``affine_error_mm`` the largest difference
    between the reference affine and ours mapped through it.
    """

    index_map: np.ndarray
    affine_error_mm: float

    def take(self, ours: np.ndarray, ref_shape: tuple[int, ...]) -> np.ndarray:
        """Our voxel values at the reference voxels, in reference order and shape."""
        grid = np.indices(ref_shape[:3]).reshape(3, -1)
        index = self.index_map[:3, :3] @ grid + self.index_map[:3, 3:4]
        for axis in range(3):
            if index[axis].min() < 0 or index[axis].max() >= ours.shape[axis]:
                raise AssertionError(f"reference voxels fall outside our grid on axis {axis}")
        values = ours[index[0], index[1], index[2]]
        return values.reshape(*ref_shape[:3], *ours.shape[3:])


def world_match(
    ours_affine: np.ndarray,
    ours_shape: tuple[int, ...],
    ref_affine: np.ndarray,
    ref_shape: tuple[int, ...],
) -> WorldMatch:
    """Match two grids voxel for voxel, or raise ``AssertionError`` saying why not.

    Both grids must hold the same voxel centres (to 1e-4 mm), possibly in another axis
    order or direction. For a single slice only the in-plane axes and the origin place
    voxels, so the slice axis is not compared (readers differ on its length by
    convention: SliceThickness, SpacingBetweenSlices or 1 mm).
    """
    ours_shape, ref_shape = tuple(ours_shape[:3]), tuple(ref_shape[:3])
    if sorted(ours_shape) != sorted(ref_shape):
        raise AssertionError(f"shape {ours_shape} vs reference {ref_shape}")
    single = ref_shape[2] == 1 and ours_shape[2] == 1
    used = [0, 1, 3] if single else [0, 1, 2, 3]
    ours = np.asarray(ours_affine, np.float64).copy()
    if single:  # any slice axis off the plane will do to invert the in-plane part
        ours[:3, 2] = np.cross(ours[:3, 0], ours[:3, 1])
    exact = np.linalg.solve(ours, np.asarray(ref_affine, np.float64))
    index_map = np.rint(exact).astype(np.int64)
    if single:
        index_map[:3, 2] = 0
        index_map[2, 2] = 1
    rotation = index_map[:3, :3]
    if not (
        np.all(np.abs(rotation).sum(axis=0) == 1) and np.all(np.abs(rotation).sum(axis=1) == 1)
    ):
        raise AssertionError(f"voxel axes do not correspond: ours^-1 @ reference =\n{exact}")
    mapped = ours_affine @ index_map
    error = float(np.max(np.abs(mapped[:3, used] - ref_affine[:3, used])))
    if error > ATOL_MM:
        raise AssertionError(
            f"affines differ by {error:.3g} mm\nours (mapped):\n{mapped}\nreference:\n{ref_affine}"
        )
    permuted = tuple(ours_shape[int(np.argmax(np.abs(rotation[:, a])))] for a in range(3))
    if permuted != ref_shape:
        raise AssertionError(f"shape {ours_shape} vs reference {ref_shape} after reordering")
    return WorldMatch(index_map, error)


# --- pydicom's modality LUT, frame by frame ----------------------------------------


def has_patient_geometry(ds: Dataset) -> bool:
    """True when the file places its frames in the patient (IPP or a plane position)."""
    if "ImagePositionPatient" in ds:
        return True
    for groups in ("SharedFunctionalGroupsSequence", "PerFrameFunctionalGroupsSequence"):
        for item in ds.get(groups) or []:
            if item.get("PlanePositionSequence"):
                return True
    return False


def _frame_items(ds: Dataset, frame: int, sequence: str) -> Dataset | None:
    for groups in ("PerFrameFunctionalGroupsSequence", "SharedFunctionalGroupsSequence"):
        items = list(ds.get(groups) or [])
        if not items:
            continue
        item = items[frame] if groups.startswith("PerFrame") else items[0]
        seq = item.get(sequence)
        if seq:
            return seq[0]
    return None


def modality_lut_volume(
    paths: list[Path], affine_ras: np.ndarray, shape: tuple[int, int, int]
) -> np.ndarray:
    """Every frame through pydicom's ``apply_modality_lut``, as an ``(i, j, k)`` volume.

    Each frame goes to the slice ``k`` its position lands on under ``affine_ras``
    (which must put it on a whole slice with ``i = j = 0``); files without patient
    geometry keep their frame order. The rescale of an enhanced multi-frame file comes
    from its PixelValueTransformationSequence. MONOCHROME1 is inverted over the volume
    (``max + min - value``), as portal documents. Float64, or the LUT's integer dtype.
    """
    inverse = np.linalg.inv(affine_ras)
    slices: dict[int, np.ndarray] = {}
    for path in paths:
        ds = pydicom.dcmread(path)
        frames = ds.pixel_array
        n_frames = int(ds.get("NumberOfFrames", 1) or 1)
        if n_frames == 1:
            frames = frames[np.newaxis]
        for n in range(n_frames):
            frame = frames[n]
            rescale = _frame_items(ds, n, "PixelValueTransformationSequence")
            values = apply_modality_lut(frame, rescale if rescale is not None else ds)
            position = _frame_items(ds, n, "PlanePositionSequence") or ds
            if "ImagePositionPatient" in position:
                lps = np.array([float(v) for v in position.ImagePositionPatient])
                ijk = inverse @ np.array([-lps[0], -lps[1], lps[2], 1.0])
                k = round(float(ijk[2]))
                if np.max(np.abs(ijk[:3] - [0, 0, k])) > 1e-3:
                    raise AssertionError(f"{path.name} frame {n} is not on a slice: {ijk[:3]}")
            else:
                k = len(slices)
            if k in slices:
                raise AssertionError(f"two frames on slice {k}")
            slices[k] = np.asarray(values).T  # (rows, columns) = (j, i)
    if sorted(slices) != list(range(shape[2])):
        raise AssertionError(f"frames land on slices {sorted(slices)}, expected {shape[2]}")
    volume = np.stack([slices[k] for k in range(shape[2])], axis=-1)
    if str(pydicom.dcmread(paths[0], stop_before_pixels=True).PhotometricInterpretation) == (
        "MONOCHROME1"
    ):
        wide = volume.astype(np.float64)
        volume = wide.max() + wide.min() - wide
    return volume


# --- the real DICOM corpus ---------------------------------------------------------


@dataclass(frozen=True)
class DicomCase:
    """One DICOM series, alone in its folder (a copy) so every reader sees only it."""

    name: str
    folder: Path
    paths: tuple[Path, ...]

    @cached_property
    def header(self) -> Dataset:
        """The first file's header (pixel data not read)."""
        return pydicom.dcmread(self.paths[0], stop_before_pixels=True)


def _dicom_roots() -> dict[str, Path]:
    import deid_data
    from pydicom.data import get_testdata_file

    roots = {
        "pydicom": Path(pydicom.__file__).parent / "data" / "test_files",
        "deid-data": Path(deid_data.__file__).parent / "data",
    }
    external = get_testdata_file("693_UNCI.dcm", download=False)  # pydicom-data
    if external is not None:
        roots["pydicom-data"] = Path(str(external)).parent
    return roots


def _positions_repeat(paths: list[Path]) -> bool:
    """True when the files are one image in several encodings (same place or no place)."""
    seen = set()
    for path in paths:
        ds = pydicom.dcmread(path, stop_before_pixels=True)
        key = tuple(str(v) for v in ds.get("ImagePositionPatient") or ["?"])
        if key in seen or key == ("?",):
            return True
        seen.add(key)
    return False


def real_dicom_cases(work_dir: Path) -> list[DicomCase]:
    """Every image series of the installed DICOM test data, each copied to its own folder.

    Files are grouped by :func:`~portal.imaging.dicom.find_dicom_series`. pydicom's test
    files reuse one SeriesInstanceUID for the same image in several transfer syntaxes
    (``MR_small*.dcm``, ``693_*.dcm``, ...); such a group, whose files repeat a position
    or have none, is split into one single-file series per file. Which of these
    SimpleITK reads as one volume is for the caller to find out while it compares.
    """
    roots = _dicom_roots()
    files = [
        p
        for root in roots.values()
        for p in sorted(root.rglob("*"))
        if p.is_file() and p.suffix not in {".py", ".pyc", ".md", ".zip", ".txt", ".json"}
    ]

    def name_of(path: Path) -> str:
        for label, root in roots.items():
            if path.is_relative_to(root):
                return f"{label}/{path.relative_to(root).as_posix()}"
        return path.name

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # pydicom on non-conformant headers
        groups: list[tuple[str, list[Path]]] = []
        for series in find_dicom_series(files):
            if len(series.paths) > 1 and not _positions_repeat(series.paths):
                groups.append((name_of(series.paths[0].parent), series.paths))
            else:
                groups += [(name_of(p), [p]) for p in series.paths]
    names = [name for name, _ in groups]
    cases = []
    for n, (name, paths) in enumerate(groups):
        if names.count(name) > 1:
            name = f"{name}/{paths[0].name}"
        folder = work_dir / f"{n:03d}"
        folder.mkdir(parents=True)
        copies = tuple(Path(shutil.copy2(p, folder / p.name)) for p in paths)
        cases.append(DicomCase(name, folder, copies))
    return cases


# --- generated series from the real MNI152 template -----------------------------


def mni_crop() -> Volume:
    """A 40 x 36 x 12 block of nilearn's MNI152 T1 (1 mm) as int16 0..255, RAS."""
    from nilearn import datasets

    template = datasets.load_mni152_template(resolution=1)
    image = np.rint(template.get_fdata(dtype=np.float32) * 255).astype(np.int16)
    start = np.array([78, 98, 88])
    affine = np.asarray(template.affine, dtype=np.float64).copy()
    affine[:3, 3] = (affine @ (*start, 1))[:3]
    data = image[78:118, 98:134, 88:100]
    return Volume(np.ascontiguousarray(data), affine, "MR", "MNI152 crop")


def reslice(volume: Volume, axcodes: str) -> Volume:
    """The same voxels in another axis order (no resampling), e.g. ``"PIR"`` (sagittal)."""
    ornt = nib.orientations.ornt_transform(
        nib.orientations.io_orientation(volume.affine_ras),
        nib.orientations.axcodes2ornt(tuple(axcodes)),
    )
    data = nib.orientations.apply_orientation(volume.data, ornt)
    affine = volume.affine_ras @ nib.orientations.inv_ornt_aff(ornt, volume.data.shape)
    return Volume(np.ascontiguousarray(data), affine, volume.modality, axcodes)


def _rotation(axis: int, degrees: float) -> np.ndarray:
    c, s = np.cos(np.deg2rad(degrees)), np.sin(np.deg2rad(degrees))
    a, b = [n for n in range(3) if n != axis]
    r = np.eye(3)
    r[a, a], r[a, b], r[b, a], r[b, b] = c, -s, s, c
    return r


def _write(volume: Volume, folder: Path, modality: str = "MR") -> list[Path]:
    return write_dicom_series(
        volume,
        folder,
        patient_name="Reference^Geometry",
        study_description="geometry reference",
        series_description=volume.description,
        modality=modality,
        uid_seed=f"geometry-reference/{folder.name}",
    )


#: HU = 2 * stored - 1024, written into the CT-like series.
CT_SLOPE, CT_INTERCEPT = 2, -1024


def generated_dicom_cases(work_dir: Path, crop: Volume) -> dict[str, tuple[DicomCase, Volume]]:
    """Series written from ``crop``, each with the volume it must read back as.

    Kinds: axial, oblique (20 degrees about two axes), left-handed (LAS voxel order),
    shuffled (the axial files copied under random names, in random order), one and two
    slices, CT-like (int16 stored, RescaleSlope 2, RescaleIntercept -1024), sagittal and
    coronal acquisition planes.
    """
    affine = crop.affine_ras
    oblique = affine.copy()
    oblique[:3, :3] = _rotation(0, 20.0) @ _rotation(1, 20.0) @ affine[:3, :3]
    n_i = crop.shape[0]
    flip_i = np.array([[-1.0, 0, 0, n_i - 1], [0, 1, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1]])
    volumes = {
        "axial": crop,
        "oblique": Volume(crop.data, oblique, "MR", "oblique"),
        "left-handed": Volume(crop.data[::-1].copy(), affine @ flip_i, "MR", "left-handed"),
        "single-slice": Volume(crop.data[:, :, 5:6].copy(), affine, "MR", "single"),
        "two-slice": Volume(crop.data[:, :, 5:7].copy(), affine, "MR", "two"),
        "sagittal": reslice(crop, "PIR"),
        "coronal": reslice(crop, "LIP"),
    }
    cases: dict[str, tuple[DicomCase, Volume]] = {}
    for kind, volume in volumes.items():
        folder = work_dir / kind
        paths = _write(volume, folder)
        cases[kind] = (DicomCase(f"generated/{kind}", folder, tuple(paths)), volume)

    axial_case = cases["axial"][0]
    shuffled = work_dir / "shuffled"
    shuffled.mkdir()
    rng = random.Random(20240607)
    order = list(axial_case.paths)
    rng.shuffle(order)
    copies = tuple(Path(shutil.copy2(p, shuffled / f"{rng.getrandbits(64):016x}")) for p in order)
    cases["shuffled"] = (DicomCase("generated/shuffled", shuffled, copies), crop)

    ct_folder = work_dir / "ct"
    paths = _write(Volume(crop.data, affine, "CT", "CT-like"), ct_folder, modality="CT")
    for path in paths:
        ds = pydicom.dcmread(path)
        ds.RescaleSlope, ds.RescaleIntercept, ds.RescaleType = CT_SLOPE, CT_INTERCEPT, "HU"
        ds.save_as(path, enforce_file_format=True)
    hu = crop.data.astype(np.int16) * CT_SLOPE + CT_INTERCEPT
    cases["ct-rescaled"] = (DicomCase("generated/ct", ct_folder, tuple(paths)), Volume(hu, affine))
    return cases


# --- NIfTI and MGZ files ----------------------------------------------------------


def nibabel_reference_files(work_dir: Path) -> list[Path]:
    """nibabel's and nilearn's NIfTI/MGZ test files, plus the MNI152 templates and
    tissue maps at 1 and 2 mm as nilearn loads them (saved as NIfTI)."""
    from nilearn import datasets

    nilearn_data = Path(datasets.__file__).parent / "data"
    nibabel_data = Path(nib.__file__).parent / "tests" / "data"
    files = sorted(
        p
        for folder in (nibabel_data, nilearn_data)
        for p in folder.rglob("*")
        if p.name.endswith((".nii", ".nii.gz", ".mgz", ".mgh"))
    )
    for resolution in (1, 2):
        for name, load in [
            ("t1", datasets.load_mni152_template),
            ("gm", datasets.load_mni152_gm_template),
            ("wm", datasets.load_mni152_wm_template),
        ]:
            path = work_dir / f"mni152_{name}_{resolution}mm.nii.gz"
            nib.save(load(resolution=resolution), path)
            files.append(path)
    return files
