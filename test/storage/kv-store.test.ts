import { afterEach, describe, expect, it } from 'vitest';
import { Cleanup, openLevelStore, tempFolder } from './kv-helpers.js';

const cleanup = new Cleanup();
afterEach(() => cleanup.run());

const key = (s: string) => Buffer.from(s);

describe('the LevelDB store (through classic-level’s native batch step)', () => {
  it('writes puts and deletes atomically and reads them back after a reopen', async () => {
    const dir = await tempFolder(cleanup);
    const kv = await openLevelStore(cleanup, dir);
    await kv.write(
      [
        { type: 'put', key: key('a'), value: Buffer.from('1') },
        { type: 'put', key: key('b'), value: Buffer.alloc(0) },
        { type: 'put', key: key('c'), value: Buffer.from('3') },
      ],
      { sync: true },
    );
    await kv.write(
      [
        { type: 'del', key: key('a') },
        { type: 'put', key: key('c'), value: Buffer.from('33') },
      ],
      { sync: false },
    );
    await kv.close();
    const again = await openLevelStore(cleanup, dir);
    const entries = await again.entries({});
    expect(entries.map(([k, v]) => [k.toString(), v.toString()])).toEqual([
      ['b', ''],
      ['c', '33'],
    ]);
  });

  it('refuses a write once closed (the native step must never see a closed database)', async () => {
    const kv = await openLevelStore(cleanup, await tempFolder(cleanup));
    await kv.close();
    await expect(
      kv.write([{ type: 'put', key: key('a'), value: key('1') }], { sync: true }),
    ).rejects.toThrow(/not open/);
  });
});
