"""The SSS authors' semantic feature network (spec ``sss.md`` §15) in PyTorch.

A DeepLab-v2 ResNet-101 in its Caffe-converted TensorFlow form, a multi-level
hypercolumn head and a per-pixel MLP map an RGB image to a 128-D embedding per
pixel, the features the released SSS demo segments. The architecture follows
§15 tensor for tensor, for users who hold the authors' weights: they are not
distributable, :mod:`unmix` ships none, and the port has not been compared with
outputs of the authors' TensorFlow graph.

Network (§15):

- input: RGB in [0, 1] → BGR 0–255 minus the Caffe mean
  :data:`CAFFE_MEAN_BGR`, reflect-padded by :data:`PAD` = 50 pixels;
- ``conv1`` 7×7 stride 2 (no bias) + ``bn_conv1`` + ReLU, ``pool1`` 3×3
  stride 2 max-pool;
- Caffe bottlenecks (stride on the first 1×1, no convolution biases):
  ``res2a–c`` (256), ``res3a, res3b1–b3`` (512, stride 2 at ``res3a``),
  ``res4a, res4b1–b22`` (1024, dilation 2), ``res5a–c`` (2048, dilation 4):
  res4 and res5 keep stride 1, so the output stride is 8;
- TF 'SAME' padding everywhere (:func:`same_padding`), asymmetric at the
  stride-2 layers, with −∞ (no contribution) for the max-pool;
- BatchNorm with the statistics of the batch at inference (the released
  ``is_training`` defaults to True), ε = 1e-3: ``bn_mode="batch"``;
- hypercolumn ``hc_cv_0`` (input / 128, 1×1, 4), ``hc_cv_1`` (``pool1``, 1×1,
  124), ``hc_cv_3`` (``res3b3_relu``, 1×1, 128), ``hc_cv_4``
  (``res4b22_relu``, 3×3, 256), ``hc_cv_5`` (``res5c`` before its ReLU, 3×3,
  512), resized to the padded input by TF1's legacy bilinear resize
  (:func:`resize_bilinear_legacy`), concatenated (1024 channels), ReLU;
- MLP per pixel: h1 = ReLU(x W1 W2 + b) (``fc1_matting``, rank 256, 512 out),
  h2 = ReLU(h1 W1 W2 + b) (``fc2_matting``), out = [h1, h2] W + b
  (``fc3_matting``, 128 out); then the 50-pixel crop.

Weight names. The state_dict keys are the TF variable names with ``/``
replaced by ``.`` and the leaves of convolutions and batch norms renamed to
torch's (:func:`sss_state_dict_from_tf` converts a checkpoint's variables);
B is a bottleneck (2a, 3b1, 4b22, 5c, ...), Z one of its convolutions (1, in
the ``a`` blocks only, 2a, 2b, 2c), k a hypercolumn branch (0, 1, 3, 4, 5):

=============================================  ===============================================
TF variable [TF shape]                         state_dict key (torch shape)
=============================================  ===============================================
conv1/weights [7, 7, 3, 64]                    conv1.weight (64, 3, 7, 7)
bn_conv1/gamma, beta [64]                      bn_conv1.weight, bn_conv1.bias (64,)
bn_conv1/moving_mean, moving_variance [64]     bn_conv1.running_mean, bn_conv1.running_var
res{B}_branch{Z}/weights [kh, kw, in, out]     res{B}_branch{Z}.weight (out, in, kh, kw)
bn{B}_branch{Z}/gamma, beta, moving_...        bn{B}_branch{Z}.weight, bias, running_...
hypercolumn_layers/hc_cv_{k}/weights, biases   hypercolumn_layers.hc_cv_{k}.weight, bias
fc{1,2}_matting/linear/fc_weights1 [in, 256]   fc{1,2}_matting.linear.fc_weights1 (256, in)
fc{1,2}_matting/linear/fc_weights2 [256, 512]  fc{1,2}_matting.linear.fc_weights2 (512, 256)
fc{1,2}_matting/linear/biases [512]            fc{1,2}_matting.linear.biases (512,)
fc3_matting/linear/fc_weights1 [1024, 128]     fc3_matting.linear.fc_weights1 (128, 1024)
fc3_matting/linear/fc_biases [128]             fc3_matting.linear.fc_biases (128,)
fc1_voc12_c0..c3/...                           none: the unused ASPP classifier is dropped
=============================================  ===============================================

Every convolution kernel is transposed from TF's [kh, kw, in, out] to
torch's [out, in, kh, kw], every MLP matrix from [in, out] to [out, in];
vectors are kept. The moving averages serve ``bn_mode="running"`` only.

The bottleneck scopes follow the Caffe ResNet naming that §15 quotes
(``res3a_branch1``, ``res3a_branch2a``, ``res3b3``, ``res4b22``, ``res5c``,
``bn_conv1``), with the batch norm of ``res{B}_branch{Z}`` in ``bn{B}_branch{Z}``.
The module has 55,158,732 parameters (42,500,160 in the ResNet-101 backbone,
11,870,988 in the hypercolumn convolutions, 787,584 in the MLP) and 105,344
running statistics.
"""

