/** The benchmark's markdown report, with a hand-drawn SVG bar chart of latency percentiles per scenario. */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { prices } from './cost.ts';
import { kilobytes, perConnectionMinute, withinBudget } from './format.ts';
import { round } from './stats.ts';
import type {
  BundleFigures,
  LargeGroupFigures,
  ProfileFigures,
  ProfileUnitCosts,
  ScenarioResult,
  Summary,
  TargetCheck,
} from './types.ts';

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

/** The title and how the run was made: machine, load, commit, sandboxes, sweeps, durations, warm-ups. */
function headerSection(stamp: string, s: Summary): string[] {
  return [
    `# tenantcast benchmark, ${stamp}`,
    '',
    `Machine: ${s.machine}; load average ${s.loadAverage.join(' / ')} at the start. Everything (clients, gateway,`,
    'functions, stand-ins) runs on this one machine; latencies are local and relative: what matters is the ratio to',
    'the plain `ws` server and to the post ceiling, both measured in the same run.',
    ...(s.commit === undefined ? [] : [`Commit measured: ${s.commit}.`]),
    ...(s.options.maxSandboxes === undefined
      ? []
      : [`Each function ran in at most ${s.options.maxSandboxes} sandboxes (worker threads) at once.`]),
    ...(s.options.ttlSweeps === false
      ? [
          "The local DynamoDB's TTL sweeper was off: its Scan of the whole table holds the one-threaded stand-in for tens of",
          "milliseconds, which AWS's background TTL never does to requests.",
        ]
      : []),
    ...(typeof s.options.keepUpSeconds === 'number'
      ? [
          `The large group's 100 msg/s scenarios publish for ${s.options.keepUpSeconds} s, the other paced ones for ${s.options.rateSeconds} s: keeping up counts`,
          'deliveries/s from the first publish to the last delivery, so a short run would also count the latency of the',
          'last delivery against it.',
        ]
      : []),
    ...(typeof s.options.burstWarmUps === 'number' && s.options.burstWarmUps > 0
      ? [
          `Each burst (plain \`ws\` and the pipeline's) ran ${s.options.burstWarmUps} unmeasured time(s) (JIT warm-up), then ${s.options.burstRuns ?? 1} measured time(s),`,
          'on the same server or runtime; its row below is the measured run with the median deliveries/s, and "Bursts" lists',
          'every run. The other scenarios run after them. The naive burst is not warmed (one takes about a minute): its',
          'ratio to the warmed plain `ws` burst is a cold one.',
        ]
      : []),
  ];
}

/** The SDK's post ceiling beside the gateway's, and the round it defines. */
function ceilingSection(s: Summary): string[] {
  const c = s.sdkCeiling;
  return [
    '## The ceiling',
    '',
    `The AWS SDK's PostToConnection against a bare Node HTTP server in another process that answers 200 at once,`,
    `${c.inFlight} calls in flight, ${c.calls} calls: **${c.postsPerSecond} posts/s**, ${c.cpuMicrosPerPost} µs of client CPU per`,
    `post. The same calls to the local gateway's \`@connections\` API: ${s.gatewayPostsPerSecond} posts/s. Every frame the`,
    'pipeline delivers is one such post, so frames/s ÷ the SDK ceiling (column "× ceiling" below) says how close a',
    "scenario ran to it. The ceiling is one posting thread's, as one fan-out sandbox posts; the pipeline runs up to two",
    'such sandboxes, so a scenario that leaves them the CPU can go over 1×.',
    `A **round** is ${s.options.connections} connections ÷ the SDK ceiling = ${round(s.roundSeconds * 1000)} ms: the time one posting thread takes to send`,
    `one frame to every connection here. One page of ${c.pageSize} members (its DynamoDB Query, ${c.cpuMicrosPerPageQuery} µs, plus one post`,
    `per member) costs ${c.cpuMsPerPage} ms of CPU; docs/scaling.md scales these to Lambda.`,
    '',
  ];
}

/** Each target of issue #14 with its verdict, the bursts' runs, the naive pattern and fairness. */
function targetsSection(s: Summary, results: readonly ScenarioResult[]): string[] {
  return [
    '## Targets (issue #14)',
    '',
    '| target | measured | verdict | why not, as measured |',
    '|---|---|---|---|',
    ...s.targets.map((t) => `| ${t.target} | ${t.measured} | ${targetStatus(t)} | ${t.reason} |`),
    '',
    ...burstRuns(results),
    `Naive pattern (packing and coalescing off): burst throughput ${s.ratios.naiveBurstThroughputVsRaw}× raw, p99 at 100 msg/s ${s.ratios.naiveP99At100VsRaw}× raw, ${s.postsPerDeliveryNaive} PostToConnection per delivery.`,
    '',
    `Fairness: tenant B's p99 at 10 msg/s was ${s.fairness.bAloneP99} ms alone and ${s.fairness.bDuringFloodP99} ms while tenant A flooded.`,
    '',
  ];
}

