"""The package's layers: a module imports only what lies below it.

README's Layout table lists guestagent/'s top level in this order; an import
that points up the table (a step importing the runner, the seam importing a
step) is the arrow this test refuses, lazy imports inside functions included.
"""

import ast
import os

import guestagent

# top to bottom; a name here may import only names after it
LAYERS = ["cli", "arguments", "boot_process", "status", "checkimage", "clean", "runner",
          "stages", "boot", "steps", "config", "datasources", "userdata", "schema",
          "accounts", "state", "metadata", "log", "system"]
PACKAGE = os.path.dirname(guestagent.__file__)


def _imports():
    """(file, line, importing layer, imported layer) for every guestagent import."""
    for top, _, files in os.walk(PACKAGE):
        for name in files:
            if not name.endswith(".py"):
                continue
            path = os.path.join(top, name)
            module = os.path.relpath(path, os.path.dirname(PACKAGE))[:-3].replace(os.sep, ".")
            package = module[: -len(".__init__")] if module.endswith(".__init__") \
                else module.rpartition(".")[0]
            layer = module.split(".")[1] if "." in module else None
            with open(path) as f:
                tree = ast.parse(f.read())
            for node in ast.walk(tree):
                if not isinstance(node, ast.ImportFrom):
                    continue
                if node.level:
                    parts = package.split(".")
                    base = ".".join(parts[:len(parts) - node.level + 1]
                                    + ([node.module] if node.module else []))
                else:
                    base = node.module or ""
                if base == "guestagent":
                    targets = [alias.name for alias in node.names]
                elif base.startswith("guestagent."):
                    targets = [base.split(".")[1]]
                else:
                    continue
                for target in targets:
                    yield os.path.relpath(path, PACKAGE), node.lineno, layer, target


def test_every_top_level_name_has_a_layer():
    names = {n[:-3] if n.endswith(".py") else n for n in os.listdir(PACKAGE)
             if not n.startswith("__") and (n.endswith(".py") or
                                            os.path.isdir(os.path.join(PACKAGE, n)))}
    assert names == set(LAYERS)


def test_no_import_points_up_the_layers():
    upward = [f"{path}:{line} {layer} imports {target}"
              for path, line, layer, target in _imports()
              if layer in LAYERS and target in LAYERS and target != layer
              and LAYERS.index(target) < LAYERS.index(layer)]
    assert upward == []


def test_the_walk_sees_module_level_and_lazy_imports():
    # or the test above could not fail: the runner imports steps at the top,
    # the CLI imports status only inside the function that needs it
    found = {(layer, target) for _, _, layer, target in _imports()}
    assert ("runner", "steps") in found and ("cli", "status") in found
