"""Tests of unmix._threads: the concurrent map the solvers run their parts with."""

import threading
import time

import pytest

from unmix import _threads


@pytest.fixture
def two_cores(monkeypatch):
    monkeypatch.setattr(_threads, "default_threads", lambda: 2)


def test_results_in_order_and_concurrent(two_cores):
    barrier = threading.Barrier(2, timeout=10)

    def meet(i):
        barrier.wait()  # only returns once both calls run at the same time
        return i * i

    assert _threads.thread_map(meet, [3, 4]) == [9, 16]
    assert _threads.thread_map(lambda a, b: a - b, [5, 1, 2], [1, 1, 1]) == [4, 0, 1]
    assert _threads.thread_map(abs, []) == []


def test_all_calls_finish_before_an_exception(two_cores):
    done = []

    def work(i):
        if i == 0:
            raise ValueError("part 0 failed")
        time.sleep(0.2)
        done.append(i)

    with pytest.raises(ValueError, match="part 0 failed"):
        _threads.thread_map(work, [0, 1])
    assert done == [1]


def test_nested_calls_run_in_sequence(two_cores):
    def inner(i):
        return threading.current_thread().name

    def outer(i):
        return _threads.thread_map(inner, [0, 1, 2])

    outer_names = _threads.thread_map(outer, [0, 1])
    # The pool thread's own nested calls all ran in that thread.
    assert len(set(outer_names[1])) == 1 and outer_names[1][0].startswith("unmix")


def test_one_core_runs_in_the_calling_thread(monkeypatch):
    monkeypatch.setattr(_threads, "default_threads", lambda: 1)
    me = threading.current_thread().name
    assert _threads.thread_map(lambda i: threading.current_thread().name, [0, 1]) == [me, me]
