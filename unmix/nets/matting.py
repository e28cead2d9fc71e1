"""Matting networks (image + trimap → alpha) next to closed-form matting.

The protocol: a matting net is a ``torch.nn.Module`` that takes the image and
an encoding of the trimap and returns the alpha matte, as AlphaGAN, Deep
Image Matting, the fine-grained TCP network, GCA or FBA do. Their input
conventions differ, so :class:`TorchMattingNet` is told them:

- the **trimap encoding** (``trimap_encoding``), after the trimap is split
  into foreground / background / unknown by
  :func:`unmix.matting.split_trimap` (uint8 0/128/255 or floats in [0, 1]):

  - ``"single"``: one channel, 0 background, 128/255 unknown, 1
    foreground (the DIM files divided by 255: DIM, AlphaGAN, TCP);
  - ``"two_channel"``: [foreground, background] masks (FBA);
  - ``"one_hot"``: [background, unknown, foreground] masks (GCA);

- the **inputs** (``inputs``): ``"concat"`` passes one (1, 3 + C, H, W)
  tensor, the normalised image then the trimap channels; ``"pair"`` passes
  ``module(image, trimap)``;
- the image normalisation (``normalize``, e.g. ``"imagenet"``) and the side
  multiple the network needs (``multiple``, 32 for most encoder–decoders:
  reflect padding, cropped back).

The output, (1, 1, H, W) (or (1, H, W)), is clipped to [0, 1], and the
trimap's known pixels are set to 0 and 1 (``keep_known``, what matting
evaluations do). An adapter is called like :func:`unmix.closed_form_matting`,
``net(image, trimap) -> alpha (H, W)``, so both are scored with the same
:mod:`unmix.metrics`. No matting weights ship with unmix;
:func:`load_matting_net` reads a TorchScript or ``torch.export`` archive,
or a state_dict.
"""

import numpy as np

from ..image import as_float_image
from ..matting import split_trimap
from ._torch import ModuleAdapter, load_module, torch

__all__ = ["TRIMAP_ENCODINGS", "TorchMattingNet", "encode_trimap", "load_matting_net"]

TRIMAP_ENCODINGS = ("single", "two_channel", "one_hot")
#: The unknown value of the single-channel encoding: 128 / 255, a DIM trimap file's.
UNKNOWN_VALUE = 128 / 255


def encode_trimap(trimap, encoding="single", *, shape=None, fg_threshold=0.9, bg_threshold=0.1):
    """A trimap as the (H, W, C) float channels a matting network takes.

    Parameters
    ----------
    trimap : array_like, shape (H, W)
        uint8 0 / 128 / 255 or floats in [0, 1] (:func:`unmix.matting.split_trimap`).
    encoding : {"single", "two_channel", "one_hot"}, optional
        See :mod:`unmix.nets.matting`.
    shape : tuple of int, optional
        The (H, W) the trimap must have.
    fg_threshold, bg_threshold : float, optional
        The split's thresholds on the [0, 1] scale.

    Returns
    -------
    channels : ndarray, shape (H, W, C), float64
        C = 1, 2 or 3.
    foreground, background : ndarray of bool, shape (H, W)
    """
    if encoding not in TRIMAP_ENCODINGS:
        raise ValueError(f"trimap_encoding must be one of {TRIMAP_ENCODINGS}, got {encoding!r}")
    fg, bg, unknown = split_trimap(trimap, fg_threshold=fg_threshold, bg_threshold=bg_threshold,
                                   shape=shape)
    if encoding == "single":
        channels = [fg + UNKNOWN_VALUE * unknown]
    elif encoding == "two_channel":
        channels = [fg, bg]
    else:
        channels = [bg, unknown, fg]
    return np.stack(channels, axis=2).astype(np.float64), fg, bg


