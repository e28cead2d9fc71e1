"""``Layers``: the result of every decomposition in unmix, and compositing."""

import os
from dataclasses import dataclass, field

import numpy as np

from ._checks import as_array, choice, integer, real_array
from .image import as_float_image, write_image

__all__ = ["Layers", "composite", "segment_palette"]


def segment_palette(n):
    """``n`` well-separated RGB colours in [0, 1] for showing segments.

    The first ten are the qualitative "tab10" colours; beyond them, hues
    spaced by the golden angle.

    Examples
    --------
    >>> from unmix.layers import segment_palette
    >>> segment_palette(3).round(3)
    array([[0.122, 0.467, 0.706],
           [1.   , 0.498, 0.055],
           [0.173, 0.627, 0.173]])
    >>> segment_palette(12).shape
    (12, 3)
    """
    tab10 = np.array([
        [31, 119, 180], [255, 127, 14], [44, 160, 44], [214, 39, 40], [148, 103, 189],
        [140, 86, 75], [227, 119, 194], [127, 127, 127], [188, 189, 34], [23, 190, 207],
    ]) / 255.0
    n = integer("n", n, 0)
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
        Per-layer colours, for methods that estimate them, or from
        :meth:`estimate_colors` (then used by :meth:`to_rgba`, :meth:`composite`
        and :meth:`save`).
    intermediates : dict
        Stage outputs kept for inspection and teaching (e.g. the eigenpairs,
        the initial and grouped segments), when the method was asked for them.

    Examples
    --------
    Two layers that split a 4×4 image into its left and right halves, softly:

    >>> import numpy as np
    >>> from unmix import Layers
    >>> left = np.tile(np.linspace(1.0, 0.0, 4), (4, 1))
    >>> layers = Layers(np.stack([left, 1.0 - left], axis=2))
    >>> layers
    Layers(2 layers of 4×4)
    >>> layers.n_layers, layers.shape
    (2, (4, 4))
    >>> bool(np.allclose(layers.alphas.sum(axis=2), 1.0))
    True
    """

    alphas: np.ndarray
    colors: np.ndarray = None
    intermediates: dict = field(default_factory=dict, repr=False)

    def __post_init__(self):
        self.alphas = real_array(self.alphas, "alphas", (3,))
        if self.colors is not None:
            self.colors = real_array(self.colors, "colors")
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

        Examples
        --------
        >>> import numpy as np
        >>> from unmix import Layers
        >>> layers = Layers(np.dstack([np.ones((2, 2)), np.zeros((2, 2))]))
        >>> layers.visualize(palette=[[1, 0, 0], [0, 0, 1]])[0, 0]
        array([1., 0., 0.])
        """
        palette = segment_palette(self.n_layers) if palette is None \
            else real_array(palette, "palette")
        if palette.shape != (self.n_layers, 3):
            raise ValueError(f"palette must have shape ({self.n_layers}, 3), got {palette.shape}")
        return np.clip(np.clip(self.alphas, 0.0, 1.0) @ palette, 0.0, 1.0)

    def estimate_colors(self, image, **kwargs):
        """Estimate and store the layers' colours (:func:`unmix.matting.estimate_layer_colors`).

        Parameters
        ----------
        image : array_like, shape (H, W, 3)
            The image the layers decompose.
        **kwargs
            Passed on to :func:`~unmix.matting.estimate_layer_colors`.

        Returns
        -------
        colors : ndarray, shape (H, W, K, 3)
            Also stored as ``self.colors``.

        Examples
        --------
        >>> import numpy as np
        >>> from unmix import Layers
        >>> from unmix.image import example_image
        >>> image = example_image("coffee", (24, 32))
        >>> left = np.tile(np.linspace(1.0, 0.0, 32), (24, 1))
        >>> layers = Layers(np.dstack([left, 1.0 - left]))
        >>> layers.estimate_colors(image).shape
        (24, 32, 2, 3)
        >>> recomposed = (layers.alphas[..., None] * layers.colors).sum(axis=2)
        >>> bool(np.abs(recomposed - image).max() < 0.05)
        True
        """
        from .matting import estimate_layer_colors

        self.colors = estimate_layer_colors(image, self.alphas, **kwargs)
        return self.colors

    def _selection(self, layers):
        index = np.arange(self.n_layers) if layers is None \
            else np.atleast_1d(as_array(layers, "layers"))
        if index.ndim != 1 or index.size == 0 or not np.issubdtype(index.dtype, np.integer) \
                or index.min() < -self.n_layers or index.max() >= self.n_layers:
            raise ValueError(f"layers must name layers among the {self.n_layers}, got {layers!r}")
        return index

    def to_rgba(self, layers=None, image=None, blend="add"):
        """The layers as RGBA images: their colours, with their alphas as opacity.

        Parameters
        ----------
        layers : int or sequence of int, optional
            One layer, or several merged into one (α = Σ α_k, colour = the
            α-weighted mean of their colours: e.g. a person made of several
            soft segments). All layers, separately, by default.
        image : array_like, shape (H, W, 3), optional
            Needed when the colours are not known yet: they are then estimated
            from it first (:meth:`estimate_colors`) and stored.
        blend : {"add", "normal"}, optional
            ``"add"``: the alphas themselves (the layers add up to the image,
            c = Σ α_k u_k). ``"normal"``: the opacities of the equivalent
            normal-blend stack of layer-based editors, layer 0 at the bottom
            (:func:`unmix.color.overlay.to_overlay`; all layers only; the
            alphas are clipped to [0, 1] and renormalised to sum to one first).

        Returns
        -------
        rgba : ndarray, shape (H, W, 4), or (H, W, K, 4) when ``layers`` is None
            Straight (not premultiplied) colour and alpha clipped to [0, 1],
            ready for :func:`unmix.image.write_image` and :func:`composite`.

        Examples
        --------
        >>> import numpy as np
        >>> from unmix import Layers
        >>> alphas = np.dstack([np.full((2, 2), 0.25), np.full((2, 2), 0.75)])
        >>> colors = np.stack([np.broadcast_to([1.0, 0.0, 0.0], (2, 2, 3)),
        ...                    np.broadcast_to([0.0, 0.0, 1.0], (2, 2, 3))], axis=2)
        >>> layers = Layers(alphas, colors)
        >>> layers.to_rgba().shape                 # every layer: (H, W, K, 4)
        (2, 2, 2, 4)
        >>> layers.to_rgba(layers=[0, 1])[0, 0]    # the two merged into one
        array([0.25, 0.  , 0.75, 1.  ])
        >>> layers.to_rgba(blend="normal")[0, 0, :, 3]   # opacities of a normal-blend stack
        array([1.  , 0.75])
        """
        choice("blend", blend, ("add", "normal"))
        if self.colors is None:
            if image is None:
                raise ValueError("these layers have no colours yet: pass the image to "
                                 "to_rgba(image=...) or call estimate_colors(image) first")
            self.estimate_colors(image)
        alphas = np.clip(self.alphas, 0.0, 1.0)
        if blend == "normal":
            from .color.overlay import to_overlay

            if layers is not None:
                raise ValueError("blend='normal' exports the whole stack: leave layers=None")
            total = alphas.sum(axis=2, keepdims=True)
            opacities = to_overlay(alphas / np.where(total > 0, total, 1.0))
            return np.concatenate([self.colors, opacities[:, :, :, None]], axis=3)
        if layers is None:
            return np.concatenate([self.colors, alphas[:, :, :, None]], axis=3)
        index = self._selection(layers)
        alpha = alphas[:, :, index].sum(axis=2)
        weighted = (alphas[:, :, index, None] * self.colors[:, :, index]).sum(axis=2)
        # Where the merged alpha is 0 the colour is irrelevant: take the plain mean.
        colour = np.where(alpha[:, :, None] > 0, weighted / np.maximum(alpha, 1e-12)[:, :, None],
                          self.colors[:, :, index].mean(axis=2))
        return np.concatenate([np.clip(colour, 0.0, 1.0), np.clip(alpha, 0.0, 1.0)[:, :, None]],
                              axis=2)

    def composite(self, background, layers=None, image=None):
        """Composite chosen layers over a new background (see :func:`composite`).

        ``layers`` and ``image`` are as in :meth:`to_rgba`; all layers (which
        recompose the image) by default.

        Examples
        --------
        Keep layer 1 only, over white:

        >>> import numpy as np
        >>> from unmix import Layers
        >>> alphas = np.dstack([np.full((2, 2), 0.25), np.full((2, 2), 0.75)])
        >>> colors = np.stack([np.broadcast_to([1.0, 0.0, 0.0], (2, 2, 3)),
        ...                    np.broadcast_to([0.0, 0.0, 1.0], (2, 2, 3))], axis=2)
        >>> Layers(alphas, colors).composite(1.0, layers=[1])[0, 0]
        array([0.25, 0.25, 1.  ])
        """
        rgba = self.to_rgba(self._selection(layers), image)
        return _over(rgba[:, :, :3], rgba[:, :, 3], background)

    def save(self, path, prefix="alpha", *, image=None, names=None, metadata=None,
             blend="normal"):
        """Write the layers to a folder of PNGs or to one layered file, chosen by extension.

        - a folder (an existing one, or a path without an extension): one
          16-bit PNG per alpha matte, ``<prefix>-00.png`` … (values clipped
          to [0, 1]), ``segments.png``, and, when the colours are known, one
          RGBA PNG per layer, ``layer-00.png`` … (alpha-add: they add up to
          the image), and the same layers as a normal-blend stack for
          layer-based editors, ``overlay-00.png`` (the bottom layer) ….
          The folder is created if needed.
        - ``.ora``: OpenRaster, which GIMP, Krita and MyPaint open as layers:
          one RGBA layer per soft layer (:meth:`to_rgba`), named, layer 0 at
          the bottom, above the original ``image`` (a hidden layer: the
          layers recompose it), with the merged image and a thumbnail. Needs
          the colours, or ``image`` to estimate them from.
        - ``.tif`` / ``.tiff``: one 16-bit page per layer (RGBA when the
          colours are known, else the grey matte), named; alphas clipped to
          [0, 1].
        - ``.npz``: the alphas and colours as float64, ``metadata``, the
          unmix version and the intermediates that are arrays or plain data;
          lossless. :meth:`load` reads ``.npz`` and ``.tif`` back.

        Every file is written under a temporary name and renamed when
        complete, so an error never leaves a partial file.

        Parameters
        ----------
        path : str or os.PathLike
            The folder or file to write; a file's folder must exist.
        prefix : str, optional
            File name prefix of the mattes in a folder.
        image : array_like, shape (H, W, 3), optional
            The image the layers decompose: the bottom layer of an ``.ora``,
            and the source of the colours when they are not known yet (they
            are then estimated, :meth:`estimate_colors`, and stored).
        names : sequence of str, optional
            Layer names (``.ora``, ``.tif``, ``.npz``); ``"layer 00"`` … by default.
        metadata : dict, optional
            Plain data (numbers, strings, lists, dicts) stored with the
            layers in ``.tif`` and ``.npz`` files, e.g. the parameters of the
            run; :meth:`load` returns it as ``intermediates["metadata"]``.
        blend : {"normal", "add"}, optional
            How the ``.ora`` layers combine: ``"normal"`` (default) as the
            normal-blend stack of :meth:`to_rgba`, which every editor
            composites alike; ``"add"`` as the alpha-add layers with the
            OpenRaster ``svg:plus`` operation (editors differ in how they
            implement it).

        Returns
        -------
        paths : list of str
            The files written.

        Raises
        ------
        ValueError
            If the extension is none of those above, or an ``.ora`` has
            neither colours nor ``image``.
        unmix.exceptions.ImageWriteError
            If the path cannot be written (its folder is missing or
            read-only, or a folder stands where a file should).

        Examples
        --------
        >>> import os, tempfile
        >>> import numpy as np
        >>> from unmix import Layers
        >>> left = np.tile(np.linspace(1.0, 0.0, 8), (6, 1))
        >>> layers = Layers(np.dstack([left, 1.0 - left]))
        >>> folder = tempfile.mkdtemp()
        >>> [os.path.basename(path) for path in layers.save(folder)]
        ['alpha-00.png', 'alpha-01.png', 'segments.png']
        >>> paths = layers.save(os.path.join(folder, "layers.npz"), metadata={"seed": 0})
        """
        from .layer_files import save_layers

        return save_layers(self, path, image=image, names=names, metadata=metadata,
                           blend=blend, prefix=prefix)

    @classmethod
    def load(cls, path):
        """Read layers written by :meth:`save` as ``.npz`` (exactly) or ``.tif`` (16 bits).

        Parameters
        ----------
        path : str or os.PathLike

        Returns
        -------
        layers : Layers
            With ``intermediates["names"]``, ``["metadata"]`` and
            ``["unmix_version"]``, and (``.npz``) the saved intermediates.

        Raises
        ------
        ValueError
            If the extension is neither ``.npz`` nor ``.tif``/``.tiff``.
        unmix.exceptions.ImageNotFoundError, unmix.exceptions.ImageReadError
            If the file is missing or is not a layers file.

        Examples
        --------
        >>> import os, tempfile
        >>> import numpy as np
        >>> from unmix import Layers
        >>> left = np.tile(np.linspace(1.0, 0.0, 8), (6, 1))
        >>> path = os.path.join(tempfile.mkdtemp(), "layers.npz")
        >>> _ = Layers(np.dstack([left, 1.0 - left])).save(path, metadata={"seed": 0})
        >>> back = Layers.load(path)
        >>> back, back.intermediates["metadata"]
        (Layers(2 layers of 6×8), {'seed': 0})
        >>> bool(np.array_equal(back.alphas[..., 0], left))
        True
        """
        from .layer_files import load_layers

        return load_layers(path)

    def _save_folder(self, directory, prefix):
        """The folder of PNGs of :meth:`save`, into the existing folder ``directory``."""
        paths = []
        for k in range(self.n_layers):
            path = os.path.join(directory, f"{prefix}-{k:02d}.png")
            write_image(path, self.alphas[:, :, k], bit_depth=16)
            paths.append(path)
        path = os.path.join(directory, "segments.png")
        write_image(path, self.visualize())
        paths.append(path)
        if self.colors is not None:
            for name, blend in (("layer", "add"), ("overlay", "normal")):
                rgba = self.to_rgba(blend=blend)
                for k in range(self.n_layers):
                    path = os.path.join(directory, f"{name}-{k:02d}.png")
                    write_image(path, rgba[:, :, k])
                    paths.append(path)
        return paths


