"""#cloud-config keys of the ntp step: their validators (see guestagent/schema)."""

from .checks import Bad


def check_ntp(value, notes=None):
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise Bad("a mapping {enabled, ntp_client, servers, pools}")
    out = {}
    for field, v in value.items():
        if field == "enabled" and isinstance(v, bool):
            out[field] = v
        elif field == "ntp_client" and isinstance(v, str):
            out[field] = v.strip()
        elif field in ("servers", "pools") and isinstance(v, list) and all(
                isinstance(s, str) and s.strip() and not any(c.isspace() for c in s.strip())
                for s in v):
            out[field] = [s.strip() for s in v]
        else:
            notes.append(f"#cloud-config ntp: {str(field)[:32]} is not supported or has "
                            "the wrong type; ignored")
    return out
