import { describe, expect, it } from '@jest/globals';
import { BadRequestError, TooLargeError } from './errors.ts';
import { assertPublishData, publishDataProblem } from './publish-data.ts';

/** `{"a":{"a":…1…}}` nested `levels` objects deep. */
function nested(levels: number): unknown {
  let value: unknown = 1;
  for (let i = 0; i < levels; i++) value = { a: value };
  return value;
}

describe('published data', () => {
  it('allows 16 KB of JSON data and refuses one byte more with TOO_LARGE', () => {
    const exactly = 'a'.repeat(16 * 1024 - 2); // plus two quotes
    expect(() => assertPublishData(exactly)).not.toThrow();
    expect(() => assertPublishData(`${exactly}a`)).toThrow(TooLargeError);
  });

  it('counts bytes, not characters', () => {
    expect(() => assertPublishData('é'.repeat(8 * 1024))).toThrow(TooLargeError);
  });

  it('allows objects and arrays nested 32 deep, as DynamoDB does, and refuses 33 with BAD_REQUEST naming the rule', () => {
    expect(publishDataProblem(nested(32))).toBeUndefined();
    const problem = publishDataProblem(nested(33));
    expect(problem).toBeInstanceOf(BadRequestError);
    expect(problem?.message).toBe('data is nested more than 32 levels deep');
    expect(publishDataProblem([[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]])?.code).toBe(
      'BAD_REQUEST',
    );
  });

  it('refuses 5,000 levels of nesting without exhausting the stack', () => {
    const deep = JSON.parse(`${'['.repeat(5000)}1${']'.repeat(5000)}`);
    expect(publishDataProblem(deep)?.message).toMatch(/nested more than 32 levels/);
  });

  it('refuses an empty object key anywhere in the data', () => {
    expect(publishDataProblem({ '': 1 })?.message).toBe('data contains an empty object key');
    expect(publishDataProblem({ a: [{ b: { '': null } }] })?.code).toBe('BAD_REQUEST');
  });

  it('refuses numbers beyond ±(2^53 - 1), where integers stop being exact, and keeps the rest', () => {
    expect(publishDataProblem(JSON.parse('{"n":9007199254740993}'))?.message).toMatch(/beyond ±\(2\^53 - 1\)/);
    expect(publishDataProblem([-(2 ** 60)])?.code).toBe('BAD_REQUEST');
    expect(publishDataProblem([1.5e300])?.code).toBe('BAD_REQUEST');
    expect(
      publishDataProblem({ n: Number.MAX_SAFE_INTEGER, min: Number.MIN_SAFE_INTEGER, f: -3.25e-7 }),
    ).toBeUndefined();
  });

  it('requires data', () => {
    expect(publishDataProblem(undefined)?.message).toBe('data is required');
    expect(publishDataProblem(null)).toBeUndefined();
  });
});
