import type { DecodedPacket } from '../decode/packet.js';

/**
 * Hash table from a TCP 4-tuple to a small integer handle, without building a key string or object
 * per packet: the tuple is canonicalised (lower endpoint first) into nine 32-bit words that live in a
 * typed array, and the table is open-addressed with linear probing. Deletion uses backward shifting,
 * so there are no tombstones and probe chains stay short however many flows come and go.
 *
 * Handles are indexes into `values`; freed handles are reused, so memory follows live flows.
 */
const KEY_WORDS = 9;
/** Words per stored key: 64 bytes, so a key never straddles two cache lines. */
const KEY_STRIDE = 16;

export class FlowTable<V> {
  /**
   * Open-addressed slots in pairs: [handle + 1 (0 = empty), hash]. The hash sits next to the handle
   * so a probe compares it without touching the key store: one cache line per probe.
   */
  private slots: Int32Array;
  private mask: number;
  private keys: Uint32Array = new Uint32Array(KEY_STRIDE * 1024);
  private hashes: Int32Array = new Int32Array(1024);
  private readonly values: (V | undefined)[] = [];
  private readonly freeHandles: number[] = [];
  private live = 0;
  private readonly probe = new Uint32Array(KEY_WORDS);
  private probeHash = 0;
  /** After find/insert: whether the packet's source is the tuple's lower (first) endpoint. */
  sourceIsLow = true;

  constructor(initialCapacity = 4096) {
    let capacity = 16;
    while (capacity < initialCapacity * 2) capacity *= 2;
    this.slots = new Int32Array(capacity * 2);
    this.mask = capacity - 1;
  }

  get size(): number {
    return this.live;
  }

  /** Loads the packet's canonical tuple into the probe key; must precede find() or insert(). */
  loadKey(pkt: DecodedPacket): void {
    const s = pkt.srcAddr;
    const d = pkt.dstAddr;
    let srcLow = pkt.srcPort < pkt.dstPort;
    for (let i = 0; i < 4; i++) {
      if (s[i] !== d[i]) {
        srcLow = s[i] < d[i];
        break;
      }
    }
    const low = srcLow ? s : d;
    const high = srcLow ? d : s;
    const k = this.probe;
    k[0] = low[0]; k[1] = low[1]; k[2] = low[2]; k[3] = low[3];
    k[4] = high[0]; k[5] = high[1]; k[6] = high[2]; k[7] = high[3];
    k[8] = srcLow ? (pkt.srcPort << 16) | pkt.dstPort : (pkt.dstPort << 16) | pkt.srcPort;
    this.sourceIsLow = srcLow;
    // FNV-1a over 32-bit words with a final avalanche (murmur3 fmix32).
    let h = 0x811c9dc5 | 0;
    for (let i = 0; i < KEY_WORDS; i++) h = Math.imul(h ^ k[i], 0x01000193);
    h ^= h >>> 16;
    h = Math.imul(h, 0x85ebca6b);
    h ^= h >>> 13;
    h = Math.imul(h, 0xc2b2ae35);
    h ^= h >>> 16;
    this.probeHash = h;
  }

  /** Handle of the loaded key, or -1. */
  find(): number {
    const slots = this.slots;
    const mask = this.mask;
    const hash = this.probeHash;
    let i = hash & mask;
    for (;;) {
      const entry = slots[2 * i];
      if (entry === 0) return -1;
      if (slots[2 * i + 1] === hash && this.keyEquals(entry - 1)) return entry - 1;
      i = (i + 1) & mask;
    }
  }

  /** Stores value under the loaded key (which must not be present) and returns its handle. */
  insert(value: V): number {
    if ((this.live + 1) * 2 > this.mask + 1) this.grow();
    const handle = this.freeHandles.length > 0 ? (this.freeHandles.pop() as number) : this.values.length;
    if (handle === this.values.length) this.values.push(value);
    else this.values[handle] = value;
    if (handle >= this.hashes.length) this.growKeyStore();
    this.keys.set(this.probe, handle * KEY_STRIDE);
    this.hashes[handle] = this.probeHash;
    this.place(handle);
    this.live++;
    return handle;
  }

  get(handle: number): V {
    return this.values[handle] as V;
  }

  /** Replaces the value of a live handle (a new conversation on the same tuple). */
  set(handle: number, value: V): void {
    this.values[handle] = value;
  }

  remove(handle: number): void {
    const slots = this.slots;
    const mask = this.mask;
    let i = this.hashes[handle] & mask;
    while (slots[2 * i] !== handle + 1) i = (i + 1) & mask;
    // Backward-shift deletion: pull later members of the probe run into the hole.
    let hole = i;
    let j = (i + 1) & mask;
    while (slots[2 * j] !== 0) {
      const home = slots[2 * j + 1] & mask;
      const distanceHome = (j - home) & mask;
      const distanceHole = (j - hole) & mask;
      if (distanceHome >= distanceHole) {
        slots[2 * hole] = slots[2 * j];
        slots[2 * hole + 1] = slots[2 * j + 1];
        hole = j;
      }
      j = (j + 1) & mask;
    }
    slots[2 * hole] = 0;
    slots[2 * hole + 1] = 0;
    this.values[handle] = undefined;
    this.freeHandles.push(handle);
    this.live--;
  }

  /** Calls fn for every live value (order unspecified). */
  forEach(fn: (value: V, handle: number) => void): void {
    for (let h = 0; h < this.values.length; h++) {
      const v = this.values[h];
      if (v !== undefined) fn(v, h);
    }
  }

  private keyEquals(handle: number): boolean {
    const keys = this.keys;
    const base = handle * KEY_STRIDE;
    const k = this.probe;
    for (let i = 0; i < KEY_WORDS; i++) if (keys[base + i] !== k[i]) return false;
    return true;
  }

  private place(handle: number): void {
    const slots = this.slots;
    const mask = this.mask;
    const hash = this.hashes[handle];
    let i = hash & mask;
    while (slots[2 * i] !== 0) i = (i + 1) & mask;
    slots[2 * i] = handle + 1;
    slots[2 * i + 1] = hash;
  }

  private grow(): void {
    this.slots = new Int32Array(this.slots.length * 2);
    this.mask = this.slots.length / 2 - 1;
    for (let h = 0; h < this.values.length; h++) if (this.values[h] !== undefined) this.place(h);
  }

  private growKeyStore(): void {
    const keys = new Uint32Array(this.keys.length * 2);
    keys.set(this.keys);
    this.keys = keys;
    const hashes = new Int32Array(this.hashes.length * 2);
    hashes.set(this.hashes);
    this.hashes = hashes;
  }
}
