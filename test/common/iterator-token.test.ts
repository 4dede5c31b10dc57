import { randomBytes } from 'node:crypto';
import fc from 'fast-check';
import { beforeEach, describe, expect, it } from 'vitest';
import { ManualClock } from '../../src/common/clock.js';
import { ExpiredIteratorError, InvalidArgumentError, RheosError } from '../../src/common/errors.js';
import {
  decodeIterator,
  encodeIterator,
  type IteratorClaims,
  type SigningKey,
  type SigningKeyring,
} from '../../src/common/iterator-token.js';
import { ITERATOR_LIFETIME_MS, SHARD_ITERATOR_MAX_LENGTH } from '../../src/common/limits.js';

/** An in-memory keyring: keys with consecutive ids, the newest one current. */
class TestKeyring implements SigningKeyring {
  private readonly keys = new Map<number, SigningKey>();
  private currentId: number;

  constructor(firstId = 1) {
    this.currentId = firstId;
    this.keys.set(firstId, { id: firstId, secret: randomBytes(32) });
  }

  rotate(): SigningKey {
    this.currentId += 1;
    const key = { id: this.currentId, secret: randomBytes(32) };
    this.keys.set(key.id, key);
    return key;
  }

  drop(id: number): void {
    this.keys.delete(id);
  }

  current(): SigningKey {
    return this.keys.get(this.currentId)!;
  }

  find(id: number): SigningKey | undefined {
    return this.keys.get(id);
  }

  oldestId(): number {
    return Math.min(...this.keys.keys());
  }
}

/** Runs fn and returns what it threw; fails the test if it did not throw. */
function thrownBy(fn: () => unknown): unknown {
  try {
    fn();
  } catch (error) {
    return error;
  }
  expect.fail('expected an error to be thrown');
}

function expectInvalid(fn: () => unknown, label?: string): void {
  const error = thrownBy(fn);
  expect(error, label).toBeInstanceOf(InvalidArgumentError);
  expect(error, label).toBeInstanceOf(RheosError);
  expect((error as RheosError).name, label).toBe('InvalidArgumentException');
  expect((error as RheosError).retriable, label).toBe(false);
}

function expectExpired(fn: () => unknown, label?: string): void {
  const error = thrownBy(fn);
  expect(error, label).toBeInstanceOf(ExpiredIteratorError);
  expect((error as RheosError).name, label).toBe('ExpiredIteratorException');
}

const toBytes = (token: string): Buffer => Buffer.from(token, 'base64url');
const toToken = (bytes: Buffer): string => bytes.toString('base64url');

/** Byte offsets of the token layout documented in iterator-token.ts. */
const LAYOUT = {
  version: [0, 1],
  keyId: [1, 4],
  streamIncarnation: [5, 6],
  shardIncarnation: [11, 6],
  index: [17, 8],
  offset: [25, 4],
  issuedMs: [29, 6],
  mac: [35, 16],
} as const;
const TOKEN_BYTES = 51;

let clock: ManualClock;
let keyring: TestKeyring;
let claims: IteratorClaims;
let token: string;

beforeEach(() => {
  clock = new ManualClock();
  keyring = new TestKeyring(100);
  keyring.rotate(); // ids 100 and 101; 101 is current, 100 the oldest
  claims = {
    streamIncarnation: 3,
    shardIncarnation: 17,
    position: { index: 123_456, offset: 7 },
    issuedMs: clock.nowMs(),
  };
  token = encodeIterator(claims, keyring.current());
});

const decodeNow = (text: string): IteratorClaims => decodeIterator(text, keyring, clock.nowMs());

