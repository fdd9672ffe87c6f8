#!/usr/bin/env python3
"""Second held-out detection corpus: layouts nobody tuned the detectors on.

The first held-out corpus (heldout.py) kept its gate seed unseen, but its tuning seed used the same
generators and templates, so its gate measured unseen values of seen layouts. This module was written
before any detector ran on its output, with other value presentations and eleven layouts that neither
heldout.py nor make_corpus.py produce:

  csv        CSV / TSV / semicolon files with a header row (the label is the column, not the neighbour)
  markdown   Markdown tables, horizontal (header row) and vertical (`| Field | Value |`)
  yaml_toml  nested YAML (lists, flow maps, `type:`/`value:` pairs, quoted scalars) and TOML tables
  html       forms (`<input name=… value=…>`, `<label for>`), tables, `<dl>`, `mailto:` / `tel:` links
  xml        elements, attributes, namespaces (UBL-like invoices), CDATA
  email      RFC 5322 message headers (`From: "Name" <addr>`), body and a signature block
  sql        INSERT with column lists (several rows), UPDATE … SET, SELECT … WHERE
  logs       syslog (RFC 3164 and 5424), nginx combined, JSON log lines, Java/Python object dumps
  chat_ml    OpenAI chat bodies, several turns in EN/FR/DE/ES/IT/NL, tool-call arguments as escaped JSON
  json_nested nested arrays and objects, `{"type": "mobile", "number": …}` pairs, escaped text members
  url        path segments, fragments, `tel:`/`mailto:` URIs, redirect parameters encoded twice

Values come from independent tools (Faker, python-stdnum, phonenumbers, PyJWT, cryptography; the
versions pinned in host-tests/requirements.txt), written the way people in each country write them
(phone numbers with dots in France, a slash in Germany, `(0)` trunk groups; localised month names in
birth dates). A labelled value of an entity's exact layout is a finding even when its check digit or
range fails (issue 16: context must win); label words next to values that are NOT of the layout
(masked, partial, placeholders) must stay untouched, with the other look-alikes: order and invoice
ids, UUIDs, ULIDs, object ids, snowflake ids, hashes and digests, SRI integrity strings, timestamps in
log and mail formats, dates that are not birth dates, versions and user agents, OIDs, amounts, tracking
numbers, EAN and ISBN codes, IMEIs, MAC addresses, AWS account ids, postcodes, ports and counters.

Scoring is heldout.py's (same rules): every body goes through `proxy-audit scan --ndjson` with every
category set to `redact`; a value is found when every letter and digit of it was replaced by a mark of
its own entity, a look-alike is touched when any was.

The thresholds (TARGETS, LOOKALIKE_MAX, CAPITALISED_MAX) are issue 16's and were committed before the
detectors first ran on this corpus. Investigating misses uses TUNING_SEED only (`--tuning --misses`);
the gate seed's values are never listed.

    .venv/bin/python host-tests/corpus/heldout2.py                     # gate seed: tables, exit 1 below target
    .venv/bin/python host-tests/corpus/heldout2.py --tuning --misses   # tuning seed, with every miss
"""
import datetime
import ipaddress
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

try:
    from corpus import heldout as base
except ImportError:  # run as a script from host-tests/corpus
    sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
    import heldout as base

# Neither seed is heldout.py's or make_corpus.py's. The gate seed's misses are never listed.
SEED = 20_2027_0316
TUNING_SEED = 20_2027_0917
ROOT = pathlib.Path(__file__).resolve().parents[2]
CLI = ROOT / "target" / "release" / "proxy-audit"

CHECKSUM = base.CHECKSUM
SECRETS = base.SECRETS
COMMON = ["email", "phone", "ip_address", "date_of_birth"]
CONTEXTUAL = ["person_name", "street_address", "mrn", "icd10"]
LAYOUTS = ["csv", "markdown", "yaml_toml", "html", "xml", "email", "sql", "logs", "chat_ml", "json_nested", "url"]

# Issue 16's targets, fixed before this corpus was first scanned: recall per entity over all layouts,
# and for checksum and prefixed-secret entities in every layout on its own; look-alikes touched.
TARGETS = {**{e: 0.99 for e in CHECKSUM + SECRETS}, **{e: 0.97 for e in COMMON},
           **{e: 0.85 for e in CONTEXTUAL}}
LOOKALIKE_MAX = 0.005
CAPITALISED_MAX = 0.02

LANGS = ["en", "fr", "de", "es", "it", "nl"]


class Gen:
    def __init__(self, seed):
        self.r = random.Random(seed)
        Faker.seed(seed)
        self.locs = {loc: Faker(loc) for loc in ["en_US", "en_GB", "de_DE", "fr_FR", "es_ES", "it_IT", "nl_NL",
                                                 "en_IN", "en_CA", "de_AT", "fr_CH", "pt_PT", "pl_PL", "nl_BE"]}
        for k, f in enumerate(self.locs.values()):
            f.seed_instance(seed * 7 + k)
        self.us = self.locs["en_US"]

    def pick(self, xs):
        return self.r.choice(xs)

    def digits(self, n):
        return "".join(self.r.choice(string.digits) for _ in range(n))

    def chars(self, alphabet, n):
        return "".join(self.r.choice(alphabet) for _ in range(n))

    def when(self):
        return self.us.date_time_between(start_date=datetime.datetime(2003, 1, 1), end_date=datetime.datetime(2033, 1, 1))

    def word(self):
        return self.us.word()

    def sentence(self, lang="en"):
        return self.pick(SENTENCES[lang])


SENTENCES = {
    "en": ["Thanks for the quick reply.", "Let me know if anything is missing.", "This is urgent.",
           "The form was submitted this morning.", "Please keep this confidential.", "See the record below."],
    "fr": ["Merci pour votre retour rapide.", "Dites-moi s'il manque quelque chose.", "C'est urgent.",
           "Le dossier a été envoyé ce matin.", "Merci de garder ceci confidentiel."],
    "de": ["Danke für die schnelle Antwort.", "Bitte melden Sie sich, falls etwas fehlt.", "Es ist dringend.",
           "Das Formular wurde heute Morgen abgeschickt.", "Bitte vertraulich behandeln."],
    "es": ["Gracias por la respuesta rápida.", "Avísame si falta algo.", "Es urgente.",
           "El formulario se envió esta mañana.", "Por favor, trátalo de forma confidencial."],
    "it": ["Grazie per la risposta veloce.", "Fammi sapere se manca qualcosa.", "È urgente.",
           "Il modulo è stato inviato stamattina.", "Per favore, tienilo riservato."],
    "nl": ["Bedankt voor het snelle antwoord.", "Laat het weten als er iets ontbreekt.", "Het is dringend.",
           "Het formulier is vanochtend verstuurd.", "Graag vertrouwelijk behandelen."],
}

B62 = string.digits + string.ascii_uppercase + string.ascii_lowercase
B64URL = B62 + "-_"


def b62(n, width=6):
    s = ""
    while n:
        s = B62[n % 62] + s
        n //= 62
    return s.rjust(width, "0")


# ------------------------------------------------------------------ values
# Each returns the value as written. Every layout below writes a label (a column, key, attribute or
# word) with every value, so a value whose check digit fails is still a finding.

def bad_check(g, v):
    """The same value with its last digit changed (a typo or test value the label still names)."""
    i = max(k for k, c in enumerate(v) if c.isdigit())
    d = str((int(v[i]) + g.r.randint(1, 9)) % 10)
    return v[:i] + d + v[i + 1:]


def v_credit_card(g):
    kind = g.pick(["visa16", "visa16", "mastercard", "mastercard", "amex", "discover", "jcb", "diners", "visa19"])
    while True:
        n = g.us.credit_card_number(card_type=kind)
        if luhn.is_valid(n) and n[0] != "0" and not (kind == "jcb" and not 3528 <= int(n[:4]) <= 3589):
            break
    if g.r.random() < 0.08:
        n = bad_check(g, n)
    sep = g.pick([" ", " ", "-", "", ""])
    if not sep:
        return n
    if len(n) == 15:
        return sep.join([n[:4], n[4:10], n[10:]])
    if len(n) == 14:
        return sep.join([n[:4], n[4:10], n[10:]])
    return sep.join(n[i:i + 4] for i in range(0, len(n), 4))


def v_iban(g):
    while True:
        v = g.locs[g.pick(["de_DE", "fr_FR", "en_GB", "nl_NL", "es_ES", "it_IT", "de_AT", "fr_CH", "pt_PT",
                           "pl_PL", "nl_BE"])].iban()
        if std_iban.is_valid(v):
            break
    if g.r.random() < 0.06:
        v = bad_check(g, v)
    if g.r.random() < 0.5:
        return " ".join(v[i:i + 4] for i in range(0, len(v), 4))
    return v


def v_uk_nhs(g):
    while True:
        n = g.pick("3456789") + g.digits(9)
        if std_nhs.is_valid(n):
            break
    if g.r.random() < 0.06:
        n = bad_check(g, n)
    sep = g.pick([" ", " ", "", "-"])
    return f"{n[:3]}{sep}{n[3:6]}{sep}{n[6:]}" if sep else n


def v_us_npi(g):
    base9 = g.pick("12") + g.digits(8)
    n = base9 + luhn.calc_check_digit("80840" + base9)
    return bad_check(g, n) if g.r.random() < 0.06 else n


def v_us_dea(g):
    first = g.pick("ABFGMPRX")
    last = g.locs[g.pick(["en_US", "en_GB", "it_IT"])].last_name()
    second = last[0].upper() if "A" <= last[0].upper() <= "Z" else "K"
    d = [g.r.randint(0, 9) for _ in range(6)]
    c = (d[0] + d[2] + d[4] + 2 * (d[1] + d[3] + d[5])) % 10
    return first + second + "".join(map(str, d)) + str(c)