import os
from collections.abc import Mapping

import numpy as np

from ..features.network import same_padding
from ._torch import check_state_dict, load_weights, resolve_device, torch

nn = torch.nn
F = torch.nn.functional

__all__ = ["BN_MODES", "CAFFE_MEAN_BGR", "PAD", "SSSFeatureNet", "load_sss_feature_net",
           "resize_bilinear_legacy", "same_padding", "sss_state_dict_from_tf"]

#: The Caffe ImageNet mean (B, G, R) on the 0–255 scale the network subtracts (§15).
CAFFE_MEAN_BGR = (104.00698793, 116.66876762, 122.67891434)
#: Reflect padding on every side before the network, cropped off after (§15).
PAD = 50
#: Batch-norm ε of ``slim.batch_norm``.
BN_EPS = 1e-3
#: ``"batch"``: the batch's statistics, as the released extractor computes;
#: ``"running"``: the stored moving averages (what wrappers with
#: ``is_training=False`` compute, §15).
BN_MODES = ("batch", "running")
#: Per residual stage: (name, blocks, bottleneck width, output channels, stride of
#: the first block, dilation of the 3×3 convolutions). res4 and res5 trade their
#: stride for dilation, leaving the output stride at 8 (§15).
STAGES = (("2", 3, 64, 256, 1, 1), ("3", 4, 128, 512, 2, 1), ("4", 23, 256, 1024, 1, 2),
          ("5", 3, 512, 2048, 1, 4))
#: Hypercolumn branches in concatenation order: (name, the tensor it reads, that tensor's
#: channels, kernel, output channels).
HYPERCOLUMN = (("hc_cv_0", "input", 3, 1, 4), ("hc_cv_1", "pool1", 64, 1, 124),
               ("hc_cv_3", "res3b3_relu", 512, 1, 128), ("hc_cv_4", "res4b22_relu", 1024, 3, 256),
               ("hc_cv_5", "res5c", 2048, 3, 512))
#: The rank and the width of the low-rank layers fc1 and fc2, and the embedding size.
MLP_RANK, MLP_WIDTH, EMBEDDING = 256, 512, 128
#: TF leaf variable names → torch's (convolutions and batch norms; the MLP keeps its names).
_TF_LEAVES = {"weights": "weight", "biases": "bias", "gamma": "weight", "beta": "bias",
              "moving_mean": "running_mean", "moving_variance": "running_var"}
#: The ASPP classifier that the checkpoint stores and the features do not use (§15).
_UNUSED_TF_SCOPE = "fc1_voc12"
#: Pixels of the hypercolumn held at once (256 MB in float32 at 1024 channels).
_BAND_PIXELS = 2 ** 16
#: Conversion problems listed before the rest are counted.
_SHOWN_NAMES = 10


