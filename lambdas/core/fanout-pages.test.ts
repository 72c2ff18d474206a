import { describe, expect, it } from '@jest/globals';
import fc from 'fast-check';
import type { FanoutJob } from './delivery.ts';
import { fitJob, pageJob } from './fanout-pages.ts';

const head = { tenantId: 'acme', group: 'big', batchSeq: 1 };
const bytes = (job: FanoutJob) => Buffer.byteLength(JSON.stringify(job), 'utf8');

/** What each connection gets from consecutive jobs, in job order. */
function received(jobs: readonly FanoutJob[]): Map<string, string[]> {
  const out = new Map<string, string[]>();
  for (const job of jobs) {
    for (const [id, indexes] of Object.entries(job.recipients)) {
      out.set(id, [...(out.get(id) ?? []), ...indexes.map((i) => job.frames[i] as string)]);
    }
  }
  return out;
}

/** A 32 KB frame of quote-heavy text: its JSON string is about twice as long. */
const quoteHeavy = (n: number) => `{"type":"message","data":"${'"'.repeat(16_000)}","n":${n}}`.padEnd(32 * 1024, ' ');

describe('fan-out pages', () => {
  it('store a frame shared by every connection once', () => {
    const job = pageJob(head, [
      ['c1', ['a', 'b']],
      ['c2', ['a', 'b']],
    ]);
    expect(job.frames).toEqual(['a', 'b']);
    expect(job.recipients).toEqual({ c1: [0, 1], c2: [0, 1] });
  });

  it("keep each connection's frame indexes rising, storing a frame again rather than pointing back", () => {
    const job = pageJob(head, [
      ['c1', ['a', 'b']],
      ['c2', ['b', 'a']],
    ]);
    expect(job.recipients.c2).toEqual([1, 2]);
    expect(received([job]).get('c2')).toEqual(['b', 'a']);
  });

  it('leave a job that fits as it is', () => {
    const job = pageJob(head, [['c1', ['a']]]);
    expect(fitJob(job, 256 * 1024)).toEqual([job]);
  });

  it('cut a page of 500 connections sharing ten quote-heavy 32 KB frames into jobs under 256 KiB, order kept', () => {
    const frames = Array.from({ length: 10 }, (_, n) => quoteHeavy(n));
    const entries = Array.from({ length: 500 }, (_, i) => [`connection-${i}`, frames] as const);
    const job = pageJob(head, entries);
    expect(bytes(job)).toBeGreaterThan(480 * 1024);
    const parts = fitJob(job, 255 * 1024);
    expect(parts.length).toBeGreaterThan(1);
    for (const part of parts) expect(bytes(part)).toBeLessThanOrEqual(255 * 1024);
    for (const [, got] of received(parts)) expect(got).toEqual(frames);
  });

  it('give every connection exactly its frames, in order, whatever the page and the limit', () => {
    fc.assert(
      fc.property(
        fc.array(fc.array(fc.constantFrom('a'.repeat(300), 'b'.repeat(500), 'c'.repeat(700), 'd'), { maxLength: 6 }), {
          minLength: 1,
          maxLength: 12,
        }),
        fc.integer({ min: 2_000, max: 6_000 }),
        (own, maxBytes) => {
          const entries = own.map((frames, i) => [`c${i}`, frames] as const);
          const parts = fitJob(pageJob(head, entries), maxBytes);
          for (const part of parts) expect(bytes(part)).toBeLessThanOrEqual(maxBytes);
          const got = received(parts);
          for (const [id, frames] of entries) expect(got.get(id) ?? []).toEqual(frames);
        },
      ),
    );
  });
});
