// `pulse chain`: deploy and inspect the reward contracts (docs/contracts.md).
//   pulse chain deploy --rpc URL (--key FILE | --key-env VAR) [options]   deploy + configure, print JSON
//   pulse chain status --rpc URL --distributor ADDR                       roles, threshold, epochs
import { writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { Contract, ZeroAddress, getAddress, isAddress } from 'ethers';
import { PulseError } from '../../shared/errors.ts';
import { parse } from '../../shared/config-schema.ts';
import { usageErrors } from './hb.ts';

export const summary = 'deploy RewardDistributor (and a test token) and show its on-chain state';

const HELP = `Usage:
  pulse chain deploy --rpc URL (--key FILE | --key-env VAR) [options]
      --token ADDR            existing ERC-20 to distribute (default: deploy a PulseTestToken)
      --mint AMOUNT           with the test token: mint AMOUNT (smallest unit) to the distributor
      --admin ADDR            DEFAULT_ADMIN_ROLE (default: the deployer)
      --guardian ADDR         GUARDIAN_ROLE, may veto roots in the challenge period (default: the deployer)
      --oracle ADDR[,ADDR…]   oracle signers, ORACLE_ROLE (default: the deployer)
      --threshold K           signatures needed per root (default 1)
      --challenge DURATION    challenge period: 30s, 10m, 24h … (default 24h)
      --max-increase AMOUNT   cap on the cumulative total's growth per epoch, smallest unit (required)
      --out FILE              also write the deployment JSON to FILE
  pulse chain status --rpc URL --distributor ADDR
The key is a 32-byte hex private key; it pays for the deployment. See docs/contracts.md.`;

function address(name: string, v: string): string {
  if (!isAddress(v)) throw new PulseError('CLI_USAGE', `--${name}: ${JSON.stringify(v)} is not an address`);
  return getAddress(v);
}

function amount(name: string, v: string | undefined): bigint | undefined {
  if (v === undefined) return undefined;
  if (!/^\d+$/.test(v)) throw new PulseError('CLI_USAGE', `--${name}: ${JSON.stringify(v)} is not a non-negative integer`);
  return BigInt(v);
}

const json = (v: unknown) => JSON.stringify(v, (_k, x) => (typeof x === 'bigint' ? x.toString() : x), 2);

async function deploy(argv: string[]): Promise<number> {
  const { values: v } = usageErrors(() =>
    parseArgs({
      args: argv,
      options: {
        rpc: { type: 'string' }, key: { type: 'string' }, 'key-env': { type: 'string' }, token: { type: 'string' }, mint: { type: 'string' },
        admin: { type: 'string' }, guardian: { type: 'string' }, oracle: { type: 'string' }, threshold: { type: 'string' },
        challenge: { type: 'string' }, 'max-increase': { type: 'string' }, out: { type: 'string' }, help: { type: 'boolean', short: 'h' },
      },
      strict: true,
    }),
  );
  if (v.help) {
    console.log(HELP);
    return 0;
  }
  if (v.rpc === undefined) throw new PulseError('CLI_USAGE', '--rpc URL is required');
  const maxIncrease = amount('max-increase', v['max-increase']);
  if (maxIncrease === undefined) throw new PulseError('CLI_USAGE', '--max-increase AMOUNT is required (cap on the cumulative growth per epoch)');
  if (v.token !== undefined && v.mint !== undefined) throw new PulseError('CLI_USAGE', '--mint only applies to the test token (omit --token)');
  let challengeSeconds = 86_400;
  if (v.challenge !== undefined) {
    try {
      challengeSeconds = Math.floor(parse.durationMs(v.challenge) / 1000);
    } catch (e) {
      throw new PulseError('CLI_USAGE', `--challenge: ${(e as Error).message}`);
    }
  }
  const threshold = v.threshold === undefined ? 1 : Number(amount('threshold', v.threshold));
  const { loadPrivateKey, openChainProvider } = await import('../../oracle/chain/chain-provider.ts');
  const { deployPulseContracts } = await import('../../oracle/chain/deploy.ts');
  const { chainReverted, revertData } = await import('../../oracle/chain/chain-error.ts');
  const { distributorInterface } = await import('../../oracle/chain/artifacts.ts');
  const key = loadPrivateKey({ ...(v.key !== undefined ? { file: v.key } : {}), ...(v['key-env'] !== undefined ? { env: v['key-env'] } : {}) });
  const provider = await openChainProvider(v.rpc);
  try {
    const { Wallet } = await import('ethers');
    const wallet = new Wallet(key, provider);
    const oracles = v.oracle === undefined ? [wallet.address] : v.oracle.split(',').map((a) => address('oracle', a.trim()));
    let dep;
    try {
      dep = await deployPulseContracts(wallet, {
        ...(v.token !== undefined ? { token: address('token', v.token) } : {}),
        admin: v.admin === undefined ? wallet.address : address('admin', v.admin),
        guardian: v.guardian === undefined ? wallet.address : v.guardian === 'none' ? ZeroAddress : address('guardian', v.guardian),
        oracleSigners: oracles,
        threshold,
        challengePeriodSeconds: challengeSeconds,
        maxIncreasePerEpoch: maxIncrease,
        ...(v.mint !== undefined ? { mintToDistributor: amount('mint', v.mint)! } : {}),
      });
    } catch (e) {
      if (e instanceof PulseError) throw e;
      if (revertData(e) !== undefined) throw chainReverted(distributorInterface(), e, 'deploy');
      throw e;
    }
    const out = { ...dep, oracleSigners: oracles, threshold, challengePeriodSeconds: challengeSeconds, maxIncreasePerEpoch: maxIncrease };
    const text = json(out);
    if (v.out !== undefined) writeFileSync(v.out, text + '\n');
    console.log(text);
    return 0;
  } finally {
    provider.destroy();
  }
}

async function status(argv: string[]): Promise<number> {
  const { values: v } = usageErrors(() =>
    parseArgs({ args: argv, options: { rpc: { type: 'string' }, distributor: { type: 'string' }, help: { type: 'boolean', short: 'h' } }, strict: true }),
  );
  if (v.help) {
    console.log(HELP);
    return 0;
  }
  if (v.rpc === undefined || v.distributor === undefined) throw new PulseError('CLI_USAGE', '--rpc URL and --distributor ADDR are required');
  const distributor = address('distributor', v.distributor);
  const { openChainProvider } = await import('../../oracle/chain/chain-provider.ts');
  const { loadArtifact } = await import('../../oracle/chain/artifacts.ts');
  const provider = await openChainProvider(v.rpc);
  try {
    if ((await provider.getCode(distributor)) === '0x') throw new PulseError('CHAIN_NOT_DEPLOYED', `no contract at ${distributor}`);
    const c = new Contract(distributor, loadArtifact('RewardDistributor').abi, provider);
    const f = (n: string, ...a: unknown[]) => c.getFunction(n)(...a) as Promise<unknown>;
    const oracleRole = (await f('ORACLE_ROLE')) as string;
    const n = Number(await f('getRoleMemberCount', oracleRole));
    const signers: string[] = [];
    for (let i = 0; i < n; i++) signers.push((await f('getRoleMember', oracleRole, i)) as string);
    const [posted, latest] = (await f('latestEpoch')) as [boolean, bigint];
    const [claimable, claimableEpoch, claimableRoot] = (await f('claimableRoot')) as [boolean, bigint, string];
    console.log(
      json({
        distributor,
        token: await f('token'),
        threshold: await f('threshold'),
        oracleSigners: signers,
        challengePeriodSeconds: await f('challengePeriod'),
        maxIncreasePerEpoch: await f('maxIncreasePerEpoch'),
        postedRoots: await f('postedCount'),
        latestEpoch: posted ? latest : null,
        claimable: claimable ? { epoch: claimableEpoch, root: claimableRoot } : null,
      }),
    );
    return 0;
  } finally {
    provider.destroy();
  }
}

export async function run(argv: string[]): Promise<number> {
  const [sub, ...rest] = argv;
  if (sub === 'deploy') return deploy(rest);
  if (sub === 'status') return status(rest);
  if (sub === undefined || sub === 'help' || sub === '--help' || sub === '-h') {
    console.log(HELP);
    return sub === undefined ? 2 : 0;
  }
  throw new PulseError('CLI_USAGE', `unknown subcommand ${JSON.stringify(sub)}; see pulse chain --help`);
}
