#!/usr/bin/env python3
"""Writes the fuzz targets' seed corpora from the interop vectors.

Reads ../testdata/interop/handshake-vectors.json and quote-vectors.json and
writes one file per input into corpus/<target>/seed-<case>. Run it from
anywhere; it rewrites the seed files (and only them) each time:

    python3 fuzz/seed.py
"""

import hashlib
import json
import pathlib

FUZZ = pathlib.Path(__file__).resolve().parent
INTEROP = FUZZ.parent / "testdata" / "interop"


def load(name):
    with open(INTEROP / name, encoding="utf-8") as f:
        return json.load(f)


def main():
    hs = load("handshake-vectors.json")
    qv = load("quote-vectors.json")
    seeds = {"request": {}, "reply": {}, "quote_roundtrip": {}, "addr": {}}

    def add(target, case, data):
        if isinstance(data, str):
            data = data.encode("utf-8")
        # Deduplicate by content; name by the first case that has it.
        key = hashlib.sha1(data).hexdigest()
        seeds[target].setdefault(key, (case, data))

    for v in hs["acceptor_replies"]:
        add("request", "acceptor-" + v["case"], bytes.fromhex(v["request_hex"]))
        add("reply", "acceptor-" + v["case"], bytes.fromhex(v["reply_hex"]))
    for v in hs["dialer_requests"]:
        add("request", "dialer-" + v["case"], bytes.fromhex(v["request_hex"]))
        add("reply", "dialer-" + v["case"], v["reply_sent"])
        add("addr", "dial-to-" + v["case"], v["dial_to"])
    for i, v in enumerate(qv["sscanf_dial"]):
        add("request", "sscanf-%02d" % i, v["line"])
        for field in ("src", "dst"):
            if field in v:
                add("addr", "sscanf-%02d-%s" % (i, field), v[field])
    for i, v in enumerate(qv["quote"]):
        add("quote_roundtrip", "quote-input-%02d" % i, bytes.fromhex(v["input_hex"]))
        add("quote_roundtrip", "quote-quoted-%02d" % i, v["quoted"])
    for i, v in enumerate(qv["unquote"]):
        add("quote_roundtrip", "unquote-input-%02d" % i, v["input"])
    # Address forms the vectors lack: brackets, colons in hosts, odd ports.
    for i, s in enumerate(["[a:b]:2", "[α]:1", ":1", "α:+7", "α:-0", "a:b:1",
                           "[a:1", "a]:1", "[a]b:1", "α:4294967296", "α:x"]):
        add("addr", "extra-%02d" % i, s)

    for target, found in seeds.items():
        d = FUZZ / "corpus" / target
        d.mkdir(parents=True, exist_ok=True)
        for old in d.glob("seed-*"):
            old.unlink()
        for case, data in found.values():
            (d / ("seed-" + case)).write_bytes(data)
        print("%s: %d seeds" % (target, len(found)))


if __name__ == "__main__":
    main()