describe('encode / decode', () => {
  it('round-trips the claims', () => {
    expect(decodeNow(token)).toEqual(claims);
  });

  it('is 68 base64url characters without padding, within the API length limit', () => {
    expect(token).toMatch(/^[A-Za-z0-9_-]{68}$/);
    expect(token.length).toBeLessThanOrEqual(SHARD_ITERATOR_MAX_LENGTH);
    expect(toBytes(token)).toHaveLength(TOKEN_BYTES);
  });

  it('round-trips claims across their whole range (property)', () => {
    const u48 = fc.integer({ min: 0, max: 2 ** 48 - 1 });
    fc.assert(
      fc.property(
        u48,
        u48,
        fc.maxSafeNat(),
        fc.integer({ min: 0, max: 2 ** 32 - 1 }),
        u48,
        (streamIncarnation, shardIncarnation, index, offset, issuedMs) => {
          const c: IteratorClaims = {
            streamIncarnation,
            shardIncarnation,
            position: { index, offset },
            issuedMs,
          };
          const t = encodeIterator(c, keyring.current());
          expect(decodeIterator(t, keyring, issuedMs)).toEqual(c);
        },
      ),
      { numRuns: 200 },
    );
  });

  it('different claims give different tokens', () => {
    const other = encodeIterator(
      { ...claims, position: { index: claims.position.index, offset: 8 } },
      keyring.current(),
    );
    expect(other).not.toBe(token);
  });

  it('tokens signed by an older key stay valid while the keyring keeps it', () => {
    const oldKey = keyring.current();
    const oldToken = encodeIterator(claims, oldKey);
    keyring.rotate();
    expect(keyring.current().id).not.toBe(oldKey.id);
    expect(decodeNow(oldToken)).toEqual(claims);
    const newToken = encodeIterator(claims, keyring.current());
    expect(newToken).not.toBe(oldToken);
    expect(decodeNow(newToken)).toEqual(claims);
  });
});

describe('tokens from another key', () => {
  it('a token signed with the same key id but another secret is InvalidArgument', () => {
    const impostor: SigningKey = { id: keyring.current().id, secret: randomBytes(32) };
    expectInvalid(() => decodeNow(encodeIterator(claims, impostor)));
  });

  it('a token signed with an unknown newer key id is InvalidArgument', () => {
    const unknown: SigningKey = { id: keyring.current().id + 1, secret: randomBytes(32) };
    expectInvalid(() => decodeNow(encodeIterator(claims, unknown)));
  });

  it("a token signed by another node's keyring is InvalidArgument", () => {
    const elsewhere = new TestKeyring(100);
    elsewhere.rotate();
    expectInvalid(() => decodeNow(encodeIterator(claims, elsewhere.current())));
  });

  it('a token whose key was dropped (id below oldestId) is ExpiredIterator', () => {
    const oldToken = encodeIterator(claims, keyring.find(100)!);
    expect(decodeNow(oldToken)).toEqual(claims);
    keyring.drop(100);
    expect(keyring.oldestId()).toBe(101);
    expectExpired(() => decodeNow(oldToken));
  });
});

