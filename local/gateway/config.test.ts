// Options and their defaults (config.ts): moved from local/gateway.test.ts.
import { describe, expect, it } from '@jest/globals';
import { start } from './test-harness.ts';

describe('messages', () => {
  it('refuses a maxInflightPerConnection that is not a positive integer, saying what it was given', async () => {
    await expect(start({ maxInflightPerConnection: 0 })).rejects.toThrow(
      'maxInflightPerConnection must be a positive integer, got 0',
    );
  });
});
