import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { RheosError, ValidationError } from '../../src/common/errors.js';
import { countChars, Validator } from '../../src/common/validation.js';

/** The ValidationError message thrown by v, failing the test if v is valid. */
function messageOf(v: Validator): string {
  try {
    v.throwIfInvalid();
  } catch (error) {
    expect(error).toBeInstanceOf(ValidationError);
    expect(error).toBeInstanceOf(RheosError);
    expect((error as RheosError).name).toBe('ValidationException');
    expect((error as RheosError).retriable).toBe(false);
    return (error as Error).message;
  }
  return expect.fail('expected a ValidationError');
}

const PATTERN_MSG = 'Member must satisfy regular expression pattern: [a-zA-Z0-9_.-]+';

describe('Validator messages', () => {
  it('uses the AWS singular form for one problem', () => {
    const v = new Validator().fail('field', 'x', 'Member must be nice');
    expect(v.ok).toBe(false);
    expect(messageOf(v)).toBe(
      "1 validation error detected: Value 'x' at 'field' failed to satisfy constraint: " +
        'Member must be nice',
    );
  });

  it('uses the plural form and joins problems with "; " in order', () => {
    const v = new Validator()
      .fail('a', '1', 'first')
      .fail('b', '2', 'second')
      .fail('c', 3, 'third');
    expect(messageOf(v)).toBe(
      '3 validation errors detected: ' +
        "Value '1' at 'a' failed to satisfy constraint: first; " +
        "Value '2' at 'b' failed to satisfy constraint: second; " +
        "Value '3' at 'c' failed to satisfy constraint: third",
    );
  });

  it('a validator with no problems is ok and does not throw', () => {
    const v = new Validator().streamName('streamName', 'good').partitionKey('partitionKey', 'k');
    expect(v.ok).toBe(true);
    expect(() => v.throwIfInvalid()).not.toThrow();
  });

  it('shows long values cut to 200 characters', () => {
    const long = 'x'.repeat(300);
    const msg = messageOf(new Validator().fail('f', long, 'c'));
    expect(msg).toContain(`Value '${'x'.repeat(200)}...' at 'f'`);
    expect(msg).not.toContain('x'.repeat(201));
  });

  it('shows a value of exactly 200 characters in full', () => {
    const msg = messageOf(new Validator().fail('f', 'y'.repeat(200), 'c'));
    expect(msg).toContain(`Value '${'y'.repeat(200)}' at 'f'`);
  });

  it('never cuts a long value inside a surrogate pair', () => {
    // 'a' then emoji: UTF-16 unit 200 falls in the middle of an emoji.
    const value = 'a' + '😀'.repeat(150);
    const msg = messageOf(new Validator().fail('f', value, 'c'));
    // A lone surrogate does not survive UTF-8 (it becomes U+FFFD on the wire).
    expect(Buffer.from(msg, 'utf8').toString('utf8')).toBe(msg);
  });

  it('describes binary values by their size, and numbers as numbers', () => {
    const msg = messageOf(new Validator().fail('data', new Uint8Array(7), 'c').fail('n', 42, 'c'));
    expect(msg).toContain("Value '<7 bytes>' at 'data'");
    expect(msg).toContain("Value '42' at 'n'");
  });

  it('required reports missing values as null', () => {
    for (const missing of [undefined, null, '']) {
      const msg = messageOf(new Validator().required('shardId', missing));
      expect(msg).toBe(
        "1 validation error detected: Value null at 'shardId' failed to satisfy constraint: " +
          'Member must not be null',
      );
    }
  });

  it('required accepts falsy but present values', () => {
    for (const present of [0, false, ' ', 'x', []]) {
      expect(new Validator().required('f', present).ok, JSON.stringify(present)).toBe(true);
    }
  });

  it('range reports the bound that was broken', () => {
    expect(messageOf(new Validator().range('limit', 0, 1, 10))).toContain(
      "Value '0' at 'limit' failed to satisfy constraint: Member must have value greater than or equal to 1",
    );
    expect(messageOf(new Validator().range('limit', 11, 1, 10))).toContain(
      "Value '11' at 'limit' failed to satisfy constraint: Member must have value less than or equal to 10",
    );
    expect(messageOf(new Validator().range('limit', Number.NaN, 1, 10))).toContain(
      'greater than or equal to 1',
    );
    expect(new Validator().range('limit', 1, 1, 10).range('limit', 10, 1, 10).ok).toBe(true);
  });
});