describe('corruption and forgery', () => {
  it('rejects every single-byte corruption (each byte inverted) with InvalidArgument', () => {
    const bytes = toBytes(token);
    for (let i = 0; i < bytes.length; i++) {
      const corrupted = Buffer.from(bytes);
      corrupted[i] = corrupted[i]! ^ 0xff;
      expectInvalid(() => decodeNow(toToken(corrupted)), `byte ${i}`);
    }
  });

  it('rejects every single-bit flip outside the key id with InvalidArgument', () => {
    const bytes = toBytes(token);
    const [keyStart, keyLength] = LAYOUT.keyId;
    for (let bit = 0; bit < bytes.length * 8; bit++) {
      const byte = bit >> 3;
      if (byte >= keyStart && byte < keyStart + keyLength) continue;
      const corrupted = Buffer.from(bytes);
      corrupted[byte] = corrupted[byte]! ^ (1 << (bit & 7));
      expectInvalid(() => decodeNow(toToken(corrupted)), `bit ${bit}`);
    }
  });

  it('never accepts a token whose key id bits were flipped', () => {
    // A flipped key id naming a key already dropped cannot be told from a genuine old token, so
    // it reads as expired; every other flip is InvalidArgument.
    const bytes = toBytes(token);
    const [keyStart] = LAYOUT.keyId;
    for (let bit = keyStart * 8; bit < (keyStart + 4) * 8; bit++) {
      const corrupted = Buffer.from(bytes);
      corrupted[bit >> 3] = corrupted[bit >> 3]! ^ (1 << (bit & 7));
      const keyId = corrupted.readUInt32BE(keyStart);
      if (keyId < keyring.oldestId()) expectExpired(() => decodeNow(toToken(corrupted)));
      else expectInvalid(() => decodeNow(toToken(corrupted)), `key id bit ${bit} -> ${keyId}`);
    }
  });

  const rewrite = (field: keyof typeof LAYOUT, value: number): string => {
    const [start, length] = LAYOUT[field];
    const bytes = toBytes(token);
    if (length === 8) bytes.writeBigUInt64BE(BigInt(value), start);
    else bytes.writeUIntBE(value, start, length);
    return toToken(bytes);
  };

  it('layout offsets in this test match the token (sanity check for the forgeries below)', () => {
    const bytes = toBytes(token);
    expect(bytes.readUInt8(0)).toBe(1);
    expect(bytes.readUInt32BE(LAYOUT.keyId[0])).toBe(keyring.current().id);
    expect(bytes.readUIntBE(...LAYOUT.streamIncarnation)).toBe(claims.streamIncarnation);
    expect(bytes.readUIntBE(...LAYOUT.shardIncarnation)).toBe(claims.shardIncarnation);
    expect(bytes.readBigUInt64BE(LAYOUT.index[0])).toBe(BigInt(claims.position.index));
    expect(bytes.readUInt32BE(LAYOUT.offset[0])).toBe(claims.position.offset);
    expect(bytes.readUIntBE(...LAYOUT.issuedMs)).toBe(claims.issuedMs);
  });

  it('rejects a cross-shard forgery (shard incarnation rewritten, MAC kept)', () => {
    expectInvalid(() => decodeNow(rewrite('shardIncarnation', claims.shardIncarnation + 1)));
    expectInvalid(() => decodeNow(rewrite('shardIncarnation', 0)));
  });

  it('rejects other rewritten claims: stream incarnation, position, issue time, version', () => {
    expectInvalid(() => decodeNow(rewrite('streamIncarnation', claims.streamIncarnation + 1)));
    expectInvalid(() => decodeNow(rewrite('index', 0)));
    expectInvalid(() => decodeNow(rewrite('offset', claims.position.offset + 1)));
    expectInvalid(() => decodeNow(rewrite('issuedMs', claims.issuedMs + 60_000)));
    expectInvalid(() => decodeNow(rewrite('version', 2)));
  });

  it('an expired token that was also tampered with is InvalidArgument, not Expired', () => {
    const forged = rewrite('shardIncarnation', claims.shardIncarnation + 1);
    clock.advance(ITERATOR_LIFETIME_MS + 1);
    expectInvalid(() => decodeNow(forged));
  });

  it('a forged token cannot extend its own lifetime by moving the issue time', () => {
    clock.advance(ITERATOR_LIFETIME_MS + 1);
    expectExpired(() => decodeNow(token));
    expectInvalid(() => decodeNow(rewrite('issuedMs', clock.nowMs())));
  });
});

