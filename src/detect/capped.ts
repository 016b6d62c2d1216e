import type { ThresholdSpec } from './detector.js';

/**
 * Bounds on detector state that would otherwise grow with hostile traffic: a group per server a
 * scan touches, a sample per event of a flood. Each bound counts what it turned away, and the
 * report warns about it, so a diagnosis made under a flood is never silently partial.
 */
export class Cap {
  /** Items turned away: not kept, or not analysed at all (`lost` says which). */
  dropped = 0;
  private used = 0;

  constructor(
    /** The bound: a total when take() is used, the per-group bound kept elsewhere when only refuse() is. */
    readonly limit: number,
    /** What is bounded, for the warning: "servers followed". */
    readonly kept: string,
    /** What is lost past it: "connection attempts to further servers not analysed". */
    readonly lost: string,
  ) {}

  /** Takes one of the `limit` units; false (and counted) once all are in use. */
  take(): boolean {
    if (this.used >= this.limit) {
      this.dropped++;
      return false;
    }
    this.used++;
    return true;
  }

  /** Gives a unit back (a group forgotten to make room). */
  release(): void {
    this.used--;
  }

  /** Counts one item turned away by a per-group bound. */
  refuse(): void {
    this.dropped++;
  }

  /** Units in use (for take()); the size of the bounded structure. */
  get inUse(): number {
    return this.used;
  }
}

/** Makes a Cap registered with the engine, which turns its drops into report warnings. */
export type CapFactory = (limit: number, kept: string, lost: string) => Cap;

/** Groups by key (a server's ip:port, an address), at most `cap.limit` of them. */
export class CappedGroups<G> {
  private readonly groups = new Map<string, G>();

  constructor(private readonly cap: Cap) {}

  get size(): number {
    return this.groups.size;
  }

  get full(): boolean {
    return this.groups.size >= this.cap.limit;
  }

  get(key: string): G | undefined {
    return this.groups.get(key);
  }

  /** The group of `key`, created if there is room; null (counted as dropped) when the table is full. */
  obtain(key: string, create: () => G): G | null {
    let group = this.groups.get(key);
    if (group === undefined) {
      if (!this.cap.take()) return null;
      group = create();
      this.groups.set(key, group);
    }
    return group;
  }

  delete(key: string): void {
    if (this.groups.delete(key)) this.cap.release();
  }

  values(): IterableIterator<G> {
    return this.groups.values();
  }

  entries(): IterableIterator<[string, G]> {
    return this.groups.entries();
  }
}

/**
 * Servers (or server addresses) a detector that groups by server follows at once. A scan or a SYN
 * flood towards many addresses makes one group per address; real incidents involve a handful, and a
 * group costs a few hundred bytes to a few KB, so 100,000 keeps each detector below about 100 MB.
 */
export const DEFAULT_MAX_SERVERS = 100_000;

/** The `maxServers` threshold of the detectors that group by server. */
export function maxServersThreshold(groups: string): ThresholdSpec {
  return {
    default: DEFAULT_MAX_SERVERS,
    unit: 'servers',
    description: `${groups} followed at once (bounded memory under scans and floods); what concerns further ones is counted in a warning, not analysed`,
  };
}
