"""Every place iam-audit publishes an IAM policy, as tests/tools/iam-evaluator/evaluate.mjs judges it.

    python policy_places.py REPO_ROOT > places.json

A place is what one way of running the tool deploys: the caller's identity policy (the management side),
the member accounts' audit role with its trust policy, and the bucket, key and topic policies that AWS
also evaluates, plus the requests the platform itself makes for the recipe (the scheduler starting the
task, CloudWatch Logs encrypting with the key, EventBridge publishing a failure). Templates are resolved
as CloudFormation would (parameters, pseudo parameters, !Sub, !GetAtt, !If ...), with `${name}`
placeholders the evaluator fills per request (`${account}` is the member account a request is made in).

Policies in the README and docs/ are the JSON blocks marked `<!-- iam-policy: NAME -->` on the line before
the opening fence; every JSON block that holds a policy must be marked, so none escapes the evaluation.
"""

import json
import re
import sys
from pathlib import Path

import yaml

ROOT = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).resolve().parents[2]

# --- CloudFormation, resolved ---------------------------------------------------------------------------


class CfnLoader(yaml.SafeLoader):
    """YAML with CloudFormation's short tags kept as their long forms ({"Fn::Sub": ...})."""


def _tag(loader, suffix, node):
    name = "Ref" if suffix == "Ref" else "Condition" if suffix == "Condition" else f"Fn::{suffix}"
    if isinstance(node, yaml.ScalarNode):
        value = loader.construct_scalar(node)
        if suffix == "GetAtt":
            value = value.split(".", 1)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)
    return {name: value}


CfnLoader.add_multi_constructor("!", _tag)

NO_VALUE = object()


