"""The #cloud-config schema: which keys guestagent knows, and each key's validator.

Below both the user-data reader (guestagent/userdata, which runs the
validators as it reads the parts) and the steps (which read the values
that passed): nothing here imports either, and nothing here touches the
system.  Like cloud-init's one schema, the rules for a key live here and
not in the step that acts on it, so a step reads values already checked
instead of checking them again.

  keys.py    the table: one entry per top-level key (the step that acts on
             it and its validator, or why it is ignored or unsupported)
  checks.py  what a validator is made of: Note, Bad, the shared types
  <name>.py  the validators of the keys one step reads (users.py: users,
             user, groups...; commands.py: runcmd and bootcmd)

Every validator is ``check(value, notes) -> the checked value``: it raises
`checks.Bad` to drop the whole key and appends a `checks.Note` for each
entry or field it drops.
"""
