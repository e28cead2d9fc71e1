"""Benchmark closed-form matting and foreground estimation: unmix against pymatting.

Inputs are synthetic composites with a known soft alpha: a foreground
photograph (scikit-image's *astronaut*) over a background photograph
(*coffee*) through a blob-shaped matte whose edge softness varies from sharp
to a wide fuzzy fringe; the trimap is ``trimap_from_alpha(alpha, band)``
with a band proportional to the width (10 px at 640×480), which leaves about
10 % of the pixels unknown.

Per size: ``unmix.closed_form_matting`` and ``pymatting.estimate_alpha_cf``
run alternately in the same process (``--repeat`` times each, best time
kept) after a warm-up of both JIT compilers; peak memory is the resident-set
growth during the calls. Reported: times and their ratio, the largest
|α_unmix − α_pymatting|, SAD/MSE/Gradient/Connectivity of each against the
ground truth (DIM conventions, ``unmix.metrics``), the largest difference
to pymatting rerun with CG tolerance 1e-10 (its default 1e-7 leaves errors
above 1e-4 at 1280×960), pymatting's incomplete
Cholesky breakdowns (its "PERFORMANCE WARNING" prints), and the load average.
Foreground estimation (``unmix.matting.estimate_foreground`` against
``pymatting.estimate_foreground_ml``) is timed the same way.

    python benchmarks/bench_matting.py                    # 640×480 and 1280×960
    python benchmarks/bench_matting.py --sizes 640 1280 2048 --repeat 3
    python benchmarks/bench_matting.py --gpu              # also closed_form_matting(device="gpu")

With ``--gpu``, ``closed_form_matting(..., device="gpu")`` runs in the same
alternation (after its own warm-up: CUDA context, cuDSS, CuPy kernels), with its
time, its ratio to the CPU run and its largest difference to the CPU matte.

Results are printed and appended to ``benchmarks/results/bench_matting.jsonl``.
"""

import argparse
import contextlib
import io
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from common import append_results, machine, print_table, timed  # noqa: E402

from unmix.image import example_image  # noqa: E402
from unmix.matting import closed_form_matting, estimate_foreground, trimap_from_alpha  # noqa: E402
from unmix.metrics import matting_errors  # noqa: E402


def synthetic_composite(shape, foreground="astronaut", background="coffee", seed=0):
    """A composite I = αF + (1 − α)B of two photographs through a known soft α.

    α is 1 inside a wobbly blob and falls to 0 across its boundary over a
    width that varies along it from 1 to about 4 % of the image width.
    """
    height, width = shape
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:height, :width]
    theta = np.arctan2(yy - height / 2, xx - width / 2)
    radius = np.hypot((yy - height / 2) / height, (xx - width / 2) / width)
    wobble = sum(rng.normal(scale=0.02) * np.cos(k * theta + rng.uniform(0, 2 * np.pi))
                 for k in range(2, 7))
    softness = (0.5 + 0.5 * np.sin(3 * theta)) * 0.04 * width + 1.0  # edge width, pixels
    alpha = np.clip((0.33 + wobble - radius) * width / softness + 0.5, 0.0, 1.0)
    fg = example_image(foreground, shape)
    bg = example_image(background, shape)
    image = alpha[:, :, None] * fg + (1.0 - alpha[:, :, None]) * bg
    return image, alpha


@contextlib.contextmanager
def captured_stdout():
    """Collect what pymatting prints (its ichol breakdown warnings)."""
    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer):
        yield buffer


