"""Import speed: portal's readers and per-study import against plain nibabel / pydicom.

Run: ``python benchmarks/import_speed.py [--runs N] [--ct-only] [--quick]`` (runs: default
7, at least 5; ``--quick``: 3 runs and no JPEG 2000 series, a smoke test only). Needs the
test extras (SimpleITK): ``pip install -e ".[test]"``.

Two parts. The demo MNI152 study, below. Then a generated 512x512x300 int16 CT (see
:func:`phantoms.ct_phantom`) as ``.nii.gz`` and as 300-file DICOM series, uncompressed (12-bit,
RescaleIntercept -1024), JPEG-LS lossless and JPEG 2000 lossless, read by ``read_nifti``
and ``read_dicom_series`` against the fastest baselines we know of, measured in turns in
the same run: ISA-L's one-shot inflate of the whole ``.nii.gz`` plus ``np.frombuffer`` of
the voxels (a floor: no header checks, a read-only array), nibabel, SimpleITK's
ImageSeriesReader (GDCM, 2 threads here) and a serial pydicom read. Ratios there are
throughput ratios, ours over the baseline's (above 1: ours is faster). Last, the server
side of opening the imported CT in the viewer: the preview routes through a Flask test
client of ``create_app`` with a signed-in user, the Dash callback that builds the review
page with its pane, and the service it calls. The CT data is written to a temporary
folder that is removed afterwards.

MNI part: the demo data (MNI152 1 mm T1 with its grey/white matter label map, as
``.nii.gz`` and as a 189-file DICOM series) is built in a temporary folder that is removed
afterwards. Every figure is the median of N timed runs after one untimed warm-up,
measured in this process, so the files are in the page cache for both sides.

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
import gc
import gzip
import logging
import multiprocessing
import os
import platform
import shutil
import statistics
import struct
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from itertools import repeat
from pathlib import Path

import isal
import nibabel as nib
import numpy as np
import pydicom
import SimpleITK as sitk
from flask.testing import FlaskClient
from isal import igzip
from phantoms import CT_SHAPE, ct_affine, ct_phantom
from pydicom.uid import JPEG2000Lossless, JPEGLSLossless
from sqlalchemy import select

from portal.app import create_app
from portal.config import Settings
from portal.db import migrate
from portal.db.models import Role, User
from portal.db.session import Database
from portal.imaging.demo import DemoStudy, build_demo_dataset
from portal.imaging.dicom import find_dicom_series, read_dicom_series
from portal.imaging.dicom_write import write_dicom_series
from portal.imaging.labels import default_label_table, labels_to_rgba
from portal.imaging.nifti import read_label_nifti, read_nifti, write_nifti
from portal.imaging.preview import build_preview, label_surfaces, thumbnail_png, vti_bytes
from portal.imaging.volume import Volume
from portal.services import auth, viewer
from portal.services.discovery import StudySource, discover
from portal.services.importer import ImportSettings, import_study
from portal.services.originals import read_image
from portal.ui.ids import Shell

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


def mni_section(runs: int) -> None:
    """The demo MNI152 study: readers and whole imports against nibabel / pydicom."""
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
    print(f"# image 197x233x189 int16 ({ours_nii.nbytes / 1e6:.1f} MB in memory)")
    print("# ours/base = ours ms / baseline ms: a time ratio (below 1: ours is faster)\n")
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


# --- 512 x 512 x 300 CT: readers against the fastest baselines -----------------------

VIEWER_PASSWORD = "benchmark password"


def _as_12_bit_ct(path: Path) -> None:
    """Store HU + 1024 as unsigned 12-bit with RescaleIntercept -1024, as scanners do."""
    ds = pydicom.dcmread(path)
    ds.PixelRepresentation, ds.BitsStored, ds.HighBit = 0, 12, 11
    ds.RescaleSlope, ds.RescaleIntercept = "1", "-1024"
    ds.save_as(path, enforce_file_format=True)


def _compressed_copy(path: Path, syntax: str, folder: Path) -> None:
    ds = pydicom.dcmread(path)
    ds.compress(syntax)  # lossless: pyjpegls (JPEG-LS), pylibjpeg-openjpeg (JPEG 2000)
    ds.save_as(folder / path.name, enforce_file_format=True)


@dataclass
class CtData:
    hu: np.ndarray
    nifti: Path
    series: dict[str, Path]  # transfer syntax name -> folder of 300 files


def write_ct_data(folder: Path) -> CtData:
    """The phantom as .nii.gz (nibabel's default gzip level) and as three DICOM series."""
    hu = ct_phantom()
    affine = ct_affine()
    nifti = write_nifti(folder / "ct.nii.gz", hu, affine)
    stored = (hu.astype(np.int32) + 1024).astype(np.int16)
    paths = write_dicom_series(
        Volume(stored, affine, "CT", "benchmark CT"),
        folder / "uncompressed",
        patient_name="Benchmark^CT",
        study_description="benchmark",
        series_description="CT 512x512x300",
        modality="CT",
        uid_seed="portal-benchmark-ct",
    )
    series = {"uncompressed": folder / "uncompressed"}
    # spawn: the forkserver is left for read_dicom_series to start with its preloads.
    with ProcessPoolExecutor(2, mp_context=multiprocessing.get_context("spawn")) as pool:
        list(pool.map(_as_12_bit_ct, paths, chunksize=25))
        for name, syntax in (("JPEG-LS", JPEGLSLossless), ("JPEG 2000", JPEG2000Lossless)):
            target = folder / name.replace(" ", "")
            target.mkdir()
            list(pool.map(_compressed_copy, paths, repeat(syntax), repeat(target), chunksize=10))
            series[name] = target
    return CtData(hu, nifti, series)


def interleaved(fns: dict[str, Callable[[], object]], runs: int) -> dict[str, list[float]]:
    """Wall ms of each function, `runs` times after one warm-up, taking turns.

    Turns rotate so that a busy moment on this shared machine falls on every side alike;
    results are dropped and garbage collected outside the timer.
    """
    names = list(fns)
    times: dict[str, list[float]] = {name: [] for name in names}
    for turn in range(runs + 1):
        for name in names[turn % len(names) :] + names[: turn % len(names)]:
            gc.collect()
            start = time.perf_counter()
            result = fns[name]()
            elapsed = (time.perf_counter() - start) * 1000
            del result
            if turn:
                times[name].append(elapsed)
    return times


def sitk_read(files: Sequence[str]) -> object:
    reader = sitk.ImageSeriesReader()
    reader.SetFileNames(list(files))
    return reader.Execute()


def sitk_names_and_read(folder: Path) -> object:
    return sitk_read(sitk.ImageSeriesReader.GetGDCMSeriesFileNames(str(folder)))


def isal_floor(path: Path) -> np.ndarray:
    """ISA-L's one-shot inflate of the whole file and a view of the voxels after vox_offset."""
    raw = igzip.decompress(path.read_bytes())
    offset = int(struct.unpack_from("<f", raw, 108)[0])
    return np.frombuffer(raw, "<i2", count=int(np.prod(CT_SHAPE)), offset=offset).reshape(
        CT_SHAPE, order="F"
    )


def import_read_step(path: Path) -> object:
    """What an import does to read the image: discover() groups, read_image reads."""
    found = discover([path])
    if len(found.sources) != 1 or found.refused:
        raise RuntimeError(f"discover found {len(found.sources)} studies, refused {found.refused}")
    return read_image(found.sources[0], MAX_VOXELS)


@dataclass
class Row:
    task: str
    ours: str
    t_ours: list[float]
    base: str
    t_base: list[float]
    target: float | None = None  # throughput ratio ours / baseline to reach

    @property
    def ratio(self) -> float:
        """Throughput of ours over the baseline's (above 1: ours is faster)."""
        return statistics.median(self.t_base) / statistics.median(self.t_ours)

    def verdict(self) -> str:
        if self.target is None:
            return ""
        return f"target >= {self.target:g}: {'met' if self.ratio >= self.target else 'NOT met'}"


def _spread(times: list[float]) -> str:
    return f"{statistics.median(times):.0f} ({min(times):.0f}-{max(times):.0f})"


def ct_reader_rows(data: CtData, runs: int, quick: bool) -> tuple[list[Row], list[str]]:
    notes = []
    nibabel_ct = nibabel_load(data.nifti)
    if not (
        np.array_equal(read_nifti(data.nifti).data, data.hu) and np.array_equal(nibabel_ct, data.hu)
    ):
        raise RuntimeError("read_nifti or nibabel disagree with the phantom")
    if not np.array_equal(isal_floor(data.nifti), data.hu):
        raise RuntimeError("the ISA-L floor reads other voxels")
    t = interleaved(
        {
            "isal": lambda: isal_floor(data.nifti),
            "ours": lambda: read_nifti(data.nifti),
            "nibabel": lambda: nibabel_load(data.nifti),
            "import": lambda: import_read_step(data.nifti),
        },
        runs,
    )
    rows = [
        Row(
            "read CT .nii.gz", "read_nifti", t["ours"], "ISA-L inflate + frombuffer", t["isal"], 0.9
        ),
        Row("read CT .nii.gz", "read_nifti", t["ours"], "nibabel dataobj", t["nibabel"]),
        Row(
            "import read step, .nii.gz",
            "discover + read_image",
            t["import"],
            "ISA-L inflate + frombuffer",
            t["isal"],
            0.9,
        ),
    ]
    for name, folder in data.series.items():
        if quick and name == "JPEG 2000":
            continue
        (series,) = find_dicom_series([folder])
        files = sitk.ImageSeriesReader.GetGDCMSeriesFileNames(str(folder))
        ours = read_dicom_series(series).data
        if not np.array_equal(ours, data.hu):
            raise RuntimeError(f"read_dicom_series gives other voxels for the {name} series")
        try:
            image = sitk_read(files)
            decoded = sitk.GetArrayFromImage(image).transpose(2, 1, 0)
        except RuntimeError as exc:
            notes.append(f"SimpleITK cannot read the {name} series: {exc}")
            decoded = None
        if decoded is not None and not np.array_equal(decoded, data.hu):
            raise RuntimeError(f"SimpleITK gives other voxels for the {name} series")
        if decoded is not None:
            notes.append(f"SimpleITK decodes the {name} series (voxels equal to ours)")
        fns: dict[str, Callable[[], object]] = {"ours": lambda s=series: read_dicom_series(s)}
        if decoded is not None:
            fns["sitk"] = lambda f=files: sitk_read(f)
        if name == "uncompressed":
            fns["pydicom"] = lambda f=series.paths: pydicom_stack(f)
            fns["import"] = lambda d=folder: import_read_step(d)
            fns["sitk names"] = lambda d=folder: sitk_names_and_read(d)
        t = interleaved(fns, runs if name != "JPEG 2000" else max(3, runs // 2))
        label = f"read CT DICOM, {name} (300 files)"
        if "sitk" in t:
            rows.append(
                Row(
                    label,
                    "read_dicom_series",
                    t["ours"],
                    "SimpleITK ImageSeriesReader",
                    t["sitk"],
                    1.0,
                )
            )
        if "pydicom" in t:
            rows.append(
                Row(label, "read_dicom_series", t["ours"], "pydicom read+sort+stack", t["pydicom"])
            )
            rows.append(
                Row(
                    f"import read step, DICOM {name}",
                    "discover + read_image",
                    t["import"],
                    "SimpleITK file names + read",
                    t["sitk names"],
                    1.0,
                )
            )
    return rows, notes


def _login(client: FlaskClient, username: str, password: str) -> None:
    client.get("/login")
    with client.session_transaction() as session:
        token = session["csrf"]
    form = {"username": username, "password": password, "csrf_token": token}
    if client.post("/login", data=form).status_code != 302:
        raise RuntimeError("benchmark user could not log in")


def viewer_rows(data: CtData, root: Path, repeats: int) -> list[tuple[str, list[float]]]:
    """Server-side ms to open the imported CT for the viewer, `repeats` times each."""
    settings = Settings(data_dir=root / "app", secret_key="benchmark", admin_password="")
    settings.data_dir.mkdir(parents=True)
    migrate.upgrade(settings.resolved_database_url)
    db = Database(settings.resolved_database_url)
    try:
        source = StudySource(name="CT 512", image_paths=(data.nifti,), kind="nifti", modality="CT")
        report = import_study(db, ImportSettings.of(settings), "benchmark", source)
        (study_id,) = report.imported
        with db.session() as s:
            auth.create_user(s, "viewer", VIEWER_PASSWORD, Role.ADMIN)
        app = create_app(settings)
        app.config["TESTING"] = True
        client = app.test_client()
        _login(client, "viewer", VIEWER_PASSWORD)
        base = f"/api/v1/studies/{study_id}"

        def get(url: str, encoding: str = "gzip") -> bytes:
            response = client.get(url, headers={"Accept-Encoding": encoding}, buffered=True)
            if response.status_code != 200:
                raise RuntimeError(f"GET {url}: {response.status_code}")
            return response.data

        page = {
            "output": f"..{Shell.PAGE}.children...{Shell.NAV}.children..",
            "outputs": [
                {"id": str(Shell.PAGE), "property": "children"},
                {"id": str(Shell.NAV), "property": "children"},
            ],
            "inputs": [
                {"id": str(Shell.URL), "property": "pathname", "value": "/review"},
                {"id": str(Shell.URL), "property": "search", "value": f"?studies={study_id}"},
            ],
            "changedPropIds": [f"{Shell.URL}.pathname"],
            "state": [],
        }

        def review_page() -> bytes:
            response = client.post("/_dash-update-component", json=page)
            if response.status_code != 200 or b"image.vti" not in response.data:
                raise RuntimeError(f"review page callback: {response.status_code}")
            return response.data

        with db.session() as s:
            who = auth.Principal.of(s.scalar(select(User).where(User.username == "viewer")))

        def pane_data() -> object:
            with db.session() as s:
                return viewer.pane_data(s, who, settings.preview_dir, study_id)

        measured = {
            "GET preview/image.vti (stored .vti.gz, Content-Encoding gzip)": lambda: get(
                f"{base}/preview/image.vti"
            ),
            "GET preview/thumb.png": lambda: get(f"{base}/preview/thumb.png"),
            "GET /api/v1/studies/<id> (detail JSON)": lambda: get(base),
            "Dash callback: /review page with its pane": review_page,
            "viewer.pane_data (service the callback calls)": pane_data,
        }
        rows = []
        for name, fn in measured.items():
            fn()
            times = []
            for _ in range(repeats):
                start = time.perf_counter()
                fn()
                times.append((time.perf_counter() - start) * 1000)
            rows.append((name, times))
        return rows
    finally:
        db.dispose()


def ct_section(runs: int, quick: bool) -> None:
    """512x512x300 CT: read_nifti against ISA-L, read_dicom_series against SimpleITK."""
    tmp = Path(tempfile.mkdtemp(prefix="portal-bench-ct-"))
    try:
        started = time.perf_counter()
        data = write_ct_data(tmp)
        made_s = time.perf_counter() - started
        sizes = {"nii.gz": data.nifti.stat().st_size}
        sizes |= {n: sum(f.stat().st_size for f in d.iterdir()) for n, d in data.series.items()}
        (first,) = find_dicom_series([data.series["JPEG-LS"]])
        start = time.perf_counter()
        read_dicom_series(first)  # the first compressed read starts the reader processes' server
        cold_ms = (time.perf_counter() - start) * 1000
        rows, notes = ct_reader_rows(data, runs, quick)
        viewer = viewer_rows(data, tmp, repeats=30)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"\n# CT 512x512x300 int16 ({data.hu.nbytes / 1e6:.0f} MB): median of {runs} runs")
    print("# (JPEG 2000: half as many, at least 3), turns interleaved, files in page cache")
    threads = sitk.ProcessObject.GetGlobalDefaultNumberOfThreads()
    print(
        f"# SimpleITK {sitk.Version.VersionString()} ({threads} threads), isal {isal.__version__},"
        f" {os.cpu_count()} cores, 1-min load {load:.1f}"
    )
    print(
        "# files: "
        + ", ".join(f"{name} {size / 1e6:.0f} MB" for name, size in sizes.items())
        + f" (written in {made_s:.0f} s)"
    )
    print("# ratio = throughput of ours / the baseline's = baseline ms / ours ms")
    print("# (above 1: ours is faster)\n")
    header = ("task", "ours", "ours ms (min-max)", "baseline", "base ms (min-max)", "ratio", "")
    widths = (40, 22, 17, 28, 17, 6, 22)
    print("  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)))
    print("  ".join("-" * w for w in widths))
    for row in rows:
        cells = (
            row.task,
            row.ours,
            _spread(row.t_ours),
            row.base,
            _spread(row.t_base),
            f"{row.ratio:.2f}x",
            row.verdict(),
        )
        print("  ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)))
    print(f"\n# first compressed read in this process: {cold_ms:.0f} ms (includes starting the")
    print("# reader processes, once per process; later reads reuse them)")
    for note in notes:
        print(f"# {note}")
    print("\n# opening the imported CT for the viewer, server side, median of 30 (target <= 10 ms)")
    for name, times in viewer:
        median = statistics.median(times)
        verdict = "met" if median <= 10 else "NOT met"
        print(f"{name:<64}{median:7.2f} ms (max {max(times):.1f})  {verdict}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=7, help="timed runs per figure (>= 5)")
    parser.add_argument("--ct-only", action="store_true", help="only the 512x512x300 CT part")
    parser.add_argument(
        "--quick", action="store_true", help="3 runs, no JPEG 2000 series: a smoke test only"
    )
    args = parser.parse_args()
    runs = 3 if args.quick else max(5, args.runs)
    logging.disable(logging.INFO)
    if not args.ct_only:
        mni_section(runs)
    ct_section(runs, args.quick)
    return 0


if __name__ == "__main__":
    sys.exit(main())
