import numpy as np
import pytest

from unmix.cli import main
from unmix.image import read_image, write_image


def test_eigenvectors_on_an_example(tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["eigenvectors", "--example", "coffee", "--size", "36", "48",
                 "--k", "12", "--show", "8", "-o", str(out)]) == 0
    assert "eigenvectors.png" in capsys.readouterr().out
    mosaic = read_image(out / "eigenvectors.png")
    assert mosaic.shape[0] == 2 * 36 + 4 and mosaic.shape[1] == 4 * 48 + 3 * 4
    saved = np.load(out / "eigenpairs.npz")
    assert saved["eigvecs"].shape == (36 * 48, 12) and np.all(np.diff(saved["eigvals"]) >= 0)


def test_eigenvectors_on_a_file_with_features(tmp_path):
    image = np.random.default_rng(0).random((20, 30, 3))
    write_image(tmp_path / "in.png", image)
    np.save(tmp_path / "f.npy", image[..., ::-1])
    assert main(["eigenvectors", str(tmp_path / "in.png"), "--features", str(tmp_path / "f.npy"),
                 "--k", "6", "-o", str(tmp_path / "out")]) == 0
    assert (tmp_path / "out" / "superpixels.png").exists()


def test_errors_are_reported_not_raised(tmp_path, capsys):
    (tmp_path / "bad.png").write_bytes(b"not an image")
    assert main(["eigenvectors", str(tmp_path / "bad.png"), "-o", str(tmp_path)]) == 1
    assert "cannot read" in capsys.readouterr().err
    assert main(["eigenvectors", str(tmp_path / "missing.png"), "-o", str(tmp_path)]) == 1
    with pytest.raises(SystemExit):
        main(["eigenvectors", "-o", str(tmp_path)])  # neither an image nor --example


def test_sss_on_an_example(tmp_path, capsys):
    out = tmp_path / "sss"
    assert main(["sss", "--example", "astronaut", "--size", "48", "64", "--segments", "4",
                 "--mode", "fast", "-o", str(out)]) == 0
    assert "4 soft segments of 48×64" in capsys.readouterr().out
    for k in range(4):
        assert read_image(out / f"alpha-{k:02d}.png").shape == (48, 64, 3)
    assert (out / "segments.png").exists()


def test_matte_writes_alpha_and_foreground(tmp_path, capsys):
    yy, xx = np.mgrid[:40, :48]
    truth = np.clip((14 - np.hypot(yy - 20, xx - 24)) / 4 + 0.5, 0, 1)
    fg, bg = np.array([0.9, 0.5, 0.1]), np.array([0.1, 0.2, 0.8])
    write_image(tmp_path / "image.png", truth[..., None] * fg + (1 - truth[..., None]) * bg)
    trimap = np.full(truth.shape, 0.5)
    trimap[truth == 1], trimap[truth == 0] = 1.0, 0.0
    write_image(tmp_path / "trimap.png", trimap)  # 0 / 128 / 255
    assert main(["matte", str(tmp_path / "image.png"), str(tmp_path / "trimap.png"),
                 "-o", str(tmp_path / "alpha.png"), "--foreground", str(tmp_path / "fg.png")]) == 0
    assert "unknown pixels" in capsys.readouterr().out
    alpha = read_image(tmp_path / "alpha.png")[..., 0]
    assert np.abs(alpha - truth).max() < 0.02
    import imageio.v3 as iio

    cutout = iio.imread(tmp_path / "fg.png")
    assert cutout.shape == (40, 48, 4)
    opaque = truth > 0.5
    assert np.abs(cutout[opaque, :3] / 255 - fg).max() < 0.03


def test_matte_reports_a_bad_trimap(tmp_path, capsys):
    write_image(tmp_path / "image.png", np.random.default_rng(0).random((10, 10, 3)))
    write_image(tmp_path / "trimap.png", np.full((10, 10), 0.5))
    assert main(["matte", str(tmp_path / "image.png"), str(tmp_path / "trimap.png"),
                 "-o", str(tmp_path / "alpha.png")]) == 2
    assert "no foreground" in capsys.readouterr().err


def test_sss_gpu_unavailable_is_reported(tmp_path, capsys):
    from unmix._backend import gpu_available

    if gpu_available():
        pytest.skip("CuPy and a CUDA device are present")
    assert main(["sss", "--example", "coffee", "--size", "36", "48", "--device", "gpu",
                 "-o", str(tmp_path)]) == 1
    assert "device='gpu' needs" in capsys.readouterr().err


def test_sss_with_handcrafted_features(tmp_path, capsys):
    assert main(["sss", "--example", "coffee", "--size", "36", "48", "--features", "handcrafted",
                 "--segments", "3", "--mode", "fast", "-o", str(tmp_path)]) == 0
    assert "3 soft segments of 36×48" in capsys.readouterr().out


