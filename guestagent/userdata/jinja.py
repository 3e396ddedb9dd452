"""`## template: jinja` parts, rendered as cloud-init renders them.

cloud-init renders a user-data part whose first line is `## template: jinja`
with Jinja2, from its instance data, and then reads the result by its own
first line (#cloud-config, #! script...).  Here the same:

    text, notes = render(part_text, variables, budget, where, example=False)

``variables`` is the instance data as `jinja_variables`
(guestagent/metadata/instance_data.py) turns it into Jinja names, as
cloud-init's convert_jinja_instance_data does: the ``v1`` keys also at the
top level (``{{ instance_id }}``), and every key with ``-`` or
``.`` also under an alias with ``_`` (``v1.local_hostname``,
``ds.meta_data.availability_zone``).  The instance data itself is built
above the user-data code (guestagent/metadata/instance_data.py) and handed down.

As in cloud-init: trim_blocks, the ``do`` extension, the trailing newline
kept, and a variable that does not exist renders as
``CI_MISSING_JINJA_VAR/<name>``, named in a note.  Unlike cloud-init, the
template runs in Jinja2's sandbox (no reaching Python internals from
user-data; `check-userdata` renders files it was handed), and its output
stops at the user-data's byte budget.  Jinja2 is optional (python3-jinja2,
a Recommends): it is imported only when a template part exists, and
without it the part is skipped, named.  Nothing here raises.
"""

import re

from ..schema.checks import INVALID, NOTICE, UNSUPPORTED, Note

MISSING_PREFIX = "CI_MISSING_JINJA_VAR/"   # cloud-init's marker, kept so scripts agree
HEADER = re.compile(r"##\s*template:\s*jinja\s*$", re.I)


class TooBig(ValueError):
    pass


def render(text, variables, budget, where, example=False):
    """(the rendered text, or None when the part is skipped; [Note]).

    ``text`` starts with the `## template: jinja` line.  ``example``: the
    variables are a stand-in (check-userdata with no instance data), so a
    missing one is a notice, not a problem.
    """
    try:
        import jinja2
        from jinja2.sandbox import SandboxedEnvironment
    except ImportError:
        return None, [Note(f"{where} is a jinja template (## template: jinja), but Jinja2 "
                           "is not installed (python3-jinja2); skipped", UNSUPPORTED)]
    body = text.split("\n", 1)[1] if "\n" in text else ""

    class Missing(jinja2.Undefined):
        """cloud-init's UndefinedJinjaVariable: renders as its marker."""

        def __str__(self):
            return f"{MISSING_PREFIX}{self._undefined_name}"

        def __sub__(self, other):  # {{ v1.local-hostname }}: cloud-init's hint
            other = str(other).replace(MISSING_PREFIX, "")
            raise TypeError(f'Undefined jinja variable: "{self._undefined_name}-{other}". '
                            'Jinja tried subtraction. Perhaps you meant '
                            f'"{self._undefined_name}_{other}"?')

    env = SandboxedEnvironment(undefined=Missing, trim_blocks=True,
                               extensions=["jinja2.ext.do"], autoescape=False)
    try:
        template = env.from_string(body)
        out, size = [], 0
        for chunk in template.generate(**variables):
            size += len(chunk.encode("utf-8", "surrogateescape"))
            if size > budget:
                raise TooBig()
            out.append(chunk)
    except jinja2.TemplateSyntaxError as e:
        # the line number counts the header line, as cloud-init's does
        line = (e.lineno or 0) + 1
        return None, [Note(f"{where}: jinja template syntax error at line {line} "
                           f"({_short(e.message)}); skipped", INVALID)]
    except TooBig:
        return None, [Note(f"{where}: the rendered jinja template is larger than "
                           "[userdata] max_bytes allows; skipped", INVALID)]
    except Exception as e:  # an error raised while rendering: cloud-init skips the part too
        return None, [Note(f"{where}: the jinja template failed to render "
                           f"({type(e).__name__}: {_short(str(e))}); skipped", INVALID)]
    rendered = "".join(out) + ("\n" if body.endswith("\n") else "")
    missing = sorted(set(re.findall(re.escape(MISSING_PREFIX) + r"([\w.-]+)", rendered)))
    notes = []
    if missing:
        names = ", ".join(repr(m[:64]) for m in missing[:20])
        if example:
            notes.append(Note(f"{where}: jinja variables not in the example instance data "
                              f"({names}) render as {MISSING_PREFIX}NAME; check with "
                              "--instance-data FILE from the instance", NOTICE))
        else:
            notes.append(Note(f"{where}: jinja variables the instance data does not have "
                              f"render as {MISSING_PREFIX}NAME, as in cloud-init: {names}",
                              INVALID))
    return rendered, notes


def _short(text, limit=120):
    from ..log import escape
    text = escape(text or "")
    return text if len(text) <= limit else text[:limit] + "..."