describe('malformed strings', () => {
  it('rejects truncated tokens', () => {
    for (const cut of [1, 2, 3, 4, 8, 22, 67]) {
      expectInvalid(() => decodeNow(token.slice(0, token.length - cut)), `cut ${cut} from end`);
    }
    expectInvalid(() => decodeNow(token.slice(1)), 'first character removed');
  });

  it('rejects the empty string', () => {
    expectInvalid(() => decodeNow(''));
  });

  it('rejects tokens extended by 2 to 4 characters', () => {
    for (const extra of ['AA', 'AAA', 'AAAA', token.slice(0, 4)]) {
      expectInvalid(() => decodeNow(token + extra), `+${extra}`);
    }
  });

  it('rejects a token extended by a single character', () => {
    // 69 base64url characters carry 51 whole bytes plus 6 stray bits; a lenient decoder drops the
    // last character and reads the genuine token, so one iterator would have many spellings.
    for (const extra of ['A', 'Q', '_', '-', '0']) {
      expectInvalid(() => decodeNow(token + extra), `+${extra}`);
    }
  });

  it('rejects characters outside the base64url alphabet', () => {
    const middle = token.length >> 1;
    const variants = [
      token + '=',
      token.slice(0, middle) + '+' + token.slice(middle + 1),
      token.slice(0, middle) + '/' + token.slice(middle + 1),
      token.slice(0, middle) + ' ' + token.slice(middle),
      token + '\n',
      ' ' + token,
      token.slice(0, middle) + '\u00e9' + token.slice(middle + 1),
      token.slice(0, middle) + '.' + token.slice(middle + 1),
    ];
    for (const v of variants) expectInvalid(() => decodeNow(v), JSON.stringify(v));
  });

  it('rejects the standard-base64 spelling of a genuine token', () => {
    // Find a genuine token whose standard base64 spelling differs (contains + or /).
    let genuine = token;
    for (let offset = 0; !/[+/]/.test(toBytes(genuine).toString('base64')); offset++) {
      genuine = encodeIterator({ ...claims, position: { index: 1, offset } }, keyring.current());
    }
    expect(decodeNow(genuine).position.index).toBe(genuine === token ? 123_456 : 1);
    expectInvalid(() => decodeNow(toBytes(genuine).toString('base64')));
  });

  it('rejects garbage', () => {
    for (const g of ['hello', 'AAAA', 'A'.repeat(68), '_'.repeat(68), 'null', 'undefined']) {
      expectInvalid(() => decodeNow(g), g);
    }
  });

  it('rejects random 68-character base64url strings (property)', () => {
    const b64url = fc.constantFrom(
      ...'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_',
    );
    fc.assert(
      fc.property(fc.string({ unit: b64url, minLength: 68, maxLength: 68 }), (s) => {
        // Keep the real version and key id so the MAC check is what has to catch it.
        const bytes = Buffer.from(s, 'base64url');
        bytes.writeUInt8(1, 0);
        bytes.writeUInt32BE(keyring.current().id, 1);
        expectInvalid(() => decodeNow(toToken(bytes)));
      }),
      { numRuns: 200 },
    );
  });
});

describe('expiry', () => {
  it('is valid at exactly the lifetime and expired 1 ms later', () => {
    expect(ITERATOR_LIFETIME_MS).toBe(5 * 60 * 1000);
    clock.advance(ITERATOR_LIFETIME_MS);
    expect(decodeNow(token)).toEqual(claims);
    clock.advance(1);
    expectExpired(() => decodeNow(token));
  });

  it('stays expired as time goes on', () => {
    clock.advance(ITERATOR_LIFETIME_MS + 1);
    expectExpired(() => decodeNow(token));
    clock.advance(24 * 3600 * 1000);
    expectExpired(() => decodeNow(token));
  });

  it('honours a custom lifetime', () => {
    clock.advance(1000);
    expect(decodeIterator(token, keyring, clock.nowMs(), 1000)).toEqual(claims);
    expectExpired(() => decodeIterator(token, keyring, clock.nowMs(), 999));
  });

  it('uses the issue time carried in the token, not the time of encoding', () => {
    clock.advance(ITERATOR_LIFETIME_MS);
    const reissued = encodeIterator({ ...claims, issuedMs: clock.nowMs() }, keyring.current());
    clock.advance(ITERATOR_LIFETIME_MS);
    expect(decodeNow(reissued).issuedMs).toBe(claims.issuedMs + ITERATOR_LIFETIME_MS);
    expectExpired(() => decodeNow(token));
  });

  it('the expiry message names the tolerated delay', () => {
    clock.advance(ITERATOR_LIFETIME_MS + 1);
    const error = thrownBy(() => decodeNow(token)) as Error;
    expect(error.message).toContain(`${ITERATOR_LIFETIME_MS} milliseconds`);
    expect(error.message).toContain(new Date(claims.issuedMs).toISOString());
  });
});
