#!/usr/bin/env python3
"""Held-out detection corpus: generated, scored through the real CLI, never tuned on.

The values come from independent generators (Faker 40.54.0, python-stdnum 2.2, phonenumbers 9.0.43,
PyJWT, cryptography; pinned in host-tests/requirements.txt), written in layouts the detectors were
not tuned on: chat prompts, prose, JSON API bodies, key=value / logfmt / `key:value` lines, URLs and
query strings (percent-encoded), several entities per body, label words in several languages, and
Unicode / base64 encodings. Look-alikes (order and invoice ids, UUIDs, hashes, timestamps, ISO
dates, versions, amounts, tracking numbers, part numbers, label words next to values that are not
the entity, capitalised non-names) must stay untouched.

The corpus is regenerated from SEED on every run and never written to the repository; the
thresholds in TARGETS were fixed before the detectors were tuned. Scoring: every body goes through
`proxy-audit scan --ndjson` with every category set to `redact`; each string is compared with its
redacted form (difflib), so a labelled value counts as found only when every letter and digit of
it was replaced by a `[REDACTED:ENTITY]` of its own entity (recall), and a look-alike counts as
touched when any letter or digit of it was replaced.

    .venv/bin/python host-tests/corpus/heldout.py                     # the gate seed: tables, exit 1 below target
    .venv/bin/python host-tests/corpus/heldout.py --tuning --misses   # the tuning seed, with what was missed
"""
import base64
import datetime
import difflib
import json
import pathlib
import random
import re
import string
import subprocess
import sys
import tempfile
import urllib.parse
import uuid
import zlib

import jwt as pyjwt
import phonenumbers
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from faker import Faker
from stdnum import iban as std_iban, luhn
from stdnum.ca import sin as std_sin
from stdnum.gb import nhs as std_nhs
from stdnum.us import itin as std_itin, ssn as std_ssn

# The seed the test gates on. Its misses were never looked at while the detectors were tuned:
# tuning used TUNING_SEED (same generators and layouts, other values). Neither is the seed of
# the older tuning corpus (make_corpus.py).
SEED = 16_2026_1201
TUNING_SEED = 16_2026_0611
ROOT = pathlib.Path(__file__).resolve().parents[2]
CLI = ROOT / "target" / "release" / "proxy-audit"

CHECKSUM = ["credit_card", "iban", "uk_nhs", "us_npi", "us_dea", "ca_sin", "us_ssn", "us_itin", "uk_nino"]
SECRETS = ["secret.github_token", "secret.aws_access_key", "secret.aws_secret_key", "secret.openai_key",
           "secret.anthropic_key", "secret.slack_token", "secret.stripe_key", "secret.google_api_key",
           "secret.private_key", "secret.jwt"]
COMMON = ["email", "phone", "ip_address", "date_of_birth"]
CONTEXTUAL = ["person_name", "street_address", "mrn", "icd10"]
# Layouts where checksum and secret entities must reach their target each on its own.
CORE_LAYOUTS = ["prose", "chat", "json", "kv", "url", "mixed"]

# Fixed before tuning (issue 16): recall per entity over all layouts, and per core layout for the
# checksum and prefixed-secret entities; share of look-alikes touched.
TARGETS = {**{e: 0.99 for e in CHECKSUM + SECRETS}, **{e: 0.97 for e in COMMON},
           **{e: 0.85 for e in CONTEXTUAL}}
LOOKALIKE_MAX = 0.005
# Capitalised phrases that are not names (products, places, organisations) are reported apart:
# they measure the person-name detector's precision, not the look-alike list.
CAPITALISED_MAX = 0.02


class Gen:
    def __init__(self, seed):
        self.r = random.Random(seed)
        Faker.seed(seed)
        self.locs = {loc: Faker(loc) for loc in
                     ["en_US", "en_GB", "de_DE", "fr_FR", "es_ES", "it_IT", "nl_NL", "en_IN", "en_CA"]}
        for k, f in enumerate(self.locs.values()):
            f.seed_instance(seed + k)
        self.us = self.locs["en_US"]

    def pick(self, xs):
        return self.r.choice(xs)

    def digits(self, n):
        return "".join(self.r.choice(string.digits) for _ in range(n))

    def chars(self, alphabet, n):
        return "".join(self.r.choice(alphabet) for _ in range(n))

    # Dates from fixed bounds: Faker's defaults are relative to today, and the corpus must be the
    # same on every run.
    def when(self):
        return self.us.date_time_between(start_date=datetime.datetime(2001, 1, 1), end_date=datetime.datetime(2031, 1, 1))

    def iso(self):
        return self.when().isoformat()

    def sentence(self):
        return self.us.sentence(nb_words=self.r.randint(4, 9))


B62 = string.digits + string.ascii_uppercase + string.ascii_lowercase
B64URL = B62 + "-_"


def b62(n, width=6):
    s = ""
    while n:
        s = B62[n % 62] + s
        n //= 62
    return s.rjust(width, "0")


# ------------------------------------------------------------------ values
# Each returns (value, self_identifying): a self-identifying value may appear with no label word.

def v_credit_card(g):
    kind = g.pick(["visa16", "visa13", "visa19", "mastercard", "amex", "discover", "jcb", "diners", "maestro"])
    while True:
        n = g.us.credit_card_number(card_type=kind)
        if luhn.is_valid(n) and not n.startswith("0") and not (kind == "jcb" and not 3528 <= int(n[:4]) <= 3589):
            break
    if len(n) == 16 and g.r.random() < 0.4:
        return g.pick([" ", "-"]).join(n[i:i + 4] for i in range(0, 16, 4)), True
    if len(n) == 15 and g.r.random() < 0.4:
        return f"{n[:4]} {n[4:10]} {n[10:]}", True
    # Twelve digits (Maestro) look like any ticket number: only a label says card.
    return n, len(n) >= 13


def v_iban(g):
    while True:
        v = g.locs[g.pick(["de_DE", "fr_FR", "en_GB", "nl_NL", "es_ES", "it_IT"])].iban()
        if std_iban.is_valid(v):
            break
    if g.r.random() < 0.4:
        return " ".join(v[i:i + 4] for i in range(0, len(v), 4)), True
    return v, True


