"""Benchmark the graph of semantic soft segmentation and its eigensolvers.

For each image size: the matting Laplacian (unmix against pymatting's
``cf_laplacian``, same process, same input, both JIT-warmed), each stage of
the SSS Laplacian, and each eigensolver of ``smallest_eigenpairs`` (time,
peak memory, largest residual ‖Lv − λv‖) on each device asked for.

    python benchmarks/bench_graph.py                     # 160×120, 320×240, 640×480
    python benchmarks/bench_graph.py --sizes 160 320 --methods shift-invert
    python benchmarks/bench_graph.py --methods shift-invert --devices cpu gpu --skip-pymatting

A GPU eigensolve runs twice in its process: ``seconds`` is the second run, and
``cold_seconds`` the first, which also creates the CUDA context, loads cuDSS and
compiles CuPy's kernels (cached on disk for later processes). ``gpu_pool_gb`` is what
CuPy's memory pool holds after the run, an upper bound of the device memory it needed.

Results are printed and appended to ``benchmarks/results/bench_graph.jsonl``.
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile


sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from common import append_results, machine, print_table, timed  # noqa: E402

from unmix.graph import (  # noqa: E402
    color_affinity,
    laplacian,
    matting_affinity,
    matting_laplacian,
    semantic_affinity,
    superpixels,
)
from unmix.image import example_image  # noqa: E402

#: Eigensolvers benchmarked (the "dense" method is for tiny problems only).
METHODS = ("shift-invert", "lobpcg")


def bench_laplacian(image, repeat):
    import pymatting

    # Warm both JIT compilers (and their caches) on a small input first.
    matting_laplacian(image[:16, :16])
    pymatting.cf_laplacian(image[:16, :16], 1e-7, 1)
    ours, t_ours, m_ours = timed(matting_laplacian, image, 1e-7, 1, repeat=repeat)
    peer, t_peer, m_peer = timed(pymatting.cf_laplacian, image, 1e-7, 1, repeat=repeat)
    difference = abs(ours - peer).max()
    return {
        "unmix_s": t_ours,
        "pymatting_s": t_peer,
        "speedup": t_peer / t_ours,
        "unmix_peak_gb": m_ours.delta_gb,
        "pymatting_peak_gb": m_peer.delta_gb,
        "max_abs_difference": float(difference),
        "nnz": int(ours.nnz),
    }


def bench_sss_laplacian(image):
    """Time each stage of L = D − (W_L + σ_S W_S + σ_C W_C), features = the image."""
    stages = {}
    sp, stages["superpixels_s"], _ = timed(superpixels, image)
    W_L, stages["matting_affinity_s"], _ = timed(matting_affinity, image)
    W_S, stages["semantic_affinity_s"], _ = timed(semantic_affinity, image, sp)
    W_C, stages["color_affinity_s"], _ = timed(color_affinity, image, sp)
    L, stages["laplacian_s"], _ = timed(lambda: laplacian(W_L + 0.01 * W_S + 0.01 * W_C))
    stages["n_superpixels"] = sp.n_segments
    stages["nnz"] = int(L.nnz)
    return L, stages


EIGEN_WORKER = """
import json, resource, sys, time
import numpy as np, scipy.sparse as sparse
from unmix.spectral import smallest_eigenpairs
path, method, k, height, width, device = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5]), sys.argv[6]
L = sparse.load_npz(path).tocsr()
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
extra = {}
for run in range(2 if device == "gpu" else 1):
    start = time.perf_counter()
    eigvals, eigvecs, residual = smallest_eigenpairs(L, k, method=method, shape=(height, width),
                                                     return_residuals=True, device=device)
    seconds = time.perf_counter() - start
    if run == 0 and device == "gpu":
        extra["cold_seconds"] = seconds
if device == "gpu":
    import cupy
    extra["gpu_pool_gb"] = cupy.get_default_memory_pool().total_bytes() / 2**30
print(json.dumps({"seconds": seconds, "device": device, **extra,
                  "peak_gb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20,
                  "before_gb": before / 2**20, "max_residual": float(residual.max()),
                  "lambda_min": float(eigvals[0]), "lambda_max": float(eigvals[-1])}))
"""


def bench_eigen(L, shape, method, k, timeout, device="cpu"):
    """One eigensolve in a fresh process: its peak memory is the process's own."""
    import scipy.sparse as sparse

    failed = {"method": method, "device": device, "seconds": None}
    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "L.npz")
        sparse.save_npz(path, L)
        command = [sys.executable, "-c", EIGEN_WORKER, path, method, str(k), *map(str, shape),
                   device]
        try:
            done = subprocess.run(command, capture_output=True, text=True, timeout=timeout)
        except subprocess.TimeoutExpired:
            return {**failed, "note": f"stopped after {timeout} s"}
    if done.returncode != 0:
        return {**failed, "note": done.stderr.strip().splitlines()[-1]}
    return {"method": method, **json.loads(done.stdout.strip().splitlines()[-1])}


