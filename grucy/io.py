"""Checkpoints: one ``.npz`` holding the parameters, the optimizer state and a JSON header.

Layout of the archive (no pickles anywhere; loaded with ``allow_pickle=False``):

    __grucy__                 uint8 bytes of a UTF-8 JSON header:
                              {"format": "grucy-checkpoint", "version": 1 or 2,
                               "model": {"class": "SequenceModel", "config": {...},
                                         "dropout_rng": null | its generator's state},
                               "params": [names], "optimizer": null | {"type", "hyperparams",
                               "step", "buffers": {name: [buffer names]}}, "metadata": {...}}
    param/<name>              one array per model parameter
    optim/<name>/<buffer>     one array per optimizer buffer

load reads nothing but these members, each named in the header (any other is refused
unread), and each array only after its npy header shows the shape and dtype the model
expects: a small deflated file cannot make it decompress or allocate more than the model it
describes. Nor can a small file describe a large model: before one is built, every member
must be able to hold the values its npy header claims in the bytes the file really stores
for it, and the members the header lists must hold as many values as the model has.

The file is written to a temporary file in the target directory, flushed, fsync'ed and
moved into place with ``os.replace``, so a crash never leaves a half-written checkpoint
under the final name; the directory is fsync'ed after the rename so the new name survives a
power cut too.

A file is written at the lowest format version that holds it, as numpy writes ``.npy``
files: version 2 added a GRU's ``"bias": false`` to the model config and Adam's
``"amsgrad": true`` to the optimizer's hyper-parameters, and each is stored only with that
value (absent, it means the other, as it did in version 1). A grucy from before them, which
refuses keys it does not know, still reads every file that does not use them, and refuses one
that does as a newer version ("upgrade grucy"), not as a malformed file.
"""
import json
import math
import os
import re
import secrets
import stat
import zipfile
import zlib
from collections import namedtuple
from contextlib import contextmanager

import numpy as np

from ._checks import check_path
from .init import GRU_KEYS, LINEAR_KEYS, part
from .layers import GRU, Linear
from .models import SequenceModel
from .optim import Optimizer

__all__ = ["save", "load", "replacing", "Checkpoint", "FORMAT", "VERSION", "MODEL_CLASSES"]

FORMAT = "grucy-checkpoint"
VERSION = 2
_HEADER = "__grucy__"
MODEL_CLASSES = {"GRU": GRU, "Linear": Linear, "SequenceModel": SequenceModel}

Checkpoint = namedtuple("Checkpoint", ["model", "optimizer_state", "metadata"])
Checkpoint.__doc__ = """Result of :func:`load`: ``model`` (a new GRU/Linear/SequenceModel, or the one
passed in), ``optimizer_state`` (for ``Optimizer.load_state_dict``, or None) and the user
``metadata`` dict."""


def _model_class_name(model):
    for name, cls in MODEL_CLASSES.items():
        if type(model) is cls:
            return name
    raise TypeError(f"model must be one of {sorted(MODEL_CLASSES)}, got {type(model).__name__}")


def _dropout_generator(model):
    """The numpy Generator that draws the model's dropout masks (a GRU's own, or a
    SequenceModel's GRU's), or None (Linear). Saved so that a resumed run draws the masks
    the uninterrupted one would have."""
    gru = model.gru if isinstance(model, SequenceModel) else model
    return gru._dropout_rng if isinstance(gru, GRU) else None


# Deep enough for any record of a run; shallow enough that load's JSON decoder, which
# recurses once a level, reads it back from any stack short of ~880 frames of the default
# recursion limit of 1000. (json.dumps wrote 5000 levels under a raised limit, and load,
# at the default one, could not read them back.)
_METADATA_DEPTH = 100


