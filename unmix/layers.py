"""``Layers``: the result of every decomposition in unmix."""

import os
from dataclasses import dataclass, field

import numpy as np

from .image import write_image

__all__ = ["Layers", "segment_palette"]


def segment_palette(n):
    """``n`` well-separated RGB colours in [0, 1] for showing segments.

    The first ten are the qualitative "tab10" colours; beyond them, hues
    spaced by the golden angle.
    """
    tab10 = np.array([
        [31, 119, 180], [255, 127, 14], [44, 160, 44], [214, 39, 40], [148, 103, 189],
        [140, 86, 75], [227, 119, 194], [127, 127, 127], [188, 189, 34], [23, 190, 207],
    ]) / 255.0
    if n <= len(tab10):
        return tab10[:n].copy()
    from skimage.color import hsv2rgb

    hues = (np.arange(n - len(tab10)) * 0.618033988749895) % 1.0
    extra = hsv2rgb(np.stack([hues, np.full_like(hues, 0.65), np.full_like(hues, 0.9)], axis=1)[None])[0]
    return np.concatenate([tab10, extra])


@dataclass
class Layers:
    """Soft layers of an image: opacity mattes that sum to one at every pixel.

    Attributes
    ----------
    alphas : ndarray, shape (H, W, K)
        The mattes, channels-last. Methods that do not clamp them (semantic
        soft segmentation) leave values slightly outside [0, 1].
    colors : ndarray, shape (H, W, K, 3), optional
        Per-layer colours, for methods that estimate them.
    intermediates : dict
        Stage outputs kept for inspection and teaching (e.g. the eigenpairs,
        the initial and grouped segments), when the method was asked for them.
    """

    alphas: np.ndarray
    colors: np.ndarray = None
    intermediates: dict = field(default_factory=dict, repr=False)

    def __post_init__(self):
        self.alphas = np.asarray(self.alphas, dtype=np.float64)
        if self.alphas.ndim != 3:
            raise ValueError(f"alphas must have shape (H, W, K), got shape {self.alphas.shape}")
        if self.colors is not None:
            self.colors = np.asarray(self.colors, dtype=np.float64)
            if self.colors.shape != self.alphas.shape + (3,):
                raise ValueError(
                    f"colors must have shape {self.alphas.shape + (3,)}, got {self.colors.shape}"
                )

    @property
    def n_layers(self):
        """Number of layers K."""
        return self.alphas.shape[2]

    @property
    def shape(self):
        """``(H, W)`` of the image."""
        return self.alphas.shape[:2]

    def __len__(self):
        return self.n_layers

    def __repr__(self):
        colours = "" if self.colors is None else ", with colours"
        return f"Layers({self.n_layers} layers of {self.shape[0]}×{self.shape[1]}{colours})"

    def visualize(self, palette=None):
        """Show each layer as a solid colour: Σ_k clip(α_k, 0, 1) · c_k.

        Parameters
        ----------
        palette : array_like, shape (K, 3), optional
            One RGB colour in [0, 1] per layer; :func:`segment_palette` by default.

        Returns
        -------
        image : ndarray, shape (H, W, 3), float64 in [0, 1]
        """
        palette = segment_palette(self.n_layers) if palette is None else np.asarray(palette, float)
        if palette.shape != (self.n_layers, 3):
            raise ValueError(f"palette must have shape ({self.n_layers}, 3), got {palette.shape}")
        return np.clip(np.clip(self.alphas, 0.0, 1.0) @ palette, 0.0, 1.0)

    def save(self, directory, prefix="alpha"):
        """Write one 16-bit PNG per alpha matte and the visualisation.

        Files: ``<prefix>-00.png`` … (values clipped to [0, 1]) and
        ``segments.png``. Returns the list of paths written.
        """
        os.makedirs(directory, exist_ok=True)
        paths = []
        for k in range(self.n_layers):
            path = os.path.join(directory, f"{prefix}-{k:02d}.png")
            write_image(path, self.alphas[:, :, k], bit_depth=16)
            paths.append(path)
        path = os.path.join(directory, "segments.png")
        write_image(path, self.visualize())
        paths.append(path)
        return paths
