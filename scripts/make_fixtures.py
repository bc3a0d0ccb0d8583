#!/usr/bin/env python3
"""Regenerates fixtures/ deterministically (standard library only): synthetic SEO keywords,
small clustered embeddings in every supported format, and one file per input defect.

    python3 scripts/make_fixtures.py
"""

import json
import math
import os
import struct

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "fixtures")

TOPICS = [
    "running shoes", "mortgage rates", "vegan recipes", "python tutorial", "standing desk",
    "electric bike", "yoga mat", "coffee grinder", "car insurance", "hiking boots",
    "wireless earbuds", "dog food", "gaming laptop", "air purifier", "protein powder",
    "home solar panels", "credit card", "wedding dress", "kitchen knife", "baby stroller",
    "tax software", "language app", "garden hose", "office chair", "travel backpack",
]
MODIFIERS = [
    "{t}", "best {t}", "cheap {t}", "{t} near me", "{t} for women", "{t} for men", "{t} 2026",
    "{t} review", "how to choose {t}", "buy {t} online", "{t} sale", "top 10 {t}",
    "{t} for beginners", "{t} comparison", "affordable {t}", "{t} deals", "used {t}",
    "{t} brands", "{t} price", "is {t} worth it", "{t} reddit", "{t} guide", "{t} discount code",
    "luxury {t}", "{t} for kids", "{t} black friday", "{t} alternatives", "{t} with warranty",
    "{t} amazon", "{t} size chart", "{t} how to use", "{t} pros and cons", "{t} uk",
    "{t} for seniors", "{t} eco friendly", "{t} lightweight", "small {t}", "large {t}",
    "{t} rental", "{t} repair", "{t} cleaning", "{t} accessories", "{t} gift ideas",
    "{t} under 100", "{t} under 500", "{t} for students", "{t} in stock", "{t} outlet",
    "{t} best rated", "{t} ranking", "{t} vs competitors", "{t} subscription", "new {t}",
    "{t} for travel", "{t} for home", "{t} for office", "{t} tips", "{t} mistakes",
    "{t} faq", "{t}, explained",
]


class Lcg:
    """A tiny deterministic generator (64-bit LCG), so fixtures never depend on Python's RNG."""

    def __init__(self, seed):
        self.state = seed

    def next(self):
        self.state = (self.state * 6364136223846793005 + 1442695040888963407) % 2**64
        return (self.state >> 11) / float(2**53)

    def gauss(self):
        return sum(self.next() for _ in range(12)) - 6.0


def write(name, data):
    path = os.path.join(OUT, name)
    with open(path, "wb") as f:
        f.write(data if isinstance(data, bytes) else data.encode("utf-8"))


def csv_field(s):
    if any(c in s for c in ',"\n'):
        return '"' + s.replace('"', '""') + '"'
    return s


def keywords():
    rng = Lcg(1)
    rows = []
    for t in TOPICS:
        for m in MODIFIERS:
            kw = m.format(t=t)
            volume = int(20000 / (1 + rng.next() * 200) ** 1.3) + 10
            rows.append((kw, volume))
    # Duplicates differing in case and spacing: merged, volumes summed.
    rows += [("Running Shoes", 5), ("  best running shoes ", 7), ("MORTGAGE RATES", 3)]
    order = sorted(range(len(rows)), key=lambda i: rng.next())
    lines = ["keyword,volume"]
    for i in order:
        kw, volume = rows[i]
        vol = '"{:,}"'.format(volume) if volume >= 1000 else str(volume)
        lines.append(csv_field(kw) + "," + vol)
    write("keywords.csv", "\n".join(lines) + "\n")
    txt = [m.format(t=t) for t in TOPICS[:10] for m in MODIFIERS[:30]]
    write("keywords.txt", "\n".join(txt) + "\n")


