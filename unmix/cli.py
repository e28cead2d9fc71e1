"""The ``unmix`` command line.

- ``unmix sss``: semantic soft segmentation of an image, written as one alpha
  matte per segment and a picture of the segments.
- ``unmix eigenvectors``: the graph of semantic soft segmentation and a
  picture of its smallest eigenvectors (the building blocks of the soft
  segments, paper Fig. 3).
- ``unmix matte``: closed-form matting of an image with a trimap, written as
  an alpha PNG, and optionally the foreground as an RGBA cut-out.
- ``unmix colors``: soft colour segmentation of an image, written as RGBA
  layers (alpha-add, and a normal-blend stack for layer-based editors).
"""

import argparse
import logging
import os
import sys
import time

import numpy as np

from .exceptions import UnmixError

log = logging.getLogger("unmix")

#: Exit statuses: 2 for a usage error (a bad option or input value), as argparse
#: exits for a malformed command line; 1 for a failure while running.
EXIT_USAGE, EXIT_FAILURE, EXIT_INTERRUPTED = 2, 1, 130


def _add_input_arguments(parser):
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("image", nargs="?", help="input image file")
    source.add_argument(
        "--example",
        metavar="NAME",
        help="use a photograph bundled with scikit-image instead of a file "
        "(astronaut, chelsea, coffee, rocket, immunohistochemistry)",
    )
    parser.add_argument(
        "--size",
        nargs=2,
        type=int,
        metavar=("H", "W"),
        help="resize the image to H×W first (anti-aliased)",
    )
    parser.add_argument("-o", "--output", required=True, metavar="OUTDIR", help="output folder")


def _output_folder(args):
    """Create (or check) the output folder before any work is done."""
    from ._files import output_folder

    return output_folder(args.output, "--output")


def _load_features(path):
    """A ``--features`` file: a NumPy ``.npy`` array (pickled objects are refused)."""
    from ._files import input_file

    path = input_file(path, "--features")
    try:
        return np.load(path, allow_pickle=False)
    except (ValueError, OSError, EOFError) as exc:
        raise ValueError(f"--features: {path!r} is not a NumPy .npy array file (pickled objects "
                         f"are refused; save features with numpy.save): {exc}") from None


def _save_npz(path, **arrays):
    """``numpy.savez_compressed`` to ``path``, written whole or not at all."""
    from ._files import atomic_output

    with atomic_output(path, "--output") as temporary:
        np.savez_compressed(temporary, **arrays)


def _load_input(args):
    from ._memory import check_memory
    from .image import example_image, read_image, resize_image

    if args.size is not None:
        # The resized image and the resampler's temporaries, before they are allocated.
        height, width = args.size
        check_memory(72.0 * height * width, f"an image of {height}×{width}",
                     "ask for a smaller --size")
    if args.example is not None:
        return example_image(args.example, args.size)
    image = read_image(args.image)
    return image if args.size is None else resize_image(image, args.size)


