// `pulse dev` end to end (issue 8 tests, issue 5 end to end): the real command starts anvil, the
// oracle on PGlite, the broker and a simulated fleet with misbehaving devices; within a few epochs a
// root is posted; the printed `pulse verify` command passes against the chain; misbehaving devices
// are rejected with their expected reason codes and inflated metrics are capped; after the
// challenge period `pulse claim` pays an owner exactly its cumulative amount, and a second claim
// pays nothing.
import { spawn, execFile, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Contract, JsonRpcProvider, Wallet } from 'ethers';
import { needs } from './support/services.ts';

const run = promisify(execFile);
const ok = await needs('anvil');
const PULSE = new URL('../bin/pulse.js', import.meta.url).pathname;
// anvil's default test mnemonic, account 2: one of the owners `pulse dev` gives simulated devices.
const OWNER_KEY = '0x5de4111afa1a4b94908f83103eb1f1706367c2e68ca870fc3fb9a804cdab365a';

type Printed = { api: string; rpc: string; contract: string; token: string; operatorToken: string; brokerMetrics: string };

describe.skipIf(!ok)('pulse dev', () => {
  let dir: string;
  let child: ChildProcess;
  let out = '';
  let printed: Printed;

  const waitFor = (re: RegExp, ms: number): Promise<RegExpExecArray> =>
    new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`timed out waiting for ${re} in:\n${out.slice(-3000)}`)), ms);
      const check = () => {
        const m = re.exec(out);
        if (m) {
          clearTimeout(timer);
          child.stdout!.off('data', check);
          resolve(m);
        }
      };
      child.stdout!.on('data', check);
      check();
    });

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'pulse-dev-'));
    child = spawn(process.execPath, [PULSE, 'dev', '--data-dir', dir, '--epoch-seconds', '12', '--slot-seconds', '2', '--grace-seconds', '1',
      '--challenge-seconds', '2', '--devices', '16', '--mqtt-port', '0', '--ws-port', '0', '--http-port', '0', '--rpc-port', '0', '--quiet',
      '--mix', 'honest=7,forge=1,drift=1,skew=1,impersonate=1,oversized=1,inflate=2,replay=2'], { stdio: ['ignore', 'pipe', 'pipe'] });
    child.stdout!.on('data', (b: Buffer) => (out += b.toString()));
    child.stderr!.on('data', (b: Buffer) => (out += b.toString()));
    await waitFor(/Pulse dev network is running[\s\S]*Ctrl-C stops/, 240_000);
    const grab = (re: RegExp) => re.exec(out)?.[1] ?? '';
    printed = {
      api: grab(/API\s+(http:\/\/\S+)\/api/),
      rpc: grab(/chain \(anvil\)\s+(http:\/\/\S+)/),
      contract: grab(/RewardDistributor (0x[0-9a-fA-F]{40})/),
      token: grab(/token (0x[0-9a-fA-F]{40})/),
      operatorToken: grab(/operator token: ([0-9a-f]+)/),
      brokerMetrics: grab(/broker metrics\s+(http:\/\/\S+)/),
    };
    expect(printed.contract).toMatch(/^0x/);
  }, 300_000);

  afterAll(async () => {
    if (child !== undefined && child.exitCode === null) {
      const exited = new Promise((r) => child.once('exit', r));
      child.kill('SIGINT');
      await exited;
    }
    if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
  });

  it('posts a root within a few epochs and the printed verify command passes against the chain', async () => {
    const m = await waitFor(/epoch (\d+) posted[^\n]*\n\s+(npx pulse verify [^\n]+)/, 240_000);
    const args = m[2]!.replace(/^npx pulse /, '').split(/\s+/);
    expect(args).toContain('--rpc');
    const { stdout } = await run(process.execPath, [PULSE, ...args], { timeout: 120_000 });
    expect(stdout).toMatch(/^PASS epoch \d+/m);
  }, 400_000);

  it('rejects misbehaving devices with their expected reason codes', async () => {
    const metrics = await (await fetch(printed.brokerMetrics)).text();
    for (const reason of ['HB_BAD_SIGNATURE', 'HB_CLOCK_SKEW', 'HB_TOPIC_MISMATCH', 'HB_OVERSIZED'])
      expect(metrics, reason).toMatch(new RegExp(`pulse_broker_messages_rejected_total\\{reason="${reason}"\\} [1-9]`));
    expect(metrics).toMatch(/pulse_broker_connects_total\{outcome="TOKEN_CLOCK_SKEW"\} [1-9]/);
  });

  it('caps inflated metrics and says so in the device explanation', async () => {
    const auth = { authorization: `Bearer ${printed.operatorToken}` };
    const epochs = (await (await fetch(`${printed.api}/api/epochs`)).json()) as { epochs: { epoch: number; root: string | null }[] };
    const withRoot = epochs.epochs.find((e) => e.root !== null)!;
    const list = (await (await fetch(`${printed.api}/api/devices?limit=100`, { headers: auth })).json()) as { devices: { deviceId: string }[] };
    const reasons = new Set<string>();
    for (const d of list.devices) {
      const r = await fetch(`${printed.api}/api/devices/${d.deviceId}/epochs/${withRoot.epoch}`);
      if (r.status !== 200) continue;
      const body = (await r.json()) as { reasons?: { code: string }[] };
      for (const x of body.reasons ?? []) reasons.add(x.code);
    }
    expect([...reasons]).toContain('METRIC_CAPPED');
  });

  it('pays an owner exactly its cumulative amount after the challenge period, and a second claim pays nothing', async () => {
    const provider = new JsonRpcProvider(printed.rpc);
    const owner = new Wallet(OWNER_KEY).address;
    const keyFile = join(dir, 'owner.key');
    writeFileSync(keyFile, OWNER_KEY);
    // Wait until a root is past its challenge period (the next post mines a block after it).
    await waitFor(/epoch \d+ posted[\s\S]*epoch \d+ posted[\s\S]*epoch \d+ posted/, 240_000);
    const erc20 = new Contract(printed.token, ['function balanceOf(address) view returns (uint256)'], provider);
    const balanceAt = async (blockTag: number) => (await erc20.getFunction('balanceOf')(owner, { blockTag })) as bigint;
    const claimArgs = [PULSE, 'claim', '--address', owner, '--rpc', printed.rpc, '--contract', printed.contract, '--api', printed.api, '--key', keyFile, '--json'];
    const first = await run(process.execPath, claimArgs, { timeout: 120_000 });
    const claimed = JSON.parse(first.stdout.trim().split('\n').pop()!) as { epoch: number; amount: string; cumulative: string; tx: string };
    // The owner's cumulative amount for that epoch, from the public proof API.
    const proof = (await (await fetch(`${printed.api}/api/epochs/${claimed.epoch}/proofs/${owner}`)).json()) as { cumulative: string };
    expect(BigInt(claimed.cumulative)).toBe(BigInt(proof.cumulative));
    expect(BigInt(claimed.amount)).toBe(BigInt(proof.cumulative)); // the first claim pays all of it
    // Exactly that amount moved, in exactly the claim's block.
    const receipt = (await provider.getTransactionReceipt(claimed.tx))!;
    expect(receipt.status).toBe(1);
    const paidIn = await balanceAt(receipt.blockNumber);
    expect(paidIn - (await balanceAt(receipt.blockNumber - 1))).toBe(BigInt(claimed.amount));
    // A second claim of the same leaf (same epoch) pays nothing.
    const second = await run(process.execPath, [...claimArgs, '--epoch', String(claimed.epoch)], { timeout: 120_000 });
    const again = JSON.parse(second.stdout.trim().split('\n').pop()!) as { due?: string };
    expect(again.due).toBe('0');
    expect(await balanceAt(await provider.getBlockNumber())).toBe(paidIn);
    provider.destroy();
  }, 400_000);

  it('stops cleanly on Ctrl-C', async () => {
    const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
    child.kill('SIGINT');
    expect(await exited).toBe(0);
    expect(out).toMatch(/stopped; start again to resume/);
  }, 60_000);
});
