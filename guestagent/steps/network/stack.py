"""Which network stack the image uses, from what is installed and enabled.

First match wins: netplan (Ubuntu) renders for whatever backend it has;
NetworkManager when its unit is enabled (ifcfg files when the image keeps
its NICs in network-scripts, as RHEL 7/8 do, else keyfiles); systemd-networkd
when its unit is enabled; initscripts' network-scripts; ifupdown.
``[network] renderer`` names one instead.
"""

_WANTS = ("/etc/systemd/system/multi-user.target.wants",
          "/etc/systemd/system/network-online.target.wants",
          "/etc/systemd/system/sysinit.target.wants")
_SCRIPTS = "/etc/sysconfig/network-scripts"


def _enabled(system, unit):
    return any(system.exists(f"{d}/{unit}") for d in _WANTS)


def _any(system, *paths):
    return next((p for p in paths if system.exists(p)), None)


def _has_ifcfg(system):
    try:
        names = system.listdir(_SCRIPTS)
    except OSError:
        return False
    return any(n.startswith("ifcfg-") and n != "ifcfg-lo" for n in names)


def detect(system, configured="auto"):
    """(renderer, why) or (None, why)."""
    if configured and configured != "auto":
        return configured, "[network] renderer names it"
    tool = _any(system, "/usr/sbin/netplan", "/usr/bin/netplan", "/sbin/netplan")
    if tool and system.exists("/etc/netplan"):
        return "netplan", f"{tool} and /etc/netplan are present"
    if _enabled(system, "NetworkManager.service"):
        if _has_ifcfg(system):
            return "ifcfg", f"NetworkManager is enabled and {_SCRIPTS} holds ifcfg files"
        return "networkmanager", "NetworkManager.service is enabled"
    if _enabled(system, "systemd-networkd.service"):
        return "networkd", "systemd-networkd.service is enabled"
    scripts = _any(system, "/etc/init.d/network", "/usr/lib/systemd/system/network.service",
                   "/etc/rc.d/init.d/network")
    if scripts and system.exists(_SCRIPTS):
        return "ifcfg", f"{scripts} and {_SCRIPTS} are present"
    ifup = _any(system, "/sbin/ifup", "/usr/sbin/ifup")
    if ifup or system.exists("/etc/network/interfaces"):
        return "ifupdown", f"{ifup or '/etc/network/interfaces'} is present"
    return None, ("no network stack the agent knows is installed and enabled (netplan, "
                  "NetworkManager, systemd-networkd, network-scripts, ifupdown)")
