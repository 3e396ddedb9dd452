"""#cloud-config keys of the snap step: their validators (see guestagent/schema)."""

from .checks import INVALID, NOTICE, Note, describe, known_fields


def check_snap(value, notes=None):
    known_fields(value, "snap", ("assertions", "commands"), notes)
    out = {"assertions": [], "commands": []}
    assertions = value.get("assertions")
    if isinstance(assertions, dict):
        assertions = list(assertions.values())
    if assertions is not None and not isinstance(assertions, list):
        notes.append(Note("#cloud-config snap: assertions should be a list or a mapping of "
                          f"assertion texts, not {describe(assertions)}; ignored", INVALID))
        assertions = []
    for n, a in enumerate(assertions or [], 1):
        if isinstance(a, str) and a.strip():
            out["assertions"].append(a)
        else:
            notes.append(Note(f"#cloud-config snap assertions entry {n} is {describe(a)}, "
                              "not an assertion; skipped", INVALID))
    commands = value.get("commands")
    if isinstance(commands, dict):  # cloud-init runs them in the order of their keys
        commands = [v for _, v in sorted(commands.items(), key=lambda kv: str(kv[0]))]
    if commands is not None and not isinstance(commands, list):
        notes.append(Note("#cloud-config snap: commands should be a list or a mapping of "
                          f"commands, not {describe(commands)}; ignored", INVALID))
        commands = []
    for n, c in enumerate(commands or [], 1):
        where = f"#cloud-config snap commands entry {n}"
        if isinstance(c, str) and c.strip():
            if not c.startswith("snap "):
                notes.append(Note(f"{where} does not start with 'snap ': it runs as a sh "
                                  "command line all the same, as in cloud-init", NOTICE))
            out["commands"].append(c)
        elif isinstance(c, list) and c and all(
                isinstance(a, (str, int, float)) and not isinstance(a, bool)
                for a in c[1:]) and (c[0] is None or isinstance(c[0], str)):
            argv = [a if isinstance(a, str) else str(a) for a in c[1:]] if c[0] is None \
                else [a if isinstance(a, str) else str(a) for a in c]
            if c[0] is not None and argv[0] != "snap":
                argv.insert(0, "snap")
            if argv:
                out["commands"].append(argv)
        else:
            notes.append(Note(f"{where} is {describe(c)}, not a command string or a list "
                              "of arguments; skipped", INVALID))
    return out
