"""Validate ASFF findings with the AWS service model's own parameter validation (botocore, from the
tests' venv): the findings in the JSON file given (a list), sent as BatchImportFindings calls of at most
100, must pass botocore's ParamValidator for securityhub's BatchImportFindings input. Prints
"N findings, 0 invalid" or every complaint and exits 1."""

import json
import sys

import botocore.session
from botocore.validate import ParamValidator


def main(path: str) -> int:
    findings = json.load(open(path))
    model = botocore.session.get_session().get_service_model("securityhub")
    shape = model.operation_model("BatchImportFindings").input_shape
    validator = ParamValidator()
    bad = 0
    for i in range(0, len(findings), 100):
        report = validator.validate({"Findings": findings[i : i + 100]}, shape)
        if report.has_errors():
            bad += 1
            print(report.generate_report())
    # Enums the validator leaves to the service.
    labels = {"INFORMATIONAL", "LOW", "MEDIUM", "HIGH", "CRITICAL"}
    for f in findings:
        for where in (f.get("Severity", {}), f.get("FindingProviderFields", {}).get("Severity", {})):
            if where and where.get("Label") not in labels:
                bad += 1
                print(f"{f['Id']}: Severity.Label {where.get('Label')!r}")
        if f.get("RecordState") not in ("ACTIVE", "ARCHIVED"):
            bad += 1
            print(f"{f['Id']}: RecordState {f.get('RecordState')!r}")
        if f.get("Compliance", {}).get("Status") not in ("PASSED", "WARNING", "FAILED", "NOT_AVAILABLE"):
            bad += 1
            print(f"{f['Id']}: Compliance.Status")
        for r in f["Resources"]:
            key = r.get("Details", {}).get("AwsIamAccessKey")
            if key and key.get("Status") not in ("Active", "Inactive"):
                bad += 1
                print(f"{f['Id']}: AwsIamAccessKey.Status {key.get('Status')!r}")
    print(f"{len(findings)} findings, {bad} invalid")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
