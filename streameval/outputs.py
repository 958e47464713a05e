"""Output safety: which paths a run may write, and how the report file is written.

Every check here runs before the first byte is written, so a refused path is never touched:

- the log and the report must not be an input of the run (a video, a reference image, an OpenFace CSV), nor each
  other;
- an existing output must be a regular file (a symlink to one is followed): a device node (``/dev/null``,
  ``/dev/full``), a FIFO, a socket or a directory is refused (exit 2), and so is a standard stream of the process
  (``/dev/stdout``, ``/proc/self/fd/1``, or the file stdout is redirected to). Use ``--log -`` or ``--no-log``
  for standard output or no log;
- ``--report -`` writes the report to standard output (after the run), so it cannot share it with ``--log -``;
- the folder that will hold an output must be writable (checked on the nearest folder that exists: a read-only
  file system is refused at the start, exit 5, not after the run).

The report is written atomically: a uniquely named temporary file in the target folder, then ``os.replace``, so
a reader never sees half a report and two runs never share a temporary file.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import stat
import sys
import tempfile
from collections.abc import Iterable
from pathlib import Path

from streameval.errors import SinkError, UsageError
from streameval.sinks.base import Record

log = logging.getLogger(__name__)

STDOUT = "-"


def _kind(mode: int) -> str | None:
    """What a non-regular file is, for the message; None for a regular file."""
    if stat.S_ISREG(mode):
        return None
    if stat.S_ISDIR(mode):
        return "a directory"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    if stat.S_ISFIFO(mode):
        return "a pipe (FIFO)"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "not a regular file"


def _same_file(a: str, b: str) -> bool:
    """True when two paths name one file: by inode when both exist, else by their resolved path."""
    try:
        return os.path.samefile(a, b)
    except OSError:
        return os.path.realpath(a) == os.path.realpath(b)


_STREAM_PATHS = ("/dev/stdin", "/dev/stdout", "/dev/stderr", "/dev/fd/", "/proc/self/fd/", "/proc/thread-self/fd/")


def _standard_stream(path: str) -> str | None:
    """'standard output' (or error) when ``path`` names one of this process's streams, whatever it points to.

    ``/dev/stdout`` redirected to a file resolves to that regular file: replacing it would destroy what the
    shell captured there (the log, by default). Caught by name and by inode.
    """
    text = os.path.abspath(path)
    if text.startswith(_STREAM_PATHS) or text in {p.rstrip("/") for p in _STREAM_PATHS}:
        return "a standard stream of this process"
    try:
        target = os.stat(path)
    except OSError:
        return None
    for fd, name in ((1, "standard output"), (2, "standard error")):
        try:
            stream = os.fstat(fd)
        except OSError:
            continue
        if (stream.st_dev, stream.st_ino) == (target.st_dev, target.st_ino):
            return name
    return None


def _nearest_existing_dir(path: Path) -> Path:
    parent = path.absolute().parent
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    return parent


def check_output(option: str, path: str, inputs: Iterable[tuple[str, str]]) -> None:
    """Refuse ``path`` for ``option`` (``--log``, ``--report``) before anything is written; see the module doc."""
    for name, spec in inputs:
        if _same_file(path, spec):
            raise UsageError(f"{option} {path}: is the {name} ({spec}); refusing to overwrite an input")
    stream = _standard_stream(path)
    if stream is not None:
        hint = " (use --log - for standard output)" if option == "--log" else ""
        hint = " (use --report - for standard output)" if option == "--report" else hint
        raise UsageError(f"{option} {path}: is {stream}, not a regular file{hint}")
    try:
        info = os.stat(path)  # follows symlinks: a link to /dev/stdout is a device
    except FileNotFoundError:
        info = None
    except OSError as exc:
        raise UsageError(f"{option} {path}: cannot be used ({exc.strerror or exc})") from None
    if info is not None:
        kind = _kind(info.st_mode)
        if kind is not None:
            hint = " (use --log - for standard output, --no-log for none)" if option == "--log" else ""
            raise UsageError(f"{option} {path}: is {kind}, not a regular file{hint}")
    folder = _nearest_existing_dir(Path(path))
    if not folder.is_dir():
        raise UsageError(f"{option} {path}: {folder} is not a directory")
    # os.access honours read-only mounts even for root (EROFS), which is what it is here for.
    if not os.access(folder, os.W_OK | os.X_OK):
        raise SinkError(f"{option} {path}: cannot write in {folder} (read-only or no permission)")


def check_outputs(log_path: str | None, report_path: str | None, inputs: Iterable[tuple[str, str]]) -> None:
    """Check the log and report of one run against the inputs and each other (UsageError, exit 2)."""
    local_inputs = [(name, _local_path(spec)) for name, spec in inputs if spec and _is_local(spec)]
    if report_path == STDOUT and log_path == STDOUT:
        raise UsageError("--report - and --log - both name standard output: give one of them a file (or --no-log)")
    if log_path is not None and log_path != STDOUT:
        check_output("--log", log_path, local_inputs)
    if report_path is not None and report_path != STDOUT:
        check_output("--report", report_path, local_inputs)
        if log_path is not None and log_path != STDOUT and _same_file(log_path, report_path):
            raise UsageError(f"--log and --report both name {report_path}: the report would replace every record")


def check_frames_output(
    path: str, log_path: str | None, report_path: str | None, inputs: Iterable[tuple[str, str]]
) -> None:
    """Check ``--frames`` like the report (not an input, not a device or standard stream, a writable folder) and
    against the run's log and report (UsageError, exit 2)."""
    if path == STDOUT:
        raise UsageError("--frames -: the per-frame table needs a file (standard output carries the records)")
    check_output("--frames", path, [(name, _local_path(spec)) for name, spec in inputs if spec and _is_local(spec)])
    for option, other in (("--log", log_path), ("--report", report_path)):
        if other is not None and other != STDOUT and _same_file(path, other):
            raise UsageError(f"--frames and {option} both name {path}: give the per-frame table its own file")


