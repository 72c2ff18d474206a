/**
 * `npm run bundles`: builds every function of lambdas/manifest.ts exactly as a deploy does (the CDK app of cdk.json,
 * run as `cdk synth` runs it, bundling one realtime stack with NodejsFunction and lib/bundling.ts) and reports, per
 * function, the bundle's size and how long importing it takes in a fresh Node process, against BUNDLE_BUDGET.
 *
 * - Size: `index.mjs`, the code Lambda loads. The source map is listed beside it; it counts for the import time only
 *   when the function's NODE_OPTIONS enable source maps (then Node reads and parses it at import; it does by default).
 * - Import: `await import(bundle)` in a fresh `node` with the function's environment as deployed (tokens such as
 *   queue URLs replaced by placeholders) and Lambda's own variables; median of `--runs` processes, wall clock and the
 *   process's CPU time (the latter moves less with the machine's load; the load average is printed).
 * The bundles are written under cdk.out/bundles in the repository, so modules left external resolve from
 * node_modules as the runtime's own copy would (unminified, as the runtime's is).
 *
 * Exits 1 when a bundle is over the size budget. Import time is machine-dependent: reported here and judged by
 * `npm run bench` (which measures it with `measureBundles` before its scenarios), never in a unit test.
 */
import { spawnSync } from 'node:child_process';
import { readFileSync, rmSync, statSync } from 'node:fs';
import { loadavg } from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { kilobytes, withinBudget } from '../bench/format.ts';
import { functions } from '../lambdas/manifest.ts';
import { BUNDLE_BUDGET } from '../lib/bundling.ts';
import { CONFIG_CONTEXT_KEY, parseConfig, STAGE_CONTEXT_KEY, stackNameOf } from '../lib/config.ts';

const root = path.resolve(import.meta.dirname, '..');
const outdir = path.join(root, 'cdk.out', 'bundles');
const readJson = (file: string): unknown => JSON.parse(readFileSync(file, 'utf8'));

const usage = `npm run bundles [-- --runs N] [--function NAME ...] [--stage NAME]
  Builds every function as CDK does and reports bundle size and import time (median of N fresh processes, default 5)
  against the budget: at most ${BUNDLE_BUDGET.bytes} bytes and ${BUNDLE_BUDGET.importMs} ms.`;

/** A function of the synthesized stack: where its bundle is and how it is configured. */
export interface BuiltFunction {
  readonly name: string;
  readonly dir: string;
  readonly handler: string;
  readonly runtime: string;
  readonly memoryMB: number;
  readonly environment: Readonly<Record<string, unknown>>;
}

interface LambdaResource {
  Type: string;
  Metadata?: Record<string, unknown>;
  Properties: {
    Handler: string;
    Runtime: string;
    MemorySize: number;
    Environment?: { Variables?: Record<string, unknown> };
  };
}

/** Runs the cdk.json app as the CDK CLI does, bundling only `stackName`, into `outdir`. */
function synthesize(context: Record<string, unknown>, stage: string, stackName: string, app: string): void {
  rmSync(outdir, { recursive: true, force: true });
  const synth = spawnSync(app, {
    cwd: root,
    shell: true,
    stdio: ['ignore', 'inherit', 'inherit'],
    env: {
      ...process.env,
      CDK_OUTDIR: outdir,
      CDK_CONTEXT_JSON: JSON.stringify({
        ...context,
        [STAGE_CONTEXT_KEY]: stage,
        'aws:cdk:bundling-stacks': [stackName],
        // What the CLI sets by default: each resource's construct path and asset directory in its metadata.
        'aws:cdk:enable-path-metadata': true,
        'aws:cdk:enable-asset-metadata': true,
      }),
    },
  });
  if (synth.status !== 0) throw new Error(`synthesis failed (exit ${synth.status ?? synth.signal})`);
}

/** The manifest's functions as the synthesized template has them. */
export function builtFunctions(template: { Resources: Record<string, LambdaResource> }, stackName: string) {
  const byPath = new Map(
    Object.values(template.Resources)
      .filter((r) => r.Type === 'AWS::Lambda::Function')
      .map((r) => [String(r.Metadata?.['aws:cdk:path']), r]),
  );
  return functions.map((spec): BuiltFunction => {
    const resource = byPath.get(`${stackName}/${spec.name}/Resource`);
    const asset = resource?.Metadata?.['aws:asset:path'];
    if (resource === undefined || typeof asset !== 'string') {
      throw new Error(`the synthesized stack has no bundled function '${spec.name}' of lambdas/manifest.ts`);
    }
    return {
      name: spec.name,
      dir: path.join(outdir, asset),
      handler: resource.Properties.Handler,
      runtime: resource.Properties.Runtime,
      memoryMB: resource.Properties.MemorySize,
      environment: resource.Properties.Environment?.Variables ?? {},
    };
  });
}

