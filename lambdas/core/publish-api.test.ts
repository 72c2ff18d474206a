import { describe, expect, it } from '@jest/globals';
import { httpIdentity } from '../../test/support/http-identity.ts';
import { defaultClaimNames } from './auth.ts';
import type { DeliveryMessage } from './delivery.ts';
import { ForbiddenError, RateLimitedError } from './errors.ts';
import { handlePublishRequest, type PublishDeps, parsePublishBody } from './publish-api.ts';

const roleRules = {
  admin: { subscribe: ['*'], publish: ['*'] },
  member: { subscribe: ['*'], publish: ['chat:*'] },
};

function setup() {
  const queued: DeliveryMessage[] = [];
  const errors: unknown[] = [];
  let queueDown = false;
  const deps: PublishDeps = {
    tenants: {
      get: async (tenantId) => {
        if (tenantId !== 'acme') throw new ForbiddenError(`tenant '${tenantId}' is not configured`);
        return { tenantId, roleRules } as Awaited<ReturnType<PublishDeps['tenants']['get']>>;
      },
    },
    enqueue: async (message) => {
      if (queueDown) throw new Error('ServiceUnavailable');
      queued.push(message);
    },
    newId: () => 'm-1',
    now: () => 1_700_000_000_000,
    claimNames: defaultClaimNames,
    maxBodyBytes: 32 * 1024,
    onError: (err) => errors.push(err),
  };
  return {
    deps,
    queued,
    errors,
    setQueueDown: () => {
      queueDown = true;
    },
  };
}

/** The identity API Gateway's JWT authorizer passes: the token, and its claims as strings, arrays flattened. */
const claims = (sub: string, roles: string[], tenant = 'acme') => httpIdentity({ tenant_id: tenant, sub, roles });
const request = (body: unknown, who = claims('ops', ['admin'])) => ({
  body: typeof body === 'string' ? body : JSON.stringify(body),
  isBase64Encoded: false,
  ...who,
});
const parsed = (response: { body: string }) => JSON.parse(response.body) as Record<string, unknown>;