def _is_local(spec: str) -> bool:
    return spec.startswith("file://") or (spec != STDOUT and "://" not in spec)


def _local_path(spec: str) -> str:
    return spec[len("file://") :] if spec.startswith("file://") else spec


def report_text(payload: Record) -> str:
    """The report file's text: indented JSON (the encoding itself belongs to the sinks)."""
    from streameval.sinks.encoding import dumps

    return dumps(payload, indent=2) + "\n"


def write_report(path: str, payload: Record) -> None:
    """Write the report to ``path`` atomically, or to standard output for ``-``; SinkError (exit 5) on failure."""
    text = report_text(payload)
    if path == STDOUT:
        try:
            if sys.stdout is None or sys.stdout.closed:
                raise SinkError("--report -: standard output is closed")
            sys.stdout.write(text)
            sys.stdout.flush()
        except (OSError, ValueError) as exc:
            raise SinkError(f"--report -: cannot write to standard output: {exc}") from exc
        return
    write_file_atomic(Path(path), text)


def write_file_atomic(path: Path, text: str | Iterable[str]) -> None:
    """Temp file in the target's own folder (same file system, unique name), fsync, then ``os.replace``.

    ``text`` is the whole content, or its pieces in order (a long table need not be held in memory at once).

    A symlink to a regular file is followed (the link stays, its target is replaced); anything else that is not
    a regular file is never replaced.
    """
    target = Path(os.path.realpath(path))
    try:
        info = os.stat(target)
    except FileNotFoundError:
        info = None
    except OSError as exc:
        raise SinkError(f"cannot write {path}: {exc.strerror or exc}") from exc
    if info is not None and (kind := _kind(info.st_mode)) is not None:
        raise SinkError(f"cannot write {path}: it is {kind}, not a regular file")
    tmp: str | None = None
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            for piece in (text,) if isinstance(text, str) else text:
                fh.write(piece)
            fh.flush()
            os.fsync(fh.fileno())
        if info is not None:
            os.chmod(tmp, stat.S_IMODE(info.st_mode))  # replacing a file keeps its permissions
        else:
            umask = os.umask(0)
            os.umask(umask)
            os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600; a new report gets the usual mode
        os.replace(tmp, target)
        tmp = None
    except OSError as exc:
        reason = "disk full" if exc.errno == errno.ENOSPC else (exc.strerror or str(exc))
        raise SinkError(f"cannot write {path}: {reason}") from exc
    finally:
        if tmp is not None:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