def v_ca_sin(g):
    while True:
        n = g.pick("1234567") + g.digits(7)
        n = n + luhn.calc_check_digit(n)
        if std_sin.is_valid(n):
            break
    if g.r.random() < 0.06:
        n = bad_check(g, n)
    sep = g.pick([" ", "-", "", " "])
    return f"{n[:3]}{sep}{n[3:6]}{sep}{n[6:]}" if sep else n


def v_us_ssn(g):
    if g.r.random() < 0.1:
        v = g.pick(["000", "666", "9" + g.digits(2)]) + "-" + g.digits(2) + "-" + g.digits(4)
    else:
        while True:
            v = g.us.ssn()
            if std_ssn.is_valid(v):
                break
    r = g.r.random()
    if r < 0.15:
        return v.replace("-", "")
    if r < 0.25:
        return v.replace("-", " ")
    return v


def v_us_itin(g):
    while True:
        v = g.us.itin()
        if std_itin.is_valid(v):
            break
    r = g.r.random()
    return v.replace("-", "") if r < 0.2 else (v.replace("-", " ") if r < 0.3 else v)


def v_uk_nino(g):
    while True:
        a, b = g.pick("ABCEGHJKLMNOPRSTWXYZ"), g.pick("ABCEGHJKLMNPRSTWXYZ")
        if a + b not in ("BG", "GB", "NK", "KN", "TN", "NT", "ZZ"):
            break
    d = g.digits(6)
    s = g.pick("ABCD")
    r = g.r.random()
    if r < 0.45:
        return f"{a}{b} {d[:2]} {d[2:4]} {d[4:]} {s}"
    if r < 0.55:
        return f"{a}{b}-{d[:2]}-{d[2:4]}-{d[4:]}-{s}"
    return f"{a}{b}{d}{s}"


def v_email(g):
    f = g.locs[g.pick(["en_US", "en_GB", "de_DE", "fr_FR", "es_ES", "it_IT", "nl_NL", "pl_PL", "pt_PT"])]
    r = g.r.random()
    if r < 0.45:
        v = f.free_email()
    elif r < 0.7:
        v = f"{f.first_name()}.{f.last_name()}@{f.domain_name()}"
    elif r < 0.85:
        v = f"{f.user_name()}_{g.digits(2)}@{f.domain_word()}.{g.pick(['co.uk', 'com.au', 'de', 'fr', 'io', 'org'])}"
    else:
        v = f"{f.last_name()[0]}{f.last_name()}+{g.pick(['invoices', 'hr', 'test'])}@{f.domain_name(2)}"
    v = v.replace(" ", "").replace("'", "").encode("ascii", "ignore").decode()
    return v.lower() if g.r.random() < 0.7 else v


CORE_REGIONS = ["US", "CA", "GB", "DE", "FR", "IT", "ES", "NL", "IN"]
OTHER_REGIONS = ["AU", "BR", "JP", "CH", "SE", "PL", "MX", "ZA", "IE", "BE"]
P = phonenumbers.PhoneNumberFormat


def random_number(g, region):
    typ = g.pick([phonenumbers.PhoneNumberType.FIXED_LINE, phonenumbers.PhoneNumberType.MOBILE])
    ex = phonenumbers.example_number_for_type(region, typ) or phonenumbers.example_number(region)
    nat = str(ex.national_number)
    for _ in range(500):
        keep = g.r.randint(1, 3)
        cand = nat[:keep] + g.digits(len(nat) - keep)
        pn = phonenumbers.parse("+" + str(ex.country_code) + cand)
        if phonenumbers.is_valid_number(pn) and "555" not in cand[:6]:
            return pn
    return ex


def national_style(g, region, pn):
    """How people in the region write it by hand (beyond libphonenumber's own formats)."""
    nat = phonenumbers.format_number(pn, P.NATIONAL)
    intl = phonenumbers.format_number(pn, P.INTERNATIONAL)
    cc = str(pn.country_code)
    if region in ("US", "CA"):
        d = str(pn.national_number)
        return g.pick([f"{d[:3]}.{d[3:6]}.{d[6:]}", f"1-{d[:3]}-{d[3:6]}-{d[6:]}", f"+1 {d[:3]}-{d[3:6]}-{d[6:]}",
                       f"({d[:3]}){d[3:6]}-{d[6:]}"])
    if region == "FR":
        return g.pick([nat.replace(" ", "."), intl.replace(f"+{cc} ", f"+{cc} (0)")])
    if region == "DE":
        return g.pick([nat.replace(" ", "/", 1), nat.replace(" ", "-", 1),
                       intl.replace(f"+{cc} ", f"+{cc} (0)")])
    if region == "GB":
        return intl.replace(f"+{cc} ", f"+{cc} (0)")
    if region == "NL":
        return nat.replace(" ", "-", 1)
    if region == "IN":
        d = str(pn.national_number)
        return g.pick([f"+91-{d[:5]}-{d[5:]}", f"0{d[:5]} {d[5:]}"])
    return nat


def v_phone(g):
    if g.r.random() < 0.12:
        region = g.pick(OTHER_REGIONS)
        pn = random_number(g, region)
        g.tel = [phonenumbers.format_number(pn, P.E164), phonenumbers.format_number(pn, P.RFC3966)[4:]]
        return phonenumbers.format_number(pn, g.pick([P.INTERNATIONAL, P.E164]))
    region = g.pick(CORE_REGIONS)
    pn = random_number(g, region)
    g.tel = [phonenumbers.format_number(pn, P.E164), phonenumbers.format_number(pn, P.RFC3966)[4:]]
    r = g.r.random()
    if r < 0.3:
        v = national_style(g, region, pn)
    elif r < 0.6:
        v = phonenumbers.format_number(pn, P.NATIONAL)
    elif r < 0.85:
        v = phonenumbers.format_number(pn, P.INTERNATIONAL)
    else:
        v = phonenumbers.format_number(pn, P.E164)
    if g.r.random() < 0.06:
        v += g.pick([" ext. ", " x", " ext "]) + str(g.r.randint(2, 4999))
    return v


def v_ip_address(g):
    r = g.r.random()
    if r < 0.4:
        return g.us.ipv4_public()
    if r < 0.65:
        return g.us.ipv4_private()
    if r < 0.8:
        return g.us.ipv6()
    # IPv6 with zero runs, compressed as systems print it (fe80::1c2:…, 2001:db8::…).
    prefix = g.pick([0xFE80 << 112, 0x20010DB8 << 96, 0x2A02 << 112 | g.r.getrandbits(16) << 96])
    return str(ipaddress.IPv6Address(prefix | g.r.getrandbits(g.pick([16, 32, 48, 64]))))


MONTHS = {
    "fr": ["janvier", "février", "mars", "avril", "mai", "juin", "juillet", "août", "septembre", "octobre",
           "novembre", "décembre"],
    "de": ["Januar", "Februar", "März", "April", "Mai", "Juni", "Juli", "August", "September", "Oktober",
           "November", "Dezember"],
    "es": ["enero", "febrero", "marzo", "abril", "mayo", "junio", "julio", "agosto", "septiembre", "octubre",
           "noviembre", "diciembre"],
    "it": ["gennaio", "febbraio", "marzo", "aprile", "maggio", "giugno", "luglio", "agosto", "settembre", "ottobre",
           "novembre", "dicembre"],
    "nl": ["januari", "februari", "maart", "april", "mei", "juni", "juli", "augustus", "september", "oktober",
           "november", "december"],
}
NUMERIC_DOB = {"en": ["%m/%d/%Y", "%Y-%m-%d", "%d %b %Y", "%b %d, %Y", "%m-%d-%Y"], "fr": ["%d/%m/%Y"],
               "de": ["%d.%m.%Y", "%-d.%-m.%Y"], "es": ["%d/%m/%Y", "%d-%m-%Y"], "it": ["%d/%m/%Y"],
               "nl": ["%d-%m-%Y"]}


def v_date_of_birth(g, lang=None):
    lang = lang or g.pick(LANGS)
    d = g.us.date_between(start_date=datetime.date(1929, 1, 1), end_date=datetime.date(2023, 12, 31))
    if lang != "en" and g.r.random() < 0.2:
        m = MONTHS[lang][d.month - 1]
        return {"fr": f"{d.day} {m} {d.year}", "de": f"{d.day}. {m} {d.year}", "es": f"{d.day} de {m} de {d.year}",
                "it": f"{d.day} {m} {d.year}", "nl": f"{d.day} {m} {d.year}"}[lang]
    return d.strftime(g.pick(NUMERIC_DOB[lang]))


def v_person_name(g):
    f = g.locs[g.pick(["en_US", "en_GB", "de_DE", "fr_FR", "es_ES", "it_IT", "nl_NL", "en_IN", "pl_PL", "pt_PT"])]
    r = g.r.random()
    if r < 0.7:
        return f"{f.first_name()} {f.last_name()}"
    if r < 0.85:
        return f"{f.first_name()} {g.pick(string.ascii_uppercase)}. {f.last_name()}"
    return f"{f.last_name()}, {f.first_name()}"


def v_street_address(g):
    f = g.locs[g.pick(["en_US", "en_GB", "de_DE", "fr_FR"])]
    while True:
        a = f.street_address().replace("\n", ", ")
        if any(c.isdigit() for c in a):
            return a


def v_mrn(g):
    return g.pick([g.digits(8), g.digits(9), "H" + g.digits(8), g.digits(3) + "-" + g.digits(4) + "-" + g.digits(2),
                   "MR" + g.digits(7), g.digits(6)])