def v_uk_nhs(g):
    while True:
        base = g.digits(9)
        for c in "0123456789":
            if std_nhs.is_valid(base + c):
                n = base + c
                sep = g.pick([" ", "", "-"])
                return (f"{n[:3]}{sep}{n[3:6]}{sep}{n[6:]}" if sep else n), False


def v_us_npi(g):
    base = g.pick("12") + g.digits(8)
    return base + luhn.calc_check_digit("80840" + base), False


def v_us_dea(g):
    # First letter: the registrant type (DEA Form 224 list); second: the registrant's surname initial.
    first = g.pick("ABCDEFGHJKLMPRSTUX")
    second = g.locs[g.pick(["en_US", "es_ES", "de_DE"])].last_name()[0].upper()
    if not "A" <= second <= "Z":
        second = "M"
    d = [g.r.randint(0, 9) for _ in range(6)]
    c = (d[0] + d[2] + d[4] + 2 * (d[1] + d[3] + d[5])) % 10
    return first + second + "".join(map(str, d)) + str(c), False


def v_ca_sin(g):
    while True:
        base = g.pick("1234567") + g.digits(7)
        n = base + luhn.calc_check_digit(base)
        if std_sin.is_valid(n):
            sep = g.pick([" ", "-", ""])
            return (f"{n[:3]}{sep}{n[3:6]}{sep}{n[6:]}" if sep else n), False


def v_us_ssn(g):
    r = g.r.random()
    if r < 0.15:
        # Test and typo values (area 9xx, 000, 666) are still what a label says they are.
        v = g.pick(["9" + g.digits(2), "000", "666"]) + "-" + g.digits(2) + "-" + g.digits(4)
    else:
        while True:
            v = g.us.ssn()
            if std_ssn.is_valid(v) and not v.startswith("9"):
                break
    fmt = g.r.random()
    if fmt < 0.2:
        return v.replace("-", ""), False
    if fmt < 0.35:
        return v.replace("-", " "), False
    return v, False


def v_us_itin(g):
    while True:
        v = g.us.itin()
        if std_itin.is_valid(v):
            return (v.replace("-", "") if g.r.random() < 0.2 else v), False


def v_uk_nino(g):
    # HMRC's published allocation rules (not the detector's code).
    while True:
        a, b = g.pick("ABCEGHJKLMNOPRSTWXYZ"), g.pick("ABCEGHJKLMNPRSTWXYZ")
        if a + b not in ("BG", "GB", "NK", "KN", "TN", "NT", "ZZ"):
            break
    d = g.digits(6)
    s = g.pick("ABCD")
    return (f"{a}{b} {d[:2]} {d[2:4]} {d[4:]} {s}" if g.r.random() < 0.4 else f"{a}{b}{d}{s}"), False


def v_email(g):
    f = g.locs[g.pick(["en_US", "en_GB", "de_DE", "fr_FR", "es_ES", "nl_NL"])]
    r = g.r.random()
    if r < 0.6:
        v = f.email()
    elif r < 0.8:
        v = f"{f.user_name()}+{g.pick(['news', 'billing', 'x1'])}@{f.domain_name()}"
    else:
        v = f"{f.first_name().lower()}.{f.last_name().lower()}@{f.domain_word()}.{f.domain_name()}"
    # Faker's Dutch and Spanish locals keep spaces of compound names; no address has one.
    return v.replace(" ", "").encode("ascii", "ignore").decode(), True


PHONE_REGIONS = {"en_US": "US", "en_CA": "CA", "en_GB": "GB", "de_DE": "DE", "fr_FR": "FR", "it_IT": "IT",
                 "es_ES": "ES", "nl_NL": "NL", "en_IN": "IN"}


def v_phone(g):
    while True:
        loc = g.pick(list(PHONE_REGIONS))
        region = PHONE_REGIONS[loc]
        raw = g.locs[loc].phone_number()
        core = re.sub(r"\s*(x|ext\.?)\s*\d+$", "", raw)
        try:
            pn = phonenumbers.parse(core, region)
        except phonenumbers.NumberParseException:
            continue
        if not phonenumbers.is_valid_number(pn):
            continue
        how = g.r.random()
        if how < 0.35:
            v = raw  # as the locale writes it (Faker), extension included
        elif how < 0.6:
            v = phonenumbers.format_number(pn, phonenumbers.PhoneNumberFormat.NATIONAL)
        elif how < 0.85:
            v = phonenumbers.format_number(pn, phonenumbers.PhoneNumberFormat.INTERNATIONAL)
        else:
            v = phonenumbers.format_number(pn, phonenumbers.PhoneNumberFormat.E164)
        if g.r.random() < 0.08 and "x" not in v:
            v += g.pick([" x", " ext. ", " ext "]) + str(g.r.randint(10, 9999))
        return v, v.startswith("+")


def v_ip_address(g):
    r = g.r.random()
    if r < 0.45:
        return g.us.ipv4_public(), True
    if r < 0.75:
        return g.us.ipv4_private(), True
    return g.us.ipv6(), True


DOB_FORMATS = {"en_US": ["%m/%d/%Y", "%B %d, %Y", "%Y-%m-%d"], "en_GB": ["%d/%m/%Y", "%d %B %Y"],
               "de_DE": ["%d.%m.%Y"], "fr_FR": ["%d/%m/%Y"], "es_ES": ["%d/%m/%Y"], "it_IT": ["%d/%m/%Y"],
               "nl_NL": ["%d-%m-%Y"]}


def v_date_of_birth(g, loc=None):
    loc = loc or g.pick(list(DOB_FORMATS))
    d = g.us.date_between(start_date=datetime.date(1931, 1, 1), end_date=datetime.date(2024, 12, 31))
    return d.strftime(g.pick(DOB_FORMATS[loc])), False


def v_person_name(g):
    f = g.locs[g.pick(["en_US", "en_GB", "de_DE", "fr_FR", "es_ES", "it_IT", "nl_NL"])]
    return f"{f.first_name()} {f.last_name()}", False


def v_street_address(g):
    f = g.locs[g.pick(["en_US", "en_GB", "de_DE", "fr_FR"])]
    while True:
        a = f.street_address().replace("\n", ", ")
        if any(c.isdigit() for c in a):
            return a, False


def v_mrn(g):
    return g.pick([g.digits(g.r.randint(7, 10)), "E" + g.digits(7), g.digits(2) + "-" + g.digits(3) + "-" + g.digits(3),
                   "MRN" + g.digits(8)]), False