/** A value a deploy resolves (a queue URL, the table name) stands in as a placeholder of the right shape. */
function placeholderFor(key: string, region: string): string {
  if (key.endsWith('_QUEUE_URL') || key.endsWith('_QUEUES')) {
    return `https://sqs.${region}.amazonaws.com/123456789012/placeholder`;
  }
  if (key === 'CONNECTIONS_ENDPOINT') return `https://placeholder.execute-api.${region}.amazonaws.com/stage`;
  return 'placeholder';
}

/** The environment the function's code sees in Lambda: the runtime's variables, then the function's own. */
export function lambdaEnvironment(fn: BuiltFunction, region: string): NodeJS.ProcessEnv {
  const own = Object.fromEntries(
    Object.entries(fn.environment).map(([k, v]) => [k, typeof v === 'string' ? v : placeholderFor(k, region)]),
  );
  return {
    PATH: process.env.PATH,
    LANG: 'en_US.UTF-8',
    TZ: ':UTC',
    AWS_REGION: region,
    AWS_DEFAULT_REGION: region,
    AWS_EXECUTION_ENV: `AWS_Lambda_${fn.runtime}`,
    AWS_LAMBDA_FUNCTION_NAME: fn.name,
    AWS_LAMBDA_FUNCTION_VERSION: '$LATEST',
    AWS_LAMBDA_FUNCTION_MEMORY_SIZE: String(fn.memoryMB),
    AWS_ACCESS_KEY_ID: 'placeholder',
    AWS_SECRET_ACCESS_KEY: 'placeholder',
    AWS_SESSION_TOKEN: 'placeholder',
    AWS_XRAY_CONTEXT_MISSING: 'LOG_ERROR',
    AWS_XRAY_DAEMON_ADDRESS: '169.254.79.129:2000',
    LAMBDA_TASK_ROOT: fn.dir,
    _HANDLER: fn.handler,
    // Lambda runs a Node.js the SDK supports; this machine's older Node would add the SDK's warning to the import.
    AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
    ...own,
  };
}

export interface ImportTime {
  readonly ms: number;
  readonly cpuMs: number;
}

const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)] ?? Number.NaN;

/** Imports `file` in `runs` fresh Node processes with `env`; the median wall and CPU times. */
function importTime(file: string, env: NodeJS.ProcessEnv, runs: number): ImportTime {
  const code = `const t0 = performance.now(); const c0 = process.cpuUsage();
await import(${JSON.stringify(pathToFileURL(file).href)});
const c = process.cpuUsage(c0);
process.stdout.write(JSON.stringify({ ms: performance.now() - t0, cpuMs: (c.user + c.system) / 1000 }));`;
  const samples: ImportTime[] = [];
  for (let i = 0; i < runs; i++) {
    const run = spawnSync(process.execPath, ['--input-type=module', '-e', code], { env, encoding: 'utf8' });
    if (run.status !== 0) throw new Error(`importing ${file} failed:\n${run.stderr}`);
    samples.push(JSON.parse(run.stdout) as ImportTime);
  }
  return { ms: median(samples.map((s) => s.ms)), cpuMs: median(samples.map((s) => s.cpuMs)) };
}

export interface BundleReport {
  readonly name: string;
  readonly bytes: number;
  readonly mapBytes: number;
  /** Whether NODE_OPTIONS enable source maps, so that the import reads the map too. */
  readonly mapRead: boolean;
  readonly time: ImportTime;
}

const met = (ok: boolean) => (ok ? 'met' : 'NOT met');

/** The report as a Markdown table, with each target met or not. */
export function formatReport(reports: readonly BundleReport[], runs: number): string {
  const lines = [
    `| function | bundle | source map (read at import) | import, median of ${runs} | CPU | ≤ ${BUNDLE_BUDGET.bytes / 1000} KB | ≤ ${BUNDLE_BUDGET.importMs} ms |`,
    '| --- | ---: | ---: | ---: | ---: | --- | --- |',
  ];
  for (const r of reports) {
    const within = withinBudget({ bytes: r.bytes, importMs: r.time.ms }, BUNDLE_BUDGET);
    lines.push(
      `| ${r.name} | ${kilobytes(r.bytes)} | ${kilobytes(r.mapBytes)} (${r.mapRead ? 'yes' : 'no'}) | ${r.time.ms.toFixed(0)} ms | ${r.time.cpuMs.toFixed(0)} ms | ${met(within.bytes)} | ${met(within.importMs)} |`,
    );
  }
  return lines.join('\n');
}