# Real ICD-10-CM / ICD-10 codes, another list than heldout.py's.
ICD10 = ["A09", "B34.9", "C18.7", "D64.9", "E10.65", "E87.1", "F10.20", "F33.1", "G47.33", "G35", "H10.9",
         "I21.4", "I50.9", "I63.9", "J18.9", "J20.9", "K35.80", "K50.90", "K80.20", "L03.115", "M06.9",
         "M79.7", "N17.9", "N40.0", "O80", "R10.9", "R50.9", "S06.0X0A", "S82.101A", "T40.1X1A", "Z34.00",
         "Z51.11", "U07.1", "E55.9", "F43.10", "M81.0", "I11.0", "C34.90", "G40.909", "K57.30"]


def v_icd10(g):
    return g.pick(ICD10)


def v_github(g):
    r = g.r.random()
    if r < 0.2:
        return "github_pat_11" + g.chars(string.ascii_uppercase + string.digits, 20) + "_" + g.chars(B62, 59)
    body = g.chars(B62, 30)
    crc = zlib.crc32(body.encode())
    if r < 0.35:
        crc ^= 1 + g.r.randint(0, 1 << 20)
    return g.pick(["ghp_", "gho_", "ghs_", "ghu_", "ghr_"]) + body + b62(crc)


def v_aws_access(g):
    return g.pick(["AKIA", "AKIA", "ASIA"]) + g.chars(string.ascii_uppercase + "234567", 16)


def v_aws_secret(g):
    while True:
        s = g.chars(B62 + "/+", 40)
        if sum(c.isupper() for c in s) > 3 and sum(c.islower() for c in s) > 3 and any(c.isdigit() for c in s):
            return s


def v_openai(g):
    return g.pick(["sk-proj-" + g.chars(B64URL, 156), "sk-" + g.chars(B62, 20) + "T3BlbkFJ" + g.chars(B62, 20),
                   "sk-svcacct-" + g.chars(B64URL, 120), "sk-admin-" + g.chars(B64URL, 120)])


def v_anthropic(g):
    return g.pick(["sk-ant-api03-", "sk-ant-admin01-"]) + g.chars(B64URL, 93) + "AA"


def v_slack(g):
    return g.pick(["xoxb-", "xoxp-", "xoxe.xoxp-1-"]) + g.digits(11) + "-" + g.digits(13) + "-" + g.chars(B62, 24)


def v_stripe(g):
    return g.pick(["sk_live_", "rk_live_", "sk_test_", "rk_test_"]) + g.chars(B62, g.r.choice([24, 99]))


def v_google(g):
    return "AIza" + g.chars(B64URL, 35)


def v_private_key(g):
    if g.r.random() < 0.5:
        k = ec.derive_private_key(g.r.randrange(1, 2**380), ec.SECP384R1())
        fmt = g.pick([serialization.PrivateFormat.PKCS8, serialization.PrivateFormat.TraditionalOpenSSL])
    else:
        k = ed25519.Ed25519PrivateKey.from_private_bytes(g.r.randbytes(32))
        fmt = serialization.PrivateFormat.PKCS8
    return k.private_bytes(serialization.Encoding.PEM, fmt, serialization.NoEncryption()).decode().strip()


def v_jwt(g):
    claims = {"iss": "https://" + g.us.domain_name(), "sub": g.us.user_name(), "aud": g.pick(["api", "web"]),
              "exp": 1_900_000_000 + g.r.randint(0, 10**6), "scope": g.pick(["read", "read write", "admin"])}
    if g.r.random() < 0.5:
        # Ed25519 signatures are deterministic (ECDSA's are not), so the corpus is the same on every run.
        key = ed25519.Ed25519PrivateKey.from_private_bytes(g.r.randbytes(32))
        return pyjwt.encode(claims, key, algorithm="EdDSA", headers={"kid": g.chars(B62, 8)})
    return pyjwt.encode(claims, g.chars(B62, 64), algorithm="HS512")


VALUES = {
    "credit_card": v_credit_card, "iban": v_iban, "uk_nhs": v_uk_nhs, "us_npi": v_us_npi, "us_dea": v_us_dea,
    "ca_sin": v_ca_sin, "us_ssn": v_us_ssn, "us_itin": v_us_itin, "uk_nino": v_uk_nino, "email": v_email,
    "phone": v_phone, "ip_address": v_ip_address, "date_of_birth": v_date_of_birth, "person_name": v_person_name,
    "street_address": v_street_address, "mrn": v_mrn, "icd10": v_icd10, "secret.github_token": v_github,
    "secret.aws_access_key": v_aws_access, "secret.aws_secret_key": v_aws_secret, "secret.openai_key": v_openai,
    "secret.anthropic_key": v_anthropic, "secret.slack_token": v_slack, "secret.stripe_key": v_stripe,
    "secret.google_api_key": v_google, "secret.private_key": v_private_key, "secret.jwt": v_jwt,
}
MULTILINE = {"secret.private_key"}

# Machine names: columns, keys, attributes, element names, query parameters.
KEYS = {
    "credit_card": ["card_number", "cardNumber", "cc_number", "pan", "CardNo", "kartennummer", "numero_carte"],
    "iban": ["iban", "IBAN", "bank_iban", "payout_iban", "account_iban", "Iban"],
    "uk_nhs": ["nhs_number", "nhsNo", "NHSNumber", "nhs_no"],
    "us_npi": ["npi", "NPI", "provider_npi", "npiNumber", "rendering_npi"],
    "us_dea": ["dea", "dea_number", "DEANumber", "prescriber_dea"],
    "ca_sin": ["sin", "SIN", "social_insurance_number", "sin_number"],
    "us_ssn": ["ssn", "SSN", "social_security_number", "ssnNumber", "patient_ssn"],
    "us_itin": ["itin", "ITIN", "taxpayer_itin", "itinNumber"],
    "uk_nino": ["nino", "NINO", "ni_number", "national_insurance_number", "niNumber"],
    "email": ["email", "Email", "email_address", "mail", "e_mail", "contactEmail", "courriel"],
    "phone": ["phone", "Phone", "phone_number", "mobile", "tel", "telephone", "telefoon", "telefono", "handy"],
    "ip_address": ["ip", "client_ip", "remote_addr", "ip_address", "src_ip", "clientIp", "x_real_ip"],
    "date_of_birth": ["dob", "DOB", "date_of_birth", "birth_date", "birthdate", "geburtsdatum", "date_naissance"],
    "person_name": ["name", "full_name", "patient_name", "customer_name", "contact_name", "nom", "Name"],
    "street_address": ["address", "street_address", "address1", "addr", "anschrift", "adresse", "home_address"],
    "mrn": ["mrn", "MRN", "medical_record_number", "patient_mrn", "mrnNumber"],
    "icd10": ["icd10", "icd10_code", "diagnosis_code", "dx", "diagnosis", "ICD10"],
    "secret.github_token": ["github_token", "GITHUB_TOKEN", "gh_token", "token", "pat"],
    "secret.aws_access_key": ["aws_access_key_id", "AWS_ACCESS_KEY_ID", "accessKeyId", "access_key"],
    "secret.aws_secret_key": ["aws_secret_access_key", "AWS_SECRET_ACCESS_KEY", "secretAccessKey",
                              "aws_secret_key"],
    "secret.openai_key": ["openai_api_key", "OPENAI_API_KEY", "api_key", "openaiKey"],
    "secret.anthropic_key": ["anthropic_api_key", "ANTHROPIC_API_KEY", "api_key", "x-api-key"],
    "secret.slack_token": ["slack_token", "SLACK_BOT_TOKEN", "bot_token", "token"],
    "secret.stripe_key": ["stripe_secret_key", "STRIPE_API_KEY", "stripe_key", "secret_key"],
    "secret.google_api_key": ["google_api_key", "GOOGLE_API_KEY", "maps_api_key", "key"],
    "secret.private_key": ["private_key", "privateKey", "tls_key", "ssh_key"],
    "secret.jwt": ["id_token", "access_token", "jwt", "bearer", "authorization"],
}