/** The modeled bill of the cost run beside AppSync Events, and its DynamoDB units by item kind. */
function costSection(s: Summary): string[] {
  return [
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
  ];
}

/** Every scenario's row: deliveries, latencies, rounds, the ceiling's share, machine CPU, posts and AWS requests. */
function scenariosSection(results: readonly ScenarioResult[]): string[] {
  return [
    '## Scenarios',
    '',
    'Machine CPU: cores busy across every process (gateway, sandboxes, stand-ins, the receivers) from the first publish',
    'to the last delivery, from /proc/stat, and that CPU time per delivery.',
    '',
    '| scenario | conns | msgs | rate | delivered/expected | dupes | frames | p50 | p95 | p99 | p99 rounds | deliveries/s | × ceiling | machine CPU: cores busy, µs/delivery | posts/delivery | DynamoDB RU/WU per delivery | SQS req/delivery |',
    '|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|',
    ...results.map(
      (r) =>
        `| ${r.name} | ${r.connections} | ${r.messages} | ${r.rate} | ${r.delivered}/${r.expected} | ${r.duplicates} | ${r.frames} | ${round(r.latency.p50)} | ${round(r.latency.p95)} | ${round(r.latency.p99)} | ${r.p99Rounds ?? '–'} | ${r.deliveriesPerSecond} | ${r.framesVsSdkCeiling ?? '–'} | ${r.machine ? `${r.machine.busyCores} of ${r.machine.cores}, ${r.machine.cpuMicrosPerDelivery}` : '–'} | ${r.perDelivery?.postToConnection ?? '–'} | ${r.perDelivery ? `${r.perDelivery.dynamoReadUnits} / ${r.perDelivery.dynamoWriteUnits}` : '–'} | ${r.perDelivery?.sqsRequests ?? '–'} |`,
    ),
    '',
  ];
}

export function writeReport(dir: string, stamp: string, s: Summary, results: readonly ScenarioResult[]): string {
  const svgName = `${stamp}.svg`;
  writeFileSync(join(dir, svgName), latencyChart(results));
  const lines = [
    ...headerSection(stamp, s),
    '',
    `![latency chart](${svgName})`,
    '',
    ...ceilingSection(s),
    ...targetsSection(s, results),
    ...costSection(s),
    ...profilesSection(s.profiles, s.profileUnitCosts),
    ...largeGroupSection(s.largeGroup),
    ...bundlesSection(s.bundles),
    ...scenariosSection(results),
  ];
  const path = join(dir, `${stamp}.md`);
  writeFileSync(path, lines.join('\n'));
  return path;
}

/** One line per scenario that ran several times: every run's deliveries/s, warm-ups first, and how far they spread. */
export function burstRuns(results: readonly ScenarioResult[]): string[] {
  const repeated = results.filter((r) => r.runs !== undefined);
  const lines = repeated.map((r) => {
    const measured = r.runs?.measured ?? [];
    const spread = (Math.max(...measured) - Math.min(...measured)) / r.deliveriesPerSecond;
    const flag = spread > 0.1 ? ": more than 10 %, the machine's speed moved within the scenario" : '';
    return `- ${r.name}: warm-ups ${r.runs?.warmUps.join(', ') || 'none'}; measured ${measured.join(', ')} (median ${r.deliveriesPerSecond}; spread ${Math.round(spread * 100)} % of it${flag})`;
  });
  const raw = repeated.find((r) => r.system === 'raw-ws' && r.rate === 'burst')?.runs?.measured;
  const pipeline = repeated.find((r) => r.system === 'pipeline' && r.rate === 'burst')?.runs?.measured;
  if (raw !== undefined && pipeline !== undefined) {
    const low = Math.min(...pipeline) / Math.max(...raw);
    const high = Math.max(...pipeline) / Math.min(...raw);
    lines.push(
      `- the burst ratio over the measured runs, any pipeline run against any plain \`ws\` run: ${round(low, 3)}× to ${round(high, 3)}×`,
    );
  }
  return lines.length === 0 ? [] : ['Bursts, deliveries/s of each run:', '', ...lines, ''];
}

/** A target's verdict: met, reported (a figure asked for, with no threshold to reach), or not met. */
export function targetStatus(t: TargetCheck): string {
  if (!t.met) return '**not met**';
  return t.reported === true ? 'reported (no threshold)' : 'met';
}

