"""The SSS feature network (spec sss.md §15) on random weights: architecture, padding, resize,
batch norm, loading and its use as semantic soft segmentation features."""

import numpy as np
import pytest

from unmix.features import feature_image

torch = pytest.importorskip("torch")

from unmix.nets import (  # noqa: E402
    SSSFeatureNet,
    load_sss_feature_net,
    sss_features,
    sss_state_dict_from_tf,
)
from unmix.nets._torch import image_tensor  # noqa: E402
from unmix.nets.sss_features import (  # noqa: E402
    BN_EPS,
    CAFFE_MEAN_BGR,
    _BatchNorm,
    _SameConv2d,
    resize_bilinear_legacy,
    same_padding,
)

F = torch.nn.functional
SHAPE = (53, 61)  # odd sides: the padded 153×161 input exercises the asymmetric pads


def _random_net(seed=0):
    """Seeded random weights, with batch-norm scales, offsets and moving averages off their
    defaults so that a loading mistake shows."""
    torch.manual_seed(seed)
    net = SSSFeatureNet()
    for module in net.modules():
        if isinstance(module, _BatchNorm):
            module.weight.data.uniform_(0.5, 1.5)
            module.bias.data.uniform_(-0.2, 0.2)
            module.running_mean.uniform_(-0.1, 0.1)
            module.running_var.uniform_(0.5, 1.5)
    return net.eval()


@pytest.fixture(scope="module")
def net():
    return _random_net()


@pytest.fixture(scope="module")
def image():
    from unmix.image import example_image

    return example_image("coffee", SHAPE)


@pytest.fixture(scope="module")
def run(net, image):
    """One forward pass on ``image``, its head a band of 7 rows at a time (the last of 4):
    the output, and what hooks saw inside.

    ``inputs`` and ``outputs``: of every hypercolumn convolution; ``bn``: the outputs of two
    batch norms (copied before the in-place ReLU that follows them).
    """
    inputs, outputs, bn, handles = {}, {}, {}, []
    for name, conv in net.hypercolumn_layers.items():
        handles.append(conv.register_forward_pre_hook(
            lambda module, args, name=name: inputs.__setitem__(name, args[0].clone())))
        handles.append(conv.register_forward_hook(
            lambda module, args, out, name=name: outputs.__setitem__(name, out)))
    for name in ("bn_conv1", "bn4b22_branch2b"):
        handles.append(getattr(net, name).register_forward_hook(
            lambda module, args, out, name=name: bn.__setitem__(name, out.clone())))
    try:
        with pytest.MonkeyPatch.context() as patch, torch.inference_mode():
            patch.setattr(sss_features, "_BAND_PIXELS", 7 * SHAPE[1] + 3)
            out = net(image_tensor(image, "cpu"))
    finally:
        for handle in handles:
            handle.remove()
    return {"out": out, "inputs": inputs, "outputs": outputs, "bn": bn}


def _bottleneck_parameters(blocks, cin, width, cout, kernel=3):
    """Parameters of a residual stage of Caffe bottlenecks: convolutions without biases, two
    learned values (γ, β) per batch-norm channel, a projection in the first block."""
    def block(cin, projection):
        convs = cin * width + width * width * kernel ** 2 + width * cout
        norms = 2 * (2 * width + cout)
        return convs + norms + (cin * cout + 2 * cout if projection else 0)

    return block(cin, True) + (blocks - 1) * block(cout, False)


