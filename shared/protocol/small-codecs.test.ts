// Round trips of the small codecs every side uses: hex, device ids, topics, key files.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { bytesEqual, concatBytes, fromHex, toHex } from '../hex.ts';
import { deviceIdOf, isDeviceId, publicKeyOf } from './device-id.ts';
import { eventsTopic, heartbeatTopic, parseHeartbeatTopic } from './topics.ts';
import { deviceKeyFromSecret, formatKeyFile, parseKeyFile } from './keyfile.ts';

describe('hex', () => {
  it('round trips any bytes, lowercase only', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 100 }), (b) => {
        const h = toHex(b);
        expect(h).toMatch(/^[0-9a-f]*$/);
        expect(h).toBe(Buffer.from(b).toString('hex'));
        expect(bytesEqual(fromHex(h)!, b)).toBe(true);
        if (/[a-f]/.test(h)) {
          expect(fromHex(h.toUpperCase())).toBeUndefined();
          expect(bytesEqual(fromHex(h.toUpperCase(), true)!, b)).toBe(true);
        }
      }),
    );
  });

  it('rejects odd lengths and non-hex characters without throwing', () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 40 }), (s) => {
        const r = fromHex(s);
        if (r !== undefined) expect(toHex(r)).toBe(s);
      }),
      { numRuns: 2000 },
    );
    expect(fromHex('abc')).toBeUndefined();
    expect(fromHex('0g')).toBeUndefined();
    expect(concatBytes(Uint8Array.of(1), new Uint8Array(0), Uint8Array.of(2, 3))).toEqual(Uint8Array.of(1, 2, 3));
  });
});

describe('device ids and topics', () => {
  it('device id ⇄ public key ⇄ topic', () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 32, maxLength: 32 }), (key) => {
        const id = deviceIdOf(key);
        expect(isDeviceId(id)).toBe(true);
        expect(bytesEqual(publicKeyOf(id)!, key)).toBe(true);
        expect(parseHeartbeatTopic(heartbeatTopic(id))).toBe(id);
        expect(eventsTopic(id)).toBe(`devices/${id}/events`);
        expect(publicKeyOf(id.toUpperCase())).toBe(/[a-f]/.test(id) ? undefined : publicKeyOf(id));
      }),
    );
  });

  it('parseHeartbeatTopic accepts nothing but devices/<64 lowercase hex>/heartbeat', () => {
    const id = 'ab'.repeat(32);
    for (const t of [`devices/${id}/events`, `devices/${id}/heartbeat/x`, `/devices/${id}/heartbeat`, `devices/${id.toUpperCase()}/heartbeat`, `devices/${id.slice(2)}/heartbeat`, 'devices/+/heartbeat', ''])
      expect(parseHeartbeatTopic(t), t).toBeUndefined();
    fc.assert(fc.property(fc.string(), (t) => {
      const r = parseHeartbeatTopic(t);
      if (r !== undefined) expect(heartbeatTopic(r)).toBe(t);
    }));
  });
});

describe('key files', () => {
  it('format → parse round trips', () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 32, maxLength: 32 }), (secret) => {
        const key = deviceKeyFromSecret(secret);
        const parsed = parseKeyFile(formatKeyFile(key));
        if (!parsed.ok) throw new Error(parsed.message);
        expect(parsed.value.deviceId).toBe(key.deviceId);
        expect(bytesEqual(parsed.value.secretKey, secret)).toBe(true);
      }),
      { numRuns: 50 },
    );
  });

  it('malformed files are CLI_INPUT results, never throws', () => {
    const key = deviceKeyFromSecret(new Uint8Array(32).fill(7));
    const good = JSON.parse(formatKeyFile(key)) as Record<string, unknown>;
    const bad = ['', 'null', '123', '[]', '{}', JSON.stringify({ ...good, kind: 'x' }), JSON.stringify({ ...good, secretKey: 'zz' }), JSON.stringify({ ...good, secretKey: '00' }), JSON.stringify({ ...good, publicKey: '00'.repeat(32) })];
    for (const text of bad) {
      const r = parseKeyFile(text);
      expect(r.ok ? 'ok' : r.code, text).toBe('CLI_INPUT');
    }
    fc.assert(fc.property(fc.string(), (s) => {
      expect(typeof parseKeyFile(s).ok).toBe('boolean');
    }));
  });
});
