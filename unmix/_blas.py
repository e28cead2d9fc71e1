"""BLAS thread control shared by the solvers."""

import functools


@functools.lru_cache(maxsize=None)
def _controller():
    from threadpoolctl import ThreadpoolController

    return ThreadpoolController()


def single_threaded_blas():
    """Context that runs BLAS on one thread.

    The dense products inside the solvers are small (K×K Gram products, fronts
    below the root of a factorisation) or memory-bound (single-vector sweeps,
    dot products of PCG): multi-threaded OpenBLAS gains little there, and on a
    loaded 2-core machine its spinning threads made them 3–8× slower (measured).
    Callers that want parallelism run their own threads over disjoint data
    (:func:`unmix._threads.thread_map`).
    """
    return _controller().limit(limits=1, user_api="blas")
