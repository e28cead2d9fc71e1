import numpy as np
import pytest

from unmix.filters import box_filter, guided_filter, image_gradient


def brute_box(x, window):
    """Mean over rows y - lo … y + hi (clamped), MATLAB's anchor for even windows."""
    lo = (window + 1) // 2 - 1
    hi = window - 1 - lo
    height, width = x.shape[:2]
    out = np.zeros_like(x, dtype=np.float64)
    for y in range(height):
        for x_ in range(width):
            rows = np.clip(np.arange(y - lo, y + hi + 1), 0, height - 1)
            cols = np.clip(np.arange(x_ - lo, x_ + hi + 1), 0, width - 1)
            out[y, x_] = x[np.ix_(rows, cols)].mean(axis=(0, 1))
    return out


@pytest.mark.parametrize("window", [1, 3, 4, 10, 25])
def test_box_filter_against_brute_force(photo, window):
    image = photo("chelsea", (20, 24))
    np.testing.assert_allclose(box_filter(image, window), brute_box(image, window), atol=1e-13)
    np.testing.assert_allclose(box_filter(image[..., 0], window), brute_box(image, window)[..., 0], atol=1e-13)


def test_even_window_is_matlab_anchored():
    impulse = np.zeros((30, 30))
    impulse[15, 15] = 1.0
    rows = np.flatnonzero(box_filter(impulse, 10)[:, 15])
    # output pixel y covers y - 4 … y + 5, so the impulse reaches y = 10 … 19
    np.testing.assert_array_equal(rows, np.arange(10, 20))


def brute_guided(p, guide, window, eps):
    """He et al.'s guided filter written out per pixel with dense solves."""
    lo = (window + 1) // 2 - 1
    hi = window - 1 - lo
    height, width = p.shape
    colour = guide.ndim == 3
    g = guide if colour else guide[:, :, None]
    a = np.zeros((height, width, g.shape[2]))
    b = np.zeros((height, width))
    for y in range(height):
        for x in range(width):
            rows = np.clip(np.arange(y - lo, y + hi + 1), 0, height - 1)
            cols = np.clip(np.arange(x - lo, x + hi + 1), 0, width - 1)
            G = g[np.ix_(rows, cols)].reshape(-1, g.shape[2])
            P = p[np.ix_(rows, cols)].ravel()
            mu, mp = G.mean(axis=0), P.mean()
            sigma = (G - mu).T @ (G - mu) / len(P)
            cov = (G - mu).T @ (P - mp) / len(P)
            a[y, x] = np.linalg.solve(sigma + eps * np.eye(g.shape[2]), cov)
            b[y, x] = mp - a[y, x] @ mu
    return np.einsum("yxc,yxc->yx", brute_box(a, window), g) + brute_box(b, window)


@pytest.mark.parametrize("window, eps", [(3, 1e-4), (10, 0.01), (7, 1e-6)])
def test_grey_guided_filter_against_brute_force(photo, window, eps):
    image = photo("coffee", (18, 22))
    p = image[..., 0] * image[..., 2]
    expected = brute_guided(p, image[..., 1], window, eps)
    np.testing.assert_allclose(guided_filter(p, image[..., 1], window, eps), expected, atol=1e-10)


@pytest.mark.parametrize("window, eps", [(3, 1e-4), (10, 0.01), (7, 1e-6)])
def test_colour_guided_filter_against_brute_force(photo, window, eps):
    image = photo("astronaut", (18, 22))
    src = np.stack([image[..., 0] ** 2, image[..., 1]], axis=2)
    out = guided_filter(src, image, window, eps)
    for c in range(2):
        np.testing.assert_allclose(out[..., c], brute_guided(src[..., c], image, window, eps), atol=1e-8)


def test_guided_filter_keeps_constants_and_edges(photo):
    image = photo("coffee", (30, 40))
    np.testing.assert_allclose(guided_filter(np.full((30, 40), 0.3), image, 5, 1e-3), 0.3, atol=1e-12)
    # filtering the guide by itself with a tiny ε is nearly the identity (edge-preserving)
    grey = image.mean(axis=2)
    assert np.abs(guided_filter(grey, grey, 5, 1e-8) - grey).max() < 1e-3


def brute_gradient(image):
    """Replicate-pad by 13, separable 'same' convolutions, crop (spec §12.1)."""
    from unmix.filters import _FARID_DERIVATIVE as d, _FARID_INTERPOLATION as k

    padded = np.pad(image, ((13, 13), (13, 13), (0, 0)), mode="edge")

    def conv(x, taps, axis):
        return np.apply_along_axis(lambda v: np.convolve(v, taps, mode="same"), axis, x)

    gy = conv(conv(padded, d, 0), k, 1)[13:-13, 13:-13]
    gx = conv(conv(padded, k, 0), d, 1)[13:-13, 13:-13]
    return np.hypot(np.sqrt((gx**2).sum(axis=2)), np.sqrt((gy**2).sum(axis=2)))


def test_image_gradient_against_padded_convolution(photo):
    image = photo("rocket", (20, 30))
    np.testing.assert_allclose(image_gradient(image), brute_gradient(image), atol=1e-14)


def test_image_gradient_of_a_ramp():
    ramp = np.tile(np.linspace(0, 1, 40), (30, 1))
    magnitude = image_gradient(np.stack([ramp] * 3, axis=2))
    # away from the borders: slope 1/39 per pixel, times the filters' gains, in 3 channels
    d = np.array([0.0001, 0.0019, 0.0142, 0.0509, 0.0963, 0.0878, 0])
    gain = np.sum(d * np.arange(6, -1, -1)) * 2  # Σ_i d_i (c - i)
    assert magnitude[15, 20] == pytest.approx(np.sqrt(3) * gain / 39, rel=1e-3)


def test_bad_inputs():
    with pytest.raises(ValueError, match="window"):
        box_filter(np.zeros((4, 4)), 0)
    with pytest.raises(ValueError, match="NaN"):
        box_filter(np.full((4, 4), np.nan), 3)
    with pytest.raises(ValueError, match="eps"):
        guided_filter(np.zeros((4, 4)), np.zeros((4, 4)), 3, 0)
    with pytest.raises(ValueError, match="same height and width"):
        guided_filter(np.zeros((4, 4)), np.zeros((5, 4)), 3, 0.1)
    with pytest.raises(ValueError, match="guide must be grey"):
        guided_filter(np.zeros((4, 4)), np.zeros((4, 4, 2)), 3, 0.1)
    with pytest.raises(TypeError, match="numeric"):
        image_gradient(np.full((4, 4), "a"))
    with pytest.raises(ValueError, match="dimensions"):
        image_gradient(np.zeros(4))