# Words people write, per language (chat, e-mail bodies, HTML labels, signatures).
WORDS = {
    "credit_card": {"en": ["card number", "credit card", "Visa card"], "fr": ["numéro de carte", "carte bancaire"],
                    "de": ["Kreditkartennummer", "Karte"], "es": ["número de tarjeta", "tarjeta de crédito"],
                    "it": ["numero della carta", "carta di credito"], "nl": ["creditcardnummer", "kaartnummer"]},
    "iban": {"en": ["IBAN", "bank account (IBAN)"], "fr": ["IBAN", "RIB"], "de": ["IBAN", "Bankverbindung"],
             "es": ["IBAN", "cuenta bancaria"], "it": ["IBAN", "conto IBAN"], "nl": ["IBAN", "rekeningnummer"]},
    "uk_nhs": {"en": ["NHS number", "NHS No."]},
    "us_npi": {"en": ["NPI", "NPI number", "National Provider Identifier"]},
    "us_dea": {"en": ["DEA number", "DEA #", "DEA registration"]},
    "ca_sin": {"en": ["SIN", "Social Insurance Number"], "fr": ["NAS", "numéro d'assurance sociale"]},
    "us_ssn": {"en": ["SSN", "Social Security number", "social security #"], "es": ["número de Seguro Social"]},
    "us_itin": {"en": ["ITIN", "taxpayer ITIN"], "es": ["número ITIN"]},
    "uk_nino": {"en": ["National Insurance number", "NI number", "NINO"]},
    "email": {"en": ["email", "email address", "e-mail"], "fr": ["adresse e-mail", "courriel", "mail"],
              "de": ["E-Mail", "E-Mail-Adresse"], "es": ["correo", "correo electrónico"],
              "it": ["email", "indirizzo email"], "nl": ["e-mailadres", "mail"]},
    "phone": {"en": ["phone", "mobile", "cell", "tel."], "fr": ["téléphone", "portable", "tél."],
              "de": ["Telefon", "Handy", "Tel.", "Mobil"], "es": ["teléfono", "móvil", "tel."],
              "it": ["telefono", "cellulare", "tel."], "nl": ["telefoon", "mobiel", "tel."]},
    "ip_address": {"en": ["IP address", "client IP", "IP"], "fr": ["adresse IP"], "de": ["IP-Adresse"],
                   "es": ["dirección IP"], "it": ["indirizzo IP"], "nl": ["IP-adres"]},
    "date_of_birth": {"en": ["date of birth", "DOB", "born on"], "fr": ["date de naissance", "né le", "née le"],
                      "de": ["Geburtsdatum", "geboren am"], "es": ["fecha de nacimiento", "nacido el"],
                      "it": ["data di nascita", "nato il"], "nl": ["geboortedatum", "geboren op"]},
    "person_name": {"en": ["name", "patient", "full name"], "fr": ["nom", "patient"], "de": ["Name", "Patient"],
                    "es": ["nombre", "paciente"], "it": ["nome", "paziente"], "nl": ["naam", "patiënt"]},
    "street_address": {"en": ["address", "home address", "street address"], "fr": ["adresse", "domicile"],
                       "de": ["Adresse", "Anschrift", "Wohnadresse"], "es": ["dirección", "domicilio"],
                       "it": ["indirizzo", "residenza"], "nl": ["adres", "woonadres"]},
    "mrn": {"en": ["MRN", "medical record number", "patient ID"], "de": ["Patientennummer"],
            "fr": ["numéro de dossier patient"], "es": ["número de historia clínica"]},
    "icd10": {"en": ["diagnosis", "ICD-10", "Dx"], "de": ["Diagnose", "ICD-10"], "fr": ["diagnostic", "CIM-10"],
              "es": ["diagnóstico"], "it": ["diagnosi"], "nl": ["diagnose"]},
    "secret.github_token": {"en": ["GitHub token", "personal access token"]},
    "secret.aws_access_key": {"en": ["AWS access key", "access key ID"]},
    "secret.aws_secret_key": {"en": ["AWS secret access key", "AWS secret key"]},
    "secret.openai_key": {"en": ["OpenAI key", "API key"], "de": ["API-Schlüssel"], "fr": ["clé API"]},
    "secret.anthropic_key": {"en": ["Anthropic key", "API key"], "fr": ["clé API"], "es": ["clave API"]},
    "secret.slack_token": {"en": ["Slack token", "bot token"]},
    "secret.stripe_key": {"en": ["Stripe key", "Stripe secret key"]},
    "secret.google_api_key": {"en": ["Google API key", "Maps key"]},
    "secret.private_key": {"en": ["private key", "TLS key"]},
    "secret.jwt": {"en": ["token", "ID token", "bearer token"]},
}


def word(g, ent, lang):
    ws = WORDS[ent]
    return g.pick(ws.get(lang) or ws["en"])


# ------------------------------------------------------------------ look-alikes
# (kind, keys, words, make). Each value must stay untouched whatever its neighbours.

def luhn_ok(g, prefix, n):
    b = prefix + g.digits(n - len(prefix) - 1)
    return b + luhn.calc_check_digit(b)


def ean13(g, prefix):
    b = prefix + g.digits(12 - len(prefix))
    s = sum(int(c) * (3 if i % 2 else 1) for i, c in enumerate(b))
    return b + str((10 - s % 10) % 10)


def ulid(g):
    return g.chars("0123456789ABCDEFGHJKMNPQRSTVWXYZ", 26)


LOOKALIKES = {
    "order_id": (["order_id", "orderNumber", "order_no", "bestellnummer"], ["order", "Bestellung", "commande", "pedido"],
                 lambda g: g.pick([f"#{g.r.randint(100000000, 999999999)}", f"SO-{g.digits(4)}-{g.digits(4)}-{g.digits(4)}",
                                   f"ORD{g.r.randint(2015, 2032)}{g.digits(6)}", f"{g.digits(3)}-{g.digits(7)}-{g.digits(7)}",
                                   f"W{g.digits(9)}", f"{g.r.randint(1000, 9999)}-{g.r.randint(100000, 999999)}"])),
    "invoice_id": (["invoice_id", "invoiceNo", "rechnungsnummer", "num_facture"], ["invoice", "Rechnung", "facture", "fattura"],
                   lambda g: g.pick([f"INV/{g.r.randint(2015, 2032)}/{g.digits(6)}", f"RE-{g.r.randint(2015, 2032)}-{g.digits(5)}",
                                     f"FA{g.digits(10)}", f"{g.digits(4)}/{g.digits(2)}/{g.digits(5)}",
                                     f"F{g.r.randint(2015, 2032)}-{g.digits(4)}"])),
    "uuid": (["request_id", "trace_id", "uuid", "correlationId"], ["request", "trace"],
             lambda g: g.pick([str(uuid.UUID(int=g.r.getrandbits(128), version=4)), str(uuid.UUID(int=g.r.getrandbits(128))).upper(),
                               uuid.UUID(int=g.r.getrandbits(128)).hex])),
    "object_id": (["id", "_id", "objectId", "ulid"], ["id", "record"],
                  lambda g: g.pick([g.chars("0123456789abcdef", 24), ulid(g), str(g.r.randint(10**18, 2 * 10**18)),
                                    f"cus_{g.chars(B62, 14)}", f"pi_{g.chars(B62, 24)}"])),
    "hash": (["sha256", "checksum", "digest", "commit", "etag"], ["sha256", "commit", "checksum", "md5"],
             lambda g: g.pick([g.chars("0123456789abcdef", 64), g.chars("0123456789abcdef", 40), g.chars("0123456789abcdef", 32),
                               "sha256:" + g.chars("0123456789abcdef", 64), g.chars("0123456789abcdef", 12)])),
    "sri": (["integrity"], ["integrity"],
            lambda g: g.pick(["sha384-", "sha512-", "sha256-"]) + g.chars(B62 + "+/", 64)),
    "timestamp": (["ts", "timestamp", "created_at", "time"], ["at", "time"],
                  lambda g: g.pick([g.when().strftime("%d/%b/%Y:%H:%M:%S +0000"), g.when().strftime("%a, %d %b %Y %H:%M:%S +0100"),
                                    g.when().strftime("%b %d %H:%M:%S"), str(g.r.randint(1_100_000_000, 1_999_999_999)),
                                    str(g.r.randint(1_100_000_000_000, 1_999_999_999_999)), g.when().isoformat() + ".123Z",
                                    g.when().strftime("%Y%m%d%H%M%S")])),
    "date": (["due_date", "appointment", "valid_until", "start_date", "datum"], ["due", "appointment on", "valid until", "Termin am"],
             lambda g: g.when().strftime(g.pick(["%Y-%m-%d", "%d.%m.%Y", "%m/%d/%Y", "%d/%m/%Y", "%B %d, %Y"]))),
    "version": (["version", "build", "user_agent", "release"], ["version", "build", "running"],
                lambda g: g.pick([f"{g.r.randint(0, 30)}.{g.r.randint(0, 40)}.{g.r.randint(0, 300)}",
                                  f"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/{g.r.randint(100, 140)}.0.{g.r.randint(1000, 7000)}.{g.r.randint(10, 250)} Safari/537.36",
                                  f"curl/{g.r.randint(7, 8)}.{g.r.randint(0, 90)}.{g.r.randint(0, 9)}",
                                  f"v{g.r.randint(1, 5)}.{g.r.randint(0, 9)}.{g.r.randint(0, 9)}.{g.r.randint(0, 9)}",
                                  f"{g.r.randint(2020, 2032)}.{g.r.randint(1, 12):02d}.{g.r.randint(1, 9)}"])),
    "oid": (["oid"], ["OID"], lambda g: "1.3.6.1.4.1." + ".".join(str(g.r.randint(1, 60000)) for _ in range(g.r.randint(2, 5)))),
    "amount": (["amount", "total", "betrag", "montant"], ["total", "amount", "Betrag", "montant", "importe"],
               lambda g: g.pick([f"${g.r.randint(1, 999)},{g.digits(3)},{g.digits(3)}.{g.digits(2)}", f"{g.r.randint(1, 999)}.{g.digits(3)},{g.digits(2)} €",
                                 f"CHF {g.r.randint(1, 99)}'{g.digits(3)}.{g.digits(2)}", f"₹{g.r.randint(1, 99)},{g.digits(2)},{g.digits(3)}.00",
                                 f"{g.r.randint(1000000, 999999999)}.{g.digits(2)}", f"EUR {g.r.randint(1, 99)} {g.digits(3)} {g.digits(3)},{g.digits(2)}"])),
    "tracking": (["tracking_number", "trackingNo", "sendungsnummer", "awb"], ["tracking", "parcel", "Sendung", "colis"],
                 lambda g: g.pick(["1Z" + g.chars(string.ascii_uppercase + string.digits, 16), g.digits(12), g.digits(15),
                                   "9400 " + " ".join(g.digits(4) for _ in range(4)) + " " + g.digits(2),
                                   "JJD" + g.digits(18), g.chars(string.ascii_uppercase, 2) + g.digits(9) + "GB",
                                   "00" + g.digits(18)])),
    "barcode": (["ean", "gtin", "isbn", "barcode"], ["EAN", "GTIN", "ISBN", "barcode"],
                lambda g: g.pick([ean13(g, g.pick(["400", "401", "402", "3", "50", "87", "80"])), ean13(g, "978"),
                                  (lambda v: f"{v[:3]}-{v[3]}-{v[4:7]}-{v[7:12]}-{v[12]}")(ean13(g, "978"))])),
    "imei": (["imei", "device_imei"], ["IMEI"], lambda g: luhn_ok(g, g.pick(["35", "86", "01"]), 15)),
    "mac": (["mac", "mac_address", "hwaddr"], ["MAC"],
            lambda g: g.pick([":", "-"]).join(g.chars("0123456789ABCDEF", 2) for _ in range(6))),
    "aws_account": (["account_id", "aws_account", "AccountId"], ["account", "AWS account"],
                    lambda g: g.pick([g.digits(12), f"arn:aws:iam::{g.digits(12)}:role/{g.word()}-role"])),
    "postcode": (["zip", "postal_code", "plz", "postcode"], ["ZIP", "PLZ", "code postal"],
                 lambda g: g.pick([g.digits(5), f"{g.digits(5)}-{g.digits(4)}", g.pick(["SW1A 1AA", "EC1A 1BB", "M1 1AE"]),
                                   g.digits(4)])),
    "counter": (["port", "pid", "bytes", "duration_ms", "status", "count", "latency_us"], ["port", "pid", "bytes", "took"],
                lambda g: g.pick([str(g.r.randint(1024, 65535)), str(g.r.randint(100, 4194304)), str(g.r.randint(10**9, 10**10 - 1)),
                                  f"{g.r.randint(1, 99999)}ms", str(g.r.randint(200, 504)), str(g.r.randint(10**8, 10**9 - 1))])),
    # The entity's own label next to a value that is not of its layout: the label must not win here.
    "label_not_value": ([], [], lambda g: g.pick([
        ("card_number", "card ending in", "•••• " + g.digits(4)), ("card", "card", "**** **** **** " + g.digits(4)),
        ("ssn", "SSN", "***-**-" + g.digits(4)), ("ssn_last4", "SSN last 4", g.digits(4)),
        ("iban", "IBAN", "DE** **** **** **** **" + g.digits(2) + " " + g.digits(2)), ("phone", "phone", "n/a"),
        ("dob", "date of birth", "unknown"), ("nhs_number", "NHS number", "to follow"),
        ("npi", "NPI", "pending"), ("email", "email", "not provided"), ("mrn", "MRN", "TBD"),
        ("phone_ext", "ext.", g.digits(3)), ("sin", "SIN", "XXX-XXX-" + g.digits(3)),
        ("ip", "IP", "unknown"), ("dob_year", "birth year", str(g.r.randint(1940, 2010))),
        ("card_expiry", "card expiry", f"{g.r.randint(1, 12):02d}/{g.r.randint(25, 33)}"),
        ("cvv_len", "CVV digits", str(g.pick([3, 4])))])),
}

