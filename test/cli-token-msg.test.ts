// `pulse token` and `pulse msg`, run as child processes (node bin/pulse.js …), checked against the
// committed vectors: what the CLI makes is byte for byte what the vectors hold.
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { deviceKeyFromSecret, formatKeyFile } from '../shared/protocol/keyfile.ts';
import { fromHex } from '../shared/hex.ts';

type Run = { code: number; stdout: string; stderr: string };
const PULSE = new URL('../bin/pulse.js', import.meta.url).pathname;

function pulse(args: string[]): Promise<Run> {
  return new Promise((resolve) => {
    execFile(process.execPath, [PULSE, ...args], { encoding: 'utf8' }, (error, stdout, stderr) => {
      const code = error === null ? 0 : typeof (error as { code?: unknown }).code === 'number' ? (error as { code: number }).code : -1;
      resolve({ code, stdout, stderr });
    });
  });
}

type Vec = Record<string, unknown>;
const load = (name: string) => JSON.parse(readFileSync(new URL(`../shared/vectors/${name}`, import.meta.url), 'utf8')) as { valid: Vec[]; broken: Vec[] };
const tokens = load('connect-token.json');
const identity = load('identity.json');
const dir = mkdtempSync(join(tmpdir(), 'pulse-cli-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
function keyFile(secretHex: string): string {
  const key = deviceKeyFromSecret(fromHex(secretHex)!);
  const file = join(dir, `${key.deviceId.slice(0, 16)}.json`);
  writeFileSync(file, formatKeyFile(key));
  return file;
}

describe('pulse token', () => {
  const v = tokens.valid[0]!;
  const key = keyFile(v['secretKey'] as string);

  it('make prints client id, username and the vector password', async () => {
    const [json, text] = await Promise.all([
      pulse(['token', 'make', '--key', key, '--ts', v['timestamp'] as string, '--network', String(v['networkId']), '--json']),
      pulse(['token', 'make', '--key', key, '--ts', v['timestamp'] as string, '--network', String(v['networkId'])]),
    ]);
    expect(json.code, json.stderr).toBe(0);
    const out = JSON.parse(json.stdout) as Record<string, string>;
    expect(out['clientId']).toBe(v['clientId']);
    expect(out['username']).toBe(v['username']);
    expect(out['password']).toBe(v['password']);
    expect(text.stdout).toContain(`password   ${v['password'] as string}`);
  });

  it('inspect accepts the vector token at its time and network, refuses it elsewhere with the right code', async () => {
    const base = ['token', 'inspect', v['password'] as string, '--device', v['clientId'] as string];
    const [good, skew, network] = await Promise.all([
      pulse([...base, '--network', '1', '--now', String(v['now'])]),
      pulse([...base, '--network', '1', '--now', String((v['now'] as number) + 30_001), '--json']),
      pulse([...base, '--network', '2', '--now', String(v['now']), '--json']),
    ]);
    expect(good.code, good.stdout + good.stderr).toBe(0);
    expect(good.stdout).toContain('VALID');
    expect(skew.code).toBe(1);
    // The clock failed but the signature itself is good, so only one problem is listed.
    expect((JSON.parse(skew.stdout) as { problems: { code: string }[] }).problems.map((p) => p.code)).toEqual(['TOKEN_CLOCK_SKEW']);
    expect(network.code).toBe(1);
    expect((JSON.parse(network.stdout) as { problems: { code: string }[] }).problems[0]!.code).toBe('TOKEN_BAD_SIGNATURE');
  });

  it('inspect of a stale token with a bad signature lists both problems', async () => {
    const tampered = (v['password'] as string).slice(0, 20) + ((v['password'] as string)[20] === '0' ? '1' : '0') + (v['password'] as string).slice(21);
    const r = await pulse(['token', 'inspect', tampered, '--device', v['clientId'] as string, '--network', '1', '--now', String(v['now']), '--last', v['timestamp'] as string, '--json']);
    expect(r.code).toBe(1);
    expect((JSON.parse(r.stdout) as { problems: { code: string }[] }).problems.map((p) => p.code)).toEqual(['TOKEN_STALE', 'TOKEN_BAD_SIGNATURE']);
  });

  it('inspect without --device is a usage error', async () => {
    const r = await pulse(['token', 'inspect', v['password'] as string]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('CLI_USAGE');
  });
});

describe('pulse msg', () => {
  const byName = (n: string) => identity.valid.find((c) => c['name'] === n)!;

  it('make reproduces all four identity vectors byte for byte', async () => {
    const cert = byName('maker certificate');
    const bind = byName('owner binding');
    const transfer = byName('owner transfer');
    const rotation = byName('key rotation');
    const f = (c: Vec) => c['fields'] as Record<string, string | number>;
    const runs = await Promise.all([
      pulse(['msg', 'make', 'maker-certificate', '--key', keyFile(cert['signerSecretKey'] as string), '--device', f(cert)['deviceKey'] as string, '--model', f(cert)['model'] as string, '--issued-at', f(cert)['issuedAt'] as string, '--network', '1']),
      pulse(['msg', 'make', 'owner-binding', '--key', keyFile(bind['signerSecretKey'] as string), '--owner', `0x${f(bind)['owner'] as string}`, '--nonce', f(bind)['nonce'] as string]),
    ]);
    const more = await Promise.all([
      pulse(['msg', 'make', 'owner-transfer', '--key', keyFile(transfer['signerSecretKey'] as string), '--new-owner', `0x${(f(transfer)['newOwner'] as string).toUpperCase()}`, '--nonce', f(transfer)['nonce'] as string]),
      pulse(['msg', 'make', 'key-rotation', '--key', keyFile(rotation['signerSecretKey'] as string), '--new-key', f(rotation)['newKey'] as string, '--nonce', f(rotation)['nonce'] as string]),
    ]);
    const expected = [cert, bind, transfer, rotation];
    [...runs, ...more].forEach((r, i) => {
      expect(r.code, r.stderr).toBe(0);
      expect(r.stdout.trim(), String(expected[i]!['name'])).toBe(expected[i]!['hex']);
    });
  });

  it('inspect detects the kind, prints the fields and exits 0 for a valid message', async () => {
    const c = byName('maker certificate, non-ASCII model with a leading BOM');
    const r = await pulse(['msg', 'inspect', c['hex'] as string, '--network', '1']);
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(r.stdout).toContain('maker-certificate');
    expect(r.stdout).toContain(JSON.stringify((c['fields'] as Record<string, string>)['model']));
    expect(r.stdout).toContain('VALID');
  });

  it('inspect exits 1 with the declared code for broken messages', async () => {
    const pick = (n: string) => identity.broken.find((c) => c['name'] === n)!;
    const cases = [pick('wrong network'), pick('rotation to a small-order key'), pick('owner binding read as an owner transfer'), pick('65-byte model')];
    for (let i = 0; i < cases.length; i += 2) {
      await Promise.all(
        cases.slice(i, i + 2).map(async (c) => {
          const args = ['msg', 'inspect', c['hex'] as string, '--kind', c['kind'] as string, '--json'];
          const networkId = (c['context'] as { networkId?: number } | undefined)?.networkId;
          if (networkId !== undefined) args.push('--network', String(networkId));
          const r = await pulse(args);
          expect(r.code, String(c['name'])).toBe(1);
          expect((JSON.parse(r.stdout) as { problems: { code: string }[] }).problems[0]!.code, String(c['name'])).toBe(c['expected']);
        }),
      );
    }
  });

  it('inspect of a heartbeat reports MSG_BAD_TYPE; bad arguments are usage errors', async () => {
    const hb = (load('heartbeat.json').valid[0]!)['hex'] as string;
    const [wrongType, badAddress, badKind] = await Promise.all([
      pulse(['msg', 'inspect', hb]),
      pulse(['msg', 'make', 'owner-binding', '--key', join(dir, 'x.json'), '--owner', '0x1234', '--nonce', '1']),
    ]).then(async (r) => [...r, await pulse(['msg', 'make', 'certificate', '--key', join(dir, 'x.json')])]);
    expect(wrongType!.code).toBe(1);
    expect(wrongType!.stdout).toContain('MSG_BAD_TYPE');
    expect(badAddress!.code).toBe(2);
    expect(badAddress!.stderr).toContain('CLI_USAGE');
    expect(badKind!.code).toBe(2);
  });
});