def _legacy_taps(in_size, out_size, start, count, device):
    """Rows (or columns) of TF1's legacy bilinear resize: low and high source indices, weight.

    Output sample i reads source coordinate i·(in/out), the scale and the
    product in float32 as TF computes them, so that coordinates that land
    next to an integer round as TF's do.
    """
    scale = torch.tensor(in_size, dtype=torch.float32) / out_size
    source = torch.arange(start, start + count, dtype=torch.float32) * scale
    low = source.floor()
    weight = (source - low).to(device)
    low = low.long()
    high = (low + 1).clamp(max=in_size - 1)
    return low.to(device), high.to(device), weight


def _interpolate(x, dim, taps):
    """Linear interpolation of x along ``dim`` at the taps of :func:`_legacy_taps`."""
    low, high, weight = taps
    shape = [1] * x.ndim
    shape[dim] = -1
    first = x.index_select(dim, low)
    return first + (x.index_select(dim, high) - first) * weight.reshape(shape).to(x.dtype)


def resize_bilinear_legacy(x, size, region=None):
    """TF1 ``tf.image.resize_bilinear`` with ``align_corners=False`` (spec §15).

    The legacy mapping: output pixel (i, j) samples the input at
    (i·h/H, j·w/W), with no half-pixel offset, and the upper neighbour is
    clamped to the last row or column. ``torch.nn.functional.interpolate``
    with ``align_corners=False`` uses half-pixel centres instead and gives
    other values.

    Parameters
    ----------
    x : torch.Tensor, shape (N, C, h, w)
    size : (int, int)
        (H, W), the size of the whole resized image.
    region : (int, int, int, int), optional
        (top, left, height, width): compute only this window of the resized
        image (the same values as resizing all of it and cropping).

    Returns
    -------
    torch.Tensor, shape (N, C, height, width)
        (N, C, H, W) without ``region``.
    """
    (in_h, in_w), (out_h, out_w) = x.shape[2:], size
    top, left, height, width = (0, 0, out_h, out_w) if region is None else region
    # Columns first, then rows: TF's top + (bottom − top)·dy of row-wise lerps.
    x = _interpolate(x, 3, _legacy_taps(in_w, out_w, left, width, x.device))
    return _interpolate(x, 2, _legacy_taps(in_h, out_h, top, height, x.device))


class _SameConv2d(nn.Conv2d):
    """A convolution with TF 'SAME' padding, asymmetric where the size and stride ask for it."""

    def __init__(self, in_channels, out_channels, kernel, stride=1, dilation=1, bias=False):
        super().__init__(in_channels, out_channels, kernel, stride=stride, dilation=dilation,
                         bias=bias)

    def forward(self, x):
        (top, bottom), (left, right) = (
            same_padding(n, k, s, d) for n, k, s, d in
            zip(x.shape[2:], self.kernel_size, self.stride, self.dilation))
        if top == bottom and left == right:  # symmetric: let the convolution pad, no copy
            return F.conv2d(x, self.weight, self.bias, self.stride, (top, left), self.dilation)
        return F.conv2d(F.pad(x, (left, right, top, bottom)), self.weight, self.bias,
                        self.stride, 0, self.dilation)


class _BatchNorm(nn.Module):
    """``slim.batch_norm`` (ε = 1e-3, scale and offset): batch or stored statistics.

    ``batch_statistics`` decides, not the module's train/eval mode: the
    released extractor normalises with the batch's statistics at inference
    (§15), and :class:`unmix.nets.TorchFeatureExtractor` sets eval mode.
    """

    def __init__(self, channels):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(channels))
        self.bias = nn.Parameter(torch.zeros(channels))
        self.register_buffer("running_mean", torch.zeros(channels))
        self.register_buffer("running_var", torch.ones(channels))
        self.batch_statistics = True

    def forward(self, x):
        if self.batch_statistics:  # the biased variance over (N, H, W), as tf.nn.moments
            var, mean = torch.var_mean(x, dim=(0, 2, 3), correction=0)
        else:
            var, mean = self.running_var, self.running_mean
        scale = self.weight * torch.rsqrt(var + BN_EPS)
        shift = self.bias - mean * scale
        return torch.addcmul(shift[:, None, None], x, scale[:, None, None])


