#!/usr/bin/env python3
"""Regenerates fixtures/ deterministically (standard library only): synthetic SEO keywords,
keyword-tool exports with their real header layouts and encodings, small clustered embeddings
in every supported format, and one file per input defect.

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


def utf16le(text):
    return b"\xff\xfe" + text.encode("utf-16-le")


def tool_keywords(n, seed):
    """`n` synthetic keywords with volumes, as (keyword, volume) pairs."""
    rng = Lcg(seed)
    rows = []
    for t in TOPICS:
        for m in MODIFIERS:
            if len(rows) == n:
                return rows
            if rng.next() < 0.2:
                rows.append((m.format(t=t), int(50000 / (1 + rng.next() * 300) ** 1.2)))
    return rows


# Keyword Planner rounds its averages to these steps.
GKP_STEPS = [10, 20, 30, 50, 70, 90, 110, 140, 170, 210, 260, 320, 390, 480, 590, 720, 880,
             1000, 1300, 1600, 1900, 2400, 2900, 3600, 4400, 5400, 6600, 8100, 9900, 12100,
             14800, 18100, 22200, 27100, 33100, 40500, 49500, 60500, 74000, 90500]
GKP_MONTHS = ["May 2023", "Jun 2023", "Jul 2023", "Aug 2023", "Sep 2023", "Oct 2023",
              "Nov 2023", "Dec 2023", "Jan 2024", "Feb 2024", "Mar 2024", "Apr 2024"]
GKP_HEADER = ["Keyword", "Currency", "Avg. monthly searches", "Three month change",
              "YoY change", "Competition", "Competition (indexed value)",
              "Top of page bid (low range)", "Top of page bid (high range)",
              "Ad impression share", "Organic impression share", "Organic average position",
              "In account?", "In plan?"] + ["Searches: " + m for m in GKP_MONTHS]
GKP_TITLES = ["Keyword Stats 2024-05-01 at 10_12_33", "May 1, 2023 - April 30, 2024"]


def gkp(rows, seed):
    """Keyword Planner's export: UTF-16 LE with a BOM, tab-separated, CRLF, two title lines."""
    rng = Lcg(seed)
    lines = GKP_TITLES + ["\t".join(GKP_HEADER)]
    for kw, volume in rows:
        avg = "" if volume is None else str(volume)
        competition = ["Low", "Medium", "High"][int(rng.next() * 3)]
        low = rng.next() * 2
        monthly = [str(GKP_STEPS[int(rng.next() * len(GKP_STEPS))]) for _ in GKP_MONTHS]
        lines.append("\t".join([kw, "USD", avg, "0%", "-18%", competition,
                                str(int(rng.next() * 100)), "%.2f" % low, "%.2f" % (low * 3),
                                "", "", "", "", ""] + monthly))
    return utf16le("\r\n".join(lines) + "\r\n")


AHREFS_HEADER = ["#", "Keyword", "Country", "KD", "Volume", "CPC", "CPS", "Parent Topic",
                 "Last Update", "SERP Features", "Global volume", "Traffic potential"]


def ahrefs_rows(rows, seed):
    rng = Lcg(seed)
    out = []
    for i, (kw, volume) in enumerate(rows):
        features = ["Featured snippet", "People also ask", "Image pack", "Sitelinks"]
        out.append([str(i + 1), kw, "us", str(int(rng.next() * 90)), str(volume),
                    "%.2f" % (rng.next() * 3), "%.2f" % (0.5 + rng.next()), kw.split(" ")[-1],
                    "2024-05-0%d 10:12:33" % (1 + i % 9),
                    ", ".join(features[:1 + int(rng.next() * 4)]),
                    # "Global volume" is not the volume: the right column must be picked.
                    str(volume * 7 + 3), str(volume * 2)])
    return out


SEMRUSH_HEADER = ["Keyword", "Position", "Previous position", "Search Volume",
                  "Keyword Difficulty", "CPC", "URL", "Traffic", "Traffic (%)", "Traffic Cost",
                  "Competition", "Number of Results", "Trends", "Timestamp",
                  "SERP Features by Keyword", "Keyword Intents", "Position Type"]


