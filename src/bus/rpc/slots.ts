/**
 * A fixed number of dispatch slots (oslo's executor pool): `take` resolves once a slot is free,
 * in arrival order; the holder gives it back with `release`. `drain` drops every waiter (they
 * resolve with false) so that a stopping server dispatches nothing more.
 */
export class DispatchSlots {
  private busy = 0;
  private readonly waiters: ((granted: boolean) => void)[] = [];

  constructor(readonly size: number) {
    if (!Number.isInteger(size) || size < 1) throw new RangeError(`dispatch slots: size must be a positive integer, not ${size}`);
  }

  get inUse(): number {
    return this.busy;
  }

  get waiting(): number {
    return this.waiters.length;
  }

  /** Resolves true once a slot is held, false if the waiter was dropped by `drain`. */
  take(): Promise<boolean> {
    if (this.busy < this.size) {
      this.busy++;
      return Promise.resolve(true);
    }
    return new Promise((resolve) => this.waiters.push(resolve));
  }

  /** Give a slot back; the oldest waiter gets it at once. */
  release(): void {
    const next = this.waiters.shift();
    if (next) next(true);
    else if (this.busy > 0) this.busy--;
  }

  /** Drop every waiter (they get false); slots in use stay held until released. */
  drain(): void {
    for (const w of this.waiters.splice(0)) w(false);
  }
}
