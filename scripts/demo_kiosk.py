#!/usr/bin/env python3
"""Sets up the demo kiosk against a running `zhucan-server demo`: a one-time enrolment code for the
first canteen, a few demo residents whose faces are photos from ../shared/testdata/faces (with
face consent recorded), and the kiosk's config with a replay source of other photos of them and of
people never enrolled. Called by scripts/demo; prints JSON for the script to read.

Usage: demo_kiosk.py URL ADMIN_TOKEN FACES_DIR DATA_DIR [CA_PEM]
"""
import csv
import datetime as dt
import json
import ssl
import sys
import urllib.request

URL, TOKEN, FACES, DATA = sys.argv[1:5]
# The demo server speaks HTTPS with a certificate from its own private CA: trust exactly that CA.
TLS = ssl.create_default_context(cafile=sys.argv[5]) if len(sys.argv) > 5 else None
NAMES = ["王桂英", "陈福根", "吴秀珍", "楼志明", "何金花", "骆国良", "金美娟", "龚德兴"]
BIRTHS = ["1946-03-12", "1938-07-01", "1951-11-23", "1943-02-08",
          "1934-09-30", "1949-05-17", "1940-12-05", "1955-06-21"]
CATEGORIES = [[], ["dibao"], [], ["gugua"], [], [], ["tekun"], []]


def api(method, path, body=None):
    req = urllib.request.Request(
        URL + "/api/v1" + path,
        method=method,
        data=None if body is None else json.dumps(body).encode(),
        headers={"Authorization": "Bearer " + TOKEN, "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(req, context=TLS) as r:
        return json.loads(r.read() or b"null")


def national_id(birth, seq):
    body = "330782" + birth.replace("-", "") + "%03d" % (seq * 2 + 101)
    w = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2]
    return body + "10X98765432"[sum(int(d) * x for d, x in zip(body, w)) % 11]


canteen = api("GET", "/canteens/1")
code = api("POST", "/kiosks/enrolment-codes", {"canteen_id": 1, "name": "演示刷脸机"})["code"]

by_identity = {}
with open(FACES + "/lfw/images.tsv", encoding="utf-8") as f:
    for row in csv.DictReader(f, delimiter="\t"):
        by_identity.setdefault(row["identity"], []).append(FACES + "/" + row["path"])
identities = sorted(by_identity)
residents = []
for i, ident in enumerate(identities[: len(NAMES)]):
    r = api("POST", "/residents", {
        "name": NAMES[i],
        "national_id": national_id(BIRTHS[i], i),
        "local_registration": True,
        "registered_town": canteen["town"],
        "residence_town": canteen["town"],
        "categories": CATEGORIES[i],
        "card_code": "DEMO%04d" % (i + 1),
        "designated_canteen": 1,
        "consent": {"face_enrolment": True, "template_sharing": False},
    })
    residents.append({"id": r["id"], "name": NAMES[i], "photos": by_identity[ident]})
strangers = [p for ident in identities[len(NAMES): len(NAMES) + 4] for p in by_identity[ident][:1]]

# The demo runs at any hour: if no meal is being served now, the kiosk's clock starts at the most
# recent lunch that has begun (today's, or yesterday's before 11:00).
now = dt.datetime.now(dt.timezone(dt.timedelta(hours=8)))
lunch = now.replace(hour=11, minute=0, second=0, microsecond=0)
if now < lunch:
    lunch -= dt.timedelta(days=1)
serving = any(
    s["start"] <= now.strftime("%H:%M:%S") < s["end"] for s in canteen.get("slots", [])
)
print(json.dumps({
    "code": code,
    "residents": residents,
    "strangers": strangers,
    "clock_start": None if serving else lunch.isoformat(),
}, ensure_ascii=False))
