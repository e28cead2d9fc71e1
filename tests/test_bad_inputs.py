"""Reliability: every public entry point answers bad input with a clear error.

Property-based (Hypothesis): images of random shapes, dtypes, strides and NaN/inf
patterns, and random parameters, for every public entry point and the CLI. Each call
must either return a valid result (finite, the right shape, alphas summing to one) or
raise a ``TypeError``/``ValueError`` or an unmix error whose message names a public
argument; no NumPy ``RuntimeWarning`` may escape, and no input may be modified.

The example counts suit CI (the ``ci`` profile: well under a minute); run
``python -m pytest tests/test_bad_inputs.py --hypothesis-profile=slow`` for 50 times
as many, randomised.
"""

import functools
import inspect
import warnings
from dataclasses import fields

import numpy as np
import pytest

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import event, given, settings  # noqa: E402
from hypothesis.control import currently_in_test_context  # noqa: E402
from hypothesis import strategies as st  # noqa: E402
from hypothesis.extra import numpy as hnp  # noqa: E402

import unmix  # noqa: E402
from unmix import metrics  # noqa: E402
from unmix.cli import main  # noqa: E402
from unmix.color import SoftColorSegmentationParams  # noqa: E402
from unmix.exceptions import DegenerateInputWarning, UnmixError  # noqa: E402
from unmix.graph import GraphParams  # noqa: E402
from unmix.spectral import SemanticSoftSegmentationParams  # noqa: E402