CAPITALISED = ["Deutsche Bahn", "Gare du Nord", "Banco de España", "Rijksmuseum Amsterdam", "Santa Maria Novella",
               "British Airways", "Royal Mail", "Air France", "Sagrada Familia", "Champs Élysées", "Brandenburger Tor",
               "Visual Basic", "Power BI", "Google Sheets", "Adobe Acrobat", "Jira Service Desk", "Azure Active Directory",
               "Mount Sinai Hospital", "Cleveland Clinic", "Charité Berlin", "Hôpital Necker", "Great Ormond Street",
               "Blue Cross", "United Healthcare", "Harvard Medical School", "Stanford Health Care", "Cedars Sinai",
               "Santa Monica", "Palo Alto", "Costa Rica", "Buenos Aires", "Monte Carlo", "Rio Grande", "Saint Petersburg",
               "Lake Geneva", "Tower Bridge", "Central Park", "Wall Street", "Silicon Valley", "Black Forest"]


def lookalike(g):
    kind = g.pick(list(LOOKALIKES))
    keys, words, make = LOOKALIKES[kind]
    v = make(g)
    if isinstance(v, tuple):
        key, w, value = v
        return kind, key, w, value
    return kind, g.pick(keys), g.pick(words), v


# ------------------------------------------------------------------ bodies

class Text:
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


class Item:
    """One value in a body: a labelled entity (kind 'L') or a look-alike (kind 'N')."""

    def __init__(self, kind, name, value, key, word, alt=None):
        self.kind, self.name, self.value, self.key, self.word, self.alt = kind, name, value, key, word, alt

    @property
    def tag(self):
        return (self.kind, self.name)


def entity_item(g, ent, lang="en"):
    v = VALUES[ent](g, lang) if ent == "date_of_birth" else VALUES[ent](g)
    # A phone number's tel: URI forms (E.164 and RFC 3966) for links.
    alt = g.__dict__.pop("tel", None)
    return Item("L", ent, v, g.pick(KEYS[ent]), word(g, ent, lang), alt)


def lookalike_item(g):
    kind, key, w, v = lookalike(g)
    return Item("N", kind, v, key, w or key)


class Body:
    def __init__(self, layout):
        self.layout = layout
        self.text = None
        self.json = None
        self.labels = []
        self.looks = []

    def spans_from(self, path, t):
        for (kind, name), s, e in t.spans:
            (self.labels if kind == "L" else self.looks).append((name, tuple(path), s, e))

    def leaf(self, path, kind, name, value):
        (self.labels if kind == "L" else self.looks).append((name, tuple(path), 0, len(value)))

    def record(self):
        return {"layout": self.layout, "body": self.text if self.json is None else self.json,
                "labels": [[x[0], list(x[1]), x[2], x[3]] for x in self.labels],
                "lookalikes": [[x[0], list(x[1]), x[2], x[3]] for x in self.looks]}


def one_line(items):
    return [it for it in items if "\n" not in it.value]


def csv_quote(v, sep, always):
    if always or sep in v or '"' in v or "\n" in v:
        return '"', v.replace('"', '""'), '"'
    return "", v, ""


def render_csv(g, body, items):
    sep = g.pick([",", ",", ";", "\t", "|"])
    always = g.r.random() < 0.3
    t = Text()
    cols = [it.key for it in items]
    if g.r.random() < 0.5:
        cols = ["id"] + cols
        lead = True
    else:
        lead = False
    t.add(sep.join(cols) + g.pick(["\n", "\r\n"]))
    rows = [items] + [[Item(it.kind, it.name, regen(g, it), it.key, it.word) for it in items]
                      for _ in range(g.r.randint(0, 2))]
    for row in rows:
        if lead:
            t.add(str(g.r.randint(1, 99999)) + sep)
        for k, it in enumerate(row):
            q1, v, q2 = csv_quote(it.value, sep, always)
            t.add(q1).mark(it.tag, v).add(q2)
            if k + 1 < len(row):
                t.add(sep)
        t.add("\n")
    body.text = t.s
    body.spans_from((), t)


def regen(g, it):
    if it.kind == "L":
        return VALUES[it.name](g)
    while True:
        kind, key, w, v = lookalike(g)
        if kind == it.name:
            return v


def md_cell(v):
    return v.replace("|", "\\|")


def render_markdown(g, body, items):
    items = one_line(items)
    t = Text()
    t.add(g.pick(["Here is the table:\n\n", "", "### Records\n\n", "Voici le tableau :\n\n"]))
    if g.r.random() < 0.5:
        t.add("| " + " | ".join(it.word for it in items) + " |\n")
        t.add("|" + "|".join(g.pick(["---", ":--", "--:", ":-:"]) for _ in items) + "|\n")
        t.add("| ")
        for k, it in enumerate(items):
            t.mark(it.tag, it.value).add(" |" if k + 1 == len(items) else " | ")
        t.add("\n")
    else:
        t.add(g.pick(["| Field | Value |\n|---|---|\n", "| Feld | Wert |\n|:--|:--|\n", "| Champ | Valeur |\n|---|---|\n"]))
        for it in items:
            t.add(f"| {it.word} | ").mark(it.tag, it.value).add(" |\n")
    t.add(g.pick(["", "\nPlease double-check the values above.", "\nCan you summarise this?"]))
    body.text = t.s
    body.spans_from((), t)


def yaml_scalar(g, v):
    if g.r.random() < 0.4:
        return '"', v.replace("\\", "\\\\").replace('"', '\\"'), '"'
    if g.r.random() < 0.15:
        return "'", v.replace("'", "''"), "'"
    if re.match(r"^[\-?:,\[\]{}#&*!|>'\"%@`]", v) or ": " in v or " #" in v or v.endswith(":"):
        return '"', v.replace('"', '\\"'), '"'
    return "", v, ""


def render_yaml_toml(g, body, items):
    t = Text()
    if g.r.random() < 0.6:
        top = g.pick(["customer", "patient", "employee", "account", "spec"])
        t.add(g.pick(["---\n", "", "# exported record\n"]) + f"{top}:\n")
        t.add(f"  id: {g.r.randint(1, 99999)}\n")
        for it in items:
            style = g.r.random()
            if "\n" in it.value:
                t.add(f"  {it.key}: |\n    ").mark(it.tag, it.value.replace("\n", "\n    ")).add("\n")
            elif style < 0.45:
                q1, v, q2 = yaml_scalar(g, it.value)
                t.add(f"  {it.key}: {q1}").mark(it.tag, v).add(q2 + "\n")
            elif style < 0.7:
                t.add(f"  {it.key}s:\n    - ").mark(it.tag, it.value).add("\n")
            elif style < 0.85:
                t.add(f"  contacts:\n    - type: {it.key}\n      value: \"").mark(it.tag, it.value.replace('"', '\\"')).add("\"\n")
            else:
                t.add(f"  {it.key}_info: {{ {it.key}: \"").mark(it.tag, it.value.replace('"', '\\"')).add(f"\", verified: {g.pick(['true', 'false'])} }}\n")
    else:
        t.add(f"[{g.pick(['customer', 'patient', 'billing', 'credentials'])}]\n")
        for it in items:
            if "\n" in it.value:
                t.add(f'{it.key} = """\n').mark(it.tag, it.value).add('\n"""\n')
            elif g.r.random() < 0.7:
                t.add(f'{it.key} = "').mark(it.tag, it.value.replace("\\", "\\\\").replace('"', '\\"')).add('"\n')
            else:
                t.add(f'[{g.pick(["contact", "record", "extra"])}.{g.r.randint(1, 9)}]\n{it.key} = \'').mark(it.tag, it.value).add("'\n")
    body.text = t.s
    body.spans_from((), t)


