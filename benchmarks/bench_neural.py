"""Benchmark classical methods against neural ones on the same inputs.

Soft colour segmentation: ``unmix.soft_color_segments`` (Aksoy et al. 2017,
classical) against FSCS (Akimoto et al. 2020, the authors' released
weights through ``unmix.nets``) on the same photographs with the same
palettes: FSCS's ``apple.jpg`` with the authors' palette, and scikit-image
photographs with the release's k-means palette (``kmeans_palette``, seed 0).
Both decompose the same image, cropped to multiples of 8 (FSCS's release
behaviour). Reported: seconds (CPU; FSCS also on the GPU when torch sees
one, after a warm-up), peak memory growth, and the blind metrics of
``unmix.metrics`` (reconstruction MSE and PSNR, sparsity, colour variance,
fraction of α or u outside [0, 1]).

Matting: ``closed_form_matting`` on the synthetic composites of
``bench_matting.py`` (known soft α), scored with the DIM metrics. A matting
network is benchmarked next to it when one is given with ``--matting-net``
(no matting weights ship with unmix: without it, that table has only
closed-form rows).

    python benchmarks/bench_neural.py
    python benchmarks/bench_neural.py --photos apple coffee --matting-net alphagan.pt2 \\
        --trimap-encoding single --normalize imagenet --multiple 32

The FSCS weights are read from ``--fscs-weights`` (default ``../shared/fscs``
beside the repository, which also holds ``apple.jpg``). Results are printed
and appended to ``benchmarks/results/bench_neural.jsonl``.
"""

import argparse
import importlib
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from bench_matting import synthetic_composite  # noqa: E402
from common import append_results, machine, print_table, timed  # noqa: E402

from unmix.color import soft_color_segments  # noqa: E402
from unmix.image import EXAMPLES, example_image, read_image  # noqa: E402
from unmix.matting import closed_form_matting, trimap_from_alpha  # noqa: E402
from unmix.metrics import matting_errors, soft_color_metrics  # noqa: E402

REPOSITORY = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FSCS_DATA = os.path.join(os.path.dirname(REPOSITORY), "shared", "fscs")
#: The authors' palette for apple.jpg (spec fscs.md §4), RGB 0–255, in order.
APPLE_PALETTE = np.array([[253, 253, 254], [203, 194, 170], [83, 17, 22], [205, 118, 4],
                          [220, 222, 11], [155, 24, 10], [171, 75, 67]]) / 255.0


def photograph(name, weights):
    if name == "apple":
        return read_image(os.path.join(weights, "apple.jpg"))
    if name not in EXAMPLES:
        raise SystemExit(f"unknown photograph {name!r}: 'apple' or one of {EXAMPLES}")
    return example_image(name)


def metrics_row(image, layers):
    m = soft_color_metrics(image, layers)
    return {key: m[key] for key in ("recon_mse", "recon_psnr", "sparsity", "color_variance",
                                    "box_violation", "alpha_tv")}


def fscs_on(device, nets, image, palette, repeat):
    """FSCS on ``device`` (a warm-up run first), synchronising CUDA before the clock stops."""
    import torch

    from unmix.nets import fscs_segments

    nets.to(device)
    fscs_segments(image[:64, :64], palette, nets=nets)

    def run():
        layers = fscs_segments(image, palette, nets=nets, fit="crop")
        if device == "cuda":
            torch.cuda.synchronize()
        return layers

    return timed(run, repeat=repeat)


def bench_photo(name, args, nets, devices):
    image = photograph(name, args.fscs_weights)
    height, width = (s - s % 8 for s in image.shape[:2])
    image = np.ascontiguousarray(image[:height, :width])  # FSCS's crop, for both methods
    if name == "apple":
        palette = APPLE_PALETTE
    else:
        from unmix.nets import kmeans_palette

        palette = kmeans_palette(image, 7, random_state=0)
    rows = []
    base = {"photo": name, "size": f"{width}x{height}", "pixels": height * width, "K": 7}
    layers, seconds, memory = timed(soft_color_segments, image, palette=palette,
                                    repeat=args.repeat)
    rows.append({**base, "method": "classical (Aksoy 2017)", "device": "cpu", "seconds": seconds,
                 "peak_gb": memory.delta_gb, "load": os.getloadavg()[0],
                 **metrics_row(image, layers)})
    for device in devices:
        layers, seconds, memory = fscs_on(device, nets, image, palette, args.repeat)
        rows.append({**base, "method": "FSCS (released weights)", "device": device,
                     "seconds": seconds, "peak_gb": memory.delta_gb, "load": os.getloadavg()[0],
                     "negative_alpha_fraction": layers.intermediates["negative_alpha_fraction"],
                     "stage_seconds": layers.intermediates["timings"],
                     **metrics_row(image, layers)})
    return rows


def matting_net(args):
    if args.matting_net is None:
        return None
    from unmix.nets import load_matting_net

    module = None
    if args.matting_net_class:
        module_name, _, class_name = args.matting_net_class.partition(":")
        module = getattr(importlib.import_module(module_name), class_name)
    return load_matting_net(args.matting_net, module, trimap_encoding=args.trimap_encoding,
                            normalize=args.normalize, multiple=args.multiple)


