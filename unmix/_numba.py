"""Helpers for the library's Numba kernels."""

import contextlib

import numba

#: Below this many items (pixels, rows) parallel kernels run on one thread:
#: waking the thread team costs more than it saves, and on a busy machine
#: waiting for the workers made small kernels up to 5× slower (measured).
PARALLEL_MIN_ITEMS = 1 << 16


@contextlib.contextmanager
def threads_for(n_items):
    """Run the enclosed parallel kernels on one thread when ``n_items`` is small."""
    threads = numba.get_num_threads()
    if n_items >= PARALLEL_MIN_ITEMS or threads == 1:
        yield
        return
    numba.set_num_threads(1)
    try:
        yield
    finally:
        numba.set_num_threads(threads)
