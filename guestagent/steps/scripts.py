"""Run the user-data scripts (parts starting with #!), once per instance.

They run in the final stage, after keys and hostname are in place, so they
never hold up a login.  Every script runs even when an earlier one fails;
if any failed, the step fails (naming each that failed; those that ran
well are its changes) so `guestagent status` and the exit code show it.
A failed script is not retried at the next boot: scripts run once per
instance, as in cloud-init.
"""

import re

from ..userdata.checks import UNSUPPORTED, Bad, Note
from . import PER_INSTANCE, Outcome, Skip

FREQUENCY = PER_INSTANCE


def pending(ctx):
    """Is there anything for this step to run?  (Asked by the config stage, so
    the final unit need not even start on a boot without scripts.)"""
    return (ctx.config.getbool("userdata", "enabled") and bool(ctx.metadata.user_data)
            and bool(ctx.user_scripts))


def run(ctx):
    if not ctx.config.getbool("userdata", "enabled"):
        raise Skip("user-data is turned off ([userdata] enabled = no)")
    if not ctx.metadata.user_data:
        raise Skip("no user-data")
    scripts = ctx.user_scripts
    if not scripts:
        raise Skip("user-data has no scripts")
    from ..userdata import execute
    seen = set()
    jobs = []
    for s in scripts:
        filename = s.name if s.name not in seen else f"{s.name}.{s.index}"
        seen.add(filename)
        jobs.append((f"script {s.name!r}", filename, s.content))
    outcomes = execute.run_all(ctx, jobs, "scripts")
    # once per instance even when a script failed: never rerun it at every boot
    return Outcome(*execute.report(outcomes, "user-data scripts"))


# -- #cloud-config `output`, checked before anything acts on it ----------------------

_STAGES = ("all", "final", "config", "init")
_TARGET = re.compile(r"^\s*(?:>>|>|\|\s*tee(?:\s+-a)?)\s+(/[^\s;|&<>`$'\"\\]+)\s*$")


def check_output(value, key, notes):
    """cloud-init's output: {all: ">> FILE"} and the like.

    guestagent's user-data output always goes to its own log and the
    console; a file named here gets a copy of every script's, runcmd's and
    bootcmd's output as well (appended, 0600).  Pipes to other commands are
    not run.
    """
    if not isinstance(value, dict):
        raise Bad("a mapping of all/init/config/final to '>> FILE' or '| tee -a FILE'")
    files = {}
    for stage, spec in value.items():
        if stage not in _STAGES:
            notes.append(Note(f"#cloud-config output: unknown stage {str(stage)[:20]!r}; "
                              "ignored", UNSUPPORTED))
            continue
        if isinstance(spec, list) and spec:
            spec = spec[0]  # [stdout, stderr]: stderr goes where stdout goes here
        elif isinstance(spec, dict):
            spec = spec.get("output")
        m = _TARGET.match(spec) if isinstance(spec, str) else None
        if m is None or "/../" in m.group(1) + "/":
            notes.append(Note(f"#cloud-config output {stage}: only '>> FILE', '> FILE' and "
                              "'| tee -a FILE' are supported; ignored", UNSUPPORTED))
            continue
        files[stage] = m.group(1)
    chosen = next((files[s] for s in _STAGES if s in files), None)
    if chosen is None:
        raise Bad("'>> FILE' or '| tee -a FILE' for all, init, config or final")
    others = sorted({f for f in files.values() if f != chosen})
    if others:
        notes.append(Note(f"#cloud-config output: one file gets the copy ({chosen}); "
                          f"not also {', '.join(others)}", UNSUPPORTED))
    return {"file": chosen}
