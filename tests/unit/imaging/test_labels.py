import numpy as np
import pytest

from portal.imaging.labels import PALETTE_RGB, Label, default_label_table, labels_to_rgba


def test_default_table_is_stable_and_skips_background():
    table = default_label_table([3, 0, 1, 3], {1: "grey matter"})
    assert [lab.value for lab in table] == [1, 3]
    assert table[0] == Label(1, "grey matter", PALETTE_RGB[0])
    assert table[1] == Label(3, "label 3", PALETTE_RGB[2])
    # The same value has the same colour whatever else is in the table.
    assert default_label_table([3])[0].color == table[1].color
    assert len(set(PALETTE_RGB)) == len(PALETTE_RGB)


def test_rgba_colours_and_background():
    labels = np.array([[0, 1], [2, 7]], dtype=np.uint16)
    table = [Label(1, "bone", (255, 0, 0)), Label(2, "soft", (0, 0, 255))]
    rgba = labels_to_rgba(labels, table, opacity=0.5)
    assert rgba.shape == (2, 2, 4) and rgba.dtype == np.uint8
    assert rgba[0, 0].tolist() == [0, 0, 0, 0]
    assert rgba[0, 1].tolist() == [255, 0, 0, 128]
    assert rgba[1, 0].tolist() == [0, 0, 255, 128]
    # A value missing from the table still shows, in its palette colour.
    assert rgba[1, 1].tolist() == [*PALETTE_RGB[6], 128]
    assert labels_to_rgba(labels, table, opacity=1.0)[0, 1, 3] == 255


def test_rgba_of_a_3d_map():
    labels = np.zeros((3, 4, 5), np.uint16)
    labels[1, 2, 3] = 2
    rgba = labels_to_rgba(labels, default_label_table([2]))
    assert rgba.shape == (3, 4, 5, 4)
    assert np.count_nonzero(rgba[..., 3]) == 1


def test_invalid_input():
    with pytest.raises(ValueError):
        Label(0, "background", (0, 0, 0))
    with pytest.raises(ValueError):
        Label(1, "x", (256, 0, 0))
    with pytest.raises(ValueError):
        labels_to_rgba(np.zeros((2, 2), np.float32), [])
    with pytest.raises(ValueError):
        labels_to_rgba(np.zeros((2, 2), np.uint8), [], opacity=2.0)


def test_rgba_of_any_layout_is_the_table_colour_voxel_by_voxel():
    labels = np.random.default_rng(5).integers(0, 40, (6, 7, 5)).astype(np.uint16)
    table = [Label(3, "a", (1, 2, 3)), Label(39, "b", (250, 251, 252))]
    for layout in (labels, labels.T, np.asfortranarray(labels)[:, ::-1]):
        rgba = labels_to_rgba(layout, table, opacity=0.4)
        assert rgba.shape == (*layout.shape, 4) and rgba.dtype == np.uint8
        colours = {lab.value: lab.color for lab in table}
        for index in np.ndindex(layout.shape):
            value = int(layout[index])
            if value == 0:
                expected = (0, 0, 0, 0)
            else:
                expected = (*colours.get(value, PALETTE_RGB[(value - 1) % len(PALETTE_RGB)]), 102)
            assert tuple(rgba[index]) == expected, index
