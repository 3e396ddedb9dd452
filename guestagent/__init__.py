"""guestagent: a small, predictable first-boot agent for Linux cloud images."""

__version__ = "0.1.0"


def named_module(dotted):
    """Import the module that ``dotted`` names and return it: the one place a
    name becomes code (a step by steps.load, a configured datasource or network
    renderer, the boot process's warm-up list).  Each caller checks the name
    against its own list first; here anything but dotted identifiers is refused,
    so no name can be a path or reach outside the package it was meant for."""
    import importlib

    if not dotted or not all(part.isidentifier() for part in dotted.split(".")):
        raise ImportError(f"not a module name: {dotted!r}")
    return importlib.import_module(dotted)
