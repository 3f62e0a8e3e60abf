"""The facts of the deployment recipes that tests/deploy.rs checks, as JSON: the CronJob's grace period and
security settings, the GitHub workflow's steps, and what each CloudFormation template keeps and alerts on.
Reads YAML with CloudFormation's short tags (!Sub, !Ref, ...) kept as their long forms. (What the roles may
do is judged by an IAM policy evaluator: tests/policies.rs.)

    python recipe_facts.py REPO_ROOT
"""

import json
import sys
from pathlib import Path

import yaml

ROOT = Path(sys.argv[1])


class Loader(yaml.SafeLoader):
    pass


def _tag(loader, suffix, node):
    name = "Ref" if suffix == "Ref" else f"Fn::{suffix}"
    if isinstance(node, yaml.ScalarNode):
        value = loader.construct_scalar(node)
        if suffix == "GetAtt":
            value = value.split(".", 1)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)
    return {name: value}


Loader.add_multi_constructor("!", _tag)


def refs(node):
    """The logical ids a value refers to (Ref, GetAtt)."""
    if isinstance(node, dict):
        if "Ref" in node:
            yield node["Ref"]
        if "Fn::GetAtt" in node:
            yield node["Fn::GetAtt"][0]
        for v in node.values():
            yield from refs(v)
    elif isinstance(node, list):
        for v in node:
            yield from refs(v)


def template(path):
    t = yaml.load((ROOT / path).read_text(), Loader=Loader)
    res = t["Resources"]
    buckets = {n: r for n, r in res.items() if r["Type"] == "AWS::S3::Bucket"}
    # Keys that encrypt a bucket must live as long as it.
    bucket_keys = sorted({k for b in buckets.values() for k in refs(b.get("Properties", {}).get("BucketEncryption", {}))})
    kept = lambda n: res[n].get("DeletionPolicy") == "Retain" and res[n].get("UpdateReplacePolicy") == "Retain"
    rules = [
        r["Properties"]["EventPattern"]
        for r in res.values()
        if r["Type"] == "AWS::Events::Rule" and r["Properties"].get("Targets")
    ]
    alarms = sorted(
        f'{r["Properties"]["Namespace"]}/{r["Properties"]["MetricName"]}'
        for r in res.values()
        if r["Type"] == "AWS::CloudWatch::Alarm" and r["Properties"].get("AlarmActions")
    )
    tasks = {}
    for n, r in res.items():
        if r["Type"] == "AWS::ECS::TaskDefinition":
            c = r["Properties"]["ContainerDefinitions"][0]
            tasks[n] = {
                "user": c.get("User"),
                "readonly_root": c.get("ReadonlyRootFilesystem"),
                "mounts": [m["ContainerPath"] for m in c.get("MountPoints", [])],
            }
    return {
        "buckets_kept": all(kept(n) for n in buckets),
        "bucket_keys": {k: kept(k) for k in bucket_keys},
        "task_stopped_rules": [
            p for p in rules if p.get("detail-type") == ["ECS Task State Change"]
        ],
        "alarms": alarms,
        "tasks": tasks,
    }


def cronjob(path):
    for d in yaml.safe_load_all((ROOT / path).read_text()):
        if d["kind"] == "CronJob":
            spec = d["spec"]
            pod = spec["jobTemplate"]["spec"]["template"]["spec"]
            c = pod["containers"][0]
            return {
                "concurrencyPolicy": spec["concurrencyPolicy"],
                "terminationGracePeriodSeconds": pod["terminationGracePeriodSeconds"],
                "readOnlyRootFilesystem": c["securityContext"]["readOnlyRootFilesystem"],
                "runAsNonRoot": pod["securityContext"]["runAsNonRoot"],
                "tmp": any(m["mountPath"] == "/tmp" for m in c["volumeMounts"]),
                "args": c["args"],
            }


def workflow(path):
    w = yaml.safe_load((ROOT / path).read_text())
    (job,) = w["jobs"].values()
    return {
        "steps": [
            {"name": s.get("name", ""), "uses": s.get("uses", ""), "run": s.get("run", ""), "env": sorted(s.get("env", {}))}
            for s in job["steps"]
        ],
        "env": sorted((w.get("env") or {}) | (job.get("env") or {})),
    }


print(json.dumps({
    "templates": {p.name: template(p.relative_to(ROOT)) for p in sorted((ROOT / "deploy/aws").glob("*.yaml"))},
    "cronjob": cronjob("deploy/kubernetes/cronjob.yaml"),
    "workflow": workflow("deploy/github/iam-audit.yml"),
}))
