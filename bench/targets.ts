/**
 * The targets of issue #14, judged on one run's measurements, each with the measured reason when it is not met; and
 * the ceiling figures per scenario (frames posted per second ÷ the SDK post ceiling, p99 in rounds).
 */

import { prices, WRITE_ACTIONS, writeUnitsOf } from './cost.ts';
import { kilobytes, perConnectionMinute, withinBudget } from './format.ts';
import { round } from './stats.ts';
import type {
  BundleFigures,
  CostSummary,
  LargeGroupFigures,
  ProfileFigures,
  ScenarioResult,
  TargetCheck,
} from './types.ts';

/** Scenario names the targets read (bench/run.ts names its scenarios with these). */
export const scenarios = {
  rawBurst: 'raw burst',
  raw100: 'raw 100/s',
  raw10: 'raw 10/s',
  rawBusy: (size: number) => `raw: group of ${size} at 100/s`,
  burst: 'pipeline burst',
  at100: 'pipeline 100/s',
  at10: 'pipeline 10/s',
  busy: (size: number) => `cost: group of ${size} at 100/s`,
} as const;

/** One round: what posting one frame to every connection takes at the SDK ceiling, in seconds. */
export function roundSeconds(connections: number, sdkPostsPerSecond: number): number {
  return connections / sdkPostsPerSecond;
}

const framesPosted = (r: ScenarioResult) => r.posts ?? r.frames;
const framesPerSecond = (r: ScenarioResult) => (r.seconds > 0 ? framesPosted(r) / r.seconds : Number.NaN);
const messagesPerFrame = (r: ScenarioResult) => r.delivered / Math.max(1, framesPosted(r));

/**
 * Adds frames/s ÷ SDK ceiling to every scenario that posts (pipeline, naive), and p99 in rounds to every scenario at
 * `connections` (the run's large group).
 */
export function withCeiling(
  results: readonly ScenarioResult[],
  sdkPostsPerSecond: number,
  connections: number,
): ScenarioResult[] {
  const roundMs = roundSeconds(connections, sdkPostsPerSecond) * 1000;
  return results.map((r) => ({
    ...r,
    ...(r.system !== 'raw-ws' && { framesVsSdkCeiling: round(framesPerSecond(r) / sdkPostsPerSecond, 3) }),
    ...(r.connections === connections && { p99Rounds: round(r.latency.p99 / roundMs, 2) }),
  }));
}

/** Where the scenario's time went, in measured terms: posting rate against the ceiling and packing. */
function postingNote(r: ScenarioResult, ceiling: number, raw?: ScenarioResult, neededPerSecond?: number): string {
  const ratio = framesPerSecond(r) / ceiling;
  const figures = `${Math.round(framesPerSecond(r))} frames/s = ${round(ratio, 2)}× the SDK ceiling (${ceiling}/s), ${round(messagesPerFrame(r), 1)} messages per frame`;
  const posting =
    ratio >= 0.8
      ? `${figures}: bound by posting, it needs more messages per frame`
      : `${figures}: below 0.8× the ceiling, so posting alone is not the limit`;
  return `${posting}${machineNote(r, raw, neededPerSecond)}`;
}

/**
 * What the machine's CPU says: how busy its cores were, what the pipeline spent per delivery against raw `ws`, and how
 * many cores the target's rate would take at that cost.
 */
function machineNote(r: ScenarioResult, raw?: ScenarioResult, neededPerSecond?: number): string {
  const m = r.machine;
  if (m === undefined) return '';
  const bound = m.busyCores >= 0.85 * m.cores;
  const versus = raw?.machine ? ` (raw \`ws\`: ${round(raw.machine.cpuMicrosPerDelivery, 1)} µs)` : '';
  const needs =
    neededPerSecond === undefined
      ? ''
      : `; ${Math.round(neededPerSecond)} deliveries/s at that cost would take ${round((neededPerSecond * m.cpuMicrosPerDelivery) / 1e6, 1)} cores`;
  return `; the machine's ${m.cores} cores were ${round(m.busyCores, 2)} busy${bound ? ' (CPU-bound)' : ''}, ${round(m.cpuMicrosPerDelivery, 1)} µs of CPU per delivery across every process${versus}${needs}`;
}

/**
 * Posts are API Gateway messages ($1 per million): how few posts per delivery 0.2× AppSync Events would take if the
 * whole difference came from posts, and what that means for how far apart a group's frames must be at its rate. A
 * message waits for its group's next frame, so spacing frames further apart adds about the difference to the p99: the
 * run's own p99 less its own frame gap is the rest of the pipeline's latency, and that plus the gap 0.2× needs is
 * what the same group's p99 would come to, set against the busy group's latency target (`latencyLimitMs`).
 */
