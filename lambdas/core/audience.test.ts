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

  it('needs both roles and claim when both are given; a bypass role lifts the claim, not the roles', () => {
    const audience = { roles: ['member', 'admin'], claim: { name: 'region', anyOf: ['eu'] }, bypassRoles: ['admin'] };
    expect(isInAudience(audience, member(['member'], { region: 'eu' }))).toBe(true);
    expect(isInAudience(audience, member(['member'], { region: 'us' }))).toBe(false);
    expect(isInAudience(audience, member(['viewer'], { region: 'eu' }))).toBe(false);
    expect(isInAudience(audience, member(['admin']))).toBe(true);
  });

  it('refuses a bypass role held without one of the roles, as the entity API does over HTTP', () => {
    const audience = { roles: ['member'], claim: { name: 'sub', anyOf: ['bob'] }, bypassRoles: ['auditor'] };
    expect(isInAudience(audience, member(['viewer', 'auditor']))).toBe(false);
    expect(isInAudience(audience, member(['member', 'auditor']))).toBe(true);
  });

  it('compares claim values as strings, as the HTTP API reads them', () => {
    expect(isInAudience({ claim: { name: 'team', anyOf: ['7'] } }, member([], { team: [7] }))).toBe(true);
    expect(isInAudience({ claim: { name: 'team', anyOf: [7] } }, member([], { team: '7' }))).toBe(true);
    expect(isInAudience({ claim: { name: 'on', anyOf: ['true'] } }, member([], { on: true }))).toBe(true);
    expect(isInAudience({ claim: { name: 'o', anyOf: ['[object Object]'] } }, member([], { o: {} }))).toBe(false);
  });

  it('with firstValue counts only the first value of an array claim (an entity rule’s equalsClaim)', () => {
    const audience = { claim: { name: 'teams', anyOf: ['t2'], firstValue: true as const } };
    expect(isInAudience(audience, member([], { teams: ['t1', 't2'] }))).toBe(false);
    expect(isInAudience(audience, member([], { teams: ['t2', 't1'] }))).toBe(true);
    expect(isInAudience(audience, member([], { teams: 't2' }))).toBe(true);
  });

  it('with an empty claim list lets only bypass roles through', () => {
    const audience = { roles: ['member', 'admin'], bypassRoles: ['admin'], claim: { name: 'sub', anyOf: [] } };
    expect(isInAudience(audience, member(['member'], { sub: '' }))).toBe(false);
    expect(isInAudience(audience, member(['admin']))).toBe(true);
  });
});