def _check_metadata(metadata):
    """Refuse metadata save would write but load could not give back as it was, before
    anything is encoded or written (TypeError or ValueError naming where in ``metadata``):

    - a dict key JSON would change: json.dumps writes 3 (or True) as "3" ("true");
    - nesting deeper than _METADATA_DEPTH (or a container holding itself), which load could
      not parse back, and which past the recursion limit raised RecursionError out of save;
    - more values than the header load reads could hold: each costs JSON two bytes or more,
      and a list holding another twice, 40 levels down, is 2**40 lists to json.dumps.

    A walk with its own stack, not recursion: the value it checks may be 100000 levels deep.
    """
    limit = _Archive._HEADER_BYTES // 2
    count = 0
    stack = [(metadata, 1, "metadata")]
    while stack:
        value, depth, where = stack.pop()
        if depth > _METADATA_DEPTH:
            raise ValueError(f"metadata must nest at most {_METADATA_DEPTH} levels, got more at "
                             f"{where:.200}... (or a dict or list contains itself): load "
                             "could not read it back")
        items = value.items() if isinstance(value, dict) else enumerate(value)
        count += len(value)
        if count > limit:
            raise ValueError(f"metadata is too large: over {limit} values, more than the JSON "
                             f"header load reads, at most {_Archive._HEADER_BYTES} bytes, can "
                             "hold; keep large data in a file of its own")
        for key, item in items:
            if isinstance(value, dict) and not isinstance(key, str):
                raise TypeError(f"{where} keys must be str (JSON would store {key!r} as a "
                                f"string), got {key!r}")
            if isinstance(item, (dict, list, tuple)):
                stack.append((item, depth + 1, f"{where}[{key!r}]"))


def _numpy_number(o):
    """json.dumps' ``default``: a numpy number or bool (np.argmin's int64, a float32 metric) as
    the Python one of the same value, which is what load gives back; anything else refused."""
    # numbers only (kinds bool, int, uint, float): a datetime64[ns]'s or timedelta64[ns]'s
    # item() is an int of nanoseconds, not its value
    value = o.item() if isinstance(o, np.generic) and o.dtype.kind in "biuf" else None
    if isinstance(value, (bool, int, float)):       # not a long double's
        return value
    raise TypeError(f"Object of type {type(o).__name__} is not JSON serializable")


def _versioned(config, key, version_1_meaning):
    """``config`` as stored, and the format version it needs: a key version 2 added is kept
    only where its value is not what its absence meant in version 1."""
    if key in config and config[key] == version_1_meaning:
        return {k: v for k, v in config.items() if k != key}, 1
    return config, 2 if key in config else 1