describe('handlePublishRequest', () => {
  it("queues a group message in the token's tenant, from the token's user, and answers 202 with its id", async () => {
    const { deps, queued } = setup();
    const response = await handlePublishRequest(request({ group: 'chat:general', data: { text: 'hi' } }), deps);
    expect(response.statusCode).toBe(202);
    expect(parsed(response)).toEqual({ id: 'm-1', group: 'chat:general' });
    expect(queued).toEqual([
      {
        v: 1,
        id: 'm-1',
        tenantId: 'acme',
        group: 'chat:general',
        data: { text: 'hi' },
        from: 'ops',
        ts: 1_700_000_000_000,
      },
    ]);
  });

  it('sends a message for a user to the group user:<id>', async () => {
    const { deps, queued } = setup();
    const response = await handlePublishRequest(request({ userId: 'bob', data: 1 }), deps);
    expect(parsed(response)).toEqual({ id: 'm-1', group: 'user:bob' });
    expect(queued[0]?.group).toBe('user:bob');
  });

  it('applies the role rules: a member publishes to chat:* only, and to no user', async () => {
    const { deps, queued } = setup();
    const member = claims('mia', ['member']);
    expect((await handlePublishRequest(request({ group: 'chat:x', data: 1 }, member), deps)).statusCode).toBe(202);
    for (const body of [
      { group: 'news:x', data: 1 },
      { userId: 'bob', data: 1 },
    ]) {
      const response = await handlePublishRequest(request(body, member), deps);
      expect(response.statusCode).toBe(403);
      expect(parsed(response)).toMatchObject({ error: { code: 'FORBIDDEN' } });
    }
    expect(queued).toHaveLength(1);
  });

  it('refuses an unconfigured tenant with 403 and no identity with 401', async () => {
    const { deps } = setup();
    const other = await handlePublishRequest(
      request({ group: 'chat:x', data: 1 }, claims('x', ['admin'], 'umbrella')),
      deps,
    );
    expect(other.statusCode).toBe(403);
    const anonymous = await handlePublishRequest(
      { body: '{}', isBase64Encoded: false, claims: undefined, authorization: undefined },
      deps,
    );
    expect(anonymous.statusCode).toBe(401);
    expect(parsed(anonymous)).toMatchObject({ error: { code: 'UNAUTHORIZED' } });
  });

  it('refuses a publish to a system group (entity:*) with 403 naming the rule, even for an admin', async () => {
    const { deps, queued } = setup();
    const response = await handlePublishRequest(request({ group: 'entity:task', data: { op: 'delete' } }), deps);
    expect(response.statusCode).toBe(403);
    expect(parsed(response)).toMatchObject({
      error: { code: 'FORBIDDEN', message: expect.stringContaining('system group') },
    });
    expect(queued).toEqual([]);
  });

  it("takes each publish from the tenant's publish bucket and answers 429 with Retry-After when it is empty", async () => {
    const { deps, queued } = setup();
    const taken: string[] = [];
    const limited: PublishDeps = {
      ...deps,
      admit: async (caller) => {
        taken.push(caller.tenantId);
        if (taken.length > 1) throw new RateLimitedError('too many publishes in this tenant', 1500);
      },
    };
    expect((await handlePublishRequest(request({ group: 'chat:x', data: 1 }), limited)).statusCode).toBe(202);
    const refused = await handlePublishRequest(request({ group: 'chat:x', data: 2 }), limited);
    expect(refused.statusCode).toBe(429);
    expect(refused.headers['retry-after']).toBe('2');
    expect(parsed(refused)).toEqual({
      error: { code: 'RATE_LIMITED', message: 'too many publishes in this tenant', retryAfterMs: 1500 },
    });
    expect(taken).toEqual(['acme', 'acme']);
    expect(queued).toHaveLength(1);
  });

  it('answers 413 TOO_LARGE for data over 16 KB and for a body over the limit', async () => {
    const { deps } = setup();
    const big = await handlePublishRequest(request({ group: 'chat:x', data: 'x'.repeat(17 * 1024) }), deps);
    expect([big.statusCode, parsed(big)]).toEqual([413, { error: { code: 'TOO_LARGE', message: expect.any(String) } }]);
    const huge = await handlePublishRequest(request({ group: 'chat:x', data: 'x'.repeat(40 * 1024) }), deps);
    expect(huge.statusCode).toBe(413);
  });

  it('answers 500 INTERNAL without internals when the queue fails, and reports the error', async () => {
    const { deps, errors, setQueueDown } = setup();
    setQueueDown();
    const response = await handlePublishRequest(request({ group: 'chat:x', data: 1 }), deps);
    expect([response.statusCode, parsed(response)]).toEqual([
      500,
      { error: { code: 'INTERNAL', message: 'internal error' } },
    ]);
    expect(errors).toHaveLength(1);
  });
});

describe('parsePublishBody', () => {
  it.each(['auth0|5f3c2a', 'google-oauth2|1034', 'bob+tag@example.com', 'x'.repeat(256)])(
    "takes the user id %s as OpenID Connect issuers spell it, for the group 'user:<id>'",
    (id) => {
      expect(parsePublishBody({ userId: id, data: 1 })).toEqual({ group: `user:${id}`, data: 1 });
    },
  );

  it.each([
    [{ group: 'chat:x', userId: 'bob', data: 1 }, "exactly one of 'group' and 'userId'"],
    [{ data: 1 }, "exactly one of 'group' and 'userId'"],
    [{ group: 'chat:x' }, 'data'],
    [{ group: 'chat:x', data: 1, tenantId: 'globex' }, "unknown field 'tenantId'"],
    [{ group: 'no spaces', data: 1 }, 'group must match'],
    [{ userId: 'bob smith', data: 1 }, 'userId must match'],
    [{ userId: 'bob#1', data: 1 }, 'userId must match'],
    [{ userId: 'x'.repeat(257), data: 1 }, 'userId must match'],
    [[1, 2], 'body must be a JSON object'],
  ])('refuses %j with BAD_REQUEST naming the problem', (body, problem) => {
    expect(() => parsePublishBody(body)).toThrow(expect.objectContaining({ code: 'BAD_REQUEST' }));
    expect(() => parsePublishBody(body)).toThrow(problem);
  });
});
