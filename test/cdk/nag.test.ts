/**
 * cdk-nag (AWS Solutions) over every stage x region of cdk.json: any unacknowledged finding fails, listed.
 */
import { describe, expect, it } from '@jest/globals';
import { Stack, Validations } from 'aws-cdk-lib';
import { PolicyStatement, Role, ServicePrincipal } from 'aws-cdk-lib/aws-iam';
import { AwsSolutionsChecks } from 'cdk-nag';
import type { IConstruct } from 'constructs';
import { addComplianceChecks, addRealtimeStacks } from '../../lib/tenantcast-app.ts';
import { newApp } from './support.ts';

/** Every acknowledgement in a construct tree: rule id and reason. */
function acknowledgements(root: IConstruct): { path: string; id: string; reason: string }[] {
  return root.node
    .findAll()
    .flatMap((c) =>
      c.node.metadata
        .filter((m) => m.type === Validations.ACKNOWLEDGED_RULES_METADATA_KEY)
        .flatMap((m) =>
          Object.entries(m.data as Record<string, string>).map(([id, reason]) => ({ path: c.node.path, id, reason })),
        ),
    );
}

describe('cdk-nag AWS Solutions checks', () => {
  const app = newApp();
  const stacks = addRealtimeStacks(app);
  addComplianceChecks(app);

  it('cover every stage x region of cdk.json, realtime and data stacks alike', () => {
    const names = app.node.children.filter((c): c is Stack => c instanceof Stack).map((s) => s.stackName);
    expect(names.sort()).toEqual(stacks.flatMap((s) => [s.stackName, `${s.stackName}-data`]).sort());
  });

  it('find nothing unacknowledged', () => {
    const report = new AwsSolutionsChecks(app).validateScope(app);
    const findings = report.violations.flatMap((v) =>
      v.violatingResources.map((r) => `${v.ruleName} at ${r.constructPath}: ${v.description}`),
    );
    expect(findings).toEqual([]);
  });

  it('let the app synthesize', () => {
    expect(() => app.synth()).not.toThrow();
  });

  it('acknowledge each finding with a reason', () => {
    const acks = acknowledgements(app);
    expect(acks.length).toBeGreaterThan(0);
    const unexplained = acks.filter((a) => a.reason.trim().length < 40);
    expect(unexplained).toEqual([]);
  });

  it('acknowledge deletion protection being off in dev only', () => {
    const rds10 = acknowledgements(app).filter((a) => a.id.endsWith('AwsSolutions-RDS10'));
    expect(rds10.length).toBeGreaterThan(0);
    expect(rds10.filter((a) => !a.path.startsWith('tenantcast-dev-'))).toEqual([]);
  });

  it('fail synthesis on a finding nobody acknowledged', () => {
    const failing = newApp({ context: { stage: 'dev' } });
    const [stack] = addRealtimeStacks(failing);
    addComplianceChecks(failing);
    const role = new Role(stack as Stack, 'CarelessRole', { assumedBy: new ServicePrincipal('lambda.amazonaws.com') });
    role.addToPolicy(new PolicyStatement({ actions: ['s3:GetObject'], resources: ['*'] }));
    expect(() => failing.synth()).toThrow();
    const report = new AwsSolutionsChecks(failing).validateScope(failing);
    expect(report.violations.map((v) => v.ruleName)).toEqual(['AwsSolutions-IAM5[Resource::*]']);
  });
});
