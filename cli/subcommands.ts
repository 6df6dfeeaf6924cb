// `pulse <command> <subcommand> …` dispatch shared by the multi-verb commands (keys, hb, token, msg):
// help on `help`/`--help`/`-h`, CLI_USAGE naming the subcommands otherwise.
import { PulseError } from '../shared/errors.ts';

export type Subcommand = (argv: string[]) => Promise<number>;

export async function dispatch(command: string, help: string, subcommands: Readonly<Record<string, Subcommand>>, argv: string[]): Promise<number> {
  const [sub, ...rest] = argv;
  const names = Object.keys(subcommands).join(' or ');
  if (sub === undefined) throw new PulseError('CLI_USAGE', `missing subcommand: ${names}; see \`pulse ${command} --help\``);
  if (sub === 'help' || sub === '--help' || sub === '-h') {
    console.log(help);
    return 0;
  }
  const f = Object.hasOwn(subcommands, sub) ? subcommands[sub] : undefined;
  if (f === undefined) throw new PulseError('CLI_USAGE', `unknown subcommand ${JSON.stringify(sub)}; see \`pulse ${command} --help\``);
  return f(rest);
}

/** The closing lines of an inspect report: VALID, or INVALID with every problem and its code. */
export function problemLines(problems: readonly { readonly code: string; readonly message: string }[], validText: string, recordedBy: string): string[] {
  if (problems.length === 0) return [validText];
  const width = Math.max(28, ...problems.map((p) => p.code.length + 2));
  return [
    `INVALID: ${problems.length} problem${problems.length === 1 ? '' : 's'} (the first is the reason ${recordedBy} records)`,
    ...problems.map((p) => `  ${p.code.padEnd(width)} ${p.message}`),
  ];
}

/** Print a command's help and return exit code 0. */
export function printHelp(help: string): number {
  console.log(help);
  return 0;
}