def _background(background, shape):
    """A background as float64 (H, W, 3): an image, an RGB triple or a grey level."""
    arr = as_array(background, "background")
    if arr.ndim <= 1 and arr.size in (1, 3):
        colour = real_array(arr, "background").reshape(-1)
        if not np.all((colour >= 0) & (colour <= 1)):
            raise ValueError(f"background colour must lie in [0, 1], got {background!r}")
        return np.broadcast_to(np.resize(colour, 3), shape + (3,))
    out = as_float_image(arr, name="background")
    if out.shape[:2] != shape:
        raise ValueError(f"background must have the foreground's shape {shape}, "
                         f"got {out.shape[:2]}")
    return out


def composite(foreground, alpha=None, background=0.0):
    """Composite a foreground over a background: α F + (1 − α) B.

    Parameters
    ----------
    foreground : array_like, shape (H, W, 3) or (H, W, 4), or Layers
        Foreground colours (e.g. from :func:`unmix.matting.estimate_foreground`),
        an RGBA image (e.g. from :meth:`Layers.to_rgba`) whose alpha is used
        when ``alpha`` is omitted, or :class:`Layers` with colours, whose
        layers named by ``alpha`` (an int or a sequence) are the foreground.
    alpha : array_like, shape (H, W), or int or sequence of int, optional
        The matte (floats in [0, 1] or ``uint8``); for :class:`Layers`, the
        layers to keep.
    background : array_like, optional
        An image (H, W, 3), an RGB colour, or a grey level in [0, 1]
        (default 0: black).

    Returns
    -------
    image : ndarray, shape (H, W, 3), float64 in [0, 1]

    Examples
    --------
    >>> import numpy as np
    >>> from unmix.layers import composite
    >>> fg = np.ones((2, 2, 3)); alpha = np.array([[0.0, 0.25], [0.5, 1.0]])
    >>> composite(fg, alpha, background=(0.0, 0.0, 1.0))[..., 2]
    array([[1., 1.],
           [1., 1.]])
    >>> composite(fg, alpha)[..., 0]
    array([[0.  , 0.25],
           [0.5 , 1.  ]])
    """
    if isinstance(foreground, Layers):
        if foreground.colors is None:
            raise ValueError("the layers have no colours: call estimate_colors(image) first")
        rgba = foreground.to_rgba(foreground._selection(alpha))
        colours, alpha = rgba[:, :, :3], rgba[:, :, 3]
    else:
        arr = np.asarray(foreground)
        if arr.ndim == 3 and arr.shape[2] == 4:
            if alpha is None:
                alpha = arr[:, :, 3]
            arr = arr[:, :, :3]
        if alpha is None:
            raise ValueError("alpha is required unless the foreground is RGBA or Layers")
        colours = as_float_image(arr, name="foreground", min_side=1)
        alpha = as_array(alpha, "alpha")
        alpha = real_array(alpha / 255.0 if alpha.dtype == np.uint8 else alpha, "alpha")
        if alpha.shape != colours.shape[:2]:
            raise ValueError(f"alpha must have shape {colours.shape[:2]} (the foreground's), "
                             f"got {alpha.shape}")
        alpha = np.clip(alpha, 0.0, 1.0)
    return _over(colours, alpha, background)


def _over(colours, alpha, background):
    """α F + (1 − α) B for checked colours (H, W, 3) and alpha (H, W) in [0, 1]."""
    background = _background(background, colours.shape[:2])
    a = alpha[:, :, None]
    return np.clip(a * colours + (1.0 - a) * background, 0.0, 1.0)
