import { describe, expect, it } from '@jest/globals';
import { ForbiddenError } from './errors.ts';
import { assertAllowed, globToRegExp, isAllowed, type RoleRules } from './permissions.ts';

const rules: RoleRules = {
  admin: { subscribe: ['*'], publish: ['*'] },
  member: { subscribe: ['*'], publish: ['chat:*'] },
  viewer: { subscribe: ['*'], publish: [] },
};
const member = { tenantId: 'acme', userId: 'alice', roles: ['member'] };
const viewer = { tenantId: 'acme', userId: 'vera', roles: ['viewer'] };
const admin = { tenantId: 'acme', userId: 'root', roles: ['admin'] };

describe('role rules', () => {
  it('let members publish only to chat groups', () => {
    expect(isAllowed(rules, member, 'publish', 'chat:general')).toBe(true);
    expect(isAllowed(rules, member, 'publish', 'news')).toBe(false);
    expect(isAllowed(rules, member, 'subscribe', 'news')).toBe(true);
  });

  it('let viewers subscribe but never publish', () => {
    expect(isAllowed(rules, viewer, 'subscribe', 'chat:general')).toBe(true);
    expect(() => assertAllowed(rules, viewer, 'publish', 'chat:general')).toThrow(ForbiddenError);
  });

  it('allow a request if any role allows it, and nothing for unknown roles', () => {
    expect(isAllowed(rules, { ...viewer, roles: ['viewer', 'member'] }, 'publish', 'chat:x')).toBe(true);
    expect(isAllowed(rules, { ...viewer, roles: ['hacker', 'constructor', '__proto__'] }, 'subscribe', 'x')).toBe(
      false,
    );
    expect(isAllowed(rules, { ...viewer, roles: [] }, 'subscribe', 'x')).toBe(false);
  });

  it('keep user groups private to their user whatever the rules say', () => {
    expect(isAllowed(rules, member, 'subscribe', 'user:alice')).toBe(true);
    expect(isAllowed(rules, member, 'subscribe', 'user:bob')).toBe(false);
    expect(isAllowed(rules, admin, 'subscribe', 'user:alice')).toBe(false);
    expect(isAllowed({}, member, 'subscribe', 'user:alice')).toBe(true);
  });

  it('keep system groups (entity:*) unpublishable by anyone, even an admin whose rules allow every group', () => {
    expect(isAllowed(rules, admin, 'publish', 'entity:task')).toBe(false);
    expect(() => assertAllowed(rules, admin, 'publish', 'entity:task')).toThrow(/system group/);
    expect(isAllowed(rules, admin, 'subscribe', 'entity:task')).toBe(true);
    expect(isAllowed(rules, admin, 'publish', 'entities:task')).toBe(true);
  });

  it('treat every character of a pattern but * literally', () => {
    expect(globToRegExp('chat.*').test('chat.x')).toBe(true);
    expect(globToRegExp('chat.*').test('chatXx')).toBe(false);
    expect(globToRegExp('a*b*c').test('aXXbYYc')).toBe(true);
    expect(globToRegExp('(x)').test('(x)')).toBe(true);
  });
});
