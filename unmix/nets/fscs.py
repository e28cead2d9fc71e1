"""Fast Soft Color Segmentation (Akimoto, Zhu, Jin, Aoki, CVPR 2020) in PyTorch.

Two small U-Nets turn an image and a palette of K colours into K RGBA
layers that add up to the image: the alpha predictor gives the mattes, the
residue predictor each layer's per-pixel colour offset from its palette
colour (spec ``fscs.md``). This module reproduces the authors' released
inference; its module attribute names equal the keys of the released
state_dicts (K = 7), so :func:`load_fscs` reads those files as they are.

Stages (each usable alone on tensors, see :class:`FSCS`):

1. palette: given, or :func:`kmeans_palette` (the release's k-means);
2. alphas: the alpha predictor, then α ← α / (Σ α + 1e-8) (paper Eq. 5);
3. alpha processing: an optional mask operation, the grey guided filter
   (r = 3, ε = 1e-6, :func:`fscs_guided_filter`, float64 here) and a
   second normalisation;
4. colours: u = clamp(p + residue, 0, 1), from the residue predictor.

:func:`fscs_segments` runs them on an array and returns :class:`unmix.Layers`.
"""

import os

import numpy as np

from .._stages import Stages
from ..image import as_float_image
from ..layers import Layers
from ._torch import (
    check_state_dict,
    image_tensor,
    load_weights,
    module_device,
    pad_to_multiple,
    resolve_device,
    torch,
)

nn = torch.nn
F = torch.nn.functional

__all__ = ["AlphaPredictor", "FSCS", "MODES", "ResiduePredictor", "fscs_guided_filter",
           "fscs_segments", "kmeans_palette", "load_fscs"]

#: Alpha processing variants (spec §8): the release with a float64 guided
#: filter; the release's float32 filter; clipped to [0, 1] and renormalised;
#: no guided filter.
MODES = ("default", "upstream_fp32", "clean", "no_filter")
#: File names of the released weights (``src/results/sample/`` in the release).
WEIGHT_FILES = ("mask_generator.pth", "residue_predictor.pth")
#: Guided filter radius r and regulariser ε of the release.
GUIDED_RADIUS, GUIDED_EPS = 3, 1e-6
#: Luma weights of the guided filter's grey guide.
_LUMA = (0.299, 0.587, 0.114)


class _UNet(nn.Module):
    """The release's U-Net of input width D (spec §2): ReLU then BatchNorm, three stride-2 stages.

    Its last skip connection concatenates the first three input channels (the image).
    """

    def __init__(self, in_channels, out_channels):
        super().__init__()
        d = in_channels

        def conv(cin, cout, stride, bias=False):
            return nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=bias)

        def deconv(cin, cout):
            return nn.ConvTranspose2d(cin, cout, 3, stride=2, padding=1, output_padding=1,
                                      bias=False)

        self.conv1, self.bn1 = conv(d, 2 * d, 2), nn.BatchNorm2d(2 * d)
        self.conv2, self.bn2 = conv(2 * d, 4 * d, 2), nn.BatchNorm2d(4 * d)
        self.conv3, self.bn3 = conv(4 * d, 8 * d, 2), nn.BatchNorm2d(8 * d)
        self.deconv1, self.bnde1 = deconv(8 * d, 4 * d), nn.BatchNorm2d(4 * d)
        self.deconv2, self.bnde2 = deconv(8 * d, 2 * d), nn.BatchNorm2d(2 * d)
        self.deconv3, self.bnde3 = deconv(4 * d, 2 * d), nn.BatchNorm2d(2 * d)
        self.conv4, self.bn4 = conv(2 * d + 3, d, 1, bias=True), nn.BatchNorm2d(d)
        self.conv5 = conv(d, out_channels, 1, bias=True)

    def body(self, x):
        """The network before its head: x (N, D, H, W), H and W multiples of 8."""
        h1 = self.bn1(F.relu(self.conv1(x)))
        h2 = self.bn2(F.relu(self.conv2(h1)))
        h3 = self.bn3(F.relu(self.conv3(h2)))
        h = torch.cat([self.bnde1(F.relu(self.deconv1(h3))), h2], dim=1)
        h = torch.cat([self.bnde2(F.relu(self.deconv2(h))), h1], dim=1)
        h = torch.cat([self.bnde3(F.relu(self.deconv3(h))), x[:, :3]], dim=1)
        return self.conv5(self.bn4(F.relu(self.conv4(h))))


