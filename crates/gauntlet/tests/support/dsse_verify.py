"""Verify a gauntlet attestation with securesystemslib's DSSE implementation.

usage: dsse_verify.py ENVELOPE MINISIGN_PUB
Prints the verified key id and the decision; exits non-zero if verification fails.
"""
import base64
import json
import sys

from securesystemslib.dsse import Envelope
from securesystemslib.signer import SSlibKey

envelope = Envelope.from_dict(json.load(open(sys.argv[1])))
# A minisign public key: 2 bytes algorithm, 8 bytes key id (little endian), 32 bytes Ed25519.
line = [l for l in open(sys.argv[2]).read().splitlines() if l and not l.startswith("untrusted")][0]
raw = base64.b64decode(line)
keyid = "%016X" % int.from_bytes(raw[2:10], "little")
key = SSlibKey(keyid, "ed25519", "ed25519", {"public": raw[10:42].hex()})
verified = envelope.verify([key], 1)
statement = json.loads(envelope.payload)
assert statement["_type"] == "https://in-toto.io/Statement/v1"
decision = statement["predicate"]["https://gauntlet.invalid/attestation/decision/v1"]["decision"]
print(",".join(verified.keys()), decision)
