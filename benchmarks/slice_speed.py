"""Full-resolution slice routes: first request (keeps the canonical volume) and warm ones.

Run: ``python benchmarks/slice_speed.py [--runs N]`` (default 15). Imports three studies
into a temporary catalog: the demo "CT 512 (pydicom-data)" (one 512x512 DICOM slice),
the demo "MNI152 T1 1mm" (NIfTI 197x233x189, tissue labels) and a generated
512x512x300 CT (:func:`benchmarks.import_speed.ct_phantom`) written as a 300-file DICOM
series with a thresholded label map. Then, through a Flask test client of ``create_app``
with a signed-in user and ``Accept-Encoding: gzip``:

* first: the first values slice of a study (reads the stored original, writes
  ``full/values.npy``) and its first label slice (writes ``full/labels-<id>.npy``);
* warm: median ms of N requests per axis and kind at varying indices (memory map, cut,
  ``.vti``, gzip level 1), with the gzip share measured on the same bytes.

The temporary folder is removed afterwards.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import isal.igzip
import nibabel as nib
import numpy as np
from sqlalchemy import select

from portal.app import create_app
from portal.config import Settings
from portal.db import migrate
from portal.db.models import Role, StudyView, User
from portal.imaging.demo import build_demo_dataset
from portal.imaging.dicom_write import write_dicom_series
from portal.imaging.nifti import write_nifti
from portal.imaging.volume import Volume
from portal.services import audit, auth, slices
from portal.services.discovery import StudySource
from portal.services.importer import ImportSettings, import_sources

PASSWORD = "benchmark-password-1"
AXES = ("axial", "coronal", "sagittal")


CT_SHAPE = (512, 512, 300)
CT_SPACING_MM = (0.7, 0.7, 1.0)


def ct_phantom(shape: tuple[int, int, int] = CT_SHAPE) -> np.ndarray:
    """A CT-like int16 volume in HU: air, an elliptic body, lungs in the upper half, a
    spine, Gaussian noise (a cut-down ``import_speed.ct_phantom``, same gzip behaviour)."""
    ni, nj, nk = shape
    rng = np.random.default_rng(0)
    i = (np.arange(ni, dtype=np.float32)[:, None] - ni / 2) / (0.40 * ni)
    j = (np.arange(nj, dtype=np.float32)[None, :] - nj / 2) / (0.28 * nj)
    body = i**2 + j**2
    base = np.where(body < 1, 45.0, -1000.0).astype(np.float32)
    base[(body > 0.85) & (body < 1)] = -90
    base[(i**2 + (j - 0.6) ** 2) < 0.01] = 1100
    out = np.empty(shape, np.int16)
    for k in range(nk):
        hu = base.copy()
        if k > nk // 2:
            hu[((np.abs(i) - 0.42) ** 2 / 0.08 + (j + 0.05) ** 2 / 0.3) < 1] = -850
        hu += rng.standard_normal((ni, nj), dtype=np.float32) * np.where(hu > -950, 18, 6)
        out[:, :, k] = np.clip(np.rint(hu), -1024, 3071)
    return out


def _generated_ct(folder: Path) -> StudySource:
    hu = ct_phantom()
    affine = np.diag([*CT_SPACING_MM, 1.0])
    affine[:3, 3] = [-179.2, -179.2, -150.0]
    paths = write_dicom_series(
        Volume(hu, affine, "CT", "benchmark CT"),
        folder / "ct300",
        patient_name="Benchmark^CT",
        study_description="benchmark",
        series_description="CT 512x512x300",
        modality="CT",
        uid_seed="portal-benchmark-slices",
    )
    labels = np.zeros(hu.shape, np.uint8)
    labels[hu > 250] = 1  # bone
    labels[(hu < -700) & (hu > -950)] = 2  # lung
    # The series reads back in its own voxel order: label it on that grid.
    image = nib.load(write_nifti(folder / "ct.nii.gz", hu, affine))
    label_path = write_nifti(folder / "ct-label.nii.gz", labels, image.affine)
    return StudySource(
        name="CT 512x512x300 (generated DICOM)",
        image_paths=tuple(sorted(paths)),
        kind="dicom",
        label_path=label_path,
        label_names={1: "bone", 2: "lung"},
        modality="CT",
    )


def _sources(folder: Path) -> list[StudySource]:
    wanted = ("CT 512 (pydicom-data)", "MNI152 T1 1mm")
    demo = [d for d in build_demo_dataset(folder / "demo") if d.name in wanted]
    sources = [StudySource.of_demo(d) for d in demo]
    return [*sources, _generated_ct(folder)]


def _ms(start: float) -> float:
    return (time.perf_counter() - start) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=15)
    runs = parser.parse_args().runs
    root = Path(tempfile.mkdtemp(prefix="portal-bench-slices-"))
    try:
        settings = Settings(data_dir=root / "app", secret_key="benchmark", admin_password="")
        settings.data_dir.mkdir(parents=True)
        migrate.upgrade(settings.resolved_database_url)
        app = create_app(settings)
        db = app.extensions["portal"].db
        sources = _sources(root)
        report = import_sources(db, ImportSettings.of(settings), "bench", sources)
        if report.refused:
            raise RuntimeError(f"import refused: {report.refused}")
        with db.session() as s:
            auth.create_user(s, "viewer", PASSWORD, Role.ADMIN)
        client = app.test_client()
        client.get("/login")
        with client.session_transaction() as session:
            token = session["csrf"]
        form = {"username": "viewer", "password": PASSWORD, "csrf_token": token}
        assert client.post("/login", data=form).status_code == 302
        gz = {"Accept-Encoding": "gzip"}
        with db.session() as s:
            who = auth.Principal.of(s.scalar(select(User).where(User.username == "viewer")))
        client.get(f"/api/v1/studies/{report.imported[0]}")
        with db.session() as s:  # the client's login session, as the requests record it
            key = s.scalar(select(StudyView.session_key))
        # Direct service calls below count as that login session's, as its requests do: the
        # first fetch of a study writes its study.view row, later ones only read.
        audit.bind(audit.RequestContext(address="127.0.0.1", role="admin", session_key=key))

        def get(url: str) -> bytes:
            response = client.get(url, headers=gz, buffered=True)
            if response.status_code != 200:
                raise RuntimeError(f"GET {url}: {response.status_code} {response.data[:200]!r}")
            return response.data

        print(f"runs per warm figure: {runs}; medians in ms; gzip level 1 (isal)")
        for source, study_id in zip(sources, report.imported, strict=True):
            base = f"/api/v1/studies/{study_id}/slices"
            print(f"\n{source.name}")
            start = time.perf_counter()
            get(f"{base}/axial/0/values.vti")
            print(f"  first values request (reads original, writes values.npy): {_ms(start):8.1f}")
            start = time.perf_counter()
            get(f"{base}/axial/0/labels.vti")
            print(f"  first labels request (reads label map, writes .npy):     {_ms(start):8.1f}")
            shape = [_canonical_length(settings, study_id, d) for d in range(3)]
            print(f"  canonical shape {shape}")
            for kind in ("values", "labels"):
                for axis in AXES:
                    n = {"axial": 2, "coronal": 1, "sagittal": 0}[axis]
                    length = _canonical_length(settings, study_id, n)
                    indices = [round(x) for x in np.linspace(0, length - 1, runs)]
                    times, checks, cuts, zipped, plain, wire = [], [], [], [], [], []
                    for index in indices:
                        start = time.perf_counter()
                        body = get(f"{base}/{axis}/{index}/{kind}.vti")
                        times.append(_ms(start))
                        wire.append(len(body))
                        # The same request's parts, called directly.
                        with db.session() as s:
                            start = time.perf_counter()
                            target = slices.open_slice(
                                s,
                                who,
                                settings.preview_dir,
                                study_id,
                                axis,
                                index,
                                slices.SliceKind(kind),
                            )
                            checks.append(_ms(start))
                            start = time.perf_counter()
                            raw = slices.slice_vti(
                                target, settings.store_dir, settings.preview_dir, 0
                            )
                            cuts.append(_ms(start))
                        start = time.perf_counter()
                        isal.igzip.compress(raw, 1, mtime=0)
                        zipped.append(_ms(start))
                        plain.append(len(raw))
                    print(
                        f"  warm {kind:6s} {axis:8s}: HTTP {statistics.median(times):6.2f} = "
                        f"access check {statistics.median(checks):5.2f} + "
                        f"cut and .vti {statistics.median(cuts):5.2f} + "
                        f"gzip {statistics.median(zipped):5.2f} + rest; "
                        f"{statistics.median(plain) / 1e6:5.2f} MB -> "
                        f"{statistics.median(wire) / 1e6:5.2f} MB"
                    )
            full = settings.preview_dir / _uid(settings, study_id) / "full"
            sizes_mb = {p.name: round(p.stat().st_size / 1e6, 1) for p in full.iterdir()}
            print(f"  kept: {sizes_mb} MB")
        db.dispose()
    finally:
        shutil.rmtree(root, ignore_errors=True)


def _uid(settings: Settings, study_id: int) -> str:
    from portal.db.models import Study
    from portal.db.session import Database

    db = Database(settings.resolved_database_url)
    try:
        with db.session() as s:
            study = s.get(Study, study_id)
            assert study is not None
            return study.uid
    finally:
        db.dispose()


def _canonical_length(settings: Settings, study_id: int, dim: int) -> int:
    full = settings.preview_dir / _uid(settings, study_id) / "full" / "values.npy"
    return int(np.load(full, mmap_mode="r").shape[dim])


if __name__ == "__main__":
    main()