def blobs(n, dim, k, seed):
    rng = Lcg(seed)
    centres = [[rng.gauss() for _ in range(dim)] for _ in range(k)]
    rows = []
    for i in range(n):
        c = centres[i % k]
        v = [x + 0.25 * rng.gauss() for x in c]
        norm = math.sqrt(sum(x * x for x in v))
        rows.append([x / norm for x in v])
    return rows


def npy(rows, descr, fmt, fortran=False, shape=None):
    shape = shape or (len(rows), len(rows[0]))
    header = "{'descr': '%s', 'fortran_order': %s, 'shape': (%d, %d), }" % (
        descr, "True" if fortran else "False", shape[0], shape[1])
    header += " " * (63 - (10 + len(header)) % 64) + "\n"
    body = b"".join(struct.pack(fmt[0] + fmt[1] * len(r), *r) for r in rows)
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header.encode() + body


def embeddings():
    rows = blobs(1200, 16, 12, 2)
    write("embeddings.npy", npy(rows, "<f4", "<f"))
    write("embeddings_f64.npy", npy([list(struct.unpack("<16f", struct.pack("<16f", *r))) for r in rows], "<f8", "<d"))
    small = blobs(400, 8, 6, 3)
    jsonl = [json.dumps({"id": "doc-%d" % i, "text": "document %d" % i,
                         "embedding": [round(x, 6) for x in r]}) for i, r in enumerate(small)]
    write("embeddings.jsonl", "\n".join(jsonl) + "\n")
    lines = ["id,text," + ",".join("v%d" % j for j in range(8))]
    for i, r in enumerate(small):
        lines.append("row-%d,%s,%s" % (i, csv_field("text, %d" % i), ",".join("%.6f" % x for x in r)))
    write("embeddings.csv", "\n".join(lines) + "\n")


def bad():
    write("bad_empty.csv", "")
    write("bad_missing_column.csv", "kw,volume\nshoes,10\nhats,5\n")
    write("bad_dimension.jsonl", '{"embedding": [1, 2, 3]}\n{"embedding": [4, 5, 6]}\n{"embedding": [7, 8]}\n')
    write("bad_nan.csv", "id,v0,v1\na,0.1,0.2\nb,NaN,0.3\n")
    write("bad_inf.jsonl", '{"embedding": [1.0, 2.0]}\n{"embedding": [1e39, 2.0]}\n')
    write("bad_non_numeric.csv", "v0,v1\n0.5,0.25\n0.5,abc\n")
    write("bad_invalid_utf8.txt", b"red shoes\nblue shoes\ngr\xffeen shoes\n")
    rows = blobs(4, 3, 2, 4)
    write("bad_truncated.npy", npy(rows, "<f4", "<f")[:-5])
    write("bad_unsupported_dtype.npy", npy([[1, 2], [3, 4]], "<i4", "<i"))
    write("bad_big_endian.npy", npy([[1.0, 2.0], [3.0, 4.0]], ">f4", ">f"))
    write("bad_fortran.npy", npy(rows, "<f4", "<f", fortran=True))
    write("bad_not_2d.npy", npy(rows, "<f4", "<f").replace(b"(4, 3)", b"(12,) ", 1))
    write("bad_nan.npy", npy([[0.1, 0.2], [0.3, float("nan")]], "<f4", "<f"))
    write("bad_duplicate_ids.jsonl", '{"id": "a", "embedding": [1]}\n{"id": "b", "embedding": [2]}\n{"id": "a", "embedding": [3]}\n')
    write("bad_negative_volume.csv", "keyword,volume\nshoes,10\n\"hats,\nred\",5\nsocks,-3\n")
    write("bad_non_numeric_volume.csv", "keyword,volume\nshoes,10\nhats,lots\n")
    write("bad_ragged_row.csv", "keyword,volume\nshoes,10\nhats,5,extra\n")
    write("bad_blank_only.txt", "\n   \n\n")
    # One keyword, fewer than the 2 clusters kbatch asks for at the least.
    write("bad_too_few_items.txt", "the only keyword\n")


if __name__ == "__main__":
    os.makedirs(OUT, exist_ok=True)
    keywords()
    embeddings()
    bad()
