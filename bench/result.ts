// The shape every benchmark workload returns (issue: benchmark suite). A figure is always printed
// beside a comparison measured in the same run: the machine's limit or the incumbent.

export type BenchFigure = {
  /** e.g. "broker: accepted heartbeats/s (QoS 1, verify, JetStream)" */
  readonly name: string;
  readonly figure: number;
  readonly unit: string;
  /** The same-run comparison, e.g. { name: 'bare Aedes QoS 1', figure: 31000 }. */
  readonly comparison?: { readonly name: string; readonly figure: number; readonly unit?: string };
  /** Target from the issue, for the table (e.g. ">= 15000"). */
  readonly target?: string;
  /** Whether the target was met; undefined when there is no target. */
  readonly targetMet?: boolean;
  readonly note?: string;
};

export type BenchOptions = { readonly quick: boolean; readonly log: (line: string) => void };

/** A workload: bench/<name>.ts exports `description` and `run`. */
export type BenchWorkload = {
  readonly description: string;
  run(opts: BenchOptions): Promise<BenchFigure[]>;
};
