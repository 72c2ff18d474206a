import { describe, expect, it } from '@jest/globals';
import { addFault, faultFor } from './faults.ts';
import type { ActiveFault } from './types.ts';

describe('addFault', () => {
  it('refuses when fault injection is off, and rejects a rate outside 0..1 or an unknown status', () => {
    const faults = new Set<ActiveFault>();
    expect(() => addFault(faults, false, { status: 410 })).toThrow('fault injection is off');
    expect(() => addFault(faults, true, { rate: 1.5 })).toThrow('fault rate must be between 0 and 1 (got 1.5)');
    expect(() => addFault(faults, true, { status: 404 as 410 })).toThrow('fault status must be 410, 413, 429 or 500');
    expect(faults.size).toBe(0);
  });

  it('returns a function that removes the fault it added', () => {
    const faults = new Set<ActiveFault>();
    const remove = addFault(faults, true, { status: 429 });
    expect(faults.size).toBe(1);
    remove();
    expect(faults.size).toBe(0);
  });
});

describe('faultFor', () => {
  it('applies a fault only to its connections and removes it once its count is used up', () => {
    const faults = new Set<ActiveFault>();
    addFault(faults, true, { status: 410, count: 2, connectionIds: ['a'] });
    expect(faultFor(faults, 'b')).toBeUndefined();
    expect(faultFor(faults, 'a')?.status).toBe(410);
    expect(faultFor(faults, 'a')?.status).toBe(410);
    expect(faultFor(faults, 'a')).toBeUndefined();
    expect(faults.size).toBe(0);
  });

  it('skips a post when the draw is at or above the rate', () => {
    const faults = new Set<ActiveFault>();
    addFault(faults, true, { status: 500, rate: 0.5 });
    expect(faultFor(faults, 'a', () => 0.5)).toBeUndefined();
    expect(faultFor(faults, 'a', () => 0.49)?.status).toBe(500);
  });
});
