"""guestagent: a small, predictable first-boot agent for Linux cloud images."""

__version__ = "0.1.0"
