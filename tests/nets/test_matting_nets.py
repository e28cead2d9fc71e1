"""Matting networks: trimap encodings, the adapter, loading, scoring next to closed-form."""

import numpy as np
import pytest

from unmix.matting import closed_form_matting, trimap_from_alpha
from unmix.metrics import matting_errors

torch = pytest.importorskip("torch")

from unmix.nets import TorchMattingNet, load_matting_net  # noqa: E402
from unmix.nets.matting import encode_trimap  # noqa: E402


class TinyMatting(torch.nn.Module):
    """A small real encoder–decoder: image + C trimap channels → alpha; sides must divide by 4."""

    def __init__(self, trimap_channels=1):
        super().__init__()
        self.down = torch.nn.Conv2d(3 + trimap_channels, 8, 3, stride=4, padding=1)
        self.up = torch.nn.ConvTranspose2d(8, 1, 4, stride=4)

    def forward(self, x):
        assert x.shape[2] % 4 == 0 and x.shape[3] % 4 == 0
        return torch.sigmoid(self.up(torch.relu(self.down(x))))


class PairMatting(TinyMatting):
    def forward(self, image, trimap):
        return super().forward(torch.cat([image, trimap], dim=1))


def _net(cls=TinyMatting, channels=1):
    torch.manual_seed(0)
    return cls(channels)


@pytest.fixture
def composite(photo):
    fg, bg = photo("astronaut", (30, 42)), photo("coffee", (30, 42))
    yy, xx = np.mgrid[:30, :42]
    alpha = np.clip((12 - np.hypot(yy - 15, xx - 21)) / 4 + 0.5, 0, 1)
    image = alpha[:, :, None] * fg + (1 - alpha[:, :, None]) * bg
    return image, alpha, trimap_from_alpha(alpha, band=3)


def test_trimap_encodings(composite):
    _, _, trimap = composite
    fg, bg = trimap == 255, trimap == 0
    single, _, _ = encode_trimap(trimap)
    np.testing.assert_array_equal(single[:, :, 0], np.where(fg, 1.0, np.where(bg, 0.0, 128 / 255)))
    two, _, _ = encode_trimap(trimap, "two_channel")
    np.testing.assert_array_equal(two, np.stack([fg, bg], 2))
    one_hot, _, _ = encode_trimap(trimap, "one_hot")
    np.testing.assert_array_equal(one_hot.sum(axis=2), 1)
    np.testing.assert_array_equal(one_hot[:, :, 2], fg)
    with pytest.raises(ValueError, match="trimap_encoding must be one of"):
        encode_trimap(trimap, "three")


def test_adapter_pads_runs_and_keeps_known_pixels(composite):
    image, _, trimap = composite
    net = _net()
    alpha = TorchMattingNet(net, multiple=4)(image, trimap)
    assert alpha.shape == (30, 42) and alpha.dtype == np.float64
    assert np.all(alpha[trimap == 255] == 1) and np.all(alpha[trimap == 0] == 0)
    # The unknown pixels are the network's output on the padded input, cropped.
    x = np.concatenate([image, encode_trimap(trimap)[0]], axis=2)
    x = np.pad(x, [(0, 2), (0, 2), (0, 0)], mode="reflect")
    with torch.no_grad():
        raw = net(torch.tensor(x.transpose(2, 0, 1), dtype=torch.float32)[None])[0, 0, :30, :42]
    unknown = trimap == 128
    np.testing.assert_allclose(alpha[unknown], raw.double().numpy()[unknown], atol=1e-6)
    pair = TorchMattingNet(_net(PairMatting), inputs="pair", multiple=4)(image, trimap)
    np.testing.assert_array_equal(pair, alpha)
    free = TorchMattingNet(net, multiple=4, keep_known=False)(image, trimap)
    assert 0 <= free.min() and free.max() <= 1 and np.any(free[trimap == 0] > 0)
    with pytest.raises(ValueError, match="inputs must be 'concat' or 'pair'"):
        TorchMattingNet(net, inputs="dict")
    with pytest.raises(ValueError, match="must return 1 channel, got 8"):
        TorchMattingNet(torch.nn.Conv2d(4, 8, 1), multiple=1)(image, trimap)


@pytest.mark.filterwarnings("ignore:`torch.jit:FutureWarning")
def test_load_all_three_formats_and_score(tmp_path, composite):
    image, truth, trimap = composite
    net = _net(channels=3)
    expected = TorchMattingNet(net, trimap_encoding="one_hot", multiple=4)(image, trimap)
    torch.save(net.state_dict(), tmp_path / "net.pth")
    torch.jit.save(torch.jit.script(net), tmp_path / "net.pt")
    example = torch.zeros(1, 6, 32, 44)
    dims = {2: 4 * torch.export.Dim("h4", max=512), 3: 4 * torch.export.Dim("w4", max=512)}
    torch.export.save(torch.export.export(net, (example,), dynamic_shapes=({**dims},)),
                      tmp_path / "net.pt2")
    for path, module in (("net.pth", lambda: TinyMatting(3)), ("net.pt", None), ("net.pt2", None)):
        loaded = load_matting_net(tmp_path / path, module, device="cpu",
                                  trimap_encoding="one_hot", multiple=4)
        np.testing.assert_allclose(loaded(image, trimap), expected, atol=1e-6)
    with pytest.raises(ValueError, match=r"down.weight: \(8, 6, 3, 3\) in the file, "
                                         r"\(8, 4, 3, 3\) expected"):
        load_matting_net(tmp_path / "net.pth", TinyMatting)
    # Scored with the same metrics as closed-form matting.
    ours = matting_errors(expected, truth, trimap)
    classical = matting_errors(closed_form_matting(image, trimap), truth, trimap)
    assert set(ours) == set(classical) and all(np.isfinite(v) for v in ours.values())
