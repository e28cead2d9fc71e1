"""Benchmark semantic soft segmentation end to end, stage by stage.

For each photograph, size and mode: the time of every stage and the peak
memory of the whole run (each run in a fresh process), the deviation of
``mode="fast"`` from ``mode="full"`` (mean and 99th percentile |Δα| after
matching layers) next to that of full mode run with another seed, and of
either mode with its eigensolver started elsewhere (the same eigenspace to
~1e-8), and at 320×240 the ratio of each stage to the released MATLAB code run
under GNU Octave on a 2-core machine (timings from the issue tracker: coffee at
240×320, 1,857 superpixels).

    python benchmarks/bench_sss.py                          # coffee, astronaut; 160, 320, 640
    python benchmarks/bench_sss.py --sizes 320 --modes full
    python benchmarks/bench_sss.py --devices cpu gpu --sizes 320 640 --reseed-sizes

With ``--devices gpu`` each run is ``semantic_soft_segments(..., device="gpu")``,
timed after one warm-up run of the same call on a 64×48 crop in the same process
(the CUDA context, cuDSS's loading and CuPy's kernel compilation happen once per
process; ``warmup_s`` reports them). Where a run exists on both devices, the GPU
row also carries each stage's CPU/GPU speed ratio from the same benchmark run.

Also reported: how spatially coherent the layers are with the default
handcrafted features versus the image colours as features (the share of each
layer's mass, α > 0.5, in its largest connected region), a proxy for
"segments follow objects, not colour blobs".

``--quality`` measures instead how well the soft segments select objects, a figure
that rounding cannot move: on the photographs of ``../shared/eval/alphamatting_dev``
(ground-truth mattes and trimaps; downscaled so that the long side is each of
``--quality-sizes``) the best union of layers against the ground truth
(``unmix.metrics.best_layer_union``, chosen by MSE over the image; SAD and MSE over
the image and in the trimap's unknown band), for each feature choice (``network``:
the default pretrained hypercolumns, ``handcrafted``, ``colour``: the image itself),
mode and seed, and the layer coherence there and on coffee and astronaut. It writes
``results/sss_features.png``: per photograph, the image and the segments of each
feature choice (in the order of ``--features``), full mode, seed 0.

    python benchmarks/bench_sss.py --quality --quality-sizes 320 640 --seeds 0 1 2
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from common import RESULTS as RESULTS_DIR  # noqa: E402
from common import append_results, machine, print_table  # noqa: E402

#: The released code under GNU Octave 7.3, 2-core x86, coffee 240×320 (seconds).
OCTAVE_240x320 = {
    "matting affinity": 16.0,
    "colour affinity": 45.7,
    "semantic affinity": 0.5,
    "eigenpairs": 26.6,
    "k-means": 5.1,
    "constrained sparsification": 289.0,
    "relaxed sparsification": 44.1,
}

RUN = """
import functools, json, resource, sys, time
import numpy as np
from unmix.image import example_image
from unmix.spectral import pipeline, semantic_soft_segments
name, height, width, mode, features, out, seed, eigen_start, device = sys.argv[1:10]
if int(eigen_start):
    # Start the eigensolver from another random block: the same eigenspace to ~1e-8.
    pipeline.smallest_eigenpairs = functools.partial(pipeline.smallest_eigenpairs,
                                                     random_state=int(eigen_start))
image = example_image(name, (int(height), int(width)))
features = image if features == "colour" else None
warmup = None
if device == "gpu":
    start = time.perf_counter()
    crop = image[:48, :64]
    semantic_soft_segments(crop, None if features is None else crop, mode=mode, device=device)
    warmup = time.perf_counter() - start
start = time.perf_counter()
layers = semantic_soft_segments(image, features, mode=mode, random_state=int(seed), device=device)
seconds = time.perf_counter() - start
np.save(out, layers.alphas)
alphas = layers.alphas
print(json.dumps({"seconds": seconds, "device": device, "warmup_s": warmup,
                  "stages": layers.intermediates["timings"],
                  "peak_gb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20,
                  "sum_to_one_error": float(np.abs(alphas.sum(axis=2) - 1).max()),
                  "alpha_min": float(alphas.min()), "alpha_max": float(alphas.max())}))
