import numpy as np

from portal.imaging.windowing import (
    CT_DEFAULT_WINDOW,
    Window,
    apply_window,
    default_window,
    robust_window,
)


def test_ct_default_is_level_40_width_400():
    assert CT_DEFAULT_WINDOW == Window(-160.0, 240.0)
    assert default_window(np.zeros(3), "CT") == CT_DEFAULT_WINDOW


def test_robust_window_ignores_zero_background():
    data = np.zeros(10_000)
    data[:1000] = np.linspace(100, 200, 1000)
    window = robust_window(data)
    assert 100 <= window.low < 102 and 198 < window.high <= 200
    # Non-negative MR starts at 0 so the darkest tissue stays visible.
    assert default_window(data, "MR") == Window(0.0, window.high)
    assert robust_window(np.zeros(5)) == Window(0.0, 1.0)
    assert robust_window(np.full(5, 7.0)) == Window(7.0, 8.0)


def test_apply_window_maps_to_uint8():
    out = apply_window(np.array([-1000, -160, 40, 240, 3000], np.int16), CT_DEFAULT_WINDOW)
    assert out.dtype == np.uint8
    assert out.tolist() == [0, 0, 128, 255, 255]
