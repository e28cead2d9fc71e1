"""What semantic soft segmentation accepts as features (spec ``sss.md`` §2)."""

import sys

import numpy as np

from .._checks import feature_array
from ..image import as_float_image
from .handcrafted import handcrafted_features
from .network import network_features
from .preprocess import preprocess_features

__all__ = ["feature_image"]


def _is_torch_module(obj):
    """Whether ``obj`` is a ``torch.nn.Module``, without importing torch.

    An object can only be a module if torch is already imported.
    """
    torch = sys.modules.get("torch")
    return torch is not None and isinstance(obj, torch.nn.Module)


def feature_image(features, image, clamp=5.0, window=10, eps=0.01):
    """The 3-channel feature image F in [0, 1] the affinities are calibrated for.

    Parameters
    ----------
    features : None, array_like (H, W, D) or callable
        - ``None``: the hypercolumns of a pretrained network,
          :func:`network_features` (EfficientNet-Lite0 trained on ImageNet, run
          by unmix's own NumPy inference), preprocessed as raw embeddings are;
        - ``"handcrafted"``: :func:`handcrafted_features` of the image (the
          default before the network features; colour and position statistics);
        - an (H, W, 3) array with values in [0, 1]: used as is (like the
          released demo's precomputed features);
        - an (H, W, D) array with D > 3: a raw embedding, preprocessed as the
          released code does (:func:`preprocess_features`);
        - a callable: called as ``features(image)`` on the float image; its
          (H, W, D) output is then treated as above;
        - a ``torch.nn.Module`` mapping a (1, 3, H, W) tensor in [0, 1] to
          (1, D, h, w): run through :class:`unmix.nets.TorchFeatureExtractor`
          (wrap it yourself for another normalisation, device or padding).
    image : ndarray, shape (H, W, 3), float64 in [0, 1]
    clamp, window, eps : optional
        Parameters of :func:`preprocess_features` for raw embeddings.

    Returns
    -------
    F : ndarray, shape (H, W, 3), float64 in [0, 1]

    Examples
    --------
    Raw embeddings (here the network's 12 channels) become the 3-channel
    feature image; a 3-channel image in [0, 1] is taken as it is:

    >>> from unmix.features import feature_image, network_features
    >>> from unmix.image import example_image
    >>> image = example_image("coffee", (24, 32))
    >>> F = feature_image(network_features(image), image)
    >>> F.shape, float(F.min()), float(F.max())
    ((24, 32, 3), 0.0, 1.0)
    """
    image = as_float_image(image)
    if features is None:
        # Raw hypercolumns of the pretrained network (D > 3), preprocessed as §3 says.
        return preprocess_features(network_features(image), image, clamp, window, eps)
    if isinstance(features, str) and features == "handcrafted":
        return handcrafted_features(image)
    if isinstance(features, str):
        raise ValueError(f"features must be None, 'handcrafted', an array, a callable or a torch "
                         f"module, got the string {features!r}")
    if _is_torch_module(features):
        from ..nets.extractor import TorchFeatureExtractor

        features = TorchFeatureExtractor(features)
    if callable(features):
        features = features(image)
        name = "the output of the features callable"
    else:
        name = "features"
    arr = feature_array(features, image.shape[:2], name=name)
    depth = arr.shape[2]
    if depth > 3:
        return preprocess_features(arr, image, clamp, window, eps)
    if depth < 3:
        raise ValueError(
            f"{name} must have 3 channels in [0, 1] or D > 3 raw channels, got {depth} channel(s)"
        )
    low, high = arr.min(), arr.max()
    if low < 0 or high > 1:
        raise ValueError(
            f"{name} has 3 channels, so it is used as is and must lie in [0, 1]; got values in "
            f"[{low:.4g}, {high:.4g}] (pass raw embeddings with D > 3 channels to have them "
            "preprocessed)"
        )
    return np.ascontiguousarray(arr)
