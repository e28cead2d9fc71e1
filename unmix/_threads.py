"""Threads over disjoint data, shared by the solvers.

The memory-bound kernels (the triangular sweeps of a factorisation, the tall-skinny
products of a Krylov basis, the per-pixel passes of constrained sparsification) split
their data into disjoint parts and run the parts in Python threads, one per core.  The
work of each part runs in NumPy/BLAS or in a ``nogil`` Numba kernel, which release the
GIL, with BLAS itself on one thread (:func:`unmix._blas.single_threaded_blas`).  Unlike
multi-threaded BLAS, whose idle threads spin, a thread here that has nothing to do
sleeps, so a busy second core delays the other part and costs nothing more.

Where the parts' partial sums are added, their number decides the rounding.  The
eigensolver fixes its parts by the data (two halves), never by the number of cores, so
that its eigenvectors, and the stages downstream that amplify their rounding, do not
depend on the machine.
"""

import contextlib
import os
import threading
from concurrent.futures import ThreadPoolExecutor, wait

_pool = None
_pool_lock = threading.Lock()
_in_worker = threading.local()
_thread_limit = None


def default_threads():
    """Number of cores this process may run on, or the limit :func:`limit_threads` set."""
    if _thread_limit is not None:
        return _thread_limit
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)


@contextlib.contextmanager
def limit_threads(threads):
    """Run the enclosed solvers on at most ``threads`` threads: unmix's, Numba's and BLAS's.

    For processes that run several decompositions side by side (the workers of
    :func:`unmix.batch`), where each must keep to its share of the cores.
    Process-wide: meant for a process that runs one decomposition at a time.
    """
    global _thread_limit
    import numba

    from ._blas import _controller

    previous, numba_threads = _thread_limit, numba.get_num_threads()
    _thread_limit = max(1, int(threads))
    numba.set_num_threads(min(_thread_limit, numba.config.NUMBA_NUM_THREADS))
    try:
        with _controller().limit(limits=_thread_limit):
            yield
    finally:
        _thread_limit = previous
        numba.set_num_threads(numba_threads)


def _executor():
    global _pool
    with _pool_lock:
        if _pool is None:
            _pool = ThreadPoolExecutor(max(1, default_threads() - 1),
                                       thread_name_prefix="unmix", initializer=_mark_worker)
        return _pool


def _mark_worker():
    _in_worker.active = True


def _forget_pool():
    # The pool's threads do not survive a fork; a child makes its own.
    global _pool
    _pool = None


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_pool)


def thread_map(fn, *iterables):
    """``[fn(*args) for args in zip(*iterables)]``, the calls running concurrently.

    The first call runs in the calling thread and the others in a shared pool of
    ``default_threads() − 1`` threads.  On a single core, and from inside a pool thread
    (no nested parallelism, which could wait forever on a full pool), the calls run one
    after another.  Every call is finished before the first exception raised by any of
    them propagates.
    """
    calls = list(zip(*iterables))
    if len(calls) <= 1 or default_threads() == 1 or getattr(_in_worker, "active", False):
        return [fn(*args) for args in calls]
    futures = [_executor().submit(fn, *args) for args in calls[1:]]
    try:
        first = fn(*calls[0])
    finally:
        wait(futures)
    return [first] + [f.result() for f in futures]
