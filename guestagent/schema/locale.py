"""#cloud-config keys of the locale step: their validators (see guestagent/schema)."""

import re

from .checks import Bad, absolute_path

_NAME = re.compile(r"^[A-Za-z0-9_.@-]+$")


def check_locale(value, notes=None):
    if not isinstance(value, str) or not _NAME.match(value.strip()):
        raise Bad("a locale name like en_US.UTF-8")
    return value.strip()


def check_locale_configfile(value, notes=None):
    return absolute_path(value, "file path")