ICD10 = ["E11.9", "I10", "J45.909", "F32.A", "M54.5", "K21.9", "N39.0", "E78.5", "Z79.4", "R07.9", "F41.1",
         "J06.9", "E66.9", "G43.909", "I25.10", "C50.911", "O24.419", "S72.001A", "Z00.00", "E03.9", "K58.9",
         "L40.0", "M17.11", "R51.9", "T78.40XA", "I48.91", "J44.1", "N18.3", "F90.0", "B20"]


def v_icd10(g):
    return g.pick(ICD10), False


def v_github(g):
    r = g.r.random()
    if r < 0.15:
        return "github_pat_" + g.chars(B62, 22) + "_" + g.chars(B62, 59), True
    body = g.chars(B62, 30)
    crc = zlib.crc32(body.encode())
    if r < 0.45:
        crc = (crc + g.r.randint(1, 1000)) & 0xFFFFFFFF  # a fake or mistyped token is still a token
    return g.pick(["ghp_", "ghp_", "gho_", "ghs_", "ghu_", "ghr_"]) + body + b62(crc), True


def v_aws_access(g):
    return g.pick(["AKIA", "ASIA"]) + g.chars(string.ascii_uppercase + "234567", 16), True


def v_aws_secret(g):
    while True:
        s = g.chars(B62 + "/+", 40)
        if any(c.isupper() for c in s) and any(c.islower() for c in s) and any(c.isdigit() for c in s):
            return s, False


def v_openai(g):
    return g.pick(["sk-proj-" + g.chars(B64URL, g.r.randint(120, 156)), "sk-" + g.chars(B62, 48),
                   "sk-svcacct-" + g.chars(B64URL, 100)]), True


def v_anthropic(g):
    return "sk-ant-api03-" + g.chars(B64URL, 93) + "AA", True


def v_slack(g):
    return g.pick(["xoxb-", "xoxp-"]) + g.digits(12) + "-" + g.digits(13) + "-" + g.chars(B62, 24), True


def v_stripe(g):
    return g.pick(["sk_live_", "sk_test_", "rk_live_"]) + g.chars(B62, g.r.randint(24, 99)), True


def v_google(g):
    return "AIza" + g.chars(B64URL, 35), True


def v_private_key(g):
    r = g.r.random()
    # Keys derived from the seeded generator, so the corpus is the same on every run.
    if r < 0.5:
        k = ec.derive_private_key(g.r.randrange(1, 2**255), ec.SECP256R1())
        fmt = g.pick([serialization.PrivateFormat.PKCS8, serialization.PrivateFormat.TraditionalOpenSSL])
    else:
        k = ed25519.Ed25519PrivateKey.from_private_bytes(g.r.randbytes(32))
        fmt = serialization.PrivateFormat.PKCS8  # OpenSSH's format adds a random check value
    pem = k.private_bytes(serialization.Encoding.PEM, fmt, serialization.NoEncryption()).decode().strip()
    return pem, True


def v_jwt(g):
    f = g.locs[g.pick(["en_US", "de_DE"])]
    claims = {"sub": str(uuid.UUID(int=g.r.getrandbits(128))), "name": f.name(), "iat": 1_700_000_000 + g.r.randint(0, 10**7)}
    return pyjwt.encode(claims, g.chars(B62, 64), algorithm=g.pick(["HS256", "HS384"])), True


VALUES = {
    "credit_card": v_credit_card, "iban": v_iban, "uk_nhs": v_uk_nhs, "us_npi": v_us_npi, "us_dea": v_us_dea,
    "ca_sin": v_ca_sin, "us_ssn": v_us_ssn, "us_itin": v_us_itin, "uk_nino": v_uk_nino, "email": v_email,
    "phone": v_phone, "ip_address": v_ip_address, "date_of_birth": v_date_of_birth, "person_name": v_person_name,
    "street_address": v_street_address, "mrn": v_mrn, "icd10": v_icd10, "secret.github_token": v_github,
    "secret.aws_access_key": v_aws_access, "secret.aws_secret_key": v_aws_secret, "secret.openai_key": v_openai,
    "secret.anthropic_key": v_anthropic, "secret.slack_token": v_slack, "secret.stripe_key": v_stripe,
    "secret.google_api_key": v_google, "secret.private_key": v_private_key, "secret.jwt": v_jwt,
}

# Label words, several languages where people write them so.
LABELS = {
    "credit_card": ["card", "credit card", "card number", "Kreditkarte", "Kartennummer", "numéro de carte",
                    "carte bancaire", "tarjeta", "número de tarjeta", "carta di credito", "PAN", "Visa"],
    "iban": ["IBAN", "bank account", "Bankverbindung", "Kontonummer (IBAN)", "compte bancaire", "RIB/IBAN",
             "cuenta IBAN", "conto corrente", "rekeningnummer"],
    "uk_nhs": ["NHS number", "NHS no.", "NHS #", "NHS No:", "nhs_number"],
    "us_npi": ["NPI", "National Provider Identifier", "prescriber NPI", "provider NPI", "NPI#"],
    "us_dea": ["DEA", "DEA#", "DEA number", "DEA registration", "DEA reg. no."],
    "ca_sin": ["SIN", "social insurance number", "numéro d'assurance sociale", "NAS", "SIN#"],
    "us_ssn": ["SSN", "social security number", "Social Security No.", "SSN#", "soc sec", "número de seguro social"],
    "us_itin": ["ITIN", "individual taxpayer identification number", "taxpayer id (ITIN)", "número ITIN"],
    "uk_nino": ["NI number", "National Insurance number", "NINO", "NI no.", "national insurance no"],
    "email": ["email", "e-mail", "E-Mail-Adresse", "courriel", "correo electrónico", "mail", "adresse e-mail"],
    "phone": ["phone", "tel", "Tel.", "Telefon", "Handy", "téléphone", "portable", "teléfono", "móvil",
              "telefono", "cellulare", "mobiel", "call me at", "mobile", "ring me on"],
    "ip_address": ["IP", "ip address", "client ip", "adresse IP", "IP-Adresse", "dirección IP", "source"],
    "date_of_birth": ["DOB", "date of birth", "born", "birthday", "Geburtsdatum", "geboren am", "date de naissance",
                      "né le", "fecha de nacimiento", "data di nascita", "geboortedatum"],
    "person_name": ["patient", "patient name", "name", "Mr.", "Mrs.", "Dr.", "my name is", "Patientin", "Herr",
                    "Frau", "Madame", "Monsieur", "Sr.", "Sra.", "signed", "Dear", "nom", "nombre"],
    "street_address": ["address", "lives at", "Adresse", "Anschrift", "adresse", "domicile", "dirección",
                       "ship to", "home address"],
    "mrn": ["MRN", "medical record number", "med rec #", "patient ID", "chart number", "Patientennummer",
            "numéro de dossier", "historia clínica"],
    "icd10": ["diagnosis", "Dx", "ICD-10", "ICD10 code", "Diagnose", "diagnostic", "diagnóstico", "assessment"],
    "secret.github_token": ["token", "GITHUB_TOKEN", "github token", "PAT"],
    "secret.aws_access_key": ["AWS_ACCESS_KEY_ID", "access key id", "aws key"],
    "secret.aws_secret_key": ["AWS_SECRET_ACCESS_KEY", "aws secret access key", "aws_secret", "AWS secret key"],
    "secret.openai_key": ["OPENAI_API_KEY", "api key", "openai key", "Schlüssel"],
    "secret.anthropic_key": ["ANTHROPIC_API_KEY", "api key", "x-api-key", "clé API"],
    "secret.slack_token": ["SLACK_BOT_TOKEN", "slack token", "token"],
    "secret.stripe_key": ["STRIPE_SECRET_KEY", "stripe key", "secret key"],
    "secret.google_api_key": ["GOOGLE_API_KEY", "api key", "maps key"],
    "secret.private_key": ["private key", "id_ed25519", "key.pem"],
    "secret.jwt": ["Authorization: Bearer", "token", "id_token", "jwt"],
}