class AlphaPredictor(_UNet):
    """FSCS alpha predictor (the release's ``MaskGenerator``), D = 3 + 3K.

    Input: the image (3 channels), then the palette pack [p0R, p0G, p0B,
    p1R, ...] as constant planes; output: K sigmoid alphas (not normalised).

    Parameters
    ----------
    n_layers : int, optional
        K, the number of layers (7 for the released weights).

    Examples
    --------
    >>> import torch
    >>> from unmix.nets import AlphaPredictor
    >>> net = AlphaPredictor(n_layers=3).eval()
    >>> planes = torch.rand(1, 3 + 3 * 3, 16, 16)     # the image, then the palette as planes
    >>> with torch.no_grad():
    ...     alphas = net(planes)
    >>> alphas.shape
    torch.Size([1, 3, 16, 16])
    """

    def __init__(self, n_layers=7):
        super().__init__(3 + 3 * n_layers, n_layers)
        self.n_layers = n_layers

    def forward(self, x):
        return torch.sigmoid(self.body(x))


class ResiduePredictor(_UNet):
    """FSCS residue predictor (the release's ``ResiduePredictor``), D = 3 + 4K.

    Input: the image (3 channels), then per layer [p_iR, p_iG, p_iB, α_i];
    output: 3K residues, tanh then minus their mean over the image (the
    "zero-centred residues"; a global, image-size-dependent step). Channel
    c of layer i is output channel 3i + c.

    Parameters
    ----------
    n_layers : int, optional
        K, the number of layers (7 for the released weights).

    Examples
    --------
    >>> import torch
    >>> from unmix.nets import ResiduePredictor
    >>> net = ResiduePredictor(n_layers=3).eval()
    >>> with torch.no_grad():
    ...     residues = net(torch.rand(1, 3 + 4 * 3, 16, 16))
    >>> residues.shape
    torch.Size([1, 9, 16, 16])
    """

    def __init__(self, n_layers=7):
        super().__init__(3 + 4 * n_layers, 3 * n_layers)
        self.n_layers = n_layers

    def forward(self, x):
        residue = torch.tanh(self.body(x))
        return residue - residue.mean(dim=(2, 3), keepdim=True)


def _window_sum(x, radius, dim):
    """Sums of x over windows [i − r, i + r] clipped to the array, along ``dim``."""
    n = x.shape[dim]
    cumulative = x.cumsum(dim)
    shape = list(x.shape)
    shape[dim] = radius + 1
    zeros = x.new_zeros(shape)
    shape[dim] = radius
    last = cumulative.narrow(dim, n - 1, 1).expand(shape)
    # extended[k] = Σ_{i < clamp(k − r, 0, n)} x_i for k = 0 … n + 2r.
    extended = torch.cat([zeros, cumulative, last], dim=dim)
    return extended.narrow(dim, 2 * radius + 1, n) - extended.narrow(dim, 0, n)


def _box_sum(x, radius):
    return _window_sum(_window_sum(x, radius, 2), radius, 3)