def h(v):
    return v.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;")


def render_html(g, body, items):
    t = Text()
    style = g.r.random()
    t.add(g.pick(["<!DOCTYPE html>\n<html><body>\n", "<div class=\"card\">\n", ""]))
    if style < 0.35:
        t.add(f"<form method=\"post\" action=\"/{g.word()}/submit\">\n")
        for it in items:
            if "\n" in it.value:
                t.add(f"  <textarea name=\"{it.key}\">").mark(it.tag, h(it.value)).add("</textarea>\n")
                continue
            if g.r.random() < 0.5:
                t.add(f"  <label for=\"{it.key}\">{h(it.word)}</label>\n")
            t.add(f"  <input type=\"{g.pick(['text', 'hidden', 'text'])}\" name=\"{it.key}\" id=\"{it.key}\" value=\"")
            t.mark(it.tag, h(it.value)).add("\">\n")
        t.add("</form>\n")
    elif style < 0.6:
        t.add("<table>\n")
        for it in items:
            t.add(f"  <tr><th>{h(it.word)}</th><td>").mark(it.tag, h(it.value)).add("</td></tr>\n")
        t.add("</table>\n")
    elif style < 0.8:
        t.add("<dl>\n")
        for it in items:
            t.add(f"  <dt>{h(it.word)}</dt>\n  <dd>").mark(it.tag, h(it.value)).add("</dd>\n")
        t.add("</dl>\n")
    else:
        t.add("<p>")
        for it in items:
            if it.kind == "L" and it.name == "email":
                t.add(f"{h(it.word).capitalize()}: <a href=\"mailto:").mark(it.tag, it.value).add("\">")
                t.mark(it.tag, it.value).add("</a><br>\n")
            elif it.kind == "L" and it.name == "phone":
                t.add(f"{h(it.word).capitalize()}: <a href=\"tel:").mark(it.tag, g.pick(it.alt)).add("\">")
                t.mark(it.tag, h(it.value)).add("</a><br>\n")
            else:
                t.add(f"<span class=\"{it.key}\" data-label=\"{h(it.word)}\">").mark(it.tag, h(it.value)).add("</span><br>\n")
        t.add("</p>\n")
    t.add(g.pick(["</body></html>", "</div>", ""]))
    body.text = t.s
    body.spans_from((), t)


def x(v):
    return v.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def xml_name(k):
    k = re.sub(r"[^A-Za-z0-9_]", "_", k)
    return k if k[0].isalpha() else "f_" + k


def render_xml(g, body, items):
    t = Text()
    t.add('<?xml version="1.0" encoding="UTF-8"?>\n' if g.r.random() < 0.6 else "")
    style = g.r.random()
    if style < 0.2:
        t.add('<Invoice xmlns="urn:oasis:names:specification:ubl:schema:xsd:Invoice-2" '
              'xmlns:cbc="urn:oasis:names:specification:ubl:schema:xsd:CommonBasicComponents-2">\n')
        for it in items:
            t.add(f'  <cbc:{xml_name(it.key)}>').mark(it.tag, x(it.value)).add(f"</cbc:{xml_name(it.key)}>\n")
        t.add("</Invoice>")
        body.text = t.s
        body.spans_from((), t)
        return
    root = g.pick(["Patient", "Customer", "record", "Employee", "soap:Envelope"])
    t.add(f"<{root}>\n")
    for it in items:
        r = g.r.random()
        name = xml_name(it.key)
        if "\n" in it.value:
            t.add(f"  <{name}><![CDATA[").mark(it.tag, it.value).add(f"]]></{name}>\n")
        elif r < 0.45:
            t.add(f"  <{name}>").mark(it.tag, x(it.value)).add(f"</{name}>\n")
        elif r < 0.75:
            t.add(f'  <field name="{it.key}" value="').mark(it.tag, h(it.value)).add('"/>\n')
        elif r < 0.9:
            t.add(f'  <{name} verified="{g.pick(["true", "false"])}" value="').mark(it.tag, h(it.value)).add('" />\n')
        else:
            t.add(f"  <note><![CDATA[{it.word}: ").mark(it.tag, it.value).add("]]></note>\n")
    t.add(f"</{root}>")
    body.text = t.s
    body.spans_from((), t)


SIGN_OFF = {"en": ["Best regards,", "Kind regards,", "Thanks,"], "fr": ["Cordialement,", "Bien à vous,"],
            "de": ["Mit freundlichen Grüßen", "Viele Grüße"], "es": ["Saludos cordiales,", "Un saludo,"],
            "it": ["Cordiali saluti,", "Distinti saluti,"], "nl": ["Met vriendelijke groet,", "Groeten,"]}
SIG_LABEL = {"phone": {"en": ["Phone:", "Tel:", "M:", "Mobile:"], "fr": ["Tél. :", "Portable :"],
                       "de": ["Tel.:", "Mobil:", "Fon:"], "es": ["Tel.:", "Móvil:"], "it": ["Tel.:", "Cell.:"],
                       "nl": ["Tel.:", "Mob.:"]}}


def render_email(g, body, items):
    lang = g.lang
    t = Text()
    emails = [it for it in items if it.kind == "L" and it.name == "email"]
    names = [it for it in items if it.kind == "L" and it.name == "person_name"]
    rest = [it for it in items if it not in emails and it not in names]
    f = g.locs[g.pick(["en_US", "de_DE", "fr_FR"])]
    if emails and names and g.r.random() < 0.6:
        nm, em = names.pop(0), emails.pop(0)
        t.add('From: "').mark(nm.tag, nm.value).add('" <').mark(em.tag, em.value).add(">\n")
    elif emails:
        em = emails.pop(0)
        t.add("From: ").mark(em.tag, em.value).add("\n")
    else:
        t.add(f"From: noreply@{f.domain_name()}\n")
    t.add(f"To: {g.pick(['support', 'billing', 'records', 'hr'])}@{f.domain_name()}\n")
    for em in emails:
        t.add(g.pick(["Cc: ", "Reply-To: "])).mark(em.tag, em.value).add("\n")
    t.add(f"Subject: {g.pick(['Re: ', 'Fwd: ', 'AW: ', 'TR: ', ''])}{g.pick(['Update', 'Your request', 'Onboarding', 'Claim'])} "
          f"#{g.r.randint(1000, 99999)}\n")
    t.add(f"Date: {g.when().strftime('%a, %d %b %Y %H:%M:%S +0000')}\n")
    t.add(f"Message-ID: <{uuid.UUID(int=g.r.getrandbits(128)).hex}@mail.{f.domain_name()}>\n")
    t.add("Content-Type: text/plain; charset=utf-8\n\n")
    t.add(g.pick({"en": ["Hi,", "Hello,"], "fr": ["Bonjour,"], "de": ["Hallo,", "Guten Tag,"], "es": ["Hola,"],
                  "it": ["Buongiorno,"], "nl": ["Hallo,"]}[lang]) + "\n\n")
    t.add(g.sentence(lang) + "\n")
    in_sig = [it for it in rest if it.kind == "L" and it.name in ("phone", "street_address")]
    body_items = [it for it in rest if it not in in_sig]
    for it in body_items:
        if "\n" in it.value:
            t.add(f"{it.word}:\n").mark(it.tag, it.value).add("\n")
        else:
            t.add(f"{it.word[:1].upper() + it.word[1:]}: ").mark(it.tag, it.value).add("\n")
    t.add("\n" + g.pick(SIGN_OFF[lang]) + "\n")
    if names:
        for nm in names:
            t.mark(nm.tag, nm.value).add("\n")
    else:
        t.add("-- \n")
    t.add(g.pick(["Account Manager", "Head of Operations", "Pflegedienstleitung", "Responsable RH"]) + "\n")
    t.add(f"{f.company()}\n")
    for it in in_sig:
        if it.name == "phone":
            t.add(g.pick(SIG_LABEL["phone"][lang]) + " ").mark(it.tag, it.value).add("\n")
        else:
            t.mark(it.tag, it.value).add("\n")
    body.text = t.s
    body.spans_from((), t)


def sql_lit(v):
    return "'", v.replace("'", "''"), "'"


def render_sql(g, body, items):
    t = Text()
    table = g.pick(["customers", "patients", "users", "payouts", "staff"])
    style = g.r.random()
    if style < 0.55:
        cols = [it.key for it in items]
        t.add(f"INSERT INTO {table} (id, {', '.join(cols)}) VALUES\n")
        rows = [items] + [[Item(it.kind, it.name, regen(g, it), it.key, it.word) for it in items]
                          for _ in range(g.r.randint(0, 2))]
        for ri, row in enumerate(rows):
            t.add(f"  ({g.r.randint(1, 99999)}, ")
            for k, it in enumerate(row):
                q1, v, q2 = sql_lit(it.value)
                t.add(q1).mark(it.tag, v).add(q2)
                t.add(", " if k + 1 < len(row) else ")")
            t.add(",\n" if ri + 1 < len(rows) else ";\n")
    elif style < 0.8:
        t.add(f"UPDATE {table} SET ")
        for k, it in enumerate(items):
            q1, v, q2 = sql_lit(it.value)
            t.add(f"{it.key} = {q1}").mark(it.tag, v).add(q2 + (", " if k + 1 < len(items) else ""))
        t.add(f" WHERE id = {g.r.randint(1, 99999)};")
    else:
        t.add(f"SELECT * FROM {table} WHERE ")
        for k, it in enumerate(items):
            q1, v, q2 = sql_lit(it.value)
            t.add(f"{it.key} = {q1}").mark(it.tag, v).add(q2 + (" AND " if k + 1 < len(items) else ""))
        t.add(" LIMIT 1;")
    body.text = t.s
    body.spans_from((), t)


