"""HEAD objects through the oss2 Python SDK and print their server-side
encryption headers as JSON (used by console.test.js to check, outside the
console, how the console stored what it uploaded).

Usage: python oss2_head.py <endpoint> <bucket> <key> [<key> ...]
Credentials: ARCA_ROOT_ACCESS_KEY_ID / ARCA_ROOT_ACCESS_KEY_SECRET.

Prints one JSON object: {"<key>": {"status": 200,
  "x-oss-server-side-encryption": ..., "x-oss-server-side-encryption-key-id": ...,
  "x-oss-server-side-data-encryption": ..., "etag": ..., "x-oss-hash-crc64ecma": ...}, ...}
A failed HEAD gives {"error": "<code>", "status": <status>} for that key.
"""

import json
import os
import sys

import oss2

HEADERS = (
    "x-oss-server-side-encryption",
    "x-oss-server-side-encryption-key-id",
    "x-oss-server-side-data-encryption",
    "etag",
    "x-oss-hash-crc64ecma",
)


def main(argv):
    if len(argv) < 4:
        print(__doc__, file=sys.stderr)
        return 2
    endpoint, bucket_name, keys = argv[1], argv[2], argv[3:]
    auth = oss2.Auth(os.environ["ARCA_ROOT_ACCESS_KEY_ID"], os.environ["ARCA_ROOT_ACCESS_KEY_SECRET"])
    bucket = oss2.Bucket(auth, endpoint, bucket_name, connect_timeout=10)
    out = {}
    for key in keys:
        try:
            result = bucket.head_object(key)
        except oss2.exceptions.OssError as e:
            out[key] = {"status": e.status, "error": e.code, "message": e.message}
            continue
        entry = {"status": result.status}
        for name in HEADERS:
            entry[name] = result.headers.get(name)
        out[key] = entry
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
