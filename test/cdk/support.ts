/** Shared set-up for the CDK tests: the real cdk.json context, and synthesized stacks without bundling. */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { App } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import { dataStackNameOf, parseConfig, type StageConfig } from '../../lib/config.ts';
import { DataStack } from '../../lib/data-stack.ts';
import { RealtimeStack, type RealtimeStackProps } from '../../lib/realtime-stack.ts';

export const repositoryRoot = path.resolve(import.meta.dirname, '../..');

/** The `context` of cdk.json, as the CDK CLI passes it to the app. */
export const cdkJsonContext: Record<string, unknown> = JSON.parse(
  readFileSync(path.join(repositoryRoot, 'cdk.json'), 'utf8'),
).context;

/** An app with the cdk.json context and no asset bundling (unless `bundle` is set). */
export function newApp(options: { context?: Record<string, unknown>; bundle?: boolean; outdir?: string } = {}): App {
  return new App({
    ...(options.outdir ? { outdir: options.outdir } : {}),
    context: {
      ...cdkJsonContext,
      ...(options.bundle ? {} : { 'aws:cdk:bundling-stacks': [] }),
      ...options.context,
    },
  });
}

/** A stage from cdk.json by name. */
export function stageConfig(name: string): StageConfig {
  const stage = parseConfig(cdkJsonContext.tenantcast).stages.find((s) => s.name === name);
  if (!stage) throw new Error(`cdk.json has no stage '${name}'`);
  return stage;
}

export interface SynthesizedStack {
  readonly stack: RealtimeStack;
  readonly template: Template;
  /** The stage's data stack in the same region (the tenant clusters), and its template. */
  readonly dataStack: DataStack;
  readonly dataTemplate: Template;
  /** The logical id a token such as `stack.table.tableName` resolves to (`{Ref: id}` or `{Fn::GetAtt: [id, …]}`). */
  logicalIdOf(token: string): string;
}

/** A DataStack for a stage and region from cdk.json, in `app`. */
export function newDataStack(app: App, stage: StageConfig, region: string): DataStack {
  return new DataStack(app, dataStackNameOf(stage, region), { env: { region }, stage });
}

/** Synthesizes one RealtimeStack (and the DataStack it uses) for a stage and region from cdk.json, without bundling. */
export function synthStack(
  stageName: string,
  region: string,
  overrides: Partial<RealtimeStackProps> = {},
): SynthesizedStack {
  const stage = overrides.stage ?? stageConfig(stageName);
  const app = newApp();
  const dataStack = newDataStack(app, stage, region);
  const stack = new RealtimeStack(app, `tenantcast-${stageName}-${region}`, {
    env: { region },
    stage,
    tenantData: dataStack.tenantClusters,
    ...overrides,
  });
  const template = Template.fromStack(stack);
  return {
    stack,
    template,
    dataStack,
    dataTemplate: Template.fromStack(dataStack),
    logicalIdOf(token) {
      const resolved = stack.resolve(token) as { Ref?: string; 'Fn::GetAtt'?: [string, string] };
      const id = resolved.Ref ?? resolved['Fn::GetAtt']?.[0];
      if (!id) throw new Error(`not a reference to a resource: ${JSON.stringify(resolved)}`);
      return id;
    },
  };
}
