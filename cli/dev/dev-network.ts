// `pulse dev` (what `npm start` runs): the whole network in one process on embedded defaults
// (issue 8 §2): a local anvil with the token and RewardDistributor deployed and funded, the oracle
// (PGlite in <data-dir>, the in-memory bus, API, dashboard, short epochs, posting on the local
// chain), the Aedes broker, and a simulated fleet onboarded through the real path. Starting again
// resumes from <data-dir>; the contracts are redeployed only when the chain was reset.
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { randomBytes } from 'node:crypto';
import { JsonRpcProvider, Wallet } from 'ethers';
import { startAnvilNode, type AnvilNode } from './anvil-node.ts';
import type { DevConfig } from '../dev-config.ts';
import { MemoryBus } from '../../bus/memory.ts';
import { startBroker, type BrokerHandle } from '../../broker/broker.ts';
import { brokerConfig } from '../../broker/config.ts';
import { startOracleService, type Log, type OracleService } from '../../oracle/oracle-service.ts';
import { loadConfig } from '../../shared/config-schema.ts';
import { oracleConfigSection } from '../../oracle/config.ts';
import { operatorConfigSection } from '../../oracle/api/operator-surface.ts';
import { epochConfigSection } from '../../oracle/epochs/epoch-config.ts';
import { DEFAULT_REWARD_PARAMS } from '../../oracle/epochs/default-params.ts';
import { StoreDeviceDirectory } from '../../oracle/registry/store-device-directory.ts';
import { deployPulseContracts } from '../../oracle/chain/deploy.ts';
import { startFleet, type FleetHandle } from '../../device-sim/start-fleet.ts';
import { parseMix } from '../../device-sim/behaviours.ts';
import { deviceKeyFromSecret, formatKeyFile, parseKeyFile } from '../../shared/protocol/keyfile.ts';
import { randomSecretKey } from '../../shared/crypto/noble.ts';
import { signerFor } from '../../shared/protocol/signer.ts';
import { fromHex } from '../../shared/hex.ts';
import { PulseError } from '../../shared/errors.ts';

export type DevNetwork = {
  readonly urls: { readonly dashboard: string; readonly api: string; readonly mqtt: string; readonly ws: string; readonly rpc: string };
  readonly distributor: string;
  readonly token: string;
  readonly operatorToken: string;
  readonly oracle: OracleService;
  readonly broker: BrokerHandle;
  readonly fleet: FleetHandle | undefined;
  readonly anvil: AnvilNode;
  /** The `pulse verify` command line for an epoch. */
  verifyCommand(epoch: number): string;
  stop(): Promise<void>;
};

type DeploymentRecord = { chainId: string; distributor: string; token: string; deployedAt: string };

function readJson<T>(path: string): T | undefined {
  try {
    return JSON.parse(readFileSync(path, 'utf8')) as T;
  } catch {
    return undefined;
  }
}

/** A value kept in the data dir across restarts, created on first start. */
function persisted(path: string, create: () => string): string {
  if (existsSync(path)) return readFileSync(path, 'utf8').trim();
  const v = create();
  writeFileSync(path, `${v}\n`, { mode: 0o600 });
  return v;
}

