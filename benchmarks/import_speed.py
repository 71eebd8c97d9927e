"""Import speed: portal's readers and per-study import against plain nibabel / pydicom.

Run: ``python benchmarks/import_speed.py [--runs N]`` (default 7, at least 5).

The demo data (MNI152 1 mm T1 with its grey/white matter label map, as ``.nii.gz`` and as a
189-file DICOM series) is built in a temporary folder that is removed afterwards. Every
figure is the median of N timed runs after one untimed warm-up, measured in this process,
so the files are in the page cache for both sides.

Baselines, measured in the same run:

* NIfTI: ``np.asanyarray(nibabel.load(path).dataobj)``.
* DICOM: ``pydicom.dcmread`` of every file, sort by ImagePositionPatient along the slice
  normal, ``np.stack`` of the pixel arrays (no rescale, no checks).
* Import: the baseline read of the image plus ``nibabel`` of the label map; the import
  itself (``import_study`` into a fresh SQLite catalog per run) also hashes the files,
  checks geometry, builds previews, thumbnails and label surfaces and writes the store.
"""

from __future__ import annotations

import argparse
import gzip
import logging
import platform
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import nibabel as nib
import numpy as np
import pydicom

from portal.db import migrate
from portal.db.session import Database
from portal.imaging.demo import DemoStudy, build_demo_dataset
from portal.imaging.dicom import find_dicom_series, read_dicom_series
from portal.imaging.labels import default_label_table, labels_to_rgba
from portal.imaging.nifti import read_label_nifti, read_nifti
from portal.imaging.preview import build_preview, label_surfaces, thumbnail_png, vti_bytes
from portal.services.importer import ImportSettings, StudySource, import_study

PREVIEW_MAX_DIM = 192
MAX_VOXELS = 512 * 1024 * 1024


def median_ms(
    fn: Callable[[], object], runs: int, setup: Callable[[], None] | None = None
) -> float:
    """Median wall time of `fn` in ms over `runs` timed calls after one warm-up call."""
    times = []
    for i in range(runs + 1):
        if setup is not None:
            setup()
        start = time.perf_counter()
        fn()
        elapsed = (time.perf_counter() - start) * 1000
        if i:
            times.append(elapsed)
    return statistics.median(times)


def nibabel_load(path: Path) -> np.ndarray:
    return np.asanyarray(nib.load(path).dataobj)


def pydicom_stack(paths: list[Path]) -> np.ndarray:
    datasets = [pydicom.dcmread(p) for p in paths]
    orientation = np.asarray(datasets[0].ImageOrientationPatient, dtype=float)
    normal = np.cross(orientation[:3], orientation[3:])
    datasets.sort(key=lambda ds: float(np.dot(normal, np.asarray(ds.ImagePositionPatient, float))))
    return np.stack([ds.pixel_array for ds in datasets])