def fscs_guided_filter(guide, src, radius=GUIDED_RADIUS, eps=GUIDED_EPS):
    """The grey guided filter FSCS applies to its alphas (spec §6), in the inputs' dtype.

    Windows are (2r + 1)² boxes truncated at the border (means over the
    in-image pixels), as ``guided_filter_pytorch`` computes them; this
    differs from :func:`unmix.filters.guided_filter`'s replicate borders
    within 2r of the border only.

    Parameters
    ----------
    guide : torch.Tensor, shape (N, 1, H, W)
    src : torch.Tensor, shape (N, C, H, W)
        Same dtype and device as ``guide``. Use float64: with ε = 1e-6 the
        float32 variance E[g²] − E[g]² cancels catastrophically in flat regions.
    radius : int, optional
    eps : float, optional

    Returns
    -------
    torch.Tensor, shape (N, C, H, W)

    Examples
    --------
    >>> import torch
    >>> from unmix.nets import fscs_guided_filter
    >>> guide = torch.rand(1, 1, 16, 16, dtype=torch.float64)
    >>> src = torch.rand(1, 2, 16, 16, dtype=torch.float64)
    >>> fscs_guided_filter(guide, src, radius=3, eps=1e-6).shape
    torch.Size([1, 2, 16, 16])
    """
    count = _box_sum(torch.ones_like(guide), radius)

    def mean(x):
        return _box_sum(x, radius) / count

    mean_g, mean_p = mean(guide), mean(src)
    cov = mean(guide * src) - mean_g * mean_p
    var = mean(guide * guide) - mean_g * mean_g
    a = cov / (var + eps)
    b = mean_p - a * mean_g
    return mean(a) * guide + mean(b)


def _normalize(alphas):
    return alphas / (alphas.sum(dim=1, keepdim=True) + 1e-8)


