/**
 * zod for every function: `zod/mini`, the tree-shakable functional API of zod 4, with zod's English messages.
 * Import it as a namespace: `import * as z from './zod.ts'` (a namespace import is tree-shaken; re-exporting a
 * namespace object would keep all of zod).
 *
 * Why not `import { z } from 'zod'`: the classic API is one object with every method, so esbuild keeps all of it
 * (~454 KB minified in every bundle, ~30 ms of CPU to import); zod/mini keeps only the schemas and checks a function
 * uses (docs/deploy.md, "Bundles"). Same core, same issues: `X.min(n)` is `X.check(z.minLength(n))` or
 * `X.check(z.gte(n))`, `X.optional()` is `z.optional(X)`, `X.int()` is `X.check(z.int())`.
 *
 * zod/mini loads no locale, so its messages would all be "Invalid input": the English one is configured here, once,
 * for every importer. Import zod from this file, never from 'zod' or 'zod/mini' directly.
 */
import { config } from 'zod/mini';
import en from 'zod/v4/locales/en.js';

config(en());

export * from 'zod/mini';