def test_parameter_count_and_names(net):
    backbone = (3 * 64 * 49 + 2 * 64 + _bottleneck_parameters(3, 64, 64, 256)
                + _bottleneck_parameters(4, 256, 128, 512)
                + _bottleneck_parameters(23, 512, 256, 1024)
                + _bottleneck_parameters(3, 1024, 512, 2048))
    hypercolumn = (3 * 4 + 4) + (64 * 124 + 124) + (512 * 128 + 128) + (
        1024 * 256 * 9 + 256) + (2048 * 512 * 9 + 512)
    mlp = (1024 * 256 + 256 * 512 + 512) + (512 * 256 + 256 * 512 + 512) + (1024 * 128 + 128)
    assert (backbone, hypercolumn, mlp) == (42_500_160, 11_870_988, 787_584)
    assert sum(p.numel() for p in net.parameters()) == backbone + hypercolumn + mlp == 55_158_732
    shapes = {key: tuple(value.shape) for key, value in net.state_dict().items()}
    assert len(shapes) == 538 and not any("caffe_mean" in key for key in shapes)
    expected = {
        "conv1.weight": (64, 3, 7, 7), "bn_conv1.running_var": (64,),
        "res2a_branch1.weight": (256, 64, 1, 1), "res3a_branch2a.weight": (128, 256, 1, 1),
        "bn3b3_branch2c.bias": (512,), "res4b22_branch2b.weight": (256, 256, 3, 3),
        "res5a_branch1.weight": (2048, 1024, 1, 1), "bn5c_branch2c.running_mean": (2048,),
        "hypercolumn_layers.hc_cv_0.weight": (4, 3, 1, 1),
        "hypercolumn_layers.hc_cv_5.weight": (512, 2048, 3, 3),
        "hypercolumn_layers.hc_cv_5.bias": (512,),
        "fc1_matting.linear.fc_weights1": (256, 1024), "fc1_matting.linear.fc_weights2": (512, 256),
        "fc2_matting.linear.fc_weights1": (256, 512), "fc2_matting.linear.biases": (512,),
        "fc3_matting.linear.fc_weights1": (128, 1024), "fc3_matting.linear.fc_biases": (128,)}
    assert {key: shapes[key] for key in expected} == expected
    for absent in ("res2b_branch1.weight", "res3b4_branch2a.weight", "res4b23_branch2a.weight",
                   "res5d_branch2a.weight", "res3a_branch2a.bias", "bn_conv1.num_batches_tracked",
                   "hypercolumn_layers.hc_cv_2.weight"):
        assert absent not in shapes
    # Caffe's strides: on the 1×1 convolutions of res3a only (res4a, res5a dilate instead).
    strided = sorted(name for name, m in net.named_modules()
                     if isinstance(m, torch.nn.Conv2d) and m.stride != (1, 1))
    assert strided == ["conv1", "res3a_branch1", "res3a_branch2a"]
    dilations = {name: m.dilation[0] for name, m in net.named_modules()
                 if isinstance(m, torch.nn.Conv2d) and m.dilation != (1, 1)}
    assert dilations == {**{f"res4{b}_branch2b": 2 for b in ["a", *[f"b{i}" for i in
                                                                     range(1, 23)]]},
                         **{f"res5{b}_branch2b": 4 for b in "abc"}}


@pytest.mark.parametrize("size, kernel, stride, dilation, pads", [
    (164, 7, 2, 1, (2, 3)),  # conv1 on an even side: the odd pixel at the bottom/right
    (165, 7, 2, 1, (3, 3)),
    (82, 3, 2, 1, (0, 1)),  # pool1
    (83, 3, 2, 1, (1, 1)),
    (42, 1, 2, 1, (0, 0)),  # res3a's strided 1×1: no padding
    (21, 3, 1, 2, (2, 2)),  # res4's dilated 3×3
    (21, 3, 1, 4, (4, 4)),  # res5's
    (5, 3, 3, 1, (0, 1)),
    (4, 3, 3, 1, (1, 1)),
    (2, 7, 2, 1, (2, 3)),  # kernel larger than the input
    (9, 2, 4, 1, (0, 1)),
    (8, 2, 4, 1, (0, 0)),
])
def test_same_padding_by_hand(size, kernel, stride, dilation, pads):
    assert same_padding(size, kernel, stride, dilation) == pads


