/**
 * Timestamps for packets that arrive without one (`cap` hands over only the bytes): wall time read
 * once, then advanced by the monotonic clock, so a capture's timestamps never jump when NTP steps
 * the wall clock, and are as fine as the moment JavaScript sees the packet (event-loop latency:
 * typically tens of microseconds, milliseconds under load; packets read in one burst get nearly
 * the same time).
 */
export class ArrivalClock {
  private readonly mono0: bigint;
  private readonly sec0: number;
  private readonly nsec0: number;
  /** Result of the last now(). */
  sec = 0;
  nsec = 0;

  constructor() {
    // Date.now() has millisecond resolution: anchor at the instant it ticks over, which puts the
    // anchor within microseconds of the true wall time (costs at most 1 ms of spinning, once).
    const first = Date.now();
    let wall = first;
    let mono = process.hrtime.bigint();
    for (let i = 0; i < 1e7 && wall === first; i++) {
      wall = Date.now();
      mono = process.hrtime.bigint();
    }
    this.mono0 = mono;
    this.sec0 = Math.floor(wall / 1000);
    this.nsec0 = (wall % 1000) * 1e6;
  }

  /** Reads the clock into sec/nsec. */
  now(): void {
    // Nanoseconds since the anchor: exact as a double for 104 days.
    const ns = this.nsec0 + Number(process.hrtime.bigint() - this.mono0);
    const whole = Math.floor(ns / 1e9);
    this.sec = this.sec0 + whole;
    this.nsec = ns - whole * 1e9;
  }
}
