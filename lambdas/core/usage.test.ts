import { describe, expect, it } from '@jest/globals';
import { BadRequestError } from './errors.ts';
import { parseUsageRange } from './usage.ts';

const now = Date.parse('2025-03-15T12:00:00Z');

describe('a usage range', () => {
  it('defaults to the 30 days up to today', () => {
    expect(parseUsageRange({}, now)).toEqual({ from: '2025-02-14', to: '2025-03-15' });
  });

  it('takes from and to as given, inclusive', () => {
    expect(parseUsageRange({ from: '2025-01-01', to: '2025-01-31' }, now)).toEqual({
      from: '2025-01-01',
      to: '2025-01-31',
    });
  });

  it.each([
    [{ from: '2025-13-01' }, 'from'],
    [{ to: '15/03/2025' }, 'to'],
    [{ from: '2025-02-30' }, 'from'],
    [{ from: '2025-03-10', to: '2025-03-01' }, "'from' must not be after 'to'"],
    [{ from: '2020-01-01', to: '2025-01-01' }, 'at most 366 days'],
  ])('refuses %j as BAD_REQUEST naming the problem', (query, message) => {
    expect(() => parseUsageRange(query, now)).toThrow(BadRequestError);
    expect(() => parseUsageRange(query, now)).toThrow(message);
  });
});
