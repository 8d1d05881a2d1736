#!/usr/bin/env python3
"""make_seeds.py: writes the seed corpus of every fuzz target into
tests/fuzz/corpus/TARGET/ from the project's test data and examples, with
protobuf messages encoded by hand (no protobuf module needed).
Run from anywhere: python3 tests/fuzz/make_seeds.py"""
import os

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))


def varint(n):
    out = bytearray()
    n &= (1 << 64) - 1
    while True:
        b = n & 0x7F
        n >>= 7
        out.append(b | (0x80 if n else 0))
        if not n:
            return bytes(out)


def fv(field, n):  # varint field
    return varint(field << 3) + varint(n)


def fb(field, data):  # length-delimited field
    if isinstance(data, str):
        data = data.encode()
    return varint(field << 3 | 2) + varint(len(data)) + data


def read(rel):
    with open(os.path.join(ROOT, rel), "rb") as f:
        return f.read()


def write(target, name, data):
    d = os.path.join(HERE, "corpus", target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


ID_A = bytes(range(1, 33))
ID_B = bytes(range(33, 65))
ADDR_A = ID_A.hex() + "@tcp://127.0.0.1:7401"
ADDR_B = ID_B.hex() + "@tcp://127.0.0.1:7402"
ORDERS_YAML = read("docs/examples/orders.yaml")
ORDERS_JSON = (
    b'{"apiVersion":"datamesh.io/v1","kind":"DataProduct","metadata":{"domain":"commerce",'
    b'"name":"orders","owner":{"contact":"a@b.co","team":"t"},"version":"1.0.0"},"spec":'
    b'{"schema":{"fields":[{"name":"orderId","type":"uuid"},{"name":"amount","type":"double",'
    b'"exclusiveMinimum":0}],"primaryKey":"orderId","type":"inline"}}}'
)
LINES = (
    b'{"orderId":"3f1c0000-aaaa-bbbb-cccc-0123456789ab","amount":1.5,"status":"paid",'
    b'"ts":"2026-03-01T12:34:56Z","note":"x"}\n'
    b'{"orderId":"bad","amount":-1}\n\n   \n{}\n'
)


# ---- SWIM ----
def update(node_id, addr, domain, state=0, inc=0, frm=None):
    m = fb(1, node_id) + fb(2, addr) + fb(3, domain) + fv(4, state) + fv(5, inc)
    if frm:
        m += fb(6, frm)
    return m


def swim(kind, seq=1, sender=None, target=None, taddr=None, updates=()):
    m = fv(1, kind) + fv(2, seq)
    m += fb(3, sender if sender is not None else update(ID_A, ADDR_A, "alpha"))
    if target:
        m += fb(4, target)
    if taddr:
        m += fb(5, taddr)
    for u in updates:
        m += fb(6, u)
    return m


SWIMS = {
    "ping": swim(1, target=ID_B),
    "ping_req": swim(2, target=ID_B, taddr=ADDR_B),
    "ack": swim(3, seq=7),
    "nack": swim(4, seq=7),
    "gossip": swim(5, updates=[update(ID_B, ADDR_B, "beta", 1, 3, ID_A),
                               update(ID_B, ADDR_B, "beta", 2, 2**64 - 1)]),
    "join": swim(6),
    "sync": swim(7, updates=[update(ID_B, ADDR_B, "beta"), update(ID_B, ADDR_B, "beta", 3, 5)]),
    "left": swim(5, sender=update(ID_A, ADDR_A, "alpha", 3, 9)),
}
for k, v in SWIMS.items():
    write("swim", k, v)


# ---- catalog ----
def entry(key, payload, version=1, tomb=False, origin=ID_A):
    m = fb(1, origin) + fb(2, key) + fv(3, version) + fv(4, 1800000000000)
    if payload:
        m += fb(5, payload)
    m += fb(6, bytes(64))
    if tomb:
        m += fv(7, 1)
    return m


NODE_REC = fb(1, "commerce") + fb(2, ADDR_A) + fb(3, "commerce/orders")
ENTRIES = {
    "node": entry("node", NODE_REC),
    "product": entry("product/commerce/orders", ORDERS_JSON, 2),
    "tombstone": entry("product/commerce/orders", b"", 3, True),
}
for k, v in ENTRIES.items():
    write("catalog", "entry_" + k, v)
DELTA = b"".join(fb(1, e) for e in ENTRIES.values()) + fv(2, 1)
DIGEST = fb(1, fb(1, ID_A) + fv(2, 3)) + fb(1, fb(1, ID_B) + fv(2, 0))
write("catalog", "delta", DELTA)
write("catalog", "digest", DIGEST)
# Access and governance keys (not in DELTA, which the envelope seeds share).
ACL_REC = fb(1, "ab" * 32) + fb(1, "group:analysts") + fb(2, "group:interns")
GOV_ROOT = fv(1, 2) + fb(2, ID_B)
GOV_DOC = b"apiVersion: datamesh.io/v1\nkind: Group\nmetadata: {name: analysts}\nspec: {keys: []}\n"
for k, v in {
    "acl": entry("acl/commerce/orders", ACL_REC, 4),
    "gov_root": entry("gov/root", GOV_ROOT, 1),
    "gov_doc": entry("gov/doc/analysts", GOV_DOC, 2),
    # dm.HealthRecord: outcome, measured_at, one check, one SLA term
    "health": entry("health/commerce/orders",
                    fb(1, "fail") + fv(2, 1800000000000) + fv(4, 10)
                    + fb(6, fb(1, "unique(sku)") + fb(2, "unique") + fb(3, "sku") + fb(4, "fail"))
                    + fb(7, fb(1, "freshness") + fb(2, "5m") + fb(3, "7m") + fv(4, 0)), 5),
}.items():
    write("catalog", "entry_" + k, v)


# ---- envelopes ----
def env(field, body, rid=1):
    return fv(1, rid) + fb(field, body)


ENVS = {
    "ping": env(3, b""),
    "register_yaml": env(5, fb(1, ORDERS_YAML)),
    "register_json": env(5, fb(1, ORDERS_JSON)),
    "register_empty": env(5, b""),
    "ingest": env(7, fb(1, "commerce") + fb(2, "orders") + fv(3, 1) + fb(4, LINES) + fb(6, "in.ndjson")),
    "ingest_oversized": env(7, fb(1, "commerce") + fb(2, "orders") + fb(4, b'{"a":') + fv(5, 99999)),
    "ingest_empty": env(7, b""),
    "deregister": env(24, fb(1, "commerce") + fb(2, "orders")),
    "products": env(9, b""),
    "products_mesh": env(9, fv(1, 1)),
    "quarantine": env(11, fb(1, "commerce") + fb(2, "orders") + fv(3, 0) + fv(4, 10)),
    "describe": env(17, fb(1, "commerce") + fb(2, "orders")),
    "query": env(13, fb(1, "SELECT 1") + fv(2, 10)),
    "query_next": env(14, fv(1, 5)),
    "query_close": env(15, fv(1, 5)),
    "members": env(21, b""),
    "catalog_sync": env(23, fb(1, ADDR_A) + fb(2, bytes(32)) + fb(3, DIGEST) + fb(4, DELTA)),
    "swim": env(20, SWIMS["gossip"]),
    "body_after_body": env(3, b"") + fb(5, fb(1, ORDERS_JSON)),
    "no_id": fb(7, fb(1, "commerce")),
    "quality": env(41, fb(1, "commerce") + fb(2, "orders") + fv(4, 3)),
    "lineage": env(43, fb(1, "commerce") + fb(2, "orders") + fv(3, 1) + fv(5, 4)),
    "search": env(45, fb(1, "orders customers") + fv(2, 10)),
}
for k, v in ENVS.items():
    write("envelope", k, v)

# ---- contracts ----
for rel in ["docs/examples/orders.yaml", "docs/examples/orders-avro.yaml",
            "tests/data/contracts/seed.yaml", "tests/data/contracts/missing-avsc.yaml"]:
    write("contract", os.path.basename(rel), read(rel))
write("contract", "orders.json", ORDERS_JSON)
write("contract", "two_docs.yaml", ORDERS_YAML + b"\n---\n" + ORDERS_YAML.replace(b"orders", b"returns"))

# ---- records ----
n = 0
for line in read("tests/data/records/orders.ndjson").splitlines() + read(
        "docs/examples/orders.ndjson").splitlines():
    if line.strip():
        write("record", "orders_%02d" % n, line)
        n += 1
        if n >= 16:
            break
write("record", "every", b'{"id":"3f1c0000-aaaa-bbbb-cccc-0123456789ab","n":42,"x":0.5,"s":"ab-1",'
      b'"free":"a","ts":"2026-03-01T12:34:56.789+01:00","d":"2026-03-01","b":true,"st":"paid"}')
write("record", "escapes", b'{"id":"3f1c0000-aaaa-bbbb-cccc-0123456789ab","n":-7,"s":"x",'
      b'"free":"\\u00e9\\ud83d\\ude00\\n","ts":"2026-03-01T00:00:00Z","nested":{"a":[1,2,{"b":null}]}}')

# ---- avro ----
write("avro", "orders.avsc", read("docs/examples/orders.avsc"))
write("avro", "every.avsc", b'{"type":"record","name":"r","fields":['
      b'{"name":"a","type":"boolean"},{"name":"b","type":"int"},{"name":"c","type":"long"},'
      b'{"name":"d","type":"float"},{"name":"e","type":"double"},{"name":"f","type":"string"},'
      b'{"name":"g","type":{"type":"enum","name":"E","symbols":["X","Y"]}},'
      b'{"name":"h","type":["null","string"]},{"name":"i","type":["long","null"]},'
      b'{"name":"j","type":{"type":"int","logicalType":"date"}},'
      b'{"name":"k","type":{"type":"long","logicalType":"timestamp-millis"}},'
      b'{"name":"l","type":{"type":"long","logicalType":"timestamp-micros"}},'
      b'{"name":"m","type":{"type":"string","logicalType":"uuid"}}]}')