JSON_KEYS = {
    "credit_card": ["card_number", "cardNumber", "pan", "cc", "numero_tarjeta"],
    "iban": ["iban", "bankAccount", "IBAN", "konto"],
    "uk_nhs": ["nhs_number", "nhsNumber", "nhs"],
    "us_npi": ["npi", "prescriber_npi", "providerNpi"],
    "us_dea": ["dea", "dea_number", "deaNumber"],
    "ca_sin": ["sin", "social_insurance_number", "nas"],
    "us_ssn": ["ssn", "socialSecurityNumber", "ssn_last_full", "tax_ssn"],
    "us_itin": ["itin", "taxpayer_itin"],
    "uk_nino": ["nino", "ni_number", "nationalInsuranceNumber"],
    "email": ["email", "contact", "user", "reply_to", "correo"],
    "phone": ["phone", "telephone", "mobile", "tel", "telefon", "telefono", "contact_number"],
    "ip_address": ["ip", "client_ip", "remote_addr", "source", "x_forwarded_for"],
    "date_of_birth": ["dob", "date_of_birth", "birthDate", "geburtsdatum", "fecha_nacimiento", "date_naissance"],
    "person_name": ["name", "patient_name", "fullName", "customer", "nom", "nombre", "Name"],
    "street_address": ["address", "street", "address_line1", "adresse", "anschrift", "shipping_address"],
    "mrn": ["mrn", "medical_record_number", "patientId", "chart_no"],
    "icd10": ["diagnosis", "icd10", "dx_code", "diagnose"],
    # A bare 40-character key is only an AWS secret by its name.
    "secret.aws_secret_key": ["aws_secret_access_key", "AWS_SECRET_ACCESS_KEY", "awsSecretKey", "secret_access_key"],
}
SECRET_KEYS = ["token", "api_key", "apiKey", "secret", "credentials", "auth"]


def labels_for(ent):
    return LABELS.get(ent, ["value"])


def json_keys_for(ent):
    return JSON_KEYS.get(ent, SECRET_KEYS)


# ------------------------------------------------------------------ records

class Body:
    """A text body (one leaf at path ()) or a JSON body (leaves at JSON paths), with labelled spans."""

    def __init__(self, layout):
        self.layout = layout
        self.text = None
        self.json = None
        self.labels = []  # (entity, path, start, end)
        self.looks = []  # (kind, path, start, end)

    def record(self):
        return {"layout": self.layout, "body": self.text if self.json is None else self.json,
                "labels": [list(x[:1]) + [list(x[1])] + list(x[2:]) for x in self.labels],
                "lookalikes": [list(x[:1]) + [list(x[1])] + list(x[2:]) for x in self.looks]}


class Text:
    """Builds a string and remembers spans."""

    def __init__(self):
        self.s = ""
        self.spans = []

    def add(self, t):
        self.s += t
        return self

    def mark(self, tag, t):
        start = len(self.s)
        self.s += t
        self.spans.append((tag, start, len(self.s)))
        return self


def label_phrase(g, ent, value, out, tag, self_ident):
    """Appends `<label> value` in one of several written forms."""
    words = labels_for(ent)
    bare = self_ident and g.r.random() < 0.3
    if bare:
        out.add(g.pick(["", "see ", "use ", "it is "]))
        out.mark(tag, value)
        return
    w = g.pick(words)
    form = g.r.randint(0, 5)
    if form == 0:
        out.add(f"{w} ").mark(tag, value)
    elif form == 1:
        out.add(f"{w}: ").mark(tag, value)
    elif form == 2:
        out.add(f"my {w} is ").mark(tag, value)
    elif form == 3:
        out.add(f"({w} ").mark(tag, value).add(")")
    elif form == 4:
        out.add(f"{w}:").mark(tag, value)
    else:
        out.add(f"{w} - ").mark(tag, value)


def prose(g, items):
    """Chat-style free text around one or more (tag, entity, value, self_ident)."""
    t = Text()
    openers = ["Hi, ", "Please help: ", "Can you check this? ", "Summarize the following. ", "", "Hello team, "]
    t.add(g.pick(openers) + g.sentence() + " ")
    for k, (tag, ent, value, si) in enumerate(items):
        if ent == "person_name" and g.r.random() < 0.4:
            t.add(g.pick(["Please draft a letter to ", "Summarize the visit of ", "I saw ", "Book a follow-up for ",
                          "Write a referral for "])).mark(tag, value).add(g.pick([" yesterday", ", 54,", " at 3pm", ""]))
        elif ent == "secret.private_key":
            t.add(g.pick(["Here is the key:\n", "private key below\n"])).mark(tag, value).add("\n")
        else:
            label_phrase(g, ent, value, t, tag, si)
        t.add(g.pick([". ", ", ", " and ", "; ", ".\n"]))
        if k + 1 < len(items) and g.r.random() < 0.5:
            t.add(g.sentence() + " ")
    t.add(g.sentence())
    return t