class Template:
    """One template deployed with `params` into `account` (a placeholder such as `${mgmt}`)."""

    def __init__(self, path, params, account, stack, names=None):
        self.path = path
        self.doc = yaml.load((ROOT / path).read_text(), Loader=CfnLoader)
        self.account = account
        self.stack = stack
        # Physical names CloudFormation would generate, where the template leaves them to it.
        self.names = names or {}
        self.params = {}
        for name, spec in self.doc.get("Parameters", {}).items():
            if name in params:
                self.params[name] = params[name]
            elif "Default" in spec:
                self.params[name] = spec["Default"]
            else:
                raise SystemExit(f"{path}: parameter {name} has no value and no default")
        self.conditions = {}
        for name, expr in self.doc.get("Conditions", {}).items():
            self.conditions[name] = None
        for name, expr in self.doc.get("Conditions", {}).items():
            self.conditions[name] = bool(self.resolve(expr))

    def resources(self, type_=None):
        for name, r in self.doc["Resources"].items():
            if "Condition" in r and not self.conditions[r["Condition"]]:
                continue
            if type_ is None or r["Type"] == type_:
                yield name, r

    def ref(self, name):
        pseudo = {
            "AWS::AccountId": self.account,
            "AWS::Region": "${region}",
            "AWS::Partition": "aws",
            "AWS::URLSuffix": "amazonaws.com",
            "AWS::StackName": self.stack,
            "AWS::NoValue": NO_VALUE,
        }
        if name in pseudo:
            return pseudo[name]
        if name in self.params:
            return self.params[name]
        r = self.doc["Resources"][name]
        props = r.get("Properties", {})
        t = r["Type"]
        generated = self.names.get(name, f"{self.stack}-{name}-GENERATED")
        if t == "AWS::S3::Bucket":
            return self.resolve(props.get("BucketName", generated))
        if t == "AWS::SNS::Topic":
            return f"arn:aws:sns:${{region}}:{self.account}:{self.resolve(props.get('TopicName', generated))}"
        if t == "AWS::ECS::TaskDefinition":
            return f"arn:aws:ecs:${{region}}:{self.account}:task-definition/{self.resolve(props['Family'])}:1"
        if t == "AWS::Logs::LogGroup":
            return self.resolve(props.get("LogGroupName", generated))
        if t == "AWS::KMS::Key":
            return f"{name.lower()}-key-id"
        for key in ("RoleName", "FunctionName", "Name", "AlarmName", "ClusterName"):
            if key in props:
                return self.resolve(props[key])
        return generated

    def get_att(self, name, attr):
        r = self.doc["Resources"][name]
        props = r.get("Properties", {})
        t = r["Type"]
        ref = self.ref(name)
        a = self.account
        if t == "AWS::S3::Bucket" and attr == "Arn":
            return f"arn:aws:s3:::{ref}"
        if t == "AWS::KMS::Key" and attr == "Arn":
            return f"arn:aws:kms:${{region}}:{a}:key/{ref}"
        if t == "AWS::IAM::Role" and attr == "Arn":
            path = self.resolve(props.get("Path", "/"))
            return f"arn:aws:iam::{a}:role{path}{ref}"
        if t == "AWS::Lambda::Function" and attr == "Arn":
            return f"arn:aws:lambda:${{region}}:{a}:function:{ref}"
        if t == "AWS::ECS::Cluster" and attr == "Arn":
            return f"arn:aws:ecs:${{region}}:{a}:cluster/{ref}"
        if t == "AWS::Logs::LogGroup" and attr == "Arn":
            return f"arn:aws:logs:${{region}}:{a}:log-group:{ref}:*"
        if t == "AWS::Events::Rule" and attr == "Arn":
            return f"arn:aws:events:${{region}}:{a}:rule/{ref}"
        if t == "AWS::SNS::Topic" and attr == "TopicArn":
            return ref
        if t == "AWS::CloudWatch::Alarm" and attr == "Arn":
            return f"arn:aws:cloudwatch:${{region}}:{a}:alarm:{ref}"
        if t == "AWS::Scheduler::Schedule" and attr == "Arn":
            return f"arn:aws:scheduler:${{region}}:{a}:schedule/default/{ref}"
        raise SystemExit(f"{self.path}: !GetAtt {name}.{attr} is not modelled")

    def sub(self, text, extra):
        def one(m):
            expr = m.group(1)
            if expr.startswith("!"):
                return "${" + expr[1:] + "}"
            if expr in extra:
                return str(self.resolve(extra[expr]))
            if "." in expr:
                res, attr = expr.split(".", 1)
                return str(self.get_att(res, attr))
            return str(self.ref(expr))

        return re.sub(r"\$\{([^}]+)\}", one, text)

    def resolve(self, node):
        if isinstance(node, list):
            out = [self.resolve(v) for v in node]
            return [v for v in out if v is not NO_VALUE]
        if not isinstance(node, dict):
            return node
        if len(node) == 1:
            (k, v), = node.items()
            if k == "Ref":
                return self.ref(v)
            if k == "Fn::Sub":
                if isinstance(v, list):
                    return self.sub(v[0], v[1])
                return self.sub(v, {})
            if k == "Fn::GetAtt":
                return self.get_att(*v)
            if k == "Fn::If":
                cond, yes, no = v
                return self.resolve(yes if self.conditions[cond] else no)
            if k == "Fn::Join":
                return v[0].join(str(x) for x in self.resolve(v[1]))
            if k == "Fn::Split":
                return self.resolve(v[1]).split(v[0])
            if k == "Fn::Select":
                return self.resolve(v[1])[int(self.resolve(v[0]))]
            if k == "Fn::Equals":
                return self.resolve(v[0]) == self.resolve(v[1])
            if k == "Fn::Not":
                return not self.resolve(v[0])
            if k == "Fn::And":
                return all(self.resolve(x) for x in v)
            if k == "Fn::Or":
                return any(self.resolve(x) for x in v)
            if k == "Condition":
                return self.conditions[v]
        out = {}
        for k, v in node.items():
            r = self.resolve(v)
            if r is not NO_VALUE:
                out[k] = r
        return out

    def role(self, name):
        """An IAM role's ARN, its policies (inline and attached RolePolicy resources) and trust policy."""
        r = self.doc["Resources"][name]
        props = r["Properties"]
        policies = [
            {"name": f"{self.path}#{name}.{p['PolicyName']}", "policy": self.resolve(p["PolicyDocument"])}
            for p in props.get("Policies", [])
        ]
        for other, rp in self.resources("AWS::IAM::RolePolicy"):
            target = rp["Properties"]["RoleName"]
            if target == {"Ref": name}:
                policies.append(
                    {"name": f"{self.path}#{other}", "policy": self.resolve(rp["Properties"]["PolicyDocument"])}
                )
        return {
            "arn": self.get_att(name, "Arn"),
            "policies": policies,
            "trust": self.resolve(props["AssumeRolePolicyDocument"]),
        }

    def resource_policy(self, name, key, applies_to):
        r = self.doc["Resources"][name]
        return {
            "name": f"{self.path}#{name}",
            "applies_to": applies_to,
            "policy": self.resolve(r["Properties"][key]),
        }


