// Interop with an independent Ed25519 implementation (issue 2 "Done when"): a heartbeat built by
// hand from the byte table in docs/protocol.md §Heartbeat (plain Buffer writes, no Pulse codec),
// signed over DOMAIN || body by the OpenSSL command line (`openssl pkeyutl -sign -rawin`) with a key
// from `openssl genpkey`, must pass `pulse hb inspect`; the same bytes with any single bit flipped
// must fail with the code of the field the bit lands in.
import { execFile, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { expectedCodeForFlip, flipBit } from '../scripts/gen-vectors.ts';
import { nativeVerifier } from '../shared/crypto/native.ts';
import { nobleVerifier } from '../shared/crypto/noble.ts';
import { verifyHeartbeat } from '../shared/protocol/heartbeat.ts';

const run = promisify(execFile);
const PULSE = new URL('../bin/pulse.js', import.meta.url).pathname;
const haveOpenssl = spawnSync('openssl', ['version'], { encoding: 'utf8' }).status === 0;
if (!haveOpenssl && process.env['CI'] === 'true') throw new Error('openssl CLI is required under CI=true');

async function pulse(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await run(process.execPath, [PULSE, ...args], { encoding: 'utf8' });
    return { code: 0, stdout, stderr };
  } catch (e) {
    const x = e as { code?: number; stdout?: string; stderr?: string };
    return { code: typeof x.code === 'number' ? x.code : -1, stdout: x.stdout ?? '', stderr: x.stderr ?? '' };
  }
}