def examples(n):
    """``n`` examples under the ``ci`` profile (tests/conftest.py), 50·n under ``slow``."""
    return max(1, n * settings.default.max_examples // 100)


# --------------------------------------------------------------------------- strategies
DTYPES = st.sampled_from([np.uint8, np.uint16, np.float32, np.float64, np.bool_, np.int32,
                          np.int64, np.complex128, np.float16])


@st.composite
def images(draw, min_side=0, max_side=12, channels=(None, 1, 3, 4), special=True):
    """Arrays shaped like images (and some that are not), of any dtype and layout."""
    dtype = np.dtype(draw(DTYPES))
    shape = [draw(st.integers(min_side, max_side)) for _ in range(2)]
    c = draw(st.sampled_from(channels + ((2, 5) if special else ())))
    if c is not None:
        shape.append(c)
    if special and draw(st.integers(0, 9)) == 0:
        shape = shape[:1] + shape  # a stack of images, or a 4-D array
    if dtype.kind == "f":
        elements = st.floats(0, 1, width=min(dtype.itemsize * 8, 64))
        if special:
            elements = st.one_of(elements, st.sampled_from(
                [np.nan, np.inf, -np.inf, -0.5, 1.5, 1e-310, 5e-324]))
    elif dtype.kind == "c":
        elements = st.complex_numbers(max_magnitude=1, allow_nan=False, width=128)
    else:
        elements = None
    arr = draw(hnp.arrays(dtype, tuple(shape), elements=elements))
    layout = draw(st.sampled_from(["c", "fortran", "reversed", "broadcast"]))
    if layout == "fortran":
        arr = np.asfortranarray(arr)
    elif layout == "reversed" and arr.ndim >= 2:
        arr = arr[::-1, ::-1]
    elif layout == "broadcast" and arr.ndim >= 2 and arr.shape[0] > 0:
        arr = np.broadcast_to(arr[:1], arr.shape)  # zero stride along the rows
    return arr


@st.composite
def valid_images(draw, min_side=3, max_side=12, shape=None):
    """Images as_float_image accepts: uint8, uint16, bool or floats in [0, 1], any layout."""
    dtype = np.dtype(draw(st.sampled_from([np.uint8, np.uint16, np.float32, np.float64,
                                           np.bool_])))
    if shape is None:
        shape = (draw(st.integers(min_side, max_side)), draw(st.integers(min_side, max_side)))
        shape += draw(st.sampled_from([(), (1,), (3,), (3,)]))
    elements = st.floats(0, 1, width=32) if dtype.kind == "f" else None
    arr = draw(hnp.arrays(dtype, shape, elements=elements))
    if draw(st.booleans()):
        arr = np.asfortranarray(arr) if draw(st.booleans()) else arr[::-1]
    return arr


def any_image(**kwargs):
    """Valid images half of the time, anything image-like the other half."""
    return st.one_of(valid_images(**kwargs), images())


def photo_like(draw, side=(8, 20)):
    """A valid float image with structure (random blobs), or a constant one."""
    h, w = draw(st.integers(*side)), draw(st.integers(*side))
    seed = draw(st.integers(0, 2**16))
    rng = np.random.default_rng(seed)
    if draw(st.integers(0, 5)) == 0:
        return np.full((h, w, 3), draw(st.floats(0, 1)))
    yy, xx = np.mgrid[:h, :w]
    image = np.zeros((h, w, 3))
    for _ in range(3):
        centre, radius = rng.random(2) * (h, w), 2 + rng.random() * max(h, w) / 2
        blob = np.hypot(yy - centre[0], xx - centre[1]) < radius
        image[blob] = rng.random(3)
    return np.clip(image + 0.02 * rng.standard_normal(image.shape), 0, 1)


#: Values a user might pass where a number, a string or a flag is expected.
ANY_VALUE = st.one_of(
    st.integers(-3, 60), st.floats(allow_nan=True, allow_infinity=True), st.booleans(),
    st.none(), st.sampled_from(["a", "0.5", "fast", "full", "mom", "", "sobel"]),
    st.just([1, 2]), st.just(np.float64(0.5)), st.just(np.int64(3)))


# --------------------------------------------------------------------------- checking
FORGIVEN = (DegenerateInputWarning, unmix.ConvergenceWarning)


def public_names(*callables):
    """The argument names a message may cite: the callables' parameters, the fields of
    the parameter classes (as ``Class.field`` and bare), and the CLI's options."""
    names = set()
    for f in callables:
        names |= set(inspect.signature(f).parameters)
    for cls in (SemanticSoftSegmentationParams, SoftColorSegmentationParams, GraphParams):
        names |= {f"{cls.__name__}.{f.name}" for f in fields(cls)}
    return names


def snapshot(values):
    return [np.array(v, copy=True) if isinstance(v, np.ndarray) else None for v in values]


def assert_unchanged(values, before):
    for value, copy in zip(values, before):
        if copy is not None:
            assert np.array_equal(value, copy, equal_nan=value.dtype.kind in "fc"), \
                "an input was modified"


def call(f, *args, names=(), **kwargs):
    """Call ``f``; return its result, or None if it raised an acceptable error.

    Acceptable: ``TypeError``/``ValueError``/``UnmixError`` whose message names one of
    ``names`` (public arguments). NumPy's RuntimeWarnings fail the test; the library's
    own warnings are allowed. Array inputs must be unchanged afterwards.
    """
    inputs = [*args, *kwargs.values()]
    before = snapshot(inputs)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            result = f(*args, **kwargs)
            outcome = "returned"
        except (TypeError, ValueError, UnmixError) as exc:
            message = str(exc)
            assert any(name in message for name in names), \
                f"{type(exc).__name__} names no public argument: {message}"
            outcome = type(exc).__name__
            result = None
    if currently_in_test_context():  # --hypothesis-show-statistics: how often each outcome
        event(f"{getattr(f, '__name__', 'call')}: {outcome}")
    leaked = [w for w in caught if issubclass(w.category, RuntimeWarning)]
    assert not leaked, f"RuntimeWarning escaped: {leaked[0].message} ({leaked[0].filename})"
    assert_unchanged(inputs, before)
    return result


def assert_valid_layers(layers, image_shape, max_layers, atol=1e-4):
    alphas = layers.alphas
    assert alphas.shape[:2] == image_shape[:2] and 1 <= alphas.shape[2] <= max_layers
    assert np.isfinite(alphas).all()
    np.testing.assert_allclose(alphas.sum(axis=2), 1.0, atol=atol)
    if layers.colors is not None:
        assert np.isfinite(layers.colors).all()


# --------------------------------------------------------------------------- examples
# The classes of bad input found by hand, one example each (the properties below
# generalise them).


@pytest.mark.parametrize("image", [
    np.zeros((24, 32, 3)), np.ones((24, 32, 3)), np.full((24, 32, 3), 128, np.uint8),
    np.full((24, 32, 3), 1e-310), np.broadcast_to(np.float64(0.3), (24, 32, 3)),
], ids=["black", "white", "grey-uint8", "denormal", "zero-stride"])
def test_constant_images_give_one_layer_with_a_warning(image):
    for segment in (lambda: unmix.semantic_soft_segments(image, mode="fast"),
                    lambda: unmix.soft_color_segments(image)):
        with pytest.warns(DegenerateInputWarning, match="the image is constant"):
            layers = segment()
        assert layers.n_layers == 1 and np.all(layers.alphas == 1.0)
        if layers.colors is not None:  # soft colour: the exact decomposition c = 1·u
            np.testing.assert_allclose(layers.colors[:, :, 0], unmix.as_float_image(image))


def test_constant_features_give_the_surviving_segments_with_a_warning(photo):
    image = photo("coffee", (24, 32))
    with pytest.warns(DegenerateInputWarning, match="the features are constant.*returning 1"):
        layers = unmix.semantic_soft_segments(image, features=np.zeros((24, 32, 3)))
    assert_valid_layers(layers, image.shape, 1)


def test_more_segments_than_the_image_supports(photo):
    image = photo("coffee", (24, 32))
    with pytest.warns(DegenerateInputWarning, match=r"returning (\d+) layers") as record:
        layers = unmix.semantic_soft_segments(image, features="handcrafted", n_segments=40)
    count = int(str(record[0].message).rsplit("returning ", 1)[1].split()[0])
    assert layers.n_layers == count < 40
    assert_valid_layers(layers, image.shape, 40)


@pytest.mark.parametrize("call_, match", [
    (lambda img: unmix.semantic_soft_segments(img, n_segments=True), "n_segments must be an int"),
    (lambda img: unmix.semantic_soft_segments(img, random_state=-1), "random_state must be"),
    (lambda img: unmix.semantic_soft_segments(img, random_state="abc"), "random_state must be"),
    (lambda img: unmix.semantic_soft_segments(img, random_state=1.5), "random_state must be"),
    (lambda img: unmix.semantic_soft_segments(
        img, params=SemanticSoftSegmentationParams(n_eigs=1.5)), r"Params\.n_eigs must be"),
    (lambda img: unmix.semantic_soft_segments(
        img, params=SemanticSoftSegmentationParams(gamma=2.5)), r"Params\.gamma must be"),
    (lambda img: SemanticSoftSegmentationParams(final_maxiter=1.5), r"final_maxiter must be an"),
    (lambda img: SemanticSoftSegmentationParams(relaxed_iters=None), r"relaxed_iters must be an"),
    (lambda img: GraphParams(normalized=1), r"GraphParams\.normalized must be True or False"),
    (lambda img: unmix.soft_color_segments(img, n_layers=1), "n_layers must be an integer >= 2"),
    (lambda img: unmix.soft_color_segments(img, palette=[[255, 0, 0], [0, 0, 255]]),
     "palette must hold colours in"),
    (lambda img: SoftColorSegmentationParams(max_models=2.0), r"max_models must be an integer"),
    (lambda img: unmix.closed_form_matting(img, np.full(img.shape[:2], 0.5), fg_threshold="0.9"),
     "fg_threshold must be a real number"),
    (lambda img: unmix.estimate_layer_colors(img, np.full(img.shape[:2] + (2,), 0.5),
                                             gradient_weight=None), "gradient_weight"),
    (lambda img: unmix.estimate_layer_colors(img, np.full(img.shape[:2] + (2,), 0.5),
                                             n_big_iterations=None), "n_big_iterations"),
    (lambda img: unmix.composite(img, np.full(img.shape[:2], np.nan)), "alpha contains"),
    (lambda img: unmix.composite(img, np.full(img.shape[:2], 0.5), background="white"),
     "background must be a real numeric array"),
    (lambda img: unmix.semantic_soft_segments([[0.1, 0.2], [0.3]]), "image must be a rectangular"),
    (lambda img: unmix.semantic_soft_segments(np.full((24, 32, 3), "a")), "image must have"),
])
def test_argument_errors_name_the_public_argument(photo, call_, match):
    with pytest.raises((TypeError, ValueError), match=match):
        call_(photo("coffee", (24, 32)))


def test_relaxed_sparsification_refuses_matrices_it_cannot_solve(photo):
    import scipy.sparse as sp

    from unmix.graph import matting_laplacian
    from unmix.spectral import relaxed_sparsification

    image = photo("coffee", (16, 20))
    L = matting_laplacian(image)
    alphas = np.random.default_rng(0).dirichlet(np.ones(3), size=(16, 20))
    skew = sp.random(320, 320, density=0.01, random_state=0, format="csr")
    with pytest.raises(ValueError, match="L must be symmetric"):
        relaxed_sparsification(alphas, L + skew, image, iterations=1)
    with pytest.raises(ValueError, match="L is too indefinite"):
        relaxed_sparsification(alphas, -100 * L, image, iterations=1)
    with pytest.raises(TypeError, match="L must be a real matrix"):
        relaxed_sparsification(alphas, L.astype(np.complex128), image, iterations=1)
    with pytest.raises(ValueError, match="final_maxiter must be an integer >= 1"):
        relaxed_sparsification(alphas, L, image, iterations=1, final_maxiter=0)
    # Integer entries are a real matrix: converted, same result as the float one.
    Li = sp.csr_matrix(np.rint(L.toarray() * 10).astype(np.int64))
    np.testing.assert_allclose(relaxed_sparsification(alphas, Li, image, iterations=1),
                               relaxed_sparsification(alphas, Li.astype(float), image,
                                                      iterations=1))


# --------------------------------------------------------------------------- properties
@settings(max_examples=examples(150))
@given(any_image())
def test_as_float_image(image):
    out = call(unmix.as_float_image, image, names=["image"])
    if out is not None:
        assert out.shape == image.shape[:2] + (3,) and out.dtype == np.float64
        assert np.isfinite(out).all() and out.min() >= 0 and out.max() <= 1


@settings(max_examples=examples(30))
@given(st.data())
def test_semantic_soft_segments(data):
    draw = data.draw
    image = draw(images(min_side=1, max_side=16)) if draw(st.integers(0, 3)) == 0 \
        else photo_like(draw)
    kwargs = {}
    if draw(st.booleans()):
        kwargs["n_segments"] = draw(st.one_of(st.integers(-1, 45), ANY_VALUE))
    if draw(st.booleans()):
        kwargs["random_state"] = draw(st.one_of(st.integers(-2, 2**33), ANY_VALUE))
    if draw(st.booleans()):
        features = draw(st.sampled_from(["handcrafted", "semantic", "network", "array"]))
        kwargs["features"] = None if features == "network" else features
        if features == "array":
            shape = np.shape(image)[:2] + (draw(st.sampled_from([1, 3, 7])),)
            kwargs["features"] = draw(hnp.arrays(np.float64, shape, elements=st.floats(-2, 2)))
    else:
        kwargs["features"] = "handcrafted"  # quick to compute: the rest is what is tested
    if draw(st.booleans()):
        field = draw(st.sampled_from([f.name for f in fields(SemanticSoftSegmentationParams)
                                      if f.name != "graph"]))
        params = call(SemanticSoftSegmentationParams, **{field: draw(ANY_VALUE)},
                      names=public_names(SemanticSoftSegmentationParams))
        if params is None:
            return
        kwargs["params"] = params
    kwargs["mode"] = draw(st.sampled_from(["fast", "fast", "full", "medium"]))
    layers = call(unmix.semantic_soft_segments, image, names=public_names(
        unmix.semantic_soft_segments), **kwargs)
    if layers is not None:
        n = kwargs.get("n_segments", 5)
        # Sum-to-one is a soft constraint (weight λ) met to 1e-4 by the default solves; a
        # smaller λ or truncated solves (final_maxiter=3, pcg_rtol=0.5) meet it less well.
        atol = 1e-4 if "params" not in kwargs else max(0.05, 0.05 / kwargs["params"].lam)
        assert_valid_layers(layers, np.shape(image), n, atol=atol)


@settings(max_examples=examples(30))
@given(st.data())
def test_soft_color_segments(data):
    draw = data.draw
    image = draw(images(min_side=1, max_side=14)) if draw(st.integers(0, 3)) == 0 \
        else photo_like(draw, side=(6, 16))
    kwargs = {}
    choice = draw(st.sampled_from(["auto", "n_layers", "palette"]))
    if choice == "n_layers":
        kwargs["n_layers"] = draw(st.one_of(st.integers(-1, 6), ANY_VALUE))
    elif choice == "palette":
        kwargs["palette"] = draw(st.one_of(
            hnp.arrays(np.float64, (draw(st.integers(0, 4)), draw(st.sampled_from([2, 3]))),
                       elements=st.floats(-0.5, 1.5)),
            hnp.arrays(np.uint8, (3, 3)), ANY_VALUE))
    kwargs["method"] = draw(st.sampled_from(["fast", "fast", "mom", "slow"]))
    if kwargs["method"] == "mom":
        image = image[:6, :6] if np.ndim(image) >= 2 else image  # the paper's solver is slow
    if draw(st.booleans()):
        field = draw(st.sampled_from([f.name for f in fields(SoftColorSegmentationParams)]))
        params = call(SoftColorSegmentationParams, **{field: draw(ANY_VALUE)},
                      names=public_names(SoftColorSegmentationParams))
        if params is None:
            return
        kwargs["params"] = params
    layers = call(unmix.soft_color_segments, image,
                  names=public_names(unmix.soft_color_segments) | {"means", "covariances"},
                  **kwargs)
    if layers is not None:
        assert_valid_layers(layers, np.shape(image), 20)
        # The layers add up to the image (c = Σ α_i u_i) within the refinement's error.
        recomposed = (layers.alphas[..., None] * layers.colors).sum(axis=2)
        assert np.abs(recomposed - unmix.as_float_image(image)).max() < 0.05


@st.composite
def trimaps(draw, shape):
    kind = draw(st.sampled_from(["float", "float", "uint8", "bool", "random"]))
    codes = draw(hnp.arrays(np.uint8, shape, elements=st.sampled_from([0, 128, 255])))
    if kind == "float":
        return codes / 255.0
    if kind == "uint8":
        return codes
    if kind == "bool":
        return codes > 0
    return draw(images(min_side=1, max_side=12, channels=(None,)))


@settings(max_examples=examples(60))
@given(st.data())
def test_closed_form_matting(data):
    draw = data.draw
    image = photo_like(draw, side=(4, 14)) if draw(st.booleans()) else draw(any_image())
    trimap = draw(trimaps(np.shape(image)[:2]))
    kwargs = {name: draw(ANY_VALUE) for name in ("eps", "radius", "fg_threshold", "bg_threshold",
                                                  "maxiter") if draw(st.integers(0, 9)) == 0}
    alpha = call(unmix.closed_form_matting, image, trimap,
                 names=public_names(unmix.closed_form_matting), **kwargs)
    if alpha is not None:
        assert alpha.shape == np.shape(image)[:2] and np.isfinite(alpha).all()
        assert alpha.min() >= 0 and alpha.max() <= 1


@settings(max_examples=examples(80))
@given(st.data())
def test_layer_colors_and_composite(data):
    draw = data.draw
    image = photo_like(draw, side=(3, 12)) if draw(st.booleans()) else draw(any_image())
    shape = np.shape(image)[:2]
    valid = hnp.arrays(np.float64, shape + (draw(st.integers(1, 4)),), elements=st.floats(-0.2, 1.2))
    alphas = draw(st.one_of(
        valid, valid,
        hnp.arrays(np.float64, shape + (draw(st.integers(0, 4)),),
                   elements=st.floats(-0.2, 1.2) | st.just(np.nan)),
        images(max_side=10)))
    kwargs = {name: draw(ANY_VALUE) for name in ("regularization", "gradient_weight",
                                                  "small_size", "n_small_iterations",
                                                  "n_big_iterations")
              if draw(st.integers(0, 4)) == 0}
    colors = call(unmix.estimate_layer_colors, image, alphas,
                  names=public_names(unmix.estimate_layer_colors), **kwargs)
    if colors is not None:
        assert colors.shape == np.shape(alphas) + (3,) and np.isfinite(colors).all()
    alpha = alphas[..., 0] if np.ndim(alphas) == 3 and np.shape(alphas)[2] else alphas
    background = draw(st.one_of(ANY_VALUE, st.just((0.0, 0.5, 1.0)), images(max_side=10)))
    out = call(unmix.composite, image, alpha, background=background,
               names=public_names(unmix.composite) | {"foreground"})
    if out is not None:
        assert out.shape == shape + (3,) and np.isfinite(out).all()


@settings(max_examples=examples(80))
@given(st.one_of(valid_images(shape=(9, 11)), images(channels=(None, 1, 3))), st.data())
def test_matting_metrics(pred, data):
    target = data.draw(st.one_of(valid_images(shape=np.shape(pred)),
                                 images(channels=(None, 1, 3))))
    trimap = data.draw(st.one_of(st.none(), trimaps(np.shape(pred)[:2])))
    for metric in (metrics.sad, metrics.mse, metrics.gradient_error, metrics.connectivity_error):
        value = call(metric, pred, target, trimap, names=["pred", "target", "trimap"])
        if value is not None:
            assert np.isfinite(value) and value >= 0


@settings(max_examples=examples(60))
@given(st.data())
def test_smallest_eigenpairs(data):
    import scipy.sparse as sp

    from unmix.spectral import smallest_eigenpairs

    draw = data.draw
    n = draw(st.integers(0, 12))
    dense = draw(hnp.arrays(np.float64, (n, n), elements=st.floats(-10, 10) if draw(st.integers(0, 3))
                            else st.floats(-1e200, 1e200) | st.sampled_from([0.0, np.nan, 1.0])))
    if draw(st.integers(0, 3)):
        dense = dense + dense.T  # symmetric (may overflow to inf: refused)
    L = sp.csr_matrix(dense) if draw(st.booleans()) else dense
    kwargs = {name: draw(ANY_VALUE) for name in ("tol", "maxiter", "sigma", "random_state",
                                                  "method") if draw(st.integers(0, 9)) == 0}
    kwargs["k"] = draw(st.integers(1, max(n - 1, 1)) if draw(st.integers(0, 3)) else ANY_VALUE)
    out = call(smallest_eigenpairs, L, names=public_names(smallest_eigenpairs), **kwargs)
    if out is not None:
        vals, vecs = out
        assert np.isfinite(vals).all() and np.isfinite(vecs).all()


@settings(max_examples=examples(60))
@given(any_image(max_side=8), st.sampled_from(["a.png", "a.png", "a.jpg", "a.tif", "a", "a.xyz", "dir",
                                            "missing/a.png", "file.png/a.png"]),
       st.sampled_from([8, 16, 12, True]))
def test_write_then_read_image(tmp_path_factory, image, name, bit_depth):
    folder = tmp_path_factory.mktemp("io")
    (folder / "dir").mkdir()
    (folder / "file.png").write_bytes(b"not an image")
    path = folder / name
    before = sorted(p.name for p in folder.iterdir())
    written = call(lambda: unmix.write_image(path, image, bit_depth=bit_depth) or True,
                   names=["image", "bit_depth", "path"])
    if written is None:  # nothing half-written is left behind
        assert sorted(p.name for p in folder.iterdir()) == before
        return
    back = call(unmix.read_image, path, names=["path", "image"])  # e.g. 1×1: too small to read
    if back is not None:
        assert back.shape[:2] == image.shape[:2] and np.isfinite(back).all()


#: Command lines: a subcommand, an input, options with arbitrary values, an output.
OPTION_VALUES = st.sampled_from(["0", "-1", "3", "1.5", "abc", "100000", "", "nan"])


@settings(max_examples=examples(25))
@given(st.data())
def test_cli(tmp_path_factory, capsys, data):
    draw = data.draw
    folder = tmp_path_factory.mktemp("cli")
    unmix.write_image(folder / "in.png", photo_like(draw, side=(10, 16)))
    (folder / "junk.png").write_bytes(b"junk")
    (folder / "file").write_text("a file")
    command = draw(st.sampled_from(["sss", "colors", "matte", "eigenvectors"]))
    source = draw(st.sampled_from(["in.png", "junk.png", "missing.png", "--example"]))
    if command == "matte":
        unmix.write_image(folder / "trimap.png", np.full((10, 10), 0.5))
        argv = [command, str(folder / ("in.png" if source == "--example" else source)),
                str(folder / "trimap.png")]
        out = draw(st.sampled_from(["alpha.png", "alpha", "file/alpha.png", "alpha.jpg"]))
        options = ["--eps", "--radius", "--bit-depth"]
    else:
        argv = [command, *(["--example", "coffee", "--size", "16", "20"] if source == "--example"
                           else [str(folder / source)])]
        out = draw(st.sampled_from(["out", "file", "out/deeper"]))
        options = {"sss": ["--segments", "--seed", "--mode", "--features"],
                   "colors": ["--layers", "--palette", "--method"],
                   "eigenvectors": ["--k", "--show"]}[command]
        if command == "sss":
            argv += ["--mode", "fast", "--features", "handcrafted"]
    for option in draw(st.lists(st.sampled_from(options), max_size=2, unique=True)):
        argv += [option, draw(OPTION_VALUES)]
    argv += ["-o", str(folder / out)]
    try:
        status = main(argv)
    except SystemExit as exc:  # argparse's own usage errors
        status = exc.code
    err = capsys.readouterr().err
    assert status in (0, 1, 2)
    assert "Traceback" not in err
    if status and not err.startswith("usage:"):
        # Progress bars may precede it (on stderr, redrawn with \r): the error is one line.
        assert err.count("unmix: error: ") == 1 and err.endswith("\n"), err
        last = err.rstrip("\n").rsplit("\n", 1)[-1].rsplit("\r", 1)[-1]
        assert last.startswith("unmix: error: ") and err.split("unmix: error: ")[1].count("\n") == 1


# --------------------------------------------------------------------------- every stage
@functools.lru_cache(maxsize=None)
def _valid_arguments():
    """Valid arguments for every public stage function, on a 16×20 photograph.

    Each entry: name → (function, keyword arguments that make a valid call).
    """
    import scipy.sparse as sp  # noqa: F401  (the Laplacians are SciPy matrices)

    from unmix import color, features, filters, graph, matting, spectral
    from unmix.image import example_image

    image = example_image("coffee", (16, 20))
    shape = image.shape[:2]
    rng = np.random.default_rng(0)
    superpixels = graph.superpixels(image, 30)
    F = features.feature_image("handcrafted", image)
    raw = rng.random(shape + (7,))
    L = graph.matting_laplacian(image)
    vals, vecs = spectral.smallest_eigenpairs(L, 8)
    labels = spectral.kmeans_init(F, 6)
    alphas = rng.dirichlet(np.ones(3), size=shape)
    alpha = alphas[:, :, 0]
    models = color.ColorModels.from_palette([[0.1, 0.05, 0.02], [0.8, 0.5, 0.3], [0.9, 0.9, 0.8]])
    colours = np.repeat(image[:, :, None], 3, axis=2)
    layers = unmix.Layers(alphas, colours)
    return {
        "color_affinity": (graph.color_affinity, dict(image=image, sp=superpixels)),
        "laplacian": (graph.laplacian, dict(W=graph.matting_affinity(image))),
        "matting_affinity": (graph.matting_affinity, dict(image=image, eps=1e-7, radius=1)),
        "matting_laplacian": (graph.matting_laplacian, dict(image=image, eps=1e-7, radius=1)),
        "semantic_affinity": (graph.semantic_affinity, dict(features=F, sp=superpixels)),
        "sss_laplacian": (graph.sss_laplacian, dict(image=image, features=F, sp=superpixels)),
        "superpixels": (graph.superpixels, dict(image=image, n_segments=30, compactness=1e-20)),
        "feature_image": (features.feature_image, dict(features=raw, image=image, clamp=5.0,
                                                       window=4, eps=0.01)),
        "handcrafted_features": (features.handcrafted_features, dict(image=image, window=4)),
        "pca_features": (features.pca_features, dict(features=raw, n_components=3)),
        "preprocess_features": (features.preprocess_features, dict(features=raw, image=image,
                                                                   window=4)),
        "constrained_sparsification": (spectral.constrained_sparsification, dict(
            eigvecs=vecs, eigvals=vals, init=labels, shape=shape, n_components=6, iterations=2,
            sparsity=0.8, prune_threshold=0.1)),
        "eigen_residuals": (spectral.eigen_residuals, dict(L=L, eigvals=vals, eigvecs=vecs)),
        "group_segments": (spectral.group_segments, dict(alphas=alphas, features=F, n_groups=2,
                                                         random_state=0, n_init=2)),
        "kmeans_init": (spectral.kmeans_init, dict(features=F, n_components=6, random_state=0)),
        "prune_schedule": (spectral.prune_schedule, dict(iterations=10, prune_every=3)),
        "relaxed_sparsification": (spectral.relaxed_sparsification, dict(
            alphas=alphas, L=L, image=image, iterations=1, lam=100.0, rtol=1e-6, maxiter=20)),
        "segment_mean_features": (spectral.segment_mean_features, dict(alphas=alphas, features=F)),
        "sparsity_exponent": (spectral.sparsity_exponent, dict(image=image)),
        "estimate_foreground": (matting.estimate_foreground, dict(image=image, alpha=alpha)),
        "split_trimap": (matting.split_trimap, dict(
            trimap=np.where(alpha > 0.6, 1.0, np.where(alpha < 0.2, 0.0, 0.5)),
            fg_threshold=0.9, bg_threshold=0.1)),
        "trimap_from_alpha": (matting.trimap_from_alpha, dict(alpha=alpha, band=2)),
        "trimap_from_segment": (matting.trimap_from_segment, dict(segments=alphas, index=0,
                                                                  band=2)),
        "alpha_sum_error": (metrics.alpha_sum_error, dict(layers=layers)),
        "alpha_tv": (metrics.alpha_tv, dict(layers=layers)),
        "box_violation": (metrics.box_violation, dict(layers=layers)),
        "color_variance": (metrics.color_variance, dict(layers=layers)),
        "sparsity": (metrics.sparsity, dict(layers=layers)),
        "reconstruction_mse": (metrics.reconstruction_mse, dict(image=image, layers=layers)),
        "soft_color_metrics": (metrics.soft_color_metrics, dict(image=image, layers=layers)),
        "best_layer_union": (metrics.best_layer_union, dict(layers=alphas, alpha_true=alpha)),
        "matting_errors": (metrics.matting_errors, dict(pred=alpha, target=alphas[:, :, 1])),
        "box_filter": (filters.box_filter, dict(image=image, window=3)),
        "guided_filter": (filters.guided_filter, dict(src=alpha, guide=image, window=3,
                                                      eps=1e-3)),
        "image_gradient": (filters.image_gradient, dict(image=image)),
        "estimate_color_models": (color.estimate_color_models, dict(image=image, n_models=3,
                                                                    radius=3)),
        "initial_solution": (color.initial_solution, dict(pixels=image, models=models)),
        "closed_form_colors": (color.closed_form_colors, dict(pixels=image, models=models,
                                                              alphas=alphas)),
        "matte_radius": (color.matte_radius, dict(shape=shape)),
        "refine_colors": (color.refine_colors, dict(image=image, models=models, alphas=alphas)),
        "regularize_alphas": (color.regularize_alphas, dict(image=image, alphas=alphas,
                                                            radius=3, eps=1e-4)),
        "representation_score": (color.representation_score, dict(colors=image, models=models)),
        "sparse_color_unmixing": (color.sparse_color_unmixing, dict(pixels=image[:4, :4],
                                                                    models=models)),
        "unmixing_energy": (color.unmixing_energy, dict(pixels=image, models=models,
                                                        alphas=alphas, colors=colours)),
        "to_overlay": (color.to_overlay, dict(alphas=alphas)),
        "from_overlay": (color.from_overlay, dict(opacities=color.to_overlay(alphas))),
        "segment_palette": (unmix.layers.segment_palette, dict(n=4)),
        "Layers": (unmix.Layers, dict(alphas=alphas, colors=colours)),
        "Layers.visualize": (layers.visualize, dict(palette=unmix.layers.segment_palette(3))),
        "Layers.to_rgba": (layers.to_rgba, dict(layers=[0, 1], blend="add")),
        "Layers.composite": (layers.composite, dict(background=0.5, layers=0)),
    }


ENTRY_POINTS = ["color_affinity", "laplacian", "matting_affinity", "matting_laplacian",
                "semantic_affinity", "sss_laplacian", "superpixels", "feature_image",
                "handcrafted_features", "pca_features", "preprocess_features",
                "constrained_sparsification", "eigen_residuals", "group_segments",
                "kmeans_init", "prune_schedule", "relaxed_sparsification",
                "segment_mean_features", "sparsity_exponent", "estimate_foreground",
                "split_trimap", "trimap_from_alpha", "trimap_from_segment", "alpha_sum_error",
                "alpha_tv", "box_violation", "color_variance", "sparsity", "reconstruction_mse",
                "soft_color_metrics", "best_layer_union", "matting_errors", "box_filter",
                "guided_filter", "image_gradient", "estimate_color_models", "initial_solution",
                "closed_form_colors", "matte_radius", "refine_colors", "regularize_alphas",
                "representation_score", "sparse_color_unmixing", "unmixing_energy",
                "to_overlay", "from_overlay", "segment_palette", "Layers", "Layers.visualize",
                "Layers.to_rgba", "Layers.composite"]


def finite_outputs(value):
    """Whether every array and float in a (nested) result is finite."""
    if isinstance(value, np.ndarray) and value.dtype.kind in "fc":
        return bool(np.isfinite(value).all())
    if isinstance(value, float):
        return np.isfinite(value)
    if isinstance(value, (tuple, list)):
        return all(finite_outputs(v) for v in value)
    if isinstance(value, dict):
        return all(finite_outputs(v) for v in value.values())
    if isinstance(value, unmix.Layers):
        return finite_outputs(value.alphas) and finite_outputs(value.colors)
    return True


@pytest.mark.parametrize("entry", ENTRY_POINTS)
def test_valid_arguments_are_valid(entry):
    f, kwargs = _valid_arguments()[entry]
    assert finite_outputs(call(f, names=(), **kwargs))


@settings(max_examples=examples(250))
@given(st.sampled_from(ENTRY_POINTS), st.data())
def test_one_bad_argument(entry, data):
    """Every stage, with one of its arguments replaced by an arbitrary value."""
    f, kwargs = _valid_arguments()[entry]
    kwargs = dict(kwargs)
    name = data.draw(st.sampled_from(sorted(kwargs)))
    kwargs[name] = data.draw(st.one_of(ANY_VALUE, images(max_side=8), any_image(max_side=20)))
    result = call(f, names=public_names(f) | {name}, **kwargs)
    assert finite_outputs(result)
