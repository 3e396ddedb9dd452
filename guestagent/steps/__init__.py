"""The steps, in the order they run, what each one declares, and the loader.

Like tiny-cloud's phases: two short ordered lists.  ``config`` steps run as
soon as metadata is found and must be done before sshd accepts logins;
``final`` steps (user scripts) run late and never hold up a login.

Each step lives in ``guestagent/steps/<name>.py``, or in a package
``guestagent/steps/<name>/`` whose ``__init__.py`` is the step and whose other
modules are the helpers only that step uses; either way it is imported, by
`load` and nowhere else, only when a stage needs it.  `load` checks the
contract below as it imports (as cloud-init's ``validate_module`` does), so a
step that breaks it fails there, naming what is wrong, instead of behaving
oddly at boot.  Every name a step module may define for the runner:

    FREQUENCY = PER_BOOT or PER_INSTANCE    # required
    def run(ctx) -> list[str] | Outcome     # required: what it changed, in
                                            # operator's words (with what went
                                            # wrong, when some of it did)
    NEEDS_METADATA = True                   # False: runs even with no datasource
    BACKGROUND = False                      # True: runs in a thread beside the
                                            # steps after it (joined before the
                                            # stage ends); for a step that only
                                            # waits on its own commands and whose
                                            # work no later step reads
    def pending(ctx) -> bool                # final steps: is there anything to
                                            # run?  The config stage asks, so the
                                            # final unit does not start on a boot
                                            # with nothing to do (default: True)
    def check_done(ctx) -> str              # per-instance steps: what is missing
                                            # or damaged of what the done step
                                            # left, '' when all is well (see
                                            # guestagent/state/done_markers.py)
    def redo(ctx) -> list[str] | Outcome    # per-instance steps: run again when
                                            # check_done found damage (default: run)
    def unchanged_inputs(ctx) -> list[str]  # per-boot steps: the files whose
                                            # content decides the next boot's work,
                                            # or None: work every boot (see
                                            # guestagent/boot/guard.py; default None)

``run`` raises `Skip` to say why it did nothing.  A step that does several
things returns an `Outcome` when some of them went wrong: what it changed
all the same, and its problems, so that status shows both.  Any other
exception fails the step with nothing changed.  The runner does all the
bookkeeping: the status, and the per-instance "done" markers (after a
change, a Skip or an Outcome with problems; never after an exception, nor
after an Outcome that asks to be retried, so that is done again).

One helper here serves the steps alike: `asked_for` (the #cloud-config
value, or Skip when the user-data does not ask).
"""

PER_BOOT = "per-boot"
PER_INSTANCE = "per-instance"

# random_seed comes first, so the host keys are made from a pool that has it;
# machine_id next, before the network step and network-pre.target, so
# systemd-networkd's DHCP client id follows a new instance's new machine-id;
# disks are set up and mounted before users, as cloud-init does (its
# disk_setup and mounts come before users_groups), so that a `mounts` entry
# for /home holds the home directories the users step makes;
# hostname comes before hostkeys so the keys' comment names the final host;
# hostkeys comes before users so that it can run beside them (SIDE_BY_SIDE).
CONFIG_STEPS = [
    "random_seed",
    "machine_id",
    "bootcmd",
    "growroot",
    "network",
    "disk_setup",
    "mounts",
    "hostname",
    "hostkeys",
    "users",
    "resolv_conf",
    "admin_pass",
    "passwords",
    "injected_files",
    "write_files",
    "timezone",
]
# locale, keyboard and ntp run late (locale-gen takes seconds, the clients
# restart); repositories and packages come before the user's scripts and runcmd, which
# usually need the packages; wireguard and snap come after packages (which may
# install wireguard-tools or snapd) and before the scripts (which may need the
# tunnel or the snaps); power_state is last (it acts after the stage).
FINAL_STEPS = [
    "locale",
    "keyboard",
    "ntp",
    "yum_repos",
    "apt_configure",
    "packages",
    "wireguard",
    "snap",
    "scripts",
    "runcmd",
    "final_message",
    "power_state",
]
ALL_STEPS = CONFIG_STEPS + FINAL_STEPS
# Run in a thread beside the steps named with them, and joined before the
# first step that is not (and always before the stage says it is ready: sshd
# needs them): ssh-keygen works while useradd does.  Neither reads what the
# other writes; write_files and injected_files may write under /etc/ssh, so
# they wait for the keys, as in the one-by-one order.
SIDE_BY_SIDE = {"hostkeys": ("users", "resolv_conf", "admin_pass")}
FREQUENCIES = (PER_BOOT, PER_INSTANCE)
# The per-instance steps that define check_done: on a later boot of the
# instance they are loaded to check what they left.  Any other step whose
# done marker is there is passed over without importing its module (a later
# boot's imports are most of its cost); `load` holds every module to this
# list.  Only per-instance steps leave markers, so a step that ever becomes
# per-boot needs a new name, or its old markers would still pass it over.
CHECKED_WHEN_DONE = ("hostkeys", "users")


