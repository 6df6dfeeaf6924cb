// Run an async job now and then every `everyMs` after the previous run finished (never two at once),
// until stop(), which waits for a run in progress: graceful shutdown for the oracle's background
// loops (health monitor, alert monitor, epoch pipeline). A failed run is reported and retried on the
// next tick; it never stops the loop.
export class PeriodicTask {
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<unknown> | undefined;
  private active = false;

  constructor(
    private readonly job: () => Promise<unknown>,
    private readonly everyMs: number,
    private readonly onError: (e: unknown) => void,
  ) {}

  start(): void {
    if (this.active) return;
    this.active = true;
    const loop = (): void => {
      this.running = this.job()
        .catch((e: unknown) => this.onError(e))
        .finally(() => {
          if (this.active) this.timer = setTimeout(loop, this.everyMs);
        });
    };
    this.timer = setTimeout(loop, 0);
  }

  async stop(): Promise<void> {
    this.active = false;
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
    await this.running;
  }
}