/** Target 5: the cost model's workload profiles, priced with the run's unit costs. */
export function profilesSection(
  profiles: readonly ProfileFigures[] | undefined,
  unitCosts?: ProfileUnitCosts,
): string[] {
  if (profiles === undefined || profiles.length === 0) return [];
  const writes =
    unitCosts === undefined
      ? ''
      : ` (this run: ${unitCosts.lambdaMsPerPost} ms of Lambda time per post; ${unitCosts.dynamoWriteUnitsPerMessage} DynamoDB write units per message and ${unitCosts.dynamoWriteUnitsPerRun} per broadcaster run ${unitCosts.writesFromRun ? 'from the cost run' : "from bench/cost.ts's defaults, the cost run having none"})`;
  return [
    '## Cost across workloads',
    '',
    `The cost model's profiles (bench/cost.ts, \`profiles\`), per minute. Priced with this run's unit costs where it has`,
    `them${writes}, the model's defaults for the rest. API Gateway bills connection-minutes at $${prices.apiGatewayConnectionMinutesPerMillion} per million,`,
    `AppSync Events at $${prices.appSyncConnectionMinutesPerMillion}, so where nothing is packed AppSync Events is cheaper. Crossover: the least deliveries per`,
    'connection-minute from which tenantcast is cheaper for the profile\'s shape (docs/scaling.md, "Cost across workloads,',
    'beside AppSync Events"). The busy profile assumes a full SQS batch of 10 messages per run and per frame, a model:',
    'the cost run above is what this machine packed for the same group, and its ratio is the one the cost target judges.',
    '',
    '| profile | deliveries/min | messages per frame | tenantcast $/min | AppSync Events $/min | ratio | crossover, packing as profiled | crossover, packing within 0.5 s |',
    '|---|---|---|---|---|---|---|---|',
    ...profiles.map(
      (p) =>
        `| ${p.name} | ${p.deliveriesPerMinute.toLocaleString('en')} | ${p.messagesPerFrame} | ${p.tenantcastPerMinute} | ${p.appSyncPerMinute} | ${p.ratio} | ${perConnectionMinute(p.crossover)} | ${perConnectionMinute(p.crossoverPackedWithinHalfSecond)} |`,
    ),
    '',
  ];
}

/** Target 6: one message to a very large group, by the scaling model with the run's CPU constants. */
export function largeGroupSection(g: LargeGroupFigures | undefined): string[] {
  if (g === undefined) return [];
  return [
    `## A ${g.members.toLocaleString('en')}-member group, modeled from this run`,
    '',
    `The scaling model (bench/scaling-sim.ts, \`deliverGroup\`; docs/scaling.md) with this run's CPU per post, ${g.cpuMsPerPost} ms,`,
    `over the fan-out function's CPU share at ${g.fanoutMemoryMB} MB (${g.mbPerVcpu.toLocaleString('en')} MB = one vCPU): ${round(g.lambdaMsPerPost, 3)} ms per post. The broadcaster`,
    `reads the members and splits one message into ${g.pages} pages in ${g.lanes} lanes (the fan-out queue's message groups),`,
    `${g.fanoutInvocations} fan-out invocations in all; the lanes post in parallel, ${Math.round(g.postsPerSecond)} posts/s together`,
    `(${round(g.accountQuotaShare * 100)} % of the account's ${g.accountRequestsPerSecond.toLocaleString('en')}/s \`@connections\` quota; bound by ${g.quotaBound ? 'that quota' : g.boundBy}). About`,
    `**${round(g.seconds, 1)} s** from the broadcaster's run to the last post: ${round(g.readSeconds, 1)} s reading the members (an upper`,
    `bound: pages are posted as they are read), ${round(g.postSeconds, 1)} s posting.`,
    '',
  ];
}

/** Target 3: each function's bundle as a deploy builds it. */
export function bundlesSection(b: BundleFigures | undefined): string[] {
  if (b === undefined || b.functions.length === 0) return [];
  const mark = (ok: boolean) => (ok ? 'met' : '**not met**');
  return [
    '## Cold start',
    '',
    `Every function built as \`cdk synth\` builds it (\`npm run bundles\`, scripts/bundles.ts), its \`index.mjs\` sized and imported in`,
    `a fresh Node process with its deployed environment, median of ${b.runs}, before the scenarios ran. The functions are deployed on`,
    `${b.runtime}; this machine's Node imported them. A proxy for a cold start's own part (loading the code): Lambda's`,
    'start of the sandbox and runtime around it is not measured here.',
    '',
    `| function | bundle | ≤ ${b.budget.bytes / 1000} KB | import | ≤ ${b.budget.importMs} ms |`,
    '|---|---|---|---|---|',
    ...b.functions.map((f) => {
      const within = withinBudget(f, b.budget);
      return `| ${f.name} | ${kilobytes(f.bytes)} | ${mark(within.bytes)} | ${f.importMs} ms | ${mark(within.importMs)} |`;
    }),
    '',
  ];
}
