// Options and their defaults (config.ts): the first case moved from local/gateway.test.ts, then unit tests.
import { describe, expect, it } from '@jest/globals';
import { limits } from '../../lambdas/manifest.ts';
import { parseSelectionExpression, resolveConfig } from './config.ts';
import { start } from './test-harness.ts';

describe('messages', () => {
  it('refuses a maxInflightPerConnection that is not a positive integer, saying what it was given', async () => {
    await expect(start({ maxInflightPerConnection: 0 })).rejects.toThrow(
      'maxInflightPerConnection must be a positive integer, got 0',
    );
  });
});

describe('resolveConfig', () => {
  it('applies the manifest’s limits and API Gateway’s quotas by default', () => {
    const config = resolveConfig({ routes: {} });
    expect(config).toMatchObject({
      host: '127.0.0.1',
      wsPath: '/ws',
      stage: 'local',
      frameBytes: limits.frameBytes,
      idleTimeoutMs: limits.idleTimeoutSeconds * 1000,
      maxConnectionMs: limits.maxConnectionSeconds * 1000,
      postPayloadBytes: 128 * 1024,
      integrationTimeoutMs: 29_000,
      maxInflightPerConnection: 8,
      maxQueuedPerConnection: 64,
      faultInjection: false,
      selectionPath: ['action'],
    });
  });

  it('refuses a negative maxQueuedPerConnection, and accepts 0', () => {
    expect(() => resolveConfig({ routes: {}, maxQueuedPerConnection: -1 })).toThrow(
      'maxQueuedPerConnection must be a non-negative integer, got -1',
    );
    expect(resolveConfig({ routes: {}, maxQueuedPerConnection: 0 }).maxQueuedPerConnection).toBe(0);
  });
});

describe('parseSelectionExpression', () => {
  it('splits a $request.body path and refuses any other kind of expression', () => {
    expect(parseSelectionExpression('$request.body.meta.action')).toEqual(['meta', 'action']);
    expect(() => parseSelectionExpression('$request.body.')).toThrow('unsupported route selection expression');
    expect(() => parseSelectionExpression('$request.header.action')).toThrow('only $request.body.<path>');
  });
});
