"""tvnumba.dask: exact chunked TV (value and gradient) and chunked denoising.

The reference is the in-memory function on the same NumPy array; run on the threaded
scheduler and on a real ``distributed.LocalCluster`` (2 worker processes).
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest

da = pytest.importorskip("dask.array")
import dask  # noqa: E402

import tvnumba  # noqa: E402

CASES = [
    dict(beta=1.0),
    dict(beta=1.0, isotropic=False),
    dict(beta=0.5, smoothing=0.05),
    dict(beta=0.5),
    dict(beta=2.0),
    dict(beta=2.0, isotropic=False, spacing=(0.5, 2.0, 1.5)),
    dict(beta=1.5, smoothing=0.1, reduction="mean"),
]


@pytest.fixture(scope="module")
def cluster():
    """Two worker processes, one thread each (closed at the end of the module)."""
    distributed = pytest.importorskip("distributed")
    # The cluster's own startup/teardown chatter is not what these tests check.
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ResourceWarning)  # distributed's sockets at close
        warnings.simplefilter("ignore", DeprecationWarning)  # tornado/asyncio internals
        lc = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                      dashboard_address=":0", silence_logs=40)
        client = distributed.Client(lc)
        try:
            yield client
        finally:
            client.close()
            lc.close()


def _compute(*xs, client=None):
    if client is None:
        return dask.compute(*xs, scheduler="threads")
    return client.compute(list(xs), sync=True)


@pytest.mark.parametrize("kw", CASES)
def test_tv_exact_3d_threads(kw):
    rng = np.random.default_rng(3)
    x = rng.random((19, 23, 17))
    X = da.from_array(x, chunks=(5, 8, 6))  # uneven chunks, some of one halo width
    v, g = _compute(*tvnumba.tv_value_and_grad(X, **kw))
    v0, g0 = tvnumba.tv_value_and_grad(x, **kw)
    assert abs(v - v0) <= 1e-12 * abs(v0)
    np.testing.assert_allclose(g, g0, rtol=0, atol=1e-12 * np.abs(g0).max())
    assert _compute(tvnumba.tv(X, **kw))[0] == pytest.approx(v0, rel=1e-12)
    np.testing.assert_allclose(_compute(tvnumba.tv_grad(X, **kw))[0], g0, rtol=0,
                               atol=1e-12 * np.abs(g0).max())


@pytest.mark.parametrize("kw", [dict(beta=1.0), dict(beta=0.5, isotropic=False),
                                dict(beta=2.0, smoothing=0.1)])
def test_tv_exact_channels_and_batch_axes(kw):
    rng = np.random.default_rng(4)
    x = rng.random((3, 21, 2, 18))  # batch, y, channel, x
    X = da.from_array(x, chunks=(2, 7, 1, 5))  # the channel axis is split: rechunked
    opts = dict(axes=(3, 1), channel_axis=2, spacing=(2.0, 0.5), reduction="none", **kw)
    v, g = _compute(*tvnumba.tv_value_and_grad(X, **opts))
    v0, g0 = tvnumba.tv_value_and_grad(x, **opts)
    assert v.shape == (3,)
    np.testing.assert_allclose(v, v0, rtol=1e-12)
    np.testing.assert_allclose(g, g0, rtol=0, atol=1e-12 * np.abs(g0).max())


def test_tv_float32_dtype_and_one_chunk():
    x = np.random.default_rng(5).random((30, 40), dtype=np.float32)
    g = tvnumba.tv_grad(da.from_array(x, chunks=(7, 40)))
    assert g.dtype == np.float32 and g.chunks == ((7, 7, 7, 7, 2), (40,))
    np.testing.assert_allclose(g.compute(scheduler="threads"), tvnumba.tv_grad(x), atol=1e-6)
    one = tvnumba.tv(da.from_array(x, chunks=-1)).compute(scheduler="threads")
    assert one == pytest.approx(tvnumba.tv(x), rel=1e-12)


@pytest.mark.parametrize("kw", CASES[:4])
def test_tv_exact_on_local_cluster(cluster, kw):
    x = np.random.default_rng(6).random((40, 36))
    X = da.from_array(x, chunks=(13, 10))
    v, g = _compute(*tvnumba.tv_value_and_grad(X, **kw), client=cluster)
    v0, g0 = tvnumba.tv_value_and_grad(x, **kw)
    assert abs(v - v0) <= 1e-12 * abs(v0)
    np.testing.assert_allclose(g, g0, rtol=0, atol=1e-12 * np.abs(g0).max())


@pytest.fixture(scope="module")
def camera():
    from skimage import data

    return data.camera()[128:256, 128:256] / 255.0


def test_denoise_beta2_is_exact_with_depth(camera):
    # β = 2 is linear with a fast-decaying kernel: the seam error vanishes with depth.
    ref = tvnumba.denoise_tv_beta(camera, 0.1, 2.0)
    u = tvnumba.denoise_tv_beta(da.from_array(camera, chunks=64), 0.1, 2.0, depth=32)
    assert u.dtype == np.float64 and u.chunks == ((64, 64), (64, 64))
    np.testing.assert_allclose(u.compute(scheduler="threads"), ref, atol=1e-9)


@pytest.mark.parametrize("client", [None, "cluster"])
def test_denoise_matches_in_memory_within_documented_tolerance(camera, request, client):
    client = request.getfixturevalue("cluster") if client else None
    ref = tvnumba.denoise_tv_beta(camera, 0.05, 1.0, eps=1e-6)
    x = da.from_array(camera.astype(np.float32), chunks=64)
    u = tvnumba.denoise_tv_beta(x, 0.05, 1.0, eps=1e-6, depth=32)
    (got,) = _compute(u, client=client)
    assert got.dtype == np.float32 and got.shape == camera.shape
    # documented (module docstring): 6e-4 for β = 1, weight 0.05 at depth 32
    assert np.abs(got - ref).max() < 1e-3 + 1e-6


def test_denoise_small_chunk_is_a_clear_error(camera):
    with pytest.raises(ValueError, match=r"chunk of 16 pixels along axis 0, smaller than "
                                         r"depth=32"):
        tvnumba.denoise_tv_beta(da.from_array(camera, chunks=(16, 64)), 0.1, depth=32)
    with pytest.raises(ValueError, match="depth"):
        tvnumba.denoise_tv_beta(da.from_array(camera, chunks=64), 0.1, depth=(4, 4, 4))
    # One chunk along an axis: no neighbour, any depth there
    u = tvnumba.denoise_tv_beta(da.from_array(camera, chunks=(128, 64)), 0.1, 2.0, depth=(100, 8))
    assert u.shape == camera.shape


def test_default_depth_grows_with_the_weight():
    from tvnumba.dask import default_depth

    d1 = [default_depth(w, 1.0) for w in (0.01, 0.05, 0.1, 0.3, 1.0)]
    assert d1 == sorted(d1) and d1[1] == 64 and d1[3] == 157  # the measured points
    assert default_depth(0.3, 2.0) == 16 < default_depth(10.0, 2.0)
    assert default_depth(0.1, 1.0, spacing=0.5) > default_depth(0.1, 1.0)
    assert default_depth("auto", 1.0) == default_depth(0.1, 1.0)


def test_default_depth_is_used_and_cut_to_short_chunks_with_a_warning(camera):
    x = da.from_array(camera, chunks=64)
    # weight 0.02: default 41 pixels, within the chunks: no warning, the same graph
    # result as passing it
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        u = tvnumba.denoise_tv_beta(x, 0.02, 1.0).compute(scheduler="threads")
    same = tvnumba.denoise_tv_beta(x, 0.02, 1.0, depth=41).compute(scheduler="threads")
    np.testing.assert_array_equal(u, same)
    # weight 0.3: 157 > 64: cut to 64 with a warning naming what to do
    with pytest.warns(UserWarning, match=r"default halo .* 157 pixels.*rechunk"):
        v = tvnumba.denoise_tv_beta(x, 0.3, 1.0)
    np.testing.assert_array_equal(
        v.compute(scheduler="threads"),
        tvnumba.denoise_tv_beta(x, 0.3, 1.0, depth=64).compute(scheduler="threads"))


def test_denoise_is_lazy_and_smoothing_is_global():
    # β < 1 with smoothing=0: one internal smoothing from the whole data range, as in
    # memory (here each chunk's own range would differ: one chunk is constant).
    x = np.zeros((64, 64))
    x[:, 32:] = np.random.default_rng(8).random((64, 32))
    X = da.from_array(x, chunks=32)
    u = tvnumba.denoise_tv_beta(X, 0.05, 0.5, depth=32)
    assert isinstance(u, da.Array)
    got = u.compute(scheduler="threads")
    # depth = chunk: every chunk sees the whole image; same problem, same solver start
    ref = tvnumba.denoise_tv_beta(x, 0.05, 0.5)
    assert np.abs(got - ref).max() < 1e-3


# --------------------------------------------------------------------------- β < 1, global
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_beta_below_one_runs_the_in_memory_solver_without_seams(camera, dtype):
    """Without depth=, β < 1 runs the in-memory MM on the whole Dask array (one task):
    the in-memory result bit for bit (a chunked solve with a halo reaches chunk-local
    minimisers, visibly different at this size, whatever the depth)."""
    img = camera[:64, :48].astype(dtype)
    ref = tvnumba.denoise_tv_beta(img, 0.05, 0.5, max_num_iter=8)
    with dask.config.set(scheduler="threads"):
        u = tvnumba.denoise_tv_beta(da.from_array(img, chunks=(24, 16)), 0.05, 0.5,
                                    max_num_iter=8)
        assert isinstance(u, da.Array) and u.chunks == ((24, 24, 16), (16, 16, 16))
        got = u.compute()
        local = tvnumba.denoise_tv_beta(da.from_array(img, chunks=(24, 16)), 0.05, 0.5,
                                        depth=8, max_num_iter=8).compute()
    assert got.dtype == np.dtype(dtype)
    np.testing.assert_array_equal(got, ref)
    assert np.abs(local - ref).max() > 1e-3


@pytest.mark.parametrize("shape, chunks, kw", [
    ((20, 18, 3), (7, 9, 3), dict(channel_axis=-1, spacing=(0.5, 1.0), max_num_iter=5)),
    ((30, 26), (10, 13), dict(isotropic=False, smoothing=0.02, max_num_iter=5)),
    ((12, 10, 14), (6, 5, 7), dict(beta=0.7, max_num_iter=4)),
])
def test_beta_below_one_global_channels_spacing_3d(shape, chunks, kw):
    x = np.random.default_rng(3).random(shape)
    kw = dict(kw)
    beta = kw.pop("beta", 0.5)
    ref = tvnumba.denoise_tv_beta(x, 0.1, beta, **kw)
    with dask.config.set(scheduler="threads"):
        u = tvnumba.denoise_tv_beta(da.from_array(x, chunks=chunks), 0.1, beta, **kw)
        assert u.chunks == da.from_array(x, chunks=chunks).chunks
        got = u.compute()
    np.testing.assert_array_equal(got, ref)


def test_beta_below_one_whole_array_is_one_lazy_task_where_it_fits(camera):
    """On the threaded or synchronous scheduler the whole-array solve is one lazy task
    (the in-memory result bit for bit)."""
    img = camera[:32, :32]
    for scheduler in ("threads", "sync"):
        with dask.config.set(scheduler=scheduler):
            x = da.from_array(img, chunks=16)
            assert tvnumba.dask._one_task_fits(x, 10**15)
            u = tvnumba.denoise_tv_beta(x, 0.05, 0.5, max_num_iter=3)
            assert u.chunks == x.chunks and u.dtype == np.float64
            got = u.compute()
        np.testing.assert_array_equal(got, tvnumba.denoise_tv_beta(img, 0.05, 0.5,
                                                                   max_num_iter=3))


def test_beta_below_one_global_on_local_cluster(cluster, camera, monkeypatch):
    """On a cluster: one task on a worker where its memory_limit holds the image (the
    in-memory result bit for bit), else a ValueError naming depth= (before any work)."""
    img = camera[:40, :40]
    ref = tvnumba.denoise_tv_beta(img, 0.05, 0.5, max_num_iter=3)
    x = da.from_array(img, chunks=20)
    with dask.config.set(scheduler=cluster):
        assert tvnumba.dask._one_task_fits(x, img.nbytes)
        assert not tvnumba.dask._one_task_fits(x, 10**15)  # more than any worker's limit
        u = tvnumba.denoise_tv_beta(x, 0.05, 0.5, max_num_iter=3)
        (got,) = _compute(u, client=cluster)
        np.testing.assert_array_equal(got, ref)
        monkeypatch.setattr(tvnumba.dask, "_one_task_fits", lambda x, nbytes: False)
        with pytest.raises(ValueError, match=r"memory_limit.*depth="):
            tvnumba.denoise_tv_beta(x, 0.05, 0.5, max_num_iter=3)
        u = tvnumba.denoise_tv_beta(x, 0.05, 0.5, depth=8, max_num_iter=3)
        (got,) = _compute(u, client=cluster)
    assert got.shape == img.shape and np.isfinite(got).all()


# --------------------------------------------------------------------------- weight="auto"
def test_auto_weight_is_the_in_memory_choice_where_the_array_is_the_sample(camera):
    """An array within AUTO_SAMPLE_SIZE is its own sample: the in-memory weight, and the
    chunked solve with it (seams within the default depth's tolerance)."""
    rng = np.random.default_rng(0)
    f = camera[:128, :128] + 0.1 * rng.standard_normal((128, 128))
    ref, info = tvnumba.denoise_tv_beta(f, "auto", return_info=True)
    fixed = tvnumba.denoise_tv_beta(da.from_array(f, chunks=128), info.weight)
    with dask.config.set(scheduler="threads"):
        u = tvnumba.denoise_tv_beta(da.from_array(f, chunks=128), "auto")
        assert isinstance(u, da.Array)
        got, want = dask.compute(u, fixed)
    np.testing.assert_array_equal(got, want)
    np.testing.assert_allclose(got, ref, rtol=0, atol=1e-12)


def test_auto_weight_is_one_weight_for_the_whole_array(camera, monkeypatch):
    """Noise 0.02 on the left half and 0.2 on the right, chunks of 64: one weight from
    the central sample (which spans both halves), not one per chunk; the sample is cut
    to AUTO_SAMPLE_SIZE values around the centre."""
    monkeypatch.setattr(tvnumba.dask, "AUTO_SAMPLE_SIZE", 96 * 96)
    rng = np.random.default_rng(1)
    f = camera[:128, :128].copy()
    f[:, :64] += 0.02 * rng.standard_normal((128, 64))
    f[:, 64:] += 0.2 * rng.standard_normal((128, 64))
    x = da.from_array(f, chunks=64)
    sample = tvnumba.dask._central_sample(x, (0, 1), None)
    assert sample.shape == (96, 96)
    _, info = tvnumba.denoise_tv_beta(np.asarray(sample), "auto", return_info=True)
    with dask.config.set(scheduler="threads"):
        got = tvnumba.denoise_tv_beta(x, "auto", depth=32).compute()
        want = tvnumba.denoise_tv_beta(x, info.weight, depth=32).compute()
    np.testing.assert_array_equal(got, want)


# --------------------------------------------------------------------------- deconvolution
def test_deconvolve_chunked_matches_the_whole_image():
    """Chunks with the default halo against the in-memory deconvolution (both at eps 1e-6:
    the difference is the seams', not the solvers' tolerance)."""
    from scipy.signal import fftconvolve

    rng = np.random.default_rng(0)
    clean = np.zeros((96, 96))
    clean[20:70, 30:60] = 1.0
    psf = np.full((1, 5), 0.2)
    f = fftconvolve(np.pad(clean, ((0, 0), (2, 2)), mode="edge"), psf, mode="valid")
    f = f + 0.01 * rng.standard_normal(f.shape)
    whole = tvnumba.deconvolve_tv_beta(f, psf, 0.003, eps=1e-6)
    u = tvnumba.deconvolve_tv_beta(da.from_array(f, chunks=48), psf, 0.003, eps=1e-6)
    assert isinstance(u, da.Array) and u.chunks == ((48, 48), (48, 48))
    got = u.compute(scheduler="sync")
    assert np.abs(got - whole).max() < 1e-2
    assert np.abs(got - clean).mean() < np.abs(f - clean).mean()


def test_deconvolve_chunked_refusals():
    x = da.zeros((32, 32), chunks=16)
    psf = np.full((3, 3), 1 / 9)
    with pytest.raises(ValueError, match="weight='auto'"):
        tvnumba.deconvolve_tv_beta(x, psf, "auto")
    with pytest.raises(ValueError, match="boundary='extend' only"):
        tvnumba.deconvolve_tv_beta(x, psf, 0.01, boundary="periodic")
    with pytest.raises(ValueError, match="smaller than depth"):
        tvnumba.deconvolve_tv_beta(x, psf, 0.01, depth=20)
    with pytest.raises(ValueError, match="Dask arrays only"):
        tvnumba.deconvolve_tv_beta(np.zeros((32, 32)), psf, 0.01, depth=4)
