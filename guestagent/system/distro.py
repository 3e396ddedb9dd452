"""What distro the root holds, and its customary cloud account."""

# (os-release ID, or an ID_LIKE entry) -> the account its cloud images use
_CLOUD_USERS = {
    "debian": "debian",
    "ubuntu": "ubuntu",
    "fedora": "fedora",
    "centos": "centos",
    "rhel": "cloud-user",
    "rocky": "rocky",
    "almalinux": "almalinux",
    "amzn": "ec2-user",
    "opensuse-leap": "opensuse",
    "sles": "sles",
    "alpine": "alpine",
    "arch": "arch",
}
FALLBACK_USER = "cloud-user"


def os_release(system):
    """Parse /etc/os-release (or /usr/lib/os-release) inside the root."""
    for path in ("/etc/os-release", "/usr/lib/os-release"):
        try:
            text = system.read_text(path)
        except OSError:
            continue
        out = {}
        for line in text.splitlines():
            key, sep, value = line.partition("=")
            if sep and key.strip() and not key.startswith("#"):
                out[key.strip()] = value.strip().strip("\"'")
        return out
    return {}


def default_user(system, configured=""):
    if configured:
        return configured
    rel = os_release(system)
    ids = [rel.get("ID", "")] + rel.get("ID_LIKE", "").split()
    if rel.get("ID") in _CLOUD_USERS:
        return _CLOUD_USERS[rel["ID"]]
    for i in ids:
        if i in _CLOUD_USERS:
            return _CLOUD_USERS[i]
    return FALLBACK_USER


def family(system):
    """'debian', 'rhel' or '' - for checks and defaults that differ by family."""
    rel = os_release(system)
    ids = {rel.get("ID", "")} | set(rel.get("ID_LIKE", "").split())
    if ids & {"debian", "ubuntu"}:
        return "debian"
    if ids & {"rhel", "fedora", "centos", "rocky", "almalinux", "amzn"}:
        return "rhel"
    return ""
