"""Layered files: OpenRaster for image editors, multi-page TIFF, and lossless NPZ.

:meth:`unmix.Layers.save` chooses the writer by the path's extension and
:meth:`unmix.Layers.load` the reader; the functions here do the work.

- ``.ora`` (OpenRaster, the layered format GIMP, Krita and MyPaint share): a
  zip whose first entry is the uncompressed ``mimetype``, then ``stack.xml``
  (the layer stack, top layer first), one RGBA PNG per layer, the original
  image as the bottom layer (hidden: the layers above recompose it), the
  merged image and a thumbnail of at most 256×256 pixels. No maintained Python
  package writes OpenRaster, so the container is written here with
  :mod:`zipfile` and :mod:`xml.etree`; the PNGs are encoded by imageio.
- ``.tif``: one 16-bit page per layer, written by tifffile (zlib-compressed):
  RGBA pages (colour and matte) when the colours are known, grey mattes
  otherwise; alphas are clipped to [0, 1] and rounded to 1/65535.
- ``.npz``: the alphas and colours as float64, the unmix version, the
  caller's metadata and the intermediates that are plain data or arrays;
  lossless, and read without unpickling anything.

Every file is written under a temporary name and renamed when complete
(:func:`unmix._files.atomic_output`), so a failed or interrupted write leaves
nothing at the path.
"""

import dataclasses
import json
import os
import xml.etree.ElementTree as ET
import zipfile

import numpy as np

from ._files import atomic_output, input_file, output_file, output_folder

__all__ = ["FILE_FORMATS", "layer_file_format", "load_layers", "save_layers"]

#: The file formats :meth:`Layers.save` writes, by extension; no extension is a folder.
FILE_FORMATS = {".ora": "ora", ".tif": "tif", ".tiff": "tif", ".npz": "npz"}

#: ``format`` of the metadata unmix stores in .npz and .tif files, and its version.
_FORMAT_NAME = "unmix.layers"
_FORMAT_VERSION = 1

#: OpenRaster: the spec version written, and the largest side of its thumbnail.
_ORA_VERSION = "0.0.6"
_THUMBNAIL_SIDE = 256


def layer_file_format(path, name="path"):
    """The format :meth:`Layers.save` writes to ``path``: ``"folder"``, ``"ora"``, ``"tif"`` or ``"npz"``.

    An existing folder, or a path without an extension, is a folder of PNGs.
    Any other extension than ``.ora``, ``.tif``/``.tiff`` and ``.npz`` is a
    :class:`ValueError` that names the choices.
    """
    from ._files import as_path

    path = as_path(path, name)
    if os.path.isdir(path):
        return "folder"
    extension = os.path.splitext(path)[1].lower()
    if not extension:
        return "folder"
    if extension not in FILE_FORMATS:
        raise ValueError(
            f"{name} {path!r} has the extension {extension!r}; expected a folder (no "
            "extension), .ora (OpenRaster, for GIMP and Krita), .tif (16-bit pages) or .npz "
            "(lossless, for Layers.load)")
    return FILE_FORMATS[extension]


def save_layers(layers, path, *, image=None, names=None, metadata=None, blend="normal",
                prefix="alpha"):
    """Write ``layers`` to ``path`` in the format its extension names (see :meth:`Layers.save`)."""
    kind = layer_file_format(path)
    names = _layer_names(names, layers.n_layers)
    metadata = _plain_data(metadata if metadata is not None else {}, "metadata")
    if image is not None:
        from .image import as_float_image

        image = as_float_image(image, name="image")
        if image.shape[:2] != layers.shape:
            raise ValueError(f"image must have the layers' shape {layers.shape}, "
                             f"got {image.shape[:2]}")
    if kind == "folder":
        if image is not None and layers.colors is None:
            layers.estimate_colors(image)
        return layers._save_folder(output_folder(path, "path"), prefix)
    path = output_file(path, "path")
    if kind == "ora":
        _write_ora(layers, path, image, names, blend)
    elif kind == "tif":
        if image is not None and layers.colors is None:
            layers.estimate_colors(image)
        _write_tif(layers, path, names, metadata)
    else:
        _write_npz(layers, path, names, metadata)
    return [path]


