/**
 * Sorting cfn-lint's findings (its `--format json` output) against the committed allowlist, cfn-lint-allowlist.json:
 * each entry names a rule, a resource type and a path under the resource, and says why the finding is a false
 * positive. Used by scripts/cfn-lint.ts (`npm run cfn-lint`). Hand-written: cfn-lint's own ignores go by rule for
 * the whole template or by logical id, and CDK logical ids carry hashes that change with the construct tree.
 */
import { z } from 'zod';

/** One finding as `cfn-lint --format json` prints it (the fields used here). */
export const CfnLintFinding = z.object({
  Filename: z.string(),
  Level: z.string(),
  Message: z.string(),
  Rule: z.object({ Id: z.string() }),
  Location: z.object({
    Path: z.array(z.union([z.string(), z.number()])),
    Start: z.object({ LineNumber: z.number() }),
  }),
});
export type CfnLintFinding = z.infer<typeof CfnLintFinding>;

/** One allowlisted false positive. */
export const AllowlistEntry = z.object({
  /** cfn-lint rule id, e.g. `E3002`. */
  rule: z.string().regex(/^[EWI]\d{4}$/, 'a cfn-lint rule id such as E3002'),
  /** CloudFormation type of the resource the finding is on, e.g. `AWS::CloudWatch::Dashboard`. */
  resourceType: z
    .string()
    .regex(/^[A-Za-z0-9]+::[A-Za-z0-9]+::[A-Za-z0-9]+$/, 'a resource type such as AWS::SQS::Queue'),
  /** Where under the resource, `/`-separated (`Properties/Tags`); a finding at or below it matches. */
  path: z.string().min(1),
  /** Why this is a false positive (a stale cfn-lint schema, a CDK idiom), with the evidence. */
  reason: z.string().min(20, 'say why the finding is a false positive'),
});
export type AllowlistEntry = z.infer<typeof AllowlistEntry>;

export const Allowlist = z.object({ findings: z.array(AllowlistEntry) });

/** The type of resource `logicalId` in template `filename`, or undefined when there is none. */
export type ResourceTypeOf = (filename: string, logicalId: string) => string | undefined;

export interface Triage {
  /** Findings no entry allows: each fails the check. */
  readonly unexpected: readonly CfnLintFinding[];
  /** How many findings each entry allowed, in allowlist order. */
  readonly allowed: ReadonlyArray<{ readonly entry: AllowlistEntry; readonly count: number }>;
}

/** The path of a finding below its resource (`Properties/Tags`), or undefined when it is not on a resource. */
function pathUnderResource(finding: CfnLintFinding): string | undefined {
  const [section, , ...rest] = finding.Location.Path;
  return section === 'Resources' && finding.Location.Path.length >= 2 ? rest.join('/') : undefined;
}

function allows(entry: AllowlistEntry, finding: CfnLintFinding, resourceType: string | undefined): boolean {
  const path = pathUnderResource(finding);
  return (
    entry.rule === finding.Rule.Id &&
    entry.resourceType === resourceType &&
    path !== undefined &&
    (path === entry.path || path.startsWith(`${entry.path}/`))
  );
}

/** Splits findings into those an allowlist entry covers and those it does not. */
export function triage(
  findings: readonly CfnLintFinding[],
  allowlist: readonly AllowlistEntry[],
  resourceTypeOf: ResourceTypeOf,
): Triage {
  const counts = allowlist.map(() => 0);
  const unexpected: CfnLintFinding[] = [];
  for (const finding of findings) {
    const logicalId = finding.Location.Path[0] === 'Resources' ? String(finding.Location.Path[1]) : undefined;
    const type = logicalId === undefined ? undefined : resourceTypeOf(finding.Filename, logicalId);
    const index = allowlist.findIndex((entry) => allows(entry, finding, type));
    if (index === -1) unexpected.push(finding);
    else counts[index] = (counts[index] ?? 0) + 1;
  }
  return { unexpected, allowed: allowlist.map((entry, i) => ({ entry, count: counts[i] ?? 0 })) };
}

/** A finding as one line: `E3002 tenantcast-dev-eu-west-1.template.json:5623 Resources/X/Properties/Tags: message`. */
export function formatFinding(finding: CfnLintFinding): string {
  const where = `${finding.Filename}:${finding.Location.Start.LineNumber}`;
  return `${finding.Rule.Id} ${where} ${finding.Location.Path.join('/')}: ${finding.Message}`;
}