def test_same_padding_gives_tf_output_sizes():
    """TF 'SAME': ⌈n/s⌉ outputs, the smallest total pad giving them, the odd pixel after."""
    for size in range(1, 40):
        for kernel in (1, 2, 3, 5, 7):
            for stride in (1, 2, 3):
                for dilation in (1, 2):
                    before, after = same_padding(size, kernel, stride, dilation)
                    extent = (kernel - 1) * dilation + 1
                    outputs = -(-size // stride)
                    assert (size + before + after - extent) // stride + 1 == outputs
                    assert before + after == max((outputs - 1) * stride + extent - size, 0)
                    assert after - before in (0, 1)


@pytest.mark.parametrize("shape, pads", [((11, 12), (3, 3, 2, 3)), ((12, 11), (2, 3, 3, 3))])
def test_same_conv_pads_explicitly(shape, pads):
    torch.manual_seed(1)
    conv = _SameConv2d(3, 4, 7, stride=2, bias=True)
    x = torch.randn(1, 3, *shape)
    top, bottom, left, right = pads
    expected = F.conv2d(F.pad(x, (left, right, top, bottom)), conv.weight, conv.bias, 2)
    with torch.no_grad():
        got = conv(x)
    assert got.shape[2:] == (-(-shape[0] // 2), -(-shape[1] // 2))
    torch.testing.assert_close(got, expected, rtol=0, atol=0)


def _resize_reference(x, out_h, out_w):
    """TF1 legacy bilinear resize of an (h, w) array, one output pixel at a time, in float32."""
    in_h, in_w = x.shape
    scale_y, scale_x = np.float32(in_h / out_h), np.float32(in_w / out_w)
    out = np.empty((out_h, out_w), np.float32)
    for i in range(out_h):
        sy = np.float32(i) * scale_y
        y0 = int(np.floor(sy))
        y1, dy = min(y0 + 1, in_h - 1), sy - np.float32(y0)
        for j in range(out_w):
            sx = np.float32(j) * scale_x
            x0 = int(np.floor(sx))
            x1, dx = min(x0 + 1, in_w - 1), sx - np.float32(x0)
            top = x[y0, x0] + (x[y0, x1] - x[y0, x0]) * dx
            bottom = x[y1, x0] + (x[y1, x1] - x[y1, x0]) * dx
            out[i, j] = top + (bottom - top) * dy
    return out


@pytest.mark.parametrize("in_shape, out_shape", [((3, 4), (7, 9)), ((5, 7), (13, 18)),
                                                 ((4, 4), (8, 8)), ((20, 21), (153, 161))])
def test_legacy_resize_against_the_formula(in_shape, out_shape):
    x = np.random.default_rng(0).standard_normal((2, *in_shape)).astype(np.float32)
    got = resize_bilinear_legacy(torch.from_numpy(x)[None], out_shape)[0].numpy()
    for channel in range(2):
        np.testing.assert_allclose(got[channel], _resize_reference(x[channel], *out_shape),
                                   rtol=1e-6, atol=1e-6)
    half_pixel = F.interpolate(torch.from_numpy(x)[None], size=out_shape, mode="bilinear",
                               align_corners=False)[0].numpy()
    assert np.abs(got - half_pixel).max() > 0.05
    # A window of the resize is that window of the whole resize.
    region = (2, 3, out_shape[0] - 4, out_shape[1] - 5)
    window = resize_bilinear_legacy(torch.from_numpy(x)[None], out_shape, region)[0].numpy()
    np.testing.assert_array_equal(window, got[:, 2:out_shape[0] - 2, 3:out_shape[1] - 2])


def test_legacy_resize_samples_without_half_pixel_offset():
    x = torch.arange(12.0).reshape(1, 1, 3, 4)
    out = resize_bilinear_legacy(x, (6, 8))[0, 0]
    torch.testing.assert_close(out[::2, ::2], x[0, 0])  # source = dst · in/out exactly
    torch.testing.assert_close(out[-1], out[-2])  # the last row's upper neighbour is clamped


def test_output_shape_and_small_images(net, run):
    out = run["out"]
    assert out.shape == (1, 128, *SHAPE) and out.dtype == torch.float32
    assert torch.isfinite(out).all() and out.std() > 0
    with torch.inference_mode():
        square = net(torch.rand(1, 3, 64, 64, generator=torch.Generator().manual_seed(2)))
    assert square.shape == (1, 128, 64, 64) and torch.isfinite(square).all()
    with pytest.raises(ValueError, match="more than 50 pixels a side.*got 37×45"):
        net(torch.rand(1, 3, 37, 45))
    with pytest.raises(ValueError, match=r"\(N, 3, H, W\) RGB tensors, got shape \(3, 64, 64\)"):
        net(torch.rand(3, 64, 64))


def test_row_bands_give_the_whole_map(net, run):
    """The head on the whole crop at once, and the forward pass's bands of rows, agree."""
    branches = [run["outputs"][name] for name in net.hypercolumn_layers]
    with torch.inference_mode():
        whole = net.head(branches, (SHAPE[0] + 100, SHAPE[1] + 100), (50, 50, *SHAPE))
    torch.testing.assert_close(run["out"], whole, rtol=1e-6, atol=1e-6)


def test_input_normalisation_and_backbone_taps(run, image):
    """§15: BGR 0–255 minus the Caffe mean, reflect-padded by 50 (hc_cv_0 reads it / 128);
    the taps at strides 4 and 8, res5c before its ReLU."""
    bgr = image[:, :, ::-1] * 255.0 - np.array(CAFFE_MEAN_BGR)
    padded = np.pad(bgr, ((50, 50), (50, 50), (0, 0)), mode="reflect") / 128.0
    np.testing.assert_allclose(run["inputs"]["hc_cv_0"][0].permute(1, 2, 0).numpy(), padded,
                               rtol=0, atol=1e-5)
    # Padded 153×161 → conv1 77×81 → pool1 39×41 → res3a 20×21, kept by res4 and res5.
    shapes = {name: tuple(x.shape) for name, x in run["inputs"].items()}
    assert shapes == {"hc_cv_0": (1, 3, 153, 161), "hc_cv_1": (1, 64, 39, 41),
                      "hc_cv_3": (1, 512, 20, 21), "hc_cv_4": (1, 1024, 20, 21),
                      "hc_cv_5": (1, 2048, 20, 21)}
    assert run["inputs"]["hc_cv_4"].min() >= 0 and run["inputs"]["hc_cv_5"].min() < 0


def test_batch_norm_uses_the_image_statistics_in_eval_mode(net, run):
    """Inside the network in eval mode, each channel is normalised over the image: (y − β)/γ
    has zero mean and (almost, ε = 1e-3) unit biased variance."""
    assert not net.training and net.bn_mode == "batch"
    for name, out in run["bn"].items():
        bn = getattr(net, name)
        z = (out - bn.bias[:, None, None]) / bn.weight[:, None, None]
        mean, var = z.mean(dim=(0, 2, 3)), z.var(dim=(0, 2, 3), correction=0)
        torch.testing.assert_close(mean, torch.zeros_like(mean), rtol=0, atol=1e-4)
        assert var.min() > 0.9 and var.max() < 1 + 1e-4, name


def test_batch_norm_modes():
    torch.manual_seed(3)
    bn = _BatchNorm(5)
    bn.weight.data.uniform_(0.5, 1.5)
    bn.bias.data.uniform_(-1, 1)
    bn.running_mean.uniform_(-1, 1)
    bn.running_var.uniform_(0.5, 2)
    x = torch.randn(1, 5, 6, 7) * 3 + 2
    expected = F.batch_norm(x, None, None, bn.weight, bn.bias, training=True, eps=BN_EPS)
    torch.testing.assert_close(bn.eval()(x), expected)
    bn.batch_statistics = False
    stored = (x - bn.running_mean[:, None, None]) / torch.sqrt(
        bn.running_var[:, None, None] + BN_EPS) * bn.weight[:, None, None] + bn.bias[:, None, None]
    torch.testing.assert_close(bn(x), stored)
    with torch.device("meta"):
        net = SSSFeatureNet(bn_mode="running")
    norms = [m for m in net.modules() if isinstance(m, _BatchNorm)]
    assert len(norms) == 104 and not any(m.batch_statistics for m in norms)
    net.bn_mode = "batch"
    assert all(m.batch_statistics for m in norms)
    with pytest.raises(ValueError, match=r"bn_mode must be one of \('batch', 'running'\), "
                                         "got 'eval'"):
        net.bn_mode = "eval"


def test_state_dict_round_trip(tmp_path, net, run, image):
    torch.save(net.state_dict(), tmp_path / "sss.pth")
    loaded = load_sss_feature_net(tmp_path / "sss.pth")
    assert isinstance(loaded, SSSFeatureNet) and not loaded.training
    with torch.inference_mode():
        torch.testing.assert_close(loaded(image_tensor(image, "cpu")), run["out"], rtol=1e-6,
                                   atol=1e-6)
    from_dict = load_sss_feature_net(net.state_dict(), bn_mode="running")
    assert from_dict.bn_mode == "running"
    for key, value in net.state_dict().items():
        assert torch.equal(from_dict.state_dict()[key], value), key


def test_loading_names_wrong_keys_and_shapes(tmp_path, net):
    state = dict(net.state_dict())
    del state["bn5c_branch2c.running_var"]
    state["res5d_branch2a.weight"] = torch.zeros(512, 2048, 1, 1)
    state["hypercolumn_layers.hc_cv_4.weight"] = torch.zeros(256, 1024, 1, 1)
    with pytest.raises(ValueError, match=(
            r"path_or_state_dict does not fit SSSFeatureNet: missing keys "
            r"\['bn5c_branch2c.running_var'\]; unexpected keys \['res5d_branch2a.weight'\]; "
            r"hypercolumn_layers.hc_cv_4.weight: \(256, 1024, 1, 1\) in the file, "
            r"\(256, 1024, 3, 3\) expected$")):
        load_sss_feature_net(state)
    torch.save({"res5d_branch2a.weight": torch.zeros(1)}, tmp_path / "bad.pth")
    with pytest.raises(ValueError, match=r"the file .*bad.pth' does not fit SSSFeatureNet: "
                                         r"missing keys \['bn2a_branch1.bias', .*; "
                                         r"unexpected keys \['res5d_branch2a.weight'\]$"):
        load_sss_feature_net(tmp_path / "bad.pth")
    with pytest.raises(FileNotFoundError, match="missing.pth"):
        load_sss_feature_net(tmp_path / "missing.pth")
    with pytest.raises(TypeError, match="path_or_state_dict must hold a state_dict"):
        load_sss_feature_net([1, 2])


def _tf_variables(state):
    """The checkpoint's variables as §15 names them, from a state_dict (the table read
    backwards): TF leaves, kernels [kh, kw, in, out], matrices [in, out]."""
    leaves = {"running_mean": "moving_mean", "running_var": "moving_variance"}
    variables = {}
    for key, value in state.items():
        scope, leaf = key.rsplit(".", 1)
        norm = scope.split(".")[-1].startswith("bn")
        leaf = {"weight": "gamma" if norm else "weights", "bias": "beta" if norm else "biases",
                **leaves}.get(leaf, leaf)
        if value.ndim == 4:
            value = value.permute(2, 3, 1, 0)
        elif value.ndim == 2:
            value = value.T
        variables[f"{scope.replace('.', '/')}/{leaf}"] = value.numpy()
    return variables


def test_conversion_from_tf_names(net):
    state = net.state_dict()
    variables = _tf_variables(state)
    shapes = {
        "conv1/weights": (7, 7, 3, 64), "bn_conv1/gamma": (64,), "bn_conv1/moving_variance": (64,),
        "res3a_branch1/weights": (1, 1, 256, 512), "bn4b22_branch2b/beta": (256,),
        "res5c_branch2b/weights": (3, 3, 512, 512),
        "hypercolumn_layers/hc_cv_4/weights": (3, 3, 1024, 256),
        "hypercolumn_layers/hc_cv_4/biases": (256,),
        "fc1_matting/linear/fc_weights1": (1024, 256), "fc2_matting/linear/fc_weights2": (256, 512),
        "fc3_matting/linear/fc_weights1": (1024, 128), "fc3_matting/linear/fc_biases": (128,)}
    assert {name: variables[name].shape for name in shapes} == shapes
    variables["fc1_voc12_c0/weights"] = np.zeros((3, 3, 2048, 183), np.float32)  # unused ASPP
    converted = sss_state_dict_from_tf(variables)
    assert converted.keys() == state.keys()
    for key, value in state.items():
        assert torch.equal(converted[key], value), key
    variables["res2a_branch1/weights/Momentum"] = variables["res2a_branch1/weights"]
    variables["global_step"] = np.int64(0)
    with pytest.raises(ValueError, match=r"2 names that are no tensor of SSSFeatureNet: "
                                         r"\['global_step', 'res2a_branch1/weights/Momentum'\]"):
        sss_state_dict_from_tf(variables)


def test_feature_image_of_the_module(net, run, image):
    """As ``features``: the extractor passes the image in [0, 1] unnormalised (the network
    normalises it), so the result equals preprocessing the network's own output."""
    features = feature_image(net, image)
    assert features.shape == (*SHAPE, 3) and features.min() >= 0 and features.max() <= 1
    raw = run["out"][0].permute(1, 2, 0).double().numpy()
    np.testing.assert_allclose(features, feature_image(raw, image), rtol=0, atol=1e-5)