def load_layers(path):
    """Read layers that :meth:`Layers.save` wrote as ``.npz`` or ``.tif`` (see :meth:`Layers.load`)."""
    from .exceptions import ImageReadError

    path = input_file(path, "path")
    extension = os.path.splitext(path)[1].lower()
    if FILE_FORMATS.get(extension) not in ("npz", "tif"):
        raise ValueError(f"path {path!r} has the extension {extension!r}; Layers.load reads "
                         ".npz and .tif files (as Layers.save writes them)")
    try:
        return _read_npz(path) if extension == ".npz" else _read_tif(path)
    except (ValueError, KeyError, OSError, zipfile.BadZipFile) as exc:
        if isinstance(exc, ImageReadError):
            raise
        raise ImageReadError(f"cannot read layers from {path!r}: {exc}") from exc


# -- names and plain data ----------------------------------------------------------------------

def _layer_names(names, count):
    if names is None:
        return [f"layer {k:02d}" for k in range(count)]
    if isinstance(names, str) or not all(isinstance(n, str) for n in names):
        raise TypeError(f"names must be a sequence of {count} strings, got {names!r}")
    names = list(names)
    if len(names) != count:
        raise ValueError(f"names must name the {count} layers, got {len(names)} names")
    return names


def _plain_data(value, name):
    """``value`` as JSON-ready plain data (NumPy scalars become Python numbers), or TypeError."""
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, (int, float, np.integer, np.floating, np.bool_)):
        return value.item() if isinstance(value, np.generic) else value
    if isinstance(value, (list, tuple)):
        return [_plain_data(v, f"{name}[{i}]") for i, v in enumerate(value)]
    if isinstance(value, dict):
        out = {}
        for key, v in value.items():
            if not isinstance(key, str):
                raise TypeError(f"{name} must have string keys, got the key {key!r}")
            out[key] = _plain_data(v, f"{name}[{key!r}]")
        return out
    raise TypeError(f"{name} must be plain data (numbers, strings, lists and dicts), got "
                    f"{type(value).__name__}")


def _version():
    from . import __version__

    return __version__


# -- OpenRaster ------------------------------------------------------------------------------

def _png_bytes(pixels):
    import imageio.v3 as iio

    return iio.imwrite("<bytes>", pixels, extension=".png")


def _to_uint8(values):
    return np.rint(np.clip(values, 0.0, 1.0) * 255.0).astype(np.uint8)


def _ora_composite(layers_rgba, operations):
    """Composite 8-bit straight RGBA layers, bottom first, as OpenRaster's operations define.

    ``svg:src-over`` is Porter–Duff over, ``svg:plus`` the clamped sum of the
    premultiplied colours and of the alphas (the W3C compositing spec that
    OpenRaster refers to). Returns the straight RGBA result in [0, 1].
    """
    height, width = layers_rgba[0].shape[:2]
    colour = np.zeros((height, width, 3))  # premultiplied
    alpha = np.zeros((height, width, 1))
    for rgba, operation in zip(layers_rgba, operations):
        a = rgba[:, :, 3:4] / 255.0
        c = rgba[:, :, :3] / 255.0 * a
        if operation == "svg:src-over":
            colour = c + colour * (1.0 - a)
            alpha = a + alpha * (1.0 - a)
        elif operation == "svg:plus":
            colour = np.minimum(colour + c, 1.0)
            alpha = np.minimum(alpha + a, 1.0)
        else:
            raise ValueError(f"unsupported composite-op {operation!r}")
    straight = np.divide(colour, alpha, out=np.zeros_like(colour), where=alpha > 0)
    return np.concatenate([np.clip(straight, 0.0, 1.0), alpha], axis=2)


