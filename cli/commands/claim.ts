// `pulse claim`: claim an owner's cumulative rewards from the RewardDistributor (issue 6 part 3;
// docs/verify.md §Claims), using only public data: the proof comes from the oracle's public API
// (or a bundle file), the root from the chain. Sends the claim with a key file, or prints the
// calldata for a hardware wallet.
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { Wallet, getAddress, isAddress } from 'ethers';
import { PulseError } from '../../shared/errors.ts';
import { usageErrors } from './hb.ts';
import { distributorAt, readChainRoot, readClaimableRoot, readClaimed } from '../../oracle/bundle/chain-root.ts';
import { readBundleSource } from '../../oracle/bundle/read-bundle.ts';
import { claimCalldata, describeClaimRevert, fetchProof, proofFromBundle, proofVerifies, type ClaimProof } from '../../oracle/claims/claim-tx.ts';

export const summary = 'Claim rewards: fetch the proof (API or bundle), check it, send claim() or print the calldata';

const HELP = `Usage:
  pulse claim --address ADDRESS --rpc URL --contract ADDRESS (--api URL | --bundle FILE|URL)
              (--key FILE | --calldata) [--epoch N] [--json]

  Reads the newest claimable root from the contract (or uses --epoch N, an older claimable root),
  fetches ADDRESS's proof for that epoch from the
  oracle's public API (GET /api/epochs/:n/proofs/:address) or from the epoch's bundle file, checks
  it with @openzeppelin/merkle-tree against the chain's root, then either sends
  claim(account, cumulativeAmount, proof) signed by the key in FILE (a 0x-prefixed 32-byte hex
  private key; anyone may send it, the tokens always go to ADDRESS) or, with --calldata, prints
  {to, data, value} for a hardware wallet. Exit 0 when claimed (or nothing is left to claim).`;

export type ClaimIo = { readonly out: (line: string) => void; readonly err: (text: string) => void };
const defaultIo: ClaimIo = { out: (l) => process.stdout.write(`${l}\n`), err: (t) => process.stderr.write(t) };

function loadPrivateKey(file: string): string {
  let text: string;
  try {
    text = readFileSync(file, 'utf8').trim();
  } catch (e) {
    throw new PulseError('CHAIN_BAD_KEY', `${file}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
  const hex = text.startsWith('0x') ? text : `0x${text}`;
  if (!/^0x[0-9a-fA-F]{64}$/.test(hex)) throw new PulseError('CHAIN_BAD_KEY', `${file} does not hold a 32-byte hex private key`);
  return hex;
}

export async function run(argv: string[], io: ClaimIo = defaultIo): Promise<number> {
  const { values } = usageErrors(() =>
    parseArgs({
      args: argv,
      options: {
        address: { type: 'string' },
        rpc: { type: 'string' },
        contract: { type: 'string' },
        api: { type: 'string' },
        bundle: { type: 'string' },
        key: { type: 'string' },
        calldata: { type: 'boolean' },
        epoch: { type: 'string' },
        json: { type: 'boolean' },
        help: { type: 'boolean', short: 'h' },
      },
      strict: true,
    }),
  );
  if (values.help) {
    io.out(HELP);
    return 0;
  }
  if (values.address === undefined || !isAddress(values.address)) throw new PulseError('CLI_USAGE', '--address must be a 0x address');
  if (values.rpc === undefined || values.contract === undefined) throw new PulseError('CLI_USAGE', '--rpc URL and --contract ADDRESS are required');
  if ((values.api === undefined) === (values.bundle === undefined)) throw new PulseError('CLI_USAGE', 'give exactly one of --api URL or --bundle FILE|URL');
  if ((values.key === undefined) === (values.calldata !== true)) throw new PulseError('CLI_USAGE', 'give exactly one of --key FILE or --calldata');
  if (values.epoch !== undefined && !/^\d{1,15}$/.test(values.epoch)) throw new PulseError('CLI_USAGE', '--epoch must be a non-negative integer');
  const account = getAddress(values.address);
  const contract = distributorAt(values.rpc, values.contract);

  const claimable = await readClaimableRoot(contract);
  if (claimable === null) throw new PulseError('CLAIM_NOT_CLAIMABLE', 'the contract has no claimable root yet (none posted, or still in the challenge period)');
  const epoch = values.epoch === undefined ? claimable.epoch : Number(values.epoch);
  let p: ClaimProof;
  if (values.api !== undefined) {
    io.err(`fetching the proof of ${account} for epoch ${epoch} from ${values.api}\n`);
    p = await fetchProof(values.api, epoch, account);
  } else {
    p = proofFromBundle(await readBundleSource(values.bundle!), account);
    if (p.epoch !== epoch) throw new PulseError('CLAIM_NOT_CLAIMABLE', `the bundle is epoch ${p.epoch}; the newest claimable root is epoch ${claimable.epoch}`);
  }
  // The contract accepts a proof for its newest claimable root or one of the older claimable roots
  // before it (RewardDistributor.claim, MAX_CLAIM_LOOKBACK): the proof's root must be the one the
  // chain holds for that epoch, not vetoed, and no newer than the newest claimable root.
  const onChain = epoch === claimable.epoch ? { root: claimable.root, vetoed: false } : await readChainRoot(contract, epoch);
  if (onChain === null || onChain.vetoed || epoch > claimable.epoch || p.root.toLowerCase() !== onChain.root.toLowerCase()) {
    throw new PulseError('CLAIM_NOT_CLAIMABLE', `the proof is for root ${p.root} (epoch ${epoch}), which is not a claimable root on chain (newest claimable: epoch ${claimable.epoch}, root ${claimable.root})`);
  }
  if (!proofVerifies(p)) throw new PulseError('CLAIM_NOT_CLAIMABLE', `the proof for ${account} does not verify against root ${p.root}`);
  const already = await readClaimed(contract, account);
  const due = p.cumulative - already;
  const data = claimCalldata(p);
  const to = await contract.getAddress();
  if (due <= 0n) {
    io.out(values.json === true ? JSON.stringify({ account, epoch, cumulative: String(p.cumulative), claimed: String(already), due: '0' }) : `nothing to claim: ${account} has already claimed ${already} of ${p.cumulative}`);
    return 0;
  }
  if (values.calldata === true) {
    const tx = { to, data, value: '0', account, epoch, cumulative: String(p.cumulative), alreadyClaimed: String(already), amount: String(due), root: p.root };
    io.out(values.json === true ? JSON.stringify(tx) : `to    ${to}\ndata  ${data}\nvalue 0\n(claims ${due} for ${account}: cumulative ${p.cumulative} − claimed ${already}, epoch ${epoch})`);
    return 0;
  }
  const wallet = new Wallet(loadPrivateKey(values.key!), contract.runner!.provider!);
  let hash: string;
  try {
    const sent = await wallet.sendTransaction({ to, data });
    io.err(`sent ${sent.hash}, waiting for it to be mined\n`);
    const receipt = await sent.wait();
    if (receipt === null || receipt.status !== 1) throw new PulseError('CHAIN_REVERTED', `claim transaction ${sent.hash} reverted`);
    hash = sent.hash;
  } catch (e) {
    if (e instanceof PulseError) throw e;
    throw new PulseError('CHAIN_REVERTED', `claim(${account}, ${p.cumulative}): ${describeClaimRevert(e)}`);
  }
  io.out(values.json === true ? JSON.stringify({ account, epoch, amount: String(due), cumulative: String(p.cumulative), tx: hash }) : `claimed ${due} for ${account} (cumulative ${p.cumulative}, epoch ${epoch}) in ${hash}`);
  return 0;
}