function framesNote(r: ScenarioResult | undefined, cost: CostSummary, latencyLimitMs?: number): string {
  if (r === undefined || r.posts === undefined || r.delivered === 0 || typeof r.rate !== 'number') return '';
  const postsPerDelivery = r.posts / r.delivered;
  // Dollars per million deliveries over the target, and what one post per delivery costs per million deliveries.
  const excess = cost.tenantcastPerMillionDeliveries - 0.2 * cost.appSyncEventsPerMillionDeliveries;
  const allowed = postsPerDelivery - excess / prices.apiGatewayMessagesPerMillion;
  if (allowed <= 0) return '';
  const perFrame = 1 / allowed;
  const neededGapMs = (perFrame / r.rate) * 1000;
  const note = `; ${round(postsPerDelivery, 3)} posts per delivery (${round(messagesPerFrame(r), 1)} messages per frame): 0.2× needs at most ${round(allowed, 3)} (${round(perFrame, 1)} messages per frame), frames at least ${Math.round(neededGapMs)} ms apart at ${r.rate} msg/s, which p99 latency then adds to`;
  if (latencyLimitMs === undefined) return note;
  const gapMs = (messagesPerFrame(r) / r.rate) * 1000;
  const restMs = r.latency.p99 - gapMs;
  const predictedMs = neededGapMs + restMs;
  const verdict = predictedMs > latencyLimitMs ? 'over' : 'within';
  return `${note}: this run's frames were ${Math.round(gapMs)} ms apart and its p99 ${round(r.latency.p99)} ms, ${Math.round(restMs)} ms beyond the gap; ${Math.round(neededGapMs)} ms apart would put the p99 near ${Math.round(predictedMs)} ms, ${verdict} the busy group's ${round(latencyLimitMs)} ms target`;
}

/**
 * A burst's time in two parts: sequencing (the group's FIFO hands out one batch of at most 10 at a time, so its
 * messages get their seqs in runs back to back) and the delivery after the last seq, about a round: every connection
 * needs one more frame, the one with the last message (lanes may read it as soon as the counter is raised, a little
 * before the run ends).
 */
function sequencingNote(burst: ScenarioResult, roundMs: number, neededPerSecond: number): string {
  if (burst.sequencedMs === undefined) return '';
  const totalMs = burst.seconds * 1000;
  const budgetMs = (burst.delivered / neededPerSecond) * 1000;
  const after = totalMs - burst.sequencedMs;
  // The end of the broadcaster's last run is stamped when the runtime's thread hears of it: an upper bound.
  const rest =
    after > 0
      ? `, and the last delivery came ${Math.round(after)} ms after that (every connection needs the frame with the last message: one frame to each takes a round, ${Math.round(roundMs)} ms, at the SDK ceiling)`
      : '';
  return `; the last message was sequenced (its run's pages queued) by ${Math.round(burst.sequencedMs)} ms after the first publish${rest}; 0.5× raw needs the whole burst within ${Math.round(budgetMs)} ms`;
}

/** How plain `ws` itself kept up with the same offered rate on the same machine: the bound the target sits under. */
function rawPaceNote(raw: ScenarioResult | undefined, roundMs: number): string {
  if (raw === undefined || typeof raw.rate !== 'number') return '';
  const offered = raw.connections * raw.rate;
  return `; plain \`ws\` on this machine in the same run: ${round(raw.deliveriesPerSecond / offered, 3)} × offered, p99 ${round(raw.latency.p99 / roundMs, 2)} rounds`;
}

export interface TargetInput {
  results: readonly ScenarioResult[];
  sdkPostsPerSecond: number;
  /** The run's large group (the "1000-connection" scenarios). */
  connections: number;
  costGroup: number;
  cost?: CostSummary;
  dynamoWriteUnitsPerMessage?: number;
  dynamoUnitsPerMessage?: Record<string, number>;
  postsPerDeliveryPacked?: number;
  /** Target 2: the local gateway's own `@connections` rate beside the SDK ceiling, and the SDK's CPU per post. */
  gatewayPostsPerSecond?: number;
  cpuMicrosPerPost?: number;
  bundles?: BundleFigures;
  profiles?: readonly ProfileFigures[];
  largeGroup?: LargeGroupFigures;
}

/**
 * How the write units per message follow the size of the broadcaster's runs (one counter raise per run): messages
 * per run, and how many the target needs. Empty when the run carries no counter raise.
 */