class FreshCatalog:
    """A new SQLite catalog (schema from Alembic) and store per run, made outside the timer."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.count = 0
        self.db: Database | None = None
        self.settings: ImportSettings | None = None

    def reset(self) -> None:
        self.close()
        self.count += 1
        folder = self.root / f"catalog-{self.count}"
        folder.mkdir(parents=True)
        url = f"sqlite:///{folder / 'portal.db'}"
        migrate.upgrade(url)
        self.db = Database(url)
        self.settings = ImportSettings(
            store_dir=folder / "store",
            preview_dir=folder / "previews",
            preview_max_dim=PREVIEW_MAX_DIM,
            max_voxels=MAX_VOXELS,
        )

    def close(self) -> None:
        if self.db is not None:
            self.db.dispose()
            self.db = None

    def run(self, source: StudySource) -> None:
        assert self.db is not None and self.settings is not None
        report = import_study(self.db, self.settings, "bench", source)
        if len(report.imported) != 1:
            raise RuntimeError(f"import of {source.name} failed: {report}")


def stages(image_path: Path, label_path: Path, runs: int) -> list[tuple[str, float]]:
    """Where the NIfTI import's time goes, stage by stage (same calls import_study makes)."""
    volume = read_nifti(image_path)
    labels, _ = read_label_nifti(label_path)
    preview = build_preview(volume, labels, max_dim=PREVIEW_MAX_DIM)
    table = default_label_table([int(v) for v in np.unique(labels) if v != 0], None)
    rgba = labels_to_rgba(preview.labels, table)
    return [
        ("read image (read_nifti)", median_ms(lambda: read_nifti(image_path), runs)),
        (
            "read label map (read_label_nifti)",
            median_ms(lambda: read_label_nifti(label_path), runs),
        ),
        ("label table (np.unique on full map)", median_ms(lambda: np.unique(labels), runs)),
        (
            "build_preview (reorient, stride, window)",
            median_ms(lambda: build_preview(volume, labels, max_dim=PREVIEW_MAX_DIM), runs),
        ),
        ("thumbnail_png", median_ms(lambda: thumbnail_png(preview, table), runs)),
        (
            "image + label .vti + gzip L6",
            median_ms(
                lambda: (
                    gzip.compress(
                        vti_bytes(preview.image_u8, preview.spacing_mm, preview.origin_mm), 6
                    ),
                    gzip.compress(vti_bytes(rgba, preview.spacing_mm, preview.origin_mm), 6),
                ),
                runs,
            ),
        ),
        ("label_surfaces", median_ms(lambda: label_surfaces(preview, table), runs)),
    ]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=7, help="timed runs per figure (>= 5)")
    args = parser.parse_args()
    runs = max(5, args.runs)
    logging.disable(logging.INFO)

    tmp = Path(tempfile.mkdtemp(prefix="portal-bench-import-"))
    catalog = FreshCatalog(tmp)
    try:
        demo = {d.name: d for d in build_demo_dataset(tmp / "demo-source")}
        nii = demo["MNI152 T1 1mm"]
        dcm = demo["MNI152 T1 1mm (DICOM)"]
        nii_path, label_path = nii.image_paths[0], nii.label_path
        assert label_path is not None
        dcm_paths = list(dcm.image_paths)
        series = find_dicom_series(dcm_paths)
        if len(series) != 1:
            raise RuntimeError(f"expected one DICOM series, found {len(series)}")

        # Same voxels on both sides (our DICOM reader gives i,j,k; the baseline k,rows,cols).
        ours_nii = read_nifti(nii_path).data
        base_nii = nibabel_load(nii_path)
        if ours_nii.shape != base_nii.shape or not np.array_equal(ours_nii, base_nii):
            raise RuntimeError("read_nifti and nibabel disagree")
        ours_dcm = read_dicom_series(series[0]).data
        base_dcm = pydicom_stack(dcm_paths)
        if ours_dcm.size != base_dcm.size:
            raise RuntimeError("read_dicom_series and pydicom disagree on the voxel count")

        def source(d: DemoStudy) -> StudySource:
            return StudySource(
                name=d.name,
                image_paths=tuple(d.image_paths),
                kind=str(d.kind),
                label_path=d.label_path,
                label_names=dict(d.label_names),
                modality=d.modality,
            )

        nii_source, dcm_source = source(nii), source(dcm)

        t_nib = median_ms(lambda: nibabel_load(nii_path), runs)
        t_nib_label = median_ms(lambda: (nibabel_load(nii_path), nibabel_load(label_path)), runs)
        t_pyd = median_ms(lambda: pydicom_stack(dcm_paths), runs)
        t_pyd_label = median_ms(lambda: (pydicom_stack(dcm_paths), nibabel_load(label_path)), runs)
        t_import_nii = median_ms(lambda: catalog.run(nii_source), runs, catalog.reset)
        rows = [
            (
                "read MNI 1mm .nii.gz",
                "read_nifti",
                median_ms(lambda: read_nifti(nii_path), runs),
                "nibabel dataobj",
                t_nib,
            ),
            (
                "read MNI 1mm DICOM (189 files)",
                "read_dicom_series",
                median_ms(lambda: read_dicom_series(series[0]), runs),
                "pydicom read+sort+stack",
                t_pyd,
            ),
            (
                "read MNI 1mm DICOM (189 files)",
                "find_dicom_series + read",
                median_ms(lambda: read_dicom_series(find_dicom_series(dcm_paths)[0]), runs),
                "pydicom read+sort+stack",
                t_pyd,
            ),
            (
                "import MNI 1mm .nii.gz + label",
                "import_study",
                t_import_nii,
                "nibabel image+label",
                t_nib_label,
            ),
            (
                "import MNI 1mm .nii.gz + label",
                "import_study",
                t_import_nii,
                "nibabel image only",
                t_nib,
            ),
            (
                "import MNI 1mm DICOM + label",
                "import_study",
                median_ms(lambda: catalog.run(dcm_source), runs, catalog.reset),
                "pydicom stack + nibabel label",
                t_pyd_label,
            ),
        ]
        stage_rows = stages(nii_path, label_path, runs)
    finally:
        catalog.close()
        shutil.rmtree(tmp, ignore_errors=True)

    print(f"# import speed: median of {runs} runs (after 1 warm-up), files in page cache")
    print(
        f"# python {platform.python_version()}, nibabel {nib.__version__}, "
        f"pydicom {pydicom.__version__}, numpy {np.__version__}, {platform.machine()}"
    )
    print(f"# image 197x233x189 int16 ({ours_nii.nbytes / 1e6:.1f} MB in memory)\n")
    header = ("task", "ours", "ours ms", "baseline", "base ms", "ours/base")
    widths = (32, 26, 8, 30, 8, 9)
    print("  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)))
    print("  ".join("-" * w for w in widths))
    for task, ours, t_ours, base, t_base in rows:
        cells = (task, ours, f"{t_ours:.1f}", base, f"{t_base:.1f}", f"{t_ours / t_base:.2f}x")
        print("  ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)))
    print("\n# where a NIfTI import's time goes (stages of import_study, median ms)")
    for name, t in stage_rows:
        print(f"{name:<44}{t:8.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