class FSCS(nn.Module):
    """Both FSCS networks, and the release's inference on tensors.

    Parameters
    ----------
    n_layers : int, optional
        K (7 for the released weights).

    Attributes
    ----------
    alpha_predictor : AlphaPredictor
    residue_predictor : ResiduePredictor

    Notes
    -----
    Inputs are float tensors: ``x`` of shape (N, 3, H, W) in [0, 1] with H
    and W multiples of 8, ``palette`` of shape (K, 3) or (N, K, 3) in [0, 1].
    Keep the module in eval mode (:func:`load_fscs` returns it so):
    BatchNorm with batch statistics gives other outputs.

    Examples
    --------
    >>> import torch
    >>> from unmix.nets import FSCS
    >>> _ = torch.manual_seed(0)
    >>> fscs = FSCS(n_layers=3).eval()            # random weights here
    >>> x = torch.rand(1, 3, 16, 16)              # sides multiples of 8
    >>> palette = torch.tensor([[0.9, 0.1, 0.1], [0.1, 0.9, 0.1], [0.1, 0.1, 0.9]])
    >>> with torch.no_grad():
    ...     alphas, colors = fscs(x, palette)
    >>> alphas.shape, colors.shape
    (torch.Size([1, 3, 16, 16]), torch.Size([1, 3, 3, 16, 16]))
    >>> bool(torch.allclose(alphas.sum(dim=1), torch.ones_like(alphas[:, 0]), atol=1e-5))
    True
    """

    def __init__(self, n_layers=7):
        super().__init__()
        self.alpha_predictor = AlphaPredictor(n_layers)
        self.residue_predictor = ResiduePredictor(n_layers)

    @property
    def n_layers(self):
        """K, the number of layers."""
        return self.alpha_predictor.n_layers

    def _planes(self, x, palette):
        """The palette as constant planes (N, K, 3, H, W) in the dtype of x."""
        n, _, height, width = x.shape
        palette = palette.to(x).reshape(-1, self.n_layers, 3, 1, 1)
        return palette.expand(n, -1, -1, height, width)

    def predict_alphas(self, x, palette):
        """Stage 2: normalised alphas (N, K, H, W) of the alpha predictor (spec §5 steps 4–6).

        Examples
        --------
        >>> import torch
        >>> from unmix.nets import FSCS
        >>> _ = torch.manual_seed(0)
        >>> fscs = FSCS(n_layers=3).eval()            # random weights here
        >>> x = torch.rand(1, 3, 16, 16)              # sides multiples of 8
        >>> palette = torch.tensor([[0.9, 0.1, 0.1], [0.1, 0.9, 0.1], [0.1, 0.1, 0.9]])
        >>> with torch.no_grad():
        ...     alphas = fscs.predict_alphas(x, palette)
        >>> alphas.shape, bool(torch.allclose(alphas.sum(dim=1), torch.ones(1, 16, 16), atol=1e-5))
        (torch.Size([1, 3, 16, 16]), True)
        """
        planes = self._planes(x, palette).reshape(x.shape[0], -1, *x.shape[2:])
        return _normalize(self.alpha_predictor(torch.cat([x, planes], dim=1)))

    def process_alphas(self, x, alphas, mode="default", mask_op=None):
        """Stage 3: mask operation, guided filter and renormalisation (spec §5 steps 7–9).

        Parameters
        ----------
        x : torch.Tensor, shape (N, 3, H, W)
        alphas : torch.Tensor, shape (N, K, H, W)
            From :meth:`predict_alphas`.
        mode : {"default", "upstream_fp32", "clean", "no_filter"}, optional
            See :func:`fscs_segments`.
        mask_op : (int, int, torch.Tensor), optional
            Layers A and B and a boolean mask (H, W): α_A ← (α_A + α_B)·m and
            α_B ← (α_A + α_B)·(1 − m), before the filter.

        Returns
        -------
        torch.Tensor, shape (N, K, H, W)
            float64, except float32 in mode ``"upstream_fp32"``.

        Examples
        --------
        >>> import torch
        >>> from unmix.nets import FSCS
        >>> _ = torch.manual_seed(0)
        >>> fscs = FSCS(n_layers=3).eval()            # random weights here
        >>> x = torch.rand(1, 3, 16, 16)              # sides multiples of 8
        >>> palette = torch.tensor([[0.9, 0.1, 0.1], [0.1, 0.9, 0.1], [0.1, 0.1, 0.9]])
        >>> with torch.no_grad():
        ...     alphas = fscs.process_alphas(x, fscs.predict_alphas(x, palette))
        >>> alphas.shape
        torch.Size([1, 3, 16, 16])
        """
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
        dtype = torch.float32 if mode == "upstream_fp32" else torch.float64
        alphas = alphas.to(dtype)
        if mask_op is not None:
            first, second, mask = mask_op
            mask = mask.to(alphas)
            merged = alphas[:, first] + alphas[:, second]
            alphas = alphas.clone()
            alphas[:, first], alphas[:, second] = merged * mask, merged * (1 - mask)
        if mode == "no_filter":
            return alphas
        luma = torch.tensor(_LUMA, dtype=dtype, device=x.device).reshape(1, 3, 1, 1)
        grey = (x.to(dtype) * luma).sum(dim=1, keepdim=True)
        alphas = _normalize(fscs_guided_filter(grey, alphas))
        if mode == "clean":
            alphas = _normalize(alphas.clamp(0.0, 1.0))
        return alphas

    def predict_colors(self, x, palette, alphas):
        """Stage 4: layer colours u = clamp(p + residue, 0, 1), shape (N, K, 3, H, W).

        Examples
        --------
        >>> import torch
        >>> from unmix.nets import FSCS
        >>> _ = torch.manual_seed(0)
        >>> fscs = FSCS(n_layers=3).eval()            # random weights here
        >>> x = torch.rand(1, 3, 16, 16)              # sides multiples of 8
        >>> palette = torch.tensor([[0.9, 0.1, 0.1], [0.1, 0.9, 0.1], [0.1, 0.1, 0.9]])
        >>> with torch.no_grad():
        ...     colors = fscs.predict_colors(x, palette, fscs.predict_alphas(x, palette))
        >>> colors.shape, bool(colors.min() >= 0 and colors.max() <= 1)
        (torch.Size([1, 3, 3, 16, 16]), True)
        """
        planes = self._planes(x, palette)
        pack = torch.cat([planes, alphas.to(x)[:, :, None]], dim=2)
        residue = self.residue_predictor(torch.cat([x, pack.flatten(1, 2)], dim=1))
        return (planes + residue.reshape(planes.shape)).clamp(0.0, 1.0)

    def forward(self, x, palette, mode="default", mask_op=None):
        """All stages: returns (alphas (N, K, H, W), colours (N, K, 3, H, W)).

        Examples
        --------
        >>> import torch
        >>> from unmix.nets import FSCS
        >>> _ = torch.manual_seed(0)
        >>> fscs = FSCS(n_layers=3).eval()            # random weights here
        >>> x = torch.rand(1, 3, 16, 16)              # sides multiples of 8
        >>> palette = torch.tensor([[0.9, 0.1, 0.1], [0.1, 0.9, 0.1], [0.1, 0.1, 0.9]])
        >>> with torch.no_grad():
        ...     alphas, colors = fscs(x, palette, mode="clean")     # alphas clipped to [0, 1]
        >>> bool(alphas.min() >= 0 and alphas.max() <= 1)
        True
        """
        alphas = self.process_alphas(x, self.predict_alphas(x, palette), mode, mask_op)
        return alphas, self.predict_colors(x, palette, alphas)


