/** `npm run tenants -- --help` (scripts/tenants-cli.ts). */
import { ttyProgress } from './cli-progress.ts';
import { runTenantsCli } from './tenants-cli.ts';

process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
process.exitCode = await runTenantsCli(process.argv.slice(2), {
  out: (line) => console.log(line),
  err: (line) => console.error(line),
  progress: ttyProgress(process.stderr),
});
