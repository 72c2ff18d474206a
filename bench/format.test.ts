import { describe, expect, it } from '@jest/globals';
import { kilobytes, perConnectionMinute, withinBudget } from './format.ts';

describe('the figures the bench prints', () => {
  it('give bytes as kilobytes of 1,000 with one decimal', () => {
    expect(kilobytes(564_900)).toBe('564.9 KB');
    expect(kilobytes(700_000)).toBe('700.0 KB');
  });

  it('give a crossover rate with two decimals below 10, none above, and "never" when no rate qualifies', () => {
    expect(perConnectionMinute(0.2)).toBe('0.20');
    expect(perConnectionMinute(152.4)).toBe('152');
    expect(perConnectionMinute(null)).toBe('never');
    expect(perConnectionMinute(Number.POSITIVE_INFINITY)).toBe('never');
  });

  it('judge a bundle against the size and the import-time budget apart, each inclusive', () => {
    const budget = { bytes: 600_000, importMs: 100 };
    expect(withinBudget({ bytes: 600_000, importMs: 100 }, budget)).toEqual({ bytes: true, importMs: true });
    expect(withinBudget({ bytes: 600_001, importMs: 40 }, budget)).toEqual({ bytes: false, importMs: true });
  });
});
