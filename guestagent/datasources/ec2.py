"""EC2-compatible metadata (the 2009-04-04 tree), with IMDSv2 tokens.

A 401 on the first request means the service wants a session token: one
PUT /latest/api/token, then every request carries it.
"""

import logging
import re

from ..metadata import Metadata, dedupe, text
from . import NotFound

log = logging.getLogger(__name__)

NEEDS_NETWORK = True
VERSION = "2009-04-04"
TOKEN_TTL = "21600"
_KEY_INDEX = re.compile(r"^(\d{1,4})=")


def fetch(ctx):
    client = ctx.client()
    headers = {}

    def get(path):
        return client.get(f"{VERSION}/{path}", headers=headers)

    r = get("meta-data/instance-id")
    if r.status == 401:
        t = client.get("latest/api/token", method="PUT",
                       headers={"X-aws-ec2-metadata-token-ttl-seconds": TOKEN_TTL})
        if t.status != 200 or not t.body.strip():
            raise NotFound(f"EC2 service wants a token but PUT latest/api/token "
                           f"answered HTTP {t.status}")
        headers["X-aws-ec2-metadata-token"] = t.text().strip()
        log.debug("using an IMDSv2 session token")
        r = get("meta-data/instance-id")
    if r.status != 200 or not r.body.strip():
        raise NotFound(f"{client.base}/{VERSION}/meta-data/instance-id answered HTTP {r.status}")
    iid = r.text().strip()

    hostname = ""
    for name in ("local-hostname", "hostname"):
        r = get(f"meta-data/{name}")
        if r.status == 200 and r.body.strip():
            hostname = r.text().strip()
            break

    keys = []
    r = get("meta-data/public-keys/")
    if r.status == 200:
        for line in r.text().splitlines():
            m = _KEY_INDEX.match(line.strip())
            if not m:
                continue
            k = get(f"meta-data/public-keys/{m.group(1)}/openssh-key")
            if k.status == 200:
                keys += [ln.strip() for ln in k.text().splitlines() if ln.strip()]

    from .http import Refused
    try:
        r = get("user-data")
        user_data = r.body if r.status == 200 else b""
    except Refused as e:
        # only the user-data is refused: the instance id, name and keys still count
        log.warning("ignoring the user-data: %s", e)
        user_data = b""
    return Metadata(source=f"ec2 ({client.base})", instance_id=iid,
                    hostname=text(hostname, "hostname"), public_keys=dedupe(keys),
                    user_data=user_data,
                    raw={"meta-data": {"instance-id": iid, "local-hostname": hostname}})
