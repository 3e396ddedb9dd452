"""Why the agent will not run on this system at all: its off switches.

Read by the runner before anything else, and by `guestagent status --wait`,
which must return at once on a boot the agent stands aside from (so it lives
apart from the runner and costs no import of it).
"""

DISABLED_FILE = "/etc/guestagent/disabled"


def disabled_reason(system):
    """Why the agent must not run here, or '' (checked before anything else)."""
    if system.exists(DISABLED_FILE):
        return f"{DISABLED_FILE} exists"
    cmdline = system.kernel_cmdline().split()
    if "guestagent=disabled" in cmdline:
        return "guestagent=disabled is on the kernel command line"
    if system.exists("/usr/bin/cloud-init") and not (
            system.exists("/etc/cloud/cloud-init.disabled")
            or "cloud-init=disabled" in cmdline):
        return ("cloud-init is installed and enabled, and owns first boot here "
                "(touch /etc/cloud/cloud-init.disabled to hand it to guestagent)")
    return ""