# --- README and docs/ -------------------------------------------------------------------------------------


def doc_policies():
    """The marked JSON policies of the README and docs/ by name; fails on an unmarked policy block."""
    found = {}
    for path in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]:
        lines = path.read_text().splitlines()
        i = 0
        while i < len(lines):
            if lines[i].strip() == "```json":
                end = next(j for j in range(i + 1, len(lines)) if lines[j].strip() == "```")
                text = "\n".join(lines[i + 1 : end])
                mark = re.match(r"<!-- iam-policy: (\S+) -->", lines[i - 1].strip()) if i else None
                if '"Effect"' in text:
                    if not mark:
                        raise SystemExit(
                            f"{path.relative_to(ROOT)}:{i + 1}: a published policy without an "
                            "`<!-- iam-policy: NAME -->` line before it, so the tests cannot judge it"
                        )
                    value = json.loads(text)
                    if "Statement" not in value:
                        value = {"Version": "2012-10-17", "Statement": [value]}
                    found[mark.group(1)] = {
                        "name": f"{path.relative_to(ROOT)}#{mark.group(1)}",
                        "policy": value,
                    }
                i = end
            i += 1
    return found


def replace(value, old, new):
    if isinstance(value, str):
        return value.replace(old, new)
    if isinstance(value, list):
        return [replace(v, old, new) for v in value]
    if isinstance(value, dict):
        return {k: replace(v, old, new) for k, v in value.items()}
    return value


def main():
    spec_path = Path(__file__).with_name("policy_places.json")
    spec = json.loads(spec_path.read_text())
    docs = doc_policies()
    places = []
    for p in spec["places"]:
        templates = {}
        for t in p.get("templates", []):
            templates[t["id"]] = Template(
                t["path"], t.get("params", {}), t["account"], t.get("stack", "stack"), t.get("names")
            )
        principals = {}
        resource_policies = []
        for who, src in p["principals"].items():
            if "template" in src:
                role = templates[src["template"]].role(src["role"])
                principals[who] = {"arn": role["arn"], "policies": role["policies"]}
                # Who may take the role is a resource policy of its own (its trust policy).
                resource_policies.append(
                    {
                        "name": f"{templates[src['template']].path}#{src['role']}.AssumeRolePolicyDocument",
                        "applies_to": [role["arn"]],
                        "policy": role["trust"],
                    }
                )
            else:
                policies = []
                for name in src["docs"]:
                    if name not in docs:
                        raise SystemExit(f"{p['name']}: no policy marked `iam-policy: {name}` in README.md or docs/")
                    policies.append(docs[name])
                principals[who] = {"arn": src["arn"], "policies": policies}
        for rp in p.get("resource_policies", []):
            if "literal" in rp:
                resource_policies.append({"name": rp["name"], "applies_to": rp["applies_to"], "policy": rp["literal"]})
            elif "template" in rp:
                resource_policies.append(
                    templates[rp["template"]].resource_policy(rp["resource"], rp["key"], rp["applies_to"])
                )
            else:
                doc = docs[rp["docs"]]
                resource_policies.append({"name": doc["name"], "applies_to": rp["applies_to"], "policy": doc["policy"]})
        def shared(key, default):
            value = p.get(key, default)
            return spec[value] if isinstance(value, str) else value

        platform = []
        for r in shared("platform_requests", []):
            r = dict(r)
            t = templates[r.pop("template")]
            platform.append({k: t.resolve(v) for k, v in r.items()})
        optional = shared("optional", {})
        place = {
            "name": p["name"],
            "vars": p["vars"],
            "features": p["features"],
            "principals": principals,
            "resource_policies": resource_policies,
            "platform_requests": platform,
            "optional": optional,
            "unused_ok": shared("unused_ok", {}),
            "derived": shared("derived", {}),
        }
        # The docs' example values stand for the place's own (MANAGEMENT_ACCOUNT_ID → ${mgmt}, ...).
        for old, new in p.get("doc_values", {}).items():
            place["principals"] = replace(place["principals"], old, new)
            place["resource_policies"] = replace(place["resource_policies"], old, new)
        places.append(place)
    print(json.dumps({"places": places}, indent=1))


main()
