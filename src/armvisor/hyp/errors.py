"""Errors KVM reports as errno, raised as an ``OSError`` subclass carrying that errno."""

from __future__ import annotations

import errno
import os


class KvmError(OSError):
    """A KVM ioctl failed with ``self.errno`` (ENOSYS, EINVAL, ENOEXEC, EINTR, ENOENT, ...)."""

    def __init__(self, code: int, detail: str = "") -> None:
        message = os.strerror(code) + (f": {detail}" if detail else "")
        super().__init__(code, message)


def einval(detail: str) -> KvmError:
    return KvmError(errno.EINVAL, detail)


def enoent(detail: str) -> KvmError:
    return KvmError(errno.ENOENT, detail)
