/**
 * The ceiling every delivery is bound by: the AWS SDK's `PostToConnection` against a bare Node HTTP server in another
 * process that answers 200 at once (bench/http-sink.ts), `inFlight` calls at a time, as the broadcaster posts. Measured
 * with `process.cpuUsage()` around the calls, it also gives the client CPU per post, and, with a DynamoDB `Query` of
 * one page of member items through the SDK, the CPU of one fan-out page: the constants of bench/scaling-sim.ts.
 * The post client is configured as the functions' is (`clientConfig`, lambdas/shared/aws.ts); the Query client as
 * `createDocumentClient`'s (the document client takes no cached middleware).
 * Run it while nothing else runs in this process (cpuUsage counts every thread of the process).
 */
import { type ChildProcess, fork } from 'node:child_process';
import { resolve } from 'node:path';
import { ApiGatewayManagementApiClient, PostToConnectionCommand } from '@aws-sdk/client-apigatewaymanagementapi';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient, QueryCommand } from '@aws-sdk/lib-dynamodb';
import { DELIVERY_CONCURRENCY } from '../lambdas/core/broadcast.ts';
import { clientConfig } from '../lambdas/shared/aws.ts';
import { round } from './stats.ts';

export interface SdkCeiling {
  /** Measured calls (after a warm-up, in three rounds) and how many were in flight at once. */
  calls: number;
  inFlight: number;
  /** The fastest of the three rounds. */
  postsPerSecond: number;
  /** Client CPU (user + system) per PostToConnection, µs. */
  cpuMicrosPerPost: number;
  /** Members per fan-out page (the broadcaster's SPLIT_THRESHOLD) and the CPU of reading one page with a Query, µs. */
  pageSize: number;
  cpuMicrosPerPageQuery: number;
  /** CPU of one page: its Query plus one post per member, ms. */
  cpuMsPerPage: number;
}

export interface CeilingSample {
  calls: number;
  wallMs: number;
  cpuMicros: number;
}

/**
 * The ceiling's figures from the raw counts (pure, so the arithmetic is tested). Posts are measured in rounds: on a
 * shared machine the fastest round is the ceiling; CPU per post is over all of them.
 */
export function ceilingFrom(
  rounds: readonly CeilingSample[],
  queries: CeilingSample,
  pageSize: number,
  inFlight: number,
): SdkCeiling {
  const calls = rounds.reduce((n, r) => n + r.calls, 0);
  const cpuMicrosPerPost = rounds.reduce((n, r) => n + r.cpuMicros, 0) / calls;
  const cpuMicrosPerPageQuery = queries.cpuMicros / queries.calls;
  return {
    calls,
    inFlight,
    postsPerSecond: Math.round(Math.max(...rounds.map((r) => r.calls / (r.wallMs / 1000)))),
    cpuMicrosPerPost: round(cpuMicrosPerPost, 1),
    pageSize,
    cpuMicrosPerPageQuery: Math.round(cpuMicrosPerPageQuery),
    cpuMsPerPage: round((cpuMicrosPerPageQuery + pageSize * cpuMicrosPerPost) / 1000, 1),
  };
}

async function startSink(pageSize: number): Promise<{ child: ChildProcess; endpoint: string }> {
  const child = fork(resolve(import.meta.dirname, 'http-sink.ts'), [String(pageSize)], {
    execArgv: ['--import', 'tsx'],
    stdio: 'inherit',
  });
  const port = await new Promise<number>((resolvePort, reject) => {
    child.once('message', (m: { port: number }) => resolvePort(m.port));
    child.once('exit', (code) => reject(new Error(`http sink exited (${code})`)));
  });
  return { child, endpoint: `http://127.0.0.1:${port}` };
}

/** Runs `calls` times `call`, `inFlight` at a time; returns wall time and this process's CPU for them. */
async function measure(calls: number, inFlight: number, call: (i: number) => Promise<unknown>): Promise<CeilingSample> {
  let next = 0;
  const cpu = process.cpuUsage();
  const started = performance.now();
  await Promise.all(
    Array.from({ length: Math.min(inFlight, calls) }, async () => {
      while (next < calls) await call(next++);
    }),
  );
  const wallMs = performance.now() - started;
  const used = process.cpuUsage(cpu);
  return { calls, wallMs, cpuMicros: used.user + used.system };
}

export interface CeilingOptions {
  calls: number;
  /** @default DELIVERY_CONCURRENCY (lambdas/core/broadcast.ts), as the broadcaster and fan-out post */
  inFlight?: number;
  /** Members per page for the Query. */
  pageSize: number;
  /** @default 20 */
  pages?: number;
}

export async function measureSdkCeiling(options: CeilingOptions): Promise<SdkCeiling> {
  const inFlight = options.inFlight ?? DELIVERY_CONCURRENCY;
  const { child, endpoint } = await startSink(options.pageSize);
  const config = {
    endpoint,
    region: 'us-east-1',
    credentials: { accessKeyId: 'local', secretAccessKey: 'local' },
    maxAttempts: 1,
  };
  const api = new ApiGatewayManagementApiClient({ ...clientConfig, ...config });
  const dynamo = DynamoDBDocumentClient.from(new DynamoDBClient(config));
  const data = JSON.stringify({
    type: 'message',
    group: 'chat:bench',
    id: 'probe',
    seq: 1,
    data: { pad: 'x'.repeat(64) },
  });
  const post = (i: number) => api.send(new PostToConnectionCommand({ ConnectionId: `conn-${i % 1000}=`, Data: data }));
  const query = () =>
    dynamo.send(
      new QueryCommand({
        TableName: 'tenantcast',
        KeyConditionExpression: 'pk = :pk',
        ExpressionAttributeValues: { ':pk': 'T#bench-a#G#chat:bench' },
      }),
    );
  try {
    // Warm-up: JIT, keep-alive sockets, credential and endpoint resolution.
    await measure(Math.min(500, options.calls), inFlight, post);
    await measure(3, 1, query);
    const rounds: CeilingSample[] = [];
    for (let i = 0; i < 3; i++) rounds.push(await measure(Math.ceil(options.calls / 3), inFlight, post));
    const queries = await measure(options.pages ?? 20, 1, query);
    return ceilingFrom(rounds, queries, options.pageSize, inFlight);
  } finally {
    api.destroy();
    dynamo.destroy();
    child.kill();
  }
}
