/** `npx tenantcast --help` (bin/tenantcast-cli.mjs → scripts/tenantcast-cli.ts, docs/cli.md). */
import { ttyProgress } from './cli-progress.ts';
import { runCli } from './tenantcast-cli.ts';

process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
process.exitCode = await runCli(process.argv.slice(2), {
  out: (line) => console.log(line),
  err: (line) => console.error(line),
  progress: ttyProgress(process.stderr),
});
