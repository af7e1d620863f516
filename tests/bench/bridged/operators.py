#!/usr/bin/env python3
"""Operators in bulk through Hotline's HTTP API (tests/bench/bridged.sh).

  operators.py add    BASE_URL TOKEN N   POST /api/operators: op0001..opN (SIP user = name,
                                         password bench-pass-NNNN); prints how many were added
  operators.py online BASE_URL TOKEN N   PUT /api/operators/NAME/state {"state":"online"}
  operators.py status BASE_URL TOKEN     one line: the operators by state, how many have a
                                         registered phone, and the queues' figures

Names and passwords match users.csv, which the script writes for SIPp's REGISTERs.
One kept-alive connection; exit status 1 when a request failed.
"""

import collections
import http.client
import json
import sys
import urllib.parse


def name(i):
    return "op%04d" % i


def password(i):
    return "bench-pass-%04d" % i


class Api:
    def __init__(self, base, token):
        u = urllib.parse.urlparse(base)
        self.host, self.port = u.hostname, u.port
        self.headers = {"Authorization": "Bearer " + token, "Content-Type": "application/json"}
        self.conn = None

    def call(self, method, path, body=None):
        for attempt in (1, 2):
            if self.conn is None:
                self.conn = http.client.HTTPConnection(self.host, self.port, timeout=10)
            try:
                self.conn.request(method, path, body=None if body is None else json.dumps(body),
                                  headers=self.headers)
                r = self.conn.getresponse()
                return r.status, r.read()
            except (OSError, http.client.HTTPException):
                self.conn.close()
                self.conn = None
                if attempt == 2:
                    raise
        return 0, b""


def main():
    cmd, base, token = sys.argv[1], sys.argv[2], sys.argv[3]
    api = Api(base, token)
    if cmd in ("add", "online"):
        n = int(sys.argv[4])
        codes = collections.Counter()
        for i in range(1, n + 1):
            if cmd == "add":
                status, body = api.call("POST", "/api/operators",
                                        {"name": name(i), "sip_password": password(i)})
                ok = status == 201
            else:
                status, body = api.call("PUT", "/api/operators/%s/state" % name(i), {"state": "online"})
                ok = status == 204
            codes[status] += 1
            if not ok and codes[status] <= 3:
                print("   %s %s: HTTP %d %s" % (cmd, name(i), status, body[:200].decode(errors="replace")))
        good = codes[201 if cmd == "add" else 204]
        print("%s: %d of %d (HTTP statuses: %s)" % (cmd, good, n, dict(codes)))
        sys.exit(0 if good == n else 1)
    if cmd == "status":
        status, body = api.call("GET", "/api/operators")
        ops = json.loads(body) if status == 200 else []
        states = collections.Counter(o["state"] for o in ops)
        registered = sum(1 for o in ops if o.get("phone_registered"))
        status, body = api.call("GET", "/api/queues")
        queues = json.loads(body) if status == 200 else []
        q = " ".join("queue=%s waiting=%d busy=%d online=%d available=%d" % (
            x["queue"], x["waiting"], x["busy"], x["online"], x["available"]) for x in queues)
        print("operators=%d registered=%d %s %s" % (
            len(ops), registered, " ".join("%s=%d" % kv for kv in sorted(states.items())), q))
        return
    sys.exit("unknown command " + cmd)


if __name__ == "__main__":
    main()
