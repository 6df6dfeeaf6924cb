// `pulse oracle`: migrations, ingest workers (bus → database), the HTTP API and dashboard, and the
// epoch pipeline (close → bundle → post on chain); the same service `pulse dev` runs in-process
// (oracle/oracle-service.ts). SIGINT/SIGTERM: stop the pipeline and ingest (the batch in hand commits
// and acks, bounded by --shutdown-grace), close the API, the bus and the database, exit 0.
import { configHelp, parseConfigFlags } from '../config-args.ts';
import { loadConfig } from '../../shared/config-schema.ts';
import { oracleConfigSection } from '../../oracle/config.ts';
import { operatorConfigSection } from '../../oracle/api/operator-surface.ts';
import { epochConfigSection } from '../../oracle/epochs/epoch-config.ts';
import { startOracleService, type Log } from '../../oracle/oracle-service.ts';

export const summary = 'Oracle: migrations, ingest workers, API and dashboard, epochs closed, bundled and posted on chain';

const SECTIONS = [oracleConfigSection, epochConfigSection, operatorConfigSection];

function logger(component: string): Log {
  return (event) => process.stderr.write(`${JSON.stringify({ at: new Date().toISOString(), component, level: 'info', ...event })}\n`);
}

export async function run(argv: string[]): Promise<number> {
  const { flags, help } = parseConfigFlags(argv, SECTIONS);
  if (help) {
    console.log(configHelp('Usage: pulse oracle [options]', SECTIONS, ['Logs are JSON lines on stderr. See docs/deploy.md and docs/storage.md.']));
    return 0;
  }
  const oracle = loadConfig(oracleConfigSection, flags);
  const service = await startOracleService({
    oracle,
    operator: loadConfig(operatorConfigSection, flags),
    epochs: loadConfig(epochConfigSection, flags),
    logFor: logger,
  });
  const log = logger('oracle');
  const signal = await new Promise<string>((resolve) => {
    process.once('SIGINT', () => resolve('SIGINT'));
    process.once('SIGTERM', () => resolve('SIGTERM'));
  });
  log({ msg: 'shutting down', signal });
  const grace = new Promise<'timeout'>((resolve) => setTimeout(() => resolve('timeout'), oracle.shutdownGraceMs).unref());
  if ((await Promise.race([service.stop().then(() => 'done' as const), grace])) === 'timeout') {
    log({ level: 'warn', msg: 'shutdown did not finish within the grace period' });
    return 1;
  }
  log({ msg: 'stopped' });
  return 0;
}