def logfmt_val(v):
    return ('"', v.replace('"', '\\"'), '"') if (" " in v or '"' in v or "=" in v) else ("", v, "")


def render_logs(g, body, items):
    t = Text()
    host = g.pick(["web-01", "api-7d9f8b6c5-x2kqp", "ip-10-0-3-17", "db.internal"])
    style = g.r.random()
    items = [Item(it.kind, it.name, it.value, it.key, it.word) for it in items]
    if style < 0.25:
        ips = [it for it in items if it.kind == "L" and it.name == "ip_address" and ":" not in it.value]
        others = [it for it in items if it not in ips]
        if ips:
            t.mark(ips[0].tag, ips[0].value)
            others += ips[1:]
        else:
            t.add(g.us.ipv4_private())
        t.add(f" - - [{g.when().strftime('%d/%b/%Y:%H:%M:%S +0000')}] \"GET /api/v1/{g.word()}?")
        one = one_line(others)
        for k, it in enumerate(one):
            t.add(f"{it.key}=").mark(it.tag, urllib.parse.quote(it.value, safe="")).add("&" if k + 1 < len(one) else "")
        t.add(f" HTTP/1.1\" {g.pick([200, 302, 404])} {g.r.randint(100, 99999)} \"-\" \"curl/8.{g.r.randint(0, 9)}.0\"")
        for it in others:
            if "\n" in it.value:
                t.add("\n")
                t.mark(it.tag, it.value)
    elif style < 0.5:
        rfc5424 = g.r.random() < 0.5
        ts = g.when()
        for k, it in enumerate(items):
            if rfc5424:
                t.add(f"<{g.r.randint(8, 190)}>1 {ts.isoformat()}Z {host} app {g.r.randint(100, 40000)} - - ")
            else:
                t.add(f"<{g.r.randint(8, 190)}>{ts.strftime('%b %d %H:%M:%S')} {host} app[{g.r.randint(100, 40000)}]: ")
            v = it.value.replace("\n", "\\n")
            if g.r.random() < 0.5:
                q1, vv, q2 = logfmt_val(v)
                t.add(f"{g.pick(['updated', 'lookup', 'request'])} {it.key}={q1}").mark(it.tag, vv).add(q2 + "\n")
            else:
                t.add(f"{g.pick(['updated', 'lookup failed for', 'received'])} {it.word} ").mark(it.tag, v).add("\n")
    elif style < 0.8:
        for it in items:
            rec = {"ts": g.when().isoformat() + "Z", "level": g.pick(["INFO", "WARN", "ERROR"]), "logger": "svc." + g.word(),
                   "msg": g.pick(["user updated", "payment failed", "login", "lookup"])}
            pre = json.dumps(rec)[:-1] + f', "{it.key}": "'
            t.add(pre).mark(it.tag, json.dumps(it.value, ensure_ascii=False)[1:-1]).add('"}\n')
    else:
        cls = g.pick(["Customer", "Patient", "User"])
        if g.r.random() < 0.5:
            t.add(f"{g.when().isoformat()} DEBUG {cls}Service - saved {cls}{{id={g.r.randint(1, 9999)}, ")
            for k, it in enumerate(items):
                t.add(f"{it.key}='").mark(it.tag, it.value.replace("\n", "\\n")).add("'" + (", " if k + 1 < len(items) else "}"))
        else:
            t.add(f"DEBUG:root:payload={{'id': {g.r.randint(1, 9999)}, ")
            for k, it in enumerate(items):
                t.add(f"'{it.key}': '").mark(it.tag, it.value.replace("\n", "\\n")).add("'" + (", " if k + 1 < len(items) else "}"))
    body.text = t.s
    body.spans_from((), t)


CHAT = {
    "en": ("Please update the record. {pairs}", "The {w} is {v}", "{w}: {v}"),
    "fr": ("Pouvez-vous mettre à jour le dossier ? {pairs}", "Le {w} est {v}", "{w} : {v}"),
    "de": ("Bitte aktualisiere den Datensatz. {pairs}", "{W} lautet {v}", "{W}: {v}"),
    "es": ("¿Puedes actualizar el registro? {pairs}", "El {w} es {v}", "{w}: {v}"),
    "it": ("Puoi aggiornare la scheda? {pairs}", "Il {w} è {v}", "{w}: {v}"),
    "nl": ("Kun je het dossier bijwerken? {pairs}", "Het {w} is {v}", "{w}: {v}"),
}
NAME_INTRO = {"en": ["My name is {v}", "The patient, {v}, called"], "fr": ["Je m'appelle {v}", "Le patient {v} a appelé"],
              "de": ["Ich heiße {v}", "Die Patientin {v} hat angerufen"], "es": ["Me llamo {v}", "La paciente {v} llamó"],
              "it": ["Mi chiamo {v}", "Il paziente {v} ha chiamato"], "nl": ["Mijn naam is {v}", "De patiënt {v} belde"]}


def chat_text(g, lang, items):
    """Sentences in `lang` around the values; returns a Text."""
    t = Text()
    intro, sent, colon = CHAT[lang]
    head, _ = intro.split("{pairs}")
    t.add(head)
    for it in items:
        if it.kind == "L" and it.name == "person_name" and g.r.random() < 0.5:
            tmpl = g.pick(NAME_INTRO[lang])
        elif "\n" in it.value:
            tmpl = "{W}:\n{v}\n"
        else:
            tmpl = g.pick([sent, colon])
        a, b = tmpl.split("{v}")
        wd = it.word
        t.add(a.replace("{w}", wd).replace("{W}", wd[:1].upper() + wd[1:])).mark(it.tag, it.value)
        t.add(b + g.pick([". ", ", ", ".\n", "; "]))
    t.add(g.sentence(lang))
    return t


def render_chat_ml(g, body, items):
    lang = g.lang
    # Language-specific label words for this body.
    items = [Item(it.kind, it.name, it.value, it.key, word(g, it.name, lang) if it.kind == "L" else it.word) for it in items]
    msgs = [{"role": "system", "content": g.pick(["You are a helpful assistant.", "Tu es un assistant utile.",
                                                   "Du bist ein hilfreicher Assistent."])}]
    paths = []
    split = g.r.randint(0, len(items))
    first, second = items[:split], items[split:]
    if first:
        t = chat_text(g, lang, first)
        msgs.append({"role": "user", "content": t.s})
        paths.append(((len(msgs) - 1,), t))
    msgs.append({"role": "assistant", "content": g.pick(["Sure, what else?", "D'accord.", "Alles klar.", "Claro."])})
    if second:
        if g.r.random() < 0.5:
            # A tool call whose arguments are a JSON document inside a string.
            args = Text()
            args.add("{")
            for k, it in enumerate(second):
                args.add(json.dumps(it.key) + ": \"").mark(it.tag, json.dumps(it.value, ensure_ascii=False)[1:-1]).add("\"" + (", " if k + 1 < len(second) else ""))
            args.add("}")
            msgs.append({"role": "assistant", "content": None, "tool_calls": [
                {"id": "call_" + g.chars(B62, 24), "type": "function",
                 "function": {"name": g.pick(["update_record", "create_customer", "lookup_patient"]), "arguments": args.s}}]})
            paths.append(((len(msgs) - 1, "tool_calls", 0, "function", "arguments"), args))
        else:
            t = chat_text(g, lang, second)
            msgs.append({"role": "user", "content": t.s})
            paths.append(((len(msgs) - 1,), t))
    body.json = {"model": g.pick(["gpt-4.1", "mistral-small", "llama-3.3-70b"]), "messages": msgs, "stream": g.r.random() < 0.5}
    for (i, *rest), t in paths:
        path = ("messages", i, *(rest or ["content"]))
        body.spans_from(path, t)


def render_json_nested(g, body, items):
    obj = {"data": {"type": g.pick(["customer", "patient", "claim"]), "id": str(uuid.UUID(int=g.r.getrandbits(128))),
                    "attributes": {}, "relationships": {"contacts": []}}, "meta": {"page": g.r.randint(1, 9)}}
    attrs = obj["data"]["attributes"]
    contacts = obj["data"]["relationships"]["contacts"]
    for it in items:
        r = g.r.random()
        if it.kind == "L" and it.name in ("phone", "email") and r < 0.5:
            contacts.append({"type": g.pick(["mobile", "home", "work"]) if it.name == "phone" else "email",
                             "value" if g.r.random() < 0.5 else "number": it.value})
            k = "value" if "value" in contacts[-1] else "number"
            body.leaf(("data", "relationships", "contacts", len(contacts) - 1, k), it.kind, it.name, it.value)
        elif r < 0.3:
            lst = attrs.setdefault(it.key + "s" if not it.key.endswith("s") else it.key + "_list", [])
            key = it.key + "s" if not it.key.endswith("s") else it.key + "_list"
            lst.append(it.value)
            body.leaf(("data", "attributes", key, len(lst) - 1), it.kind, it.name, it.value)
        elif r < 0.55:
            t = Text()
            t.add(g.pick(['Customer said: "', "Note\n", "Imported from CSV\\n"]) + f"{it.word}: ")
            t.mark(it.tag, it.value).add(g.pick(['"', "\n", "\t(verified)"]))
            key = it.key + "_note"
            while key in attrs:
                key += "_"
            attrs[key] = t.s
            body.spans_from(("data", "attributes", key), t)
        else:
            key = it.key
            while key in attrs:
                key += "_2"
            attrs[key] = {"value": it.value, "source": g.pick(["form", "import", "api"])} if g.r.random() < 0.4 else it.value
            path = ("data", "attributes", key) + (("value",) if isinstance(attrs[key], dict) else ())
            body.leaf(path, it.kind, it.name, it.value)
    body.json = obj


