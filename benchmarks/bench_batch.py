"""Benchmark ``unmix batch``: throughput in this process and on Dask, and video stability.

- Throughput: the same folder of images (scikit-image photographs at 320×240,
  repeated with a one-pixel shift each so that every file differs) decomposed
  by :func:`unmix.batch` in this process (one item after another, every core)
  and on a warm ``LocalCluster`` of 1 and 2 workers (one thread each); images per
  second, the ratio to this process, the cluster's start-up time (not in the
  throughput: a running cluster serves many batches), and Dask's overhead per
  item (a batch of 40 images of 3×3 pixels, whose decomposition takes about a
  millisecond, on the warm cluster against in this process).
- Stability of video layers: mean |α_t − α_{t−1}| per layer over two short
  clips, one panning across a photograph, one compositing a moving soft disk
  (known alpha) over a background; semantic soft segmentation with and
  without the frame-to-frame layer matching, soft colour segmentation with
  colour models estimated once for the clip and per frame.

    python benchmarks/bench_batch.py                          # 100 images, 10-frame clips
    python benchmarks/bench_batch.py --images 24 --frames 8

Results are printed and appended to ``benchmarks/results/bench_batch.jsonl``.
"""

import argparse
import contextlib
import os
import shutil
import sys
import tempfile
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from common import append_results, print_table  # noqa: E402

from unmix.batching import batch, match_layers, temporal_change  # noqa: E402
from unmix.image import example_image, write_image  # noqa: E402

PHOTOS = ("coffee", "astronaut", "rocket", "immunohistochemistry")


