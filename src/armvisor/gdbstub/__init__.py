"""gdb remote stub: RSP framing (:mod:`.rsp`), the packet table (:mod:`.commands`), the target
description and register file (:mod:`.registers`), breakpoints and watchpoints
(:mod:`.breakpoints`), debug-exit classification (:mod:`.guest_debug`), monitor commands
(:mod:`.monitor`) and run control (:mod:`.server`). Built on :mod:`armvisor.kvm` only."""

from armvisor.gdbstub.server import serve_gdb

__all__ = ["serve_gdb"]
