"""unmix.batch: a real Dask LocalCluster, a corrupt file, resume, Ctrl-C, the in-process fallback."""

import json
import os
import signal
import subprocess
import sys
import time

import imageio.v3 as iio
import numpy as np
import pytest

from unmix import batching
from unmix.batching import batch, collect_inputs, count_frames, match_layers, temporal_change
from unmix.cli import main
from unmix.image import example_image, write_image
from unmix.layers import Layers

distributed = pytest.importorskip("distributed")
pytest.importorskip("imageio_ffmpeg")

PHOTOS = ("coffee", "astronaut", "rocket")


def _panning_clip(path, frames=10, size=32):
    """A clip that pans across a photograph, two pixels a frame."""
    photo = example_image("coffee", (size + 8, size + 2 * frames))
    clip = [np.rint(photo[4:4 + size, 2 * t:2 * t + size] * 255).astype(np.uint8)
            for t in range(frames)]
    iio.imwrite(path, np.stack(clip), extension=".mp4", fps=10)


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    """Three 32×32 photographs, a corrupt image and a 10-frame clip."""
    folder = tmp_path_factory.mktemp("inputs")
    for name in PHOTOS:
        write_image(folder / f"{name}.png", example_image(name, (32, 32)))
    (folder / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n this is not an image")
    _panning_clip(folder / "clip.mp4")
    (folder / "notes.txt").write_text("not an input: ignored")
    return folder


@pytest.fixture(scope="module")
def client():
    cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=1, host="127.0.0.1",
                                       dashboard_address=None)
    with distributed.Client(cluster) as client:
        yield client
    cluster.close()


@pytest.fixture(scope="module")
def cluster_run(inputs, client, tmp_path_factory):
    """Soft colour segmentation of the whole folder on the cluster, as .npz, with --video-out."""
    outdir = tmp_path_factory.mktemp("colors")
    result = batch(inputs, outdir, method="colors", options={"n_layers": 3}, format="npz",
                   video_out=True, client=client)
    return result, outdir


def test_cluster_run_completes_all_but_the_corrupt_file(cluster_run, inputs):
    result, outdir = cluster_run
    assert result.backend.startswith("dask tcp://127.0.0.1")
    # 3 images, 10 frames and the clip's assembly; the corrupt file is the one failure.
    assert (result.done, result.skipped, result.failed) == (14, 0, 1) and not result.ok
    with open(outdir / "failures.jsonl") as f:
        failures = [json.loads(line) for line in f]
    assert len(failures) == 1 and failures[0]["input"] == str(inputs / "broken.png")
    assert "ImageReadError" in failures[0]["error"] and failures[0]["traceback"]
    for name in PHOTOS:
        layers = Layers.load(outdir / f"{name}.npz")
        assert layers.shape == (32, 32)
        np.testing.assert_allclose(layers.alphas.sum(axis=2), 1.0, atol=1e-6)
        assert layers.intermediates["metadata"]["method"] == "colors"
    frames = [Layers.load(outdir / "clip" / f"frame-{t:05d}.npz") for t in range(10)]
    # The colour models are estimated once for the clip: every frame has the same layers.
    assert len({tuple(f.intermediates["names"]) for f in frames}) == 1
    for k in range(frames[0].n_layers):
        assert count_frames(str(outdir / "clip" / f"alpha-{k:02d}.mp4")) == 10
    manifest = json.loads((outdir / "manifest.json").read_text())
    assert manifest["summary"]["done"] == 14 and len(manifest["items"]) == 14
    assert not [f for _, _, files in os.walk(outdir) for f in files if ".partial" in f]


def test_rerun_skips_what_is_complete_and_redoes_what_changed(cluster_run, inputs, client):
    result, outdir = cluster_run
    stamps = {p: os.stat(outdir / p).st_mtime_ns for r in result.records if r["status"] == "done"
              for p in r["outputs"]}
    again = batch(inputs, outdir, method="colors", options={"n_layers": 3}, format="npz",
                  video_out=True, client=client)
    assert (again.done, again.skipped, again.failed) == (0, 14, 1)
    assert {p: os.stat(outdir / p).st_mtime_ns for p in stamps} == stamps  # nothing rewritten
    os.remove(outdir / "rocket.npz")  # a missing output is made again, and only it
    third = batch(inputs / "rocket.png", outdir, method="colors", options={"n_layers": 3},
                  format="npz", client=client)
    assert (third.done, third.skipped) == (1, 0) and (outdir / "rocket.npz").exists()


