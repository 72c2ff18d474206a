import { describe, expect, it } from '@jest/globals';
import { ApiError, EntityApi, errorFromAnswer, tenantNotConfigured } from './api.ts';

interface Sent {
  url: string;
  method: string;
  headers: Record<string, string>;
  body: string | undefined;
}

function fakeFetch(answers: { status: number; body?: unknown }[]): { fetch: typeof fetch; sent: Sent[] } {
  const sent: Sent[] = [];
  const fetchImpl = async (input: RequestInfo | URL, init?: RequestInit) => {
    sent.push({
      url: String(input),
      method: init?.method ?? 'GET',
      headers: (init?.headers ?? {}) as Record<string, string>,
      body: typeof init?.body === 'string' ? init.body : undefined,
    });
    const answer = answers.shift();
    if (answer === undefined) throw new TypeError('Failed to fetch');
    return new Response(answer.body === undefined ? null : JSON.stringify(answer.body), { status: answer.status });
  };
  return { fetch: fetchImpl as typeof fetch, sent };
}

describe('API errors', () => {
  it('carry the code and message of the API error body', () => {
    const err = errorFromAnswer(409, { error: { code: 'CONFLICT', message: "task 'x' is at version 3, not 2" } });
    expect(err).toMatchObject({ code: 'CONFLICT', status: 409, message: "task 'x' is at version 3, not 2" });
  });

  it("name API Gateway's own 401 UNAUTHORIZED and an unexplained 5xx INTERNAL", () => {
    expect(errorFromAnswer(401, { message: 'Unauthorized' })).toMatchObject({
      code: 'UNAUTHORIZED',
      message: 'Unauthorized',
    });
    expect(errorFromAnswer(502, undefined)).toMatchObject({ code: 'INTERNAL', message: 'HTTP 502' });
  });
});

describe('the entity API client', () => {
  it('sends the bearer token and follows list cursors', async () => {
    const { fetch, sent } = fakeFetch([
      { status: 200, body: { items: [{ id: 1 }], nextCursor: 'c/1' } },
      { status: 200, body: { items: [{ id: 2 }], nextCursor: null } },
    ]);
    const api = new EntityApi({ getToken: async () => 'tkn', fetch, baseUrl: 'http://h' });
    expect(await api.list('task')).toEqual([{ id: 1 }, { id: 2 }]);
    expect(sent.map((s) => s.url)).toEqual([
      'http://h/v1/entities/task?limit=500',
      'http://h/v1/entities/task?limit=500&cursor=c%2F1',
    ]);
    expect(sent[0]?.headers.authorization).toBe('Bearer tkn');
  });

  it('updates with If-Match and only the patch in the body', async () => {
    const { fetch, sent } = fakeFetch([{ status: 200, body: { id: 'k', title: 'New', _version: 3 } }]);
    const api = new EntityApi({ getToken: async () => 'tkn', fetch });
    expect(await api.update('task', 'k', { title: 'New' }, 2)).toMatchObject({ _version: 3 });
    expect(sent[0]).toMatchObject({ method: 'PATCH', url: '/v1/entities/task/k', body: '{"title":"New"}' });
    expect(sent[0]?.headers['if-match']).toBe('2');
  });

  it('repeats a request refused with 401 once, with a fresh token, and reports a second 401', async () => {
    const { fetch, sent } = fakeFetch([
      { status: 401, body: { message: 'Unauthorized' } },
      { status: 200, body: { entities: {} } },
      { status: 401, body: { message: 'Unauthorized' } },
      { status: 401, body: { message: 'Unauthorized' } },
    ]);
    const asked: (boolean | undefined)[] = [];
    const api = new EntityApi({
      getToken: async (fresh) => {
        asked.push(fresh);
        return fresh ? 'new' : 'cached';
      },
      fetch,
    });
    expect(await api.schema()).toEqual({ entities: {} });
    expect(sent.map((s) => s.headers.authorization)).toEqual(['Bearer cached', 'Bearer new']);
    expect(asked).toEqual([undefined, true]);
    await expect(api.schema()).rejects.toMatchObject({ code: 'UNAUTHORIZED', status: 401 });
    expect(sent).toHaveLength(4);
  });

  it('rejects a stale update with CONFLICT and an unreachable server with NETWORK', async () => {
    const { fetch } = fakeFetch([{ status: 409, body: { error: { code: 'CONFLICT', message: 'stale' } } }]);
    const api = new EntityApi({ getToken: async () => 'tkn', fetch });
    await expect(api.update('task', 'k', { title: 'x' }, 1)).rejects.toMatchObject({ code: 'CONFLICT', status: 409 });
    await expect(api.schema()).rejects.toBeInstanceOf(ApiError);
    await expect(api.schema()).rejects.toMatchObject({ code: 'NETWORK' });
  });
});

describe('a tenant not configured', () => {
  it('is told by the FORBIDDEN that names it, and by nothing else', () => {
    expect(tenantNotConfigured(new ApiError('FORBIDDEN', "tenant 'hooli' is not configured", 403))).toBe(true);
    expect(tenantNotConfigured(new ApiError('FORBIDDEN', 'this role may not read task', 403))).toBe(false);
    expect(tenantNotConfigured(new ApiError('NOT_FOUND', "tenant 'hooli' is not configured", 404))).toBe(false);
    expect(tenantNotConfigured(new Error("tenant 'hooli' is not configured"))).toBe(false);
  });
});
