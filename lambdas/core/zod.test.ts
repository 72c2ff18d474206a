import { describe, expect, it } from '@jest/globals';
import * as z from './zod.ts';

describe('zod for the functions', () => {
  it("gives zod's English messages, not zod/mini's bare 'Invalid input'", () => {
    const schema = z.strictObject({ name: z.string().check(z.minLength(1)), count: z.number().check(z.int()) });
    expect(schema.safeParse({ name: '', count: 1.5, extra: true }).error?.issues.map((i) => i.message)).toEqual([
      'Too small: expected string to have >=1 characters',
      'Invalid input: expected int, received number',
      'Unrecognized key: "extra"',
    ]);
  });

  it('keeps a message given to a check', () => {
    const since = z.number().check(z.int('since must be an integer'), z.nonnegative('since must not be negative'));
    expect(since.safeParse(1.5).error?.issues[0]?.message).toBe('since must be an integer');
    expect(since.safeParse(-1).error?.issues[0]?.message).toBe('since must not be negative');
    expect(since.safeParse('1').error?.issues[0]?.message).toBe('Invalid input: expected number, received string');
  });
});
