"""Check a gauntlet decision against the published predicate specifications, as a generic
consumer would read it, knowing nothing of gauntlet.

usage: attestation_fields.py VSA_ENVELOPE TEST_RESULT_ENVELOPE
Prints "DECISION VSA_RESULT TEST_RESULT"; exits non-zero naming the first field that breaks
the SLSA verification summary v1 or the in-toto test-result v0.1 specification, or the
in-toto Statement v1 parsing rules.
"""
import base64
import json
import re
import sys
from datetime import datetime
from urllib.parse import urlparse

DECISION = "https://gauntlet.invalid/attestation/decision/v1"


def fail(message):
    sys.exit(message)


def is_uri(text):
    return isinstance(text, str) and bool(urlparse(text).scheme) and " " not in text


def digest_set(value, where):
    if not isinstance(value, dict) or not value:
        fail(f"{where}: a DigestSet must be a non-empty object")
    for alg, hexdigest in value.items():
        if not re.fullmatch(r"[0-9a-f]+", hexdigest or ""):
            fail(f"{where}.{alg}: not lower-case hex")


def statement(path, predicate_type):
    envelope = json.load(open(path))
    if envelope["payloadType"] != "application/vnd.in-toto+json":
        fail(f"{path}: payloadType")
    s = json.loads(base64.b64decode(envelope["payload"]))
    if s.get("_type") != "https://in-toto.io/Statement/v1":
        fail(f"{path}: _type")
    if s.get("predicateType") != predicate_type:
        fail(f"{path}: predicateType {s.get('predicateType')}")
    if not s.get("subject"):
        fail(f"{path}: subject is empty")
    for i, subject in enumerate(s["subject"]):
        if not subject.get("name"):
            fail(f"{path}: subject[{i}].name")
        digest_set(subject.get("digest"), f"{path}: subject[{i}].digest")
    return s["predicate"]


def extensions_are_uris(predicate, known, where):
    # in-toto: fields a specification does not define are extension fields named by URIs.
    for key in predicate:
        if key not in known and not is_uri(key):
            fail(f"{where}: extension field `{key}` is not named by a URI")


def resource_descriptor(rd, where):
    if not any(k in rd for k in ("uri", "digest", "content")):
        fail(f"{where}: a ResourceDescriptor needs uri, digest or content")
    if "uri" in rd and not is_uri(rd["uri"]):
        fail(f"{where}.uri `{rd['uri']}` is not a URI")
    if "digest" in rd:
        digest_set(rd["digest"], f"{where}.digest")


vsa = statement(sys.argv[1], "https://slsa.dev/verification_summary/v1")
known = {"verifier", "timeVerified", "resourceUri", "policy", "inputAttestations",
         "verificationResult", "verifiedLevels", "dependencyLevels", "slsaVersion"}
extensions_are_uris(vsa, known, "VSA")
if not is_uri(vsa["verifier"]["id"]):
    fail("VSA: verifier.id must be a URI")
datetime.fromisoformat(vsa["timeVerified"].replace("Z", "+00:00"))
for field in ("resourceUri",):
    if not is_uri(vsa[field]):
        fail(f"VSA: {field} must be a URI")
if not is_uri(vsa["policy"].get("uri")):
    fail(f"VSA: policy.uri `{vsa['policy'].get('uri')}` must be a resolvable resource URI")
digest_set(vsa["policy"].get("digest"), "VSA: policy.digest")
for i, attestation in enumerate(vsa.get("inputAttestations", [])):
    if not is_uri(attestation.get("uri")):
        fail(f"VSA: inputAttestations[{i}].uri `{attestation.get('uri')}` must be a URI")
    digest_set(attestation.get("digest"), f"VSA: inputAttestations[{i}].digest")
result = vsa["verificationResult"]
if result not in ("PASSED", "FAILED"):
    fail(f"VSA: verificationResult {result}")
levels = vsa["verifiedLevels"]
if result == "FAILED" and levels != ["FAILED"]:
    fail(f"VSA: a failed verification lists verifiedLevels {levels}, not [\"FAILED\"]")
for level in levels:
    if level.startswith("SLSA_") and not re.fullmatch(r"SLSA_(BUILD|SOURCE)_LEVEL_[0-4]", level):
        fail(f"VSA: custom level {level} must not start with SLSA_")

tr = statement(sys.argv[2], "https://in-toto.io/attestation/test-result/v0.1")
known = {"result", "configuration", "url", "passedTests", "warnedTests", "failedTests"}
extensions_are_uris(tr, known, "test result")
if tr["result"] not in ("PASSED", "WARNED", "FAILED"):
    fail(f"test result: result {tr['result']}")
for i, rd in enumerate(tr.get("configuration", [])):
    resource_descriptor(rd, f"test result: configuration[{i}]")
if "url" in tr and not is_uri(tr["url"]):
    fail("test result: url must be a URI")
for field in ("passedTests", "warnedTests", "failedTests"):
    if not all(isinstance(t, str) for t in tr.get(field, [])):
        fail(f"test result: {field} must list names")
if tr["result"] == "PASSED" and tr.get("failedTests"):
    fail("test result: PASSED with failed tests")
if tr["result"] == "FAILED" and not tr.get("failedTests"):
    fail("test result: FAILED without a failed test")

decision = vsa[DECISION]["decision"]
if tr[DECISION]["decision"] != decision:
    fail("the two predicates disagree on the decision")
print(decision, result, tr["result"])