def bench_matting(width, args, net):
    shape = (width * 3 // 4, width)
    image, alpha = synthetic_composite(shape)
    trimap = trimap_from_alpha(alpha, band=max(1, round(10 * width / 640)))
    base = {"size": f"{width}x{shape[0]}", "unknown_fraction": float(np.mean(trimap == 128))}
    peers = [("closed-form (Levin 2008)", closed_form_matting)]
    if net is not None:
        peers.append((f"net {os.path.basename(args.matting_net)}", net))
    rows = []
    for method, function in peers:
        function(image, trimap)  # warm-up: JIT compilation, CUDA context
        pred, seconds, memory = timed(function, image, trimap, repeat=args.repeat)
        rows.append({**base, "method": method, "seconds": seconds, "peak_gb": memory.delta_gb,
                     "load": os.getloadavg()[0], **matting_errors(pred, alpha, trimap)})
    return rows


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--photos", nargs="+", default=["apple", "coffee", "chelsea"],
                        help="'apple' (FSCS's example) and scikit-image photographs "
                             "(default apple coffee chelsea)")
    parser.add_argument("--fscs-weights", default=FSCS_DATA,
                        help="folder of mask_generator.pth, residue_predictor.pth and apple.jpg")
    parser.add_argument("--repeat", type=int, default=1, help="runs per measurement (best kept)")
    parser.add_argument("--matting-sizes", nargs="+", type=int, default=[320, 640],
                        help="widths of the 4:3 synthetic composites (default 320 640)")
    parser.add_argument("--matting-net", help="a matting network: TorchScript, torch.export "
                                              "archive, or state_dict (then --matting-net-class)")
    parser.add_argument("--matting-net-class", help="module:Class of a state_dict's architecture")
    parser.add_argument("--trimap-encoding", default="single",
                        choices=["single", "two_channel", "one_hot"])
    parser.add_argument("--normalize", default=None, help="image normalisation, e.g. imagenet")
    parser.add_argument("--multiple", type=int, default=32, help="side multiple the net needs")
    args = parser.parse_args(argv)

    info = machine()
    try:
        import torch

        from unmix.nets import load_fscs
    except ImportError:
        raise SystemExit("bench_neural needs torch: pip install 'unmix[torch]'") from None
    devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    print(f"machine: {info['cpu']}, {info['cores']} cores, {info['memory_gb']} GB, GPU "
          f"{torch.cuda.get_device_name(0) if len(devices) > 1 else None}; torch "
          f"{torch.__version__} ({torch.get_num_threads()} threads); load average "
          f"{os.getloadavg()[0]:.1f}")
    if not os.path.isfile(os.path.join(args.fscs_weights, "mask_generator.pth")):
        raise SystemExit(f"FSCS weights not found in {args.fscs_weights!r} (--fscs-weights)")
    nets = load_fscs(args.fscs_weights, device="cpu")
    soft_color_segments(example_image("coffee", (30, 40)), n_layers=3)  # compile the kernels
    start = time.perf_counter()
    rows = []
    for name in args.photos:
        rows += bench_photo(name, args, nets, devices)
    print("\nsoft colour segmentation, same image and palette (K = 7):")
    print_table(rows, [("photo", "photo", None), ("size", "size", None),
                       ("method", "method", None), ("device", "device", None),
                       ("seconds", "s", "{:.2f}"), ("recon_mse", "recon MSE", "{:.3e}"),
                       ("recon_psnr", "PSNR", "{:.2f}"), ("sparsity", "sparsity", "{:.3f}"),
                       ("color_variance", "colour var", "{:.3e}"),
                       ("box_violation", "outside [0,1]", "{:.4f}"),
                       ("peak_gb", "peak GB", "{:.2f}"), ("load", "load", "{:.1f}")])
    net = matting_net(args)
    matting_rows = []
    for width in args.matting_sizes:
        matting_rows += bench_matting(width, args, net)
    print("\nmatting on synthetic composites (DIM metrics on the unknown region):")
    if net is None:
        print("(no --matting-net given: closed-form rows only; no matting weights ship with unmix)")
    print_table(matting_rows, [("size", "size", None), ("method", "method", None),
                               ("seconds", "s", "{:.2f}"), ("sad", "SAD", "{:.3f}"),
                               ("mse", "MSE", "{:.2e}"), ("gradient", "Grad", "{:.3f}"),
                               ("connectivity", "Conn", "{:.3f}"), ("load", "load", "{:.1f}")])
    print(f"\ntotal {time.perf_counter() - start:.0f} s")
    stamp = {"torch": torch.__version__, "torch_threads": torch.get_num_threads()}
    path = append_results("bench_neural", [{"benchmark": "soft_color", **stamp, **r} for r in rows]
                          + [{"benchmark": "matting", **stamp, **r} for r in matting_rows])
    print(f"appended to {path}")


if __name__ == "__main__":
    main()
