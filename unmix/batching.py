"""Many images and videos at once: :func:`batch`, on Dask or in this process, resumable.

A batch is a list of *items*, each an image file or one frame of a video, and
for each video one *assembly* that puts its frames' layers in a consistent
order and writes them. Every item runs where it is scheduled (a Dask worker,
or this process without the ``distributed`` extra): it reads its own input,
decomposes it, writes its outputs under the output folder, and returns a small
record. So the workers and the client must see the inputs and the output
folder at the same paths (one machine, or a shared file system).

Nothing is lost when a run stops:

- every file is written under a temporary name and renamed when complete
  (:func:`unmix._files.atomic_output`); leftovers of a run that was killed
  are removed when the next run starts;
- each completed item writes a record, ``OUTDIR/.manifest/<id>.json``, after
  its outputs: the SHA-256 of its input, the parameters and the unmix
  version. A rerun skips the items whose record matches and whose outputs are
  all there, and recomputes the others; ``OUTDIR/manifest.json`` gathers the
  records at the end of a run;
- an item that fails is recorded with its error in ``OUTDIR/failures.jsonl``
  and the others go on.

Videos (frames read with imageio's ffmpeg plugin, the ``video`` extra) get
layers that keep their meaning from frame to frame: soft colour segmentation
estimates its colour models once, on frames sampled across the clip, and
uses them for every frame; semantic soft segmentation matches each frame's
layers to the previous frame's by the Hungarian assignment on their alpha
overlap (:func:`match_layers`).
"""

import contextlib
import dataclasses
import glob
import hashlib
import json
import logging
import os
import re
import time
import traceback

import numpy as np

from ._files import as_path, atomic_output, output_folder

__all__ = ["FORMATS", "METHODS", "BatchResult", "batch", "collect_inputs", "count_frames",
           "file_sha256", "match_layers", "temporal_change"]

log = logging.getLogger("unmix")

#: The decompositions :func:`batch` runs.
METHODS = ("sss", "colors", "matte")

#: Output formats: a folder of PNGs per item, or one file (see :meth:`unmix.Layers.save`).
FORMATS = ("png", "ora", "tif", "npz")

#: The keyword arguments each method takes in ``options``, with their defaults.
METHOD_OPTIONS = {
    "sss": {"n_segments": 5, "mode": "full", "features": None, "random_state": 0},
    "colors": {"n_layers": None, "palette": None, "method": "fast"},
    "matte": {"eps": 1e-7, "radius": 1},
}

