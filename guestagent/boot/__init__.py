"""Whether and how this boot runs the agent: its off switches, the proof that a
reboot needs no agent (`guard`), the agent's own files checked before use
(`own_files`), telling a stage's unit or systemd that what a login needs is
done (`readiness`), and the channel through which the stage units signal the
boot's one process (`signals`, for boot_process.py)."""
