// `pulse keys` and `pulse hb`, run as child processes exactly as a firmware engineer runs them
// (node bin/pulse.js …), checked against the committed vectors.
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { formatKeyFile, deviceKeyFromSecret, parseKeyFile } from '../shared/protocol/keyfile.ts';
import { fromHex } from '../shared/hex.ts';

type Run = { code: number; stdout: string; stderr: string };
const PULSE = new URL('../bin/pulse.js', import.meta.url).pathname;

function pulse(args: string[], stdin?: Uint8Array): Promise<Run> {
  return new Promise((resolve) => {
    const child = execFile(process.execPath, [PULSE, ...args], { encoding: 'utf8' }, (error, stdout, stderr) => {
      const code = error === null ? 0 : typeof (error as { code?: unknown }).code === 'number' ? ((error as { code: number }).code) : -1;
      resolve({ code, stdout, stderr });
    });
    child.stdin?.end(stdin ?? new Uint8Array(0));
  });
}

type Vec = Record<string, unknown>;
const vectors = JSON.parse(readFileSync(new URL('../shared/vectors/heartbeat.json', import.meta.url), 'utf8')) as { valid: Vec[]; broken: Vec[] };
const example = vectors.valid.find((c) => c['name'] === 'three metrics')!;
const dir = mkdtempSync(join(tmpdir(), 'pulse-cli-'));
const exampleKey = join(dir, 'example.key.json');
writeFileSync(exampleKey, formatKeyFile(deviceKeyFromSecret(fromHex(example['secretKey'] as string)!)));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('pulse keys', () => {
  it('new --out writes a 0600 key file, prints the device id, and refuses to overwrite it', async () => {
    const file = join(dir, 'new.key.json');
    const first = await pulse(['keys', 'new', '--out', file]);
    expect(first.code, first.stderr).toBe(0);
    const id = first.stdout.trim();
    expect(id).toMatch(/^[0-9a-f]{64}$/);
    expect(statSync(file).mode & 0o777).toBe(0o600);
    const text = readFileSync(file, 'utf8');
    const parsed = parseKeyFile(text);
    expect(parsed.ok && parsed.value.deviceId).toBe(id);

    const again = await pulse(['keys', 'new', '--out', file]);
    expect(again.code).toBe(1);
    expect(again.stderr).toContain('CLI_INPUT');
    expect(readFileSync(file, 'utf8')).toBe(text);
  });

  it('new without --out prints a key file; show prints id and topic', async () => {
    const [made, shown] = await Promise.all([pulse(['keys', 'new']), pulse(['keys', 'show', '--key', exampleKey])]);
    expect(made.code).toBe(0);
    expect(parseKeyFile(made.stdout).ok).toBe(true);
    expect(shown.code).toBe(0);
    expect(shown.stdout).toContain(example['deviceId'] as string);
    expect(shown.stdout).toContain(example['topic'] as string);
  });

  it('usage errors exit 2 with CLI_USAGE; --help exits 0', async () => {
    const [unknown, badFlag, help] = await Promise.all([pulse(['keys', 'rotate']), pulse(['keys', 'new', '--force'])]).then(async (r) => [...r, await pulse(['keys', '--help'])]);
    expect(unknown!.code).toBe(2);
    expect(unknown!.stderr).toContain('CLI_USAGE');
    expect(badFlag!.code).toBe(2);
    expect(badFlag!.stderr).toContain('CLI_USAGE');
    expect(help!.code).toBe(0);
    expect(help!.stdout).toContain('pulse keys new');
  });
});

describe('pulse hb make', () => {
  it('reproduces the worked example byte for byte (metrics given in any order)', async () => {
    const r = await pulse(['hb', 'make', '--key', exampleKey, '--seq', '42', '--ts', '1767225600000', '--metric', '7=1', '--metric', '1=3600', '--metric', '2=125000', '--network', '1']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout.trim()).toBe(example['hex']);
  });

  it('refuses invalid arguments with CLI_USAGE (exit 2) and a missing key file with CLI_INPUT (exit 1)', async () => {
    const base = ['hb', 'make', '--key', exampleKey, '--ts', '1'];
    const runs = await Promise.all([
      pulse([...base, '--seq', '0']),
      pulse([...base, '--seq', '1', '--metric', '3=1', '--metric', '3=2']),
      pulse([...base, '--seq', '1', '--metric', '70000=1']),
      pulse([...base, '--seq', '1', '--network', '-1']),
    ]);
    for (const r of runs) {
      expect(r.code, r.stderr).toBe(2);
      expect(r.stderr).toContain('CLI_USAGE');
    }
    const missing = await pulse(['hb', 'make', '--key', join(dir, 'nope.json'), '--seq', '1', '--ts', '1']);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toContain('CLI_INPUT');
  });
});