def _one_error_line(capsys):
    """The CLI's stderr: exactly one line ``unmix: error: ...``, no traceback."""
    err = capsys.readouterr().err
    assert err.startswith("unmix: error: ") and err.count("\n") == 1, err
    assert "Traceback" not in err
    return err


@pytest.mark.parametrize("output", ["/dev/null/out", "file.txt", "readonly"])
def test_unwritable_output_folders_fail_before_the_work(tmp_path, capsys, monkeypatch, output):
    (tmp_path / "file.txt").write_text("a file, not a folder")
    if output == "readonly":
        # Refused as a read-only folder would be, also where the tests run as root.
        import os

        monkeypatch.setattr(os, "access", lambda path, mode: not str(path).endswith("readonly"))
        (tmp_path / "readonly").mkdir()
    target = output if output.startswith("/") else str(tmp_path / output)
    for command in (["sss", "--features", "handcrafted"], ["colors"], ["eigenvectors"]):
        assert main([*command, "--example", "coffee", "--size", "24", "32", "-o", target]) == 1
        assert "--output" in _one_error_line(capsys)


def test_matte_refuses_bad_output_paths_before_the_work(tmp_path, capsys):
    image, trimap = tmp_path / "image.png", tmp_path / "trimap.png"
    write_image(image, np.random.default_rng(0).random((10, 10, 3)))
    write_image(trimap, np.full((10, 10), 0.5))  # would fail later: no foreground
    for options, said in ((["-o", str(tmp_path / "alpha.png"), "--foreground",
                            str(tmp_path / "fg.jpg")], "JPEG holds neither an alpha"),
                          (["-o", str(tmp_path / "missing" / "alpha.png")], "does not exist"),
                          (["-o", str(tmp_path / "alpha")], "no image extension")):
        assert main(["matte", str(image), str(trimap), *options]) == 1
        assert said in _one_error_line(capsys)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["image.png", "trimap.png"]


def test_oversized_size_is_refused(tmp_path, capsys):
    assert main(["colors", "--example", "coffee", "--size", "300000", "300000",
                 "-o", str(tmp_path)]) == 1
    assert "memory" in _one_error_line(capsys)


def test_pickled_features_are_refused(tmp_path, capsys):
    import pickle

    with open(tmp_path / "f.npy", "wb") as file:
        pickle.dump({"not": "an array"}, file)
    np.save(tmp_path / "objects.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    for name in ("f.npy", "objects.npy"):
        assert main(["sss", "--example", "coffee", "--size", "24", "32", "--features",
                     str(tmp_path / name), "-o", str(tmp_path / "out")]) == 2
        assert "not a NumPy .npy array file" in _one_error_line(capsys)


def test_bad_option_values_are_usage_errors(tmp_path, capsys):
    assert main(["sss", "--example", "coffee", "--size", "24", "32", "--segments", "0",
                 "-o", str(tmp_path)]) == 2
    assert "n_segments must be an integer in [1, 40], got 0" in _one_error_line(capsys)
    assert main(["colors", "--example", "coffee", "--size", "24", "32", "--palette", "300,0,0;0,0,0",
                 "-o", str(tmp_path)]) == 2
    assert "--palette values must lie in 0…255" in _one_error_line(capsys)


def test_palette_on_the_0_255_scale(tmp_path, capsys):
    assert main(["colors", "--example", "coffee", "--size", "24", "32", "--palette",
                 "40,20,10;200,130,80;240,240,230", "-o", str(tmp_path)]) == 0
    means = np.load(tmp_path / "models.npz")["means"]
    np.testing.assert_allclose(means[1], np.array([200, 130, 80]) / 255)


def test_unexpected_errors_are_one_line_and_debug_shows_the_traceback(tmp_path, capsys,
                                                                      monkeypatch):
    import unmix.spectral

    def broken(*args, **kwargs):
        raise RuntimeError("a bug")

    monkeypatch.setattr(unmix.spectral, "semantic_soft_segments", broken)
    command = ["sss", "--example", "coffee", "--size", "24", "32", "-o", str(tmp_path)]
    assert main(command) == 1
    assert "RuntimeError: a bug" in _one_error_line(capsys)
    assert main(["--debug", *command]) == 1
    assert "Traceback" in capsys.readouterr().err


def test_interrupt_is_reported(tmp_path, capsys, monkeypatch):
    import unmix.spectral

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(unmix.spectral, "semantic_soft_segments", interrupted)
    assert main(["sss", "--example", "coffee", "--size", "24", "32", "-o", str(tmp_path)]) == 130
    assert capsys.readouterr().err == "unmix: interrupted\n"