def render_url(g, body, items):
    t = Text()
    host = g.pick(["app.example.com", "portal.example.net", "crm.internal:8443", "example.org"])
    t.add(g.pick(["Redirecting to ", "Location: ", "GET ", "<", "Click: ", ""]))
    items = one_line(items)
    for it in items:
        r = g.r.random()
        enc = urllib.parse.quote(it.value, safe="")
        if it.kind == "L" and it.name == "phone" and r < 0.3:
            t.add("tel:").mark(it.tag, g.pick(it.alt)).add(" ")
            continue
        if it.kind == "L" and it.name == "email" and r < 0.3:
            t.add("mailto:").mark(it.tag, it.value).add(f"?subject={urllib.parse.quote(g.sentence())} ")
            continue
        if r < 0.3:
            t.add(f"https://{host}/api/v2/{it.key}/").mark(it.tag, enc).add(f"/{g.pick(['details', 'edit', 'history'])} ")
        elif r < 0.55:
            t.add(f"https://{host}/#/{g.word()}?{it.key}=").mark(it.tag, enc).add(" ")
        elif r < 0.75:
            t.add(f"https://{host}/profile#{it.key}=").mark(it.tag, enc).add(f"&tab={g.word()} ")
        elif r < 0.88:
            # A redirect parameter carrying a URL that carries the value: encoded twice.
            t.add(f"https://{host}/login?next=").mark(it.tag, urllib.parse.quote(f"/{g.word()}?{it.key}={enc}", safe="")).add(" ")
            # The mark covers the whole encoded parameter; the value is what must go.
            (kind, name), s, e = t.spans.pop()
            inner = t.s[s:e]
            off = inner.rfind(urllib.parse.quote(enc, safe=""))
            t.spans.append(((kind, name), s + off, s + off + len(urllib.parse.quote(enc, safe=""))))
        else:
            t.add(f"https://{host}/search;jsessionid={g.chars('0123456789ABCDEF', 32)}?q={g.word()}&{it.key}=").mark(it.tag, enc).add(" ")
    t.add(g.pick(["", ">", " 302 Found", "\n"]))
    body.text = t.s
    body.spans_from((), t)


RENDER = {"csv": render_csv, "markdown": render_markdown, "yaml_toml": render_yaml_toml, "html": render_html,
          "xml": render_xml, "email": render_email, "sql": render_sql, "logs": render_logs, "chat_ml": render_chat_ml,
          "json_nested": render_json_nested, "url": render_url}
# Layouts that cannot carry a multi-line PEM block as one value.
NO_MULTILINE = {"markdown", "url"}


def render_capitalised(g, body):
    t = Text()
    lang = g.pick(LANGS)
    phrase = g.pick(CAPITALISED)
    pre = {"en": ["We visited ", "Compare it with ", "Flight via ", "Report from "], "fr": ["Nous avons visité ", "Rapport de "],
           "de": ["Wir waren bei ", "Bericht von "], "es": ["Visitamos ", "Informe de "], "it": ["Abbiamo visitato ", "Rapporto di "],
           "nl": ["We bezochten ", "Verslag van "]}[lang]
    t.add(g.pick(pre)).mark(("N", "capitalised"), phrase).add(". " + g.sentence(lang))
    body.text = t.s
    body.spans_from((), t)


def generate(seed=SEED, n=40):
    """Every entity in every layout n times as the body's first value, with 0-3 other entities and
    0-2 look-alikes beside it; n bodies of look-alikes only per layout; capitalised non-names."""
    g = Gen(seed)
    ents = list(VALUES)
    bodies = []
    for layout in LAYOUTS:
        for ent in ents:
            if ent in MULTILINE and layout in NO_MULTILINE:
                continue
            for _ in range(n):
                lang = g.lang = g.pick(LANGS)
                items = [entity_item(g, ent, lang)]
                for other in g.r.sample(ents, g.r.randint(0, 3)):
                    if other != ent and not (other in MULTILINE and layout in NO_MULTILINE):
                        items.append(entity_item(g, other, lang))
                for _ in range(g.r.choice([0, 0, 1, 2])):
                    items.append(lookalike_item(g))
                g.r.shuffle(items)
                b = Body(layout)
                RENDER[layout](g, b, items)
                bodies.append(b)
        for _ in range(n * 2):
            g.lang = g.pick(LANGS)
            b = Body(layout)
            RENDER[layout](g, b, [lookalike_item(g) for _ in range(g.r.randint(1, 4))])
            bodies.append(b)
    for _ in range(n * 5):
        b = Body("prose")
        render_capitalised(g, b)
        bodies.append(b)
    g.r.shuffle(bodies)
    return [b.record() for b in bodies]


# ------------------------------------------------------------------ scoring (heldout.py's rules)

def scan(records, cli=CLI):
    with tempfile.TemporaryDirectory() as d:
        cfg = pathlib.Path(d) / "cfg.json"
        cfg.write_text(json.dumps(base.CONFIG))
        # JSON bodies go out with \u escapes for every non-ASCII character, as many clients send them.
        lines = "".join(json.dumps(r["body"], ensure_ascii=r["layout"] in ("json_nested", "chat_ml")) + "\n"
                        for r in records)
        p = subprocess.run([str(cli), "scan", "--ndjson", "--config", str(cfg), "-"], input=lines.encode(),
                           capture_output=True, timeout=900)
    if p.returncode not in (0, 1):
        raise RuntimeError(f"scan failed ({p.returncode}): {p.stderr.decode()[:500]}")
    out = [json.loads(line) for line in p.stdout.decode().splitlines()]
    if len(out) != len(records):
        raise RuntimeError(f"{len(records)} bodies in, {len(out)} results out")
    return out


score = base.score


def summarize(rec_stats, look_stats):
    """Recall per entity (all layouts) and per (entity, layout); look-alike rates; targets missed."""
    ents = sorted({e for e, _ in rec_stats}, key=lambda e: (e.startswith("secret."), e))
    rows, below = [], []
    for ent in ents:
        tot = [sum(v[i] for (e, _), v in rec_stats.items() if e == ent) for i in range(3)]
        per = {lay: rec_stats[(ent, lay)] for lay in LAYOUTS if (ent, lay) in rec_stats}
        recall = tot[0] / tot[2]
        rows.append((ent, recall, tot, per))
        target = TARGETS[ent]
        if recall < target:
            below.append(f"{ent}: recall {recall:.4f} < {target}")
        if ent in CHECKSUM or ent in SECRETS:
            for lay, v in per.items():
                if v[0] / v[2] < target:
                    below.append(f"{ent} in {lay}: recall {v[0] / v[2]:.4f} ({v[0]}/{v[2]}) < {target}")
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
    return rows, (touched, total, rate), cap_rate, below


def layout_recall(rec_stats):
    """Recall of all labelled values per layout."""
    out = {}
    for (_, lay), v in rec_stats.items():
        o = out.setdefault(lay, [0, 0])
        o[0] += v[0]
        o[1] += v[2]
    return out


def table(rec_stats, look_stats):
    rows, (touched, total, rate), cap_rate, below = summarize(rec_stats, look_stats)
    short = {"yaml_toml": "yaml", "json_nested": "json", "markdown": "md"}
    lines = ["| entity | target | recall | found / labelled | wrong entity | "
             + " | ".join(short.get(x, x) for x in LAYOUTS) + " |",
             "|---|---:|---:|---:|---:|" + "---:|" * len(LAYOUTS)]
    for ent, recall, tot, per in rows:
        cells = " | ".join(f"{per[x][0] / per[x][2]:.2f}" if x in per else "" for x in LAYOUTS)
        lines.append(f"| {ent} | {TARGETS[ent]} | {recall:.4f} | {tot[0]} / {tot[2]} | {tot[1]} | {cells} |")
    lr = layout_recall(rec_stats)
    lines.append("| **all entities** | | | | | " + " | ".join(f"{lr[x][0] / lr[x][1]:.3f}" for x in LAYOUTS) + " |")
    lines += ["", "| look-alike | touched / total | rate |", "|---|---:|---:|"]
    for kind in sorted(look_stats):
        t, n = look_stats[kind]
        lines.append(f"| {kind} | {t} / {n} | {t / n:.4f} |")
    lines.append(f"| **all listed look-alikes** (target ≤ {LOOKALIKE_MAX}) | {touched} / {total} | {rate:.4f} |")
    lines.append(f"| capitalised non-names (target ≤ {CAPITALISED_MAX}) | | {cap_rate:.4f} |")
    return "\n".join(lines), below


def main(argv):
    seed = TUNING_SEED if "--tuning" in argv else SEED
    if "--misses" in argv and seed == SEED:
        print("--misses lists values: use it with --tuning only (the gate seed stays unseen)")
        return 2
    records = generate(seed)
    results = scan(records)
    rec_stats, look_stats, misses = score(records, results)
    text, below = table(rec_stats, look_stats)
    print(f"held-out corpus 2: seed {seed}, {len(records)} bodies, {sum(len(r['labels']) for r in records)} labelled "
          f"values, {sum(len(r['lookalikes']) for r in records)} look-alikes\n")
    print(text)
    if "--misses" in argv:
        for m in misses:
            print(repr(m[:5]), "|", repr(m[5][:400]))
    if below:
        print("\nbelow target:\n  " + "\n  ".join(below))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
