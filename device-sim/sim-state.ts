// Persistent simulator state: each device's secret key, the highest seq it may have used, and
// whether it was onboarded. One JSON file per network under --state-dir, so a restarted fleet keeps
// its identities and its seqs keep increasing (docs/protocol.md §Heartbeat: seq strictly increasing
// per device; a lower seq is a replay).
//
// Seqs are leased: before a device uses a seq above its persisted reservation it reserves a block
// (`lease` seqs) and waits until that reservation is on disk (write to a temp file, fsync, rename,
// fsync the directory). A crash can therefore only lose unused seqs of a lease, never reuse one:
// a restart begins above the last reservation. Gaps are allowed by the protocol; repeats are not.
import { createPrivateKey, createPublicKey, randomBytes } from 'node:crypto';
import { mkdir, open, readFile, rename, unlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { MAX_SEQ } from '../shared/protocol/constants.ts';
import { PulseError } from '../shared/errors.ts';
import { fromHex, toHex } from '../shared/hex.ts';

export type SimDeviceRecord = {
  readonly secretKey: Uint8Array;
  readonly publicKey: Uint8Array;
  readonly deviceId: string;
  /** Highest seq reserved on disk; every seq used so far is ≤ this. 0 = none yet. */
  reservedSeq: bigint;
  onboarded: boolean;
};

// RFC 8410 PKCS#8 prefix for a raw Ed25519 seed; node:crypto derives the public key ~50× faster
// than noble, which matters when a load run creates tens of thousands of keys.
const PKCS8_PREFIX = Buffer.from('302e020100300506032b657004220420', 'hex');

export function publicKeyFromSeed(secretKey: Uint8Array): Uint8Array {
  const priv = createPrivateKey({ key: Buffer.concat([PKCS8_PREFIX, secretKey]), format: 'der', type: 'pkcs8' });
  const spki = createPublicKey(priv).export({ format: 'der', type: 'spki' });
  return new Uint8Array(spki.subarray(spki.length - 32));
}

function newRecord(secretKey: Uint8Array = new Uint8Array(randomBytes(32))): SimDeviceRecord {
  const publicKey = publicKeyFromSeed(secretKey);
  return { secretKey, publicKey, deviceId: toHex(publicKey), reservedSeq: 0n, onboarded: false };
}

type FileDevice = { secretKey: string; reservedSeq: string; onboarded: boolean };
type FileShape = { kind: 'pulse-sim-state'; version: 1; networkId: number; devices: FileDevice[] };

function parseState(text: string, path: string, networkId: number): SimDeviceRecord[] {
  const bad = (why: string) => new PulseError('CLI_INPUT', `simulator state ${path}: ${why}`);
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    throw bad('not JSON');
  }
  const o = json as Partial<FileShape> | null;
  if (o === null || typeof o !== 'object' || o.kind !== 'pulse-sim-state' || o.version !== 1 || !Array.isArray(o.devices)) throw bad('not a pulse-sim-state v1 file');
  if (o.networkId !== networkId) throw bad(`written for network ${String(o.networkId)}, not ${networkId}`);
  return o.devices.map((d, i) => {
    const secret = typeof d?.secretKey === 'string' ? fromHex(d.secretKey) : undefined;
    if (secret === undefined || secret.length !== 32) throw bad(`device #${i}: secretKey must be 64 lowercase hex characters`);
    if (typeof d.reservedSeq !== 'string' || !/^\d+$/.test(d.reservedSeq)) throw bad(`device #${i}: reservedSeq must be a decimal string`);
    const reserved = BigInt(d.reservedSeq);
    if (reserved > MAX_SEQ) throw bad(`device #${i}: reservedSeq is above 2^63−1`);
    return { ...newRecord(secret), reservedSeq: reserved, onboarded: d.onboarded === true };
  });
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * One simulator process per state file: two processes starting from the same reservation would
 * sign different heartbeats with the same seqs (HB_EQUIVOCATION). The lock file holds the owner's
 * pid; a lock left by a dead process (or by this one) is taken over.
 */
async function acquireLock(lockPath: string): Promise<void> {
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      await writeFile(lockPath, `${process.pid}\n`, { flag: 'wx', mode: 0o600 });
      return;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw new PulseError('CLI_INPUT', `cannot lock ${lockPath}: ${(e as Error).message}`);
    }
    const holder = Number((await readFile(lockPath, 'utf8').catch(() => '')).trim());
    if (Number.isInteger(holder) && holder > 0 && holder !== process.pid && alive(holder))
      throw new PulseError('CLI_INPUT', `simulator state ${lockPath.slice(0, -5)} is in use by process ${holder}; use another --state-dir`);
    await unlink(lockPath).catch(() => undefined);
  }
  throw new PulseError('CLI_INPUT', `cannot take the lock ${lockPath}`);
}

export class SimState {
  private writeChain: Promise<void> = Promise.resolve();
  private pendingWrite: Promise<void> | undefined;

  private constructor(
    readonly path: string | undefined,
    readonly networkId: number,
    readonly devices: SimDeviceRecord[],
  ) {}

  /** The state file for a network inside `dir`. */
  static fileFor(dir: string, networkId: number): string {
    return join(dir, `network-${networkId}.json`);
  }

