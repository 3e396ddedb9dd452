"""Whether and how this boot runs the agent: its off switches, the proof that a
reboot needs no agent (`guard`), the agent's own files checked before use
(`own_files`), and telling systemd that a unit is up (`readiness`)."""
