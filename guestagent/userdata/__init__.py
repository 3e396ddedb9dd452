"""User-data: from the raw bytes the datasource handed over to scripts and a
checked #cloud-config dict.

    ud = decode(raw, max_bytes)
    ud.scripts        [Script(name, content, index)] in part order, each starting with #!
    ud.cloud_config   the merged #cloud-config: known keys only, each of the right type
    ud.warnings       one sentence per thing that was skipped or dropped, and why
                      (each a `checks.Note`: a str with a ``kind``)
    ud.parts          [parts.Part] in order, and ud.keys [cloudconfig.KeyReport]:
                      what check-userdata shows

User-data comes from whoever started the instance, so nothing in it may
raise: every problem becomes a warning and the part or key is left out.
Warnings name part types and keys, never contents (user-data is a secret).
"""

import logging

from ..schema.checks import IGNORED, INVALID, NOTICE, Note, kind_of
from .parts import Script, split

log = logging.getLogger(__name__)

__all__ = ["Script", "UserData", "decode"]


class UserData:
    def __init__(self, scripts=None, cloud_config=None, warnings=None):
        self.scripts = scripts or []
        self.cloud_config = cloud_config or {}
        self.warnings = warnings or []
        self.parts = []
        self.keys = []

    def __repr__(self):  # never the contents: they are secret
        return (f"<UserData {len(self.scripts)} script(s), cloud-config keys "
                f"{sorted(self.cloud_config)}, {len(self.warnings)} warning(s)>")


def decode(data, max_bytes, log_warnings=True, cloud_config=True, jinja=None):
    """Decode raw user-data; never raises on any input.

    ``cloud_config=False``: the parts and scripts only, the #cloud-config
    parts left unparsed (no YAML import), for a stage that reads the parsed
    copy stored on the first boot.  ``jinja``: () -> (variables, example),
    the instance data for `## template: jinja` parts (userdata/jinja.py),
    asked only when there is one."""
    ud = UserData()
    if not data:
        return ud
    try:
        result = split(bytes(data), max_bytes, jinja)
        ud.scripts = result.scripts
        ud.warnings = result.warnings
        ud.parts = result.found
        if result.cloud_configs and cloud_config:
            from .cloudconfig import load_all
            ud.cloud_config = load_all(result.cloud_configs, ud.warnings, ud.keys)
    except Exception as e:  # hostile input must never stop the boot
        log.debug("user-data decoding failed", exc_info=True)
        ud.scripts, ud.cloud_config = [], {}
        ud.warnings.append(Note(f"user-data could not be decoded ({type(e).__name__}); "
                                "none of it is used", INVALID))
    for w in ud.warnings if log_warnings else ():
        if kind_of(w) in (IGNORED, NOTICE):
            log.info("%s", w)
        else:
            log.warning("%s", w)
    return ud