def save(path, model, optimizer=None, metadata=None):
    """Write ``model`` (+ optional ``optimizer`` state and JSON-able ``metadata`` dict) to ``path``.

    Args:
        path: destination file name (str or os.PathLike; a NUL byte in it is a ValueError);
            ".npz" is *not* appended.
        model: a grucy GRU, Linear or SequenceModel.
        optimizer: a grucy optimizer over this model's parameters, or None.
        metadata: dict of JSON-serialisable values (epoch, scheduler state, metrics...), or None;
            its dicts' keys must be str (JSON would turn 3 into "3"); tuples load as lists,
            numpy numbers and bools as Python's of the same value (np.int64(3) as 3).
            At most 100 levels deep, and at most 64 MiB as JSON with the rest of the header
            (what load reads): metadata that load could not give back is refused before
            the file is touched.
    Returns:
        the path written (str).
    """
    path = check_path(path)       # a str: a bytes path-like's too, as returned
    # "runs/new/" (a directory to be) was written as a file named "new"
    if not path or os.path.isdir(path) or path.endswith(tuple(filter(None, (os.sep, os.altsep)))):
        raise ValueError(f"path must name a file, got {path!r}")
    cls_name = _model_class_name(model)
    if optimizer is not None and not isinstance(optimizer, Optimizer):
        raise TypeError(f"optimizer must be a grucy Optimizer or None, got {type(optimizer).__name__}")
    if metadata is None:
        metadata = {}
    if not isinstance(metadata, dict):
        raise TypeError(f"metadata must be a dict, got {type(metadata).__name__}")
    _check_metadata(metadata)
    try:
        json.dumps(metadata, allow_nan=True, default=_numpy_number)
    except (TypeError, ValueError) as e:
        raise TypeError(f"metadata must be JSON-serialisable: {e}") from None

    params = model.parameters()
    arrays = {f"param/{k}": v for k, v in params.items()}
    gen = _dropout_generator(model)
    config, version = _versioned(model.config(), "bias", True)
    header = {"format": FORMAT, "version": version,
              "model": {"class": cls_name, "config": config,
                        # a dict of ints (PCG64's 128-bit state): JSON keeps them exact
                        "dropout_rng": None if gen is None else gen.bit_generator.state},
              "params": list(params), "optimizer": None, "metadata": metadata}
    if optimizer is not None:
        sd = optimizer.state_dict()
        if set(sd["state"]) - set(params):
            raise ValueError("optimizer must be built on this model's parameters; it holds "
                             f"{sorted(set(sd['state']) - set(params))[:3]}... that the model lacks")
        buffers = {}
        for name, bufs in sd["state"].items():
            buffers[name] = sorted(bufs)
            # in that sorted order, the order load restores them in: a resumed optimizer's
            # next checkpoint is then byte for byte an uninterrupted one's (RMSprop with
            # momentum made square_avg, then momentum_buffer, and they swapped on resume)
            for b in buffers[name]:
                arr = bufs[b]
                # same names but other shapes (another model's optimizer): a checkpoint
                # that load_state_dict would refuse at resume time
                if isinstance(arr, np.ndarray) and arr.shape != params[name].shape:
                    raise ValueError(f"optimizer must be built on this model's parameters; its "
                                     f"{b!r} for {name!r} has shape {arr.shape}, the parameter "
                                     f"{params[name].shape}")
                # numbers only, as load reads them: np.savez pickles anything else (a step
                # count past 2**64 is a Python object to numpy), and the checkpoint it wrote
                # over the old one was one load refuses
                dtype = np.asarray(arr).dtype
                if dtype.kind not in "iuf":
                    what = (f"an int of {arr.bit_length()} bits" if type(arr) is int
                            else f"of dtype {dtype}")
                    raise ValueError(f"optimizer state must be numbers np.savez writes without "
                                     f"pickling; its {b!r} for {name!r} is {what}")
                arrays[f"optim/{name}/{b}"] = arr
        hyperparams, opt_version = _versioned(sd["hyperparams"], "amsgrad", False)
        header["version"] = max(version, opt_version)
        header["optimizer"] = {"type": sd["type"], "hyperparams": hyperparams,
                               "step": sd["step"], "buffers": buffers}
    encoded = json.dumps(header, default=_numpy_number).encode("utf-8")
    if len(encoded) > _Archive._HEADER_BYTES:
        # written, it would replace the checkpoint at path with one load refuses; the user's
        # metadata is all of the header that can grow
        raise ValueError(f"metadata is too large: the checkpoint's JSON header would be "
                         f"{len(encoded)} bytes, load reads at most {_Archive._HEADER_BYTES}; "
                         "keep large data in a file of its own")
    arrays[_HEADER] = np.frombuffer(encoded, dtype=np.uint8)

    with replacing(path) as f:
        np.savez(f, **arrays)
    return path


@contextmanager
def replacing(path, mode="wb"):
    """Yield a new file (``mode`` "wb" or "w") that replaces ``path`` when the block ends
    without an error: written beside it, fsync'ed, renamed over it, then the directory
    fsync'ed, so a crash or power cut leaves the old file or the new one, never a torn one.
    On any error the temporary file is removed and ``path`` is untouched. A symlink's target
    is replaced, not the link. A target that exists and is not a regular file is refused (a
    ValueError): the rename would put a file in place of a device node (save("/dev/full")
    as root did), a pipe or a directory. (save uses it; so do the runner's outputs.)
    ``path`` is a str or os.PathLike; one with a NUL byte is a ValueError, as in save."""
    target = os.path.realpath(check_path(path))
    try:
        kind = os.stat(target).st_mode
    except OSError:         # no such file yet (written), or an error _create_temp names
        kind = None
    if kind is not None and not stat.S_ISREG(kind):
        raise ValueError(f"path {os.fspath(path)!r} is not a regular file but "
                         f"{_not_regular(kind)}: writing would replace it with a regular file")
    directory = os.path.dirname(target)
    fd, tmp = _create_temp(directory, os.path.basename(target))
    try:
        with os.fdopen(fd, mode) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        try:
            os.replace(tmp, target)
        except OSError as e:
            # its message names the hidden temporary file as well (a name one character
            # too long fails only here: the temporary name is cut to fit)
            raise type(e)(e.errno, f"cannot write {os.fspath(path)!r}: {e.strerror}") from None
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    _fsync_directory(directory)


