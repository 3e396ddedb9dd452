"""Run the user-data scripts (parts starting with #!), once per instance.

They run in the final stage, after keys and hostname are in place, so they
never hold up a login.  Every script runs even when an earlier one fails;
if any failed, the step fails (naming each that failed; those that ran
well are its changes) so `guestagent status` and the exit code show it.
A failed script is not retried at the next boot: scripts run once per
instance, as in cloud-init.
"""


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


