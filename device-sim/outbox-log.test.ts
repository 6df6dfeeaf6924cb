// The outbox log format the fault-suite auditor reads (outbox-log.ts).
import { afterEach, describe, expect, it } from 'vitest';
import { mkdtemp, readFile, rm, appendFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { OutboxLog, readOutbox } from './outbox-log.ts';

const dirs: string[] = [];
afterEach(async () => {
  for (const d of dirs.splice(0)) await rm(d, { recursive: true, force: true });
});

describe('OutboxLog', () => {
  it('appends acknowledged heartbeats; a later rejection removes one; a torn last line is ignored', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'pulse-outbox-'));
    dirs.push(dir);
    const path = join(dir, 'outbox.jsonl');
    const a = new OutboxLog(path);
    a.acknowledged('aa'.repeat(32), 1n, Uint8Array.from([1, 2]));
    a.acknowledged('aa'.repeat(32), 2n, Uint8Array.from([3]));
    a.rejectedAfterAck('aa'.repeat(32), 2n, 'HB_RATE_LIMITED');
    await a.close();
    // A second run appends to the same file.
    const b = new OutboxLog(path);
    b.acknowledged('bb'.repeat(32), 18446744073709551615n, Uint8Array.from([255]));
    await b.close();
    await appendFile(path, '{"deviceId":"cc');
    const text = await readFile(path, 'utf8');
    expect(text.split('\n')[0]).toBe(`{"deviceId":"${'aa'.repeat(32)}","seq":"1","hex":"0102"}`);
    const acked = readOutbox(text);
    expect([...acked.keys()]).toEqual([`${'aa'.repeat(32)}/1`, `${'bb'.repeat(32)}/18446744073709551615`]);
    expect(acked.get(`${'bb'.repeat(32)}/18446744073709551615`)).toEqual({ deviceId: 'bb'.repeat(32), seq: 18446744073709551615n, hex: 'ff' });
  });
});
