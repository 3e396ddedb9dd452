"""The boot stages as data: what each one does, in one table.

A boot runs three stages, one systemd unit each (units/); ``all`` is the
three in one run (`guestagent --once`).  The runner, the CLI, the boot's
process (boot_process.py), `status --wait` and the steps (``ctx.stage``)
read this table; nothing else compares stage names.

Each Stage says:

  name        the ``--stage`` value
  unit        the systemd unit that runs it (None: run by hand)
  metadata    how it finds metadata:
                LOCAL   only the datasources that need no network (config
                        drive, NoCloud seed, a reboot confirmed by the DMI
                        UUID), without waiting; finding none is no error
                SEARCH  every configured datasource, until [main] deadline
                STORED  what the configuring stage stored in this boot
              a LOCAL or SEARCH stage *configures*: it records the instance
              and publishes the instance data; a STORED one does not
  steps       which steps it runs: "config", "final" or "all", the list of
              that name in the run's `steps.Lineup` (by default
              steps.CONFIG_STEPS, FINAL_STEPS, both): ``step_names(lineup)``
  flags       the flags in /run it leaves once the steps a login needs are
              done, when it found metadata, in this order:
                LOCAL_DONE     this boot is configured (the network unit
                               does not start)
                FINAL_PENDING  the final steps with work left (the final
                               unit starts); removed when there are none
  guard       what it does with the reboot guard (boot/guard.py) after a run
              with no failed step and no ``--only``:
                "write"    list what decides the next boot
                "publish"  the final steps are done: the waiting list holds
                None       nothing
  network_up  whether the network is up while its steps run (the network
              step brings interfaces up live only then)
  bare        its steps run even with no metadata (those that need none)
  once        nothing to do when an earlier stage configured this boot

The table is plain data (a namedtuple per stage): a new stage is a new row,
and a new kind of behaviour is a new field read by the runner.
"""

from collections import namedtuple

from .boot.guard import FINAL_PENDING, LOCAL_DONE

LOCAL, SEARCH, STORED = "local", "search", "stored"


class Stage(namedtuple("Stage", "name unit metadata steps flags guard network_up bare once")):
    __slots__ = ()

    @property
    def configures(self):
        """It finds the metadata afresh and records the instance."""
        return self.metadata != STORED

    def step_names(self, lineup):
        """The steps it runs, in order, of ``lineup`` (a `steps.Lineup`)."""
        return getattr(lineup, self.steps)


STAGES = {s.name: s for s in (
    Stage("local", "guestagent-local.service", LOCAL, "config",
          flags=(LOCAL_DONE, FINAL_PENDING), guard="write",
          network_up=False, bare=False, once=False),
    Stage("network", "guestagent.service", SEARCH, "config",
          flags=(FINAL_PENDING,), guard="write",
          network_up=True, bare=True, once=True),
    Stage("final", "guestagent-final.service", STORED, "final",
          flags=(), guard="publish",
          network_up=True, bare=False, once=False),
    Stage("all", None, SEARCH, "all",
          flags=(), guard=None,
          network_up=True, bare=True, once=False),
)}
