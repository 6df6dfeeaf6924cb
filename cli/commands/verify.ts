// `pulse verify`: recompute an epoch's reward root from its bundle alone and compare it with the
// bundle and the chain (issue 6 part 2; docs/verify.md). Never touches the oracle's database.
import { parseArgs } from 'node:util';
import { PulseError } from '../../shared/errors.ts';
import { usageErrors } from './hb.ts';
import { readBundleSource } from '../../oracle/bundle/read-bundle.ts';
import { verifyBundleFile, type ChainRoot, type VerifyOutcome } from '../../oracle/bundle/verify-bundle.ts';
import { startSignaturePool } from '../../oracle/bundle/check-signatures.ts';
import { distributorAt, readChainRoot } from '../../oracle/bundle/chain-root.ts';

export const summary = 'Verify an epoch bundle: signatures, replay rules, scores, rewards, root; compare with the chain';

const HELP = `Usage:
  pulse verify --epoch N --bundle FILE|URL [--rpc URL --contract ADDRESS] [--expect-hash 0x…]
               [--threads N] [--json] [--quiet]

  Re-checks every heartbeat signature in the bundle (on every core), the replay rules (per-device
  strictly increasing seq, network id, the device's key history), that every heartbeat's slot is in
  the epoch, then recomputes scores, rewards, cumulative leaves and the merkle root and compares
  them with what the bundle states. With --rpc and --contract it also compares the root,
  cumulativeTotal, inputsHash (= keccak256 of the uncompressed bundle) and paramsHash posted on
  chain for the epoch. Prints PASS or FAIL with the first difference; exit 0 on PASS, 1 on FAIL.
  Progress goes to stderr (--quiet silences it). See docs/verify.md.`;

export type VerifyIo = { readonly out: (line: string) => void; readonly err: (text: string) => void };

const defaultIo: VerifyIo = { out: (l) => process.stdout.write(`${l}\n`), err: (t) => process.stderr.write(t) };

export async function run(argv: string[], io: VerifyIo = defaultIo): Promise<number> {
  const { values } = usageErrors(() =>
    parseArgs({
      args: argv,
      options: {
        epoch: { type: 'string' },
        bundle: { type: 'string' },
        rpc: { type: 'string' },
        contract: { type: 'string' },
        'expect-hash': { type: 'string' },
        threads: { type: 'string' },
        json: { type: 'boolean' },
        quiet: { type: 'boolean' },
        help: { type: 'boolean', short: 'h' },
      },
      strict: true,
    }),
  );
  if (values.help) {
    io.out(HELP);
    return 0;
  }
  if (values.epoch === undefined || !/^\d{1,15}$/.test(values.epoch)) throw new PulseError('CLI_USAGE', '--epoch N (a non-negative integer) is required');
  if (values.bundle === undefined) throw new PulseError('CLI_USAGE', '--bundle FILE|URL is required');
  if ((values.rpc === undefined) !== (values.contract === undefined)) throw new PulseError('CLI_USAGE', '--rpc and --contract go together');
  const expect = values['expect-hash'];
  if (expect !== undefined && !/^0x[0-9a-fA-F]{64}$/.test(expect)) throw new PulseError('CLI_USAGE', '--expect-hash must be 0x + 64 hex characters');
  const threads = values.threads === undefined ? undefined : Number(values.threads);
  if (threads !== undefined && (!Number.isInteger(threads) || threads < 1)) throw new PulseError('CLI_USAGE', '--threads must be a positive integer');
  const epoch = Number(values.epoch);
  const progress = values.quiet === true ? () => undefined : io.err;

  let chain: ChainRoot | null | undefined;
  if (values.rpc !== undefined && values.contract !== undefined) {
    progress(`reading rootOf(${epoch}) from ${values.contract}\n`);
    chain = await readChainRoot(distributorAt(values.rpc, values.contract), epoch);
  }
  const started = performance.now();
  let lastShown = 0;
  // Worker threads start now, so their start-up overlaps the download and the parse.
  const pool = startSignaturePool({
    ...(threads !== undefined ? { threads } : {}),
    onProgress: (done, total) => {
      const now = performance.now();
      if (done !== total && now - lastShown < 500) return;
      lastShown = now;
      const rate = done / Math.max(0.001, (now - started) / 1000);
      progress(`  signatures ${done}/${total} (${Math.round((100 * done) / Math.max(1, total))}%, ${Math.round(rate)}/s)\n`);
    },
  });
  let outcome: VerifyOutcome;
  try {
    progress(`reading ${values.bundle}\n`);
    const file = await readBundleSource(values.bundle);
    outcome = await verifyBundleFile(file, {
      epoch,
      ...(expect !== undefined ? { expectedHash: expect } : {}),
      ...(chain !== undefined ? { chain } : {}),
      onPhase: (p) => progress(`${p}\n`),
      checkSignatures: (raws) => pool.check(raws),
    });
  } finally {
    await pool.close();
  }
  const seconds = (performance.now() - started) / 1000;
  if (values.json === true) {
    io.out(JSON.stringify(outcome.ok ? { result: 'PASS', ...outcome.summary, seconds } : { result: 'FAIL', code: outcome.code, message: outcome.message, hash: outcome.hash ?? null }));
  } else if (outcome.ok) {
    const s = outcome.summary;
    io.out(`PASS epoch ${s.epoch}: ${s.heartbeats} heartbeats from ${s.devices} devices re-checked, ${s.owners} owners paid, root ${s.root ?? '(none)'}, cumulativeTotal ${s.cumulativeTotal}, bundle hash ${s.hash}${s.chainChecked ? ', matches the chain' : ' (chain not checked)'} [${seconds.toFixed(1)} s]`);
    if (chain?.vetoed === true) io.out(`note: the root of epoch ${epoch} was vetoed on chain`);
  } else {
    io.out(`FAIL ${outcome.code}: ${outcome.message}`);
  }
  return outcome.ok ? 0 : 1;
}