def _uniform(*shape, fan_in):
    """A parameter drawn as torch's Linear draws its weights, U(±1/√fan_in)."""
    bound = 1.0 / np.sqrt(fan_in)
    return nn.Parameter(torch.empty(*shape).uniform_(-bound, bound))


class _LowRankLinear(nn.Module):
    """x·W1·W2 + b, the ``fc1_matting`` and ``fc2_matting`` layers; weights as (out, in)."""

    def __init__(self, in_features, rank, out_features):
        super().__init__()
        self.fc_weights1 = _uniform(rank, in_features, fan_in=in_features)
        self.fc_weights2 = _uniform(out_features, rank, fan_in=rank)
        self.biases = _uniform(out_features, fan_in=rank)

    def forward(self, x):
        return F.linear(F.linear(x, self.fc_weights1), self.fc_weights2, self.biases)


class _Linear(nn.Module):
    """x·W + b, the ``fc3_matting`` layer; the weight as (out, in)."""

    def __init__(self, in_features, out_features):
        super().__init__()
        self.fc_weights1 = _uniform(out_features, in_features, fan_in=in_features)
        self.fc_biases = _uniform(out_features, fan_in=in_features)

    def forward(self, x):
        return F.linear(x, self.fc_weights1, self.fc_biases)


def _scope(layer):
    """A TF scope holding ``layer`` as its ``linear`` child (``fcK_matting/linear``)."""
    return nn.ModuleDict({"linear": layer})


def _block_names(stage, count):
    """Caffe's bottleneck names: a, b, c for three blocks, else a, b1, b2, ..."""
    if count == 3:
        return [f"{stage}{letter}" for letter in "abc"]
    return [f"{stage}a"] + [f"{stage}b{i}" for i in range(1, count)]


def _bottlenecks():
    """Every bottleneck's name and convolutions: (branch, in, out, kernel, stride, dilation).

    The first block of a stage carries its stride, on both 1×1 convolutions that read the
    block's input (Caffe's placement), and the projection shortcut ``branch1``.
    """
    channels = 64
    for stage, count, width, out, stride, dilation in STAGES:
        for i, name in enumerate(_block_names(stage, count)):
            block_stride = stride if i == 0 else 1
            convs = [("branch2a", channels, width, 1, block_stride, 1),
                     ("branch2b", width, width, 3, 1, dilation), ("branch2c", width, out, 1, 1, 1)]
            if i == 0:
                convs.append(("branch1", channels, out, 1, block_stride, 1))
            yield name, convs
            channels = out


