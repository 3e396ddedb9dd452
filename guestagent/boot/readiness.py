"""Tell systemd a stage's unit is up (sd_notify READY=1) while its work goes on.

The local and network units are ``Type=notify``: sshd and logins are ordered
after them, and wait only until this says READY, not until the process
exits.  A stage says it as soon as everything a login needs is done, while
the background steps (growroot: growpart and resize2fs) finish on their own.
Outside systemd (no $NOTIFY_SOCKET: SysV, rc.local, a shell) it does nothing.
"""

import os

_sent = False


def awaited():
    """Whether systemd waits for this process's READY=1 and it is not sent yet."""
    address = os.environ.get("NOTIFY_SOCKET", "")
    return not _sent and bool(address) and address[0] in "/@"


def ready(status=""):
    """Send READY=1 (and STATUS=) once; later calls do nothing.  Returns
    whether it was sent; never raises (a boot goes on whatever the socket does)."""
    global _sent
    if _sent:
        return False
    _sent = True
    address = os.environ.get("NOTIFY_SOCKET", "")
    if not address or address[0] not in "/@":
        return False
    if address[0] == "@":  # an abstract socket
        address = "\0" + address[1:]
    import socket
    message = "READY=1" + (f"\nSTATUS={status}" if status else "")
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as s:
            s.connect(address)
            s.sendall(message.encode())
    except OSError:
        return False
    return True