def _create_temp(directory, base):
    """Open a new temporary file beside the target: (fd, name).

    Not tempfile.mkstemp: it creates mode 0600, so every checkpoint would end up private
    whatever the umask (unreadable to a group sharing a results directory).  Mode 0666 here
    is filtered by the umask like any file np.save writes.
    """
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
    for _ in range(100):
        # base cut to 200: the 18 characters added to a name near the 255 limit failed
        # ("File name too long") where writing the file itself would not
        tmp = os.path.join(directory, f".{base[:200]}.{secrets.token_hex(6)}.tmp")
        try:
            return os.open(tmp, flags, 0o666), tmp
        except FileExistsError:
            continue
        except FileNotFoundError:     # OSError's own message names the hidden temporary file
            raise FileNotFoundError(f"cannot write {base!r}: directory {directory!r} does not "
                                    "exist") from None
        except OSError as e:          # the same: name the file the caller asked for
            raise type(e)(e.errno, f"cannot write {os.path.join(directory, base)!r}: "
                                   f"{e.strerror}") from None
    raise FileExistsError(f"could not create a temporary file in {directory!r}")


def _fsync_directory(directory):
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:  # e.g. Windows cannot open a directory; its rename is durable enough
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _not_regular(mode):
    """What a file of st_mode ``mode`` is, when it is not a regular file."""
    for test, what in ((stat.S_ISDIR, "a directory"), (stat.S_ISFIFO, "a pipe (FIFO)"),
                       (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"),
                       (stat.S_ISSOCK, "a socket")):
        if test(mode):
            return what
    return "not a file"


def _open_regular_file(path):
    """The regular file ``path`` open for binary reading, and its size; a ValueError naming
    anything else.

    Opened without blocking, then checked on the open descriptor (no window in which the
    name could be swapped): open() of a FIFO blocked until a writer came, forever if none
    did, and /dev/zero was read until MemoryError. Left open for the zip to read member by
    member, not read whole: a 1 GiB file that was no checkpoint (a dataset's .npz given by
    mistake) took 1 GiB of memory and 6 s before it was refused.
    """
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0)
    try:
        fd = os.open(path, flags)
    except FileNotFoundError:
        raise FileNotFoundError(f"no checkpoint at {path!r}") from None
    except OSError:
        if os.path.isdir(path):     # Windows cannot open a directory: as save says, then
            raise ValueError(f"path must name a file, got {path!r}, a directory") from None
        raise
    try:
        st = os.fstat(fd)
        mode = st.st_mode
        if stat.S_ISDIR(mode):
            raise ValueError(f"path must name a file, got {path!r}, a directory")
        if not stat.S_ISREG(mode):
            raise ValueError(f"path {path!r} is not a regular file but {_not_regular(mode)}: "
                             "load reads a checkpoint from a file")
        if getattr(os, "O_NONBLOCK", 0):
            os.set_blocking(fd, True)
        return os.fdopen(fd, "rb"), st.st_size   # (refuses a directory's: checked first)
    except BaseException:
        os.close(fd)
        raise


