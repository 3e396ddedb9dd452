"""Whose accounts these are (guestagent/accounts/plan.py): one answer for the
users, admin_pass, passwords and root_login steps, with cloud-init's
documented meaning (cc_users_groups: no `users` means `users: [default]`;
`users` without "default" skips the default user; `user` overrides the
default user's configuration and, as its ug_util does, puts the default
user back in the list; cc_set_passwords: `password` is the default user's).

Each #cloud-config goes through the real decoder and validators first, so
the planner sees what a boot gives it.  The steps acting on the plan, on a
scratch root: tests/test_users_fields.py (issue 27 part 1's bug).
"""

import pytest

from guestagent.accounts import plan as account_plan
from guestagent.metadata import Metadata
from guestagent.userdata import decode

from support.step_context import StepContext

ED1 = ("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIO5j2lnT1qR7/lpXRlCfui2BILCHMsFxcyVGD4ENC2q6 "
       "demo@example")
CONF = "[main]\ndefault_user = debian\n"


def _ctx(root, text, conf=CONF, admin=None):
    ud = decode(("#cloud-config\n" + text).encode(), 1 << 20, log_warnings=False)
    md = Metadata(source="test", instance_id="i-1", public_keys=[ED1], admin_pass=admin)
    return StepContext(root, md, cloud_config=ud.cloud_config, conf_text=conf)


# (#cloud-config, [main] default_user, accounts created in order, who holds the
#  instance's keys (and admin_pass), whose password `password` sets)
CASES = [
    # no users: `users: [default]`
    ("{}", "debian", ["debian"], "debian", "debian"),
    ("users: [default]", "debian", ["debian"], "debian", "debian"),
    # the configured default_user empty: the distro's account (examples/root is Debian)
    ("{}", "", ["debian"], "debian", "debian"),
    ("{}", "admin", ["admin"], "admin", "admin"),
    # users without default: the default user is not created; the keys go to
    # the first listed (this agent's choice; cloud-init installs them nowhere)
    ("users: [alice]", "debian", ["alice"], "alice", None),
    ("users: [alice, bob]", "debian", ["alice", "bob"], "alice", None),
    ("users: []", "debian", [], None, None),
    ("users: [default, alice]", "debian", ["debian", "alice"], "debian", "debian"),
    ("users: [alice, default]", "debian", ["alice", "debian"], "debian", "debian"),
    # an entry named like the default user configures it, but "default" was
    # not asked for: `password` has no default user, as in cloud-init
    ("users: [{name: debian, sudo: false}]", "debian", ["debian"], "debian", None),
    # `user` renames the default user and puts it back in the list
    ("user: {name: bob}", "debian", ["bob"], "bob", "bob"),
    ("user: bob", "debian", ["bob"], "bob", "bob"),
    ("{users: [alice], user: {name: bob}}", "debian", ["alice", "bob"], "bob", "bob"),
    ("{users: [], user: {name: bob}}", "debian", ["bob"], "bob", "bob"),
    ("{users: [default, alice], user: {name: bob}}", "debian", ["bob", "alice"], "bob",
     "bob"),
    ("{users: [alice, bob], user: {name: bob}}", "debian", ["alice", "bob"], "bob", "bob"),
    # `user` without a name still means the default user, by its usual name
    ("{users: [alice], user: {shell: /bin/sh}}", "debian", ["alice", "debian"], "debian",
     "debian"),
    # system_info.default_user renames it; `user` wins over it
    ("system_info: {default_user: {name: carol}}", "debian", ["carol"], "carol", "carol"),
    ("{system_info: {default_user: {name: carol}}, users: [alice]}", "debian", ["alice"],
     "alice", None),
    ("{system_info: {default_user: {name: carol}}, user: {name: bob}}", "debian", ["bob"],
     "bob", "bob"),
    ("{system_info: {default_user: {name: carol}}, users: [default, alice]}", "admin",
     ["carol", "alice"], "carol", "carol"),
]


@pytest.mark.parametrize("text,configured,created,key_owner,password_owner", CASES,
                         ids=[f"{c[0]}|{c[1]}" for c in CASES])
def test_who_is_created_and_who_gets_the_credentials(root, text, configured, created,
                                                     key_owner, password_owner):
    conf = f"[main]\ndefault_user = {configured}\n"
    plan = account_plan.plan(_ctx(root, text, conf=conf))
    assert [a.name for a in plan.accounts] == created
    assert plan.key_owner == key_owner
    assert plan.admin_pass_owner == key_owner
    assert plan.password_owner == password_owner
    if key_owner:
        # the keys go to an account that is created, and only to it
        holders = [a.name for a in plan.accounts if ("metadata", ED1) in a.keys]
        assert holders == [key_owner]
    default = [a.name for a in plan.accounts if a.is_default]
    assert len(default) <= 1
