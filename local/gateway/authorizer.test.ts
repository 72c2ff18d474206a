import { describe, expect, it } from '@jest/globals';
import type { HandshakeRequest } from '../lambda-events.ts';
import { evaluateAuthorizerResult, isUnauthorized, missingIdentitySource } from './authorizer.ts';

const arn = 'arn:aws:execute-api:us-east-1:000000000000:local/local/$connect';

function request(headers: Record<string, string>, query: Record<string, string>): HandshakeRequest {
  return { headers, multiValueHeaders: {}, queryStringParameters: query, multiValueQueryStringParameters: {} };
}

function policy(effect: string, resource: string, action: unknown = 'execute-api:Invoke') {
  return { Version: '2012-10-17', Statement: [{ Action: action, Effect: effect, Resource: resource }] };
}

describe('missingIdentitySource', () => {
  it('names the first header or query string source that is absent or empty, matching header names in any case', () => {
    const sources = ['route.request.header.Authorization', 'route.request.querystring.token'];
    expect(missingIdentitySource(sources, request({ authorization: 'Bearer x' }, { token: 't' }))).toBeUndefined();
    expect(missingIdentitySource(sources, request({}, { token: 't' }))).toBe('route.request.header.Authorization');
    expect(missingIdentitySource(sources, request({ Authorization: 'x' }, { token: '' }))).toBe(
      'route.request.querystring.token',
    );
  });

  it('treats stage and context variables as always present', () => {
    expect(missingIdentitySource(['stageVariables.x', 'context.requestId'], request({}, {}))).toBeUndefined();
  });
});

describe('isUnauthorized', () => {
  it('recognises Unauthorized thrown as a string or as an Error, and nothing else', () => {
    expect(isUnauthorized('Unauthorized')).toBe(true);
    expect(isUnauthorized(new Error('Unauthorized'))).toBe(true);
    expect(isUnauthorized(new Error('unauthorized'))).toBe(false);
    expect(isUnauthorized(undefined)).toBe(false);
  });
});

describe('evaluateAuthorizerResult', () => {
  it('allows on a matching Allow (wildcards in Action and Resource) and stringifies context values', () => {
    const result = {
      principalId: 'alice',
      policyDocument: policy('Allow', 'arn:aws:execute-api:us-east-1:000000000000:local/*', 'execute-api:*'),
      context: { tenantId: 'acme', n: 5, b: true, none: null, skipped: undefined },
    };
    expect(evaluateAuthorizerResult(result, arn)).toEqual({
      ok: true,
      principalId: 'alice',
      context: { tenantId: 'acme', n: '5', b: 'true', none: null },
    });
  });

  it('answers 403 when a matching statement denies, or when none allows this method', () => {
    const both = {
      principalId: 'u',
      policyDocument: { Statement: [policy('Allow', arn).Statement[0], policy('Deny', arn).Statement[0]] },
    };
    expect(evaluateAuthorizerResult(both, arn)).toMatchObject({ ok: false, status: 403 });
    const elsewhere = { principalId: 'u', policyDocument: policy('Allow', `${arn}-other`) };
    expect(evaluateAuthorizerResult(elsewhere, arn)).toEqual({
      ok: false,
      status: 403,
      why: 'policy does not allow $connect',
    });
  });

  it('answers 500 for a malformed result: no principalId, no statements, nested context, over 8 KB', () => {
    const allow = policy('Allow', arn);
    expect(evaluateAuthorizerResult('Allow', arn)).toMatchObject({ ok: false, status: 500 });
    expect(evaluateAuthorizerResult({ policyDocument: allow }, arn)).toMatchObject({ status: 500 });
    expect(evaluateAuthorizerResult({ principalId: 'u', policyDocument: { Statement: [] } }, arn)).toMatchObject({
      status: 500,
    });
    expect(
      evaluateAuthorizerResult({ principalId: 'u', policyDocument: allow, context: { roles: ['a'] } }, arn),
    ).toEqual({ ok: false, status: 500, why: 'context.roles is not a string, number or boolean' });
    expect(
      evaluateAuthorizerResult({ principalId: 'u', policyDocument: allow, context: { big: 'x'.repeat(8192) } }, arn),
    ).toMatchObject({ status: 500, why: expect.stringMatching(/limit 8 KB/) });
  });
});
