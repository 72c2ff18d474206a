import { describe, expect, it } from '@jest/globals';
import { isInAudience } from './audience.ts';

const member = (roles: string[], claims: Record<string, unknown> = {}) => ({ roles, claims });

describe('an audience', () => {
  it('that is absent lets every member receive', () => {
    expect(isInAudience(undefined, member([]))).toBe(true);
  });

  it('with roles lets only members holding one of them receive', () => {
    const audience = { roles: ['admin', 'editor'] };
    expect(isInAudience(audience, member(['viewer', 'editor']))).toBe(true);
    expect(isInAudience(audience, member(['viewer']))).toBe(false);
  });

  it('with a claim matches a scalar claim or any element of an array claim', () => {
    const audience = { claim: { name: 'team', anyOf: ['red', 'blue'] } };
    expect(isInAudience(audience, member([], { team: 'red' }))).toBe(true);
    expect(isInAudience(audience, member([], { team: ['green', 'blue'] }))).toBe(true);
    expect(isInAudience(audience, member([], { team: 'green' }))).toBe(false);
    expect(isInAudience(audience, member([]))).toBe(false);
  });

  it('needs both roles and claim when both are given, unless a bypass role is held', () => {
    const audience = { roles: ['member'], claim: { name: 'region', anyOf: ['eu'] }, bypassRoles: ['admin'] };
    expect(isInAudience(audience, member(['member'], { region: 'eu' }))).toBe(true);
    expect(isInAudience(audience, member(['member'], { region: 'us' }))).toBe(false);
    expect(isInAudience(audience, member(['viewer'], { region: 'eu' }))).toBe(false);
    expect(isInAudience(audience, member(['admin']))).toBe(true);
  });
});