def test_scheduler_address_from_the_command_line(inputs, client, tmp_path, capsys):
    status = main(["batch", str(inputs / "coffee.png"), str(inputs / "astronaut.png"),
                   "-o", str(tmp_path), "--method", "colors", "--layers", "2", "--format", "tif",
                   "--scheduler", client.scheduler.address, "--json"])
    summary = json.loads(capsys.readouterr().out)
    assert status == 0 and summary["ok"] and summary["done"] == 2
    assert summary["backend"] == f"dask {client.scheduler.address}"
    assert Layers.load(tmp_path / "coffee.tif").n_layers == 2


def test_partial_failure_is_exit_status_1(inputs, client, tmp_path, capsys):
    status = main(["batch", str(inputs / "broken.png"), "-o", str(tmp_path), "--method", "colors",
                   "--scheduler", client.scheduler.address, "--quiet"])
    assert status == 1 and capsys.readouterr().out == ""
    assert "broken.png" in (tmp_path / "failures.jsonl").read_text()


def test_video_layers_keep_their_order_from_frame_to_frame(client, tmp_path):
    # Fewer, smaller frames than the colour tests' clip: SSS takes about a second a frame.
    _panning_clip(tmp_path / "clip.mp4", frames=6, size=16)
    result = batch(tmp_path / "clip.mp4", tmp_path, method="sss",
                   options={"mode": "fast", "n_segments": 3, "features": "handcrafted"},
                   format="npz", client=client)
    assert result.ok and result.done == 7
    video = next(r for r in result.records if r.get("video"))
    stability = video["stability"]
    assert stability["mean_matched"] <= stability["mean_unmatched"]
    frames = [Layers.load(tmp_path / "clip" / f"frame-{t:05d}.npz").alphas for t in range(6)]
    for previous, current in zip(frames, frames[1:]):
        np.testing.assert_array_equal(match_layers(previous, current), np.arange(3))


