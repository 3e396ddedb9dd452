"""#cloud-config keys of the resolv_conf step: their validators (see guestagent/schema)."""

from .checks import INVALID, Bad, Note, fields, str_list, string


def _options(value):
    if not isinstance(value, dict) or not all(isinstance(k, str) for k in value):
        raise Bad("a mapping of resolver options")
    return dict(value)


RESOLV_FIELDS = {"nameservers": str_list, "searchdomains": str_list, "domain": string,
                 "options": _options}


def check_resolv_conf(value, notes):
    if not isinstance(value, dict):
        raise Bad("a mapping")
    return fields(value, RESOLV_FIELDS, "#cloud-config resolv_conf", notes)


def resolv_conf_needs_manage(cc, notes):
    """As in cloud-init, resolv_conf is used only with manage_resolv_conf: true."""
    if cc.get("manage_resolv_conf") is not True:
        notes.append(Note("#cloud-config resolv_conf is ignored: manage_resolv_conf is not "
                          "true", INVALID, key="resolv_conf"))
