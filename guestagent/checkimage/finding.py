"""One check's verdict: what was found, and how to put it right."""

PASS, WARN, FAIL = "pass", "warn", "fail"
ORDER = {FAIL: 0, WARN: 1, PASS: 2}


class Finding:
    """``repair``, when set, is the safe fix: ``repair(image) -> [changes]``.

    Findings without a repair are fixed by hand, with the command in ``fix``.
    """

    def __init__(self, id, status, detail, fix="", repair=None):
        self.id = id
        self.status = status
        self.detail = detail
        self.fix = fix if status != PASS else ""
        self.repair = repair if status != PASS else None
        self.changes = []

    def as_dict(self, with_changes=False):
        out = {"id": self.id, "status": self.status, "detail": self.detail, "fix": self.fix}
        if with_changes:
            out["changes"] = list(self.changes)
        return out

    def __repr__(self):
        return f"Finding({self.id!r}, {self.status!r}, {self.detail!r})"


def passed(id, detail):
    return Finding(id, PASS, detail)


def warned(id, detail, fix, repair=None):
    return Finding(id, WARN, detail, fix, repair)


def failed(id, detail, fix, repair=None):
    return Finding(id, FAIL, detail, fix, repair)