  /**
   * Load the state (or start empty) and grow it to at least `count` devices with fresh keys.
   * Without `dir` the state lives in memory only (keys and seqs are forgotten on exit).
   * Devices keep their position, so device i is always the same key; devices beyond `count` from an
   * earlier, larger run stay in the file (and in `devices`) so their seqs are not lost.
   */
  static async open(dir: string | undefined, networkId: number, count: number): Promise<SimState> {
    let devices: SimDeviceRecord[] = [];
    let path: string | undefined;
    if (dir !== undefined) {
      await mkdir(dir, { recursive: true });
      path = SimState.fileFor(dir, networkId);
      await acquireLock(`${path}.lock`);
      let text: string | undefined;
      try {
        text = await readFile(path, 'utf8');
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw new PulseError('CLI_INPUT', `simulator state ${path}: ${(e as Error).message}`);
      }
      if (text !== undefined) devices = parseState(text, path, networkId);
    }
    const grew = devices.length < count;
    while (devices.length < count) devices.push(newRecord());
    const state = new SimState(path, networkId, devices);
    if (grew) await state.save();
    return state;
  }

  /** Write the state and release the lock (when this process holds it). */
  async close(): Promise<void> {
    await this.save();
    if (this.path === undefined) return;
    const lockPath = `${this.path}.lock`;
    const holder = Number((await readFile(lockPath, 'utf8').catch(() => '')).trim());
    if (holder === process.pid) await unlink(lockPath).catch(() => undefined);
  }

  /** Persist a reservation up to `upTo` for device `index`; resolves once it is on disk. */
  async reserve(index: number, upTo: bigint): Promise<void> {
    const d = this.devices[index];
    if (d === undefined) throw new RangeError(`no device #${index}`);
    if (upTo > MAX_SEQ) throw new RangeError('seq space exhausted (2^63−1)');
    if (upTo > d.reservedSeq) d.reservedSeq = upTo;
    await this.save();
  }

  /**
   * Reserve the next `count` seqs of each listed device in one write (load mode signs whole runs in
   * advance). Returns each device's first seq of the block; the block is first … first + count − 1.
   */
  async reserveBlock(indexes: readonly number[], count: bigint): Promise<bigint[]> {
    if (count < 1n) throw new RangeError('count must be at least 1');
    const firsts = indexes.map((i) => {
      const d = this.devices[i];
      if (d === undefined) throw new RangeError(`no device #${i}`);
      if (d.reservedSeq + count > MAX_SEQ) throw new RangeError('seq space exhausted (2^63−1)');
      const first = d.reservedSeq + 1n;
      d.reservedSeq += count;
      return first;
    });
    await this.save();
    return firsts;
  }

  async markOnboarded(index: number): Promise<void> {
    const d = this.devices[index];
    if (d === undefined) throw new RangeError(`no device #${index}`);
    d.onboarded = true;
    await this.save();
  }

  /**
   * Write the whole file. Concurrent callers share one queued write: a write that has not started
   * yet snapshots the state when it starts, so it includes every change made before it.
   */
  save(): Promise<void> {
    if (this.path === undefined) return Promise.resolve();
    if (this.pendingWrite !== undefined) return this.pendingWrite;
    const p = this.writeChain.then(() => {
      this.pendingWrite = undefined;
      return this.writeNow(this.path!);
    });
    this.pendingWrite = p;
    this.writeChain = p.catch(() => undefined);
    return p;
  }

  private async writeNow(path: string): Promise<void> {
    const shape: FileShape = {
      kind: 'pulse-sim-state',
      version: 1,
      networkId: this.networkId,
      devices: this.devices.map((d) => ({ secretKey: toHex(d.secretKey), reservedSeq: d.reservedSeq.toString(), onboarded: d.onboarded })),
    };
    const tmp = `${path}.${process.pid}.tmp`;
    const fh = await open(tmp, 'w', 0o600); // secret keys inside: owner-only
    try {
      await fh.writeFile(JSON.stringify(shape) + '\n');
      await fh.sync();
    } finally {
      await fh.close();
    }
    await rename(tmp, path);
    // fsync the directory so the rename itself survives a power cut.
    const dir = await open(join(path, '..'), 'r');
    try {
      await dir.sync();
    } finally {
      await dir.close();
    }
  }
}

/**
 * A device's seq source. `next()` hands out strictly increasing seqs starting above the persisted
 * reservation, and never returns a seq before a reservation covering it is on disk.
 */
export class SeqCounter {
  private last: bigint;
  /** Highest seq whose reservation is known to be on disk (the in-memory record may run ahead). */
  private durable: bigint;
  private renewing: Promise<void> | undefined;

  constructor(
    private readonly state: SimState,
    private readonly index: number,
    private readonly lease = 100n,
  ) {
    if (lease < 1n) throw new RangeError('lease must be at least 1');
    const d = state.devices[index];
    if (d === undefined) throw new RangeError(`no device #${index}`);
    this.last = d.reservedSeq;
    this.durable = d.reservedSeq;
  }

  /** The last seq handed out (0 before the first). */
  get current(): bigint {
    return this.last;
  }

  async next(): Promise<bigint> {
    for (;;) {
      const candidate = this.last + 1n;
      if (candidate <= this.durable) {
        this.last = candidate;
        return candidate;
      }
      await this.extendTo(this.last + this.lease);
    }
  }

  /** Reserve room for `count` more seqs in one write (load mode pre-signs whole runs). */
  async reserveAhead(count: bigint): Promise<void> {
    while (this.last + count > this.durable) await this.extendTo(this.last + count);
  }

  private extendTo(upTo: bigint): Promise<void> {
    this.renewing ??= this.state
      .reserve(this.index, upTo)
      .then(() => {
        if (upTo > this.durable) this.durable = upTo;
      })
      .finally(() => {
        this.renewing = undefined;
      });
    return this.renewing;
  }
}
