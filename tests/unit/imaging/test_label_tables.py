"""Sidecar label tables in the forms pipelines write them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from portal.imaging.errors import ImagingError
from portal.imaging.label_tables import find_label_table, read_label_table
from portal.imaging.labels import Label, label_color


def _write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def test_freesurfer_lut(tmp_path: Path) -> None:
    lut = _write(
        tmp_path / "FreeSurferColorLUT.txt",
        "#$Id: made up for this test $\n"
        "#No. Label Name:                R   G   B   A\n\n"
        "0   Unknown                     0   0   0   0\n"
        "2   Left-Cerebral-White-Matter  245 245 245 0\n"
        "17  Left-Hippocampus            220 216 20  0\n",
    )
    assert read_label_table(lut) == [
        Label(2, "Left-Cerebral-White-Matter", (245, 245, 245)),
        Label(17, "Left-Hippocampus", (220, 216, 20)),
    ]


def test_itksnap_label_description(tmp_path: Path) -> None:
    text = (
        "# ITK-SnAP Label Description File\n"
        '    0     0    0    0        0  0  0    "Clear Label"\n'
        '    1   255    0    0        1  1  1    "left kidney"\n'
        '    3     0    0  255        1  1  1    "tumour, enhancing"\n'
    )
    table = read_label_table(_write(tmp_path / "seg.txt", text))
    assert table == [
        Label(1, "left kidney", (255, 0, 0)),
        Label(3, "tumour, enhancing", (0, 0, 255)),
    ]


@pytest.mark.parametrize(
    "content",
    [
        {"1": "liver", "2": {"name": "tumour", "color": "#ff8000"}},
        {"labels": {"background": 0, "liver": 1, "tumour": 2}},  # nnU-Net v2
        {"labels": {"0": "background", "1": "liver", "2": "tumour"}},  # nnU-Net v1
        [{"value": 1, "name": "liver"}, {"value": 2, "name": "tumour", "color": [255, 128, 0]}],
    ],
)
def test_json_forms(tmp_path: Path, content: object) -> None:
    table = read_label_table(_write(tmp_path / "case-label.json", json.dumps(content)))
    assert [(lab.value, lab.name) for lab in table] == [(1, "liver"), (2, "tumour")]
    assert table[0].color == label_color(1)  # no colour given: the palette


def test_colours_as_fractions(tmp_path: Path) -> None:
    path = _write(tmp_path / "t.json", json.dumps({"4": {"name": "x", "color": [1.0, 0.5, 0]}}))
    assert read_label_table(path) == [Label(4, "x", (255, 128, 0))]


@pytest.mark.parametrize(
    ("name", "text", "fragment"),
    [
        ("bad.txt", "1 liver 300 0 0 0\n", "line 1: colour"),
        ("bad2.txt", "1 liver 0 0 0 0\nx spleen 0 0 0 0\n", "line 2"),
        ("bad3.txt", "70000 huge 0 0 0 0\n", "outside 1-65535"),
        ("bad.json", "{not json", "not a label table"),
        ("bad2.json", '{"1": {"name": "x", "color": "red"}}', "#rrggbb"),
    ],
)
def test_bad_tables_name_file_and_line(tmp_path: Path, name: str, text: str, fragment: str) -> None:
    path = _write(tmp_path / name, text)
    with pytest.raises(ImagingError) as info:
        read_label_table(path)
    assert info.value.path == str(path) and fragment in info.value.reason


def test_binary_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "case-label.txt"
    path.write_bytes(b"\xff\xfe\x00\x81garbage")
    with pytest.raises(ImagingError, match="not UTF-8"):
        read_label_table(path)


def test_find_prefers_own_sidecar_then_folder_then_parent(tmp_path: Path) -> None:
    labels_dir = tmp_path / "labelsTr"
    labels_dir.mkdir()
    label_map = labels_dir / "case_001.nii.gz"
    assert find_label_table(label_map, "case_001") == (Path(), [])
    dataset = _write(tmp_path / "dataset.json", json.dumps({"labels": {"background": 0, "a": 1}}))
    assert find_label_table(label_map, "case_001") == (dataset, [Label(1, "a", label_color(1))])
    own = _write(labels_dir / "case_001.txt", "1 own 1 2 3 0\n")
    assert find_label_table(label_map, "case_001") == (own, [Label(1, "own", (1, 2, 3))])


def test_unrelated_folder_json_is_passed_over_but_broken_own_sidecar_is_not(
    tmp_path: Path,
) -> None:
    label_map = tmp_path / "case-label.nii.gz"
    _write(tmp_path / "dataset.json", json.dumps({"name": "Task01", "modality": {"0": "MRI"}}))
    assert find_label_table(label_map, "case-label") == (Path(), [])
    _write(tmp_path / "case-label.json", "{broken")
    with pytest.raises(ImagingError, match="case-label.json|not a label table"):
        find_label_table(label_map, "case-label")