def _eigenvector_mosaic(eigvecs, shape, columns=4):
    """Tile eigenvectors as grey images, each stretched to [0, 1] by its percentiles."""
    height, width = shape
    count = eigvecs.shape[1]
    rows = -(-count // columns)
    gap = 4
    mosaic = np.ones((rows * (height + gap) - gap, columns * (width + gap) - gap))
    for i in range(count):
        v = eigvecs[:, i].reshape(shape)
        # Percentiles, not the extremes: a few outlying pixels would grey out the rest.
        low, high = np.percentile(v, [0.5, 99.5])
        tile = np.clip((v - low) / (high - low), 0, 1) if high > low else np.full(shape, 0.5)
        r, c = divmod(i, columns)
        mosaic[r * (height + gap):r * (height + gap) + height,
               c * (width + gap):c * (width + gap) + width] = tile
    return mosaic


def _run_eigenvectors(args):
    from skimage.segmentation import mark_boundaries

    from .graph import sss_laplacian, superpixels
    from .image import write_image
    from .spectral import smallest_eigenpairs

    _output_folder(args)
    image = _load_input(args)
    if args.features is not None:
        features = _load_features(args.features)
    else:
        # Until a semantic feature extractor is chosen, colour serves as the
        # feature: the semantic affinity then groups similar-coloured neighbours.
        features = image
    height, width = image.shape[:2]
    log.info("image %d×%d (%d pixels)", height, width, height * width)

    start = time.perf_counter()
    sp = superpixels(image)
    L = sss_laplacian(image, features, sp)
    log.info("Laplacian: %d non-zeros, %d superpixels, %.1f s",
             L.nnz, sp.n_segments, time.perf_counter() - start)

    start = time.perf_counter()
    eigvals, eigvecs, residuals = smallest_eigenpairs(L, k=args.k, shape=(height, width),
                                                      return_residuals=True)
    log.info("%d eigenpairs in %.1f s, eigenvalues [%.3g, %.3g], max residual %.2g",
             args.k, time.perf_counter() - start, eigvals[0], eigvals[-1], residuals.max())

    write_image(os.path.join(args.output, "image.png"), image)
    write_image(os.path.join(args.output, "superpixels.png"),
                mark_boundaries(image, sp.labels))
    shown = min(args.show, args.k)
    write_image(os.path.join(args.output, "eigenvectors.png"),
                _eigenvector_mosaic(eigvecs[:, :shown], (height, width)))
    _save_npz(os.path.join(args.output, "eigenpairs.npz"), eigvals=eigvals,
              eigvecs=eigvecs.astype(np.float32), labels=sp.labels)
    print(f"wrote image.png, superpixels.png, eigenvectors.png ({shown} smallest) "
          f"and eigenpairs.npz to {args.output}")


def _run_sss(args):
    from .spectral import semantic_soft_segments

    _output_folder(args)
    image = _load_input(args)
    features = args.features
    if features not in (None, "handcrafted"):
        features = _load_features(features)
    layers = semantic_soft_segments(image, features, n_segments=args.segments,
                                    random_state=args.seed, mode=args.mode, progress=True,
                                    device=args.device)
    paths = layers.save(args.output)
    timings = ", ".join(f"{name} {seconds:.1f} s"
                        for name, seconds in layers.intermediates["timings"].items())
    print(f"{layers.n_layers} soft segments of {layers.shape[0]}×{layers.shape[1]} in "
          f"{sum(layers.intermediates['timings'].values()):.1f} s ({timings})")
    print(f"wrote {len(paths) - 1} alpha mattes and segments.png to {args.output}")


def _run_matte(args):
    from .image import output_image_path, read_image, write_image
    from .matting import closed_form_matting, estimate_foreground

    # Both outputs are checked before the work: a bad path fails in a millisecond.
    output_image_path(args.output, 1, args.bit_depth, "--output")
    if args.foreground is not None:
        output_image_path(args.foreground, 4, 8, "--foreground")
    image = read_image(args.image)
    # The trimap file's first channel; 8- and 16-bit files are scaled to [0, 1].
    trimap = read_image(args.trimap)[:, :, 0]
    start = time.perf_counter()
    alpha, info = closed_form_matting(image, trimap, eps=args.eps, radius=args.radius,
                                      return_info=True)
    seconds = time.perf_counter() - start
    write_image(args.output, alpha, bit_depth=args.bit_depth)
    written = [args.output]
    if args.foreground is not None:
        foreground = estimate_foreground(image, alpha)
        write_image(args.foreground, np.dstack([foreground, alpha]))
        written.append(args.foreground)
    print(f"alpha of {alpha.shape[0]}×{alpha.shape[1]} ({info.n_unknown} unknown pixels) "
          f"in {seconds:.2f} s, relative residual {info.residual:.1e}")
    print(f"wrote {' and '.join(written)}")


def _parse_palette(text):
    """``"r,g,b;r,g,b;..."`` (0…255 integers or 0…1 floats) as a (K, 3) array in [0, 1]."""
    try:
        rows = [[float(v) for v in colour.split(",")] for colour in text.split(";") if colour.strip()]
        palette = np.array(rows, dtype=np.float64)
    except ValueError:
        raise ValueError(f'--palette must be "r,g,b;r,g,b;...", got {text!r}') from None
    if palette.ndim != 2 or palette.shape[1] != 3:
        raise ValueError(f'--palette must be "r,g,b;r,g,b;..." with three values per colour, '
                         f"got {text!r}")
    if not (np.isfinite(palette).all() and palette.min() >= 0 and palette.max() <= 255):
        raise ValueError(f"--palette values must lie in 0…255 (or 0…1), got {text!r}")
    # Any value above 1 means the 0…255 scale, the one a user types.
    return palette / 255.0 if palette.max() > 1 else palette


def _run_colors(args):
    from .color import soft_color_segments
    from .metrics import soft_color_metrics

    palette = None if args.palette is None else _parse_palette(args.palette)
    _output_folder(args)
    image = _load_input(args)
    layers = soft_color_segments(image, n_layers=args.layers, palette=palette, method=args.method,
                                 progress=True)
    paths = layers.save(args.output)
    models = layers.intermediates["models"]
    _save_npz(os.path.join(args.output, "models.npz"), means=models.means,
              covariances=models.covariances)
    timings = layers.intermediates["timings"]
    metrics = soft_color_metrics(image, layers)
    print(f"{layers.n_layers} colour layers of {layers.shape[0]}×{layers.shape[1]} in "
          f"{sum(timings.values()):.1f} s ("
          + ", ".join(f"{name} {seconds:.1f} s" for name, seconds in timings.items()) + ")")
    print(f"reconstruction MSE {metrics['recon_mse']:.2e}, sparsity {metrics['sparsity']:.3f}, "
          f"colour variance {metrics['color_variance']:.4f}")
    print(f"wrote {len(paths)} PNGs (alpha-KK: mattes; layer-KK: RGBA, alpha-add; overlay-KK: "
          f"normal-blend stack, 00 at the bottom) and models.npz to {args.output}")


#: ``unmix batch`` options of one method each: (flag, destination, keyword of ``options``).
_BATCH_METHOD_OPTIONS = {
    "sss": [("--segments", "segments", "n_segments"), ("--mode", "mode", "mode"),
            ("--seed", "seed", "random_state"), ("--features", "features", "features")],
    "colors": [("--layers", "layers", "n_layers"), ("--palette", "palette", "palette"),
               ("--unmixing", "unmixing", "method")],
    "matte": [("--eps", "eps", "eps"), ("--radius", "radius", "radius")],
}


def _batch_options(args):
    """The ``options`` of :func:`unmix.batch` from the method's flags; others are errors."""
    options = {}
    for method, flags in _BATCH_METHOD_OPTIONS.items():
        for flag, dest, keyword in flags:
            value = getattr(args, dest)
            if value is None:
                continue
            if method != args.method:
                raise ValueError(f"{flag} is an option of --method {method}, got --method "
                                 f"{args.method}")
            if keyword == "palette":
                value = _parse_palette(value).tolist()
            options[keyword] = value
    if args.method == "colors" and "n_layers" in options and "palette" in options:
        raise ValueError("give at most one of --layers and --palette")
    if args.trimaps is not None and args.method != "matte":
        raise ValueError(f"--trimaps is an option of --method matte, got --method {args.method}")
    return options


def _run_batch(args):
    """``unmix batch``: returns 0 when every item is complete, 1 when some failed."""
    import json

    from .batching import batch, distributed_available

    options = _batch_options(args)
    workers = args.workers
    if args.scheduler is None and workers != 0 and not distributed_available():
        if workers:
            raise ValueError("--workers needs Dask: pip install 'unmix[distributed]'")
        if not args.quiet:
            print("unmix: note: Dask is not installed, so the items run in this process one "
                  "after another; pip install 'unmix[distributed]' to run them in parallel",
                  file=sys.stderr)
        workers = 0
    if args.quiet:
        logging.getLogger("unmix").setLevel(logging.ERROR)
    if not args.verbose:
        # Dask logs each worker's start and stop; the progress bar says enough.
        logging.getLogger("distributed").setLevel(logging.ERROR)
    result = batch(args.inputs, args.output, method=args.method, options=options,
                   format=args.format, trimaps=args.trimaps, video_out=args.video_out,
                   palette_frames=args.palette_frames, scheduler=args.scheduler,
                   workers=workers, threads_per_worker=args.threads_per_worker,
                   progress=not (args.quiet or args.json))
    if args.json:
        print(json.dumps(result.summary(), indent=1))
    elif not args.quiet:
        print(f"{result.done} done, {result.skipped} complete before, {result.failed} failed "
              f"in {result.seconds:.1f} s ({result.backend}); outputs in {result.outdir}")
        if result.failed:
            print(f"failures and their errors: {os.path.join(result.outdir, 'failures.jsonl')}")
    return 0 if result.ok else 1


def _add_batch_parser(commands):
    from .batching import FORMATS, METHODS

    run = commands.add_parser(
        "batch",
        help="many images and videos, in parallel on Dask, resumable",
        description="Decompose every image and video among INPUTS (files, folders, glob "
        "patterns) and write each one's layers under OUTDIR. Runs on a local Dask cluster "
        "(pip install 'unmix[distributed]'), or on a running one (--scheduler), else in this "
        "process. A rerun skips the items that are complete (OUTDIR/.manifest); failed items "
        "are listed with their errors in OUTDIR/failures.jsonl. Exit status: 0 when every item "
        "is complete, 1 when some failed, 130 when interrupted.",
    )
    run.add_argument("inputs", nargs="+", metavar="INPUTS",
                     help="image or video files, folders, or glob patterns (quoted)")
    run.add_argument("-o", "--output", required=True, metavar="OUTDIR", help="output folder")
    run.add_argument("--method", choices=METHODS, required=True,
                     help="sss: semantic soft segmentation; colors: soft colour segmentation; "
                     "matte: closed-form matting with --trimaps")
    run.add_argument("--format", choices=FORMATS, default="png",
                     help="png: a folder of PNGs per item (default); ora: OpenRaster for GIMP "
                     "and Krita; tif: 16-bit pages; npz: lossless, for unmix.Layers.load")
    where = run.add_mutually_exclusive_group()
    where.add_argument("--workers", type=int, metavar="N",
                       help="worker processes of the local Dask cluster (default: one per "
                       "core); 0 runs the items in this process")
    where.add_argument("--scheduler", metavar="tcp://HOST:PORT",
                       help="run on the Dask cluster of this scheduler instead")
    run.add_argument("--threads-per-worker", type=int, metavar="T",
                     help="threads of each item's solvers (default: 1 on Dask, every core in "
                     "this process)")
    sss = run.add_argument_group("--method sss")
    sss.add_argument("--segments", type=int, help="number of soft segments (default 5)")
    sss.add_argument("--mode", choices=["full", "fast"], help="full (default) or fast")
    sss.add_argument("--seed", type=int, help="seed of the k-means steps (default 0)")
    sss.add_argument("--features", choices=["handcrafted"],
                     help="handcrafted region features instead of the network's")
    colors = run.add_argument_group("--method colors")
    colors.add_argument("--layers", type=int, metavar="K", help="number of layers")
    colors.add_argument("--palette", metavar='"r,g,b;..."',
                        help="one mean colour per layer, 0-255 or 0-1; kept for every frame")
    colors.add_argument("--unmixing", choices=["fast", "mom"],
                        help="fast (default) or the paper's method of multipliers")
    colors.add_argument("--palette-frames", type=int, default=5, metavar="N",
                        help="for videos: estimate the colour models once, on N frames spread "
                        "over the clip (default 5)")
    matte = run.add_argument_group("--method matte")
    matte.add_argument("--trimaps", metavar="DIR",
                       help="folder of trimaps named as the images (a/b.png for a/b.jpg)")
    matte.add_argument("--eps", type=float, help="regulariser ε (default 1e-7)")
    matte.add_argument("--radius", type=int, help="window radius (default 1)")
    run.add_argument("--video-out", action="store_true",
                     help="also write each video's layer alphas as grey videos "
                     "(OUTDIR/CLIP/alpha-KK.mp4)")
    out = run.add_mutually_exclusive_group()
    out.add_argument("--quiet", action="store_true", help="print nothing but errors")
    out.add_argument("--json", action="store_true",
                     help="print a machine-readable summary (JSON) instead of the progress bar")
    run.set_defaults(run=_run_batch)


def build_parser():
    parser = argparse.ArgumentParser(
        prog="unmix", description="Decompose images into soft layers."
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log each stage")
    parser.add_argument("--debug", action="store_true",
                        help="on an error, show the Python traceback as well as the message")
    commands = parser.add_subparsers(dest="command", required=True)

    eig = commands.add_parser(
        "eigenvectors",
        help="graph of semantic soft segmentation and its smallest eigenvectors",
        description="Build the semantic soft segmentation Laplacian of an image and "
        "write its smallest eigenvectors as pictures.",
    )
    _add_input_arguments(eig)
    eig.add_argument("--features", metavar="F.npy",
                     help="per-pixel features (H, W, 3) in [0, 1]; default: the image colours")
    eig.add_argument("--k", type=int, default=100, help="number of eigenpairs (default 100)")
    eig.add_argument("--show", type=int, default=16,
                     help="how many eigenvectors the picture shows (default 16)")
    eig.set_defaults(run=_run_eigenvectors)

    sss = commands.add_parser(
        "sss",
        help="semantic soft segmentation (Aksoy et al. 2018)",
        description="Decompose an image into soft segments that follow objects; writes one "
        "16-bit alpha PNG per segment and segments.png (each segment a solid colour).",
    )
    _add_input_arguments(sss)
    sss.add_argument("--features", metavar="F.npy",
                     help="per-pixel features: (H, W, 3) in [0, 1], or a raw (H, W, D) "
                     "embedding, or the word 'handcrafted' for the handcrafted region "
                     "features; default: a pretrained network's hypercolumns")
    sss.add_argument("--segments", type=int, default=5, help="number of soft segments (default 5)")
    sss.add_argument("--mode", choices=["full", "fast"], default="full",
                     help="full: every stage at full resolution (default); fast: every stage "
                     "at about 10,000 pixels, then a few relaxed steps at full resolution")
    sss.add_argument("--seed", type=int, default=0, help="seed of the k-means steps (default 0)")
    sss.add_argument("--device", choices=["cpu", "gpu"], default="cpu",
                     help="run the eigenpairs and both sparsifications on the CPU (default) or "
                          "on a CUDA GPU (needs the gpu extra)")
    sss.set_defaults(run=_run_sss)

    matte = commands.add_parser(
        "matte",
        help="closed-form matting with a trimap (Levin et al. 2008)",
        description="Estimate the alpha matte of an image from a trimap (black: background, "
        "white: foreground, grey: unknown, e.g. 128) by closed-form matting; write it as a "
        "grey PNG, and optionally the foreground colours as an RGBA cut-out.",
    )
    matte.add_argument("image", help="input image file")
    matte.add_argument("trimap", help="trimap file, same size as the image")
    matte.add_argument("-o", "--output", required=True, metavar="ALPHA.png",
                       help="output alpha matte")
    matte.add_argument("--foreground", metavar="FG.png",
                       help="also write the estimated foreground colours with the matte as "
                       "opacity (RGBA PNG)")
    matte.add_argument("--eps", type=float, default=1e-7,
                       help="regulariser ε of the matting Laplacian (default 1e-7)")
    matte.add_argument("--radius", type=int, default=1,
                       help="window radius r, windows (2r+1)² (default 1)")
    matte.add_argument("--bit-depth", type=int, choices=[8, 16], default=8,
                       help="bits of the alpha PNG (default 8)")
    matte.set_defaults(run=_run_matte)

    colors = commands.add_parser(
        "colors",
        help="soft colour segmentation (Aksoy et al. 2017)",
        description="Decompose an image into layers of homogeneous colour that add up to it; "
        "writes each layer's matte (alpha-KK.png), each layer as an RGBA PNG (layer-KK.png, "
        "alpha-add), the same layers as a normal-blend stack for Photoshop or GIMP "
        "(overlay-KK.png, 00 at the bottom) and the colour models (models.npz).",
    )
    _add_input_arguments(colors)
    count = colors.add_mutually_exclusive_group()
    count.add_argument("--layers", type=int, metavar="K",
                       help="number of layers (default: the paper's automatic estimation)")
    count.add_argument("--palette", metavar='"r,g,b;..."',
                       help='one mean colour per layer, e.g. "230,40,40;20,20,20;250,250,245": '
                       "values on the 0-255 scale, or all of them in 0-1 (0-1 floats, as FSCS "
                       "takes them); a value above 1 means the 0-255 scale")
    colors.add_argument("--method", choices=["fast", "mom"], default="fast",
                        help="fast: reduced solver with closed-form colours (default); mom: the "
                        "paper's method of multipliers (milliseconds per pixel)")
    colors.set_defaults(run=_run_colors)
    _add_batch_parser(commands)
    return parser


def main(argv=None):
    """Run the command line; returns the exit status (0 on success).

    An error prints one line, ``unmix: error: ...``, and no traceback (unless
    ``--debug``): status 2 for a bad option or input value (as argparse's own
    usage errors), 1 for a failure while running (files that cannot be read
    or written, not enough memory, no GPU, anything unexpected), 130 when
    interrupted (Ctrl-C).
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(format="%(asctime)s %(name)s: %(message)s",
                        level=logging.INFO if args.verbose else logging.WARNING)
    try:
        status = args.run(args)
    except KeyboardInterrupt:
        print("unmix: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except Exception as exc:  # noqa: BLE001 - every error becomes one line and a status
        if args.debug:
            import traceback

            traceback.print_exc()
        message = " ".join(_describe(exc).split())  # one line, whatever the message
        print(f"unmix: error: {message}", file=sys.stderr)
        return _exit_status(exc)
    return 0 if status is None else status


def _exit_status(exc):
    """2 for a bad value given by the user, 1 for a failure while running."""
    if isinstance(exc, UnmixError):  # files, memory, GPU: unmix's runtime failures
        return EXIT_FAILURE
    return EXIT_USAGE if isinstance(exc, (ValueError, TypeError)) else EXIT_FAILURE


def _describe(exc):
    """The message of ``exc``; unexpected errors also say their type and how to see more."""
    if isinstance(exc, (UnmixError, ValueError, TypeError)):
        return str(exc)
    return (f"{type(exc).__name__}: {exc} (this is unexpected: run again with --debug for the "
            "traceback, and please report it)")


if __name__ == "__main__":
    sys.exit(main())
