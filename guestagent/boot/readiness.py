"""Tell whoever waits for a stage that what a login needs is done, while its work goes on.

A stage says it as soon as everything a login needs is done (users, keys,
host name, the flags the later units read), while the background steps
(growroot: growpart and resize2fs) finish on their own.  Who hears it:

- in the boot's one process (`guestagent --boot`, boot_process.py), the
  stage's unit, through the hook that process sets (its answer on
  boot/signals.py's channel): the unit ends, and sshd starts;
- under `guestagent --once` run by a ``Type=notify`` unit, systemd
  (sd_notify READY=1);
- outside systemd (no $NOTIFY_SOCKET: SysV, rc.local, a shell), no one.

The boot's process also tells systemd, once, that it is up itself
(`process_ready`), as a ``Type=notify`` unit.
"""

import os

_sent = False
_hook = None


def awaited():
    """Whether someone waits for this stage's readiness and it is not said
    yet: the stage's unit (through the hook) or systemd ($NOTIFY_SOCKET)."""
    if _sent:
        return False
    if _hook is not None:
        return True
    address = os.environ.get("NOTIFY_SOCKET", "")
    return bool(address) and address[0] in "/@"


def handled_by(hook):
    """From now on a stage's readiness goes to ``hook(code)`` (None: to
    systemd again), and the next `ready` is heard: one stage after another."""
    global _hook, _sent
    _hook, _sent = hook, False


def ready(status="", code=0):
    """Say it once per stage; later calls do nothing.  ``code``: the stage's
    exit code as far as it is known (a step that failed before it says 1).
    Returns whether it was sent; never raises (a boot goes on whatever the
    socket does)."""
    global _sent
    if _sent:
        return False
    _sent = True
    if _hook is not None:
        try:
            _hook(code)
        except OSError:
            return False
        return True
    return notify("READY=1" + (f"\nSTATUS={status}" if status else ""))


def process_ready(status):
    """The boot's process is up: READY=1 to systemd, then $NOTIFY_SOCKET is
    kept from the commands it starts (a user's script that calls
    systemd-notify must not speak for the agent's unit)."""
    sent = notify(f"READY=1\nSTATUS={status}")
    global _socket
    _socket = os.environ.pop("NOTIFY_SOCKET", "") or _socket
    return sent


_socket = ""


def notify(message):
    """sd_notify(``message``); False outside systemd or when the socket fails."""
    address = os.environ.get("NOTIFY_SOCKET", "") or _socket
    if not address or address[0] not in "/@":
        return False
    if address[0] == "@":  # an abstract socket
        address = "\0" + address[1:]
    import socket
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as s:
            s.connect(address)
            s.sendall(message.encode())
    except OSError:
        return False
    return True