describe.skipIf(!haveOpenssl)('OpenSSL-signed heartbeat built from docs/protocol.md', () => {
  const dir = mkdtempSync(join(tmpdir(), 'pulse-openssl-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  const openssl = (...args: string[]) => {
    const r = spawnSync('openssl', args, { cwd: dir });
    if (r.status !== 0) throw new Error(`openssl ${args.join(' ')}: ${r.stderr.toString()}`);
    return r.stdout;
  };

  // Key: OpenSSL makes it; the raw 32-byte public key is the tail of the SubjectPublicKeyInfo DER.
  openssl('genpkey', '-algorithm', 'ed25519', '-out', 'key.pem');
  const spki = openssl('pkey', '-in', 'key.pem', '-pubout', '-outform', 'DER');
  const publicKey = spki.subarray(spki.length - 32);
  const deviceId = publicKey.toString('hex');

  // Body, field by field from the byte table: version, type, network id (u32 BE), public key,
  // seq (u64 BE), timestamp (u64 BE, ms), n, n × (id u16 BE, value u64 BE).
  const networkId = 7;
  const metrics: [number, bigint][] = [[1, 3600n], [4, 99n], [300, 18446744073709551615n]];
  const body = Buffer.alloc(55 + 10 * metrics.length);
  body[0] = 0x01;
  body[1] = 0x01;
  body.writeUInt32BE(networkId, 2);
  publicKey.copy(body, 6);
  body.writeBigUInt64BE(17n, 38);
  body.writeBigUInt64BE(1_767_225_600_000n, 46);
  body[54] = metrics.length;
  metrics.forEach(([id, value], i) => {
    body.writeUInt16BE(id, 55 + 10 * i);
    body.writeBigUInt64BE(value, 57 + 10 * i);
  });
  // Signed message: the ASCII DOMAIN then the body; -rawin signs it as plain Ed25519 (RFC 8032).
  writeFileSync(join(dir, 'msg.bin'), Buffer.concat([Buffer.from('PULSE-V1', 'ascii'), body]));
  openssl('pkeyutl', '-sign', '-rawin', '-inkey', 'key.pem', '-in', 'msg.bin', '-out', 'sig.bin');
  const signature = readFileSync(join(dir, 'sig.bin'));
  const heartbeat = Buffer.concat([body, signature]);
  const hex = heartbeat.toString('hex');
  const topic = `devices/${deviceId}/heartbeat`;

  it('is 119 + 10·n bytes and OpenSSL verifies its own signature', () => {
    expect(signature.length).toBe(64);
    expect(heartbeat.length).toBe(119 + 10 * metrics.length);
    openssl('pkey', '-in', 'key.pem', '-pubout', '-out', 'pub.pem');
    expect(openssl('pkeyutl', '-verify', '-rawin', '-pubin', '-inkey', 'pub.pem', '-in', 'msg.bin', '-sigfile', 'sig.bin').toString()).toMatch(/Signature Verified Successfully/);
  });

  it('passes `pulse hb inspect` (hex argument, native verifier) with exit status 0 and the right fields', async () => {
    const r = await pulse(['hb', 'inspect', hex, '--network', String(networkId), '--topic', topic, '--json']);
    expect(r.code, r.stdout + r.stderr).toBe(0);
    const out = JSON.parse(r.stdout) as { valid: boolean; problems: unknown[]; heartbeat: { deviceId: string; seq: string; timestamp: string; metrics: { id: number; value: string }[] } };
    expect(out.valid).toBe(true);
    expect(out.problems).toEqual([]);
    expect(out.heartbeat.deviceId).toBe(deviceId);
    expect(out.heartbeat.seq).toBe('17');
    expect(out.heartbeat.timestamp).toBe('1767225600000');
    expect(out.heartbeat.metrics).toEqual(metrics.map(([id, value]) => ({ id, value: value.toString() })));
  });

  it('passes `pulse hb inspect @file` from raw bytes with the noble verifier', async () => {
    writeFileSync(join(dir, 'hb.bin'), heartbeat);
    const r = await pulse(['hb', 'inspect', `@${join(dir, 'hb.bin')}`, '--network', String(networkId), '--verifier', 'noble']);
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(r.stdout).toContain('VALID');
  });

  it('fails with the code of the field for every single flipped bit (both verifiers)', () => {
    const ctx = { networkId, topic };
    for (let bit = 0; bit < heartbeat.length * 8; bit++) {
      const flipped = flipBit(heartbeat, bit);
      const expected = expectedCodeForFlip(heartbeat, bit, ctx);
      for (const verifier of bit % 4 === 0 ? [nativeVerifier, nobleVerifier] : [nativeVerifier]) {
        const r = verifyHeartbeat(flipped, { verifier, ...ctx });
        expect(r.ok ? 'ok' : r.code, `${verifier.name}, bit ${bit}`).toBe(expected);
      }
    }
  });

  it('`pulse hb inspect` exits 1 and prints the right code for a flipped bit in each field', async () => {
    // One bit per field (the exhaustive sweep above runs in-process; a child process per bit would
    // cost ~1 s each).
    const ctx = { networkId };
    const sigStart = 55 + 10 * metrics.length;
    const bits = [0, 8, 2 * 8 + 3, 6 * 8 + 1, 38 * 8 + 7, 45 * 8, 47 * 8, 54 * 8 + 4, 55 * 8, 65 * 8 + 6, sigStart * 8 + 9, (sigStart + 63) * 8 + 6, (sigStart + 40) * 8];
    for (let i = 0; i < bits.length; i += 2) {
      await Promise.all(
        bits.slice(i, i + 2).map(async (bit) => {
          const expected = expectedCodeForFlip(heartbeat, bit, ctx);
          const r = await pulse(['hb', 'inspect', Buffer.from(flipBit(heartbeat, bit)).toString('hex'), '--network', String(networkId), '--json']);
          expect(r.code, `bit ${bit}: ${r.stdout}${r.stderr}`).toBe(1);
          const out = JSON.parse(r.stdout) as { valid: boolean; problems: { code: string }[] };
          expect(out.valid).toBe(false);
          expect(out.problems[0]?.code, `bit ${bit}`).toBe(expected);
        }),
      );
    }
  });
});
