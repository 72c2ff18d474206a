/**
 * Acknowledging cdk-nag findings next to the grant that causes them. cdk-nag 3 names each wildcard finding after the
 * resource as it appears in the template (`AwsSolutions-IAM5[Resource::<TableCD117FA1.Arn>/index/*]`), so an
 * acknowledgement must spell the resource the same way; {@link nagResourceText} does.
 */
import { Stack, Token, Validations } from 'aws-cdk-lib';
import type { IGrantable } from 'aws-cdk-lib/aws-iam';
import { Construct, type IConstruct } from 'constructs';

/**
 * A resource value as cdk-nag prints it in findings: literals as they are, `{Ref: X}` as `<X>`,
 * `{Fn::GetAtt: [X, A]}` as `<X.A>`, `Fn::Join` with '' concatenated.
 *
 * Written by hand: cdk-nag does not export the rendering its IAM rules use.
 */
export function nagResourceText(scope: IConstruct, value: string): string {
  return render(Token.isUnresolved(value) ? Stack.of(scope).resolve(value) : value);
}

function render(value: unknown): string {
  if (typeof value === 'string') return value;
  if (typeof value === 'object' && value !== null) {
    const v = value as Record<string, unknown>;
    if (typeof v.Ref === 'string') return `<${v.Ref}>`;
    const getAtt = v['Fn::GetAtt'];
    if (Array.isArray(getAtt)) return `<${getAtt.join('.')}>`;
    const join = v['Fn::Join'];
    if (Array.isArray(join) && Array.isArray(join[1])) return join[1].map(render).join(String(join[0]));
  }
  return JSON.stringify(value);
}

/**
 * The construct a grant's policy lands on: the grantee's principal (the role of a function), when it is a
 * construct of the app, else the grantee itself.
 */
export function policyHolderOf(grantee: IGrantable): IConstruct | undefined {
  const principal = grantee.grantPrincipal;
  if (Construct.isConstruct(principal)) return principal;
  return Construct.isConstruct(grantee) ? grantee : undefined;
}

/**
 * Acknowledges the `AwsSolutions-IAM5` finding of a wildcard in `resource` on the policy holder of `grantee`, with
 * the reason AWS requires the wildcard there.
 */
export function acknowledgeWildcardResource(grantee: IGrantable, resource: string, reason: string): void {
  const holder = policyHolderOf(grantee);
  if (holder === undefined) return;
  Validations.of(holder).acknowledge({
    id: `AwsSolutions-IAM5[Resource::${nagResourceText(holder, resource)}]`,
    reason,
  });
}
