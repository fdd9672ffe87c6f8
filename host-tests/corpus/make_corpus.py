#!/usr/bin/env python3
"""Labeled corpus for the classifier: JSONL lines
{"text": str, "entities": [{"entity": name, "start": byte, "end": byte}]}
(UTF-8 byte offsets). Positives are generated with Faker and validated with
python-stdnum; negatives are look-alikes that must not be reported.

Made with Faker 40.54.0 and python-stdnum 2.2:
    .venv/bin/pip install faker==40.54.0 python-stdnum==2.2   (pinned in host-tests/requirements.txt)
    .venv/bin/python host-tests/corpus/make_corpus.py > host-tests/corpus/corpus.jsonl
"""
import json
import random
import string
import sys
import uuid
import zlib

from faker import Faker
from stdnum import iban as std_iban, luhn
from stdnum.ca import sin as std_sin
from stdnum.gb import nhs as std_nhs
from stdnum.us import itin as std_itin, ssn as std_ssn

SEED = 20240517
N = int(sys.argv[1]) if len(sys.argv) > 1 else 400
rnd = random.Random(SEED)
fake = Faker(["en_US", "en_GB", "de_DE", "fr_FR"])
Faker.seed(SEED)
us = fake["en_US"]

out = []


def emit(template, values):
    """template uses {0}, {1}...; values are (entity or None, text)."""
    text = ""
    ents = []
    parts = template.split("{}")
    for k, part in enumerate(parts):
        text += part
        if k < len(values):
            ent, val = values[k]
            start = len(text.encode())
            text += val
            if ent:
                ents.append({"entity": ent, "start": start, "end": len(text.encode())})
    out.append({"text": text, "entities": ents})


def sentence():
    return us.sentence(nb_words=rnd.randint(4, 10))


def digits(n):
    return "".join(rnd.choice(string.digits) for _ in range(n))


B62 = string.digits + string.ascii_uppercase + string.ascii_lowercase


def b62(n, width=6):
    s = ""
    while n:
        s = B62[n % 62] + s
        n //= 62
    return s.rjust(width, "0")


def github_token(valid=True):
    r = "".join(rnd.choice(B62) for _ in range(30))
    crc = zlib.crc32(r.encode())
    if not valid:
        crc = (crc + 1) & 0xFFFFFFFF
    return rnd.choice(["ghp_", "gho_", "ghs_", "ghu_", "ghr_"]) + r + b62(crc)


def nhs_number():
    while True:
        d = digits(9)
        c = 11 - sum(int(x) * (10 - i) for i, x in enumerate(d)) % 11
        c = 0 if c == 11 else c
        if c != 10 and std_nhs.is_valid(d + str(c)):
            return d + str(c)


def npi():
    while True:
        base = rnd.choice("12") + digits(8)
        c = luhn.calc_check_digit("80840" + base)
        return base + c


def dea():
    l1 = rnd.choice("ABCDEFGHJKLMPRSTUX")
    l2 = rnd.choice(string.ascii_uppercase)
    d = [rnd.randint(0, 9) for _ in range(6)]
    c = (d[0] + d[2] + d[4] + 2 * (d[1] + d[3] + d[5])) % 10
    return l1 + l2 + "".join(map(str, d)) + str(c)


def nino():
    first = rnd.choice("ABCEGHJKLMNOPRSTWXYZ")
    second = rnd.choice("ABCEGHJKLMNPRSTWXYZ")
    if first + second in ("BG", "GB", "NK", "KN", "TN", "NT", "ZZ"):
        return nino()
    d = digits(6)
    suf = rnd.choice("ABCD")
    if rnd.random() < 0.5:
        return f"{first}{second}{d}{suf}"
    return f"{first}{second} {d[0:2]} {d[2:4]} {d[4:6]} {suf}"


def sin():
    while True:
        base = rnd.choice("1234567") + digits(7)
        n = base + luhn.calc_check_digit(base)
        if std_sin.is_valid(n):
            sep = rnd.choice([" ", "-"])
            return f"{n[0:3]}{sep}{n[3:6]}{sep}{n[6:9]}", n


