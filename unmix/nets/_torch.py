"""What the torch plug-ins share: the import, devices, tensors, checked loading."""

import os
import pickle
import zipfile

import numpy as np

try:
    import torch
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise ImportError(
        "unmix.nets needs PyTorch, which is not installed; install the extra with "
        "pip install 'unmix[torch]'"
    ) from exc

#: Per-channel (mean, std) of the named input normalisations.
NORMALIZATIONS = {
    "imagenet": ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225)),
}

#: What ``load_module`` calls each archive kind in its messages.
_KINDS = {"torchscript": "TorchScript archive", "export": "torch.export archive"}
#: Shape mismatches listed in a loading error before the rest are counted.
_SHOWN_SHAPES = 5


def resolve_device(device):
    """``"cpu" | "cuda" | "cuda:N" | "auto"`` (or a ``torch.device``) as a ``torch.device``."""
    if device is None or device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        return torch.device(device)
    except (RuntimeError, TypeError):
        raise ValueError(f"device must be 'cpu', 'cuda', 'cuda:N' or 'auto', got {device!r}") from None


def module_device(module):
    """The device of a module's first parameter or buffer (CPU for a module without any)."""
    for tensor in module.parameters():
        return tensor.device
    for tensor in module.buffers():
        return tensor.device
    return torch.device("cpu")


def normalization(normalize):
    """``(mean, std)`` float64 arrays of shape (3,) for ``normalize``, or None."""
    if normalize is None:
        return None
    if isinstance(normalize, str):
        if normalize not in NORMALIZATIONS:
            raise ValueError(f"normalize must be None, one of {sorted(NORMALIZATIONS)} or a "
                             f"(mean, std) pair, got {normalize!r}")
        normalize = NORMALIZATIONS[normalize]
    try:
        mean, std = (np.broadcast_to(np.asarray(v, dtype=np.float64), (3,)) for v in normalize)
    except (TypeError, ValueError):
        raise ValueError(f"normalize must be None, one of {sorted(NORMALIZATIONS)} or a "
                         f"(mean, std) pair of scalars or RGB triples, got {normalize!r}") from None
    if not (np.all(np.isfinite(mean)) and np.all(std > 0)):
        raise ValueError(f"normalize needs finite means and positive standard deviations, "
                         f"got {normalize!r}")
    return mean, std


def image_tensor(image, device, dtype=torch.float32, normalize=None):
    """An (H, W, C) array as a (1, C, H, W) tensor, optionally normalised per RGB channel."""
    arr = np.asarray(image, dtype=np.float64)
    if normalize is not None:
        mean, std = normalize
        arr = (arr - mean) / std
    tensor = torch.from_numpy(np.array(arr.transpose(2, 0, 1), order="C"))  # a copy
    return tensor.to(device=device, dtype=dtype)[None]


def pad_to_multiple(array, multiple):
    """Reflect-pad the bottom and right of an (H, W, ...) array to multiples of ``multiple``."""
    bottom, right = -array.shape[0] % multiple, -array.shape[1] % multiple
    if not (bottom or right):
        return array
    return np.pad(array, [(0, bottom), (0, right)] + [(0, 0)] * (array.ndim - 2), mode="reflect")


def check_state_dict(module, state_dict, source):
    """Load ``state_dict`` into ``module`` strictly, or say exactly what does not match.

    Raises
    ------
    TypeError
        If ``state_dict`` is not a mapping of names to tensors.
    ValueError
        Naming the missing and unexpected keys and the tensors whose shapes
        differ, with both shapes.
    """
    if not isinstance(state_dict, dict) or not all(
            isinstance(v, torch.Tensor) for v in state_dict.values()):
        raise TypeError(f"{source} must hold a state_dict (a dict of tensors), "
                        f"got {type(state_dict).__name__}")
    expected = module.state_dict()
    missing = sorted(set(expected) - set(state_dict))
    unexpected = sorted(set(state_dict) - set(expected))
    shapes = [f"{key}: {tuple(state_dict[key].shape)} in the file, {tuple(expected[key].shape)} "
              "expected" for key in expected
              if key in state_dict and state_dict[key].shape != expected[key].shape]
    if len(shapes) > _SHOWN_SHAPES:
        shapes[_SHOWN_SHAPES:] = [f"and {len(shapes) - _SHOWN_SHAPES} more tensors of other shapes"]
    problems = ([f"missing keys {missing}"] if missing else []) + (
        [f"unexpected keys {unexpected}"] if unexpected else []) + shapes
    if problems:
        raise ValueError(f"{source} does not fit {type(module).__name__}: " + "; ".join(problems))
    module.load_state_dict(state_dict, strict=True)
    return module


def _archive_kind(path):
    """``"torchscript"`` (a ``code/`` folder), ``"export"`` (``archive_format``) or None."""
    if not zipfile.is_zipfile(path):
        return None
    with zipfile.ZipFile(path) as archive:
        names = archive.namelist()
    if any("/code/" in name for name in names):
        return "torchscript"
    if any(name.endswith("/archive_format") for name in names):
        return "export"
    return None


