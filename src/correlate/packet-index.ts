/**
 * A multimap from a packet's (seq, length, flags, direction) to where it is, in typed arrays:
 * open addressing, linear probing, equal keys in neighbouring slots. Matching millions of packets
 * through a Map would allocate a heap number per key and a list per value; this allocates four
 * arrays, once.
 */

/** The tracker's flags that survive any path: FIN, SYN, RST, ACK, as 4 bits. */
export function keyFlags(flags: number): number {
  return (flags & 7) | ((flags & 0x10) >> 1);
}

/** Length, flags and direction in one 32-bit word (lengths past 2^27 share a word: checked by the caller). */
export function keyExtra(len: number, flags: number, dir: number): number {
  return (((len & 0x7ffffff) << 5) | (keyFlags(flags) << 1) | dir) >>> 0;
}

export class PacketIndex {
  private readonly mask: number;
  private readonly seqs: Uint32Array;
  private readonly extras: Uint32Array;
  /** Owner (conversation index) + 1; 0 marks an empty slot. */
  private readonly owners: Uint32Array;
  private readonly items: Uint32Array;
  /** Matches of the last find(), reused. */
  readonly foundOwners: number[] = [];
  readonly foundItems: number[] = [];

  constructor(expected: number) {
    let capacity = 16;
    while (capacity < expected * 2) capacity *= 2;
    this.mask = capacity - 1;
    this.seqs = new Uint32Array(capacity);
    this.extras = new Uint32Array(capacity);
    this.owners = new Uint32Array(capacity);
    this.items = new Uint32Array(capacity);
  }

  private slot(seq: number, extra: number): number {
    let h = Math.imul(seq ^ Math.imul(extra, 0x9e3779b1), 0x85ebca6b);
    h ^= h >>> 13;
    return h & this.mask;
  }

  /** Adds an entry; at most `expected` of them (the constructor's). */
  add(seq: number, extra: number, owner: number, item: number): void {
    let s = this.slot(seq, extra);
    while (this.owners[s] !== 0) s = (s + 1) & this.mask;
    this.seqs[s] = seq;
    this.extras[s] = extra;
    this.owners[s] = owner + 1;
    this.items[s] = item;
  }

  /** Every entry with this key, in the order added, into foundOwners / foundItems; returns how many. */
  find(seq: number, extra: number): number {
    const owners = this.foundOwners;
    const items = this.foundItems;
    owners.length = 0;
    items.length = 0;
    let s = this.slot(seq, extra);
    while (this.owners[s] !== 0) {
      if (this.seqs[s] === seq && this.extras[s] === extra) {
        owners.push(this.owners[s] - 1);
        items.push(this.items[s]);
      }
      s = (s + 1) & this.mask;
    }
    return owners.length;
  }
}
