"""What every benchmark script shares: the machine, timing, peak memory, results.

Each script prints a table and appends one JSON line per measurement to
``benchmarks/results/<script>.jsonl``; every line names the machine and the
library versions, so results from different machines can sit in one file.
"""

import datetime
import json
import os
import platform
import threading
import time
from importlib import metadata

import psutil

RESULTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results")


def cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def gpu_model():
    try:
        import cupy

        props = cupy.cuda.runtime.getDeviceProperties(0)
        return props["name"].decode()
    except Exception:
        return None


def machine():
    """A description of this machine and of the versions that matter."""
    versions = {}
    for package in ("unmix", "numpy", "scipy", "numba", "scikit-image", "pyamg", "pymatting"):
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            versions[package] = None
    return {
        "cpu": cpu_model(),
        "cores": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "memory_gb": round(psutil.virtual_memory().total / 2**30, 1),
        "gpu": gpu_model(),
        "python": platform.python_version(),
        "versions": versions,
    }


class PeakMemory:
    """Peak resident memory of this process inside a ``with`` block.

    A background thread samples the resident set size every ``interval``
    seconds; ``peak`` is the highest sample and ``delta`` its excess over the
    resident size at entry. Sampling sees every allocator (NumPy, Numba,
    SuperLU), which ``tracemalloc`` does not.
    """

    def __init__(self, interval=0.005):
        self.interval = interval
        self._process = psutil.Process()

    def __enter__(self):
        self.start = self.peak = self._process.memory_info().rss
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def _sample(self):
        while not self._stop.wait(self.interval):
            self.peak = max(self.peak, self._process.memory_info().rss)

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self._process.memory_info().rss)

    @property
    def peak_gb(self):
        return self.peak / 2**30

    @property
    def delta_gb(self):
        return (self.peak - self.start) / 2**30


def timed(function, *args, repeat=1, **kwargs):
    """Run ``function`` ``repeat`` times; return (last result, best seconds, peak memory)."""
    best = float("inf")
    with PeakMemory() as memory:
        for _ in range(repeat):
            start = time.perf_counter()
            result = function(*args, **kwargs)
            best = min(best, time.perf_counter() - start)
    return result, best, memory


def append_results(name, rows):
    """Append rows (dicts) to ``results/<name>.jsonl``, stamped with machine and date."""
    os.makedirs(RESULTS, exist_ok=True)
    stamp = {
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "machine": machine(),
    }
    path = os.path.join(RESULTS, f"{name}.jsonl")
    with open(path, "a") as f:
        for row in rows:
            f.write(json.dumps({**stamp, **row}) + "\n")
    return path


def print_table(rows, columns):
    """Print rows (dicts) as an aligned text table with the given (key, header, format) columns."""
    cells = [[header for _, header, _ in columns]]
    for row in rows:
        cells.append([
            "" if row.get(key) is None else (fmt.format(row[key]) if fmt else str(row[key]))
            for key, _, fmt in columns
        ])
    widths = [max(len(r[i]) for r in cells) for i in range(len(columns))]
    for i, r in enumerate(cells):
        print("  ".join(c.rjust(w) for c, w in zip(r, widths)))
        if i == 0:
            print("  ".join("-" * w for w in widths))