/** Every function's bundle built as a deploy builds it, with its size and import time. */
export interface BundleMeasurement {
  readonly stackName: string;
  /** The Lambda runtime the functions are deployed on (this machine's Node imports them). */
  readonly runtime: string;
  readonly runs: number;
  readonly reports: readonly BundleReport[];
  readonly synthSeconds: number;
  readonly importSeconds: number;
  /** The 1-minute load average before and after the imports. */
  readonly loadBefore: number;
  readonly loadAfter: number;
}

export interface MeasureBundlesOptions {
  /** Fresh processes per function; the median is reported. @default 5 */
  readonly runs?: number;
  /** Only these functions. @default every function of the manifest */
  readonly functions?: readonly string[];
  /** The cdk.json stage to synthesize. @default the first */
  readonly stage?: string;
}

/** Synthesizes one realtime stack as `cdk synth` does (bundling its functions), then times importing each bundle. */
export function measureBundles(options: MeasureBundlesOptions = {}): BundleMeasurement {
  const runs = options.runs ?? 5;
  if (!Number.isInteger(runs) || runs < 1) throw new Error(`runs must be a positive integer (got ${runs})`);
  const cdkJson = readJson(path.join(root, 'cdk.json')) as { app: string; context: Record<string, unknown> };
  const stages = parseConfig(cdkJson.context[CONFIG_CONTEXT_KEY]).stages;
  const stage = options.stage === undefined ? stages[0] : stages.find((s) => s.name === options.stage);
  const region = stage?.regions[0];
  if (stage === undefined || region === undefined) throw new Error(`cdk.json has no stage '${options.stage}'`);
  const stackName = stackNameOf(stage, region);

  let started = performance.now();
  synthesize(cdkJson.context, stage.name, stackName, cdkJson.app);
  const synthSeconds = (performance.now() - started) / 1000;
  const artifacts = (readJson(path.join(outdir, 'manifest.json')) as { artifacts: Record<string, StackArtifact> })
    .artifacts;
  const templateFile = artifacts[stackName]?.properties?.templateFile ?? `${stackName}.template.json`;
  const template = readJson(path.join(outdir, templateFile)) as { Resources: Record<string, LambdaResource> };
  const selected = builtFunctions(template, stackName).filter(
    (fn) => options.functions === undefined || options.functions.includes(fn.name),
  );

  const loadBefore = loadavg()[0] ?? 0;
  started = performance.now();
  const reports = selected.map((fn): BundleReport => {
    const env = lambdaEnvironment(fn, region);
    const file = path.join(fn.dir, 'index.mjs');
    return {
      name: fn.name,
      bytes: statSync(file).size,
      mapBytes: statSync(`${file}.map`).size,
      mapRead: /--enable-source-maps\b/.test(String(env.NODE_OPTIONS ?? '')),
      time: importTime(file, env, runs),
    };
  });
  return {
    stackName,
    runtime: selected[0]?.runtime ?? '?',
    runs,
    reports,
    synthSeconds,
    importSeconds: (performance.now() - started) / 1000,
    loadBefore,
    loadAfter: loadavg()[0] ?? 0,
  };
}

function main(): number {
  const { values } = parseArgs({
    options: {
      runs: { type: 'string', default: '5' },
      function: { type: 'string', multiple: true },
      stage: { type: 'string' },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  if (values.help) {
    console.log(usage);
    return 0;
  }
  const m = measureBundles({
    runs: Number(values.runs),
    ...(values.function === undefined ? {} : { functions: values.function }),
    ...(values.stage === undefined ? {} : { stage: values.stage }),
  });
  console.log(`synthesized and bundled ${m.stackName} in ${m.synthSeconds.toFixed(1)} s`);
  console.log(formatReport(m.reports, m.runs));
  console.log(
    `\nNode ${process.version} (the functions run ${m.runtime}); load average ${m.loadBefore.toFixed(2)} before, ${m.loadAfter.toFixed(2)} after ${m.importSeconds.toFixed(1)} s of imports.`,
  );
  return m.reports.every((r) => r.bytes <= BUNDLE_BUDGET.bytes) ? 0 : 1;
}

interface StackArtifact {
  properties?: { templateFile?: string };
}

if (process.argv[1] === import.meta.filename) {
  try {
    process.exitCode = main();
  } catch (error) {
    console.error(`bundles: ${(error as Error).message}`);
    process.exitCode = 1;
  }
}
