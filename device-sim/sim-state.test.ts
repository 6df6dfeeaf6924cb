// Seq persistence (issue 8 §1: seq persisted, resume across restarts, seq always increases).
import { afterEach, describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SeqCounter, SimState, publicKeyFromSeed } from './sim-state.ts';
import { noblePublicKey } from '../shared/crypto/noble.ts';
import { isPulseError } from '../shared/errors.ts';

const dirs: string[] = [];
async function tempDir(): Promise<string> {
  const d = await mkdtemp(join(tmpdir(), 'pulse-sim-state-'));
  dirs.push(d);
  return d;
}
afterEach(async () => {
  for (const d of dirs.splice(0)) await rm(d, { recursive: true, force: true });
});

describe('SimState', () => {
  it('derives the same public key as the noble reference', async () => {
    const s = await SimState.open(undefined, 1, 3);
    for (const d of s.devices) expect(publicKeyFromSeed(d.secretKey)).toEqual(noblePublicKey(d.secretKey));
  });

  it('keeps keys, reservations and onboarding across reopen, and grows without reordering', async () => {
    const dir = await tempDir();
    const a = await SimState.open(dir, 5, 2);
    await a.reserve(1, 40n);
    await a.markOnboarded(0);
    const b = await SimState.open(dir, 5, 4);
    expect(b.devices).toHaveLength(4);
    expect(b.devices.slice(0, 2).map((d) => d.deviceId)).toEqual(a.devices.map((d) => d.deviceId));
    expect(b.devices[1]!.reservedSeq).toBe(40n);
    expect(b.devices[0]!.onboarded).toBe(true);
    expect(b.devices[2]!.reservedSeq).toBe(0n);
    // A smaller fleet later still keeps every device in the file.
    const c = await SimState.open(dir, 5, 1);
    expect(c.devices).toHaveLength(4);
    // Another network gets its own file and keys.
    const other = await SimState.open(dir, 6, 1);
    expect(other.devices[0]!.deviceId).not.toBe(a.devices[0]!.deviceId);
  });

  it('one process per state file: a live holder is refused, a dead one is taken over, close releases', async () => {
    const dir = await tempDir();
    const lock = `${SimState.fileFor(dir, 1)}.lock`;
    await writeFile(lock, `${process.ppid}\n`); // a live process that is not us
    await expect(SimState.open(dir, 1, 1)).rejects.toSatisfy((e: unknown) => isPulseError(e, 'CLI_INPUT') && /in use by process/.test((e as Error).message));
    await writeFile(lock, '4194303\n'); // the highest pid Linux can hand out: almost certainly no such process
    const s = await SimState.open(dir, 1, 1);
    expect((await readFile(lock, 'utf8')).trim()).toBe(String(process.pid));
    await s.close();
    await expect(readFile(lock, 'utf8')).rejects.toThrow(/ENOENT/);
  });

  it('refuses a damaged or foreign state file with CLI_INPUT', async () => {
    const dir = await tempDir();
    const path = SimState.fileFor(dir, 1);
    for (const text of ['{', '{"kind":"x"}', JSON.stringify({ kind: 'pulse-sim-state', version: 1, networkId: 2, devices: [] }), JSON.stringify({ kind: 'pulse-sim-state', version: 1, networkId: 1, devices: [{ secretKey: 'zz', reservedSeq: '1' }] }), JSON.stringify({ kind: 'pulse-sim-state', version: 1, networkId: 1, devices: [{ secretKey: '00'.repeat(32), reservedSeq: '-1' }] })]) {
      await writeFile(path, text);
      await expect(SimState.open(dir, 1, 1)).rejects.toSatisfy((e: unknown) => isPulseError(e, 'CLI_INPUT'));
    }
  });
});

describe('SeqCounter', () => {
  it('hands out 1, 2, 3 … and writes a reservation before using a seq above it', async () => {
    const dir = await tempDir();
    const s = await SimState.open(dir, 1, 1);
    const c = new SeqCounter(s, 0, 3n);
    expect([await c.next(), await c.next(), await c.next()]).toEqual([1n, 2n, 3n]);
    const onDisk = JSON.parse(await readFile(SimState.fileFor(dir, 1), 'utf8')) as { devices: { reservedSeq: string }[] };
    expect(onDisk.devices[0]!.reservedSeq).toBe('3');
    expect(await c.next()).toBe(4n);
    const again = JSON.parse(await readFile(SimState.fileFor(dir, 1), 'utf8')) as { devices: { reservedSeq: string }[] };
    expect(again.devices[0]!.reservedSeq).toBe('6');
  });

  it('concurrent callers get distinct, increasing seqs', async () => {
    const s = await SimState.open(await tempDir(), 1, 1);
    const c = new SeqCounter(s, 0, 2n);
    const got = await Promise.all(Array.from({ length: 25 }, () => c.next()));
    expect(new Set(got).size).toBe(25);
    expect([...got].sort((a, b) => (a < b ? -1 : 1))).toEqual(Array.from({ length: 25 }, (_, i) => BigInt(i + 1)));
  });

  it('across any sequence of uses, restarts and abandoned (crashed) counters, seqs only increase', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.oneof(fc.record({ take: fc.integer({ min: 1, max: 12 }) }), fc.constant({ restart: true as const }), fc.record({ ahead: fc.integer({ min: 1, max: 30 }) })), { minLength: 1, maxLength: 12 }),
        fc.integer({ min: 1, max: 7 }),
        async (ops, lease) => {
          const dir = await tempDir();
          let state = await SimState.open(dir, 1, 2);
          let counters = [new SeqCounter(state, 0, BigInt(lease)), new SeqCounter(state, 1, BigInt(lease))];
          const used: bigint[][] = [[], []];
          let turn = 0;
          for (const op of ops) {
            const i = turn++ % 2;
            if ('take' in op) for (let k = 0; k < op.take; k++) used[i]!.push(await counters[i]!.next());
            else if ('ahead' in op) await counters[i]!.reserveAhead(BigInt(op.ahead));
            else {
              // Reopen from disk as a crashed process would: the old objects are simply dropped.
              state = await SimState.open(dir, 1, 2);
              counters = [new SeqCounter(state, 0, BigInt(lease)), new SeqCounter(state, 1, BigInt(lease))];
            }
          }
          for (const list of used) for (let k = 1; k < list.length; k++) expect(list[k]! > list[k - 1]!).toBe(true);
        },
      ),
      { numRuns: 40 },
    );
  });
});
