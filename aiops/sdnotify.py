"""systemd's readiness protocol (``Type=notify``) in a dozen lines of stdlib, so no extra dependency.

systemd passes a unix datagram socket in ``NOTIFY_SOCKET`` (the command line reads it and hands it to the
daemon); writing ``READY=1`` there tells it the daemon is serving, ``RELOADING=1``/``STOPPING=1`` report the
other transitions. Outside systemd (no socket) it does nothing.
"""

from __future__ import annotations

import socket


def notify(state: str, path: str | None) -> bool:
    """Send one state line to the socket at ``path``; True if systemd was told.

    >>> notify("READY=1", None)
    False
    """
    if not path:
        return False
    if path.startswith("@"):
        path = "\0" + path[1:]  # abstract namespace
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
            sock.connect(path)
            sock.sendall(state.encode())
    except OSError:
        return False
    return True
