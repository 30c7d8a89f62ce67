"""Secret key files in ``var/keys``: made once, mode 0600 whatever the umask, never replaced.

    >>> import tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "k.key"
    >>> first = load_or_create_secret(p, lambda: b"a" * 32)
    >>> load_or_create_secret(p, lambda: b"b" * 32) == first, oct(p.stat().st_mode & 0o777)
    (True, '0o600')
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path


def load_or_create_secret(path: Path, make: Callable[[], bytes]) -> bytes:
    """The bytes in ``path``; when there is no such file, ``make()``'s bytes are written there first, mode 0600.
    Never replaces a file another process created meanwhile: the secret is written aside (a name of this
    process's own) and hard-linked into place, and whichever link came first is the key everyone reads.
    The folder must exist (the callers make it private first). Raises OSError as the file system does."""
    if not path.exists():
        tmp = path.with_name(f"{path.name}.{os.getpid()}.part")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        os.fchmod(fd, 0o600)  # O_CREAT's mode is filtered by the umask
        with os.fdopen(fd, "wb") as fh:
            fh.write(make())
        try:
            os.link(tmp, path)
        except FileExistsError:
            pass
        finally:
            tmp.unlink()
    return path.read_bytes()