function runSizeNote(unitsByKind: Readonly<Record<string, number>>): string {
  const split = writeUnitsOf(unitsByKind);
  if (split === undefined) return '';
  const need =
    split.perMessage < 2.5
      ? `the target needs at least ${round(split.perRun / (2.5 - split.perMessage), 1)} messages per run`
      : 'the per-message writes alone exceed the target';
  return `; ${round(split.messagesPerRun, 1)} messages per broadcaster run, each run writing ${round(split.perRun, 1)} units (the group's counter, a progress record, usage) whatever its size: ${need}`;
}

function check(target: string, measured: string, met: boolean, reason: () => string): TargetCheck {
  return { target, measured, met, reason: met ? '' : reason() };
}

/** A target with nothing to reach but to be measured or modeled and stated: met when the run produced it. */
function reported(target: string, measured: string, produced: boolean, reason: () => string): TargetCheck {
  return { ...check(target, measured, produced, reason), reported: true };
}

/** What every target's check reads: the run's input, its scenarios by name, the ceiling and the round. */
interface Run {
  readonly input: TargetInput;
  readonly find: (name: string) => ScenarioResult | undefined;
  readonly ceiling: number;
  readonly roundMs: number;
}

function burstCheck({ find, ceiling, roundMs }: Run): TargetCheck[] {
  const rawBurst = find(scenarios.rawBurst);
  const burst = find(scenarios.burst);
  if (!rawBurst || !burst) return [];
  const ratio = burst.deliveriesPerSecond / rawBurst.deliveriesPerSecond;
  const needed = 0.5 * rawBurst.deliveriesPerSecond;
  return [
    check(
      'burst throughput ≥ 0.5× raw `ws`',
      `${round(ratio, 3)}× (${burst.deliveriesPerSecond} vs ${rawBurst.deliveriesPerSecond} deliveries/s)`,
      ratio >= 0.5,
      () =>
        `${postingNote(burst, ceiling, rawBurst, needed)}; 0.5× raw would need ${round(needed / ceiling, 1)} messages per frame at the SDK ceiling${sequencingNote(burst, roundMs, needed)}`,
    ),
  ];
}

function keepUpCheck({ find, ceiling, roundMs }: Run): TargetCheck[] {
  const at100 = find(scenarios.at100);
  if (!at100) return [];
  const offered = at100.connections * (typeof at100.rate === 'number' ? at100.rate : Number.NaN);
  const keepsUp = at100.deliveriesPerSecond / offered;
  const rounds = at100.latency.p99 / roundMs;
  return [
    check(
      `${at100.connections} connections × 100 msg/s: delivered/s ≥ 0.95 × offered and p99 ≤ 2 rounds`,
      `${round(keepsUp, 3)} × offered (${at100.deliveriesPerSecond} of ${offered}/s), p99 ${round(at100.latency.p99)} ms = ${round(rounds, 2)} rounds of ${round(roundMs)} ms`,
      keepsUp >= 0.95 && rounds <= 2,
      () =>
        `${postingNote(at100, ceiling, find(scenarios.raw100), 0.95 * offered)}${rawPaceNote(find(scenarios.raw100), roundMs)}`,
    ),
  ];
}

function quietRateCheck({ find, ceiling, roundMs }: Run): TargetCheck[] {
  const at10 = find(scenarios.at10);
  if (!at10) return [];
  return [
    check(
      `${at10.connections} connections × 10 msg/s: p99 ≤ 1.5 s`,
      `${round(at10.latency.p99)} ms (${round(at10.latency.p99 / roundMs, 2)} rounds)`,
      at10.latency.p99 <= 1500,
      () => postingNote(at10, ceiling, find(scenarios.raw10)),
    ),
  ];
}

/** The busy group's p99 limit: the plain `ws` p99 for the same group + 100 ms (undefined without that baseline). */
function busyLimitMs({ input, find }: Run): number | undefined {
  const rawBusy = find(scenarios.rawBusy(input.costGroup));
  return rawBusy === undefined ? undefined : rawBusy.latency.p99 + 100;
}

function busyGroupCheck(run: Run): TargetCheck[] {
  const { input, find, ceiling } = run;
  const busy = find(scenarios.busy(input.costGroup));
  const rawBusy = find(scenarios.rawBusy(input.costGroup));
  const limit = busyLimitMs(run);
  if (!busy || !rawBusy || limit === undefined) return [];
  return [
    check(
      `busy group (${input.costGroup} members at 100 msg/s): p99 ≤ raw p99 + 100 ms`,
      `${round(busy.latency.p99)} ms vs ${round(limit)} ms (raw p99 ${round(rawBusy.latency.p99)} ms); p50 ${round(busy.latency.p50)} ms`,
      busy.latency.p99 <= limit,
      () => postingNote(busy, ceiling, rawBusy),
    ),
  ];
}

