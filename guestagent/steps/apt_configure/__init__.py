"""#cloud-config apt (and the old apt_sources, apt_proxy, apt_mirror keys):
repositories, keys, proxy and apt.conf, once per instance, in the final
stage before the packages step.

- `sources`: each entry's `source` line (substitutions: sources.py) goes to
  /etc/apt/sources.list.d/<name or filename>.list; entries naming the same
  file add up unless `append: false`.  An inline armored `key` is written to
  /etc/apt/keyrings/<name>.asc and the line gets `signed-by=` that keyring
  (or the keyring replaces $KEY_FILE); a `keyid` is fetched from `keyserver`
  (keyserver.ubuntu.com by default) with gpg, which needs the network: a
  failure names the key and the reason, and the other sources still land.
  A key with no source line is trusted for all sources (trusted.gpg.d).
- `primary`/`security` (or `sources_list`): the image's sources.list is
  rewritten for those mirrors unless `preserve_sources_list: true`.  Unlike
  cloud-init, with none of these the image's own sources.list is kept as it
  is (cloud-init re-renders it from its template to the same mirrors).
- `conf` -> /etc/apt/apt.conf.d/94guestagent-config; `proxy`, `http_proxy`,
  `https_proxy`, `ftp_proxy` -> /etc/apt/apt.conf.d/90guestagent-aptproxy.
- `debconf_selections` -> debconf-set-selections; `disable_suites` comments
  out those suites in sources.list.
"""

import logging
import os

from ...system import CommandFailed
from .. import PER_INSTANCE, Outcome, Skip
from . import sources as src

log = logging.getLogger(__name__)

FREQUENCY = PER_INSTANCE
CONF_FILE = "/etc/apt/apt.conf.d/94guestagent-config"
PROXY_FILE = "/etc/apt/apt.conf.d/90guestagent-aptproxy"
DEFAULT_KEYSERVER = "hkp://keyserver.ubuntu.com:80"
KEY_TIMEOUT = 30
_ARMOR = "-----BEGIN PGP PUBLIC KEY BLOCK-----"
_PROXIES = (("http_proxy", "http"), ("https_proxy", "https"), ("ftp_proxy", "ftp"))


def settings(cc):
    """The `apt` mapping with the old top-level keys folded in."""
    cfg = dict(cc.get("apt") or {})
    if "apt_preserve_sources_list" in cc:
        cfg.setdefault("preserve_sources_list", cc["apt_preserve_sources_list"])
    if cc.get("apt_mirror"):
        cfg.setdefault("primary", [{"arches": ["default"], "uri": cc["apt_mirror"]}])
    elif cc.get("apt_mirror_search"):  # the first one (cloud-init probes each in turn)
        cfg.setdefault("primary", [{"arches": ["default"], "search": cc["apt_mirror_search"]}])
    for old, new in (("apt_proxy", "proxy"), ("apt_http_proxy", "http_proxy"),
                     ("apt_https_proxy", "https_proxy"), ("apt_ftp_proxy", "ftp_proxy")):
        if cc.get(old):
            cfg.setdefault(new, cc[old])
    if cc.get("apt_sources"):
        merged = dict(cfg.get("sources") or {})
        for n, entry in enumerate(cc["apt_sources"], 1):
            merged.setdefault(entry.get("filename") or f"cloud_config_sources_{n}", entry)
        cfg["sources"] = merged
    return cfg


def pending(ctx):
    return bool(settings(ctx.cloud_config))


def run(ctx):
    cfg = settings(ctx.cloud_config)
    if not cfg:
        raise Skip("no apt settings in #cloud-config")
    system = ctx.system
    if not system.exists("/etc/apt"):
        raise Skip("this image does not use apt (no /etc/apt); the apt settings are ignored")
    changes, problems = [], []
    primary, security = _mirrors(system, cfg, changes)
    values = {"RELEASE": src.release(system), "MIRROR": primary, "PRIMARY": primary,
              "SECURITY": security}
    if cfg.get("conf"):
        system.write_file(CONF_FILE, cfg["conf"].rstrip("\n") + "\n")
        changes.append(f"wrote {CONF_FILE}")
    proxy = _proxy_conf(cfg)
    if proxy:
        system.write_file(PROXY_FILE, proxy)
        changes.append(f"wrote {PROXY_FILE}")
    files = {}
    for name, entry in (cfg.get("sources") or {}).items():
        try:
            _source(ctx, name, entry, values, files, changes)
        except (OSError, RuntimeError) as e:
            problems.append(f"apt source {name!r}: {e}")
    for path, lines in files.items():
        system.write_file(path, "".join(lines))
        changes.append(f"wrote {path} ({len(lines)} source line(s))")
    if cfg.get("disable_suites"):
        suites = {src.substitute(s, values) for s in cfg["disable_suites"]}
        text = system.read_text(src.SOURCES_LIST, default="")
        new = src.disable_suites(text, suites)
        if new != text:
            system.write_file(src.SOURCES_LIST, new)
            changes.append(f"disabled suites {', '.join(sorted(suites))} in {src.SOURCES_LIST}")
    if cfg.get("debconf_selections"):
        try:
            changes.append(_debconf(system, cfg["debconf_selections"]))
        except RuntimeError as e:
            problems.append(str(e))
    return Outcome(changes, problems)