def keyword_tools():
    names = [kw for kw, _ in tool_keywords(39, 5)] + ["crème brûlée recipes"]
    rows = [(kw, GKP_STEPS[int(Lcg(i + 1).next() * len(GKP_STEPS))]) for i, kw in enumerate(names)]
    # Keyword Planner leaves the average empty when it has no data.
    rows[7] = (rows[7][0], None)
    write("gkp_keyword_planner.csv", gkp(rows, 6))

    rows = tool_keywords(30, 7)
    table = ahrefs_rows(rows, 8)
    quoted = lambda fields: ",".join('"' + f.replace('"', '""') + '"' for f in fields)
    write("ahrefs_utf8.csv", "\ufeff" + "\n".join(quoted(r) for r in [AHREFS_HEADER] + table) + "\n")
    write("ahrefs_utf16.csv", utf16le("\r\n".join("\t".join(r) for r in [AHREFS_HEADER] + table) + "\r\n"))

    rng = Lcg(9)
    lines = [",".join(SEMRUSH_HEADER)]
    for i, (kw, volume) in enumerate(tool_keywords(30, 10)):
        trends = ",".join("%.2f" % rng.next() for _ in range(12))
        intents = ["commercial", "informational", "navigational,transactional"][i % 3]
        lines.append(",".join([csv_field(kw), str(1 + i % 20), str(2 + i % 20), str(volume),
                               str(int(rng.next() * 100)), "%.2f" % rng.next(),
                               "https://www.example.com/" + kw.replace(" ", "-").replace(",", ""),
                               str(volume // 10), "%.2f" % rng.next(), str(volume // 5),
                               "%.2f" % rng.next(), str(int(rng.next() * 1e9)), csv_field(trends),
                               "2024-05-01", csv_field("Reviews, Video"), csv_field(intents),
                               "Organic"]))
    write("semrush.csv", "\n".join(lines) + "\n")

    # Shapes hand-made files take: a BOM, CRLF, quoted newlines and commas, blank keywords,
    # grouped volumes, an empty volume, case and space duplicates, and a keyword just under
    # the 1,000-character limit, far longer than any model's context.
    long_keyword = " ".join("word%d" % i for i in range(138))
    edge = [
        "Keyword,Volume",
        '"running shoes\nfor trail",1200',
        '"shoes, red","1,200"',
        'hiking boots,"1 200"',
        'yoga mat,"12\u202f345"',
        "coffee grinder,",
        ",10",
        "   ,",
        "Running Shoes,5",
        "  running shoes  ,7",
        "RUNNING SHOES,1",
        "mortgage rates,3",
        long_keyword + ",2",
        "electric bike,\"12,345,678\"",
    ]
    write("keywords_edge_cases.csv", "\ufeff" + "\r\n".join(edge) + "\r\n")
    # A one-column list without a header: its first line is a keyword, and so is "keyword".
    write("keywords_headerless.csv", "running shoes\n\"shoes, red\"\nkeyword\nyoga mat\nmortgage rates\n")
    write("keywords_one_column.csv", "Keywords\nrunning shoes\nyoga mat\nmortgage rates\nhiking boots\n")


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
    write("bad_ambiguous_volume.csv", 'Keyword,Volume\nshoes,"1,200"\nhats,1.200\n')
    write("bad_two_volume_columns.csv", "Keyword,Volume,Search Volume\nshoes,10,12\n")
    # Keyword Planner's ranges, as accounts without spend see them: not a volume.
    write("bad_gkp_volume.csv", gkp([("running shoes", 1000), ("yoga mat", "1K \u2013 10K")], 11))
    write("bad_invalid_utf16.csv", utf16le("Keyword\r\nshoes\r\n") + b"\x00\xd8h\x00\r\x00\n\x00")
    write("bad_utf16_no_bom.csv", utf16le("Keyword\r\nshoes\r\n")[2:])
    write("bad_negative_volume.csv", "keyword,volume\nshoes,10\n\"hats,\nred\",5\nsocks,-3\n")
    write("bad_non_numeric_volume.csv", "keyword,volume\nshoes,10\nhats,lots\n")
    write("bad_ragged_row.csv", "keyword,volume\nshoes,10\nhats,5,extra\n")
    write("bad_blank_only.txt", "\n   \n\n")
    # One keyword, fewer than the 2 clusters kbatch asks for at the least.
    write("bad_too_few_items.txt", "the only keyword\n")


if __name__ == "__main__":
    os.makedirs(OUT, exist_ok=True)
    keywords()
    keyword_tools()
    embeddings()
    bad()