class SSSFeatureNet(nn.Module):
    """The SSS feature network (spec ``sss.md`` §15): RGB image → 128-D embedding per pixel.

    Parameters
    ----------
    bn_mode : {"batch", "running"}, optional
        ``"batch"`` (default, the released extractor): every batch norm uses
        the per-channel mean and biased variance of its input over the batch
        (one padded image when run through
        :class:`unmix.nets.TorchFeatureExtractor`), whatever the module's
        train/eval mode. ``"running"``: the stored moving averages, which
        gives other features (what wrappers that set ``is_training=False``
        compute). Settable later through the attribute of the same name.

    Notes
    -----
    ``forward`` takes (N, 3, H, W) RGB in [0, 1], H and W above
    :data:`PAD`, and returns (N, 128, H, W) in the module's dtype (float32).
    It does its own input normalisation, so use it unnormalised: as
    ``semantic_soft_segments(image, features=net)`` or
    ``unmix.features.feature_image(net, image)``, or wrapped in
    :class:`unmix.nets.TorchFeatureExtractor` with ``normalize=None`` (its
    default). Batch statistics pool the batch, as in TF: feed one image at a
    time for the released per-image features. Its state_dict keys are listed
    in the module docstring, with their TF names.

    The hypercolumn is computed only where the final crop keeps it, a band
    of rows at a time: a 640×480 image needs about 2 GB, where the whole
    padded 1024-channel map would take 6 GB.

    Examples
    --------
    >>> net = load_sss_feature_net("sss_features.pth")                 # doctest: +SKIP
    >>> layers = unmix.semantic_soft_segments(image, features=net)     # doctest: +SKIP
    """

    def __init__(self, bn_mode="batch"):
        super().__init__()
        self.conv1, self.bn_conv1 = _SameConv2d(3, 64, 7, stride=2), _BatchNorm(64)
        # Flat attributes, so that the state_dict keys are the TF scopes (module docstring).
        self.bottlenecks = []
        for name, convs in _bottlenecks():
            for branch, cin, cout, kernel, stride, dilation in convs:
                self.add_module(f"res{name}_{branch}",
                                _SameConv2d(cin, cout, kernel, stride, dilation))
                self.add_module(f"bn{name}_{branch}", _BatchNorm(cout))
            self.bottlenecks.append(name)
        self.hypercolumn_layers = nn.ModuleDict({
            name: _SameConv2d(cin, cout, kernel, bias=True)
            for name, _, cin, kernel, cout in HYPERCOLUMN})
        columns = sum(cout for *_, cout in HYPERCOLUMN)
        self.fc1_matting = _scope(_LowRankLinear(columns, MLP_RANK, MLP_WIDTH))
        self.fc2_matting = _scope(_LowRankLinear(MLP_WIDTH, MLP_RANK, MLP_WIDTH))
        self.fc3_matting = _scope(_Linear(2 * MLP_WIDTH, EMBEDDING))
        self.register_buffer("caffe_mean", torch.tensor(CAFFE_MEAN_BGR).reshape(1, 3, 1, 1),
                             persistent=False)
        self.bn_mode = bn_mode

    @property
    def bn_mode(self):
        """``"batch"`` or ``"running"``: the statistics every batch norm uses."""
        return self._bn_mode

    @bn_mode.setter
    def bn_mode(self, mode):
        if mode not in BN_MODES:
            raise ValueError(f"bn_mode must be one of {BN_MODES}, got {mode!r}")
        self._bn_mode = mode
        for module in self.modules():
            if isinstance(module, _BatchNorm):
                module.batch_statistics = mode == "batch"

    def _unit(self, conv, bn, x, relu=True):
        x = getattr(self, bn)(getattr(self, conv)(x))
        return F.relu(x, inplace=True) if relu else x

    def _bottleneck(self, name, x):
        """res{name} before its ReLU: the Caffe bottleneck, projected in a stage's 'a' block."""
        h = self._unit(f"res{name}_branch2a", f"bn{name}_branch2a", x)
        h = self._unit(f"res{name}_branch2b", f"bn{name}_branch2b", h)
        h = self._unit(f"res{name}_branch2c", f"bn{name}_branch2c", h, relu=False)
        if name.endswith("a"):
            x = self._unit(f"res{name}_branch1", f"bn{name}_branch1", x, relu=False)
        return x + h

    def net_input(self, x):
        """The backbone's input: RGB [0, 1] → BGR 0–255 minus the Caffe mean, reflect-padded.

        Parameters
        ----------
        x : torch.Tensor, shape (N, 3, H, W)
            RGB in [0, 1], H and W > :data:`PAD`.

        Returns
        -------
        torch.Tensor, shape (N, 3, H + 100, W + 100)

        Examples
        --------
        >>> import torch
        >>> from unmix.nets import SSSFeatureNet
        >>> _ = torch.manual_seed(0)
        >>> net = SSSFeatureNet().eval()               # random weights here
        >>> x = torch.rand(1, 3, 56, 56)              # more than 50 pixels a side
        >>> net.net_input(x).shape                 # BGR minus the mean, reflect-padded by 50
        torch.Size([1, 3, 156, 156])
        """
        if x.ndim != 4 or x.shape[1] != 3:
            raise ValueError(f"SSSFeatureNet takes (N, 3, H, W) RGB tensors, got shape "
                             f"{tuple(x.shape)}")
        if min(x.shape[2:]) <= PAD:
            raise ValueError(f"SSSFeatureNet needs images of more than {PAD} pixels a side, for "
                             f"its {PAD}-pixel reflect padding, got "
                             f"{x.shape[2]}×{x.shape[3]}")
        bgr = x.flip(1) * 255.0 - self.caffe_mean.to(x.dtype)
        return F.pad(bgr, (PAD,) * 4, mode="reflect")  # TF 'REFLECT': the edge is not repeated

    def backbone(self, net_input):
        """The tensors the hypercolumn reads, by their TF names (§15).

        Parameters
        ----------
        net_input : torch.Tensor, shape (N, 3, h, w)
            From :meth:`net_input`.

        Returns
        -------
        dict of torch.Tensor
            ``input`` (``net_input`` / 128), ``pool1`` (64 channels, stride
            4), ``res3b3_relu`` (512), ``res4b22_relu`` (1024) and ``res5c``
            (2048, before its ReLU), the last three at stride 8.

        Examples
        --------
        >>> import torch
        >>> from unmix.nets import SSSFeatureNet
        >>> _ = torch.manual_seed(0)
        >>> net = SSSFeatureNet().eval()               # random weights here
        >>> x = torch.rand(1, 3, 56, 56)              # more than 50 pixels a side
        >>> net.net_input(x).shape                 # what forward() passes: (1, 3, 156, 156)
        torch.Size([1, 3, 156, 156])
        >>> with torch.no_grad():                  # a smaller padded input, for speed
        ...     taps = net.backbone(torch.rand(1, 3, 40, 40))
        >>> {name: tuple(tensor.shape[1:]) for name, tensor in taps.items()}
        {'input': (3, 40, 40), 'pool1': (64, 10, 10), 'res3b3_relu': (512, 5, 5), 'res4b22_relu': (1024, 5, 5), 'res5c': (2048, 5, 5)}
        """
        read = {tap for _, tap, *_ in HYPERCOLUMN}
        taps = {"input": net_input / 128.0}
        x = self._unit("conv1", "bn_conv1", net_input)
        # −∞ padding: TF's max-pool takes the maximum over the in-image part of a window.
        (top, bottom), (left, right) = (same_padding(n, 3, 2) for n in x.shape[2:])
        x = F.max_pool2d(F.pad(x, (left, right, top, bottom), value=-torch.inf), 3, 2)
        taps["pool1"] = x
        for name in self.bottlenecks:
            x = self._bottleneck(name, x)
            if f"res{name}" in read:  # res5c: the residual sum before its ReLU (§15)
                taps[f"res{name}"] = x
            x = F.relu(x)
            if f"res{name}_relu" in read:
                taps[f"res{name}_relu"] = x
        return taps

    def embedding(self, hypercolumn):
        """The per-pixel MLP: (..., 1024) hypercolumns → (..., 128) embeddings.

        Examples
        --------
        >>> import torch
        >>> from unmix.nets import SSSFeatureNet
        >>> _ = torch.manual_seed(0)
        >>> net = SSSFeatureNet().eval()               # random weights here
        >>> x = torch.rand(1, 3, 56, 56)              # more than 50 pixels a side
        >>> with torch.no_grad():
        ...     net.embedding(torch.zeros(5, 1024)).shape
        torch.Size([5, 128])
        """
        h1 = F.relu(self.fc1_matting["linear"](hypercolumn))
        h2 = F.relu(self.fc2_matting["linear"](h1))
        return self.fc3_matting["linear"](torch.cat([h1, h2], dim=-1))

    def head(self, branches, size, region):
        """The hypercolumn and the MLP on a window of the padded image.

        Parameters
        ----------
        branches : list of torch.Tensor
            The outputs of the hypercolumn convolutions, in concatenation
            order.
        size : (int, int)
            The padded input's size, which they are resized to.
        region : (int, int, int, int)
            (top, left, height, width): the window of the padded image to
            compute.

        Returns
        -------
        torch.Tensor, shape (N, 128, height, width)

        Examples
        --------
        The embeddings of a window of 4 rows, as :meth:`forward` computes them band
        by band:

        >>> import torch
        >>> from unmix.nets import SSSFeatureNet
        >>> _ = torch.manual_seed(0)
        >>> net = SSSFeatureNet().eval()               # random weights here
        >>> x = torch.rand(1, 3, 56, 56)              # more than 50 pixels a side
        >>> from unmix.nets.sss_features import HYPERCOLUMN
        >>> padded = net.net_input(x)
        >>> taps = {"input": padded, "pool1": torch.rand(1, 64, 39, 39),   # stand-ins for
        ...         "res3b3_relu": torch.rand(1, 512, 20, 20),             # net.backbone(padded)
        ...         "res4b22_relu": torch.rand(1, 1024, 20, 20),
        ...         "res5c": torch.rand(1, 2048, 20, 20)}
        >>> with torch.no_grad():
        ...     branches = [net.hypercolumn_layers[name](taps[tap]) for name, tap, *_ in HYPERCOLUMN]
        ...     window = net.head(branches, padded.shape[2:], (50, 50, 4, 56))
        >>> window.shape
        torch.Size([1, 128, 4, 56])
        """
        top, left, height, width = region
        columns = []
        for branch in branches:
            if tuple(branch.shape[2:]) == tuple(size):  # hc_cv_0, at the input's resolution
                branch = branch[:, :, top:top + height, left:left + width]
            else:
                branch = resize_bilinear_legacy(branch, size, region)
            columns.append(branch.permute(0, 2, 3, 1))
        hypercolumn = F.relu_(torch.cat(columns, dim=-1))  # channels last, for the MLP
        return self.embedding(hypercolumn).permute(0, 3, 1, 2)

    def forward(self, x):
        """Per-pixel 128-D embeddings of RGB images in [0, 1].

        Parameters
        ----------
        x : torch.Tensor, shape (N, 3, H, W)
            RGB in [0, 1], unnormalised; H and W above 50 (the reflect padding).

        Returns
        -------
        torch.Tensor, shape (N, 128, H, W)

        Examples
        --------
        >>> import torch
        >>> from unmix.nets import SSSFeatureNet
        >>> _ = torch.manual_seed(0)
        >>> net = SSSFeatureNet().eval()               # random weights here
        >>> x = torch.rand(1, 3, 56, 56)              # more than 50 pixels a side
        >>> with torch.no_grad():
        ...     net(x).shape
        torch.Size([1, 128, 56, 56])
        """
        net_input = self.net_input(x)
        taps = self.backbone(net_input)
        branches = [self.hypercolumn_layers[name](taps[tap]) for name, tap, *_ in HYPERCOLUMN]
        # Resizing, the ReLU and the MLP act pixel by pixel: computing them on the
        # pixels the final crop keeps, a band of rows at a time, gives the values of
        # the whole padded map with a fraction of its memory.
        height, width = x.shape[2:]
        rows = max(_BAND_PIXELS // width, 1)
        return torch.cat([self.head(branches, net_input.shape[2:],
                                    (PAD + top, PAD, min(rows, height - top), width))
                          for top in range(0, height, rows)], dim=2)


def sss_state_dict_from_tf(variables):
    """An :class:`SSSFeatureNet` state_dict from the TF checkpoint's variables.

    Renames and transposes as the module docstring's table says; the unused
    ASPP classifier (``fc1_voc12_c*``) is dropped.

    Parameters
    ----------
    variables : mapping of str to array_like
        TF variable name (``"res4b22_branch2b/weights"``, ...) → value, for
        example ``{name: reader.get_tensor(name) for name in
        reader.get_variable_to_shape_map()}`` with
        ``reader = tf.train.load_checkpoint(path)``.

    Returns
    -------
    dict of str to torch.Tensor
        For :func:`load_sss_feature_net`, which checks it key by key.

    Raises
    ------
    TypeError
        If ``variables`` is not a mapping.
    ValueError
        Naming the variables that are no tensor of the network (such as
        optimiser slots; leave them out).

    Examples
    --------
    A checkpoint's variables are read with TensorFlow (not a dependency of
    unmix), then converted:

    >>> import tensorflow as tf                                          # doctest: +SKIP
    >>> reader = tf.train.load_checkpoint("SSS_model/model.ckpt")        # doctest: +SKIP
    >>> variables = {name: reader.get_tensor(name)
    ...              for name in reader.get_variable_to_shape_map()}   # doctest: +SKIP
    >>> net = load_sss_feature_net(sss_state_dict_from_tf(variables))  # doctest: +SKIP

    TF names become the module's, kernels are transposed to torch's layout:

    >>> import numpy as np
    >>> from unmix.nets import sss_state_dict_from_tf
    >>> state = sss_state_dict_from_tf({"conv1/weights": np.zeros((7, 7, 3, 64), np.float32),
    ...                                 "bn_conv1/moving_mean": np.zeros(64, np.float32)})
    >>> {name: tuple(tensor.shape) for name, tensor in state.items()}
    {'conv1.weight': (64, 3, 7, 7), 'bn_conv1.running_mean': (64,)}
    """
    if not isinstance(variables, Mapping):
        raise TypeError(f"variables must map TF variable names to arrays, "
                        f"got {type(variables).__name__}")
    with torch.device("meta"):  # the names only: allocate no weights
        keys = SSSFeatureNet().state_dict().keys()
    state, unknown = {}, []
    for name, value in variables.items():
        if name.startswith(_UNUSED_TF_SCOPE):
            continue
        scope, _, leaf = name.rpartition("/")
        if not scope.endswith("/linear"):  # the MLP keeps its leaf names
            leaf = _TF_LEAVES.get(leaf, leaf)
        key = f"{scope.replace('/', '.')}.{leaf}"
        if not scope or key not in keys:
            unknown.append(name)
            continue
        tensor = torch.as_tensor(np.asarray(value, dtype=np.float32))
        if tensor.ndim == 4:  # kernel [kh, kw, in, out] → [out, in, kh, kw]
            tensor = tensor.permute(3, 2, 0, 1)
        elif tensor.ndim == 2:  # matrix [in, out] → [out, in]
            tensor = tensor.T
        state[key] = tensor.contiguous()
    if unknown:
        shown = sorted(unknown)[:_SHOWN_NAMES]
        more = f" and {len(unknown) - len(shown)} more" if len(unknown) > len(shown) else ""
        raise ValueError(f"variables holds {len(unknown)} names that are no tensor of "
                         f"SSSFeatureNet: {shown}{more}")
    return state


def load_sss_feature_net(path_or_state_dict, device="cpu", bn_mode="batch"):
    """:class:`SSSFeatureNet` with the given weights, in eval mode.

    Parameters
    ----------
    path_or_state_dict : str, os.PathLike or dict of torch.Tensor
        A ``torch.save`` of the state_dict (read with
        ``torch.load(..., weights_only=True)``, which unpickles no code), or
        the state_dict itself (from :func:`sss_state_dict_from_tf` for the
        authors' TF checkpoint).
    device : {"cpu", "cuda", "auto"} or torch.device, optional
        Where the network is put.
    bn_mode : {"batch", "running"}, optional
        See :class:`SSSFeatureNet`.

    Returns
    -------
    SSSFeatureNet
        Usable as ``semantic_soft_segments(image, features=net)``: the
        image goes in as RGB in [0, 1], unnormalised, and the network
        normalises it itself.

    Raises
    ------
    FileNotFoundError
        If the file does not exist.
    ValueError
        Naming the missing and unexpected keys and the tensors of other
        shapes (with both shapes).

    Examples
    --------
    From a state_dict (here of random weights; the authors' come from their TF
    checkpoint through :func:`sss_state_dict_from_tf`):

    >>> from unmix.nets import SSSFeatureNet, load_sss_feature_net
    >>> net = load_sss_feature_net(SSSFeatureNet().state_dict())
    >>> net.training, net.bn_mode
    (False, 'batch')
    """
    device = resolve_device(device)
    with device:  # built where it runs: the weights are copied once, on the device
        net = SSSFeatureNet(bn_mode)
    if isinstance(path_or_state_dict, (str, os.PathLike)):
        path = os.fspath(path_or_state_dict)
        if not os.path.isfile(path):
            raise FileNotFoundError(f"SSS feature network weights not found: {path!r}")
        check_state_dict(net, load_weights(path, device), f"the file {path!r}")
    else:
        check_state_dict(net, path_or_state_dict, "path_or_state_dict")
    return net.eval()
