#!/usr/bin/env node
// The `rheos` command. Runs the compiled CLI; `npm start` and `npm run build` produce dist/.
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const entry = join(root, 'dist', 'src', 'cli', 'main.js');
if (!existsSync(entry)) {
  console.error('rheos: not built yet. Run `npm run build` (or `npm start`) in ' + root);
  process.exit(1);
}
await import(pathToFileURL(entry).href);
