/**
 * Every shell block of README.md and docs/*.md runs as written against a running local stack (docs say `npm start`;
 * here the same runtime in-process). Blocks run with bash, in order, from a working directory that looks like the
 * repository (links to its files) with its own `.local/endpoints.json`, so a developer's own stack is left alone.
 * Two adjustments, both documented conventions: `127.0.0.1:4000` becomes the test runtime's port (`PORT` changes
 * it), and optional arguments `[--flag value]` are passed (brackets dropped). Blocks that need an AWS account are listed in
 * `needsAws` with the reason, and README's two setup commands are what CI itself runs.
 */
import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, readdir, readFile, rm, symlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import type { LocalRuntime } from '../../local/runtime.ts';
import { startQuietRuntime } from '../support/local-stack.ts';

const run = promisify(execFile);
const root = resolve(import.meta.dirname, '..', '..');

/** Blocks that cannot run here, and why. */
const needsAws: Record<string, string> = {
  'docs/deploy.md':
    'cdk bootstrap/deploy/destroy need an AWS account (the templates are checked by cfn-lint and CDK tests)',
};
/** README's setup commands: `npm ci && npm test` is what CI runs; `npm start` is the runtime this test starts. */
const setup = new Set(['npm ci && npm start', 'npm ci && npm test']);

interface Block {
  readonly file: string;
  readonly line: number;
  readonly text: string;
}

async function shellBlocks(): Promise<Block[]> {
  const files = [
    'README.md',
    ...(await readdir(join(root, 'docs'))).filter((f) => f.endsWith('.md')).map((f) => `docs/${f}`),
  ];
  const blocks: Block[] = [];
  for (const file of files) {
    const lines = (await readFile(join(root, file), 'utf8')).split('\n');
    let start = -1;
    for (const [i, line] of lines.entries()) {
      if (start < 0 && /^```(sh|bash|shell)\s*$/.test(line)) start = i;
      else if (start >= 0 && line.startsWith('```')) {
        blocks.push({ file, line: start + 1, text: lines.slice(start + 1, i).join('\n') });
        start = -1;
      }
    }
  }
  return blocks;
}

let runtime: LocalRuntime;
let cwd: string;
let blocks: Block[];

beforeAll(async () => {
  cwd = await mkdtemp(join(tmpdir(), 'tenantcast-docs-'));
  for (const entry of await readdir(root)) {
    if (entry === '.local' || entry === '.git') continue;
    await symlink(join(root, entry), join(cwd, entry));
  }
  await mkdir(join(cwd, '.local'));
  runtime = await startQuietRuntime({
    schedules: false,
    web: false,
    functionLogLevel: 'WARN',
    endpointsFile: join(cwd, '.local', 'endpoints.json'),
  });
  blocks = await shellBlocks();
}, 120_000);

afterAll(async () => {
  await runtime?.stop();
  await rm(cwd, { recursive: true, force: true });
}, 60_000);

describe('the commands in README.md and docs/', () => {
  it('are found: the README example, onboarding, the DLQ commands', () => {
    const files = new Set(blocks.map((b) => b.file));
    expect([...files].sort()).toEqual(expect.arrayContaining(['README.md', 'docs/tenants.md', 'docs/limits.md']));
  });

  it('run as written against the local stack, each exiting 0', async () => {
    const ran: string[] = [];
    for (const block of blocks) {
      if (needsAws[block.file] !== undefined || setup.has(block.text.trim())) continue;
      const script = block.text
        .replaceAll('127.0.0.1:4000', `127.0.0.1:${runtime.port}`)
        .replace(/\[(--[^\]]*)\]/g, '$1');
      const where = `${block.file}:${block.line}`;
      const outcome = await run('bash', ['-e', '-c', script], { cwd, timeout: 90_000, env: process.env }).then(
        ({ stdout }) => ({ code: 0, stdout }),
        (err: { code?: number; stdout?: string; stderr?: string }) => ({
          code: err.code ?? 1,
          stdout: `${err.stdout ?? ''}${err.stderr ?? ''}`,
        }),
      );
      expect({ where, code: outcome.code, output: outcome.code === 0 ? '' : outcome.stdout }).toEqual({
        where,
        code: 0,
        output: '',
      });
      ran.push(where);
    }
    // README's "Try it", the onboarding block, the DLQ block at least.
    expect(ran.length).toBeGreaterThanOrEqual(3);
  }, 600_000);
});
