import { existsSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import * as errors from '../../src/common/errors.js';
import * as surface from '../../src/client/index.js';
import * as root from '../../src/index.js';
import { ROOT } from '../helpers/processes.js';
import { findPublicAny } from './declared-any.js';

/**
 * The public surface of `rheos/client` as the emitted declarations show it (`npm run build`
 * first): no `any` anywhere callers can reach, declarations that type-check, and every error
 * class callers may catch.
 */

const DIST = join(ROOT, 'dist', 'src');
const dirs: string[] = [];
afterAll(async () => {
  for (const dir of dirs) await rm(dir, { recursive: true, force: true });
});

describe('the public types of rheos/client', () => {
  it('have no any in what the entry exports, nor in anything those declarations name', () => {
    const entry = join(DIST, 'client', 'index.d.ts');
    expect(existsSync(entry), `${entry} is missing: run npm run build`).toBe(true);
    const report = findPublicAny(entry, DIST);
    // The walk really reaches the client, the generated messages and the error classes.
    expect(report.files).toEqual(
      expect.arrayContaining([
        'client/client.d.ts',
        'client/lineage-reader.d.ts',
        'common/errors.d.ts',
        'gen/rheos/v1/data.d.ts',
        'gen/rheos/v1/stream.d.ts',
      ]),
    );
    expect(report.diagnostics).toEqual([]);
    expect(report.findings).toEqual([]);
  });

  it('the check finds an any two files away from the entry, and ignores unreachable ones', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'rheos-dts-'));
    dirs.push(dir);
    await writeFile(join(dir, 'package.json'), '{"type":"module"}');
    await writeFile(join(dir, 'index.d.ts'), "export { Widget, type Options } from './a.js';\n");
    await writeFile(
      join(dir, 'a.d.ts'),
      [
        "import type { Part } from './b.js';",
        'export interface Options { readonly parts: readonly Part[] }',
        'export declare class Widget { private secret; constructor(options: Options); }',
        '',
      ].join('\n'),
    );
    await writeFile(
      join(dir, 'b.d.ts'),
      [
        'export interface Part { readonly meta: Record<string, any> }',
        'export declare function unusedFromJSON(object: any): Part;',
        '',
      ].join('\n'),
    );
    const report = findPublicAny(join(dir, 'index.d.ts'), dir, []);
    expect(report.diagnostics).toEqual([]);
    expect(report.findings).toEqual([{ where: 'b.d.ts:1', text: 'Record<string, any>' }]);
  });

  it('export every error class of src/common/errors.ts', () => {
    const classes = Object.entries(errors).filter(
      ([, value]) =>
        typeof value === 'function' &&
        (value === errors.RheosError || value.prototype instanceof errors.RheosError),
    );
    expect(classes.length).toBeGreaterThan(10);
    const exported = surface as Record<string, unknown>;
    for (const [name, value] of classes) expect(exported[name], name).toBe(value);
  });

  it('are what the package root exports too', () => {
    expect(Object.keys(root).sort()).toEqual(Object.keys(surface).sort());
  });
});