def bench_size(width, repeat, gpu=False):
    import pymatting

    height = width * 3 // 4
    image, truth = synthetic_composite((height, width))
    band = max(1, round(10 * width / 640))
    trimap = trimap_from_alpha(truth, band=band)
    trimap_float = trimap / 255.0  # pymatting's convention
    unknown = int(np.count_nonzero(trimap == 128))

    best = {"unmix": np.inf, "pymatting": np.inf, "gpu": np.inf}
    peak = {"unmix": 0.0, "pymatting": 0.0}
    breakdowns = 0
    for _ in range(repeat):  # alternate, so that both see the same machine load
        (ours, info), seconds, memory = timed(closed_form_matting, image, trimap,
                                              return_info=True)
        best["unmix"] = min(best["unmix"], seconds)
        peak["unmix"] = max(peak["unmix"], memory.delta_gb)
        if gpu:
            (on_gpu, gpu_info), seconds, _ = timed(closed_form_matting, image, trimap,
                                                   return_info=True, device="gpu")
            best["gpu"] = min(best["gpu"], seconds)
        with captured_stdout() as printed:
            peer, seconds, memory = timed(pymatting.estimate_alpha_cf, image, trimap_float)
        breakdowns += printed.getvalue().count("PERFORMANCE WARNING")
        best["pymatting"] = min(best["pymatting"], seconds)
        peak["pymatting"] = max(peak["pymatting"], memory.delta_gb)

    # pymatting stops CG at rtol 1e-7 of a system whose condition grows with the
    # size: rerun it to rtol 1e-10 to see whether the difference is its tolerance.
    with captured_stdout():
        tight = pymatting.estimate_alpha_cf(image, trimap_float, cg_kwargs={"rtol": 1e-10})

    fg_best = {"unmix": np.inf, "pymatting": np.inf}
    for _ in range(repeat):
        _, seconds, _ = timed(estimate_foreground, image, ours)
        fg_best["unmix"] = min(fg_best["unmix"], seconds)
        _, seconds, _ = timed(pymatting.estimate_foreground_ml, image, ours)
        fg_best["pymatting"] = min(fg_best["pymatting"], seconds)

    row = {
        "size": f"{width}x{height}", "pixels": width * height, "unknown": unknown,
        "band": band, "unmix_s": best["unmix"], "pymatting_s": best["pymatting"],
        "speedup": best["pymatting"] / best["unmix"],
        "unmix_peak_gb": peak["unmix"], "pymatting_peak_gb": peak["pymatting"],
        "max_abs_difference": float(np.abs(ours - peer).max()),
        "max_abs_difference_rtol_1e-10": float(np.abs(ours - tight).max()),
        "pcg_iterations": info.iterations, "residual": info.residual,
        "factor_nnz": info.factor_nnz,
        "unmix_stages_s": {k: round(v, 4) for k, v in info.timings.items()},
        "pymatting_ichol_breakdowns": breakdowns,
        "foreground_unmix_s": fg_best["unmix"], "foreground_pymatting_s": fg_best["pymatting"],
        "load_average": os.getloadavg()[0],
    }
    if gpu:
        row.update(gpu_s=best["gpu"], cpu_over_gpu=best["unmix"] / best["gpu"],
                   gpu_max_abs_difference=float(np.abs(on_gpu - ours).max()),
                   gpu_stages_s={k: round(v, 4) for k, v in gpu_info.timings.items()})
    for name, alpha in (("unmix", ours), ("pymatting", peer)):
        for metric, value in matting_errors(alpha, truth, trimap).items():
            row[f"{name}_{metric}"] = value
    return row


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", nargs="+", type=int, default=[640, 1280],
                        help="image widths; heights are 3/4 of them (default 640 1280)")
    parser.add_argument("--repeat", type=int, default=5,
                        help="alternating runs of each library per size (best of; default 5)")
    parser.add_argument("--gpu", action="store_true",
                        help="also run closed_form_matting(device='gpu') (needs the gpu extra)")
    args = parser.parse_args(argv)
    import pymatting

    info = machine()
    print(f"machine: {info['cpu']}, {info['cores']} cores, {info['memory_gb']} GB; "
          f"load average {os.getloadavg()[0]:.2f}")
    # Warm both JIT compilers (and their disk caches) on a small input.
    image, truth = synthetic_composite((60, 80))
    trimap = trimap_from_alpha(truth, band=2)
    closed_form_matting(image, trimap)
    if args.gpu:
        closed_form_matting(image, trimap, device="gpu")
    estimate_foreground(image, truth)
    with captured_stdout():
        pymatting.estimate_alpha_cf(image, trimap / 255.0)
        pymatting.estimate_foreground_ml(image, truth)

    rows = []
    for width in args.sizes:
        print(f"  {width}×{width * 3 // 4} ...", flush=True)
        rows.append(bench_size(width, args.repeat, args.gpu))

    print(f"\nclosed-form matting: unmix vs pymatting.estimate_alpha_cf (best of {args.repeat}, "
          "alternating, same process)")
    print_table(rows, [
        ("size", "size", None), ("unknown", "unknown", None),
        ("unmix_s", "unmix s", "{:.3f}"), ("pymatting_s", "pymatting s", "{:.3f}"),
        ("speedup", "speed-up", "{:.2f}x"), ("unmix_peak_gb", "unmix +GB", "{:.3f}"),
        ("pymatting_peak_gb", "pymatting +GB", "{:.3f}"),
        ("max_abs_difference", "max |Δα|", "{:.1e}"),
        ("max_abs_difference_rtol_1e-10", "(rtol 1e-10)", "{:.1e}"),
        ("pcg_iterations", "PCG it", None),
        ("pymatting_ichol_breakdowns", "ichol fails", None), ("load_average", "load", "{:.1f}"),
    ])
    if args.gpu:
        print(f"\nclosed-form matting on the GPU ({info['gpu']}) against the CPU, same run")
        print_table(rows, [
            ("size", "size", None), ("unmix_s", "CPU s", "{:.3f}"), ("gpu_s", "GPU s", "{:.3f}"),
            ("cpu_over_gpu", "CPU/GPU", "{:.1f}x"),
            ("gpu_max_abs_difference", "max |Δα|", "{:.1e}"),
        ])
    print("\nerrors against the ground truth (DIM conventions: SAD, Grad, Conn /1000; MSE plain)")
    print_table(rows, [
        ("size", "size", None),
        ("unmix_sad", "unmix SAD", "{:.3f}"), ("pymatting_sad", "pymatting SAD", "{:.3f}"),
        ("unmix_mse", "unmix MSE", "{:.2e}"), ("pymatting_mse", "pymatting MSE", "{:.2e}"),
        ("unmix_gradient", "unmix Grad", "{:.3f}"), ("unmix_connectivity", "unmix Conn", "{:.3f}"),
    ])
    print("\nforeground colours: unmix.estimate_foreground vs pymatting.estimate_foreground_ml")
    print_table(rows, [
        ("size", "size", None), ("foreground_unmix_s", "unmix s", "{:.3f}"),
        ("foreground_pymatting_s", "pymatting s", "{:.3f}"),
    ])
    path = append_results("bench_matting", [{"benchmark": "closed_form_matting", **r}
                                            for r in rows])
    print(f"\nappended to {path}")


if __name__ == "__main__":
    main()