describe('pulse hb inspect', () => {
  it('prints every field of a valid heartbeat and exits 0', async () => {
    const r = await pulse(['hb', 'inspect', example['hex'] as string, '--network', '1', '--topic', example['topic'] as string]);
    expect(r.code, r.stdout + r.stderr).toBe(0);
    for (const text of ['version', '0x01 (heartbeat)', example['publicKey'] as string, '42', '1767225600000 (2026-01-01T00:00:00.000Z)', 'id 1 = 3600', 'id 2 = 125000', 'id 7 = 1', 'VALID', (example['signature'] as string).slice(0, 64)])
      expect(r.stdout).toContain(text);
  });

  it('reads hex from @file and raw bytes from @- (stdin); checks the clock with --now', async () => {
    const hexFile = join(dir, 'hb.hex');
    writeFileSync(hexFile, `${(example['hex'] as string).toUpperCase()}\n`);
    const [fromFile, skewed] = await Promise.all([
      pulse(['hb', 'inspect', `@${hexFile}`, '--now', '1767225630000']),
      pulse(['hb', 'inspect', example['hex'] as string, '--now', '1767225630001', '--json']),
    ]);
    expect(fromFile.code, fromFile.stdout).toBe(0);
    expect(skewed.code).toBe(1);
    expect((JSON.parse(skewed.stdout) as { problems: { code: string }[] }).problems.map((p) => p.code)).toEqual(['HB_CLOCK_SKEW']);
    // Raw bytes: the payload starts with 0x01, not a hex digit, so it is read as binary.
    const stdin = await pulse(['hb', 'inspect', '@-', '--network', '1'], Buffer.from(example['hex'] as string, 'hex'));
    expect(stdin.code, stdin.stdout + stdin.stderr).toBe(0);
  });

  it('exits 1 and reports the declared code for broken vectors', async () => {
    const names = ['metric ids decreasing', 'small-order key #0', 'S + L', 'wrong network'];
    const cases = names.map((n) => vectors.broken.find((c) => c['name'] === n)!);
    for (let i = 0; i < cases.length; i += 2) {
      await Promise.all(
        cases.slice(i, i + 2).map(async (c) => {
          const ctx = c['context'] as { networkId?: number; topic?: string };
          const args = ['hb', 'inspect', c['hex'] as string, '--json'];
          if (ctx.networkId !== undefined) args.push('--network', String(ctx.networkId));
          const r = await pulse(args);
          expect(r.code, `${String(c['name'])}: ${r.stderr}`).toBe(1);
          const out = JSON.parse(r.stdout) as { valid: boolean; problems: { code: string; message: string }[] };
          expect(out.valid).toBe(false);
          expect(out.problems[0]!.code, String(c['name'])).toBe(c['expected']);
        }),
      );
    }
  });

  it('lists several problems at once and still shows the fields it can read', async () => {
    // version 0x02 and seq 0 in one payload, signature from the example (so it is also bad).
    const bytes = Buffer.from(example['hex'] as string, 'hex');
    bytes[0] = 2;
    bytes.fill(0, 38, 46);
    const r = await pulse(['hb', 'inspect', bytes.toString('hex')]);
    expect(r.code).toBe(1);
    expect(r.stdout).toMatch(/INVALID: 3 problems/);
    for (const code of ['HB_BAD_VERSION', 'HB_BAD_SEQ', 'HB_BAD_SIGNATURE']) expect(r.stdout).toContain(code);
    const truncated = await pulse(['hb', 'inspect', (example['hex'] as string).slice(0, 80)]);
    expect(truncated.code).toBe(1);
    expect(truncated.stdout).toContain(example['publicKey'] as string);
    expect(truncated.stdout).toContain('HB_TRUNCATED');
  });

  it('rejects input that is not hex with CLI_INPUT', async () => {
    const r = await pulse(['hb', 'inspect', 'not-hex']);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('CLI_INPUT');
  });
});