def load_fscs(mask_path, residue_path=None, device="auto"):
    """Load FSCS from state_dict files such as the authors' released weights.

    Parameters
    ----------
    mask_path : str or os.PathLike
        The alpha predictor's state_dict (the release's
        ``mask_generator.pth``), or a directory holding both released files
        (then ``residue_path`` is left out).
    residue_path : str or os.PathLike, optional
        The residue predictor's state_dict (``residue_predictor.pth``).
    device : {"auto", "cpu", "cuda"} or torch.device, optional
        Where to load the networks (``"auto"``: CUDA when available). The
        released tensors were saved from CUDA; they are mapped here.

    Returns
    -------
    FSCS
        In eval mode, with K read from the alpha predictor's ``conv5.weight``.

    Raises
    ------
    FileNotFoundError
        If a file is missing.
    ValueError
        If a file's keys or shapes do not match the architecture (the
        message lists the missing and unexpected keys and both shapes).

    Notes
    -----
    Files are read with ``torch.load(..., weights_only=True)``, which
    unpickles tensors and containers only, never code.

    Examples
    --------
    The released weights are two state_dict files in one folder; here, random
    weights saved the same way:

    >>> import os, tempfile
    >>> import torch
    >>> from unmix.nets import FSCS, load_fscs
    >>> folder = tempfile.mkdtemp()
    >>> saved = FSCS(n_layers=7)
    >>> torch.save(saved.alpha_predictor.state_dict(), os.path.join(folder, "mask_generator.pth"))
    >>> torch.save(saved.residue_predictor.state_dict(), os.path.join(folder, "residue_predictor.pth"))
    >>> nets = load_fscs(folder, device="cpu")
    >>> nets.n_layers, nets.training
    (7, False)
    """
    if residue_path is None:
        if not os.path.isdir(mask_path):
            raise ValueError(f"residue_path is required unless mask_path is a directory holding "
                             f"{WEIGHT_FILES}; got mask_path={os.fspath(mask_path)!r}")
        mask_path, residue_path = (os.path.join(mask_path, name) for name in WEIGHT_FILES)
    device = resolve_device(device)
    states = []
    for path in (mask_path, residue_path):
        path = os.fspath(path)
        if not os.path.isfile(path):
            raise FileNotFoundError(f"FSCS weights file not found: {path!r}")
        states.append((load_weights(path, device), path))
    (alpha_state, alpha_file), (residue_state, residue_file) = states
    head = alpha_state.get("conv5.weight") if isinstance(alpha_state, dict) else None
    nets = FSCS(7 if head is None else head.shape[0])
    check_state_dict(nets.alpha_predictor, alpha_state, f"the alpha predictor file {alpha_file!r}")
    check_state_dict(nets.residue_predictor, residue_state,
                     f"the residue predictor file {residue_file!r}")
    return nets.to(device).eval()


def kmeans_palette(image, n_colors=7, random_state=0):
    """The release's automatic palette: k-means of all pixels in RGB 0–255, centres truncated.

    Parameters
    ----------
    image : array_like, shape (H, W, 3)
    n_colors : int, optional
        K (7 for the released weights).
    random_state : int, optional
        Seed of scikit-learn's ``KMeans`` (k-means++, one initialisation).

    Returns
    -------
    palette : ndarray, shape (K, 3), float64 in [0, 1]
        In k-means order; the order is part of FSCS's input.

    Examples
    --------
    >>> from unmix.image import example_image
    >>> from unmix.nets import kmeans_palette
    >>> kmeans_palette(example_image("coffee", (24, 32)), n_colors=3).shape
    (3, 3)
    """
    from sklearn.cluster import KMeans

    image = as_float_image(image)
    if not (isinstance(n_colors, (int, np.integer)) and n_colors >= 1):
        raise ValueError(f"n_colors must be a positive integer, got {n_colors!r}")
    pixels = image.reshape(-1, 3) * 255.0
    kmeans = KMeans(n_clusters=int(n_colors), n_init=1, random_state=random_state).fit(pixels)
    return np.trunc(kmeans.cluster_centers_) / 255.0


