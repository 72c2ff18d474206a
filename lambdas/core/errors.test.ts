import { ConditionalCheckFailedException } from '@aws-sdk/client-dynamodb';
import { describe, expect, it } from '@jest/globals';
import { isConditionalCheckFailed, RateLimitedError, toTenantcastError } from './errors.ts';

describe('isConditionalCheckFailed', () => {
  it('recognises the SDK’s refused condition and a stand-in of the same name', () => {
    const sdk = new ConditionalCheckFailedException({ message: 'The conditional request failed', $metadata: {} });
    expect(isConditionalCheckFailed(sdk)).toBe(true);
    expect(isConditionalCheckFailed({ name: 'ConditionalCheckFailedException' })).toBe(true);
  });

  it('does not take other errors, or things that are not errors, for one', () => {
    expect(isConditionalCheckFailed(new Error('ConditionalCheckFailedException'))).toBe(false);
    expect(isConditionalCheckFailed({ name: 'TransactionCanceledException' })).toBe(false);
    expect(isConditionalCheckFailed(undefined)).toBe(false);
    expect(isConditionalCheckFailed(null)).toBe(false);
    expect(isConditionalCheckFailed('ConditionalCheckFailedException')).toBe(false);
  });
});

describe('toTenantcastError', () => {
  it('keeps a tenantcast error and hides anything else behind INTERNAL', () => {
    const limited = new RateLimitedError('slow down', 500);
    expect(toTenantcastError(limited)).toBe(limited);
    const hidden = toTenantcastError(new Error('connection string postgres://secret'));
    expect(hidden.code).toBe('INTERNAL');
    expect(hidden.message).not.toContain('secret');
  });
});