#: Extensions of video files; every other input is read as an image.
VIDEO_EXTENSIONS = (".mp4", ".mov", ".avi", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg")

_MANIFEST = ".manifest"
_PARTIAL = re.compile(r"^\..+\.[0-9a-f]{12}\.partial(\.[^.]+)?$")  # atomic_output's names


# -- inputs ----------------------------------------------------------------------------------

def _image_extensions():
    from .image import _writable_extensions

    return _writable_extensions() | {".tif", ".tiff"}


def collect_inputs(inputs):
    """Expand files, folders and glob patterns into ``(path, name)`` pairs, sorted.

    A folder contributes the images and videos below it (by extension, in all
    subfolders); a pattern, the files it matches; a file, itself, whatever its
    extension. ``name`` is the output name: the path below its folder, or the
    file name, without the extension.

    Raises
    ------
    ValueError
        If an input neither exists nor matches a file, if nothing is found,
        or if two inputs would write to the same output name.

    Examples
    --------
    >>> import os, tempfile
    >>> import unmix
    >>> photos, out = tempfile.mkdtemp(), tempfile.mkdtemp()
    >>> for name in ("coffee", "astronaut"):
    ...     unmix.write_image(os.path.join(photos, f"{name}.png"),
    ...                       unmix.image.example_image(name, (24, 32)))
    >>> from unmix.batching import collect_inputs
    >>> [name for path, name in collect_inputs([photos])]
    ['astronaut', 'coffee']
    >>> [name for path, name in collect_inputs([os.path.join(photos, "c*.png")])]
    ['coffee']
    """
    if isinstance(inputs, (str, bytes)) or hasattr(inputs, "__fspath__"):
        inputs = [inputs]
    inputs = [as_path(p, "inputs") for p in inputs]
    if not inputs:
        raise ValueError("inputs must name at least one file, folder or pattern, got none")
    known = _image_extensions() | set(VIDEO_EXTENSIONS)
    found = {}
    for entry in inputs:
        if os.path.isdir(entry):
            pairs = []
            for folder, subfolders, files in os.walk(entry):
                subfolders[:] = sorted(d for d in subfolders if not d.startswith("."))
                for file in files:
                    if os.path.splitext(file)[1].lower() in known and not file.startswith("."):
                        path = os.path.join(folder, file)
                        pairs.append((path, os.path.splitext(os.path.relpath(path, entry))[0]))
        elif os.path.isfile(entry):
            pairs = [(entry, os.path.splitext(os.path.basename(entry))[0])]
        else:
            matches = sorted(p for p in glob.glob(entry, recursive=True) if os.path.isfile(p))
            if not matches:
                raise ValueError(f"inputs: {entry!r} is no file or folder, and no file matches "
                                 "it as a pattern")
            pairs = [(p, os.path.splitext(os.path.basename(p))[0]) for p in matches]
        for path, name in pairs:
            path = os.path.abspath(path)
            name = name.replace(os.sep, "/")
            if name in found and found[name] != path:
                raise ValueError(f"inputs: {found[name]!r} and {path!r} would both write the "
                                 f"output {name!r}; rename one or run them separately")
            found[name] = path
    if not found:
        raise ValueError(f"inputs: no image or video files in {inputs!r}")
    return sorted((path, name) for name, path in found.items())


def _is_video(path):
    return os.path.splitext(path)[1].lower() in VIDEO_EXTENSIONS


# -- configuration ---------------------------------------------------------------------------

def _config(method, options, fmt, trimaps, video_out, palette_frames):
    from . import __version__
    from .layer_files import _plain_data

    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    if fmt not in FORMATS:
        raise ValueError(f"format must be one of {FORMATS}, got {fmt!r}")
    options = {} if options is None else dict(options)
    unknown = sorted(set(options) - set(METHOD_OPTIONS[method]))
    if unknown:
        raise ValueError(f"options {unknown} are not options of method {method!r}; expected "
                         f"some of {sorted(METHOD_OPTIONS[method])}")
    options = _plain_data({**METHOD_OPTIONS[method], **options}, "options")
    if method == "sss" and options["features"] not in (None, "handcrafted"):
        raise ValueError("options['features'] must be None (the network features) or "
                         f"'handcrafted' in a batch, got {options['features']!r}")
    if method == "matte":
        if trimaps is None:
            raise ValueError("method 'matte' needs trimaps: a folder with one trimap per image, "
                             "of the same name (any image extension)")
        trimaps = os.path.abspath(as_path(trimaps, "trimaps"))
        if not os.path.isdir(trimaps):
            raise ValueError(f"trimaps must be a folder, got {trimaps!r}")
    elif trimaps is not None:
        raise ValueError(f"trimaps are for method 'matte' only, got method {method!r}")
    if isinstance(palette_frames, bool) or not isinstance(palette_frames, int) \
            or palette_frames < 1:
        raise ValueError(f"palette_frames must be a positive integer, got {palette_frames!r}")
    return {"method": method, "options": options, "format": fmt, "trimaps": trimaps,
            "video_out": bool(video_out), "palette_frames": palette_frames,
            "unmix_version": __version__}


def _digest(data):
    return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()


_hash_cache = {}


def file_sha256(path):
    """SHA-256 of a file's bytes, remembered per (path, size, modification time).

    Examples
    --------
    >>> import os, tempfile
    >>> from unmix.batching import file_sha256
    >>> path = os.path.join(tempfile.mkdtemp(), "empty.bin")
    >>> open(path, "wb").close()
    >>> file_sha256(path)
    'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855'
    """
    stat = os.stat(path)
    key = (path, stat.st_size, stat.st_mtime_ns)
    if key not in _hash_cache:
        digest = hashlib.sha256()
        with open(path, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                digest.update(block)
        _hash_cache[key] = digest.hexdigest()
    return _hash_cache[key]


# -- the work of one item (runs on a worker) -------------------------------------------------

def _output_path(outdir, name, fmt, frame=None):
    base = name if frame is None else f"{name}/frame-{frame:05d}"
    return os.path.join(outdir, base if fmt == "png" else f"{base}.{fmt}")


def _record_path(outdir, item_id):
    return os.path.join(outdir, _MANIFEST, hashlib.sha1(item_id.encode()).hexdigest() + ".json")


def _previous_record(outdir, item_id, fingerprint):
    """The record of an earlier run that completed this item as asked, if its outputs remain."""
    try:
        with open(_record_path(outdir, item_id)) as f:
            record = json.load(f)
    except (OSError, ValueError):
        return None
    if record.get("fingerprint") != fingerprint:
        return None
    if not all(os.path.exists(os.path.join(outdir, p)) for p in record.get("outputs", [])):
        return None
    return record


def _write_record(outdir, record):
    path = _record_path(outdir, record["id"])
    with atomic_output(path, "record") as temporary, open(temporary, "w") as f:
        json.dump(record, f, indent=1)


def _read_frame(path, index):
    import imageio.v3 as iio

    from .image import as_float_image

    _require_video()
    frame = iio.imread(path, index=index, plugin="FFMPEG")
    return as_float_image(frame, name=f"frame {index} of {path!r}")


def _require_video():
    try:
        import imageio_ffmpeg  # noqa: F401
    except ImportError:
        raise ImportError("reading and writing videos needs imageio-ffmpeg: "
                          "pip install 'unmix[video]'") from None


def count_frames(path):
    """Number of frames of a video file (decoded by ffmpeg, so exact).

    Examples
    --------
    >>> import os, tempfile
    >>> import numpy as np
    >>> import imageio.v3 as iio
    >>> from unmix.batching import count_frames
    >>> path = os.path.join(tempfile.mkdtemp(), "clip.mp4")
    >>> iio.imwrite(path, np.zeros((5, 32, 32, 3), np.uint8), fps=5)
    >>> count_frames(path)
    5
    """
    _require_video()
    import imageio_ffmpeg

    return int(imageio_ffmpeg.count_frames_and_secs(path)[0])


def _trimap_for(trimaps, name):
    from .image import read_image

    candidates = sorted(glob.glob(os.path.join(glob.escape(trimaps), glob.escape(name) + ".*")))
    if not candidates:
        raise FileNotFoundError(f"no trimap for {name!r} in {trimaps!r} (expected "
                                f"{name}.png or another image extension)")
    return read_image(candidates[0])[:, :, 0]


def _decompose(image, config, models=None, name=None):
    """The layers of one image, with layer names, by the configured method."""
    from .layers import Layers

    method, options = config["method"], config["options"]
    if method == "sss":
        from .spectral import semantic_soft_segments

        layers = semantic_soft_segments(image, **options)
        names = [f"segment {k:02d}" for k in range(layers.n_layers)]
    elif method == "colors":
        from .color import ColorModels, soft_color_segments

        if models is not None:
            layers = soft_color_segments(image, models=ColorModels(**models),
                                         method=options["method"])
        else:
            layers = soft_color_segments(image, **options)
        means = layers.intermediates["models"].means
        names = ["colour #" + "".join(f"{round(255 * c):02x}" for c in m) for m in means]
    else:
        from .matting import closed_form_matting

        alpha = closed_form_matting(image, _trimap_for(config["trimaps"], name), **options)
        layers = Layers(np.dstack([1.0 - alpha, alpha]))
        names = ["background", "foreground"]
    return layers, names


def _run_item(item, config, outdir, threads, models=None):
    """Decompose one image or frame and write its outputs; return its record (never raises)."""
    from ._threads import limit_threads
    from .image import read_image

    start = time.perf_counter()
    record = {"id": item["id"], "input": item["path"], "frame": item.get("frame")}
    try:
        if models is not None and "error" in models:
            raise RuntimeError(models["error"])
        record["input_sha256"] = file_sha256(item["path"])
        fingerprint = _digest({"config": config, "input": record["input_sha256"],
                               "frame": item.get("frame"), "models": models})
        previous = _previous_record(outdir, item["id"], fingerprint)
        if previous is not None:
            return {**previous, "status": "skipped", "seconds": 0.0}
        with limit_threads(threads):
            frame = item.get("frame")
            image = read_image(item["path"]) if frame is None else _read_frame(item["path"], frame)
            layers, names = _decompose(image, config, models, item["name"])
            if config["format"] == "ora" or (config["format"] == "png" and layers.colors is None
                                             and config["method"] != "sss"):
                layers.estimate_colors(image)
            if item.get("video"):
                # A frame of a video: its layers wait, lossless, for the video's assembly.
                target = _output_path(outdir, f"{_MANIFEST}/frames/{item['name']}", "npz",
                                      frame)
                output_folder(os.path.dirname(target), "outdir")
                layers.save(target, names=names)
            else:
                target = _output_path(outdir, item["name"], config["format"])
                if config["format"] != "png":
                    output_folder(os.path.dirname(target), "outdir")
                metadata = {"method": config["method"], "options": config["options"],
                            "input": item["path"], "unmix_version": config["unmix_version"]}
                layers.save(target, image=image if config["format"] == "ora" else None,
                            names=names, metadata=metadata)
        paths = [target] if config["format"] != "png" or item.get("video") else \
            sorted(os.path.join(target, f) for f in os.listdir(target))
        record.update(status="done", fingerprint=fingerprint, n_layers=layers.n_layers,
                      outputs=[os.path.relpath(p, outdir) for p in paths],
                      unmix_version=config["unmix_version"], method=config["method"],
                      seconds=time.perf_counter() - start)
        _write_record(outdir, record)
        return record
    except Exception as exc:  # recorded, and the batch goes on
        return {**record, "status": "failed", "error": f"{type(exc).__name__}: {exc}",
                "traceback": traceback.format_exc(limit=6), "seconds": time.perf_counter() - start}


def _video_models(path, config, threads):
    """Colour models for every frame of a video, from ``palette_frames`` frames across it."""
    from ._threads import limit_threads
    from .color import ColorModels, estimate_color_models

    options = config["options"]
    try:
        if options["palette"] is not None:
            models = ColorModels.from_palette(np.asarray(options["palette"], dtype=np.float64))
        else:
            count = count_frames(path)
            picks = np.unique(np.linspace(0, count - 1, min(config["palette_frames"], count))
                              .round().astype(int))
            with limit_threads(threads):
                # The sampled frames side by side: one image whose colours are the clip's.
                mosaic = np.concatenate([_read_frame(path, int(i)) for i in picks], axis=0)
                models = estimate_color_models(mosaic, n_models=options["n_layers"])
    except Exception as exc:  # every frame of the video then fails with this error
        return {"error": f"the colour models of the video: {type(exc).__name__}: {exc}"}
    return {"means": models.means.tolist(), "covariances": models.covariances.tolist()}


def _video_item(path, name, config, outdir, threads, frame_records):
    """Assemble a video's frames: match their layers, write each frame and the per-layer videos."""
    from .layers import Layers

    start = time.perf_counter()
    record = {"id": f"{name}/video", "input": path, "video": True}
    try:
        import imageio.v3 as iio

        frames = {r["frame"]: r for r in frame_records if r["status"] in ("done", "skipped")}
        record["input_sha256"] = file_sha256(path)
        fingerprint = _digest({"config": config, "input": record["input_sha256"],
                               "frames": sorted((r["frame"], r["fingerprint"])
                                                for r in frames.values())})
        previous = _previous_record(outdir, record["id"], fingerprint)
        if previous is not None:
            return {**previous, "status": "skipped", "seconds": 0.0}
        outputs, previous_alphas, changes_raw, changes_matched = [], None, [], []
        writers, videos = {}, []
        with contextlib.ExitStack() as stack:
            for index, image in enumerate(iio.imiter(path, plugin="FFMPEG")):
                if index not in frames:
                    continue
                raw = Layers.load(os.path.join(outdir, frames[index]["outputs"][0]))
                names = raw.intermediates["names"]
                if config["method"] == "sss" and previous_alphas is not None:
                    order = match_layers(previous_alphas, raw.alphas)
                    changes_raw.append(temporal_change(previous_alphas, raw.alphas))
                    layers = Layers(raw.alphas[:, :, order],
                                    None if raw.colors is None else raw.colors[:, :, order])
                    changes_matched.append(temporal_change(previous_alphas, layers.alphas))
                else:
                    layers = Layers(raw.alphas, raw.colors)
                    if previous_alphas is not None:
                        change = temporal_change(previous_alphas, layers.alphas)
                        changes_raw.append(change)
                        changes_matched.append(change)
                previous_alphas = layers.alphas
                image = image[:, :, :3] / 255.0
                target = _output_path(outdir, name, config["format"], index)
                output_folder(os.path.dirname(target), "outdir")
                metadata = {"method": config["method"], "options": config["options"],
                            "input": path, "frame": index,
                            "unmix_version": config["unmix_version"]}
                written = layers.save(target, image=image if config["format"] == "ora" else None,
                                      names=names, metadata=metadata)
                outputs += written
                if config["video_out"]:
                    for k in range(layers.n_layers):
                        if k not in writers:
                            video = os.path.join(outdir, name, f"alpha-{k:02d}.mp4")
                            writers[k] = stack.enter_context(_alpha_video(video, _fps(path)))
                            videos.append(video)
                        writers[k](layers.alphas[:, :, k])
        outputs += videos
        record.update(status="done", fingerprint=fingerprint, frames=len(frames),
                      outputs=[os.path.relpath(p, outdir) for p in outputs],
                      method=config["method"], unmix_version=config["unmix_version"],
                      stability=_stability(changes_raw, changes_matched),
                      seconds=time.perf_counter() - start)
        _write_record(outdir, record)
        return record
    except Exception as exc:
        return {**record, "status": "failed", "error": f"{type(exc).__name__}: {exc}",
                "traceback": traceback.format_exc(limit=6), "seconds": time.perf_counter() - start}


def _fps(path):
    import imageio.v3 as iio

    return float(iio.immeta(path, plugin="FFMPEG").get("fps") or 25.0)


@contextlib.contextmanager
def _alpha_video(path, fps):
    """Yield ``append(alpha)``, which adds a frame to one layer's grey H.264 video at ``path``."""
    import imageio

    with atomic_output(path, "video_out") as temporary:
        # The ffmpeg writer streams frames to the ffmpeg binary of imageio-ffmpeg;
        # H.264's 4:2:0 needs even sides, so odd images get an edge pixel more.
        writer = imageio.get_writer(temporary, format="FFMPEG", mode="I", fps=fps,
                                    macro_block_size=2, quality=9)
        try:
            def append(alpha):
                data = np.rint(np.clip(alpha, 0.0, 1.0) * 255).astype(np.uint8)
                pad = ((0, data.shape[0] % 2), (0, data.shape[1] % 2))
                writer.append_data(np.pad(data, pad, mode="edge"))

            yield append
        finally:
            writer.close()


# -- temporal coherence ----------------------------------------------------------------------

def match_layers(reference, alphas):
    """The order of ``alphas``' layers that best matches ``reference``'s, by alpha overlap.

    The Hungarian assignment (:func:`scipy.optimize.linear_sum_assignment`)
    maximising the total soft intersection-over-union
    Σ_p min(a, b) / Σ_p max(a, b) of the paired layers (alphas clipped to
    [0, 1]).

    Parameters
    ----------
    reference : array_like, shape (H, W, K)
        The previous frame's layers.
    alphas : array_like, shape (H, W, K)
        This frame's layers.

    Returns
    -------
    order : ndarray of int, shape (K,)
        ``alphas[:, :, order]`` is layer k where ``reference`` has layer k.

    Examples
    --------
    The same two layers in the other order:

    >>> import numpy as np
    >>> from unmix.batching import match_layers
    >>> left = np.tile(np.linspace(1.0, 0.0, 8), (4, 1))
    >>> previous = np.dstack([left, 1.0 - left])
    >>> order = match_layers(previous, previous[:, :, ::-1])
    >>> order
    array([1, 0])
    >>> bool(np.array_equal(previous[:, :, ::-1][:, :, order], previous))
    True
    """
    from scipy.optimize import linear_sum_assignment

    a = np.clip(np.asarray(reference, dtype=np.float64), 0.0, 1.0)
    b = np.clip(np.asarray(alphas, dtype=np.float64), 0.0, 1.0)
    if a.ndim != 3 or a.shape != b.shape:
        raise ValueError(f"reference and alphas must have one shape (H, W, K), got {a.shape} "
                         f"and {b.shape}")
    a, b = a.reshape(-1, a.shape[2]), b.reshape(-1, b.shape[2])
    intersection = np.minimum(a[:, :, None], b[:, None, :]).sum(axis=0)
    union = np.maximum(a[:, :, None], b[:, None, :]).sum(axis=0)
    overlap = intersection / np.maximum(union, 1e-12)
    rows, columns = linear_sum_assignment(-overlap)
    return columns[np.argsort(rows)]


def temporal_change(previous, current):
    """Mean ``|α_t − α_{t−1}|`` of each layer between two frames: shape (K,).

    Examples
    --------
    >>> import numpy as np
    >>> from unmix.batching import temporal_change
    >>> before = np.dstack([np.full((2, 2), 0.5), np.full((2, 2), 0.5)])
    >>> after = np.dstack([np.full((2, 2), 0.75), np.full((2, 2), 0.25)])
    >>> temporal_change(before, after)
    array([0.25, 0.25])
    """
    previous, current = np.asarray(previous), np.asarray(current)
    return np.abs(current - previous).mean(axis=(0, 1))


def _stability(raw, matched):
    if not raw:
        return None
    raw, matched = np.array(raw), np.array(matched)
    return {"mean_change_unmatched": raw.mean(axis=0).tolist(),
            "mean_change_matched": matched.mean(axis=0).tolist(),
            "mean_unmatched": float(raw.mean()), "mean_matched": float(matched.mean())}


# -- the client ------------------------------------------------------------------------------

@dataclasses.dataclass
class BatchResult:
    """What a :func:`batch` run did.

    Attributes
    ----------
    outdir : str
    records : list of dict
        One per item (image or frame) and per video assembly, in input
        order: ``status`` (``"done"``, ``"skipped"``: complete from an earlier
        run, or ``"failed"`` with ``error``), ``input``, ``frame``, ``outputs``
        (relative to ``outdir``), ``seconds``; a video's assembly also has
        ``stability``, the mean ``|α_t − α_{t−1}|`` per layer with and without
        the layer matching.
    seconds : float
        Wall-clock time of the run.
    interrupted : bool
        Whether the run was stopped (Ctrl-C) before every item finished.
    backend : str
        ``"dask"`` (with the scheduler's address) or ``"in-process"``.

    Examples
    --------
    >>> import os, tempfile
    >>> import unmix
    >>> photos, out = tempfile.mkdtemp(), tempfile.mkdtemp()
    >>> for name in ("coffee", "astronaut"):
    ...     unmix.write_image(os.path.join(photos, f"{name}.png"),
    ...                       unmix.image.example_image(name, (24, 32)))
    >>> result = unmix.batch(photos, out, method="colors", workers=0)
    >>> result.backend, result.interrupted, len(result.records)
    ('in-process', False, 2)
    >>> sorted(result.records[0]["outputs"])[:2]
    ['astronaut/alpha-00.png', 'astronaut/alpha-01.png']
    """

    outdir: str
    records: list
    seconds: float
    interrupted: bool = False
    backend: str = "in-process"

    def _count(self, status):
        return sum(r["status"] == status for r in self.records)

    @property
    def done(self):
        return self._count("done")

    @property
    def skipped(self):
        return self._count("skipped")

    @property
    def failed(self):
        return self._count("failed")

    @property
    def ok(self):
        """True when every item is complete (done now or before) and the run was not stopped."""
        return not self.interrupted and self.failed == 0

    def summary(self):
        """Plain data for ``--json``: counts, time, failures, the videos' stability.

        Examples
        --------
        >>> import os, tempfile
        >>> import unmix
        >>> photos, out = tempfile.mkdtemp(), tempfile.mkdtemp()
        >>> for name in ("coffee", "astronaut"):
        ...     unmix.write_image(os.path.join(photos, f"{name}.png"),
        ...                       unmix.image.example_image(name, (24, 32)))
        >>> summary = unmix.batch(photos, out, method="colors", workers=0).summary()
        >>> summary["ok"], summary["done"], summary["failed"]
        (True, 2, 0)
        """
        return {"ok": self.ok, "outdir": self.outdir, "backend": self.backend,
                "done": self.done, "skipped": self.skipped, "failed": self.failed,
                "interrupted": self.interrupted, "seconds": round(self.seconds, 3),
                "failures": [{k: r.get(k) for k in ("input", "frame", "error")}
                             for r in self.records if r["status"] == "failed"],
                "videos": [{"input": r["input"], "frames": r.get("frames"),
                            "stability": r.get("stability")}
                           for r in self.records if r.get("video") and r["status"] != "failed"]}


def distributed_available():
    """Whether Dask's ``distributed`` (the ``distributed`` extra) can be imported."""
    try:
        import distributed  # noqa: F401
    except ImportError:
        return False
    return True


def batch(inputs, outdir, method="sss", *, options=None, format="png", trimaps=None,
          video_out=False, palette_frames=5, client=None, scheduler=None, workers=None,
          threads_per_worker=None, progress=False):
    """Decompose many images and videos, in parallel on Dask, resumably.

    Parameters
    ----------
    inputs : str, os.PathLike, or sequence of them
        Image and video files, folders (every image and video below them) and
        glob patterns (:func:`collect_inputs`).
    outdir : str or os.PathLike
        The output folder, created if needed. An image ``a/b.jpg`` of a
        folder input writes ``OUTDIR/a/b.<format>`` (a folder for ``"png"``);
        a video ``clip.mp4`` writes ``OUTDIR/clip/frame-00000.<format>`` …
    method : {"sss", "colors", "matte"}, optional
        :func:`~unmix.semantic_soft_segments`,
        :func:`~unmix.soft_color_segments` or
        :func:`~unmix.closed_form_matting` (with ``trimaps``).
    options : dict, optional
        The method's keyword arguments, plain data: ``sss``: ``n_segments``,
        ``mode``, ``features`` (None or ``"handcrafted"``), ``random_state``;
        ``colors``: ``n_layers``, ``palette``, ``method``; ``matte``: ``eps``,
        ``radius``.
    format : {"png", "ora", "tif", "npz"}, optional
        How each item's layers are written (:meth:`unmix.Layers.save`).
    trimaps : str or os.PathLike, optional
        For ``method="matte"``: the folder holding one trimap per image, of the
        image's output name (``a/b.png`` for ``a/b.jpg``).
    video_out : bool, optional
        Also write each video's layer alphas as grey videos,
        ``OUTDIR/clip/alpha-KK.mp4``.
    palette_frames : int, optional
        For ``method="colors"`` on a video: the colour models are estimated
        once, on this many frames spread over the clip (unless
        ``options["palette"]`` gives them), and kept for every frame.
    client : distributed.Client, optional
        Run on this Dask client's cluster.
    scheduler : str, optional
        Or connect to the scheduler at this address (``"tcp://host:8786"``).
    workers : int, optional
        Or start a ``LocalCluster`` of this many worker processes (the
        cores this process may use, by default); ``0`` runs every item in
        this process, one after another, which is also what happens without
        the ``distributed`` extra.
    threads_per_worker : int, optional
        Threads each item's solvers use (BLAS, Numba and unmix's own): 1 on
        Dask by default, since the workers already share the cores; every
        core this process may use when the items run in this process.
    progress : bool, optional
        Show a progress bar (items done, skipped, failed, rate, time left).

    Returns
    -------
    BatchResult
        ``result.ok`` tells whether everything succeeded; failures are also
        in ``OUTDIR/failures.jsonl``.

    Raises
    ------
    ValueError
        If an input or option is not as described (before any work starts).
    ImportError
        If ``scheduler``, ``client`` or ``workers > 0`` is given without the
        ``distributed`` extra.
    KeyboardInterrupt
        After Ctrl-C, once the pending items are cancelled, the records of the
        finished ones written and the cluster this call started is closed.

    Examples
    --------
    Two photographs, in this process; a second run finds them done:

    >>> import os, tempfile
    >>> import unmix
    >>> photos, out = tempfile.mkdtemp(), tempfile.mkdtemp()
    >>> for name in ("coffee", "astronaut"):
    ...     unmix.write_image(os.path.join(photos, f"{name}.png"),
    ...                       unmix.image.example_image(name, (24, 32)))
    >>> result = unmix.batch(photos, out, method="colors", workers=0)
    >>> [record["status"] for record in result.records]
    ['done', 'done']
    >>> sorted(os.listdir(os.path.join(out, "coffee")))[:3]     # Layers.save's folder
    ['alpha-00.png', 'alpha-01.png', 'layer-00.png']
    >>> [record["status"] for record in unmix.batch(photos, out, method="colors", workers=0).records]
    ['skipped', 'skipped']
    """
    start = time.perf_counter()
    config = _config(method, options, format, trimaps, video_out, palette_frames)
    if threads_per_worker is not None and (isinstance(threads_per_worker, bool)
                                           or not isinstance(threads_per_worker, int)
                                           or threads_per_worker < 1):
        raise ValueError(f"threads_per_worker must be a positive integer, "
                         f"got {threads_per_worker!r}")
    if workers is not None and (isinstance(workers, bool) or not isinstance(workers, int)
                                or workers < 0):
        raise ValueError(f"workers must be a non-negative integer, got {workers!r}")
    sources = collect_inputs(inputs)
    if config["method"] == "matte" and any(_is_video(p) for p, _ in sources):
        raise ValueError("method 'matte' needs a trimap per image and does not take videos")
    outdir = os.path.abspath(output_folder(outdir, "outdir"))
    output_folder(os.path.join(outdir, _MANIFEST), "outdir")
    _remove_partial_files(outdir)

    use_dask = client is not None or scheduler is not None or workers != 0
    if use_dask and not distributed_available():
        if client is not None or scheduler is not None or workers:
            raise ImportError("running on Dask needs the distributed extra: "
                              "pip install 'unmix[distributed]'")
        log.warning("running in this process, one item after another; "
                    "pip install 'unmix[distributed]' to run items in parallel")
        use_dask = False
    runner = _DaskRunner(client, scheduler, workers) if use_dask else _LocalRunner()
    if threads_per_worker is None:
        from ._threads import default_threads

        threads_per_worker = 1 if use_dask else default_threads()
    records, interrupted = [], False
    try:
        with runner:
            records = _drive(runner, sources, config, outdir, threads_per_worker, progress)
    except KeyboardInterrupt:
        interrupted = True
        records = runner.finished
        raise
    finally:
        result = BatchResult(outdir, records, time.perf_counter() - start, interrupted,
                             runner.backend)
        _write_summaries(outdir, result)
    return result


def _remove_partial_files(outdir):
    """Remove the temporary files of a run that was killed while writing."""
    for folder, _, files in os.walk(outdir):
        for file in files:
            if _PARTIAL.match(file):
                with contextlib.suppress(OSError):
                    os.remove(os.path.join(folder, file))


def _write_summaries(outdir, result):
    failures = [r for r in result.records if r["status"] == "failed"]
    with atomic_output(os.path.join(outdir, "failures.jsonl"), "outdir") as temporary, \
            open(temporary, "w") as f:
        f.writelines(json.dumps(record) + "\n" for record in failures)
    manifest = {"unmix_version": result.records[0].get("unmix_version") if result.records
                else None, "summary": result.summary(),
                "items": [r for r in result.records if r["status"] != "failed"]}
    with atomic_output(os.path.join(outdir, "manifest.json"), "outdir") as temporary, \
            open(temporary, "w") as f:
        json.dump(manifest, f, indent=1)


class _LocalRunner:
    """Runs the items in this process, one after another, in submission order."""

    backend = "in-process"

    def __init__(self):
        self.finished = []

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def submit(self, function, *args, **kwargs):
        return _Deferred(function, args, kwargs)

    def as_completed(self, futures):
        yield from futures


class _Deferred:
    """A call run when its result is first asked for (its arguments' first)."""

    def __init__(self, function, args=(), kwargs=None, value=None, done=False):
        self.function, self.args, self.kwargs = function, args, kwargs or {}
        self.value, self.done = value, done

    def result(self):
        if not self.done:
            args = [[x.result() if isinstance(x, _Deferred) else x for x in a]
                    if isinstance(a, list) else a.result() if isinstance(a, _Deferred) else a
                    for a in self.args]
            self.value, self.done = self.function(*args, **self.kwargs), True
        return self.value


class _DaskRunner:
    """Runs the items on a Dask cluster: the given one, or a LocalCluster it starts and closes."""

    def __init__(self, client, scheduler, workers):
        self.client, self.scheduler, self.workers = client, scheduler, workers
        self.finished, self._own, self.backend = [], [], "dask"

    def __enter__(self):
        from distributed import Client, LocalCluster

        if self.client is None and self.scheduler is not None:
            try:
                self.client = Client(self.scheduler, timeout="10s")
            except OSError as exc:
                raise ValueError(f"scheduler: cannot reach a Dask scheduler at "
                                 f"{self.scheduler!r}: {exc}") from exc
            self._own.append(self.client)
        elif self.client is None:
            from ._threads import default_threads

            n = self.workers or default_threads()
            cluster = LocalCluster(n_workers=n, threads_per_worker=1, processes=True,
                                   host="127.0.0.1", dashboard_address=None,
                                   silence_logs=logging.WARNING, env=_WORKER_ENV)
            self._own.append(cluster)
            self.client = Client(cluster)
            self._own.insert(0, self.client)
        self.backend = f"dask {self.client.scheduler.address}"
        return self

    def __exit__(self, *exc):
        for thing in self._own:
            with contextlib.suppress(Exception):
                thing.close()
        return False

    def submit(self, function, *args, **kwargs):
        # pure=False: an item reruns when asked, even with the same arguments.
        return self.client.submit(function, *args, pure=False, **kwargs)

    def as_completed(self, futures):
        from distributed import as_completed

        return as_completed(futures)

    def cancel(self, futures):
        self.client.cancel(futures)


#: One thread per worker for BLAS and OpenMP libraries, set before NumPy loads there.
_WORKER_ENV = {name: "1" for name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS",
                                      "MKL_NUM_THREADS", "NUMBA_NUM_THREADS")}


def _drive(runner, sources, config, outdir, threads, progress):
    """Submit every item, collect the records as they finish, with a progress bar."""
    from tqdm.auto import tqdm

    images = [(p, n) for p, n in sources if not _is_video(p)]
    videos = [(p, n) for p, n in sources if _is_video(p)]
    futures = []
    for path, name in images:
        future = runner.submit(_run_item, {"id": name, "path": path, "name": name}, config,
                               outdir, threads)
        futures.append(future)
    frame_counts = [runner.submit(count_frames, path) for path, _ in videos]
    for (path, name), counted in zip(videos, frame_counts):
        try:
            count = counted.result()
        except Exception as exc:
            record = {"id": f"{name}/video", "input": path, "video": True, "status": "failed",
                      "error": f"{type(exc).__name__}: {exc}"}
            futures.append(_Deferred(None, value=record, done=True))
            continue
        models = None
        if config["method"] == "colors":
            models = runner.submit(_video_models, path, config, threads)
        frames = [runner.submit(_run_item, {"id": f"{name}/frame-{i:05d}", "path": path,
                                            "name": name, "frame": i, "video": True},
                                config, outdir, threads, models)
                  for i in range(count)]
        futures += frames
        futures.append(runner.submit(_video_item, path, name, config, outdir, threads, frames))
    order = {id(future): index for index, future in enumerate(futures)}
    finished = runner.finished
    bar = tqdm(total=len(futures), unit="item", disable=not progress, smoothing=0.1)
    counts = {"done": 0, "skipped": 0, "failed": 0}
    try:
        for future in runner.as_completed(futures):
            try:
                record = future.result()
            except Exception as exc:  # e.g. the colour models of a video failed
                record = {"id": "?", "input": None, "status": "failed",
                          "error": f"{type(exc).__name__}: {exc}"}
            finished.append((order[id(future)], record))
            counts[record["status"]] += 1
            if record["status"] == "failed":
                log.warning("failed: %s%s: %s", record.get("input"),
                            "" if record.get("frame") is None else f" frame {record['frame']}",
                            record.get("error"))
            bar.update(1)
            bar.set_postfix(counts, refresh=False)
    except KeyboardInterrupt:
        if hasattr(runner, "cancel"):
            runner.cancel(futures)
        raise
    finally:
        bar.close()
        finished.sort(key=lambda pair: pair[0])
        finished[:] = [record for _, record in finished]
    return finished
