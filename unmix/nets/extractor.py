"""Torch feature extractors as the ``features`` of semantic soft segmentation.

The protocol (spec ``sss.md`` §2, :func:`unmix.features.feature_image`): a
feature extractor maps an image to an (H, W, D) per-pixel embedding. It can be

- any callable ``f(image) -> (H, W, D) array``, taking the (H, W, 3)
  float64 image in [0, 1] and doing its own input normalisation; or
- a ``torch.nn.Module`` taking a (1, 3, H, W) float tensor and returning
  (1, D, h, w). :func:`unmix.semantic_soft_segments` wraps a module passed
  as ``features`` in :class:`TorchFeatureExtractor` with its defaults
  (image in [0, 1], no normalisation, the module's device); wrap it
  yourself to set the normalisation, device, padding or dtype.

D = 3 outputs in [0, 1] are used as they are; D > 3 outputs are raw
embeddings, preprocessed as the released code does
(:func:`unmix.features.preprocess_features`). :func:`load_feature_extractor`
reads a TorchScript or ``torch.export`` archive, or a state_dict into a
given architecture.
"""

from ..image import as_float_image
from ._torch import ModuleAdapter, load_module

__all__ = ["TorchFeatureExtractor", "load_feature_extractor"]


class TorchFeatureExtractor(ModuleAdapter):
    """A ``torch.nn.Module`` as a features callable: (H, W, 3) image → (H, W, D) float64.

    Parameters
    ----------
    module : torch.nn.Module
        Takes a (1, 3, H', W') float tensor, returns (1, D, h, w) (or
        (D, h, w)). Outputs smaller than the input (strided networks) are
        resized bilinearly to it.
    normalize : None, "imagenet" or (mean, std), optional
        Input normalisation (x − mean) / std per RGB channel of the image in
        [0, 1]; None (default) passes the image in [0, 1].
    multiple : int, optional
        Reflect-pad the bottom and right of the image to multiples of this
        (networks with k stride-2 stages need 2^k); the output is cropped
        back. Default 1.
    device : {"auto", "cpu", "cuda"} or torch.device, optional
        Move the module there; by default it stays where it is.
    eval : bool, optional
        Put the module in eval mode (default). Pass False for networks meant
        to run BatchNorm on the batch statistics in train mode;
        :class:`unmix.nets.SSSFeatureNet`, which does so by design (spec
        ``sss.md`` §15), chooses its statistics itself and needs no change.
    dtype : torch.dtype, optional
        The input dtype (float32).

    Examples
    --------
    >>> import torch                                               # doctest: +SKIP
    >>> net = torch.nn.Conv2d(3, 8, 3, padding=1)                  # doctest: +SKIP
    >>> layers = unmix.semantic_soft_segments(
    ...     image, features=TorchFeatureExtractor(net, normalize="imagenet"))  # doctest: +SKIP
    """

    def __call__(self, image):
        image = as_float_image(image)
        x = self._tensor(image, self.normalize)
        return self._output(self._run(x), x.shape[2:], image.shape[:2], "the feature module")


def load_feature_extractor(path, module=None, *, device="auto", **kwargs):
    """Load a feature extractor from a TorchScript or export archive, or a state_dict file.

    Parameters
    ----------
    path : str or os.PathLike
        A ``torch.jit.save`` archive, a ``torch.export.save`` archive
        (``.pt2``), or a ``torch.save`` of a state_dict (read with
        ``weights_only=True``).
    module : torch.nn.Module, or a class or factory returning one, optional
        The architecture of a state_dict file (loaded strictly: any missing,
        unexpected or mis-shaped key is an error that names it).
    device : {"auto", "cpu", "cuda"} or torch.device, optional
    **kwargs
        Passed on to :class:`TorchFeatureExtractor` (``normalize``,
        ``multiple``, ``eval``, ``dtype``).

    Returns
    -------
    TorchFeatureExtractor

    Examples
    --------
    A TorchScript archive, loaded and run as the features of
    :func:`unmix.semantic_soft_segments`:

    >>> import os, tempfile
    >>> import torch
    >>> from unmix.image import example_image
    >>> from unmix.nets import load_feature_extractor
    >>> path = os.path.join(tempfile.mkdtemp(), "features.pt")
    >>> torch.jit.save(torch.jit.script(torch.nn.Conv2d(3, 8, 3, padding=1)), path)
    >>> extractor = load_feature_extractor(path, device="cpu", normalize="imagenet")
    >>> extractor(example_image("coffee", (24, 32))).shape
    (24, 32, 8)
    """
    return TorchFeatureExtractor(load_module(path, module, device), **kwargs)