function writeUnitsCheck({ input }: Run): TargetCheck[] {
  if (input.dynamoWriteUnitsPerMessage === undefined) return [];
  const writes = Object.entries(input.dynamoUnitsPerMessage ?? {})
    .filter(([kind]) => WRITE_ACTIONS.test(kind))
    .slice(0, 4)
    .map(([kind, units]) => `${kind} ${units}`)
    .join(', ');
  return [
    check(
      '≤ 2.5 DynamoDB write units per published message (busy group)',
      `${input.dynamoWriteUnitsPerMessage}`,
      input.dynamoWriteUnitsPerMessage <= 2.5,
      () => `largest writes per message: ${writes}${runSizeNote(input.dynamoUnitsPerMessage ?? {})}`,
    ),
  ];
}

function costCheck(run: Run): TargetCheck[] {
  const { cost } = run.input;
  if (!cost) return [];
  const parts = Object.entries(cost.breakdownPerMillion)
    .filter(([k]) => k !== 'total')
    .sort((a, b) => b[1] - a[1])
    .map(([k, v]) => `${k} $${v}`)
    .join(', ');
  return [
    check(
      `modeled cost ≤ 0.2× AppSync Events (${cost.scenario})`,
      `${cost.ratioVsAppSync}×: $${cost.tenantcastPerMillionDeliveries} vs $${cost.appSyncEventsPerMillionDeliveries} per million deliveries`,
      cost.ratioVsAppSync <= 0.2,
      () => `per million deliveries: ${parts}${framesNote(run.find(cost.scenario), cost, busyLimitMs(run))}`,
    ),
  ];
}

function postsPerDeliveryCheck({ input, find }: Run): TargetCheck[] {
  const at100 = find(scenarios.at100);
  if (!at100 || input.postsPerDeliveryPacked === undefined) return [];
  return [
    check(
      'PostToConnection per delivery ≤ 0.2, packing on (100 msg/s), as today',
      `${input.postsPerDeliveryPacked}`,
      input.postsPerDeliveryPacked <= 0.2,
      () => `${round(messagesPerFrame(at100), 1)} messages per frame`,
    ),
  ];
}

function onceCheck({ input }: Run): TargetCheck[] {
  const incomplete = input.results.filter(
    (r) => r.system === 'pipeline' && (r.delivered !== r.expected || r.duplicates > 0),
  );
  return [
    check(
      'every message delivered once in every pipeline scenario (the naive pattern, packing off, is not held to it)',
      incomplete.length === 0 ? 'yes' : `${incomplete.length} scenario(s) short or duplicated`,
      incomplete.length === 0,
      () => incomplete.map((r) => `${r.name}: ${r.delivered}/${r.expected}, ${r.duplicates} duplicates`).join('; '),
    ),
  ];
}

/** Every target of issue #14 this run can judge, in the report's order. */
export function checkTargets(input: TargetInput): TargetCheck[] {
  const run: Run = {
    input,
    find: (name) => input.results.find((r) => r.name === name),
    ceiling: input.sdkPostsPerSecond,
    roundMs: roundSeconds(input.connections, input.sdkPostsPerSecond) * 1000,
  };
  return [
    ...burstCheck(run),
    ...keepUpCheck(run),
    ...quietRateCheck(run),
    ...busyGroupCheck(run),
    ...ceilingCheck(input),
    ...coldStartCheck(input.bundles),
    ...writeUnitsCheck(run),
    ...costCheck(run),
    ...profilesCheck(input.profiles),
    ...largeGroupCheck(input.largeGroup),
    ...postsPerDeliveryCheck(run),
    ...onceCheck(run),
  ];
}

/** Target 2: the SDK's post ceiling measured beside the gateway's, and every posting scenario read against it. */
function ceilingCheck(input: TargetInput): TargetCheck[] {
  if (input.gatewayPostsPerSecond === undefined) return [];
  const posting = input.results.filter((r) => r.system !== 'raw-ws');
  const without = posting.filter((r) => r.framesVsSdkCeiling === undefined || !Number.isFinite(r.framesVsSdkCeiling));
  const cpu = input.cpuMicrosPerPost === undefined ? '' : ` (${round(input.cpuMicrosPerPost, 1)} µs of CPU per post)`;
  return [
    reported(
      "the bench measures the ceiling it is bound by: the SDK post rate beside the gateway's, frames/s ÷ it per scenario",
      `SDK against a bare HTTP server ${input.sdkPostsPerSecond} posts/s${cpu}, the local gateway ${input.gatewayPostsPerSecond} posts/s; "× ceiling" for ${posting.length - without.length} of ${posting.length} posting scenarios`,
      input.sdkPostsPerSecond > 0 && without.length === 0,
      () =>
        input.sdkPostsPerSecond > 0
          ? `no frames/s ÷ ceiling for ${without.map((r) => r.name).join(', ')}`
          : 'the SDK ceiling was not measured',
    ),
  ];
}