def _write_ora(layers, path, image, names, blend):
    from PIL import Image

    if blend not in ("normal", "add"):
        raise ValueError(f"blend must be 'normal' or 'add', got {blend!r}")
    if layers.colors is None and image is None:
        raise ValueError("writing .ora needs the layers' colours: pass the original image "
                         "(save(path, image=...)), which is also stored as the bottom layer, "
                         "or call estimate_colors(image) first")
    rgba = _to_uint8(layers.to_rgba(image=image, blend=blend))
    operation = "svg:src-over" if blend == "normal" else "svg:plus"
    # Bottom first: the original image (hidden: the layers recompose it), then layer 0 ...
    stack = []
    if image is not None:
        opaque = np.concatenate([_to_uint8(image), np.full(layers.shape + (1,), 255, np.uint8)],
                                axis=2)
        stack.append(("image", opaque, "hidden", "svg:src-over"))
    stack += [(names[k], rgba[:, :, k], "visible", operation) for k in range(layers.n_layers)]
    visible = [(pixels, op) for _, pixels, visibility, op in stack if visibility == "visible"]
    merged = _to_uint8(_ora_composite([p for p, _ in visible], [op for _, op in visible]))
    thumbnail = Image.fromarray(merged)
    thumbnail.thumbnail((_THUMBNAIL_SIDE, _THUMBNAIL_SIDE), Image.LANCZOS)

    height, width = layers.shape
    root = ET.Element("image", version=_ORA_VERSION, w=str(width), h=str(height))
    xml_stack = ET.SubElement(root, "stack")
    entries = []
    for index, (name, pixels, visibility, op) in reversed(list(enumerate(stack))):  # top first
        src = f"data/{index:03d}.png"
        ET.SubElement(xml_stack, "layer", {"name": name, "src": src, "x": "0", "y": "0",
                                           "opacity": "1.0", "visibility": visibility,
                                           "composite-op": op})
        entries.append((src, _png_bytes(pixels)))
    stack_xml = ET.tostring(root, encoding="UTF-8", xml_declaration=True)

    with atomic_output(path, "path") as temporary, \
            zipfile.ZipFile(temporary, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        # The spec: "mimetype" first, stored uncompressed, so that the file's type
        # can be read at a fixed offset.
        archive.writestr(zipfile.ZipInfo("mimetype"), b"image/openraster",
                         compress_type=zipfile.ZIP_STORED)
        archive.writestr("stack.xml", stack_xml)
        for src, data in entries:
            # PNGs are compressed already.
            archive.writestr(src, data, compress_type=zipfile.ZIP_STORED)
        archive.writestr("mergedimage.png", _png_bytes(merged), compress_type=zipfile.ZIP_STORED)
        archive.writestr("Thumbnails/thumbnail.png", _png_bytes(np.asarray(thumbnail)),
                         compress_type=zipfile.ZIP_STORED)


# -- TIFF ------------------------------------------------------------------------------------

def _to_uint16(values):
    return np.rint(np.clip(values, 0.0, 1.0) * 65535.0).astype(np.uint16)


def _write_tif(layers, path, names, metadata):
    import tifffile

    description = json.dumps({"format": _FORMAT_NAME, "format_version": _FORMAT_VERSION,
                              "unmix_version": _version(), "names": names,
                              "colors": layers.colors is not None, "metadata": metadata})
    alphas = _to_uint16(layers.alphas)
    with atomic_output(path, "path") as temporary, tifffile.TiffWriter(temporary) as tif:
        for k in range(layers.n_layers):
            options = {"compression": "zlib", "metadata": None,
                       "extratags": [(285, "s", 0, names[k], True)]}  # 285: PageName
            if k == 0:
                options["description"] = description
            if layers.colors is None:
                tif.write(alphas[:, :, k], photometric="minisblack", **options)
            else:
                page = np.dstack([_to_uint16(layers.colors[:, :, k]), alphas[:, :, k]])
                tif.write(page, photometric="rgb", extrasamples=["unassalpha"], **options)


def _read_tif(path):
    import tifffile

    from .layers import Layers

    with tifffile.TiffFile(path) as tif:
        pages = [page.asarray() for page in tif.pages]
        names = [page.tags["PageName"].value if "PageName" in page.tags else None
                 for page in tif.pages]
        description = tif.pages[0].description if tif.pages else ""
    if not pages:
        raise ValueError("the file has no pages")
    shapes = {p.shape for p in pages}
    if len(shapes) != 1 or any(p.dtype != np.uint16 for p in pages):
        raise ValueError(f"expected 16-bit pages of one shape (one per layer), got shapes "
                         f"{sorted(shapes)} and dtypes {sorted({str(p.dtype) for p in pages})}")
    try:
        info = json.loads(description)
    except ValueError:
        info = {}
    if not isinstance(info, dict) or info.get("format") != _FORMAT_NAME:
        info = {}
    stack = np.stack(pages, axis=2) / 65535.0
    if stack.ndim == 3:
        alphas, colors = stack, None
    elif stack.shape[3] == 4:
        alphas, colors = stack[:, :, :, 3], stack[:, :, :, :3]
    else:
        raise ValueError(f"expected grey or RGBA pages, got pages of shape {pages[0].shape}")
    intermediates = {"names": info.get("names", names), "metadata": info.get("metadata", {})}
    if "unmix_version" in info:
        intermediates["unmix_version"] = info["unmix_version"]
    return Layers(alphas, colors, intermediates=intermediates)


# -- NPZ -------------------------------------------------------------------------------------

def _write_npz(layers, path, names, metadata):
    arrays = {"alphas": layers.alphas}
    if layers.colors is not None:
        arrays["colors"] = layers.colors
    kept, skipped = {}, []
    for key, value in layers.intermediates.items():
        if key in ("names", "metadata", "unmix_version"):
            continue  # what load() adds, rewritten below
        if isinstance(value, np.ndarray) and value.dtype != object:
            arrays[f"intermediates/{key}"] = value
            continue
        if _is_unmix_dataclass(value):
            fields = {f.name: getattr(value, f.name) for f in dataclasses.fields(value)}
            if all(isinstance(v, np.ndarray) and v.dtype != object for v in fields.values()):
                for field_name, v in fields.items():
                    arrays[f"intermediates/{key}/{field_name}"] = v
                kept[key] = {"dataclass": f"{type(value).__module__}.{type(value).__qualname__}",
                             "fields": list(fields)}
                continue
        try:
            kept[key] = {"value": _plain_data(value, key)}
        except TypeError:
            skipped.append(key)
    info = {"format": _FORMAT_NAME, "format_version": _FORMAT_VERSION,
            "unmix_version": _version(), "names": names, "metadata": metadata,
            "intermediates": kept, "skipped_intermediates": skipped}
    arrays["info"] = np.array(json.dumps(info))
    with atomic_output(path, "path") as temporary:
        np.savez_compressed(temporary, **arrays)


def _is_unmix_dataclass(value):
    return dataclasses.is_dataclass(value) and not isinstance(value, type) \
        and type(value).__module__.split(".")[0] == "unmix"


def _read_npz(path):
    import importlib

    from .layers import Layers

    with np.load(path, allow_pickle=False) as data:
        if "info" not in data or "alphas" not in data:
            raise ValueError("not a layers file written by Layers.save (no 'info' or 'alphas')")
        info = json.loads(str(data["info"]))
        if info.get("format") != _FORMAT_NAME:
            raise ValueError(f"not a layers file written by Layers.save (format "
                             f"{info.get('format')!r})")
        if info.get("format_version", 0) > _FORMAT_VERSION:
            raise ValueError(f"written by a newer unmix ({info.get('unmix_version')}, format "
                             f"version {info['format_version']}); upgrade unmix to read it")
        alphas = data["alphas"]
        colors = data.get("colors")
        intermediates = {}
        for key in data.files:
            if key.startswith("intermediates/") and key.count("/") == 1:
                intermediates[key.split("/", 1)[1]] = data[key]
        for key, entry in info.get("intermediates", {}).items():
            if "value" in entry:
                intermediates[key] = entry["value"]
                continue
            module, _, qualname = entry["dataclass"].rpartition(".")
            if module.split(".")[0] != "unmix":  # only unmix's own classes are rebuilt
                raise ValueError(f"intermediate {key!r} names a class outside unmix")
            cls = getattr(importlib.import_module(module), qualname)
            intermediates[key] = cls(**{f: data[f"intermediates/{key}/{f}"]
                                        for f in entry["fields"]})
    intermediates.update(names=info["names"], metadata=info["metadata"],
                         unmix_version=info["unmix_version"])
    return Layers(alphas, colors, intermediates=intermediates)
