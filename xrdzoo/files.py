"""Writing files so that a crash, a kill, a full disk or a second writer never leaves a half-written or mixed file
where a whole one was, and never writes over a file the same command reads."""

from __future__ import annotations

import errno
import os
import signal
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from xrdzoo.errors import InputError, XRDZooError

# Errors that mean "this place cannot take the file": a full disk or quota, a read-only or forbidden folder.
_CANNOT_WRITE = {errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM, errno.EFBIG}


class WriteError(XRDZooError, OSError):
    """A file that cannot be written (disk full, read-only, no permission); whatever was there is left as it was."""


def refuse_overwrite(inputs, **outputs: str | os.PathLike | None) -> None:
    """A one-line :class:`~xrdzoo.errors.InputError` when an output (keyword: the option's name, e.g. ``plot``) is
    one of the ``inputs`` (the same file under any spelling or link): writing it would replace what the command
    reads. ``None`` entries are ignored."""
    for option, output in outputs.items():
        for source in (s for s in inputs if s is not None and output is not None):
            out, source = Path(output), Path(source)
            if out.samefile(source) if out.exists() and source.exists() else out.resolve() == source.resolve():
                raise InputError(f"the --{option} file {str(out)!r} is also an input of this command; writing it "
                                 "would replace that input: choose another file (nothing was written)")


@contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """A temporary path beside ``path`` to write to: renamed over ``path`` when the block ends without an error,
    removed when it raises or the process gets SIGTERM (an existing ``path`` is then left as it was).

    The temporary name is unique to this writer, so two processes writing the same ``path`` never share a file: the
    last one to finish wins, whole. A full disk or a read-only or forbidden folder becomes a one-line
    :class:`WriteError`. The file gets the permissions a newly created file gets under the user's umask."""
    path = Path(path)
    partial = None
    try:
        with _terminate_as_exit():
            path.parent.mkdir(parents=True, exist_ok=True)
            handle, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".partial", dir=path.parent)
            os.close(handle)
            partial = Path(name)
            yield partial
            os.chmod(partial, 0o666 & ~_umask())
            os.replace(partial, path)
    except OSError as error:
        if error.errno not in _CANNOT_WRITE or isinstance(error, XRDZooError):
            raise
        raise WriteError(f"cannot write {str(path)!r}: {error.strerror or error}"
                         + ("; the file that was there is left as it was" if path.exists() else "")) from error
    finally:
        if partial is not None:
            partial.unlink(missing_ok=True)


@contextmanager
def _terminate_as_exit() -> Iterator[None]:
    """Within the block, SIGTERM raises ``SystemExit(143)`` (the shell's code for it) instead of ending the process
    on the spot, so cleanup runs; only where SIGTERM still has its default action and in the main thread (a trainer's
    own handler, which waits for writes to finish, is left alone)."""
    if threading.current_thread() is not threading.main_thread() or \
            signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL:
        yield
        return

    def stop(signum, frame):
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, stop)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)


def _umask() -> int:
    """The process's umask (reading it means setting it, so it is set straight back)."""
    umask = os.umask(0o022)
    os.umask(umask)
    return umask
