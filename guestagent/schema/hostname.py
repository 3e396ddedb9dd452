"""#cloud-config keys of the hostname step: their validators (see guestagent/schema)."""

from ..metadata.dns_names import BadName, check_hostname
from .checks import Bad


def check_manage_etc_hosts(value, notes):
    """true/"template": /etc/hosts from the template; "localhost": one line; false: leave."""
    if value is True or (isinstance(value, str) and value.strip().lower() in
                         ("template", "true", "yes", "on", "1")):
        return "template"
    if isinstance(value, str) and value.strip().lower() == "localhost":
        return "localhost"
    if value is False or (isinstance(value, str) and value.strip().lower() in
                          ("false", "no", "off", "0")):
        return False
    raise Bad("true, false, \"localhost\" or \"template\"")


def check_name(value, notes):
    """hostname / fqdn: a name the step will take (fixed up as it will be)."""
    if not isinstance(value, str):
        raise Bad("a string")
    if value == "":
        return value
    try:
        check_hostname(value)
    except BadName as e:
        raise Bad(f"a usable host name ({e})") from None
    return value
