/** The benchmark's markdown report, with a hand-drawn SVG bar chart of latency percentiles per scenario. */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { ScenarioResult } from './run.ts';
import { round } from './stats.ts';

function escapeXml(s: string): string {
  return s.replace(/[<>&"]/g, (c) => ({ '<': '&lt;', '>': '&gt;', '&': '&amp;', '"': '&quot;' })[c] as string);
}

/** Grouped bars (p50, p95, p99) per scenario, log-free linear scale capped at the largest p99. */
export function latencyChart(results: readonly ScenarioResult[]): string {
  const rows = results.filter((r) => Number.isFinite(r.latency.p99));
  const width = 900;
  const rowHeight = 34;
  const left = 260;
  const height = 40 + rows.length * rowHeight + 30;
  const max = Math.max(1, ...rows.map((r) => r.latency.p99));
  const x = (v: number) => left + ((width - left - 80) * v) / max;
  const colors = { p50: '#4c78a8', p95: '#f58518', p99: '#e45756' } as const;
  const parts: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" font-family="sans-serif" font-size="12">`,
    `<rect width="100%" height="100%" fill="white"/>`,
    `<text x="10" y="20" font-size="14" font-weight="bold">publish → receive latency (ms): p50, p95, p99</text>`,
  ];
  rows.forEach((r, i) => {
    const y = 40 + i * rowHeight;
    parts.push(`<text x="10" y="${y + 16}">${escapeXml(r.name)}</text>`);
    (['p50', 'p95', 'p99'] as const).forEach((p, j) => {
      const v = r.latency[p];
      parts.push(
        `<rect x="${left}" y="${y + j * 9}" width="${Math.max(1, x(v) - left)}" height="8" fill="${colors[p]}"/>`,
        `<text x="${x(v) + 4}" y="${y + j * 9 + 8}" font-size="9">${round(v, 1)}</text>`,
      );
    });
  });
  const ly = height - 16;
  Object.entries(colors).forEach(([k, c], i) => {
    parts.push(
      `<rect x="${left + i * 80}" y="${ly - 9}" width="10" height="10" fill="${c}"/>`,
      `<text x="${left + i * 80 + 14}" y="${ly}">${k}</text>`,
    );
  });
  parts.push('</svg>');
  return parts.join('\n');
}

export function writeReport(
  dir: string,
  stamp: string,
  summary: Record<string, unknown>,
  results: readonly ScenarioResult[],
): string {
  const svgName = `${stamp}.svg`;
  writeFileSync(join(dir, svgName), latencyChart(results));
  const s = summary as {
    machine: string;
    ratios: {
      burstThroughputVsRaw: number;
      p99At100VsRaw: number;
      naiveBurstThroughputVsRaw: number;
      naiveP99At100VsRaw: number;
    };
    p99At10PerSecondMs: number;
    postsPerDeliveryPacked?: number;
    postsPerDeliveryNaive?: number;
    cost?: {
      tenantcastPerMillionDeliveries: number;
      appSyncEventsPerMillionDeliveries: number;
      ratioVsAppSync: number;
      breakdownPerMillion: Record<string, number>;
    };
    fairness: { bAloneP99: number; bDuringFloodP99: number };
    postsPerSecondCeiling?: number;
    costDynamoUnitsPerMessage?: Record<string, number>;
  };
  const check = (ok: boolean) => (ok ? 'met' : '**not met**');
  const lines = [
    `# tenantcast benchmark, ${stamp}`,
    '',
    `Machine: ${s.machine}. Everything (clients, gateway, functions, stand-ins) runs on this one machine; latencies are`,
    'local and relative: what matters is the ratio to the plain `ws` server measured in the same run.',
    '',
    `![latency chart](${svgName})`,
    '',
    '## Targets',
    '',
    '| target | measured | |',
    '|---|---|---|',
    `| burst throughput ≥ 0.5× raw ws | ${s.ratios.burstThroughputVsRaw}× | ${check(s.ratios.burstThroughputVsRaw >= 0.5)} |`,
    `| p99 at 1000 conns, 100 msg/s ≤ 1.5× raw ws p99 | ${s.ratios.p99At100VsRaw}× | ${check(s.ratios.p99At100VsRaw <= 1.5)} |`,
    `| p99 at 1000 conns, 10 msg/s ≤ 50 ms | ${s.p99At10PerSecondMs} ms | ${check(s.p99At10PerSecondMs <= 50)} |`,
    `| PostToConnection per delivery ≤ 0.2 (packing on, 100 msg/s) | ${s.postsPerDeliveryPacked} | ${check((s.postsPerDeliveryPacked ?? 1) <= 0.2)} |`,
    `| modeled cost ≤ 0.25× AppSync Events (group of 50, 100 msg/s) | ${s.cost?.ratioVsAppSync}× | ${check((s.cost?.ratioVsAppSync ?? 1) <= 0.25)} |`,
    '',
    `Naive pattern (packing and coalescing off): burst throughput ${s.ratios.naiveBurstThroughputVsRaw}× raw, p99 at 100 msg/s ${s.ratios.naiveP99At100VsRaw}× raw, ${s.postsPerDeliveryNaive} PostToConnection per delivery.`,
    '',
    `Fairness: tenant B's p99 at 10 msg/s was ${s.fairness.bAloneP99} ms alone and ${s.fairness.bDuringFloodP99} ms while tenant A flooded.`,
    '',
    `This machine's \`@connections\` ceiling: ${s.postsPerSecondCeiling} PostToConnection/s (AWS SDK, 32 in flight, from one`,
    'thread to the local gateway, measured in this run). Every frame the pipeline delivers is one such post, made by a',
    'function sandbox sharing the same cores, so frames/s through the pipeline stay below it; at 1000 connections and',
    '10 msg/s (one message per frame) the pipeline would need about 10 000 posts/s.',
    '',
    '## Modeled cost per million deliveries',
    '',
    `tenantcast $${s.cost?.tenantcastPerMillionDeliveries} (${Object.entries(s.cost?.breakdownPerMillion ?? {})
      .map(([k, v]) => `${k} $${v}`)
      .join(
        ', ',
      )}) vs AppSync Events $${s.cost?.appSyncEventsPerMillionDeliveries}. Prices: bench/cost.ts. Lambda GB-s`,
    'use the billed durations measured here: each invocation runs alone in its sandbox (worker thread), as in Lambda,',
    'but sandboxes share two cores, so durations include waiting for CPU (an overestimate of Lambda durations).',
    '',
    `DynamoDB capacity units per published message in the cost run, by item kind: ${Object.entries(
      s.costDynamoUnitsPerMessage ?? {},
    )
      .map(([k, v]) => `${k} ${v}`)
      .join('; ')}.`,
    '',
    '## Scenarios',
    '',
    '| scenario | conns | msgs | rate | delivered/expected | dupes | frames | p50 | p95 | p99 | deliveries/s | posts/delivery | DynamoDB RU/WU per delivery | SQS req/delivery |',
    '|---|---|---|---|---|---|---|---|---|---|---|---|---|---|',
    ...results.map(
      (r) =>
        `| ${r.name} | ${r.connections} | ${r.messages} | ${r.rate} | ${r.delivered}/${r.expected} | ${r.duplicates} | ${r.frames} | ${round(r.latency.p50)} | ${round(r.latency.p95)} | ${round(r.latency.p99)} | ${r.deliveriesPerSecond} | ${r.perDelivery?.postToConnection ?? '–'} | ${r.perDelivery ? `${r.perDelivery.dynamoReadUnits} / ${r.perDelivery.dynamoWriteUnits}` : '–'} | ${r.perDelivery?.sqsRequests ?? '–'} |`,
    ),
    '',
  ];
  const path = join(dir, `${stamp}.md`);
  writeFileSync(path, lines.join('\n'));
  return path;
}
