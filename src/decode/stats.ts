import { plural } from '../english.js';
import { DecodeStatus } from './packet.js';
import { linkTypeName } from './link-types.js';
import type { Walk } from './walk.js';

/** What one decoder saw, for the warnings shown with a capture's results. */
export class DecodeStats {
  packets = 0;
  /** Packets per DecodeStatus, indexed by the status. */
  readonly byStatus = new Float64Array(6);
  /** Packets of link types the decoder cannot read, by link type (only touched for those). */
  readonly unsupportedLinkTypes = new Map<number, number>();
  /** Packets carrying at least one 802.1Q/802.1ad tag, decoded or not. */
  vlanTagged = 0;
  /** TCP segments whose option list was damaged; options after the damage were not read. */
  damagedOptions = 0;
  /** TCP segments in frames shorter than their IP length; the IP length was used. */
  shortFrames = 0;

  get tcp(): number {
    return this.byStatus[DecodeStatus.Tcp];
  }

  /** IP fragments whose TCP header is in another fragment (no reassembly is done). */
  get fragments(): number {
    return this.byStatus[DecodeStatus.Fragment];
  }

  get malformed(): number {
    return this.byStatus[DecodeStatus.Malformed];
  }

  get truncated(): number {
    return this.byStatus[DecodeStatus.Truncated];
  }

  /** The decoder's tally of one packet. */
  count(status: DecodeStatus, linkType: number, w: Walk): void {
    this.packets++;
    this.byStatus[status]++;
    if (w.vlanTags !== 0) this.vlanTagged++;
    if (status === DecodeStatus.Tcp) {
      if (w.optionsDamaged) this.damagedOptions++;
      if (w.shortFrame) this.shortFrames++;
    }
    if (status === DecodeStatus.UnsupportedLink) {
      this.unsupportedLinkTypes.set(linkType, (this.unsupportedLinkTypes.get(linkType) ?? 0) + 1);
    }
  }

  reset(): void {
    this.packets = 0;
    this.byStatus.fill(0);
    this.unsupportedLinkTypes.clear();
    this.vlanTagged = 0;
    this.damagedOptions = 0;
    this.shortFrames = 0;
  }
}

/** One line per kind of packet the analysis could not use, for the input's warnings. */
export function decodeWarnings(stats: DecodeStats): string[] {
  const warnings: string[] = [];
  const linkTypes = [...stats.unsupportedLinkTypes].sort((a, b) => a[0] - b[0]);
  for (const [linkType, n] of linkTypes) {
    const name = linkTypeName(linkType);
    const label = name === String(linkType) ? name : `${linkType} (${name})`;
    warnings.push(`${plural(n, 'packet')} of link type ${label} skipped`);
  }
  if (stats.malformed > 0) {
    warnings.push(`${plural(stats.malformed, 'malformed packet')} skipped`);
  }
  if (stats.truncated > 0) {
    warnings.push(`${plural(stats.truncated, 'packet')} skipped: cut by the capture's snaplen before the end of their TCP header`);
  }
  if (stats.fragments > 0) {
    warnings.push(`${plural(stats.fragments, 'packet')} skipped: IP fragments without a TCP header (no reassembly)`);
  }
  if (stats.damagedOptions > 0) {
    warnings.push(`${plural(stats.damagedOptions, 'TCP packet')} with a damaged option list: options after the damage ignored`);
  }
  if (stats.shortFrames > 0) {
    warnings.push(`${plural(stats.shortFrames, 'TCP packet')} shorter than their IP length (bytes lost in capture): lengths taken from the IP header`);
  }
  return warnings;
}