class _Archive:
    """A checkpoint's zip, read member by member: each array's npy header is read and
    checked before its data, so that nothing is decompressed or allocated beyond what the
    caller expects (a small deflated file can declare gigabytes)."""

    # what save writes; anything else is refused unread (a member the loader would
    # never look at could still be gigabytes of deflated zeros)
    _NAMES = re.compile(r"(__grucy__|param/[^/]+|optim/[^/]+/[^/]+)\.npy")
    _HEADER_BYTES = 64 << 20        # the JSON header: names, sizes and the user's metadata
    _DEFLATE_RATIO = 1032           # deflate's most output per input byte (zlib's documented limit)

    def __init__(self, path):
        self.path = path
        self.file, size = _open_regular_file(path)
        self.zip = None
        try:
            self._check(size)
        except BaseException:
            self.close()
            raise

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def close(self):
        if self.zip is not None:
            self.zip.close()
        self.file.close()

    def _check(self, size):
        """The zip's members, checked as a whole (names, sizes) against the file's size."""
        path = self.path
        if not zipfile.is_zipfile(self.file):
            raise ValueError(f"{path!r} is not a grucy checkpoint: not an .npz archive "
                             "(truncated or a different file type)")
        with self._reading():
            self.zip = zipfile.ZipFile(self.file)
            infos = self.zip.infolist()
        names = [i.filename for i in infos]
        if _HEADER + ".npy" not in names:
            raise ValueError(f"{path!r} is not a grucy checkpoint: an .npz without a "
                             f"{_HEADER!r} header (keys: {[n[:-4] for n in names[:5]]})")
        for name in names:
            if not self._NAMES.fullmatch(name):
                raise ValueError(f"{path!r} is not a grucy checkpoint: it holds an unexpected "
                                 f"member {name!r:.80}")
        if len(set(names)) != len(names):
            raise ValueError(f"{path!r} is a damaged checkpoint: a member name appears twice")
        # each member's bytes are its own in a zip that is not forged: members whose stored
        # (compressed) sizes add up past the file overlap or claim bytes that are not there,
        # and size() bounds what a member can hold by its stored size
        stored = sum(i.compress_size for i in infos)
        if stored > size:
            raise ValueError(f"{path!r} is a damaged checkpoint: its members' stored sizes add "
                             f"up to {stored} bytes, more than the file's {size}")
        self.infos = {i.filename[:-4]: i for i in infos}
        self.keys = set(self.infos)

    @contextmanager
    def _reading(self):
        """Every way zipfile, zlib and numpy's npy reader fail on damaged bytes, as one
        ValueError naming the file."""
        try:
            yield
        except MemoryError as e:
            raise ValueError(f"{self.path!r} is a damaged or foreign checkpoint: a stored array "
                             f"claims more memory than there is ({e})") from None
        except (zipfile.BadZipFile, zlib.error, EOFError, OSError, KeyError, ValueError,
                NotImplementedError, RuntimeError, SyntaxError) as e:
            # NotImplementedError: an unknown compression method or zip version; RuntimeError:
            # the encrypted flag; ValueError and SyntaxError: a malformed npy header
            raise ValueError(f"{self.path!r} is a damaged (truncated?) checkpoint: "
                             f"{type(e).__name__}: {e}") from None

    def _open(self, key):
        """(open member, shape, fortran_order, dtype), the member positioned at its data."""
        f = self.zip.open(self.infos[key])
        version = np.lib.format.read_magic(f)
        if version == (1, 0):
            shape, fortran, dtype = np.lib.format.read_array_header_1_0(f)
        elif version == (2, 0):
            shape, fortran, dtype = np.lib.format.read_array_header_2_0(f)
        else:
            raise ValueError(f"npy format version {version}")
        if dtype.hasobject:
            raise ValueError(f"member {key!r} holds Python objects (dtype {dtype}); "
                             "grucy checkpoints never do")
        if any(n < 0 for n in shape):      # numpy's npy reader lets (-5,) through
            raise ValueError(f"member {key!r} has a negative dimension: shape {shape}")
        return f, shape, fortran, dtype

    def size(self, key):
        """How many values a stored array holds, from its npy header; a ValueError when the
        bytes the file stores for it could not hold them. The header's shape alone is a
        claim: a header-only member of an 821-byte file claimed 2**40 values, enough for
        load to build a 5 GB model before it found the parameters missing."""
        info = self.infos[key]
        with self._reading():
            f, shape, _, dtype = self._open(key)
            with f:
                start = f.tell()                   # where the data begins, past the npy header
        nbytes = math.prod(shape) * dtype.itemsize   # Python ints: np.prod's int64 wraps round
        if info.compress_type == zipfile.ZIP_STORED:
            room = min(info.compress_size, info.file_size) - start
            what = f"its {max(room, 0)} stored bytes hold"
        elif info.compress_type == zipfile.ZIP_DEFLATED:
            # file_size is the zip's claim too; zipfile stops reading there, deflate at 1032:1
            room = min(info.compress_size * self._DEFLATE_RATIO, info.file_size) - start
            what = f"its {info.compress_size} deflated bytes can hold ({max(room, 0)} at most)"
        else:
            # np.savez writes no other method, and bzip2's or lzma's output has no useful bound
            raise ValueError(f"{self.path!r} is not a grucy checkpoint: member {key!r} is "
                             f"compressed with zip method {info.compress_type}; grucy "
                             "checkpoints are stored or deflated (np.savez, np.savez_compressed)")
        if nbytes > room:
            raise ValueError(f"{self.path!r} is a damaged or forged checkpoint: member {key!r} "
                             f"claims {dtype}{shape} ({nbytes} bytes), more than {what}")
        return nbytes // dtype.itemsize if dtype.itemsize else 0

    def array(self, key, check=None):
        """The stored array ``key``; ``check(shape, dtype)`` runs on its npy header first and
        raises if it is not what the caller expects."""
        with self._reading():
            f, shape, fortran, dtype = self._open(key)
        with f:
            if check is not None:
                check(shape, dtype)
            with self._reading():
                nbytes = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
                data = f.read(nbytes)
                if len(data) != nbytes:
                    raise EOFError(f"member {key!r} ends after {len(data)} of {nbytes} bytes")
                return np.frombuffer(data, dtype).reshape(shape, order="F" if fortran else "C").copy()

    def header(self):
        """The checked JSON header (a dict)."""
        path = self.path

        def small_bytes(shape, dtype):
            if dtype != np.uint8 or len(shape) != 1 or shape[0] > self._HEADER_BYTES:
                raise ValueError(f"{path!r} has an unreadable grucy header: {dtype}{shape}, "
                                 f"expected uint8 bytes (at most {self._HEADER_BYTES})")
        raw = self.array(_HEADER, small_bytes).tobytes()
        try:
            header = json.loads(raw.decode("utf-8"))
        except (ValueError, RecursionError) as e:
            # ValueError: UnicodeDecodeError, json's JSONDecodeError, and int()'s for a number
            # past Python's 4300 digits (sys.set_int_max_str_digits), which named no file;
            # RecursionError: JSON nested deeper than the decoder's recursion limit
            raise ValueError(f"{path!r} has an unreadable grucy header: {e}") from None
        if not isinstance(header, dict) or header.get("format") != FORMAT:
            raise ValueError(f"{path!r} is not a grucy checkpoint (header format "
                             f"{header.get('format') if isinstance(header, dict) else header!r})")
        version = header.get("version")
        if type(version) is not int or version > VERSION or version < 1:
            raise ValueError(f"{path!r} has checkpoint format version {version!r}; this grucy "
                             f"reads versions 1..{VERSION} (upgrade grucy)")
        return header


