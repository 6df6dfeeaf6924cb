// `pulse dev` (what `npm start` runs): the whole network in one process on embedded defaults. Prints
// the dashboard, MQTT and RPC URLs, the contract address and the `pulse verify` command for each
// posted epoch; Ctrl-C stops cleanly and a restart resumes from --data-dir.
import { configHelp, parseConfigFlags } from '../config-args.ts';
import { devConfigSection, loadDevConfig } from '../dev-config.ts';
import { startDevNetwork } from '../dev/dev-network.ts';
import type { Log } from '../../oracle/oracle-service.ts';

export const summary = 'the whole network in one process on embedded defaults (what `npm start` runs)';

export async function run(argv: string[]): Promise<number> {
  const { flags, help } = parseConfigFlags(argv, [devConfigSection]);
  if (help) {
    console.log(configHelp('Usage: pulse dev [options]   (npm start)', [devConfigSection], ['Logs are JSON lines in <data-dir>/dev.log; errors also on stderr.']));
    return 0;
  }
  const cfg = loadDevConfig(flags);
  const { createWriteStream, mkdirSync } = await import('node:fs');
  const { join, resolve } = await import('node:path');
  mkdirSync(resolve(cfg.dataDir), { recursive: true });
  const logFile = createWriteStream(join(resolve(cfg.dataDir), 'dev.log'), { flags: 'a' });
  const tty = process.stdout.isTTY === true && !cfg.quiet;
  const say = (line: string) => {
    if (tty) process.stdout.write('\r\x1b[2K');
    console.log(line);
  };
  // Set once the network runs; the log sink (created before) reads it to print verify commands.
  const running: { net?: Awaited<ReturnType<typeof startDevNetwork>> } = {};
  const logFor = (component: string): Log => (event) => {
    logFile.write(`${JSON.stringify({ at: new Date().toISOString(), component, ...event })}\n`);
    const level = event['level'];
    if (level === 'error') say(`✖ ${component}: ${String(event['msg'] ?? event['error'] ?? JSON.stringify(event))}`);
    if (event['event'] === 'epoch-posted' && typeof event['epoch'] === 'number') {
      say(`● epoch ${event['epoch']} posted (tx ${String(event['txHash'] ?? 'unknown')}). Verify it:\n    ${running.net?.verifyCommand(event['epoch']) ?? ''}`);
    }
    if (event['event'] === 'epoch-post-failed') say(`✖ epoch ${String(event['epoch'])} post failed: ${String(event['error'])}`);
  };
  console.log(`Starting the Pulse dev network in ${resolve(cfg.dataDir)} …`);
  const net = await startDevNetwork(cfg, logFor);
  running.net = net;
  console.log(
    [
      '',
      'Pulse dev network is running.',
      `  dashboard       ${net.urls.dashboard}   (operator token: ${net.operatorToken})`,
      `  API             ${net.urls.api}/api   (OpenAPI: ${net.urls.api}/docs)`,
      `  MQTT            ${net.urls.mqtt}   WebSocket ${net.urls.ws}`,
      `  broker metrics  http://${net.broker.addresses.metrics?.host ?? cfg.host}:${net.broker.addresses.metrics?.port ?? 0}/metrics   (oracle: ${net.urls.api}/metrics)`,
      `  chain (anvil)   ${net.urls.rpc}   RewardDistributor ${net.distributor}   token ${net.token}`,
      `  devices         ${cfg.devices} simulated; epochs of ${cfg.epochSeconds} s, slots of ${cfg.slotSeconds} s`,
      `  logs            ${join(resolve(cfg.dataDir), 'dev.log')}`,
      '  Each posted epoch prints its `pulse verify` command. Ctrl-C stops.',
      '',
    ].join('\n'),
  );
  const status = setInterval(() => {
    const s = net.fleet?.stats();
    const rejected = s ? Object.values(s.rejected).reduce((a, b) => a + b, 0) : 0;
    const line = s ? `devices ${s.connected}/${s.devices} connected · sent ${s.sent} · acknowledged ${s.acknowledged} · rejected ${rejected}` : 'no simulated devices';
    if (tty) process.stdout.write(`\r\x1b[2K${line}`);
  }, 1000);
  status.unref();
  const signal = await new Promise<string>((resolveSignal) => {
    process.once('SIGINT', () => resolveSignal('SIGINT'));
    process.once('SIGTERM', () => resolveSignal('SIGTERM'));
  });
  clearInterval(status);
  say(`${signal}: stopping …`);
  await net.stop();
  logFile.end();
  console.log('stopped; start again to resume from the data directory.');
  return 0;
}