"""

QUALITY = """
import json, resource, sys, time
import numpy as np
from skimage.transform import resize
from unmix.image import as_float_image, example_image, read_image
from unmix.metrics import best_layer_union
from unmix.spectral import semantic_soft_segments
source, long_side, mode, features, seed, out = sys.argv[1:7]
truth_path, trimap_path = (sys.argv[7:9] + [None, None])[:2]
full = read_image(source) if source.endswith(".png") else example_image(source)
scale = int(long_side) / max(full.shape[:2])
shape = (max(int(round(full.shape[0] * scale)), 8), max(int(round(full.shape[1] * scale)), 8))
image = as_float_image(resize(full, shape, order=1, anti_aliasing=True))
given = {"network": None, "handcrafted": "handcrafted", "colour": image}[features]
start = time.perf_counter()
layers = semantic_soft_segments(image, given, mode=mode, random_state=int(seed))
seconds = time.perf_counter() - start
np.save(out, layers.alphas)
row = {"seconds": seconds, "shape": list(shape), "stages": layers.intermediates["timings"],
       "peak_gb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20}
if truth_path:
    truth = resize(read_image(truth_path)[..., 0], shape, order=1, anti_aliasing=True)
    # Nearest neighbour keeps the trimap's three values.
    trimap = resize(read_image(trimap_path)[..., 0], shape, order=0, anti_aliasing=False)
    trimap = np.round(trimap * 255).astype(np.uint8)
    best = best_layer_union(layers, truth, trimap, criterion="mse")
    row.update(subset=list(best.subset), sad=best.sad, mse=best.mse,
               sad_unknown=best.sad_unknown, mse_unknown=best.mse_unknown)
print(json.dumps(row))
"""

EVAL = os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir, os.pardir, "shared",
                    "eval", "alphamatting_dev")

GRAPH_STAGES = """
import json, sys, time
from unmix.image import example_image
from unmix.graph import color_affinity, matting_affinity, semantic_affinity, superpixels
image = example_image(sys.argv[1], (int(sys.argv[2]), int(sys.argv[3])))
matting_affinity(image[:32, :32])  # compile
sp = superpixels(image)
times = {}
for name, call in [("matting affinity", lambda: matting_affinity(image)),
                   ("semantic affinity", lambda: semantic_affinity(image, sp)),
                   ("colour affinity", lambda: color_affinity(image, sp))]:
    start = time.perf_counter(); call(); times[name] = time.perf_counter() - start
print(json.dumps(times))
"""


def run(code, *args, timeout):
    done = subprocess.run([sys.executable, "-c", code, *map(str, args)],
                          capture_output=True, text=True, timeout=timeout)
    if done.returncode != 0:
        raise RuntimeError(done.stderr.strip().splitlines()[-1])
    return json.loads(done.stdout.strip().splitlines()[-1])


def matched_deviation(a, b):
    """Mean and 99th-percentile |Δα| after the best one-to-one matching of layers."""
    from scipy.optimize import linear_sum_assignment

    K = a.shape[2]
    cost = np.array([[np.abs(a[..., i] - b[..., j]).mean() for j in range(K)] for i in range(K)])
    rows, cols = linear_sum_assignment(cost)
    difference = np.abs(a[..., rows] - b[..., cols])
    return float(difference.mean()), float(np.percentile(difference, 99))


def coherence(alphas):
    """Share of the layers' confident mass (α > 0.5) in each layer's largest connected region."""
    from scipy.ndimage import label

    inside, total = 0, 0
    for k in range(alphas.shape[2]):
        mask = alphas[..., k] > 0.5
        regions, count = label(mask)
        if count:
            inside += np.bincount(regions.ravel())[1:].max()
            total += mask.sum()
    return inside / max(total, 1)


def _photograph(paths):
    """The photograph of a ``--quality`` source: an evaluation file or a scikit-image name."""
    from unmix.image import example_image, read_image

    return read_image(paths[0]) if paths[0].endswith(".png") else example_image(paths[0])


def _figure(figure_rows, height=200):
    """One line of tiles per photograph, scaled to a common height and padded to one width."""
    from skimage.transform import resize

    lines = []
    for tiles in figure_rows:
        scaled = [resize(t, (height, int(round(t.shape[1] * height / t.shape[0]))), order=1)
                  for t in tiles]
        lines.append(np.concatenate([np.pad(t, ((4, 4), (4, 4), (0, 0)), constant_values=1.0)
                                     for t in scaled], axis=1))
    width = max(line.shape[1] for line in lines)
    return np.concatenate([np.pad(line, ((0, 0), (0, width - line.shape[1]), (0, 0)),
                                  constant_values=1.0) for line in lines], axis=0)


def quality(args):
    """The ``--quality`` protocol (module docstring); returns the rows to append."""
    from unmix.image import write_image
    from unmix.layers import Layers

    photos = sorted(f[:-4] for f in os.listdir(os.path.join(EVAL, "input")) if f.endswith(".png"))
    sources = [(name, [os.path.join(EVAL, d, f"{name}.png") for d in ("input", "gt", "trimap")])
               for name in photos] + [(name, [name]) for name in ("coffee", "astronaut")]
    rows, figure_rows = [], []
    with tempfile.TemporaryDirectory() as folder:
        for long_side in args.quality_sizes:
            for name, paths in sources:
                tiles = [_photograph(paths)]
                for features in args.features:
                    for mode in args.modes:
                        for seed in args.seeds:
                            run_name = f"{name}-{long_side}-{features}-{mode}-{seed}"
                            out = os.path.join(folder, f"{run_name}.npy")
                            print(f"  {run_name} ...", flush=True)
                            result = run(QUALITY, paths[0], long_side, mode, features, seed, out,
                                         *paths[1:], timeout=args.timeout)
                            alphas = np.load(out)
                            rows.append({"photo": name, "long_side": long_side,
                                         "features": features, "mode": mode, "seed": seed,
                                         "coherence": coherence(alphas), **result})
                            if mode == args.modes[0] and seed == args.seeds[0]:
                                tiles.append(Layers(alphas).visualize())
                if long_side == args.quality_sizes[0]:
                    figure_rows.append(tiles)
    os.makedirs(RESULTS_DIR, exist_ok=True)
    write_image(os.path.join(RESULTS_DIR, "sss_features.png"), _figure(figure_rows))

    # Per photograph, feature choice and mode: the mean over the seeds, and their spread.
    summary = []
    for long_side in args.quality_sizes:
        for name, _ in sources:
            for features in args.features:
                for mode in args.modes:
                    group = [r for r in rows if (r["photo"], r["long_side"], r["features"],
                                                 r["mode"]) == (name, long_side, features, mode)]
                    entry = {"photo": name, "long_side": long_side, "features": features,
                             "mode": mode, "seconds": float(np.mean([r["seconds"] for r in group])),
                             "coherence": float(np.mean([r["coherence"] for r in group]))}
                    for key in ("mse", "sad", "mse_unknown", "sad_unknown"):
                        values = [r[key] for r in group if r.get(key) is not None]
                        if values:
                            entry[key] = float(np.mean(values))
                            entry[f"{key}_spread"] = float(np.max(values) - np.min(values))
                    summary.append(entry)
    print(f"\nbest union of layers against the ground truth (chosen by MSE over the image); "
          f"mean over seeds {args.seeds} and their spread (max − min)")
    print_table(summary, [("photo", "photo", None), ("long_side", "long side", None),
                          ("features", "features", None), ("mode", "mode", None),
                          ("mse", "MSE", "{:.4f}"), ("mse_spread", "± seeds", "{:.4f}"),
                          ("sad", "SAD", "{:.2f}"), ("mse_unknown", "MSE band", "{:.4f}"),
                          ("sad_unknown", "SAD band", "{:.2f}"),
                          ("coherence", "coherence", "{:.3f}"), ("seconds", "s", "{:.1f}")])
    return [*({"benchmark": "sss_quality", **r} for r in rows),
            *({"benchmark": "sss_quality_summary", **r} for r in summary)]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", nargs="+", type=int, default=[160, 320, 640],
                        help="image widths; heights are 3/4 of them")
    parser.add_argument("--images", nargs="+", default=["coffee", "astronaut"])
    parser.add_argument("--modes", nargs="+", default=["full", "fast"], choices=["full", "fast"])
    parser.add_argument("--timeout", type=int, default=1800, help="seconds per run")
    parser.add_argument("--devices", nargs="+", default=["cpu"], choices=["cpu", "gpu"],
                        help="where to run (default cpu); the comparisons of fast and full "
                             "mode, reseeded runs, feature coherence and the released-code "
                             "ratios use the first device")
    parser.add_argument("--reseed-sizes", nargs="*", type=int, default=[160, 320],
                        help="widths at which full mode also runs with seed 1, and with the "
                             "eigensolver started from another random block, to measure how far "
                             "the method's own seed and rounding move the layers")
    parser.add_argument("--quality", action="store_true",
                        help="measure segment quality on the evaluation photographs instead")
    parser.add_argument("--quality-sizes", nargs="+", type=int, default=[320],
                        help="long sides of the photographs for --quality (default 320)")
    parser.add_argument("--features", nargs="+", default=["network", "handcrafted", "colour"],
                        choices=["network", "handcrafted", "colour"], help="for --quality")
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2], help="for --quality")
    args = parser.parse_args(argv)
    if args.quality:
        info = machine()
        print(f"machine: {info['cpu']}, {info['cores']} cores, {info['memory_gb']} GB")
        path = append_results("bench_sss", quality(args))
        print(f"\nappended to {path}")
        return

    info = machine()
    print(f"machine: {info['cpu']}, {info['cores']} cores, {info['memory_gb']} GB; gpu: {info['gpu']}")
    rows, deviation_rows, ratio_rows, feature_rows = [], [], [], []
    with tempfile.TemporaryDirectory() as folder:
        for name in args.images:
            for width in args.sizes:
                height = width * 3 // 4
                size = f"{width}x{height}"
                alphas = {}
                for mode in args.modes:
                    for device in args.devices:
                        out = os.path.join(folder, f"{name}-{size}-{mode}-{device}.npy")
                        print(f"  {name} {size} {mode} on {device} ...", flush=True)
                        result = run(RUN, name, height, width, mode, "default", out, 0, 0,
                                     device, timeout=args.timeout)
                        row = {"image": name, "size": size, "mode": mode, **result}
                        if device == args.devices[0]:
                            alphas[mode] = np.load(out)
                        else:
                            first = rows[-1]  # the same run on the first device
                            row["vs_first_device_mean_abs_delta"] = matched_deviation(
                                alphas[mode], np.load(out))[0]
                            row["stage_ratios"] = {
                                stage: first["stages"][stage] / seconds
                                for stage, seconds in row["stages"].items()
                                if stage in first["stages"] and seconds > 0}
                            row["total_ratio"] = first["seconds"] / row["seconds"]
                        rows.append(row)
                if {"full", "fast"} <= set(alphas):
                    mean, p99 = matched_deviation(alphas["full"], alphas["fast"])
                    row = {"image": name, "size": size, "mean_abs_delta": mean, "p99_abs_delta": p99}
                    if width in args.reseed_sizes:
                        # The method's own spread: full mode with another k-means seed, and
                        # either mode with the eigensolver started elsewhere (a rounding-level
                        # change).
                        for key, mode, seed, eigen_start in [
                                ("reseeded", "full", 1, 0), ("eigen_restarted", "full", 0, 1),
                                ("fast_eigen_restarted", "fast", 0, 1)]:
                            out = os.path.join(folder, f"{name}-{size}-{key}.npy")
                            run(RUN, name, height, width, mode, "default", out, seed, eigen_start,
                                args.devices[0], timeout=args.timeout)
                            row[f"{key}_mean_abs_delta"] = matched_deviation(alphas[mode],
                                                                             np.load(out))[0]
                    deviation_rows.append(row)
                if "full" in alphas and width == 320:
                    out = os.path.join(folder, f"{name}-colour.npy")
                    colour = run(RUN, name, height, width, "full", "colour", out, 0, 0,
                                 args.devices[0], timeout=args.timeout)
                    feature_rows.append({"image": name, "size": size,
                                         "coherence_default": coherence(alphas["full"]),
                                         "coherence_colour": coherence(np.load(out)),
                                         "seconds_colour": colour["seconds"]})
            if 320 in args.sizes and "full" in args.modes:
                graph = run(GRAPH_STAGES, name, 240, 320, timeout=args.timeout)
                full = next(r for r in rows if r["image"] == name and r["size"] == "320x240"
                            and r["mode"] == "full" and r["device"] == args.devices[0])
                measured = {**graph, **{k: v for k, v in full["stages"].items() if k in OCTAVE_240x320}}
                for stage, octave in OCTAVE_240x320.items():
                    ratio_rows.append({"image": name, "stage": stage, "unmix_s": measured[stage],
                                       "octave_s": octave, "speedup": octave / measured[stage]})

    stage_names = list(dict.fromkeys(s for r in rows for s in r["stages"]))
    print("\nsemantic_soft_segments: seconds per stage, total, peak memory of the process")
    print_table(
        [{**r, **{f"t:{s}": r["stages"].get(s) for s in stage_names}} for r in rows],
        [("image", "image", None), ("size", "size", None), ("mode", "mode", None),
         ("device", "device", None)]
        + [(f"t:{s}", s, "{:.2f}") for s in stage_names]
        + [("seconds", "total s", "{:.2f}"), ("warmup_s", "warm-up s", "{:.1f}"),
           ("peak_gb", "peak GB", "{:.2f}"), ("sum_to_one_error", "|Σα-1|", "{:.1e}")],
    )
    ratio_by_device = [r for r in rows if "stage_ratios" in r]
    if ratio_by_device:
        print(f"\nspeed ratio per stage, {args.devices[0]} time / {args.devices[1]} time "
              "(same benchmark run), and mean |Δα| between the devices (layers matched)")
        print_table(
            [{**r, **{f"r:{s}": r["stage_ratios"].get(s) for s in stage_names}}
             for r in ratio_by_device],
            [("image", "image", None), ("size", "size", None), ("mode", "mode", None)]
            + [(f"r:{s}", s, "{:.1f}x") for s in stage_names]
            + [("total_ratio", "total", "{:.1f}x"),
               ("vs_first_device_mean_abs_delta", "mean |Δα|", "{:.4f}")],
        )
    if deviation_rows:
        print("\nfast vs full (layers matched): |Δα|")
        print_table(deviation_rows, [("image", "image", None), ("size", "size", None),
                                     ("mean_abs_delta", "mean", "{:.4f}"),
                                     ("p99_abs_delta", "99th pct", "{:.3f}"),
                                     ("reseeded_mean_abs_delta", "full seed 0 vs 1: mean",
                                      "{:.4f}"),
                                     ("eigen_restarted_mean_abs_delta",
                                      "full, other eigensolver start: mean", "{:.4f}"),
                                     ("fast_eigen_restarted_mean_abs_delta",
                                      "fast, other eigensolver start: mean", "{:.4f}")])
    if ratio_rows:
        print("\nper stage at 320x240: unmix vs the released code under Octave (coffee, 2 cores)")
        print_table(ratio_rows, [("image", "image", None), ("stage", "stage", None),
                                 ("unmix_s", "unmix s", "{:.2f}"), ("octave_s", "Octave s", "{:.1f}"),
                                 ("speedup", "speed-up", "{:.1f}x")])
    if feature_rows:
        print("\nlayer coherence (share of α > 0.5 mass in each layer's largest region)")
        print_table(feature_rows, [("image", "image", None), ("size", "size", None),
                                   ("coherence_default", "default features", "{:.3f}"),
                                   ("coherence_colour", "colour features", "{:.3f}")])
    path = append_results("bench_sss", [
        *({"benchmark": "semantic_soft_segments", **r} for r in rows),
        *({"benchmark": "fast_vs_full", **r} for r in deviation_rows),
        *({"benchmark": "stage_vs_octave", **r} for r in ratio_rows),
        *({"benchmark": "feature_coherence", **r} for r in feature_rows),
    ])
    print(f"\nappended to {path}")


if __name__ == "__main__":
    main()