class BrokenStep(Exception):
    """A step module breaks the contract above (a bug in guestagent, not bad input)."""


class Step:
    """One step as the runner sees it: the contract's names, every hook given
    (the defaults filled in), checked when made."""

    __slots__ = ("name", "run", "frequency", "needs_metadata", "background", "pending",
                 "check_done", "redo", "unchanged_inputs")

    def __init__(self, name, run, frequency, needs_metadata=True, background=False,
                 pending=None, check_done=None, redo=None, unchanged_inputs=None):
        problems = []
        if frequency not in FREQUENCIES:
            problems.append(f"FREQUENCY is {frequency!r}, not {PER_BOOT!r} or {PER_INSTANCE!r}")
        for flag, value in (("NEEDS_METADATA", needs_metadata), ("BACKGROUND", background)):
            if not isinstance(value, bool):
                problems.append(f"{flag} is {value!r}, not True or False")
        hooks = {"run": run, "pending": pending, "check_done": check_done, "redo": redo,
                 "unchanged_inputs": unchanged_inputs}
        for hook, fn in hooks.items():
            if fn is not None and not _takes_one_argument(fn):
                problems.append(f"{hook} is not a function of (ctx)")
        # a hook the runner would never ask is a mistake, not a choice
        if frequency == PER_BOOT and (check_done or redo):
            problems.append("check_done and redo are asked only of per-instance steps")
        if frequency == PER_INSTANCE and unchanged_inputs:
            problems.append("unchanged_inputs is asked only of per-boot steps")
        if problems:
            raise BrokenStep(f"step {name}: " + "; ".join(problems))
        self.name = name
        self.run = run
        self.frequency = frequency
        self.needs_metadata = needs_metadata
        self.background = background
        self.pending = pending or _has_work
        self.check_done = check_done or _nothing_missing
        self.redo = redo or run
        self.unchanged_inputs = unchanged_inputs or _work_every_boot

    def __repr__(self):
        return f"Step({self.name!r})"


# the module's names for Step's arguments
_CONTRACT = {"run": "run", "FREQUENCY": "frequency", "NEEDS_METADATA": "needs_metadata",
             "BACKGROUND": "background", "pending": "pending", "check_done": "check_done",
             "redo": "redo", "unchanged_inputs": "unchanged_inputs"}
_CONTRACT_LOWER = {n.lower(): n for n in _CONTRACT}


def load(name):
    """Import step ``name`` and check it keeps the contract; returns its `Step`.
    Raises BrokenStep naming what is wrong (ImportError where it does not import)."""
    from .. import named_module

    if name not in ALL_STEPS:
        raise BrokenStep(f"no step named {name!r}")
    return from_module(name, named_module(f"{__name__}.{name}"))


