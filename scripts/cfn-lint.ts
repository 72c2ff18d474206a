/**
 * `npm run cfn-lint`: synthesizes the CDK app offline (every stage x region of cdk.json, no asset bundling: the
 * templates are the deployed ones but for asset hashes) into a temporary directory, then runs cfn-lint once over all
 * the templates, checking each against every region the app deploys to. A finding fails the run unless
 * cfn-lint-allowlist.json lists it (rule, resource type, path) with the reason it is a false positive.
 * Needs `cfn-lint` on the PATH (`pip install cfn-lint`; .ci/run installs it when missing).
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { CONFIG_CONTEXT_KEY, dataStackNameOf, parseConfig, stackNameOf } from '../lib/config.ts';
import { Allowlist, CfnLintFinding, formatFinding, triage } from './cfn-lint-findings.ts';

const root = path.resolve(import.meta.dirname, '..');
const seconds = (since: number) => `${((performance.now() - since) / 1000).toFixed(1)} s`;
const readJson = (file: string): unknown => JSON.parse(readFileSync(file, 'utf8'));

interface StackArtifact {
  type: string;
  environment?: string;
  properties?: { templateFile?: string };
}

function main(): number {
  const cdkJson = readJson(path.join(root, 'cdk.json')) as { app: string; context: Record<string, unknown> };
  const expected = parseConfig(cdkJson.context[CONFIG_CONTEXT_KEY]).stages.flatMap((stage) =>
    stage.regions.flatMap((region) => [stackNameOf(stage, region), dataStackNameOf(stage, region)]),
  );
  const allowlist = Allowlist.parse(readJson(path.join(root, 'cfn-lint-allowlist.json'))).findings;
  const version = spawnSync('cfn-lint', ['--version'], { encoding: 'utf8' });
  if (version.error !== undefined || version.status !== 0) {
    console.error(
      `cfn-lint: cannot run cfn-lint (${version.error?.message ?? version.stderr}); install it: pip install cfn-lint`,
    );
    return 1;
  }
  const out = mkdtempSync(path.join(tmpdir(), 'tenantcast-cfn-lint-'));
  try {
    let started = performance.now();
    // The app command of cdk.json, run as the CDK CLI runs it, minus the CLI's asset bundling.
    const synth = spawnSync(cdkJson.app, {
      cwd: root,
      shell: true,
      stdio: 'inherit',
      env: {
        ...process.env,
        CDK_OUTDIR: out,
        CDK_CONTEXT_JSON: JSON.stringify({ ...cdkJson.context, 'aws:cdk:bundling-stacks': [] }),
      },
    });
    if (synth.status !== 0) {
      console.error(`cfn-lint: synthesis failed (exit ${synth.status ?? synth.signal})`);
      return 1;
    }
    const synthTime = seconds(started);

    const artifacts = (readJson(path.join(out, 'manifest.json')) as { artifacts: Record<string, StackArtifact> })
      .artifacts;
    const stacks = Object.entries(artifacts).filter(([, a]) => a.type === 'aws:cloudformation:stack');
    const missing = expected.filter((name) => !stacks.some(([id]) => id === name));
    if (missing.length > 0) {
      console.error(`cfn-lint: the synthesized app lacks stacks of cdk.json: ${missing.join(', ')}`);
      return 1;
    }
    const templates = stacks.map(([id, a]) => a.properties?.templateFile ?? `${id}.template.json`);
    const regions = [...new Set(stacks.map(([, a]) => a.environment?.split('/').at(-1) ?? ''))].filter(Boolean);

    started = performance.now();
    const lint = spawnSync('cfn-lint', ['--format', 'json', '--regions', ...regions, '--', ...templates], {
      cwd: out,
      encoding: 'utf8',
      maxBuffer: 256 * 1024 * 1024,
    });
    // cfn-lint's exit code is a bit mask of the levels found (2 error, 4 warning, 8 info); 1 means it failed.
    if (lint.error !== undefined || lint.status === 1 || lint.status === null) {
      console.error(
        `cfn-lint: cfn-lint failed (exit ${lint.status ?? lint.signal ?? lint.error?.message}):\n${lint.stderr}`,
      );
      return 1;
    }
    const findings = CfnLintFinding.array().parse(JSON.parse(lint.stdout || '[]'));
    const lintTime = seconds(started);

    const resources = new Map<string, Record<string, { Type: string }>>();
    const result = triage(findings, allowlist, (file, logicalId) => {
      if (!resources.has(file)) {
        resources.set(
          file,
          (readJson(path.join(out, file)) as { Resources: Record<string, { Type: string }> }).Resources,
        );
      }
      return resources.get(file)?.[logicalId]?.Type;
    });
    for (const { entry, count } of result.allowed) {
      const note = count === 0 ? ' (matches nothing now: remove the entry if newer cfn-lint fixed it)' : '';
      console.log(`allowed ${count} x ${entry.rule} on ${entry.resourceType} ${entry.path}${note}`);
    }
    for (const finding of result.unexpected) console.log(formatFinding(finding));
    console.log(
      `${version.stdout.trim()}: ${templates.length} templates, regions ${regions.join(' ')}, ` +
        `${findings.length} findings, ${result.unexpected.length} not allowlisted (synth ${synthTime}, cfn-lint ${lintTime})`,
    );
    if (result.unexpected.length > 0) {
      console.error('cfn-lint: fix each finding above in lib/, or list it in cfn-lint-allowlist.json with the reason');
      return 1;
    }
    return 0;
  } finally {
    rmSync(out, { recursive: true, force: true });
  }
}

process.exitCode = main();