def _palette(palette, n_layers):
    arr = np.asarray(palette)
    if arr.ndim != 2 or arr.shape[1] != 3 or not np.issubdtype(arr.dtype, np.number):
        raise ValueError(f"palette must be a (K, 3) array of RGB colours, got shape {arr.shape}")
    if arr.shape[0] != n_layers:
        raise ValueError(f"palette must have K = {n_layers} colours (the networks' K), "
                         f"got {arr.shape[0]}")
    if np.issubdtype(arr.dtype, np.integer):
        arr = arr / 255.0
    arr = arr.astype(np.float64)
    if not (np.isfinite(arr).all() and arr.min() >= 0 and arr.max() <= 1):
        raise ValueError("palette must hold floats in [0, 1] or integers in 0..255, got values "
                         f"in [{arr.min():.4g}, {arr.max():.4g}]")
    return arr


def _networks(nets, device):
    if nets is None:
        nets = os.environ.get("UNMIX_FSCS_WEIGHTS")
        if nets is None:
            raise ValueError(
                "nets is required: an FSCS from load_fscs(...), or a directory holding the "
                f"released {WEIGHT_FILES} (github.com/pfnet-research/FSCS, src/results/sample/); "
                "or set the UNMIX_FSCS_WEIGHTS environment variable to that directory")
    if isinstance(nets, (str, os.PathLike)):
        return load_fscs(nets, device="auto" if device is None else device)
    if not isinstance(nets, FSCS):
        raise TypeError(f"nets must be an FSCS or a directory of weights, got {type(nets).__name__}")
    if device is not None:
        nets.to(resolve_device(device))
    return nets.eval()


def _mask(mask, shape):
    arr = np.asarray(mask)
    if arr.ndim == 3:
        arr = arr[:, :, 0]
    if arr.shape != tuple(shape):
        raise ValueError(f"the mask of mask_op must have shape {tuple(shape)}, got {np.shape(mask)}")
    return arr >= 128 if arr.dtype == np.uint8 else arr >= 0.5