def card():
    kind = rnd.choice(["visa16", "visa13", "mastercard", "amex", "discover", "jcb", "diners", "maestro"])
    n = us.credit_card_number(card_type=kind)
    assert luhn.is_valid(n)
    # Faker's JCB and Maestro generators also emit unassigned IIN prefixes
    # (3500-3527, 3590-3599, 0604): keep to the real ranges.
    if (kind == "jcb" and not 3528 <= int(n[:4]) <= 3589) or n.startswith("0"):
        return card()
    r = rnd.random()
    if r < 0.3 and len(n) == 16:
        sep = rnd.choice([" ", "-"])
        return sep.join(n[i:i + 4] for i in range(0, 16, 4))
    return n


def iban():
    while True:
        v = fake.iban()
        if std_iban.is_valid(v):
            if rnd.random() < 0.4:
                return " ".join(v[i:i + 4] for i in range(0, len(v), 4))
            return v


def phone():
    area = rnd.randint(201, 989)
    ex = rnd.randint(200, 999)
    line = digits(4)
    return rnd.choice([
        f"+1 {area} {ex} {line}", f"({area}) {ex}-{line}", f"{area}-{ex}-{line}",
        f"{area}.{ex}.{line}", f"+44 20 {digits(4)} {digits(4)}", f"+49 {digits(3)} {digits(7)}",
        f"+33 {rnd.randint(1, 9)} {digits(2)} {digits(2)} {digits(2)} {digits(2)}",
    ])


def ssn():
    while True:
        v = us.ssn()
        if std_ssn.is_valid(v) and not v.startswith("9"):
            return v


def itin():
    while True:
        area = "9" + digits(2)
        group = rnd.choice(list(range(50, 66)) + list(range(70, 89)) + [90, 91, 92] + list(range(94, 100)))
        v = f"{area}-{group:02d}-{digits(4)}"
        if std_itin.is_valid(v):
            return v


def jwt():
    import base64
    def seg(obj):
        return base64.urlsafe_b64encode(json.dumps(obj).encode()).rstrip(b"=").decode()
    return seg({"alg": "HS256", "typ": "JWT"}) + "." + seg({"sub": us.uuid4(), "name": us.name()}) + "." + "".join(rnd.choice(B62 + "-_") for _ in range(43))


POS = {
    "email": lambda: ("Please email {} about it.", [("email", fake.email())]),
    "phone": lambda: (rnd.choice(["Call me at {} tomorrow.", "Phone: {}", "You can reach the office on {}."]), [("phone", phone())]),
    "ip_address": lambda: ("Requests came from {} last night.", [("ip_address", rnd.choice([fake.ipv4(), fake.ipv6()]))]),
    "date_of_birth": lambda: (rnd.choice(["DOB: {}", "She was born on {}.", "date of birth {}"]),
                              [("date_of_birth", fake.date_of_birth().strftime(rnd.choice(["%Y-%m-%d", "%m/%d/%Y", "%d.%m.%Y"])))]),
    "us_npi": lambda: ("Prescriber NPI {} signed the order.", [("us_npi", npi())]),
    "us_dea": lambda: ("DEA number {} on file.", [("us_dea", dea())]),
    "uk_nhs": lambda: (rnd.choice(["NHS number {}.", "Patient {} was seen."]), [("uk_nhs", None)]),
    "credit_card": lambda: ("Charge card {} for the order.", [("credit_card", card())]),
    "us_ssn": lambda: (rnd.choice(["SSN {} on the form.", "My social security number is {}."]), [("us_ssn", ssn())]),
    "us_itin": lambda: ("ITIN {} was issued.", [("us_itin", itin())]),
    "uk_nino": lambda: ("National insurance {} applies.", [("uk_nino", nino())]),
    "ca_sin": lambda: ("Canadian SIN {} for payroll.", [("ca_sin", sin()[0])]),
    "iban": lambda: ("Wire it to {} please.", [("iban", iban())]),
    "secret.aws_access_key": lambda: ("key id {}", [("secret.aws_access_key", rnd.choice(["AKIA", "ASIA"]) + "".join(rnd.choice(string.ascii_uppercase + "234567") for _ in range(16)))]),
    "secret.github_token": lambda: ("token: {}", [("secret.github_token", github_token())]),
    "secret.jwt": lambda: ("Authorization: Bearer {}", [("secret.jwt", jwt())]),
    "secret.stripe_key": lambda: ("stripe {}", [("secret.stripe_key", rnd.choice(["sk_live_", "sk_test_", "rk_live_"]) + "".join(rnd.choice(B62) for _ in range(24)))]),
    "secret.slack_token": lambda: ("slack {}", [("secret.slack_token", "xoxb-" + digits(12) + "-" + digits(13) + "-" + "".join(rnd.choice(B62) for _ in range(24)))]),
}

