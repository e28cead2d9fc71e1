"""torch is optional: unmix and its classical paths never import it (these run without torch)."""

import subprocess
import sys


def _run(code):
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)


def test_classical_paths_never_import_torch():
    out = _run("import sys, numpy as np, unmix, unmix.nets\n"
               "from unmix.features import feature_image\n"
               "image = np.random.default_rng(0).random((16, 16, 3))\n"
               "feature_image(None, image); feature_image(lambda im: im, image)\n"
               "print('torch' in sys.modules)")
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "False"


def test_missing_torch_names_the_extra():
    out = _run("import sys; sys.modules['torch'] = None\n"
               "from unmix.nets import load_fscs")
    assert out.returncode != 0
    assert "ImportError: unmix.nets needs PyTorch" in out.stderr
    assert "pip install 'unmix[torch]'" in out.stderr
