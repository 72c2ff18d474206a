import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from '@jest/globals';
import {
  Allowlist,
  type AllowlistEntry,
  type CfnLintFinding,
  formatFinding,
  triage,
} from '../../scripts/cfn-lint-findings.ts';

const repositoryRoot = path.resolve(import.meta.dirname, '../..');

const tagsOnDashboards: AllowlistEntry = {
  rule: 'E3002',
  resourceType: 'AWS::CloudWatch::Dashboard',
  path: 'Properties/Tags',
  reason: 'stale schema in this cfn-lint version',
};

function finding(rule: string, where: (string | number)[]): CfnLintFinding {
  return {
    Filename: 'a.template.json',
    Level: 'Error',
    Message: `${rule} message`,
    Rule: { Id: rule },
    Location: { Path: where, Start: { LineNumber: 7 } },
  };
}

const types: Record<string, string> = { Dashboard: 'AWS::CloudWatch::Dashboard', Queue: 'AWS::SQS::Queue' };
const typeOf = (_file: string, logicalId: string) => types[logicalId];

describe('sorting cfn-lint findings against the allowlist', () => {
  it('allows a finding whose rule, resource type and path an entry names, and counts it', () => {
    const result = triage(
      [finding('E3002', ['Resources', 'Dashboard', 'Properties', 'Tags'])],
      [tagsOnDashboards],
      typeOf,
    );
    expect(result.unexpected).toEqual([]);
    expect(result.allowed).toEqual([{ entry: tagsOnDashboards, count: 1 }]);
  });

  it('allows findings below the named path, but not a sibling whose name merely starts the same', () => {
    const below = finding('E3002', ['Resources', 'Dashboard', 'Properties', 'Tags', 0, 'Key']);
    const sibling = finding('E3002', ['Resources', 'Dashboard', 'Properties', 'TagsExtra']);
    expect(triage([below, sibling], [tagsOnDashboards], typeOf).unexpected).toEqual([sibling]);
  });

  it('keeps the same rule on another resource type unexpected', () => {
    const onQueue = finding('E3002', ['Resources', 'Queue', 'Properties', 'Tags']);
    expect(triage([onQueue], [tagsOnDashboards], typeOf).unexpected).toEqual([onQueue]);
  });

  it('keeps another rule on the allowlisted path unexpected', () => {
    const other = finding('E3012', ['Resources', 'Dashboard', 'Properties', 'Tags']);
    expect(triage([other], [tagsOnDashboards], typeOf).unexpected).toEqual([other]);
  });

  it('keeps findings outside Resources, and on resources the template lacks, unexpected', () => {
    const onOutput = finding('E3002', ['Outputs', 'Dashboard', 'Value']);
    const unknown = finding('E3002', ['Resources', 'Gone', 'Properties', 'Tags']);
    expect(triage([onOutput, unknown], [tagsOnDashboards], typeOf).unexpected).toEqual([onOutput, unknown]);
  });

  it('reports an entry that matches nothing with a count of zero', () => {
    expect(triage([], [tagsOnDashboards], typeOf).allowed).toEqual([{ entry: tagsOnDashboards, count: 0 }]);
  });

  it('prints a finding with its rule, file, line and path', () => {
    expect(formatFinding(finding('E3002', ['Resources', 'Dashboard', 'Properties', 'Tags']))).toBe(
      'E3002 a.template.json:7 Resources/Dashboard/Properties/Tags: E3002 message',
    );
  });
});

describe('the committed allowlist', () => {
  const raw = JSON.parse(readFileSync(path.join(repositoryRoot, 'cfn-lint-allowlist.json'), 'utf8'));

  it('parses, and gives every entry a reason', () => {
    const entries = Allowlist.parse(raw).findings;
    expect(entries.length).toBeGreaterThan(0);
    expect(entries.filter((e) => e.reason.trim().length < 20)).toEqual([]);
  });

  it('refuses an entry without a reason', () => {
    expect(Allowlist.safeParse({ findings: [{ ...tagsOnDashboards, reason: '' }] }).success).toBe(false);
  });
});
