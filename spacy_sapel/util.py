"""Small shared helpers: atomic writes, exact JSON, input files read strictly, the
error for a malformed input line and the check of integer options."""
from __future__ import annotations

import codecs
import contextlib
import errno
import gzip
import json
import numbers
import os
import re
import shutil
import tempfile
import time
import unicodedata
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, Iterator, List, Optional, Sequence, Tuple, Type, Union

from .errors import Errors, InputFileError, OutputError, SapelError

PathLike = Union[str, "os.PathLike[str]"]
#: A malformed line is quoted in its error message up to this many characters
MAX_LINE_IN_MESSAGE = 300
#: Unicode categories that show nothing: control (NUL), format (zero-width space, soft
#: hyphen, BOM) and separator characters
_INVISIBLE_CATEGORIES = frozenset({"Cc", "Cf", "Zs", "Zl", "Zp"})


@contextlib.contextmanager
def atomic_write_path(path: PathLike) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; on success it is renamed onto ``path``,
    so readers see either the old file or the complete new one. For code (and
    libraries such as faiss) that insist on writing a file themselves. A ``path`` that
    is a directory is refused before anything is written; a full disk or a read-only
    location is reported as :class:`OutputError`."""
    path = check_output_file(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as err:
        raise _output_error(path, err) from err
    os.close(fd)
    try:
        yield Path(tmp)
        # mkstemp makes the file private (0600); give it the usual umask permissions
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
    except BaseException as err:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        problem = _write_problem(err)
        if problem is not None:
            raise OutputError(Errors.E426.format(path=path, problem=problem, error=err)) from err
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


@dataclass(frozen=True)
class DirMarker:
    """How a writer recognises a directory it wrote earlier (and so may replace): one
    of ``files`` exists in it, and when ``keys`` are given that file is a JSON object
    holding all of them (a format marker such as ``format_version``)."""

    what: str
    files: Tuple[str, ...]
    keys: Tuple[str, ...] = ()

    def matches(self, path: Path) -> bool:
        for name in self.files:
            file = path / name
            if not file.is_file():
                continue
            if not self.keys:
                return True
            try:
                data = read_json(file)
            except (OSError, ValueError):
                continue
            if isinstance(data, dict) and all(key in data for key in self.keys):
                return True
        return False


#: The names atomic_directory gives its temporary and swapped-out directories next to
#: ``path``; both carry the writing process's PID.
_TMP_PATTERN = r"\.{name}\.(?P<pid>[0-9]+)-[A-Za-z0-9_]{{8}}\.tmp"
_OLD_PATTERN = r"\.{name}\.old-(?P<pid>[0-9]+)"
#: Temporary directories of spacy_sapel versions before the PID was in the name: those
#: exist only while a directory is being written (seconds to minutes), so one unchanged
#: for an hour belongs to a killed write.
_LEGACY_TMP_PATTERN = r"\.{name}\.[a-z0-9_]{{8}}\.tmp"
_LEGACY_TMP_AGE_S = 3600


def check_output_dir(
    path: PathLike,
    marker: DirMarker,
    *,
    overwrite: bool = False,
    inputs: Sequence[PathLike] = (),
    needed_bytes: int = 0,
) -> Path:
    """Refuse, before any work, an output directory that cannot or must not be
    replaced: the current directory or one above it, one that is or contains an
    input, an existing file, a non-empty directory that ``marker`` does not recognise
    (unless ``overwrite``), an unwritable location, or (roughly) too little free disk
    space for ``needed_bytes``. Returns the absolute output path."""
    path = Path(path)
    target = Path(os.path.abspath(path))
    try:
        cwd: Optional[Path] = Path.cwd()
    except OSError:  # the current directory was deleted
        cwd = None
    if not target.name or (cwd is not None and (target == cwd or target in cwd.parents)):
        raise OutputError(Errors.E420.format(path=path, what=marker.what))
    for source in inputs:
        source = Path(os.path.abspath(source))
        if source == target or target in source.parents:
            raise OutputError(Errors.E421.format(path=path, input=source))
    if path.is_symlink():
        raise OutputError(
            Errors.E424.format(path=path, problem="it is a symbolic link; give the real path")
        )
    if path.exists():
        if not path.is_dir():
            raise OutputError(Errors.E422.format(path=path, what=marker.what))
        if not overwrite and not marker.matches(path):
            content = sorted(child.name for child in path.iterdir())
            if content:
                shown = ", ".join(content[:5]) + (", ..." if len(content) > 5 else "")
                raise OutputError(Errors.E423.format(path=path, what=marker.what, content=shown))
    parent = _existing_ancestor(target.parent)
    if not parent.is_dir():
        raise OutputError(Errors.E424.format(path=path, problem=f"{parent} is not a directory"))
    if not os.access(parent, os.W_OK | os.X_OK):
        raise OutputError(Errors.E424.format(path=path, problem=f"{parent} is not writable"))
    if needed_bytes > 0:
        free = shutil.disk_usage(parent).free
        if free < needed_bytes:
            raise OutputError(
                Errors.E425.format(
                    path=path, needed=format_bytes(needed_bytes), free=format_bytes(free)
                )
            )
    return target


def check_output_file(path: PathLike, *, inputs: Sequence[PathLike] = ()) -> Path:
    """Refuse, before any work, an output file path that is an existing directory, is
    one of the inputs, or lies in an unwritable location."""
    path = Path(path)
    target = Path(os.path.abspath(path))
    if path.is_dir():
        raise OutputError(Errors.E427.format(path=path))
    for source in inputs:
        if Path(os.path.abspath(source)) == target:
            raise OutputError(Errors.E421.format(path=path, input=source))
    parent = _existing_ancestor(target.parent)
    if not parent.is_dir() or not os.access(parent, os.W_OK | os.X_OK):
        raise OutputError(Errors.E424.format(path=path, problem=f"{parent} is not writable"))
    return target


@contextlib.contextmanager
def atomic_directory(
    path: PathLike, marker: DirMarker, *, overwrite: bool = False
) -> Iterator[Path]:
    """Yield a fresh temporary directory next to ``path``; on success it replaces
    ``path``, so an interrupted write leaves the previous good directory in place.
    An existing ``path`` is replaced only if it is empty or ``marker`` recognises it
    as written by this writer (or with ``overwrite``); see :func:`check_output_dir`.
    A successful write removes what killed earlier writes of ``path`` left behind
    (``.NAME.PID-XXXXXXXX.tmp``, ``.NAME.old-PID`` of processes no longer running,
    and an earlier version's ``.NAME.XXXXXXXX.tmp`` unchanged for an hour).
    A full disk or a read-only location is reported as :class:`OutputError`."""
    path = Path(os.path.abspath(path))
    check_output_dir(path, marker, overwrite=overwrite)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(
            tempfile.mkdtemp(prefix=f".{path.name}.{os.getpid()}-", suffix=".tmp", dir=path.parent)
        )
    except OSError as err:
        raise _output_error(path, err) from err
    try:
        yield tmp
        os.chmod(tmp, 0o777 & ~_umask())
    except BaseException as err:
        shutil.rmtree(tmp, ignore_errors=True)
        # a nested writer's report names its temporary path: name ``path`` instead
        cause = err.__cause__ if isinstance(err, OutputError) and err.__cause__ else err
        problem = _write_problem(cause)
        if problem is not None:
            raise OutputError(Errors.E426.format(path=path, problem=problem, error=cause)) from cause
        raise
    old = None
    if path.exists():
        old = path.parent / f".{path.name}.old-{os.getpid()}"
        shutil.rmtree(old, ignore_errors=True)
        os.replace(path, old)
    os.replace(tmp, path)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
    remove_leftovers(path)


def remove_leftovers(path: PathLike) -> List[Path]:
    """Remove the temporary and swapped-out directories that killed writes of ``path``
    left next to it: only names that match :func:`atomic_directory`'s exactly and whose
    process is no longer running (or, for an earlier version's names without a PID,
    that were not modified for an hour). Returns what was removed."""
    path = Path(path)
    name = re.escape(path.name)
    patterns = [re.compile(p.format(name=name)) for p in (_TMP_PATTERN, _OLD_PATTERN)]
    legacy = re.compile(_LEGACY_TMP_PATTERN.format(name=name))
    removed = []
    for candidate in path.parent.iterdir():
        if candidate.is_symlink() or not candidate.is_dir():
            continue
        match = next((m for m in (p.fullmatch(candidate.name) for p in patterns) if m), None)
        if match is not None:
            dead = not _process_alive(int(match.group("pid")))
        else:
            dead = bool(legacy.fullmatch(candidate.name)) and (
                time.time() - candidate.stat().st_mtime > _LEGACY_TMP_AGE_S
            )
        if dead:
            shutil.rmtree(candidate, ignore_errors=True)
            removed.append(candidate)
    return removed


def format_bytes(count: float) -> str:
    """``1536`` -> ``"1.5 KB"``."""
    for unit in ("bytes", "KB", "MB", "GB"):
        if count < 1024 or unit == "GB":
            return f"{count:.0f} {unit}" if unit == "bytes" else f"{count:.1f} {unit}"
        count /= 1024
    return f"{count:.1f} GB"


def _process_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError):
        return True
    return True


def _existing_ancestor(path: Path) -> Path:
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


#: errno values that only a write gives, and what they say about the output location
#: (permission errors are not among them: reading an input can give those too).
_DISK_ERRNOS = {errno.ENOSPC: "the disk is full", errno.EDQUOT: "the disk quota is exceeded",
                errno.EROFS: "the file system is read-only"}
#: The same, as libraries that wrap OS errors in their own exceptions word them
#: (safetensors' SafetensorError, faiss's RuntimeError).
_DISK_MESSAGES = {"No space left on device": "the disk is full",
                  "Disk quota exceeded": "the disk quota is exceeded",
                  "Read-only file system": "the file system is read-only"}


def _write_problem(err: BaseException) -> Optional[str]:
    """What a failed write says about the output location (disk full, read-only), or
    None for other errors."""
    if isinstance(err, OSError) and err.errno in _DISK_ERRNOS:
        return _DISK_ERRNOS[err.errno]
    if isinstance(err, (OSError, RuntimeError)) or type(err).__name__ == "SafetensorError":
        text = str(err)
        return next((p for m, p in _DISK_MESSAGES.items() if m in text), None)
    return None


def _output_error(path: Path, err: OSError) -> OutputError:
    problem = _write_problem(err) or "it cannot be created"
    return OutputError(Errors.E426.format(path=path, problem=problem, error=err))


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


def open_binary(path: Path, *, error: Type[InputFileError] = InputFileError) -> BinaryIO:
    """Open ``path`` for reading bytes, decompressing gzip (detected by its magic
    number, not the file name)."""
    path = Path(path)
    if not path.is_file():
        raise error(Errors.E001.format(path=path))
    with open(path, "rb") as f:
        magic = f.read(2)
    return gzip.open(path, "rb") if magic == b"\x1f\x8b" else open(path, "rb")


def iter_lines(
    path: PathLike, *, error: Type[InputFileError] = InputFileError
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


def read_text(path: PathLike, *, error: Type[InputFileError] = InputFileError) -> str:
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


def malformed_line(
    path: Any,
    line: Union[int, str],
    problem: str,
    expected: str,
    text: str,
    *,
    error: Type[InputFileError] = InputFileError,
) -> InputFileError:
    """The error for a line of an input file that cannot be read (E002): the file, the
    line number, what is wrong, what was expected and the line (cut at
    :data:`MAX_LINE_IN_MESSAGE` characters). Every reader reports its bad lines so."""
    if len(text) > MAX_LINE_IN_MESSAGE:
        text = text[:MAX_LINE_IN_MESSAGE] + "..."
    return error(
        Errors.E002.format(path=path, line=line, problem=problem, expected=expected, text=text)
    )


def check_int_option(name: str, value: Any, *, minimum: int = 1) -> int:
    """``value`` as an int if it is an integer >= ``minimum`` (a bool is not), else the
    E702 error naming the option ``name``: the one check of every integer option."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        raise SapelError(Errors.E702.format(name=name, value=value, minimum=minimum))
    return int(value)