def from_module(name, module):
    """The `Step` that ``module`` defines (see the contract above), or BrokenStep."""
    found = vars(module)
    # a hook spelled in the wrong case would be silently left out
    misspelt = [f"{n} (the contract's name is {_CONTRACT_LOWER[n.lower()]})"
                for n in found if n not in _CONTRACT and n.lower() in _CONTRACT_LOWER]
    missing = [n for n in ("FREQUENCY", "run") if n not in found]
    unasked = ["pending (asked only of final steps)"] if (
        "pending" in found and name not in FINAL_STEPS) else []
    if (found.get("FREQUENCY") == PER_INSTANCE and name in ALL_STEPS
            and ("check_done" in found) != (name in CHECKED_WHEN_DONE)):
        unasked.append("check_done, but is not in CHECKED_WHEN_DONE" if "check_done" in found
                       else "no check_done, but is in CHECKED_WHEN_DONE")
    if misspelt or missing or unasked:
        raise BrokenStep(f"step {name}: " + "; ".join(
            [f"defines {m}" for m in misspelt + unasked] + [f"defines no {m}" for m in missing]))
    return Step(name, **{arg: found[attr] for attr, arg in _CONTRACT.items() if attr in found})


def _takes_one_argument(fn):
    code = getattr(fn, "__code__", None)
    if code is None:  # a callable object: trust it
        return callable(fn)
    positional = code.co_argcount - (1 if hasattr(fn, "__self__") else 0)
    optional = len(fn.__defaults__ or ())
    return positional - optional <= 1 <= positional or bool(code.co_flags & 0x04)


def _has_work(ctx):
    return True


def _nothing_missing(ctx):
    return ""


def _work_every_boot(ctx):
    return None


class Lineup:
    """The steps a run may run: the config stage's and the final stage's, in
    order.  Names are loaded (and checked) when a stage first needs them, so a
    stage with nothing to do imports none; tests hand in `Step`s instead."""

    def __init__(self, config=None, final=None, beside=None):
        config = CONFIG_STEPS if config is None else config
        final = FINAL_STEPS if final is None else final
        # step -> the steps it runs beside (SIDE_BY_SIDE)
        self.beside = SIDE_BY_SIDE if beside is None else beside
        self._loaded = {s.name: s for s in config + final if isinstance(s, Step)}
        self.config = [s if isinstance(s, str) else s.name for s in config]
        self.final = [s if isinstance(s, str) else s.name for s in final]
        self.all = self.config + self.final

    def loaded(self, name):
        return name in self._loaded

    def step(self, name):
        """Step ``name``, loaded on first use (raises BrokenStep or ImportError)."""
        if name not in self._loaded:
            if name not in self.all:
                raise BrokenStep(f"no step named {name!r} in this run")
            self._loaded[name] = load(name)
        return self._loaded[name]

    def steps(self, names):
        return [self.step(n) for n in names]


def when_they_run():
    """step -> ", once per instance, final stage" and the like (for reports)."""
    out = {}
    for name in ALL_STEPS:
        try:
            freq = load(name).frequency
        except Exception:  # a report, not a boot: say less rather than fail
            freq = None
        when = {PER_INSTANCE: ", once per instance"}.get(freq, ", every boot" if freq else "")
        out[name] = when + (", final stage" if name in FINAL_STEPS else "")
    return out


class Skip(Exception):
    """The step had nothing to do, for the reason given."""


class Outcome:
    """How a step that does several things ended: the ``changes`` it made and
    the ``problems`` it met (the step failed when there is any).  Both reach
    status: a step that changed half the system and then failed shows the
    half it changed.

    ``error`` is the failure in one line (default: the problems joined).  A
    failed step is done for this instance all the same (scripts that ran,
    files appended to must not be done twice), unless ``retry`` asks for it
    to run again on the next boot (it is safe to repeat, and the next try may
    succeed).
    """

    def __init__(self, changes, problems=(), error="", retry=False):
        self.changes = list(changes)
        self.problems = list(problems)
        self.error = (error or "; ".join(self.problems)) if self.problems else ""
        self.retry = retry

    def __repr__(self):
        return f"Outcome({self.changes!r}, {self.problems!r})"


def asked_for(ctx, key):
    """#cloud-config ``key``'s value; Skip where the user-data does not ask for it."""
    value = ctx.cloud_config.get(key)
    if not value:
        raise Skip(f"no {key} in #cloud-config")
    return value