def bench_import(repeat=5):
    """Best wall time of ``import unmix`` in a fresh interpreter (after a warm-up run)."""
    code = "import time; t = time.perf_counter(); import unmix; print(time.perf_counter() - t)"
    times = [float(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                                  check=True).stdout) for _ in range(repeat + 1)]
    return min(times[1:])


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", nargs="+", type=int, default=[160, 320, 640],
                        help="image widths; heights are 3/4 of them (default 160 320 640)")
    parser.add_argument("--image", default="coffee", help="scikit-image photograph")
    parser.add_argument("--methods", nargs="+", default=list(METHODS), choices=list(METHODS))
    parser.add_argument("--k", type=int, default=100, help="eigenpairs (default 100)")
    parser.add_argument("--repeat", type=int, default=5, help="Laplacian repeats (best of)")
    parser.add_argument("--devices", nargs="+", default=["cpu"], choices=["cpu", "gpu"],
                        help="where the eigensolvers run (GPU: shift-invert only)")
    parser.add_argument("--skip-eigen", action="store_true")
    parser.add_argument("--skip-pymatting", action="store_true",
                        help="skip the matting Laplacian comparison with pymatting")
    parser.add_argument("--eigen-timeout", type=int, default=900,
                        help="seconds after which an eigensolver run is stopped (default 900)")
    args = parser.parse_args(argv)

    info = machine()
    print(f"machine: {info['cpu']}, {info['cores']} cores, {info['memory_gb']} GB; "
          f"gpu: {info['gpu']}")
    import_seconds = bench_import()
    print(f"import unmix: {import_seconds * 1000:.1f} ms (best of 5, warm)")
    lap_rows, stage_rows, eig_rows = [], [], []
    bench_sss_laplacian(example_image(args.image, (48, 64)))  # compile the kernels once
    for width in args.sizes:
        height = width * 3 // 4
        image = example_image(args.image, (height, width))
        size = f"{width}x{height}"
        common = {"image": args.image, "size": size, "pixels": height * width}

        if not args.skip_pymatting:
            lap_rows.append({**common, **bench_laplacian(image, args.repeat)})
        L, stages = bench_sss_laplacian(image)
        stage_rows.append({**common, **stages})
        if not args.skip_eigen:
            for device in args.devices:
                for method in args.methods:
                    if device == "gpu" and method != "shift-invert":
                        continue
                    print(f"  {size}: eigen {method} on {device} ...", flush=True)
                    eig_rows.append({**common, "k": args.k, **bench_eigen(
                        L, (height, width), method, args.k, args.eigen_timeout, device)})
            for row in eig_rows:
                cpu = next((r for r in eig_rows if r["size"] == row["size"]
                            and r["method"] == row["method"] and r["device"] == "cpu"), None)
                if row["device"] == "gpu" and cpu and cpu["seconds"] and row["seconds"]:
                    row["cpu_over_gpu"] = cpu["seconds"] / row["seconds"]

    if lap_rows:
        print("\nmatting Laplacian: unmix vs pymatting.cf_laplacian (best of "
              f"{args.repeat}, same process)")
        print_table(lap_rows, [
            ("size", "size", None), ("unmix_s", "unmix s", "{:.3f}"),
            ("pymatting_s", "pymatting s", "{:.3f}"), ("speedup", "speedup", "{:.2f}x"),
            ("unmix_peak_gb", "unmix +GB", "{:.3f}"),
            ("pymatting_peak_gb", "pymatting +GB", "{:.3f}"),
            ("max_abs_difference", "max |diff|", "{:.1e}"), ("nnz", "nnz", None),
        ])
    print("\nSSS Laplacian stages (features = image colours), seconds")
    print_table(stage_rows, [
        ("size", "size", None), ("superpixels_s", "SLIC0", "{:.2f}"),
        ("matting_affinity_s", "W_L", "{:.2f}"), ("semantic_affinity_s", "W_S", "{:.3f}"),
        ("color_affinity_s", "W_C", "{:.2f}"), ("laplacian_s", "D-W", "{:.2f}"),
        ("n_superpixels", "superpixels", None), ("nnz", "nnz", None),
    ])
    if eig_rows:
        print(f"\nsmallest_eigenpairs, k = {args.k}")
        print_table(eig_rows, [
            ("size", "size", None), ("method", "method", None), ("device", "device", None),
            ("seconds", "seconds", "{:.2f}"), ("cold_seconds", "first run s", "{:.2f}"),
            ("cpu_over_gpu", "CPU/GPU", "{:.1f}x"), ("peak_gb", "peak GB", "{:.2f}"),
            ("gpu_pool_gb", "GPU pool GB", "{:.2f}"), ("max_residual", "max residual", "{:.1e}"),
            ("lambda_min", "λ_min", "{:.2e}"), ("lambda_max", "λ_max", "{:.2e}"), ("note", "", None),
        ])
    path = append_results("bench_graph", [
        {"benchmark": "import", "seconds": import_seconds},
        *({"benchmark": "matting_laplacian", **r} for r in lap_rows),
        *({"benchmark": "sss_laplacian_stages", **r} for r in stage_rows),
        *({"benchmark": "smallest_eigenpairs", **r} for r in eig_rows),
    ])
    print(f"\nappended to {path}")


if __name__ == "__main__":
    main()
