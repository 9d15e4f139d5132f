"""Validate a CycloneDX JSON SBOM with the CycloneDX project's own Python library, against the
official JSON schema of the version the document declares (strict: no unknown properties).

usage: cyclonedx_validate.py SBOM
Prints the spec version and the number of components; exits non-zero with the schema's
complaint when the document is not valid.
"""
import json
import sys

from cyclonedx.schema import SchemaVersion
from cyclonedx.validation.json import JsonStrictValidator

text = open(sys.argv[1]).read()
declared = json.loads(text)["specVersion"]
version = SchemaVersion.from_version(declared)
error = JsonStrictValidator(version).validate_str(text)
if error is not None:
    # The schema's own complaint and where, without the whole schema it quotes.
    detail = getattr(error.data, "message", None) or str(error).splitlines()[0]
    where = "/".join(str(p) for p in getattr(error.data, "absolute_path", []))
    sys.exit(f"invalid CycloneDX {declared} at /{where}: {detail}")
print(declared, len(json.loads(text).get("components", [])))