def _parameter_count(cls_name, config):
    """How many values the parameters of MODEL_CLASSES[cls_name](**config) hold, without
    building it; None when a size is missing or not an int (the constructor names it)."""
    sizes = {}
    for key, default in (("input_size", None), ("hidden_size", None), ("num_layers", 1),
                         ("output_size", None), ("in_features", None), ("out_features", None)):
        value = config.get(key, default)
        if isinstance(value, int) and not isinstance(value, bool):
            sizes[key] = max(value, 0)             # a negative size: the constructor's error
    if cls_name == "Linear":
        if "in_features" not in sizes or "out_features" not in sizes:
            return None
        return sizes["out_features"] * (sizes["in_features"] + 1)
    if not {"input_size", "hidden_size", "num_layers"} <= set(sizes):
        return None
    I, H, L = sizes["input_size"], sizes["hidden_size"], sizes["num_layers"]
    D = 2 if config.get("bidirectional") is True else 1
    b = 0 if config.get("bias") is False else 2
    # per layer and direction 3H x (I_k + H) weights and b 3H biases; I_k = D*H above layer 0
    count = D * 3 * H * (I + H + b) + max(L - 1, 0) * D * 3 * H * (D * H + H + b)
    if cls_name == "SequenceModel":
        if "output_size" not in sizes:
            return None
        count += sizes["output_size"] * (D * H + 1)
    return count


