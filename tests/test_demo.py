"""The demo's labelled panel (the README picture)."""

import numpy as np

from tvnumba.demo import _labelled_panel


def test_labelled_panel_keeps_tiles_and_draws_labels():
    tiles = [np.full((64, 80), 100, np.uint8), np.zeros((64, 80), np.uint8)]
    out = _labelled_panel(tiles, ["beta = 1: PSNR 28.55 dB", "noisy"])
    assert out.shape == (64 + 40, 160) and out.dtype == np.uint8
    assert (out[:64, :80] == 100).all() and (out[:64, 80:] == 0).all()
    for k in range(2):  # dark text on each tile's white strip
        strip = out[64:, 80 * k:80 * (k + 1)]
        assert (strip < 128).any() and (strip == 255).mean() > 0.5