def fscs_segments(image, palette=None, n_layers=None, *, nets=None, mode="default", fit="pad",
                  mask_op=None, device=None, random_state=0, progress=False):
    """Fast Soft Color Segmentation: K RGBA layers from an image and a palette.

    Follows the authors' released inference (spec ``fscs.md`` §5): alphas
    from the alpha predictor, normalised, grey guided filter (r = 3,
    ε = 1e-6, in float64), normalised again, then colours from the residue
    predictor, clamped to [0, 1].

    Parameters
    ----------
    image : array_like, shape (H, W, 3)
        uint8, uint16 or floats in [0, 1].
    palette : array_like, shape (K, 3), optional
        The layers' mean colours, floats in [0, 1] or integers 0..255, in
        order (the order changes the result). By default
        :func:`kmeans_palette` with ``random_state``.
    n_layers : int, optional
        Colours of the automatic palette; must equal the networks' K (7 for
        the released weights), the default.
    nets : FSCS or str or os.PathLike, optional
        The networks (:func:`load_fscs`), or a directory holding the
        released ``mask_generator.pth`` and ``residue_predictor.pth``; by
        default the directory in the ``UNMIX_FSCS_WEIGHTS`` environment
        variable.
    mode : {"default", "upstream_fp32", "clean", "no_filter"}, optional
        Alpha processing (spec §8): ``"default"``, the release with the
        guided filter computed in float64 (alphas are not clipped: about 2 %
        are slightly negative); ``"upstream_fp32"``, the release's float32
        filter (noisier); ``"clean"``, float64 filter, then clipped to
        [0, 1] and renormalised; ``"no_filter"``, no guided filter.
    fit : {"pad", "crop"}, optional
        The networks need sides that are multiples of 8. ``"pad"``:
        reflect-pad the bottom and right, decompose, crop the layers back to
        the image (the residue centring then sees the padding, a slight
        change). ``"crop"``: the release's behaviour, drop the last rows and
        columns; the layers then decompose ``intermediates["image"]``.
    mask_op : (int, int, array_like), optional
        The release's mask operation: layers A and B and a mask (H, W) of
        the image's shape (uint8 ≥ 128 or values ≥ 0.5 are inside); the sum
        α_A + α_B goes to A inside the mask and to B outside, before the
        guided filter.
    device : {"auto", "cpu", "cuda"} or torch.device, optional
        Where to run. By default the device of ``nets`` (``"auto"`` when they
        are loaded here); given, it moves ``nets`` there.
    random_state : int, optional
        Seed of the automatic palette.
    progress : bool, optional
        Show a progress bar over the stages.

    Returns
    -------
    Layers
        ``alphas`` (H, W, K) float64 (summing to one, not clipped except in
        mode ``"clean"``) and ``colors`` (H, W, K, 3) in [0, 1].
        ``intermediates``: ``palette`` (K, 3), ``image`` (what the layers
        decompose: the cropped image with ``fit="crop"``), ``mode``, ``fit``,
        ``shape`` (the networks' input size), ``device``,
        ``negative_alpha_fraction``, ``above_one_fraction`` and ``timings``.

    Examples
    --------
    >>> from unmix.nets import fscs_segments, load_fscs      # doctest: +SKIP
    >>> nets = load_fscs("FSCS/src/results/sample")          # doctest: +SKIP
    >>> layers = fscs_segments(image, nets=nets)             # doctest: +SKIP
    """
    image = as_float_image(image)
    if fit not in ("pad", "crop"):
        raise ValueError(f"fit must be 'pad' or 'crop', got {fit!r}")
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    nets = _networks(nets, device)
    k = nets.n_layers
    if n_layers is not None and n_layers != k:
        raise ValueError(f"n_layers must equal the networks' K = {k}, got {n_layers!r}")
    height, width = image.shape[:2]
    if fit == "crop":
        if min(height, width) < 8:
            raise ValueError(f"fit='crop' needs sides of at least 8 pixels, got {height}×{width}")
        height, width = height - height % 8, width - width % 8
        image = image[:height, :width]
        net_input = image
    else:
        net_input = pad_to_multiple(image, 8)
    palette = kmeans_palette(image, k, random_state) if palette is None else _palette(palette, k)
    device = module_device(nets)
    x = image_tensor(net_input, device)
    palette_t = torch.from_numpy(palette).to(device=device, dtype=torch.float32)
    if mask_op is not None:
        first, second, mask = mask_op
        if not {first, second} <= set(range(k)) or first == second:
            raise ValueError(f"mask_op must name two different layers among 0..{k - 1}, "
                             f"got {first!r} and {second!r}")
        mask = pad_to_multiple(_mask(mask, image.shape[:2]), 8)
        mask_op = (first, second, torch.from_numpy(mask).to(device))
    with torch.inference_mode(), Stages("FSCS", 3, progress) as stages:
        alphas = stages.run("alpha prediction", nets.predict_alphas, x, palette_t)
        alphas = stages.run("alpha processing", nets.process_alphas, x, alphas, mode, mask_op)
        colors = stages.run("colour prediction", nets.predict_colors, x, palette_t, alphas)
        alphas = alphas[0, :, :height, :width].permute(1, 2, 0).to("cpu", torch.float64).numpy()
        colors = colors[0, :, :, :height, :width].permute(2, 3, 0, 1).to("cpu", torch.float64)
    intermediates = {
        "palette": palette, "image": image, "mode": mode, "fit": fit,
        "shape": tuple(x.shape[2:]), "device": str(device), "timings": stages.timings,
        "negative_alpha_fraction": float(np.mean(alphas < 0)),
        "above_one_fraction": float(np.mean(alphas > 1)),
    }
    return Layers(alphas, colors.numpy(), intermediates=intermediates)
