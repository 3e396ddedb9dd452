"""`guestagent query`: the metadata the last run stored, secrets redacted,
under cloud-init's names (v1.instance_id, ds.meta_data..., sys_info)."""

import json
import sys

from ..log import escape as shown
from ..metadata import instance_data
from ..state import State


def query_command(args, system):
    md = State(system).stored_metadata()
    if md is None:
        print("guestagent: no stored metadata: the agent has not found a datasource yet",
              file=sys.stderr)
        return 3
    data = md.public_dict()
    # cloud-init's `query` names: v1.instance_id, ds.meta_data..., sys_info
    published = instance_data.read(system, instance_data.PUBLIC)
    for name, value in (published or instance_data.redacted(
            instance_data.build(md, system))).items():
        if name in ("v1", "ds", "sys_info"):
            data[name] = value
    if args.key:
        sep = "/" if "/" in args.key or args.key in data else "."
        for part in args.key.split(sep):
            if isinstance(data, dict) and part in data:
                data = data[part]
            elif isinstance(data, list) and part.isdigit() and int(part) < len(data):
                data = data[int(part)]
            else:
                print(f"guestagent: no such key: {args.key}", file=sys.stderr)
                return 2
    # metadata strings are escaped before they reach a terminal: a value with
    # escape sequences or line breaks must not redraw or forge lines
    if args.json:
        print(json.dumps(data, indent=2, sort_keys=True))
    elif isinstance(data, list):
        for item in data:
            print(shown(item) if isinstance(item, str) else json.dumps(item, sort_keys=True))
    elif isinstance(data, dict):
        print(json.dumps(data, indent=2, sort_keys=True))
    elif data is not None:
        print(shown(data))
    return 0
