"""Torch feature extractors: the adapter, loading, and semantic soft segmentation with a module."""

import numpy as np
import pytest

from unmix.features import feature_image

torch = pytest.importorskip("torch")

from unmix.nets import TorchFeatureExtractor, load_feature_extractor  # noqa: E402


class Embedding(torch.nn.Module):
    """A small real feature network: two convolutions, optionally strided."""

    def __init__(self, depth=8, stride=1):
        super().__init__()
        self.conv1 = torch.nn.Conv2d(3, 16, 3, stride=stride, padding=1)
        self.conv2 = torch.nn.Conv2d(16, depth, 3, padding=1)

    def forward(self, x):
        return self.conv2(torch.relu(self.conv1(x)))


def _net(**kwargs):
    torch.manual_seed(0)
    return Embedding(**kwargs).eval()


def test_adapter_is_the_module_in_hwc_float64(photo):
    image = photo("coffee", (20, 28))
    net = _net()
    features = TorchFeatureExtractor(net, normalize="imagenet")(image)
    mean, std = np.array([0.485, 0.456, 0.406]), np.array([0.229, 0.224, 0.225])
    x = torch.tensor(((image - mean) / std).transpose(2, 0, 1), dtype=torch.float32)[None]
    with torch.no_grad():
        expected = net(x)[0].permute(1, 2, 0).double().numpy()
    assert features.shape == (20, 28, 8) and features.dtype == np.float64
    np.testing.assert_allclose(features, expected, atol=1e-6)


def test_strided_outputs_are_resized_and_padding_cropped(photo):
    image = photo("coffee", (21, 30))
    features = TorchFeatureExtractor(_net(stride=2), multiple=4)(image)
    assert features.shape == (21, 30, 8) and np.isfinite(features).all()
    with pytest.raises(ValueError, match=r"must return a float tensor of shape \(1, D, h, w\)"):
        TorchFeatureExtractor(torch.nn.Flatten())(image)
    with pytest.raises(TypeError, match="module must be a torch.nn.Module, got function"):
        TorchFeatureExtractor(lambda x: x)
    with pytest.raises(ValueError, match="normalize must be None"):
        TorchFeatureExtractor(_net(), normalize="coco")


def test_modules_are_accepted_as_features(photo):
    image = photo("coffee", (24, 32))
    net = _net()
    direct = feature_image(net, image)
    np.testing.assert_array_equal(direct, feature_image(TorchFeatureExtractor(net), image))
    assert direct.shape == (24, 32, 3) and 0 <= direct.min() and direct.max() <= 1


@pytest.mark.slow
def test_semantic_soft_segments_with_a_module(photo):
    from unmix import semantic_soft_segments

    layers = semantic_soft_segments(photo("coffee", (32, 40)), features=_net(), n_segments=3)
    assert layers.alphas.shape[:2] == (32, 40)
    np.testing.assert_allclose(layers.alphas.sum(axis=2), 1, atol=1e-4)


@pytest.mark.filterwarnings("ignore:`torch.jit:FutureWarning")
def test_load_torchscript_and_state_dict(tmp_path, photo):
    image = photo("coffee", (20, 28))
    net = _net()
    expected = TorchFeatureExtractor(net)(image)
    torch.jit.save(torch.jit.script(net), tmp_path / "net.pt")
    torch.save(net.state_dict(), tmp_path / "net.pth")
    scripted = load_feature_extractor(tmp_path / "net.pt", device="cpu")
    np.testing.assert_allclose(scripted(image), expected, atol=1e-6)
    for module in (Embedding, Embedding()):  # a class or an instance
        loaded = load_feature_extractor(tmp_path / "net.pth", module, device="cpu")
        np.testing.assert_array_equal(loaded(image), expected)
    with pytest.raises(ValueError, match="pass module="):
        load_feature_extractor(tmp_path / "net.pth")
    with pytest.raises(ValueError, match="TorchScript archive, which holds its own architecture"):
        load_feature_extractor(tmp_path / "net.pt", Embedding)
    with pytest.raises(ValueError, match=r"conv2.weight: \(8, 16, 3, 3\) in the file, "
                                         r"\(4, 16, 3, 3\) expected"):
        load_feature_extractor(tmp_path / "net.pth", Embedding(depth=4))