export async function startDevNetwork(cfg: DevConfig, logFor: (component: string) => Log): Promise<DevNetwork> {
  const log = logFor('dev');
  if ((cfg.epochSeconds * 1000) % (cfg.slotSeconds * 1000) !== 0) throw new PulseError('CONFIG_INVALID', `--epoch-seconds ${cfg.epochSeconds} must be a multiple of --slot-seconds ${cfg.slotSeconds}`);
  const dataDir = resolve(cfg.dataDir);
  for (const d of ['', 'chain', 'bundles', 'sim']) mkdirSync(join(dataDir, d), { recursive: true });
  const operatorToken = cfg.operatorToken !== '' ? cfg.operatorToken : persisted(join(dataDir, 'operator-token'), () => randomBytes(24).toString('hex'));
  const slotMs = cfg.slotSeconds * 1000;
  const epochMs = cfg.epochSeconds * 1000;
  // Genesis is fixed on first start (and recorded in the database, which refuses a change).
  const genesisMs = Number(persisted(join(dataDir, 'genesis-ms'), () => String(Math.floor(Date.now() / epochMs) * epochMs)));

  const stops: (() => Promise<void>)[] = [];
  const stopAll = async () => {
    for (const s of stops.splice(0).reverse()) await s().catch((e: unknown) => log({ level: 'warn', msg: 'stop failed', error: (e as Error).message }));
  };
  try {
    // 1. Chain: anvil with persisted state; (re)deploy when the recorded contract has no code.
    const anvil = await startAnvilNode({ host: cfg.host, port: cfg.rpcPort, stateFile: join(dataDir, 'chain', 'anvil-state.json'), portFlag: '--rpc-port' });
    stops.push(() => anvil.stop());
    const provider = new JsonRpcProvider(anvil.url, undefined, { pollingInterval: 500 });
    stops.push(async () => provider.destroy());
    const deployer = new Wallet(anvil.keys[0]!, provider);
    const guardian = new Wallet(anvil.keys[1]!, provider);
    const deploymentFile = join(dataDir, 'chain', 'deployment.json');
    let deployment = readJson<DeploymentRecord>(deploymentFile);
    let redeployed = false;
    if (deployment === undefined || (await provider.getCode(deployment.distributor)) === '0x') {
      log({ msg: deployment === undefined ? 'deploying contracts' : 'the chain was reset: redeploying contracts' });
      const d = await deployPulseContracts(deployer, {
        admin: deployer.address,
        guardian: guardian.address,
        oracleSigners: [deployer.address],
        threshold: 1,
        challengePeriodSeconds: cfg.challengeSeconds,
        maxIncreasePerEpoch: DEFAULT_REWARD_PARAMS.emissionPerEpoch,
        mintToDistributor: DEFAULT_REWARD_PARAMS.emissionPerEpoch * 100_000n,
      });
      deployment = { chainId: d.chainId.toString(), distributor: d.distributor, token: d.token, deployedAt: new Date().toISOString() };
      writeFileSync(deploymentFile, JSON.stringify(deployment, null, 2) + '\n');
      redeployed = true;
    }

    // 2. Oracle on PGlite, fed by the in-memory bus the broker publishes to.
    const bus = new MemoryBus();
    stops.push(() => bus.close());
    const oracleCfg = Object.freeze({
      ...loadConfig(oracleConfigSection, {}, {}),
      dataDir: join(dataDir, 'db'),
      networkId: cfg.networkId,
      slotIntervalMs: slotMs,
      bus: 'memory' as const,
      ingestWorkers: 1,
      httpHost: cfg.host,
      httpPort: cfg.httpPort,
      operatorToken,
    });
    const epochCfg = Object.freeze({
      ...loadConfig(epochConfigSection, {}, {}),
      genesisMs,
      epochMs,
      graceMs: cfg.graceSeconds * 1000,
      epochTickMs: 1000,
      bundleDir: join(dataDir, 'bundles'),
      rpcUrl: anvil.url,
      distributor: deployment.distributor,
      signerKey: anvil.keys[0]!,
      challengeSeconds: cfg.challengeSeconds,
    });
    const operatorCfg = Object.freeze({ ...loadConfig(operatorConfigSection, {}, {}), healthTickMs: Math.min(5000, slotMs) });
    const oracle = await startOracleService({
      oracle: oracleCfg,
      operator: operatorCfg,
      epochs: epochCfg,
      bus,
      logFor,
      ...(redeployed
        ? {
            beforePipeline: async (store) => {
              // A fresh chain holds none of the roots this database posted: post them again, in order.
              await store.query("UPDATE epochs SET status = 'bundled', tx_hash = NULL, posted_at = NULL, post_error = NULL WHERE status IN ('posted', 'failed')");
              await store.query('DELETE FROM post_intents');
            },
          }
        : {}),
    });
    stops.push(() => oracle.stop());

    // 3. Broker on the same registry. Session reports at least twice per grace period, so an epoch's
    // last connected time reaches the oracle before the epoch closes (docs/broker.md §Session reports).
    const sessionReportMs = Math.max(1_000, Math.min(30_000, (cfg.graceSeconds * 1000) / 2));
    const broker = await startBroker(
      brokerConfig({ mqttHost: cfg.host, mqttPort: cfg.mqttPort, wsHost: cfg.host, wsPort: cfg.wsPort, tlsPort: undefined, wssPort: undefined, metricsHost: cfg.host, metricsPort: 0, networkId: cfg.networkId, bus: 'memory', sessionReportMs }),
      { bus, directory: new StoreDeviceDirectory(oracle.store) },
    );
    stops.push(() => broker.close());

    // 4. A dev maker and a fleet onboarded through POST /api/onboard, owned by anvil accounts 2-5.
    const makerFile = join(dataDir, 'maker.key');
    if (!existsSync(makerFile)) writeFileSync(makerFile, formatKeyFile(deviceKeyFromSecret(randomSecretKey())), { mode: 0o600 });
    const maker = parseKeyFile(readFileSync(makerFile, 'utf8'));
    if (!maker.ok) throw new PulseError('CLI_INPUT', `${makerFile}: ${maker.message}`);
    const added = await oracle.registry.addMaker({ publicKey: maker.value.deviceId, name: 'Pulse dev maker' });
    if (!added.ok) throw new PulseError('CLI_INPUT', `registering the dev maker: ${added.message}`);
    const api = `http://${cfg.host}:${oracle.port}`;
    const mqtt = `mqtt://${cfg.host}:${broker.addresses.mqtt?.port ?? cfg.mqttPort}`;
    let fleet: FleetHandle | undefined;
    if (cfg.devices > 0) {
      const owners = anvil.keys.slice(2, 6).map((k) => fromHex(new Wallet(k).address.slice(2).toLowerCase())!);
      fleet = await startFleet({
        devices: cfg.devices,
        brokerUrl: mqtt,
        networkId: cfg.networkId,
        intervalMs: slotMs,
        mix: parseMix(cfg.mix),
        stateDir: join(dataDir, 'sim'),
        onboard: { url: api, maker: { publicKey: maker.value.publicKey, sign: signerFor(maker.value.secretKey) }, owners },
      });
      const f = fleet;
      stops.push(() => f.stop(2000));
    }

    const rpc = anvil.url;
    const distributor = deployment.distributor;
    return {
      urls: { dashboard: `${api}/`, api, mqtt, ws: `ws://${cfg.host}:${broker.addresses.ws?.port ?? cfg.wsPort}/mqtt`, rpc },
      distributor,
      token: deployment.token,
      operatorToken,
      oracle,
      broker,
      fleet,
      anvil,
      verifyCommand: (epoch) => `npx pulse verify --epoch ${epoch} --bundle ${api}/api/epochs/${epoch}/bundle --rpc ${rpc} --contract ${distributor}`,
      stop: stopAll,
    };
  } catch (e) {
    await stopAll();
    throw e;
  }
}
