#!/usr/bin/env node
// `npx tenantcast <command>` (docs/cli.md): runs the TypeScript admin CLI (scripts/tenantcast.ts) through tsx.
// A plain .mjs file because npm links bins as they are; bin/tenantcast.ts is the CDK app, not this.
import { register } from 'tsx/esm/api';

register();
await import('../scripts/tenantcast.ts');