def test_in_process_fallback_without_dask(inputs, cluster_run, tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(batching, "distributed_available", lambda: False)
    status = main(["batch", str(inputs / "coffee.png"), str(inputs / "clip.mp4"), "-o",
                   str(tmp_path), "--method", "colors", "--layers", "3", "--format", "npz"])
    captured = capsys.readouterr()
    assert status == 0 and "pip install 'unmix[distributed]'" in captured.err
    assert "in-process" in captured.out
    _, cluster_out = cluster_run
    for name in ("coffee.npz", "clip/frame-00004.npz"):  # the same results as on the cluster
        np.testing.assert_allclose(Layers.load(tmp_path / name).alphas,
                                   Layers.load(cluster_out / name).alphas, atol=1e-12)
    with pytest.raises(ImportError, match=r"unmix\[distributed\]"):
        batch(inputs / "coffee.png", tmp_path, method="colors", workers=2)


def test_interrupted_run_resumes_without_recomputing(tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    for name in PHOTOS:
        # The first item (in name order) small, the others large enough (seconds each)
        # that the signal, sent once the first is recorded, comes while one is running.
        side = 48 if name == min(PHOTOS) else 160
        write_image(folder / f"{name}.png", example_image(name, (side, side)))
    outdir = tmp_path / "out"
    outdir.mkdir()
    # What a writer killed mid-file leaves behind is cleared when the next run starts.
    (outdir / ".coffee.0123456789ab.partial.npz").write_bytes(b"half a file")
    command = [sys.executable, "-m", "unmix.cli", "batch", str(folder), "-o", str(outdir),
               "--method", "sss", "--mode", "fast", "--segments", "3", "--features",
               "handcrafted", "--format", "npz", "--workers", "0", "--quiet"]
    # A test run started in the background (``cmd &``) ignores SIGINT, and a child
    # inherits that; restore the default so that Python turns the signal into Ctrl-C.
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.monotonic() + 120
    records = outdir / ".manifest"
    while time.monotonic() < deadline and process.poll() is None:
        if records.is_dir() and any(p.suffix == ".json" for p in records.iterdir()):
            break
        time.sleep(0.05)
    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=60)
    assert process.returncode == 130, err.decode()
    assert b"interrupted" in err
    complete = sorted(p.name for p in outdir.glob("*.npz"))
    assert 1 <= len(complete) < 3
    assert not [f for _, _, files in os.walk(outdir) for f in files if ".partial" in f]
    stamps = {name: os.stat(outdir / name).st_mtime_ns for name in complete}

    result = batch(folder, outdir, method="sss", format="npz", workers=0,
                   options={"mode": "fast", "n_segments": 3, "features": "handcrafted"})
    assert result.ok and result.skipped == len(complete) and result.done == 3 - len(complete)
    assert {name: os.stat(outdir / name).st_mtime_ns for name in complete} == stamps


def test_matte_with_a_folder_of_trimaps(tmp_path, photo):
    image = photo("coffee", (32, 32))
    truth = np.zeros((32, 32))
    truth[8:24, 8:24] = 1.0
    write_image(tmp_path / "cup.png", image)
    (tmp_path / "trimaps").mkdir()
    trimap = np.full((32, 32), 0.5)
    trimap[12:20, 12:20], trimap[:4], trimap[-4:] = 1.0, 0.0, 0.0
    write_image(tmp_path / "trimaps" / "cup.png", trimap)
    result = batch(tmp_path / "cup.png", tmp_path / "out", method="matte",
                   trimaps=tmp_path / "trimaps", format="ora", workers=0)
    assert result.ok and (tmp_path / "out" / "cup.ora").exists()
    with pytest.raises(ValueError, match="needs trimaps"):
        batch(tmp_path / "cup.png", tmp_path / "out", method="matte", workers=0)


def test_match_layers_undoes_a_permutation():
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(20, 20, 4)) * 3
    alphas = np.exp(logits) / np.exp(logits).sum(axis=2, keepdims=True)
    order = np.array([2, 0, 3, 1])
    shuffled = alphas[:, :, order] + rng.normal(scale=0.01, size=alphas.shape)
    recovered = match_layers(alphas, shuffled)
    np.testing.assert_array_equal(order[recovered], np.arange(4))
    assert temporal_change(alphas, shuffled[:, :, recovered]).max() < 0.02
    with pytest.raises(ValueError, match="one shape"):
        match_layers(alphas, alphas[:, :, :3])


def test_inputs_and_options_are_checked_before_any_work(inputs, tmp_path):
    assert [name for _, name in collect_inputs(inputs)] == ["astronaut", "broken", "clip",
                                                            "coffee", "rocket"]
    assert [name for _, name in collect_inputs(str(inputs / "c*"))] == ["clip", "coffee"]
    with pytest.raises(ValueError, match="no file matches"):
        collect_inputs(tmp_path / "missing*.png")
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    write_image(tmp_path / "a" / "x.png", np.zeros((4, 4)))
    write_image(tmp_path / "b" / "x.jpg", np.zeros((4, 4)))
    with pytest.raises(ValueError, match="would both write the output 'x'"):
        collect_inputs([tmp_path / "a", tmp_path / "b"])
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="no image or video files"):
        collect_inputs(tmp_path / "empty")
    with pytest.raises(ValueError, match="method must be one of"):
        batch(inputs, tmp_path / "o", method="magic", workers=0)
    with pytest.raises(ValueError, match="format must be one of"):
        batch(inputs, tmp_path / "o", method="colors", format="psd", workers=0)
    with pytest.raises(ValueError, match=r"\['n_segments'\] are not options of method 'colors'"):
        batch(inputs, tmp_path / "o", method="colors", options={"n_segments": 3}, workers=0)
    with pytest.raises(ValueError, match="workers must be"):
        batch(inputs, tmp_path / "o", method="colors", workers=-1)
    with pytest.raises(ValueError, match="does not take videos"):
        batch(inputs, tmp_path / "o", method="matte", trimaps=tmp_path, workers=0)
    assert not (tmp_path / "o").exists()


def test_command_line_refuses_options_of_another_method(tmp_path, capsys):
    status = main(["batch", str(tmp_path), "-o", str(tmp_path / "o"), "--method", "colors",
                   "--segments", "3"])
    assert status == 2
    assert "--segments is an option of --method sss" in capsys.readouterr().err