def load_module(path, module=None, device="auto"):
    """A torch module from an archive, or a state_dict file loaded into ``module``.

    Parameters
    ----------
    path : str or os.PathLike
        A TorchScript archive (``torch.jit.save``), an exported program
        (``torch.export.save``, a ``.pt2``), or a ``torch.save`` of a
        state_dict, read with ``weights_only=True`` (no code is unpickled).
    module : torch.nn.Module, or a callable returning one, optional
        Required for a state_dict file: the architecture (an instance, or a
        class or factory called without arguments) the weights load into,
        strictly.
    device : str or torch.device, optional
        Where the module is put (``"auto"``: CUDA when available).

    Returns
    -------
    torch.nn.Module
        On ``device``, in the mode it was saved or built in (the adapters
        set eval mode).
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"weights file not found: {path!r}")
    device = resolve_device(device)
    kind = _archive_kind(path)
    if kind is not None:
        if module is not None:
            raise ValueError(f"{path!r} is a {_KINDS[kind]}, which holds its own "
                             "architecture; pass module=None")
        if kind == "torchscript":
            net = torch.jit.load(path, map_location=device)
        else:
            net = torch.export.load(path).module()
    else:
        if module is None:
            raise ValueError(f"{path!r} is not a TorchScript archive, so it must be a state_dict; "
                             "pass module= (the nn.Module instance or class it loads into)")
        net = module if isinstance(module, torch.nn.Module) else module()
        if not isinstance(net, torch.nn.Module):
            raise TypeError(f"module must be a torch.nn.Module or a class or factory returning "
                            f"one, got {type(net).__name__}")
        state = load_weights(path, device)
        check_state_dict(net, state, f"the file {path!r}")
    return net.to(device)


def load_weights(path, device):
    """``torch.load(path, weights_only=True)``; a failure's message names the file.

    ``weights_only`` never unpickles code: a file that is not a plain
    state_dict of tensors (or not a torch file at all) is refused, with
    torch's own exception type.
    """
    try:
        return torch.load(path, map_location=device, weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError) as exc:
        raise type(exc)(f"cannot load {path!r} as torch weights (weights_only=True): {exc}") from exc


class ModuleAdapter:
    """A torch module behind a NumPy interface: device, dtype, NCHW ↔ HWC, padding, no_grad.

    Subclasses define ``__call__``; they build inputs with :meth:`_tensor`
    and turn the module's output into an (H, W, D) array with :meth:`_output`.
    """

    def __init__(self, module, *, normalize=None, multiple=1, device=None, eval=True,
                 dtype=torch.float32):
        if not isinstance(module, torch.nn.Module):
            raise TypeError(f"module must be a torch.nn.Module, got {type(module).__name__}")
        if not (isinstance(multiple, int) and multiple >= 1):
            raise ValueError(f"multiple must be a positive integer, got {multiple!r}")
        if not (isinstance(dtype, torch.dtype) and dtype.is_floating_point):
            raise TypeError(f"dtype must be a floating torch.dtype, got {dtype!r}")
        self.module = module if device is None else module.to(resolve_device(device))
        if eval:
            try:
                self.module.eval()
            except NotImplementedError:  # exported programs fix the mode when exported
                pass
        self.normalize = normalization(normalize)
        self.multiple = multiple
        self.dtype = dtype

    @property
    def device(self):
        """The device the module runs on."""
        return module_device(self.module)

    def _tensor(self, array, normalize=None):
        """(1, C, H', W') tensor of an (H, W, C) array, padded to multiples of ``multiple``."""
        return image_tensor(pad_to_multiple(array, self.multiple), self.device, self.dtype,
                            normalize)

    def _run(self, *inputs):
        with torch.inference_mode():
            return self.module(*inputs)

    def _output(self, out, padded_shape, shape, name):
        """The module's (1, D, h, w) output as an (H, W, D) float64 array.

        Outputs of another size than the padded input (strided networks) are
        resized to it bilinearly; the padding is then cropped off.
        """
        if isinstance(out, torch.Tensor) and out.ndim == 3:
            out = out[None]
        if not (isinstance(out, torch.Tensor) and out.ndim == 4 and out.shape[0] == 1
                and out.is_floating_point()):
            got = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
            raise ValueError(f"{name} must return a float tensor of shape (1, D, h, w), got {got}")
        if tuple(out.shape[2:]) != tuple(padded_shape):
            out = torch.nn.functional.interpolate(out, size=tuple(padded_shape), mode="bilinear",
                                                  align_corners=False)
        out = out[0, :, :shape[0], :shape[1]].permute(1, 2, 0).to("cpu", torch.float64).numpy()
        if not np.isfinite(out).all():
            raise ValueError(f"{name} returned {np.count_nonzero(~np.isfinite(out))} NaN or "
                             "infinite values")
        return out
