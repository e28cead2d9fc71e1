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
    assert main(["eigenvectors", str(tmp_path / "bad.png"), "-o", str(tmp_path)]) == 2
    assert "cannot read" in capsys.readouterr().err
    assert main(["eigenvectors", str(tmp_path / "missing.png"), "-o", str(tmp_path)]) == 2
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