def with_spans(body, path, t):
    for tag, s, e in t.spans:
        kind, name = tag
        (body.labels if kind == "L" else body.looks).append((name, tuple(path), s, e))


def render_prose(g, body, items):
    t = prose(g, items)
    body.text = t.s
    with_spans(body, (), t)


def render_chat(g, body, items):
    t = prose(g, items)
    sys_prompt = g.pick(["You are a helpful assistant.", "You are a clinical documentation assistant.",
                         "Answer briefly."])
    body.json = {"model": g.pick(["gpt-4o-mini", "llama3.1:8b", "mistral-large"]),
                 "messages": [{"role": "system", "content": sys_prompt}, {"role": "user", "content": t.s}],
                 "temperature": 0.2}
    with_spans(body, ("messages", 1, "content"), t)


def render_json(g, body, items):
    obj = {"id": str(uuid.UUID(int=g.r.getrandbits(128))), "created_at": g.iso()}
    for tag, ent, value, si in items:
        key = g.pick(json_keys_for(ent))
        while key in obj or key + "_note" in obj:
            key += "_2"
        if value.isdigit() and len(value) < 16 and not value.startswith("0") and g.r.random() < 0.3:
            obj[key] = int(value)
            kind, name = tag
            (body.labels if kind == "L" else body.looks).append((name, (key,), 0, len(value)))
        elif g.r.random() < 0.25:
            # The value inside a sentence of a free-text member.
            t = Text()
            label_phrase(g, ent, value, t, tag, si)
            t.add(". " + g.sentence())
            obj[key + "_note"] = t.s
            with_spans(body, (key + "_note",), t)
        else:
            obj[key] = value
            kind, name = tag
            (body.labels if kind == "L" else body.looks).append((name, (key,), 0, len(value)))
    obj["status"] = g.pick(["active", "pending", "closed"])
    body.json = obj


def kv_key(g, ent):
    k = g.pick(json_keys_for(ent))
    return k


def render_kv(g, body, items):
    t = Text()
    style = g.pick(["logfmt", "colon", "env", "yaml"])
    if style == "logfmt":
        t.add(f"ts={g.iso()}Z level={g.pick(['info', 'warn', 'debug'])} svc={g.us.word()} ")
        for tag, ent, value, si in items:
            k = kv_key(g, ent)
            if " " in value or "\n" in value:
                t.add(f'{k}="').mark(tag, value.replace("\n", "\\n")).add('" ')
            else:
                t.add(f"{k}=").mark(tag, value).add(" ")
        t.add(f'msg="{g.sentence()}"')
    elif style == "colon":
        t.add(g.sentence() + "\n")
        for tag, ent, value, si in items:
            k = g.pick(labels_for(ent) + json_keys_for(ent)).replace(" ", "_")
            t.add(f"{k}:").mark(tag, value).add(g.pick(["\n", " | ", ", ", ";"]))
    elif style == "env":
        for tag, ent, value, si in items:
            k = re.sub(r"(?<=[a-z])(?=[A-Z])", "_", g.pick(json_keys_for(ent))).upper()
            t.add(f"export {k}=" if g.r.random() < 0.3 else f"{k}=")
            if "\n" in value:
                t.add('"').mark(tag, value).add('"\n')
            else:
                q = g.pick(["", "'", '"'])
                t.add(q).mark(tag, value).add(q + "\n")
    else:
        t.add("record:\n")
        for tag, ent, value, si in items:
            k = g.pick(json_keys_for(ent))
            if "\n" in value:
                t.add(f"  {k}: |\n    ").mark(tag, value.replace("\n", "\n    ")).add("\n")
            else:
                t.add(f"  {k}: ").mark(tag, value).add("\n")
    body.text = t.s
    with_spans(body, (), t)


def render_url(g, body, items):
    t = Text()
    host = g.pick(["api.example.com", "portal.example.org", "10.20.0.5:8443", "intranet.local"])
    t.add(g.pick(["GET ", "POST ", "curl '", "Open ", "redirect to ", ""]))
    for tag, ent, value, si in items:
        r = g.r.random()
        in_query = r >= 0.35
        # Query values are percent- or form-encoded; path segments only percent-encoded.
        form = in_query and g.r.random() < 0.3
        enc = urllib.parse.quote_plus(value, safe="") if form else urllib.parse.quote(value, safe="")
        if ent == "secret.github_token" and r < 0.5:
            t.add("https://").mark(tag, value).add(f"@github.com/{g.us.user_name()}/{g.us.word()}.git ")
            continue
        if ent == "ip_address" and r < 0.5:
            ip = f"[{value}]" if ":" in value else value
            t.add(g.pick(["http://", "https://", "tcp://"]))
            if ":" in value:
                t.add("[").mark(tag, value).add("]")
            else:
                t.mark(tag, value)
            t.add(f":{g.r.randint(1024, 65535)}/{g.us.word()} ")
            del ip
            continue
        if ent == "email" and r < 0.2:
            t.add("mailto:").mark(tag, enc if g.r.random() < 0.5 else value).add(" ")
            continue
        t.add(f"https://{host}/v1/")
        if r < 0.35 and "\n" not in value:
            t.add(f"{g.pick(json_keys_for(ent))}/").mark(tag, enc).add(f"/{g.pick(['history', 'records', 'edit'])}")
            t.add(f"?page={g.r.randint(1, 9)}" if g.r.random() < 0.5 else "")
        else:
            t.add(f"search?q={g.us.word()}&{g.pick(json_keys_for(ent))}=").mark(tag, enc)
            t.add(f"&lang={g.pick(['en', 'de', 'fr'])}")
        t.add(g.pick([" ", "' ", "\n"]))
    t.add(g.pick(["", "HTTP/1.1", "-> 302", "returned 404"]))
    body.text = t.s
    with_spans(body, (), t)


RENDER = {"prose": render_prose, "chat": render_chat, "json": render_json, "kv": render_kv, "url": render_url}

# ------------------------------------------------------------------ encodings

DASHES = ["\u2013", "\u2014", "\u2011"]
SPACES = ["\u00a0", "\u2009", "\u202f"]