def load(path, model=None):
    """Read a checkpoint written by :func:`save`.

    Args:
        path: the file (str or os.PathLike; a NUL byte in it is a ValueError).
        model: None to build a new model from the stored config, or an existing model of the
            same class and config to load the weights into (a mismatch is a ValueError;
            ``seed``, ``init`` and ``dropout`` may differ: they do not shape the weights).
    Returns:
        :class:`Checkpoint` (model, optimizer_state or None, metadata dict).  Resume with
        ``opt = grucy.optim.Adam(ckpt.model.parameters()); opt.load_state_dict(ckpt.optimizer_state)``.
    """
    with _Archive(check_path(path)) as archive:
        return _load(archive, path, model)


def _load(archive, path, model):
    """load's work, on the open archive."""
    header = archive.header()
    try:
        cls_name = header["model"]["class"]
        config = header["model"]["config"]
        names = header["params"]
    except (KeyError, TypeError):
        raise ValueError(f"{path!r}: grucy header lacks model class/config/params") from None
    if not isinstance(cls_name, str) or cls_name not in MODEL_CLASSES:   # a list: unhashable
        raise ValueError(f"{path!r} stores an unknown model class {cls_name!r}")
    if not isinstance(config, dict):
        raise ValueError(f"{path!r}: grucy header's model config is a {type(config).__name__}, "
                         "not a dict")
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        raise ValueError(f"{path!r}: grucy header's params must be a list of names, got {names!r:.80}")
    opt = header.get("optimizer")
    if opt is not None and (
            not isinstance(opt, dict) or not {"type", "hyperparams", "step", "buffers"} <= set(opt)
            or not isinstance(opt["buffers"], dict)
            or not all(isinstance(b, list) and all(isinstance(k, str) for k in b)
                       for b in opt["buffers"].values())):
        raise ValueError(f"{path!r}: grucy header has a malformed optimizer section")
    # the members the header lists, the only ones load reads or counts
    listed = {f"param/{n}" for n in names} | {
        f"optim/{n}/{b}" for n, bufs in (opt["buffers"].items() if opt else ()) for b in bufs}
    if model is None:
        # Sizes first, from the header alone: the constructor allocates and initialises what
        # they ask for, so a damaged one (num_layers 10**9, hidden_size 10**5) hung building
        # layers or took gigabytes before the stored arrays were compared with the model's.
        # Bounded by every value the archive's arrays hold (optimizer buffers too, their
        # npy headers' claims checked against the bytes stored for them): what load builds
        # is then no larger than what it would read anyway, and a parameter missing from an
        # archive that has others to spare is still named as missing below. Every member's
        # claim is checked, the listed ones' counted: a spare one the header does not name
        # (refused below, once the names are compared) let a 239 KiB file build a model of
        # 48 million values first.
        need = _parameter_count(cls_name, config)
        if need is not None:
            sizes = {k: archive.size(k) for k in archive.keys if k != _HEADER}
            have = sum(n for k, n in sizes.items() if k in listed)
            if need > have:
                raise ValueError(f"{path!r}: stored model config is invalid: it needs {need} "
                                 f"parameter values, the archive holds {have} in all")
        keys = {"GRU": GRU_KEYS, "Linear": LINEAR_KEYS}.get(cls_name)
        if keys and isinstance(config.get("init"), dict):
            # a layer saved before it refused init keys it does not draw stored them; they
            # never had an effect, and the weights come from the file anyway
            config = {**config, "init": part(config["init"], keys)}
        try:
            model = MODEL_CLASSES[cls_name](**config)
        except (TypeError, ValueError, MemoryError) as e:    # MemoryError: absurd sizes
            raise ValueError(f"{path!r}: stored model config is invalid: {e}") from None
    else:
        if type(model).__name__ != cls_name or type(model) is not MODEL_CLASSES.get(type(model).__name__):
            raise ValueError(f"model is a {type(model).__name__} but {path!r} stores a {cls_name}")
        mine = model.config()
        if cls_name in ("GRU", "SequenceModel"):
            config = {"bias": True, **config}   # saved before GRUs had the choice: with biases
        diff = sorted(k for k in set(mine) | set(config)
                      if k not in ("seed", "init", "dropout") and mine.get(k) != config.get(k))
        if diff:
            raise ValueError(f"model does not match {path!r}: " +
                             ", ".join(f"{k} {mine.get(k)!r} != stored {config.get(k)!r}" for k in diff))
    expected = model.parameters()
    if list(expected) != list(names):
        odd = sorted(set(expected) ^ set(names))
        raise ValueError(f"{path!r}: stored parameter names do not match the model: " +
                         (f"{odd}" if odd else f"stored in the order {names}, the model's is "
                          f"{list(expected)}"))
    unlisted = sorted(archive.keys - listed - {_HEADER})
    if unlisted:
        # never read: a parameter or optimizer buffer in it would be silently not restored
        raise ValueError(f"{path!r} is a damaged checkpoint: member {unlisted[0]!r:.80} is not "
                         "listed in its header")

    # Everything is read and checked before the model changes: a refused checkpoint leaves a
    # model passed in as it was.
    params = {}
    for name, arr in expected.items():
        key = f"param/{name}"
        if key not in archive.keys:
            raise ValueError(f"{path!r} is missing parameter {name!r}")

        def like_the_model(shape, dtype, name=name, arr=arr):
            if shape != arr.shape or dtype != arr.dtype:
                raise ValueError(f"{path!r}: parameter {name!r} is {dtype}{shape}, "
                                 f"the model expects {arr.dtype}{arr.shape}")
        params[name] = archive.array(key, like_the_model)
    gen = _dropout_generator(model)
    rng_state = header["model"].get("dropout_rng")     # absent from older checkpoints
    if gen is not None and rng_state is not None:
        # checked on a copy: numpy refuses a malformed state
        try:
            np.random.Generator(type(gen.bit_generator)()).bit_generator.state = rng_state
        except (TypeError, ValueError, KeyError, OverflowError) as e:
            raise ValueError(f"{path!r}: stored dropout generator state is invalid: "
                             f"{e!r:.120}") from None

    opt_state = None
    if opt is not None:
        state = {}
        for name, bufs in opt["buffers"].items():
            state[name] = {}
            for b in bufs:
                key = f"optim/{name}/{b}"
                if key not in archive.keys:
                    raise ValueError(f"{path!r} is missing optimizer buffer {key!r}")

                def scalar_or_like(shape, dtype, key=key, name=name):
                    # a count (0-d) or a buffer shaped like its parameter (load_state_dict
                    # checks which, by name); bounded before it is read
                    want = expected[name].shape if name in expected else None
                    if shape != () and shape != want:
                        raise ValueError(f"{path!r}: optimizer buffer {key!r} has shape {shape}, "
                                         f"expected () or the parameter's {want}")
                    # and numbers, as load_state_dict takes: the shape alone bounds nothing
                    # when the dtype is a void of any size ('|V1073741824' made a count of
                    # () a GiB, read from a 1 MiB file)
                    if dtype.kind not in "iuf":
                        raise ValueError(f"{path!r}: optimizer buffer {key!r} has dtype "
                                         f"{dtype}, expected integers or floats")
                state[name][b] = archive.array(key, scalar_or_like)
        opt_state = {"type": opt["type"], "hyperparams": opt["hyperparams"], "step": opt["step"],
                     "state": state}
    metadata = header.get("metadata", {})
    if not isinstance(metadata, dict):
        raise ValueError(f"{path!r}: grucy header metadata is a {type(metadata).__name__}, not a dict")
    model.set_parameters(params)
    if gen is not None and rng_state is not None:
        gen.bit_generator.state = rng_state
    return Checkpoint(model, opt_state, metadata)
