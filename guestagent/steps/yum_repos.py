"""#cloud-config yum_repos (and yum_repo_dir), once per instance, in the final
stage before the packages step.

Each repository becomes /etc/yum.repos.d/<id>.repo (cloud-init's
semantics): spaces in the id become underscores, field names are lower
case with "-" as "_", true/false become 1/0, a list becomes one value per
line.  A repository without baseurl, metalink or mirrorlist is skipped with
a warning, and an existing .repo file of the same name is kept (the image's
own repositories are never overwritten).  Keys are the repository's own
`gpgkey` URLs, checked by dnf/yum when they fetch.
"""

import logging
import re

from . import PER_INSTANCE, Outcome, Skip, asked_for

log = logging.getLogger(__name__)

FREQUENCY = PER_INSTANCE
DEFAULT_DIR = "/etc/yum.repos.d"
_ID = re.compile(r"^[A-Za-z0-9_.:-]+$")
_SOURCES = ("baseurl", "metalink", "mirrorlist")


def pending(ctx):
    return bool(ctx.cloud_config.get("yum_repos"))


def run(ctx):
    repos = asked_for(ctx, "yum_repos")
    directory = ctx.cloud_config.get("yum_repo_dir", DEFAULT_DIR).rstrip("/") or DEFAULT_DIR
    changes, problems = [], []
    for raw_id, fields in repos.items():
        repo_id = raw_id.strip().replace(" ", "_")
        path = f"{directory}/{repo_id}.repo"
        if not _ID.match(repo_id):
            problems.append(f"repository id {raw_id[:60]!r} has characters a .repo id "
                            "cannot have; skipped")
            continue
        if ctx.system.exists(path):
            log.info("yum_repos: %s exists already; kept", path)
            continue
        text, why = render(repo_id, fields)
        if text is None:
            problems.append(f"repository {repo_id}: {why}; skipped")
            continue
        ctx.system.write_file(path, text, mode=0o644)
        changes.append(f"wrote {path}")
    if not changes and not problems:
        raise Skip("every repository's .repo file exists already")
    return Outcome(changes, problems)


def render(repo_id, fields):
    """(.repo text, None) or (None, why not)."""
    values = {}
    for key, value in fields.items():
        name = str(key).lower().strip().replace("-", "_")
        if not re.match(r"^[a-z0-9_]+$", name):
            return None, f"field {str(key)[:40]!r} is not a .repo option"
        if isinstance(value, bool):
            value = "1" if value else "0"
        elif isinstance(value, (list, tuple)):
            value = "\n    ".join(str(v) for v in value)
        elif isinstance(value, (int, float, str)):
            value = str(value)
        else:
            return None, f"{name} has a value that is not text"
        if "\n" in value.replace("\n    ", "") or "\r" in value:
            return None, f"{name} spans lines"
        values[name] = value
    if not any(values.get(s) for s in _SOURCES):
        return None, "it has no baseurl, metalink or mirrorlist"
    lines = [f"[{repo_id}]"] + [f"{k}={v}" for k, v in values.items()]
    return "# written by guestagent from #cloud-config yum_repos\n" + "\n".join(lines) + "\n", None
