import type { IncomingMessage } from 'node:http';
import { describe, expect, it } from '@jest/globals';
import { originAllowed } from '../lambdas/core/authorize.ts';
import { HTTP_API_CORS } from '../lib/http-api-cors.ts';
import { isCorsHeader, preflightHeaders, responseHeaders } from './http-cors.ts';

const config = { ...HTTP_API_CORS, allowOrigins: ['https://app.example.com', 'http://*'] };
const request = (method: string, headers: Record<string, string>) =>
  ({ method, headers }) as unknown as IncomingMessage;

describe('CORS as the HTTP API applies it', () => {
  it('allows a listed origin, any origin under *, and any origin of a scheme under https://* or http://*', () => {
    const allowed = config.allowOrigins;
    expect(originAllowed(allowed, 'https://app.example.com')).toBe(true);
    expect(originAllowed(allowed, 'https://App.Example.com')).toBe(true);
    expect(originAllowed(allowed, 'http://localhost:5173')).toBe(true);
    expect(originAllowed(allowed, 'https://evil.example')).toBe(false);
    expect(originAllowed(allowed, 'https://app.example.com.evil.example')).toBe(false);
    expect(originAllowed(['*'], 'https://anything.example')).toBe(true);
  });

  it('answers a preflight only with Origin and Access-Control-Request-Method, with headers for an allowed origin', () => {
    const from = (origin: string) =>
      preflightHeaders(config, request('OPTIONS', { origin, 'access-control-request-method': 'PATCH' }));
    expect(from('https://app.example.com')).toEqual({
      'access-control-allow-origin': 'https://app.example.com',
      'access-control-allow-methods': 'GET,POST,PUT,PATCH,DELETE',
      'access-control-allow-headers': 'authorization,content-type,if-match',
      'access-control-max-age': '3600',
    });
    expect(from('https://evil.example')).toEqual({});
    expect(preflightHeaders(config, request('OPTIONS', { origin: 'https://app.example.com' }))).toBeUndefined();
    expect(preflightHeaders(config, request('GET', { origin: 'https://app.example.com' }))).toBeUndefined();
  });

  it('adds the origin and the exposed headers to the answers of an allowed origin only, and sees CORS headers', () => {
    expect(responseHeaders(config, request('GET', { origin: 'https://app.example.com' }))).toEqual({
      'access-control-allow-origin': 'https://app.example.com',
      'access-control-expose-headers': 'etag',
    });
    expect(
      responseHeaders({ ...config, allowOrigins: ['*'] }, request('GET', { origin: 'https://x.example' })),
    ).toEqual({ 'access-control-allow-origin': '*', 'access-control-expose-headers': 'etag' });
    expect(responseHeaders(config, request('GET', { origin: 'https://evil.example' }))).toEqual({});
    expect(responseHeaders(config, request('GET', {}))).toEqual({});
    expect(isCorsHeader('Access-Control-Allow-Origin')).toBe(true);
    expect(isCorsHeader('etag')).toBe(false);
  });
});
