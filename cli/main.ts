// `pulse` command dispatcher. Each command lives in cli/commands/<name>.ts and exports `summary`
// (one line for `pulse help`) and `run(argv)`, returning the process exit code. Commands are loaded
// on demand so `pulse hb inspect` does not pay for ethers or PGlite.
import { readdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { isPulseError } from '../shared/errors.ts';

export type Command = {
  readonly summary: string;
  run(argv: string[]): Promise<number>;
};

const commandsDir = fileURLToPath(new URL('./commands/', import.meta.url));

function commandNames(): string[] {
  return readdirSync(commandsDir)
    .filter((f) => f.endsWith('.ts') && !f.endsWith('.test.ts'))
    .map((f) => f.slice(0, -3))
    .sort();
}

async function load(name: string): Promise<Command> {
  return (await import(`./commands/${name}.ts`)) as Command;
}

async function help(): Promise<number> {
  const lines = ['pulse: DePIN telemetry and proof-of-contribution oracle', '', 'Commands:'];
  for (const name of commandNames()) lines.push(`  ${name.padEnd(10)} ${(await load(name)).summary}`);
  lines.push('', 'Run `pulse <command> --help` for its options. Docs: docs/ in the repository.');
  console.log(lines.join('\n'));
  return 0;
}

export async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined || name === 'help' || name === '--help' || name === '-h') return help();
  if (!commandNames().includes(name)) {
    console.error(`pulse: unknown command ${JSON.stringify(name)}; see \`pulse help\``);
    return 2;
  }
  try {
    return await (await load(name)).run(rest);
  } catch (e) {
    if (isPulseError(e)) {
      console.error(`pulse ${name}: ${e.message}`);
      return e.code === 'CLI_USAGE' ? 2 : 1;
    }
    throw e;
  }
}