def make_images(folder, count, shape):
    """``count`` distinct images of ``shape``: the photographs, each shifted by its index."""
    os.makedirs(folder, exist_ok=True)
    height, width = shape
    for i in range(count):
        photo = example_image(PHOTOS[i % len(PHOTOS)], (height + 8, width + 8))
        shift = (i // len(PHOTOS)) % 8
        write_image(os.path.join(folder, f"image-{i:03d}.png"),
                    photo[shift:shift + height, shift:shift + width])


def throughput(folder, outdir, method, options, client=None):
    """One batch run from scratch, on ``client`` or in this process; (images/s, s, result)."""
    shutil.rmtree(outdir, ignore_errors=True)
    start = time.perf_counter()
    result = batch(folder, outdir, method=method, options=options, format="npz",
                   client=client, workers=None if client else 0)
    seconds = time.perf_counter() - start
    if not result.ok:
        raise RuntimeError(f"the benchmark batch failed: {result.summary()['failures'][:2]}")
    return result.done / seconds, seconds, result


def panning_clip(frames, shape):
    height, width = shape
    photo = example_image("astronaut", (height + 2 * frames, width + 4 * frames))
    return [photo[t:t + height, 3 * t:3 * t + width] for t in range(frames)]


def moving_disk_clip(frames, shape):
    """A soft-edged disk of one photograph moving over another: (frames, true alphas)."""
    height, width = shape
    background = example_image("coffee", shape)
    foreground = example_image("rocket", shape)
    y, x = np.mgrid[:height, :width]
    clip, truths = [], []
    for t in range(frames):
        cx, cy = width * (0.3 + 0.4 * t / max(frames - 1, 1)), height * 0.5
        distance = np.hypot(x - cx, y - cy)
        alpha = np.clip((0.28 * height - distance) / 3.0 + 0.5, 0.0, 1.0)
        clip.append(alpha[..., None] * foreground + (1 - alpha[..., None]) * background)
        truths.append(alpha)
    return clip, truths


def stability(frames, method):
    """Mean |Δα| per frame pair, averaged over layers: with and without the stabilisation."""
    from unmix.color import ColorModels, estimate_color_models, soft_color_segments
    from unmix.spectral import semantic_soft_segments

    start = time.perf_counter()
    if method == "sss":
        raw = [semantic_soft_segments(f, mode="fast", n_segments=4).alphas for f in frames]
        matched = [raw[0]]
        for alphas in raw[1:]:
            matched.append(alphas[:, :, match_layers(matched[-1], alphas)])
        without, with_ = raw, matched
        labels = ("per frame", "matched")
    else:
        mosaic = np.concatenate(frames[::max(1, len(frames) // 5)], axis=0)
        models = estimate_color_models(mosaic, n_models=4)
        with_ = [soft_color_segments(f, models=ColorModels(models.means, models.covariances))
                 .alphas for f in frames]
        without = []
        for f in frames:
            try:
                without.append(soft_color_segments(f, n_layers=4).alphas)
            except ValueError:  # a frame whose own models cannot be estimated
                without.append(None)
        labels = ("models per frame", "models once")
    seconds = time.perf_counter() - start

    def change(stack):
        pairs = [(a, b) for a, b in zip(stack, stack[1:])
                 if a is not None and b is not None and a.shape == b.shape]
        changed_count = len(stack) - 1 - len(pairs)  # pairs whose layer count differs
        if not pairs:
            return None, changed_count
        return float(np.mean([temporal_change(a, b).mean() for a, b in pairs])), changed_count

    (before, count_before), (after, count_after) = change(without), change(with_)
    return {"without_label": labels[0], "with_label": labels[1], "change_without": before,
            "change_with": after, "count_changes_without": count_before,
            "count_changes_with": count_after, "seconds": seconds}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=int, default=100, help="images per run (100)")
    parser.add_argument("--size", type=int, nargs=2, default=(240, 320), metavar=("H", "W"))
    parser.add_argument("--method", choices=["colors", "sss"], default="colors",
                        help="the decomposition of the throughput runs (colors)")
    parser.add_argument("--frames", type=int, default=10, help="frames per clip (10)")
    parser.add_argument("--clip-size", type=int, nargs=2, default=(64, 64), metavar=("H", "W"))
    parser.add_argument("--skip-throughput", action="store_true")
    parser.add_argument("--skip-stability", action="store_true")
    args = parser.parse_args(argv)
    rows = []
    work = tempfile.mkdtemp(prefix="bench_batch-")
    try:
        if not args.skip_throughput:
            folder = os.path.join(work, "images")
            make_images(folder, args.images, tuple(args.size))
            options = {"n_layers": 4} if args.method == "colors" else {"mode": "fast"}
            # Warm the Numba cache in this process; workers load it from disk.
            batch(os.path.join(folder, "image-000.png"), os.path.join(work, "warm"),
                  method=args.method, options=options, format="npz", workers=0)
            tiny = os.path.join(work, "tiny")
            make_images(tiny, 40, (3, 3))
            tiny_options = {"palette": [[0, 0, 0], [1, 1, 1]]}
            base, tiny_base = None, None
            for label, workers in (("in-process", 0), ("dask, 1 worker", 1),
                                   ("dask, 2 workers", 2)):
                with contextlib.ExitStack() as stack:
                    client, startup = None, None
                    if workers:
                        from distributed import Client, LocalCluster

                        start = time.perf_counter()
                        cluster = stack.enter_context(LocalCluster(
                            n_workers=workers, threads_per_worker=1, host="127.0.0.1",
                            dashboard_address=None))
                        client = stack.enter_context(Client(cluster))
                        startup = time.perf_counter() - start
                        # Each worker imports unmix and loads the Numba cache once.
                        throughput(tiny, os.path.join(work, "tiny-out"), "colors",
                                   tiny_options, client)
                    rate, seconds, result = throughput(folder, os.path.join(work, "out"),
                                                       args.method, options, client)
                    _, tiny_seconds, _ = throughput(tiny, os.path.join(work, "tiny-out"),
                                                    "colors", tiny_options, client)
                item = np.median([r["seconds"] for r in result.records])
                base = rate if base is None else base
                tiny_base = tiny_seconds if tiny_base is None else tiny_base
                rows.append({"benchmark": "throughput", "run": label, "method": args.method,
                             "images": result.done, "size": f"{args.size[0]}×{args.size[1]}",
                             "seconds": seconds, "images_per_s": rate, "speedup": rate / base,
                             "item_median_s": item, "cluster_start_s": startup,
                             "overhead_per_item_ms": (tiny_seconds - tiny_base) / 40 * 1e3})
        if not args.skip_stability:
            shape = tuple(args.clip_size)
            clips = {"pan": panning_clip(args.frames, shape),
                     "moving disk": moving_disk_clip(args.frames, shape)[0]}
            truths = moving_disk_clip(args.frames, shape)[1]
            true_change = float(np.mean([np.abs(b - a).mean() for a, b in zip(truths,
                                                                            truths[1:])]))
            for name, frames in clips.items():
                for method in ("sss", "colors"):
                    rows.append({"benchmark": "stability", "clip": name, "method": method,
                                 "frames": args.frames, "size": f"{shape[0]}×{shape[1]}",
                                 "true_alpha_change": true_change if name == "moving disk"
                                 else None, **stability(frames, method)})
    finally:
        shutil.rmtree(work, ignore_errors=True)

    throughput_rows = [r for r in rows if r["benchmark"] == "throughput"]
    if throughput_rows:
        print_table(throughput_rows, [
            ("run", "run", None), ("method", "method", None), ("images", "images", None),
            ("size", "size", None), ("seconds", "s", "{:.1f}"),
            ("images_per_s", "images/s", "{:.2f}"), ("speedup", "× in-process", "{:.2f}"),
            ("item_median_s", "item s (median)", "{:.3f}"),
            ("cluster_start_s", "cluster start s", "{:.1f}"),
            ("overhead_per_item_ms", "overhead ms/item", "{:.1f}")])
        print()
    stability_rows = [r for r in rows if r["benchmark"] == "stability"]
    if stability_rows:
        print_table(stability_rows, [
            ("clip", "clip", None), ("method", "method", None), ("size", "size", None),
            ("without_label", "without", None), ("change_without", "mean |Δα|", "{:.4f}"),
            ("count_changes_without", "K changes", None),
            ("with_label", "with", None), ("change_with", "mean |Δα|", "{:.4f}"),
            ("true_alpha_change", "true |Δα|", "{:.4f}"), ("seconds", "s", "{:.1f}")])
    path = append_results("bench_batch", rows)
    print(f"\nappended {len(rows)} rows to {path}")


if __name__ == "__main__":
    main()
