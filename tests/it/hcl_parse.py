"""Parses HCL from stdin with python-hcl2 (a real HCL2 parser) and prints it as JSON.

The Terraform tests check `mlambda export terraform` with it: Terraform itself cannot be installed here.
Strings lose their quotes; expressions (references, traversals, function calls) keep HCL's `${...}` form, so a
test can tell `aws_iam_role.x.arn` (a reference) from a string.
"""
import json
import sys

import hcl2
from hcl2.utils import SerializationOptions

options = SerializationOptions(with_comments=False, explicit_blocks=False, strip_string_quotes=True)
print(json.dumps(hcl2.loads(sys.stdin.read(), serialization_options=options)))