class TorchMattingNet(ModuleAdapter):
    """A matting ``torch.nn.Module`` as ``net(image, trimap) -> alpha`` (H, W) float64.

    Parameters
    ----------
    module : torch.nn.Module
        The network; see :mod:`unmix.nets.matting` for its input conventions.
    trimap_encoding : {"single", "two_channel", "one_hot"}, optional
    inputs : {"concat", "pair"}, optional
        One concatenated tensor (default), or ``module(image, trimap)``.
    normalize : None, "imagenet" or (mean, std), optional
        Normalisation of the image channels (the trimap's are not normalised).
    multiple : int, optional
        Side multiple the network needs (default 32).
    keep_known : bool, optional
        Set the trimap's foreground to 1 and background to 0 (default True).
    fg_threshold, bg_threshold : float, optional
        Trimap thresholds (:func:`unmix.matting.split_trimap`).
    device, eval, dtype : optional
        As for :class:`~unmix.nets.TorchFeatureExtractor`.

    Examples
    --------
    A toy network on the concatenated image and trimap (4 channels):

    >>> import numpy as np
    >>> import torch
    >>> from unmix.nets import TorchMattingNet
    >>> module = torch.nn.Sequential(torch.nn.Conv2d(4, 1, 3, padding=1), torch.nn.Sigmoid())
    >>> net = TorchMattingNet(module, multiple=8, device="cpu")
    >>> image = np.random.default_rng(0).random((20, 30, 3))
    >>> trimap = np.full((20, 30), 128, np.uint8); trimap[:, :5], trimap[:, -5:] = 0, 255
    >>> alpha = net(image, trimap)
    >>> alpha.shape, alpha.dtype, float(alpha[0, 0]), float(alpha[0, -1])   # known pixels kept
    ((20, 30), dtype('float64'), 0.0, 1.0)
    """

    def __init__(self, module, *, trimap_encoding="single", inputs="concat", normalize=None,
                 multiple=32, keep_known=True, fg_threshold=0.9, bg_threshold=0.1, device=None,
                 eval=True, dtype=torch.float32):
        super().__init__(module, normalize=normalize, multiple=multiple, device=device,
                         eval=eval, dtype=dtype)
        if trimap_encoding not in TRIMAP_ENCODINGS:
            raise ValueError(f"trimap_encoding must be one of {TRIMAP_ENCODINGS}, "
                             f"got {trimap_encoding!r}")
        if inputs not in ("concat", "pair"):
            raise ValueError(f"inputs must be 'concat' or 'pair', got {inputs!r}")
        self.trimap_encoding, self.inputs, self.keep_known = trimap_encoding, inputs, keep_known
        self.thresholds = {"fg_threshold": fg_threshold, "bg_threshold": bg_threshold}

    def __call__(self, image, trimap):
        image = as_float_image(image)
        channels, fg, bg = encode_trimap(trimap, self.trimap_encoding, shape=image.shape[:2],
                                         **self.thresholds)
        x, t = self._tensor(image, self.normalize), self._tensor(channels)
        out = self._run(*((x, t) if self.inputs == "pair" else (torch.cat([x, t], dim=1),)))
        alpha = self._output(out, x.shape[2:], image.shape[:2], "the matting module")
        if alpha.shape[2] != 1:
            raise ValueError(f"the matting module must return 1 channel, got {alpha.shape[2]}")
        alpha = np.clip(alpha[:, :, 0], 0.0, 1.0)
        if self.keep_known:
            alpha[fg], alpha[bg] = 1.0, 0.0
        return alpha


def load_matting_net(path, module=None, *, device="auto", **kwargs):
    """Load a matting network from a TorchScript or export archive, or a state_dict file.

    ``path``, ``module`` and ``device`` are those of
    :func:`~unmix.nets.load_feature_extractor` (state_dicts are read with
    ``weights_only=True`` and loaded strictly into ``module``); ``kwargs``
    go to :class:`TorchMattingNet` (``trimap_encoding``, ``inputs``,
    ``normalize``, ``multiple``, ``keep_known``, ...).

    Returns
    -------
    TorchMattingNet

    Examples
    --------
    >>> import os, tempfile
    >>> import numpy as np
    >>> import torch
    >>> from unmix.nets import load_matting_net
    >>> module = torch.nn.Sequential(torch.nn.Conv2d(4, 1, 3, padding=1), torch.nn.Sigmoid())
    >>> path = os.path.join(tempfile.mkdtemp(), "matting.pt")
    >>> torch.jit.save(torch.jit.script(module), path)
    >>> net = load_matting_net(path, device="cpu", multiple=8)
    >>> trimap = np.full((16, 16), 128, np.uint8); trimap[:, :4], trimap[:, -4:] = 0, 255
    >>> net(np.random.default_rng(0).random((16, 16, 3)), trimap).shape
    (16, 16)
    """
    return TorchMattingNet(load_module(path, module, device), **kwargs)
