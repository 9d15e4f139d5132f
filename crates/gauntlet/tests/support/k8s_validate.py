"""Validates Kubernetes and Argo Workflows manifests: Kubernetes kinds with the
kubernetes-validate package's schemas (generated from Kubernetes' OpenAPI, strict: no field
a kind does not define), Argo's with Argo Workflows' published JSON schema made strict the
same way. Prints one JSON object: each document's kind and the errors found.

usage: k8s_validate.py ARGO_SCHEMA FILE...
"""

import json
import sys

import jsonschema
import kubernetes_validate
import yaml


def strict(node):
    """Every object schema that lists its properties allows no others."""
    if isinstance(node, dict):
        if "properties" in node and "additionalProperties" not in node:
            node["additionalProperties"] = False
        for value in node.values():
            strict(value)
    elif isinstance(node, list):
        for value in node:
            strict(value)
    return node


argo = strict(json.load(open(sys.argv[1])))


def argo_errors(doc):
    """The document against the definition of its kind (the schema's root is a oneOf of
    every kind, whose failure would name none of the fields)."""
    schema = {
        "$schema": argo["$schema"],
        "$ref": f"#/definitions/io.argoproj.workflow.v1alpha1.{doc['kind']}",
        "definitions": argo["definitions"],
    }
    validator = jsonschema.validators.validator_for(schema)(schema)
    return [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(doc)]

seen = []
for path in sys.argv[2:]:
    for doc in yaml.safe_load_all(open(path)):
        errors = []
        if doc["apiVersion"].startswith("argoproj.io/"):
            errors = argo_errors(doc)
        else:
            try:
                kubernetes_validate.validate(doc, kubernetes_validate.latest_version(), strict=True)
            except kubernetes_validate.ValidationError as e:
                errors = [f"{'/'.join(map(str, e.absolute_path))}: {e.message}"]
        seen.append({"file": path, "kind": doc["kind"], "errors": errors})
print(json.dumps(seen))
