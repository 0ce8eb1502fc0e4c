"""Small shared helpers: atomic writes, exact JSON and content fingerprints."""
from __future__ import annotations

import codecs
import contextlib
import gzip
import hashlib
import json
import os
import shutil
import tempfile
import unicodedata
import zlib
from pathlib import Path
from typing import Any, BinaryIO, Iterator, Tuple, Type, Union

from .errors import Errors, InputFileError

PathLike = Union[str, "os.PathLike[str]"]
#: Unicode categories that show nothing: control (NUL), format (zero-width space, soft
#: hyphen, BOM) and separator characters
_INVISIBLE_CATEGORIES = frozenset({"Cc", "Cf", "Zs", "Zl", "Zp"})


@contextlib.contextmanager
def atomic_write_path(path: PathLike) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; on success it is renamed onto ``path``,
    so readers see either the old file or the complete new one. For code (and
    libraries such as faiss) that insist on writing a file themselves."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        yield Path(tmp)
        # mkstemp makes the file private (0600); give it the usual umask permissions
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def json_dumps(data: Any) -> str:
    """JSON whose floats read back exactly (the stdlib's shortest repr). srsly's ujson
    writes and reads floats approximately: 0.3 reads back as 0.30000000000000004, and
    most floats do not survive a round trip, so saved settings (a linker's
    sparse_weight, a checkpoint's learning rate) would change or fail to compare."""
    return json.dumps(data, indent=2, ensure_ascii=False)


def write_json(path: PathLike, data: Any) -> None:
    """Write ``data`` as JSON with exact floats (not atomic: for files inside a
    directory that is itself written atomically)."""
    Path(path).write_text(json_dumps(data) + "\n", encoding="utf8")


def read_json(path: PathLike) -> Any:
    """Read a JSON file with exact floats (the stdlib parser; see :func:`json_dumps`)."""
    return json.loads(Path(path).read_text(encoding="utf8"))


def atomic_write_bytes(path: PathLike, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically (temporary file, fsync, rename)."""
    with atomic_write_path(path) as tmp, open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())


@contextlib.contextmanager
def atomic_directory(path: PathLike) -> Iterator[Path]:
    """Yield a fresh temporary directory next to ``path``; on success it replaces
    ``path`` (an existing directory is swapped out and removed only afterwards), so an
    interrupted write leaves the previous good directory in place."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent))
    try:
        yield tmp
        os.chmod(tmp, 0o777 & ~_umask())
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    old = None
    if path.exists():
        old = path.parent / f".{path.name}.old-{os.getpid()}"
        shutil.rmtree(old, ignore_errors=True)
        os.replace(path, old)
    os.replace(tmp, path)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def has_visible_text(text: str) -> bool:
    """Whether ``text`` has a character that shows: not only whitespace, control
    characters such as NUL or format characters such as the zero-width space."""
    return any(
        not char.isspace() and unicodedata.category(char) not in _INVISIBLE_CATEGORIES
        for char in text
    )


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def sha256_file(path: PathLike, *, chunk_size: int = 1 << 20) -> str:
    """Hex SHA-256 of a file's content."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(chunk_size), b""):
            h.update(chunk)
    return h.hexdigest()


def open_binary(path: Path, *, error: Type[Exception] = InputFileError) -> BinaryIO:
    """Open ``path`` for reading bytes, decompressing gzip (detected by its magic
    number, not the file name)."""
    path = Path(path)
    if not path.is_file():
        raise error(Errors.E001.format(path=path))
    with open(path, "rb") as f:
        magic = f.read(2)
    return gzip.open(path, "rb") if magic == b"\x1f\x8b" else open(path, "rb")


def iter_lines(
    path: PathLike, *, error: Type[Exception] = InputFileError
) -> Iterator[Tuple[int, str]]:
    """Yield (1-based line number, line without its line break), decoding each line
    strictly as UTF-8 (a BOM is accepted) so that a wrong encoding is reported with
    its byte offset instead of being silently replaced."""
    path = Path(path)
    offset = 0
    try:
        with open_binary(path, error=error) as f:
            for number, raw in enumerate(f, start=1):
                if number == 1 and raw.startswith(codecs.BOM_UTF8):
                    raw = raw[len(codecs.BOM_UTF8) :]
                    offset = len(codecs.BOM_UTF8)
                try:
                    line = raw.decode("utf-8")
                except UnicodeDecodeError as err:
                    raise error(
                        Errors.E003.format(path=path, encoding="UTF-8", offset=offset + err.start)
                    ) from None
                offset += len(raw)
                yield number, line.rstrip("\r\n")
    except (OSError, EOFError, zlib.error) as err:
        raise error(Errors.E005.format(path=path, error=err)) from err


def read_text(path: PathLike, *, error: Type[Exception] = InputFileError) -> str:
    """The whole file as text, decoded strictly (see :func:`iter_lines`)."""
    path = Path(path)
    try:
        with open_binary(path, error=error) as f:
            data = f.read()
    except (OSError, EOFError, zlib.error) as err:
        raise error(Errors.E005.format(path=path, error=err)) from err
    bom = len(codecs.BOM_UTF8) if data.startswith(codecs.BOM_UTF8) else 0
    try:
        return data[bom:].decode("utf-8")
    except UnicodeDecodeError as err:
        raise error(
            Errors.E003.format(path=path, encoding="UTF-8", offset=bom + err.start)
        ) from None