def unicode_variant(g, value, spaced=True):
    """Same value as people paste it: Unicode dashes/spaces, full-width or one-by-one digits."""
    r = g.r.random() * (1.0 if spaced else 0.6)
    if r < 0.3 and ("-" in value or " " in value):
        return value.replace("-", g.pick(DASHES)).replace(" ", g.pick(SPACES))
    if r < 0.6:
        return "".join(chr(ord(c) - 48 + 0xFF10) if c.isdigit() else c for c in value)
    return " ".join(c for c in value if c.isalnum())


def base64_body(g, body, ent, value):
    inner = json.dumps({"user": {g.pick(json_keys_for(ent)): value}, "note": g.sentence()})
    enc = base64.b64encode(inner.encode()).decode()
    t = Text()
    t.add(f"payload={g.pick(['', 'b64:'])}" if g.r.random() < 0.5 else "data: ").mark(("L", ent), enc)
    t.add(f" {g.sentence()}")
    body.text = t.s
    with_spans(body, (), t)


# ------------------------------------------------------------------ look-alikes

def luhn_fix(g, prefix, n):
    base = prefix + g.digits(n - len(prefix) - 1)
    return base + luhn.calc_check_digit(base)


LOOKALIKES = {
    "order_id": (["order", "Order #", "Bestellung", "commande", "pedido"],
                 lambda g: g.pick([f"ORD-{g.digits(5)}-{g.digits(5)}", f"PO-{g.r.randint(2019, 2031)}-{g.digits(6)}",
                                   f"{g.digits(3)}-{g.digits(7)}-{g.digits(7)}", f"SO{g.digits(8)}",
                                   f"A{g.digits(2)}-{g.digits(4)}-{g.digits(4)}"])),
    "invoice_id": (["invoice", "Rechnung", "facture", "factura", "ref"],
                   lambda g: g.pick([f"INV-{g.digits(9)}", f"{g.r.randint(2019, 2031)}-INV-{g.digits(5)}",
                                     f"RE{g.digits(8)}", f"F-{g.digits(4)}/{g.digits(3)}"])),
    "uuid": (["request id", "trace", "id", "correlation-id"], lambda g: str(uuid.UUID(int=g.r.getrandbits(128)))),
    "hash": (["sha256", "commit", "etag", "md5", "digest"],
             lambda g: g.chars("0123456789abcdef", g.pick([7, 32, 40, 64]))),
    "timestamp": (["at", "timestamp", "ts", "created"],
                  lambda g: g.pick([g.iso() + "Z", g.iso(), str(g.r.randint(1_500_000_000, 1_900_000_000)),
                                    str(g.r.randint(1_500_000_000_000, 1_900_000_000_000)),
                                    g.when().strftime("%Y-%m-%d %H:%M:%S")])),
    "iso_date": (["due", "date", "on", "valid until", "Datum"], lambda g: g.when().date().isoformat()),
    "version": (["version", "v", "build", "release"],
                lambda g: g.pick([f"{g.r.randint(0, 20)}.{g.r.randint(0, 40)}.{g.r.randint(0, 200)}",
                                  f"v{g.r.randint(1, 9)}.{g.r.randint(0, 30)}.{g.r.randint(0, 9)}-rc{g.r.randint(1, 5)}",
                                  f"10.0.{g.r.randint(10000, 22631)}.{g.r.randint(100, 4000)}",
                                  f"{g.r.randint(2019, 2031)}.{g.r.randint(1, 12)}.{g.r.randint(1, 28)}"])),
    "amount": (["total", "amount", "Betrag", "montant", "price"],
               lambda g: g.pick([f"${g.r.randint(1, 999)},{g.digits(3)}.{g.digits(2)}",
                                 f"{g.r.randint(1, 999)}.{g.digits(3)},{g.digits(2)} €",
                                 f"{g.r.randint(100000, 99999999)}.{g.digits(2)} USD",
                                 f"{g.r.randint(1, 9)} {g.digits(3)} {g.digits(3)},{g.digits(2)} EUR"])),
    "tracking": (["tracking", "shipment", "Sendungsnummer", "colis"],
                 lambda g: g.pick(["1Z" + g.chars(string.ascii_uppercase + string.digits, 16), g.digits(12), g.digits(15),
                                   "9400 " + " ".join(g.digits(4) for _ in range(4)) + " " + g.digits(2),
                                   g.chars(string.ascii_uppercase, 2) + g.digits(9) + g.pick(["US", "GB", "DE"])])),
    "part_number": (["part no", "SKU", "code", "model", "item"],
                    lambda g: g.pick([g.chars(string.ascii_uppercase, 2) + g.digits(7),
                                      g.chars(string.ascii_uppercase, 2) + g.digits(6) + g.pick("ABCD"),
                                      g.digits(3) + "-" + g.digits(2) + "-" + g.digits(4) + "-X",
                                      f"SKU-{g.digits(8)}", g.chars(string.ascii_uppercase, 3) + "-" + g.digits(4)])),
    "ticket": (["ticket", "case", "incident", "booking"],
               lambda g: g.pick([g.digits(12), luhn_fix(g, "5", 12), g.digits(9), g.digits(10),
                                 f"{g.digits(3)} {g.digits(3)} {g.digits(4)}", f"INC{g.digits(7)}"])),
    # Label words next to values that are not the entity (too short, partial, a placeholder).
    "label_not_value": ([""], lambda g: g.pick([
        ("card ending in ", g.digits(4)), ("SSN last four ", g.digits(4)), ("NHS number starts ", g.digits(3)),
        ("phone ext. ", g.digits(3)), ("IBAN ends with ", g.digits(4)), ("DOB year ", str(g.r.randint(1940, 2010))),
        ("NPI prefix ", g.digits(3)), ("DEA schedule ", g.pick(["II", "III", "IV"])),
        ("born in ", str(g.r.randint(1940, 2010))), ("tel: ", "n/a"), ("MRN pending, queue ", g.digits(3)),
        ("ICD-10 chapter ", g.pick(["IX", "XI", "XIX"])), ("account ", g.digits(6)),
        ("SIN issued ", str(g.r.randint(1990, 2024))), ("routing ", g.digits(5))])),
}

