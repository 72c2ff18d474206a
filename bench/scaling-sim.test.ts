import { describe, expect, it } from '@jest/globals';
import { assumptions, model } from './scaling-sim.ts';

describe('the scaling model', () => {
  it('is bound by broadcaster parallelism for small groups and by the account throttle for huge ones', () => {
    expect(model(1_000, 50).boundBy).toBe('broadcaster parallelism');
    expect(model(1_000_000, 1_000_000).boundBy).toBe('@connections account throttle');
    expect(model(1_000_000, 1_000_000).deliverySeconds).toBeCloseTo(
      1_000_000 / assumptions.accountRequestsPerSecond,
      0,
    );
  });

  it('makes a reconnect storm last connections / the new-connection quota', () => {
    expect(model(1_000_000, 50).reconnectStormSeconds).toBe(2000);
  });

  it('costs about a fifth of the naive pattern per delivery when five messages share a frame', () => {
    const p = model(1_000, 50);
    expect(p.costPerMillionPacked / p.costPerMillionNaive).toBeGreaterThan(0.19);
    expect(p.costPerMillionPacked / p.costPerMillionNaive).toBeLessThan(0.22);
  });
});
