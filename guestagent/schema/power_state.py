"""power_state, type-checked: mode required, delay normalised to "now" or "+N"."""

import re

from .checks import Bad

MODES = ("reboot", "poweroff", "halt")
_DELAY = re.compile(r"^\+?([0-9]+)$")


def power_state(value, notes):
    if not isinstance(value, dict):
        raise Bad("a mapping {mode, delay, message, timeout, condition}")
    mode = value.get("mode")
    if mode not in MODES:
        raise Bad("a mapping whose mode is reboot, poweroff or halt")
    out = {"mode": mode}
    for field, v in value.items():
        where = f"#cloud-config power_state: {str(field)[:32]}"
        if field == "mode":
            continue
        if field == "delay":
            delay = _delay(v)
            if delay is None:
                notes.append(f"{where} should be now, +MINUTES or a number of minutes; "
                                "using now")
            else:
                out["delay"] = delay
        elif field == "message" and isinstance(v, str):
            out["message"] = v
        elif field == "timeout" and isinstance(v, (int, float)) and not isinstance(v, bool) \
                and v >= 0:
            out["timeout"] = float(v)
        elif field == "condition" and (isinstance(v, (bool, str)) or (
                isinstance(v, list) and v and all(isinstance(a, str) for a in v))):
            out["condition"] = v
        elif field in ("message", "timeout", "condition"):
            notes.append(f"{where} has the wrong type; ignored")
        else:
            notes.append(f"{where} is not a power_state field; ignored")
    return out


def _delay(value):
    if value == "now":
        return "now"
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return f"+{value}"
    if isinstance(value, str):
        m = _DELAY.match(value.strip())
        if m:
            return f"+{int(m.group(1))}"
    return None
