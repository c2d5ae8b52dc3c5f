"""The demo: its labelled panel (the README picture) and its options."""

import numpy as np
import pytest

from tvnumba.demo import _labelled_panel


def test_labelled_panel_keeps_tiles_and_draws_labels():
    tiles = [np.full((64, 80), 100, np.uint8), np.zeros((64, 80), np.uint8)]
    out = _labelled_panel(tiles, ["beta = 1: PSNR 28.55 dB", "noisy"])
    assert out.shape == (64 + 40, 160) and out.dtype == np.uint8
    assert (out[:64, :80] == 100).all() and (out[:64, 80:] == 0).all()
    for k in range(2):  # dark text on each tile's white strip
        strip = out[64:, 80 * k:80 * (k + 1)]
        assert (strip < 128).any() and (strip == 255).mean() > 0.5


@pytest.mark.parametrize(("args", "message"), [
    (["--output", "/no/such/folder/demo.png"], "does not exist"),
    (["--output", "."], "is a folder"),
    (["--sigma", "-1"], "sigma must be a finite number >= 0"),
    (["--sigma", "nan"], "sigma must be a finite number >= 0"),
    (["--repeat", "0"], "repeat must be >= 1"),
])
def test_bad_options_stop_before_the_work(capsys, args, message):
    from tvnumba.demo import main

    with pytest.raises(SystemExit) as exit_info:
        main(args)
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("tvnumba demo: error: argument --") and message in err[-1]
