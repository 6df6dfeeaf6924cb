// bench/e2e-storage.ts on real PostgreSQL: the measurement stores exactly what it generated through
// the ingest transaction and sizes every table ingest writes; the bundle line size matches the
// documented `hb` line layout (docs/bundle.md §hb) byte for byte.
import { describe, expect, it } from 'vitest';
import { needs } from '../test/support/services.ts';
import { bundleBytesPerHeartbeat, measureStorage } from './e2e-storage.ts';

const ok = await needs('postgres');

describe.skipIf(!ok)('storage per heartbeat', () => {
  it('stores every generated heartbeat and sizes heartbeats, rollups and metric sums', async () => {
    const f = await measureStorage(6, 3, 2);
    expect(f.heartbeats).toBe(18);
    expect(f.rawBytesPerHeartbeat).toBe(119 + 2 * 10);
    expect(Object.keys(f.perTable).sort()).toEqual(['heartbeats', 'slot_metric_sums', 'slot_rollups']);
    // The heartbeats table holds at least the raw signed bytes of every row.
    expect(f.perTable['heartbeats']!).toBeGreaterThan(f.rawBytesPerHeartbeat);
    for (const v of Object.values(f.perTable)) expect(v).toBeGreaterThan(0);
    expect(f.totalPerHeartbeat).toBeCloseTo(Object.values(f.perTable).reduce((a, b) => a + b, 0), 6);
  });
});

describe('bundle bytes per heartbeat', () => {
  it('matches the hb line layout and cannot compress below the signatures', () => {
    // {"t":"hb","device":"<64 hex>","receivedAt":<13 digits>,"raw":"<2 × 129 hex>"}\n
    const b = bundleBytesPerHeartbeat(4, 5, 1);
    expect(b.plain).toBe(10 + 10 + 64 + 2 + 13 + 13 + 8 + 258 + 2 + 1);
    expect(b.gzip).toBeLessThan(b.plain);
    expect(b.gzip).toBeGreaterThan(64 * 0.9);
  });
});
