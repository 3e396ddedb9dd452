"""sshd_config lines read as sshd reads them, in this one place.

`line_words` splits a line as OpenSSH does (``Keyword=value``, quotes, a
``#`` word ends the line): the passwords step, the hostkeys step (HostKey
lines) and check-image (the effective settings) all read sshd_config
through it, so they cannot disagree about what sshd will do.
"""

import re

SSH_DIR = "/etc/ssh"
SSHD_CONFIG = SSH_DIR + "/sshd_config"
# Debian's name for the unit, then the others'
SSHD_UNITS = ("ssh.service", "sshd.service")
# the keyword ends at white space or at one '=' (sshd's strdelim)
_KEYWORD = re.compile(r"\s*([^\s=]+)\s*(?:=\s*)?(.*)", re.S)


def line_words(line):
    """An sshd_config line as sshd splits it: [keyword in lower case, argument,
    ...]; [] for a blank line or a comment.

    The arguments are split as OpenSSH's argv_split does: at spaces and tabs,
    with single or double quotes grouping and a backslash escaping a quote, a
    backslash or (outside quotes) a space; a word that begins with '#' ends
    the line (``no # managed`` is ``no``), a '#' inside one does not.
    """
    m = _KEYWORD.match(line)
    if not m or m.group(1).startswith("#"):
        return []
    words, rest, i = [m.group(1).lower()], m.group(2), 0
    while i < len(rest):
        if rest[i] in " \t\r\n":
            i += 1
            continue
        if rest[i] == "#":
            break
        word, quote = [], None
        while i < len(rest):
            c = rest[i]
            if c == "\\" and i + 1 < len(rest) and (
                    rest[i + 1] in "'\"\\" or (quote is None and rest[i + 1] == " ")):
                i += 1
                word.append(rest[i])
            elif quote is None and c in " \t\r\n":
                break
            elif quote is None and c in "'\"":
                quote = c
            elif c == quote:
                quote = None
            else:
                word.append(c)
            i += 1
        words.append("".join(word))
    return words


def include_patterns(words):
    """The absolute glob patterns of an ``Include`` line's arguments (sshd
    takes a relative one as relative to /etc/ssh)."""
    return [w if w.startswith("/") else f"{SSH_DIR}/{w}" for w in words]
