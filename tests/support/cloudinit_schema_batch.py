"""Run cloud-init's own `cloud-init schema --config-file F` over many files in
one process (started by cloudinit_validator.py with the unpacked tree on
PYTHONPATH; never imported by the suite itself).

Each file goes through cloud-init's handle_schema_args, the very function
behind the command line, with the arguments its own parser makes; the
verdict is what the command's exit status would be.  For a file it rejects,
the problems are asked for again from validate_cloudconfig_file (which that
function calls), as (path, message) pairs.  Prints one JSON object:
{path: {"valid": bool, "output": str, "problems": [[path, message]...]}}.
"""

import contextlib
import io
import json
import sys


def main(paths):
    from cloudinit.config import schema

    parser = schema.get_parser()
    results = {}
    for path in paths:
        out = io.StringIO()
        valid = True
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
            try:
                schema.handle_schema_args("schema", parser.parse_args(["--config-file", path]))
            except SystemExit as e:
                valid = e.code in (0, None)
        results[path] = {"valid": valid, "output": out.getvalue(),
                         "problems": [] if valid else problems(schema, path)}
    json.dump(results, sys.stdout)


def problems(schema, path):
    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
        try:
            schema.validate_cloudconfig_file(path, schema.get_schema())
        except schema.SchemaValidationError as e:
            return [[p.path, p.message] for p in e.schema_errors]
        except RuntimeError as e:
            return [["", str(e)]]
    return []


if __name__ == "__main__":
    main(sys.argv[1:])