describe('countChars', () => {
  it('counts Unicode code points, not UTF-16 units', () => {
    expect(countChars('')).toBe(0);
    expect(countChars('abc')).toBe(3);
    expect(countChars('é')).toBe(1);
    expect(countChars('😀')).toBe(1);
    expect('😀'.length).toBe(2);
    expect(countChars('a😀b')).toBe(3);
    expect(countChars('😀'.repeat(256))).toBe(256);
  });

  it('counts each code point of a combined sequence', () => {
    expect(countChars('e\u0301')).toBe(2); // e + combining acute
    expect(countChars('👍🏽')).toBe(2); // thumbs up + skin tone modifier
  });

  it('counts a lone surrogate as one', () => {
    expect(countChars('\ud800')).toBe(1);
    expect(countChars('a\udc00b')).toBe(3);
  });

  it('equals the length of the code point array (property)', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'binary', maxLength: 100 }), (s) => {
        expect(countChars(s)).toBe([...s].length);
      }),
    );
  });
});

describe('stream names', () => {
  const check = (name: string) => new Validator().streamName('streamName', name);

  it('accepts 1 to 128 characters of [a-zA-Z0-9_.-]', () => {
    for (const name of ['a', 'Z', '0', '_', '.', '-', 'my-stream_1.0', 'x'.repeat(128)]) {
      expect(check(name).ok, name).toBe(true);
    }
    expect(check('abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-').ok).toBe(
      true,
    );
  });

  it('an empty name is a missing member', () => {
    expect(messageOf(check(''))).toBe(
      "1 validation error detected: Value null at 'streamName' failed to satisfy constraint: " +
        'Member must not be null',
    );
  });

  it('rejects 129 characters with the length message', () => {
    const name = 'x'.repeat(129);
    expect(messageOf(check(name))).toBe(
      `1 validation error detected: Value '${'x'.repeat(129).slice(0, 200)}' at 'streamName' ` +
        'failed to satisfy constraint: Member must have length less than or equal to 128',
    );
  });

  it('rejects characters outside the pattern with the pattern message', () => {
    for (const name of ['a b', 'a/b', 'a:b', 'é', 'a😀', 'tab\t', 'x*', 'a+b', 'ü']) {
      expect(messageOf(check(name)), JSON.stringify(name)).toBe(
        `1 validation error detected: Value '${name}' at 'streamName' failed to satisfy ` +
          `constraint: ${PATTERN_MSG}`,
      );
    }
  });

  it('reports both problems of a name too long and badly formed', () => {
    const name = '!'.repeat(129);
    const msg = messageOf(check(name));
    expect(msg.startsWith('2 validation errors detected: ')).toBe(true);
    expect(msg).toContain('Member must have length less than or equal to 128');
    expect(msg).toContain(PATTERN_MSG);
  });

  it('problems from several fields accumulate', () => {
    const v = new Validator().streamName('streamName', 'bad name').partitionKey('partitionKey', '');
    const msg = messageOf(v);
    expect(msg.startsWith('2 validation errors detected: ')).toBe(true);
    expect(msg).toContain("at 'streamName'");
    expect(msg).toContain("Value null at 'partitionKey'");
  });
});

describe('shard ids', () => {
  const check = (id: string) => new Validator().shardId('shardId', id);

  it('accepts 1 to 128 characters of [a-zA-Z0-9_.-]', () => {
    expect(check('shardId-000000000000').ok).toBe(true);
    expect(check('x'.repeat(128)).ok).toBe(true);
  });

  it('rejects empty, too long and badly formed ids', () => {
    expect(messageOf(check(''))).toContain("Value null at 'shardId'");
    expect(messageOf(check('x'.repeat(129)))).toContain('less than or equal to 128');
    expect(messageOf(check('shard id'))).toContain(PATTERN_MSG);
  });
});

describe('partition keys', () => {
  const check = (key: string) => new Validator().partitionKey('partitionKey', key);

  it('accepts 1 to 256 code points of anything', () => {
    for (const key of ['k', ' ', 'a b/c:d', 'é', '😀', 'x'.repeat(256), '😀'.repeat(256)]) {
      expect(check(key).ok, `${countChars(key)} chars`).toBe(true);
    }
  });

  it('counts code points: 256 emoji (512 UTF-16 units) are allowed', () => {
    const key = '😀'.repeat(256);
    expect(key.length).toBe(512);
    expect(check(key).ok).toBe(true);
  });

  it('rejects 257 code points', () => {
    for (const key of ['x'.repeat(257), '😀'.repeat(257), 'x'.repeat(256) + '😀']) {
      expect(messageOf(check(key)), `${key.length} units`).toContain(
        "at 'partitionKey' failed to satisfy constraint: " +
          'Member must have length less than or equal to 256',
      );
    }
  });

  it('an empty key is a missing member', () => {
    expect(messageOf(check(''))).toBe(
      "1 validation error detected: Value null at 'partitionKey' failed to satisfy constraint: " +
        'Member must not be null',
    );
  });

  it('length checks report the minimum too', () => {
    expect(messageOf(new Validator().length('f', 'ab', 3, 5))).toContain(
      'Member must have length greater than or equal to 3',
    );
    expect(new Validator().length('f', '😀😀😀', 3, 3).ok).toBe(true);
  });
});