for ent, gen in POS.items():
    for _ in range(N):
        tpl, vals = gen()
        if ent == "uk_nhs":
            n = nhs_number()
            v = f"{n[0:3]} {n[3:6]} {n[6:10]}" if "Patient" in tpl else n
            vals = [("uk_nhs", v)]
        emit(sentence() + " " + tpl + " " + sentence(), vals)


def luhn_invalid_card():
    n = us.credit_card_number(card_type="visa16")
    last = str((int(n[-1]) + rnd.randint(1, 9)) % 10)
    return n[:-1] + last


def bad_iban():
    v = fake.iban()
    # corrupt one BBAN digit
    for i in range(len(v) - 1, 4, -1):
        if v[i].isdigit():
            v2 = v[:i] + str((int(v[i]) + 1) % 10) + v[i + 1:]
            if not std_iban.is_valid(v2):
                return v2
    return v + "X"


NEG = [
    lambda: ("Order number {} has shipped.", [(None, digits(10))]),
    lambda: ("Ticket {} was closed.", [(None, digits(rnd.choice([6, 7, 8, 9, 12])))]),
    lambda: ("Request id {} failed.", [(None, str(uuid.UUID(int=rnd.getrandbits(128))))]),
    lambda: ("The job ran at {} and finished.", [(None, fake.iso8601())]),
    lambda: ("Meeting moved to {}.", [(None, fake.date())]),
    # A label next to a value of the right format is that entity even when its
    # check digit fails (issue 16): these two are positives since then.
    lambda: ("Card {} was declined.", [("credit_card", luhn_invalid_card())]),
    lambda: ("Account {} looks wrong.", [(None, bad_iban())]),
    lambda: ("IBAN-like {}XYZ in a code.", [(None, iban().replace(" ", ""))]),
    lambda: ("Token {} is fake.", [("secret.github_token", github_token(valid=False))]),
    lambda: ("Build {} released.", [(None, f"{rnd.randint(1, 9)}.{rnd.randint(0, 30)}.{rnd.randint(0, 99)}")]),
    lambda: ("Total was {} dollars.", [(None, f"{rnd.randint(1, 999)},{digits(3)},{digits(3)}.{digits(2)}")]),
    lambda: ("Value {} computed.", [(None, f"{rnd.randint(1, 9)}.{digits(12)}")]),
    lambda: ("Reference {} noted.", [(None, "9" + digits(2) + "-" + rnd.choice(["00", "10", "20", "30", "40", "66", "89", "93"]) + "-" + digits(4))]),
    lambda: ("SKU {} in stock.", [(None, "".join(rnd.choice(string.ascii_uppercase) for _ in range(2)) + digits(rnd.choice([5, 8])))]),
    lambda: ("Time {} elapsed.", [(None, f"{rnd.randint(0, 23):02d}:{rnd.randint(0, 59):02d}:{rnd.randint(0, 59):02d}")]),
    lambda: ("Hash {} matched.", [(None, "".join(rnd.choice("0123456789abcdef") for _ in range(40)))]),
]

for _ in range(N * 4):
    tpl, vals = rnd.choice(NEG)()
    emit(sentence() + " " + tpl + " " + sentence(), vals)

# plain sentences
for _ in range(N * 2):
    out.append({"text": fake.paragraph(nb_sentences=3), "entities": []})

rnd.shuffle(out)
for rec in out:
    sys.stdout.write(json.dumps(rec, ensure_ascii=False) + "\n")
