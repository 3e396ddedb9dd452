"""`guestagent status`: what the agent did this boot, and waiting until it is done."""