/** Target 3: every function's bundle, built as a deploy builds it, within the size and import-time budget. */
function coldStartCheck(b: BundleFigures | undefined): TargetCheck[] {
  if (b === undefined || b.functions.length === 0) return [];
  const largest = b.functions.reduce((x, y) => (y.bytes > x.bytes ? y : x));
  const slowest = b.functions.reduce((x, y) => (y.importMs > x.importMs ? y : x));
  const over = b.functions.filter((f) => {
    const within = withinBudget(f, b.budget);
    return !within.bytes || !within.importMs;
  });
  return [
    check(
      `cold start: every function's bundle ≤ ${b.budget.bytes / 1000} KB and imported in ≤ ${b.budget.importMs} ms (fresh process, median of ${b.runs}), built as CDK builds it`,
      `${b.functions.length} functions: largest ${largest.name} ${kilobytes(largest.bytes)}, slowest import ${slowest.name} ${round(slowest.importMs)} ms`,
      over.length === 0,
      () =>
        `over the budget: ${over.map((f) => `${f.name} ${kilobytes(f.bytes)}, ${round(f.importMs)} ms`).join('; ')}`,
    ),
  ];
}

/** Target 5: the cost model prices a quiet and an entity-feed profile beside the busy group, and says where it loses. */
function profilesCheck(profiles: readonly ProfileFigures[] | undefined): TargetCheck[] {
  if (profiles === undefined || profiles.length === 0) return [];
  const dearer = profiles.filter((p) => p.ratio > 1);
  const figures = profiles
    .map(
      (p) =>
        `${p.name} (${p.messagesPerFrame} ${p.messagesPerFrame === 1 ? 'message' : 'messages'} per frame, modeled): ${round(p.ratio, 3)}×`,
    )
    .join('; ');
  const where =
    dearer.length === 0
      ? 'tenantcast is cheaper for every profile'
      : `AppSync Events is cheaper for ${dearer
          .map(
            (p) =>
              `the ${p.name.split(':')[0]} profile (tenantcast cheaper ${p.crossover === null ? 'at no rate' : `from ${perConnectionMinute(p.crossover)} deliveries per connection-minute`} as profiled; from ${perConnectionMinute(p.crossoverPackedWithinHalfSecond)} deliveries per connection-minute with packing within 0.5 s)`,
          )
          .join(' and ')}`;
  const priced = profiles.every((p) => Number.isFinite(p.ratio) && p.ratio > 0);
  return [
    reported(
      'honest cost across workloads: quiet and entity-feed profiles beside the busy group, and where AppSync Events is cheaper',
      `${figures}. ${where}`,
      profiles.length >= 3 && priced,
      () => (priced ? `only ${profiles.length} profile(s) priced` : 'a profile has no finite price'),
    ),
  ];
}

/** Target 6: the scaling model with this run's CPU constants says how a very large group is delivered, and how fast. */
function largeGroupCheck(g: LargeGroupFigures | undefined): TargetCheck[] {
  if (g === undefined) return [];
  return [
    reported(
      `scaling model from this run's constants: how a ${g.members.toLocaleString('en')}-member group is delivered and how long it takes`,
      `${round(g.cpuMsPerPost, 3)} ms of CPU per post here = ${round(g.lambdaMsPerPost, 3)} ms at ${g.fanoutMemoryMB} MB: ${g.pages} pages in ${g.lanes} lanes, ${g.fanoutInvocations} fan-out invocations, ${Math.round(g.postsPerSecond)} posts/s (${round(g.accountQuotaShare * 100)} % of the account's @connections quota; bound by ${g.quotaBound ? 'it' : g.boundBy}): ${round(g.seconds, 1)} s (${round(g.readSeconds, 1)} s reading members, ${round(g.postSeconds, 1)} s posting)`,
      g.cpuMsPerPost > 0 && Number.isFinite(g.seconds),
      () => 'the run measured no CPU per post',
    ),
  ];
}
