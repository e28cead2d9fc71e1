"""Tests of unmix._memory: work that cannot fit is refused before it allocates."""

import numpy as np
import pytest

import unmix
from unmix import _memory
from unmix.cli import main
from unmix.exceptions import InsufficientMemoryError


@pytest.fixture
def one_gib(monkeypatch):
    """A machine with 1 GiB available."""
    monkeypatch.setattr(_memory, "available_bytes", lambda: _memory.GiB)


def _huge(shape):
    """A 30000×30000 RGB image that takes no memory (a zero-stride view)."""
    return np.broadcast_to(np.float64(0.5), shape)


def test_available_memory_is_read():
    available = _memory.available_bytes()
    assert available is None or available > 0


def test_semantic_soft_segments_refuses_up_front(one_gib):
    with pytest.raises(InsufficientMemoryError, match=r"needs about [\d.]+ GiB.*1\.0 GiB is "
                                                      r"available; use mode='fast'"):
        unmix.semantic_soft_segments(_huge((30000, 30000, 3)))
    with pytest.raises(InsufficientMemoryError, match="use a smaller image"):
        unmix.semantic_soft_segments(_huge((30000, 30000, 3)), mode="fast")
    assert issubclass(InsufficientMemoryError, MemoryError)


def test_soft_color_segments_and_matting_refuse_up_front(one_gib):
    with pytest.raises(InsufficientMemoryError, match="soft_color_segments of a 30000×30000"):
        unmix.soft_color_segments(_huge((30000, 30000, 3)))
    trimap = np.broadcast_to(np.uint8(128), (30000, 30000))
    with pytest.raises(InsufficientMemoryError, match="closed_form_matting of a 30000×30000"):
        unmix.closed_form_matting(_huge((30000, 30000, 3)), trimap)


def test_matting_refuses_a_wide_unknown_band(photo, monkeypatch):
    image = photo("coffee", (40, 48))
    trimap = np.full((40, 48), 128, np.uint8)
    trimap[:, :4], trimap[:, -4:] = 0, 255
    # Room for the image, not for the solve of 40·40 unknown pixels (2.6 kB each).
    monkeypatch.setattr(_memory, "available_bytes", lambda: 2_000_000)
    with pytest.raises(InsufficientMemoryError, match="1600 unknown pixels.*narrow the trimap"):
        unmix.closed_form_matting(image, trimap)


def test_small_work_runs_and_unknown_memory_refuses_nothing(photo, monkeypatch):
    monkeypatch.setattr(_memory, "available_bytes", lambda: None)
    _memory.check_memory(1e30, "anything", "nothing")  # unknown: no refusal
    monkeypatch.setattr(_memory, "available_bytes", lambda: _memory.GiB)
    layers = unmix.semantic_soft_segments(photo("coffee", (24, 32)), mode="fast")
    assert layers.alphas.shape == (24, 32, 5)


def test_cli_refuses_an_oversized_size(one_gib, tmp_path, capsys):
    assert main(["sss", "--example", "coffee", "--size", "30000", "30000",
                 "-o", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("unmix: error: an image of 30000×30000 needs about") and "--size" in err