def _mirrors(system, cfg, changes):
    """(primary, security) URIs; rewrites sources.list when the user chose mirrors."""
    old_primary, old_security = src.current_mirrors(system)
    arch = _arch(system)
    primary = src.pick_mirror(cfg.get("primary"), arch) or old_primary
    security = src.pick_mirror(cfg.get("security"), arch) or old_security
    if cfg.get("preserve_sources_list"):
        return primary, security
    values = {"RELEASE": src.release(system), "MIRROR": primary, "PRIMARY": primary,
              "SECURITY": security}
    if cfg.get("sources_list"):
        system.write_file(src.SOURCES_LIST, src.substitute(cfg["sources_list"], values)
                          .rstrip("\n") + "\n")
        changes.append(f"wrote {src.SOURCES_LIST} from the sources_list template")
    elif (primary, security) != (old_primary, old_security):
        for path in (src.SOURCES_LIST,) + src.DEB822_FILES:
            text = system.read_text(path, default="")
            new = src.rewrite_mirrors(text, old_primary, primary, old_security, security)
            if text and new != text:
                system.write_file(path, new)
                changes.append(f"{path}: mirrors {primary} and {security}")
    return primary, security


def _arch(system):
    """The image's dpkg architecture (from its dpkg database, without running dpkg)."""
    text = system.read_text("/var/lib/dpkg/arch", default="").split()
    if text:
        return text[0]
    machine = os.uname().machine
    return {"x86_64": "amd64", "aarch64": "arm64", "armv7l": "armhf",
            "ppc64le": "ppc64el", "s390x": "s390x"}.get(machine, machine)


def _proxy_conf(cfg):
    lines = []
    if cfg.get("proxy") and not cfg.get("http_proxy"):
        lines.append(f'Acquire::http::Proxy "{_quote(cfg["proxy"])}";')
    for key, scheme in _PROXIES:
        if cfg.get(key):
            lines.append(f'Acquire::{scheme}::Proxy "{_quote(cfg[key])}";')
    return "".join(ln + "\n" for ln in lines)


def _quote(value):
    return value.replace("\\", "").replace('"', "").replace("\n", "").strip()


def _source(ctx, name, entry, values, files, changes):
    system = ctx.system
    keyring = None
    if entry.get("key"):
        key = entry["key"].strip()
        if _ARMOR not in key:
            raise RuntimeError("the key is not an ASCII-armored public key block; not used")
        if entry.get("source"):
            keyring = src.keyring_file(name)
        else:  # a key for sources the image already has: trusted for all of them
            keyring = "/etc/apt/trusted.gpg.d/" + src.keyring_file(name).rsplit("/", 1)[1]
        system.write_file(keyring, key + "\n", mode=0o644)
        changes.append(f"wrote the key for {name} to {keyring}")
    elif entry.get("keyid"):
        keyring = src.keyring_file(name, armored=False)
        if not entry.get("source"):
            keyring = "/etc/apt/trusted.gpg.d/" + keyring.rsplit("/", 1)[1]
        _fetch_key(system, entry["keyid"], entry.get("keyserver") or DEFAULT_KEYSERVER,
                   keyring)
        changes.append(f"fetched key {entry['keyid']} for {name} into {keyring}")
    source = entry.get("source")
    if not source:
        return
    if source.strip().startswith("ppa:"):
        raise RuntimeError("PPA sources need add-apt-repository (Ubuntu); not added")
    line = src.substitute(source.strip(), dict(values, KEY_FILE=keyring or ""))
    if keyring and "$KEY_FILE" not in source and "${KEY_FILE}" not in source:
        line = src.with_signed_by(line, keyring)
    path = src.list_file(name, entry.get("filename"))
    if entry.get("append", True) is False or path not in files:
        files[path] = []
    files[path].append(line + "\n")


def _fetch_key(system, keyid, keyserver, keyring):
    """gpg --recv-keys into a throwaway home, exported to ``keyring`` (binary)."""
    keyid = keyid.strip().replace(" ", "")
    if not keyid or not all(c in "0123456789abcdefABCDEFx" for c in keyid):
        raise RuntimeError(f"key id {keyid[:60]!r} is not a hexadecimal key id")
    if not system.which("gpg"):
        raise RuntimeError(f"cannot fetch key {keyid} from {keyserver}: gpg is not installed")
    import shutil
    import tempfile
    home = tempfile.mkdtemp(prefix="guestagent-gpg-")
    try:
        base = ["gpg", "--batch", "--no-tty", "--quiet", "--homedir", home]
        try:
            system.run(base + ["--keyserver", keyserver, "--keyserver-options",
                               f"timeout={KEY_TIMEOUT}", "--recv-keys", keyid],
                       timeout=KEY_TIMEOUT + 15, check=True)
        except CommandFailed as e:  # gpg's own last word says why (no route, no such key)
            raise RuntimeError(f"cannot fetch key {keyid} from {keyserver}: "
                               f"{e.detail or f'gpg exited {e.returncode}'}") from None
        except Exception as e:  # CommandTimedOut and the like say what happened
            raise RuntimeError(f"cannot fetch key {keyid} from {keyserver}: {e}") from None
        exported = system.run(base + ["--output", os.path.join(home, "k.gpg"), "--export",
                                      keyid], timeout=30)
        if exported.returncode != 0:
            raise RuntimeError(f"key {keyid} from {keyserver} could not be exported")
        # gpg's scratch home is the agent's own temporary directory on the
        # host, not a file of the image: read directly
        with open(os.path.join(home, "k.gpg"), "rb") as f:
            data = f.read()
        if not data:
            raise RuntimeError(f"key {keyid} is not on {keyserver}")
        system.write_file(keyring, data, mode=0o644)
    finally:
        shutil.rmtree(home, ignore_errors=True)


def _debconf(system, selections):
    text = "".join(v.rstrip("\n") + "\n" for v in selections.values())
    argv = ["debconf-set-selections"]
    if not system.live:
        argv = ["chroot", system.root] + argv
    try:
        system.run(argv, input=text, timeout=60, check=True)
    except Exception as e:  # CommandFailed names the command and its last line
        raise RuntimeError(f"debconf_selections: {e}") from None
    return f"set {len(selections)} debconf selection group(s)"
