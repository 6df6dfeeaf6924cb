// Profiling helper for issue 5 (not a workload: no `run`; main only when started directly): the pure
// part of an epoch close, settleEpoch, on the same inputs bench/epoch.ts's fixture gives the close
// (100,000 devices, 20,000 owners, one capped metric), without a database. Prints CPU time per run
// and a digest of the result, so a change to shared/rewards can be checked for speed and sameness.
//
//   npx tsx bench/settle-prof.ts [--devices 100000] [--runs 5]      (node --import tsx --cpu-prof … for a profile)
import { parseArgs } from 'node:util';
import { createHash } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { settleEpoch } from '../shared/rewards/settle-epoch.ts';
import type { DeviceAggregate, DeviceInfo } from '../shared/rewards/score-epoch.ts';
import { params, SLOTS } from './epoch.ts';
import { loadAverage } from './cpu-time.ts';

/** The fixture of bench/epoch.ts, aggregated per device as the close reads it from the counters. */
export function fixtureInputs(devices: number): { infos: DeviceInfo[]; aggregates: Map<string, DeviceAggregate> } {
  const rule = params.metrics[0]!;
  const infos: DeviceInfo[] = [];
  const aggregates = new Map<string, DeviceAggregate>();
  for (let i = 0; i < devices; i++) {
    const id = i.toString(16).padStart(64, '0');
    infos.push({ deviceId: id, owner: `0x${createHash('sha256').update(String(i % 20_000)).digest('hex').slice(0, 40)}`, revoked: false, connectedMs: 0 });
    let credited = 0;
    let raw = 0n;
    let capped = 0n;
    let any = false;
    for (let s = 0; s < SLOTS; s++) {
      if (i % 7 === 0 && s % 2 !== 0) continue;
      credited++;
      const v = BigInt((i * 31 + s * 17) % 1500);
      raw += v;
      capped += v > rule.capPerSlot ? rule.capPerSlot : v;
      if (v > rule.capPerSlot) any = true;
    }
    aggregates.set(id, { creditedSlots: credited, raw: new Map([[rule.metricId, raw]]), slotCapped: new Map([[rule.metricId, capped]]), anySlotCapped: any, unweighted: false });
  }
  return { infos, aggregates };
}

const json = (v: unknown) => JSON.stringify(v, (_k, x: unknown) => (typeof x === 'bigint' ? `${x}n` : x));

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { devices: { type: 'string', default: '100000' }, runs: { type: 'string', default: '5' } } });
  const { infos, aggregates } = fixtureInputs(Number(values.devices));
  const window = { epoch: 0, firstSlot: 0, slotCount: SLOTS };
  for (let r = 0; r < Number(values.runs); r++) {
    const load = loadAverage();
    const c0 = process.cpuUsage();
    const s = settleEpoch({ window, params, devices: infos, aggregates, previous: [] });
    const c = process.cpuUsage(c0);
    if (!s.ok) throw new Error(s.message);
    const digest = createHash('sha256').update(json({ scores: s.value.scores, allocation: s.value.allocation, leaves: s.value.leaves, root: s.value.root })).digest('hex').slice(0, 16);
    console.log(`run ${r + 1}: settleEpoch ${((c.user + c.system) / 1000).toFixed(0)} ms CPU (load ${load}); result digest ${digest}, root ${s.value.root}`);
  }
}

if (process.argv[1] !== undefined && fileURLToPath(import.meta.url) === process.argv[1]) await main();
