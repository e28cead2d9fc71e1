"""Benchmark soft colour segmentation (Aksoy et al. 2017): time, memory, metrics.

For each size (megapixels): the whole ``method="fast"`` pipeline (time and
peak memory per stage, the blind metrics of spec ``color.md`` §8), and the
faithful ``method="mom"`` unmixing on a random sample of pixels with the
same colour models, which gives its seconds per megapixel and the §5.4
validation of the fast solver (energies, |Δα|, constraint violations).

    python benchmarks/bench_color.py                        # 0.25, 1 and 4 MP
    python benchmarks/bench_color.py --sizes 0.25 1 --mom-pixels 4000

Results are printed and appended to ``benchmarks/results/bench_color.jsonl``.
"""

import argparse
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from common import append_results, machine, print_table, timed  # noqa: E402

from unmix.color import soft_color_segments  # noqa: E402
from unmix.color.metrics import soft_color_metrics  # noqa: E402
from unmix.color.unmixing import sparse_color_unmixing  # noqa: E402
from unmix.image import example_image  # noqa: E402


def validate_fast(image, models, n_pixels, seed=0):
    """Spec §5.4 on a pixel sample: fast and mom from the same start, same models."""
    rng = np.random.default_rng(seed)
    pixels = image.reshape(-1, 3)[rng.choice(image.shape[0] * image.shape[1], n_pixels,
                                             replace=False)]
    start = time.perf_counter()
    fast_a, _, fast = sparse_color_unmixing(pixels, models, return_info=True)
    fast_s = time.perf_counter() - start
    start = time.perf_counter()
    mom_a, _, mom = sparse_color_unmixing(pixels, models, method="mom", return_info=True)
    mom_s = time.perf_counter() - start
    delta = np.abs(fast_a - mom_a).max(axis=1)
    return {
        "mom_pixels": n_pixels,
        "mom_unmixing_s_per_mp": mom_s / n_pixels * 1e6,
        "fast_unmixing_s_per_mp_sample": fast_s / n_pixels * 1e6,
        "fast_le_mom_fraction": float(np.mean(fast["energy"] <= mom["energy"] + 1e-6)),
        "energy_fast_mean": float(fast["energy"].mean()),
        "energy_mom_mean": float(mom["energy"].mean()),
        "dalpha_median": float(np.median(delta)),
        "dalpha_p99": float(np.percentile(delta, 99)),
        "fast_color_violation_max": float(fast["color_violation"].max()),
        "mom_color_violation_max": float(mom["color_violation"].max()),
        "mom_alpha_sum_error_max": float(np.abs(mom_a.sum(axis=1) - 1).max()),
    }


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", nargs="+", type=float, default=[0.25, 1.0, 4.0],
                        help="megapixels, 4:3 images (default 0.25 1 4)")
    parser.add_argument("--image", default="coffee", help="scikit-image photograph")
    parser.add_argument("--mom-pixels", type=int, default=2000,
                        help="pixels of the method-of-multipliers sample (default 2000)")
    args = parser.parse_args(argv)

    info = machine()
    print(f"machine: {info['cpu']}, {info['cores']} cores, {info['memory_gb']} GB; "
          f"load average {os.getloadavg()[0]:.1f}")
    soft_color_segments(example_image(args.image, (30, 40)))  # compile the kernels once
    rows = []
    for megapixels in args.sizes:
        width = int(round(np.sqrt(megapixels * 1e6 * 4 / 3)))
        height = width * 3 // 4
        image = example_image(args.image, (height, width))
        layers, seconds, memory = timed(soft_color_segments, image)
        row = {"image": args.image, "size": f"{width}x{height}", "pixels": height * width,
               "method": "fast", "seconds": seconds, "s_per_mp": seconds / (height * width) * 1e6,
               "peak_gb": memory.delta_gb, "load": os.getloadavg()[0],
               **{f"{name}_s": t for name, t in layers.intermediates["timings"].items()},
               **soft_color_metrics(image, layers),
               **validate_fast(image, layers.intermediates["models"], args.mom_pixels)}
        rows.append(row)
        print(f"  {row['size']}: {seconds:.1f} s", flush=True)
    print_table(rows, [("size", "size", None), ("n_layers", "K", None),
                       ("seconds", "fast s", "{:.2f}"), ("s_per_mp", "fast s/MP", "{:.2f}"),
                       ("peak_gb", "peak GB", "{:.2f}"), ("mom_unmixing_s_per_mp", "mom s/MP", "{:.0f}"),
                       ("recon_mse", "recon MSE", "{:.1e}"), ("sparsity", "sparsity", "{:.3f}"),
                       ("color_variance", "colour var", "{:.4f}"),
                       ("fast_le_mom_fraction", "E_fast<=E_mom", "{:.3f}"),
                       ("dalpha_median", "|da| med", "{:.1e}"), ("dalpha_p99", "|da| p99", "{:.2f}"),
                       ("load", "load", "{:.1f}")])
    print("results appended to", append_results("bench_color", rows))


if __name__ == "__main__":
    main()
