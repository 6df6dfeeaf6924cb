// `pulse chain deploy` and `pulse chain status` as child processes against anvil (docs/contracts.md §Deploy).
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Contract, JsonRpcProvider, Wallet } from 'ethers';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { needs } from './support/services.ts';
import { startAnvil, type Anvil } from './support/anvil.ts';
import { loadArtifact } from '../oracle/chain/artifacts.ts';

const ok = await needs('anvil');
const PULSE = new URL('../bin/pulse.js', import.meta.url).pathname;

type Run = { code: number; stdout: string; stderr: string };
function pulse(args: string[], env: Record<string, string> = {}): Promise<Run> {
  return new Promise((resolve) => {
    execFile(process.execPath, [PULSE, ...args], { encoding: 'utf8', env: { ...process.env, ...env } }, (error, stdout, stderr) => {
      const code = error === null ? 0 : typeof (error as { code?: unknown }).code === 'number' ? (error as { code: number }).code : -1;
      resolve({ code, stdout, stderr });
    });
  });
}

describe.skipIf(!ok)('pulse chain', () => {
  let anvil: Anvil;
  const dir = mkdtempSync(join(tmpdir(), 'pulse-chain-'));
  beforeAll(async () => {
    anvil = await startAnvil();
  });
  afterAll(async () => {
    await anvil?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('deploy with a key file: test token, roles, threshold, challenge, cap, mint; status reads it back', async () => {
    const keyFile = join(dir, 'deployer.key');
    writeFileSync(keyFile, anvil.keys[0]! + '\n');
    const oracle = new Wallet(anvil.keys[1]!).address;
    const out = join(dir, 'deployment.json');
    const r = await pulse(['chain', 'deploy', '--rpc', anvil.url, '--key', keyFile, '--oracle', oracle, '--challenge', '10m', '--max-increase', '1000000', '--mint', '5000', '--out', out]);
    expect(r.code, r.stderr).toBe(0);
    const dep = JSON.parse(readFileSync(out, 'utf8')) as Record<string, unknown>;
    expect(JSON.parse(r.stdout)).toEqual(dep);
    expect(dep['testToken']).toBe(true);
    expect(dep['chainId']).toBe('31337');
    const provider = new JsonRpcProvider(anvil.url, undefined, { staticNetwork: true });
    try {
      const dist = new Contract(dep['distributor'] as string, loadArtifact('RewardDistributor').abi, provider);
      expect(await dist.getFunction('hasRole')(await dist.getFunction('ORACLE_ROLE')(), oracle)).toBe(true);
      expect(await dist.getFunction('challengePeriod')()).toBe(600n);
      const token = new Contract(dep['token'] as string, loadArtifact('PulseTestToken').abi, provider);
      expect(await token.getFunction('balanceOf')(dep['distributor'])).toBe(5000n);
    } finally {
      provider.destroy();
    }
    const s = await pulse(['chain', 'status', '--rpc', anvil.url, '--distributor', dep['distributor'] as string]);
    expect(s.code, s.stderr).toBe(0);
    const st = JSON.parse(s.stdout) as Record<string, unknown>;
    expect(st).toMatchObject({ threshold: '1', oracleSigners: [oracle], challengePeriodSeconds: '600', maxIncreasePerEpoch: '1000000', postedRoots: '0', latestEpoch: null, claimable: null });
  });

  it('deploy with --key-env; bad keys, bad flags and contract refusals are clear errors', async () => {
    const good = await pulse(['chain', 'deploy', '--rpc', anvil.url, '--key-env', 'DEPLOY_KEY', '--max-increase', '1', '--guardian', 'none'], { DEPLOY_KEY: anvil.keys[2]! });
    expect(good.code, good.stderr).toBe(0);
    const bad = await pulse(['chain', 'deploy', '--rpc', anvil.url, '--key-env', 'DEPLOY_KEY', '--max-increase', '1'], { DEPLOY_KEY: 'nope' });
    expect(bad.code).toBe(1);
    expect(bad.stderr).toContain('CHAIN_BAD_KEY');
    const usage = await pulse(['chain', 'deploy', '--rpc', anvil.url, '--key-env', 'DEPLOY_KEY'], { DEPLOY_KEY: anvil.keys[2]! });
    expect(usage.code).toBe(2);
    expect(usage.stderr).toContain('--max-increase');
    const threshold = await pulse(['chain', 'deploy', '--rpc', anvil.url, '--key-env', 'DEPLOY_KEY', '--max-increase', '1', '--threshold', '2'], { DEPLOY_KEY: anvil.keys[2]! });
    expect(threshold.code).toBe(1);
    expect(threshold.stderr).toMatch(/CHAIN_REVERTED.*InvalidThreshold/);
    const down = await pulse(['chain', 'status', '--rpc', 'http://127.0.0.1:1', '--distributor', new Wallet(anvil.keys[0]!).address]);
    expect(down.code).toBe(1);
    expect(down.stderr).toContain('CHAIN_RPC_UNAVAILABLE');
    const none = await pulse(['chain', 'status', '--rpc', anvil.url, '--distributor', new Wallet(anvil.keys[0]!).address]);
    expect(none.code).toBe(1);
    expect(none.stderr).toContain('CHAIN_NOT_DEPLOYED');
  });
});