CAPITALISED = ["Visual Studio Code", "Google Chrome", "Microsoft Teams", "Amazon Web Services", "Golden Gate Bridge",
               "New York City", "Los Angeles", "Mount Everest", "Apple Watch", "Model Y", "United Nations",
               "World Health Organization", "Black Friday", "General Electric", "San Francisco", "Saint Louis",
               "Jackson Hole", "Santa Clara", "Grand Central Station", "Premier League", "Kaiser Permanente",
               "Mayo Clinic", "Johns Hopkins Hospital", "Red Cross", "Deutsche Bank", "Crédit Agricole",
               "Banco Santander", "Notre Dame", "Buckingham Palace", "Christmas Eve", "Easter Monday",
               "Pull Request", "Release Notes", "Product Roadmap", "Quarterly Business Review", "Machine Learning",
               "Kubernetes Engine", "Postgres Database", "Main Street Bakery", "Lake Tahoe", "Victoria Station",
               "Charles River Labs", "Hamilton Musical", "Austin Texas", "Florence Italy", "Georgia Tech"]


def lookalike_items(g):
    kind = g.pick(list(LOOKALIKES))
    words, make = LOOKALIKES[kind]
    v = make(g)
    if isinstance(v, tuple):
        return kind, v[0].strip(), v[1]
    return kind, g.pick(words), v


def render_lookalike(g, body, layout):
    kind, word, value = lookalike_items(g)
    tag = ("N", kind)
    if layout == "json":
        key = re.sub(r"[^a-z]+", "_", word.lower()).strip("_") or "value"
        if value.isdigit() and g.r.random() < 0.3 and not value.startswith("0"):
            body.json = {key: int(value), "status": "ok"}
        else:
            body.json = {key: value, "status": "ok"}
        body.looks.append((kind, (key,), 0, len(value)))
        return
    t = Text()
    if layout == "kv":
        key = re.sub(r"[^a-z]+", "_", word.lower()).strip("_") or "value"
        t.add(f"ts={g.iso()} level=info {key}{g.pick(['=', ':', ': '])}").mark(tag, value)
        t.add(f' msg="{g.sentence()}"')
    elif layout == "url":
        key = re.sub(r"[^a-z]+", "_", word.lower()).strip("_") or "id"
        t.add(f"GET https://shop.example.com/{key}/").mark(tag, urllib.parse.quote(value, safe="")).add(
            f"?lang=en HTTP/1.1")
    else:
        t.add(g.sentence() + " " + (word + " " if word else "")).mark(tag, value).add(" " + g.sentence())
    body.text = t.s
    with_spans(body, (), t)


def render_capitalised(g, body):
    t = Text()
    name = g.pick(CAPITALISED)
    t.add(g.pick(["We met at ", "Ask about ", "The ", "Notes from ", "Compare ", "Write a review for ",
                  "Send the invoice to ", "Thanks to ", "We partnered with ", "the visit of "])).mark(("N", "capitalised"), name)
    t.add(g.pick([" yesterday.", " roadmap.", " with the team.", " before Friday."]) + " " + g.sentence())
    body.text = t.s
    with_spans(body, (), t)


# ------------------------------------------------------------------ corpus

