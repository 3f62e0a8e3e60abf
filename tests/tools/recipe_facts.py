"""The facts of the deployment recipes that tests/deploy.rs checks, as JSON: each CloudFormation role's
actions by role, and the CronJob's grace period and security settings. Reads YAML with CloudFormation's
short tags (!Sub, !Ref, ...) kept as plain values."""

import json
import sys

import yaml


class Loader(yaml.SafeLoader):
    pass


def _tag(loader, suffix, node):
    if isinstance(node, yaml.ScalarNode):
        return loader.construct_scalar(node)
    if isinstance(node, yaml.SequenceNode):
        return loader.construct_sequence(node, deep=True)
    return loader.construct_mapping(node, deep=True)


Loader.add_multi_constructor("!", _tag)


def actions(doc):
    out = set()
    for st in doc.get("Statement", []):
        a = st.get("Action", [])
        out.update([a] if isinstance(a, str) else a)
    return out


def cfn(path):
    t = yaml.load(open(path), Loader=Loader)
    roles = {}
    for name, r in t["Resources"].items():
        if r["Type"] == "AWS::IAM::Role":
            acts = set()
            for p in r["Properties"].get("Policies", []):
                acts |= actions(p["PolicyDocument"])
            roles[name] = sorted(acts)
        if r["Type"] == "AWS::IAM::RolePolicy":
            roles[name] = sorted(actions(r["Properties"]["PolicyDocument"]))
    return roles


def cronjob(path):
    for d in yaml.safe_load_all(open(path)):
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


print(json.dumps({
    "ecs": cfn(sys.argv[1]),
    "member": cfn(sys.argv[2]),
    "cronjob": cronjob(sys.argv[3]),
    "lambda": cfn(sys.argv[4]),
}))