def generate(seed=SEED, n=100):
    """Bodies: every entity in every layout (n each), mixed bodies, encodings, look-alikes."""
    g = Gen(seed)
    bodies = []
    ents = list(VALUES)
    for ent in ents:
        for layout in CORE_LAYOUTS[:-1]:
            if layout == "url" and ent == "secret.private_key":
                continue
            for _ in range(n):
                v, si = VALUES[ent](g)
                b = Body(layout)
                RENDER[layout](g, b, [(("L", ent), ent, v, si)])
                bodies.append(b)
    # Several entities in one body (a patient summary, an account change).
    for _ in range(n * 6):
        layout = g.pick(["prose", "chat", "json", "kv"])
        picks = g.r.sample(ents, g.r.randint(2, 5))
        items = []
        for ent in picks:
            v, si = VALUES[ent](g)
            items.append((("L", ent), ent, v, si))
        b = Body("mixed")
        RENDER[layout](g, b, items)
        bodies.append(b)
    # Encodings: Unicode separators and digits; base64 runs.
    numeric = ["credit_card", "iban", "uk_nhs", "us_npi", "ca_sin", "us_ssn", "phone", "date_of_birth"]
    for ent in numeric:
        for _ in range(max(10, n // 3)):
            v, si = VALUES[ent](g)
            b = Body("unicode")
            render_prose(g, b, [(("L", ent), ent, unicode_variant(g, v, ent != "date_of_birth"), False)])
            bodies.append(b)
    for ent in ["email", "credit_card", "us_ssn", "iban", "phone", "secret.github_token", "person_name"]:
        for _ in range(max(10, n // 3)):
            v, _ = VALUES[ent](g)
            b = Body("base64")
            base64_body(g, b, ent, v)
            bodies.append(b)
    for layout in ["prose", "json", "kv", "url"]:
        for _ in range(n * 6):
            b = Body(layout)
            render_lookalike(g, b, layout)
            bodies.append(b)
    for _ in range(n * 2):
        b = Body("prose")
        render_capitalised(g, b)
        bodies.append(b)
    g.r.shuffle(bodies)
    return [b.record() for b in bodies]


# ------------------------------------------------------------------ scoring

CONFIG = {"classification": {"actions": {c: "redact" for c in ["pii", "phi", "pci", "secret", "custom"]}}}
MARK = re.compile(r"\[REDACTED:([A-Z0-9_.]+)\]")


def scan(records, cli=CLI):
    with tempfile.TemporaryDirectory() as d:
        cfg = pathlib.Path(d) / "cfg.json"
        cfg.write_text(json.dumps(CONFIG))
        lines = "".join(json.dumps(r["body"], ensure_ascii=False) + "\n" for r in records)
        p = subprocess.run([str(cli), "scan", "--ndjson", "--config", str(cfg), "-"], input=lines.encode(),
                           capture_output=True, timeout=600)
    if p.returncode not in (0, 1):
        raise RuntimeError(f"scan failed ({p.returncode}): {p.stderr.decode()[:500]}")
    out = [json.loads(x) for x in p.stdout.decode().splitlines()]
    if len(out) != len(records):
        raise RuntimeError(f"{len(records)} bodies in, {len(out)} results out")
    return out


def leaf(v, path):
    for p in path:
        try:
            v = v[p]
        except (KeyError, IndexError, TypeError):
            return None
    if isinstance(v, bool) or v is None:
        return None
    return v if isinstance(v, str) else json.dumps(v)


def replaced_map(a, b):
    """Per character of `a`: None if kept in `b`, else the set of entities whose marks replaced it."""
    marks = []

    def sub(m):
        marks.append(m.group(1).lower())
        return chr(0xE000 + len(marks) - 1)

    bn = MARK.sub(sub, b)
    res = [None] * len(a)
    sm = difflib.SequenceMatcher(None, a, bn, autojunk=False)
    for op, i1, i2, j1, j2 in sm.get_opcodes():
        if op == "equal":
            continue
        ents = {marks[ord(c) - 0xE000] for c in bn[j1:j2] if 0xE000 <= ord(c) < 0xE000 + len(marks)}
        for i in range(i1, i2):
            res[i] = ents
    return res


def score(records, results):
    rec_stats = {}  # (entity, layout) -> [found, wrong_entity, total]
    look_stats = {}  # kind -> [touched, total]
    misses = []
    for r, o in zip(records, results):
        cache = {}

        def rmap(path):
            key = tuple(path)
            if key not in cache:
                a = leaf(r["body"], path)
                b = leaf(o["body"], path) if o["body"] is not None else ""
                cache[key] = (a, replaced_map(a, b if b is not None else "")) if a is not None else (None, None)
            return cache[key]

        for ent, path, s, e in r["labels"]:
            a, m = rmap(path)
            st = rec_stats.setdefault((ent, r["layout"]), [0, 0, 0])
            st[2] += 1
            idx = [i for i in range(s, e) if a[i].isalnum()]
            if idx and all(m[i] is not None for i in idx):
                if any(ent in m[i] for i in idx):
                    st[0] += 1
                    continue
                st[1] += 1
                got = sorted(set().union(*(m[i] for i in idx)))
                misses.append(("wrong", ent, r["layout"], a[s:e], got, a))
            else:
                misses.append(("missed", ent, r["layout"], a[s:e], None, a))
        for kind, path, s, e in r["lookalikes"]:
            a, m = rmap(path)
            st = look_stats.setdefault(kind, [0, 0])
            st[1] += 1
            if any(m[i] is not None for i in range(s, e) if a[i].isalnum()):
                st[0] += 1
                got = sorted(set().union(*(m[i] for i in range(s, e) if m[i] is not None)))
                misses.append(("touched", kind, "", a[s:e], got, a))
    return rec_stats, look_stats, misses


def summarize(rec_stats, look_stats):
    """Per entity: recall overall and per layout; look-alike rates; the list of targets missed."""
    ents = sorted({e for e, _ in rec_stats}, key=lambda e: (e.startswith("secret."), e))
    layouts = ["prose", "chat", "json", "kv", "url", "mixed", "unicode", "base64"]
    rows = []
    below = []
    for ent in ents:
        tot = [sum(v[i] for (e, _), v in rec_stats.items() if e == ent) for i in range(3)]
        recall = tot[0] / tot[2]
        per = {}
        for lay in layouts:
            v = rec_stats.get((ent, lay))
            if v:
                per[lay] = v[0] / v[2]
        rows.append((ent, recall, tot, per))
        target = TARGETS.get(ent)
        if target is not None and recall < target:
            below.append(f"{ent}: recall {recall:.4f} < {target}")
        if ent in CHECKSUM or ent in SECRETS:
            for lay in CORE_LAYOUTS:
                if lay in per and per[lay] < target:
                    below.append(f"{ent} in {lay}: recall {per[lay]:.4f} < {target}")
    listed = [k for k in look_stats if k != "capitalised"]
    touched = sum(look_stats[k][0] for k in listed)
    total = sum(look_stats[k][1] for k in listed)
    rate = touched / total if total else 0.0
    if rate > LOOKALIKE_MAX:
        below.append(f"look-alikes touched {rate:.4f} > {LOOKALIKE_MAX}")
    cap = look_stats.get("capitalised", [0, 0])
    cap_rate = cap[0] / cap[1] if cap[1] else 0.0
    if cap_rate > CAPITALISED_MAX:
        below.append(f"capitalised non-names touched {cap_rate:.4f} > {CAPITALISED_MAX}")
    return rows, layouts, (touched, total, rate), cap_rate, below


def table(rec_stats, look_stats):
    rows, layouts, (touched, total, rate), cap_rate, below = summarize(rec_stats, look_stats)
    lines = ["| entity | target | recall | found / labelled | wrong entity | " + " | ".join(layouts) + " |",
             "|---|---:|---:|---:|---:|" + "---:|" * len(layouts)]
    for ent, recall, tot, per in rows:
        cells = " | ".join(f"{per[lay]:.3f}" if lay in per else "" for lay in layouts)
        lines.append(f"| {ent} | {TARGETS.get(ent, '')} | {recall:.4f} | {tot[0]} / {tot[2]} | {tot[1]} | {cells} |")
    lines.append("")
    lines.append("| look-alike | touched / total | rate |")
    lines.append("|---|---:|---:|")
    for kind in sorted(look_stats):
        t, n = look_stats[kind]
        lines.append(f"| {kind} | {t} / {n} | {t / n:.4f} |")
    lines.append(f"| **all listed look-alikes** (target ≤ {LOOKALIKE_MAX}) | {touched} / {total} | {rate:.4f} |")
    lines.append(f"| capitalised non-names (target ≤ {CAPITALISED_MAX}) | | {cap_rate:.4f} |")
    return "\n".join(lines), below


def main(argv):
    n = 100
    seed = TUNING_SEED if "--tuning" in argv else SEED
    if "--misses" in argv and seed == SEED:
        print("--misses lists values of the gate seed: use it with --tuning only (the gate seed stays unseen)")
        return 2
    records = generate(seed, n)
    results = scan(records)
    rec_stats, look_stats, misses = score(records, results)
    text, below = table(rec_stats, look_stats)
    print(f"held-out corpus: seed {seed}, {len(records)} bodies, "
          f"{sum(len(r['labels']) for r in records)} labelled values, "
          f"{sum(len(r['lookalikes']) for r in records)} look-alikes\n")
    print(text)
    if "--misses" in argv:
        for m in misses:
            print(repr(m[:5]), "|", repr(m[5][:300]))
    if below:
        print("\nbelow target:\n  " + "\n  ".join(below))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
