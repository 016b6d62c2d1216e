/**
 * An address in the decoder's four-word form as text: dotted quad for IPv4, RFC 5952 for IPv6
 * (lower case, no leading zeros, the longest run of two or more zero groups as "::", the first
 * such run on a tie, and IPv4-mapped addresses with a dotted quad tail).
 */
export function formatAddress(words: Uint32Array | ArrayLike<number>, version: 4 | 6): string {
  if (version === 4) return ipv4Text(words[3]);
  if (words[0] === 0 && words[1] === 0 && words[2] === 0xffff) return `::ffff:${dottedQuad(words[3])}`;
  const groups: number[] = [];
  for (let i = 0; i < 4; i++) groups.push(words[i] >>> 16, words[i] & 0xffff);
  let bestStart = -1;
  let bestLength = 1;
  for (let i = 0; i < 8;) {
    if (groups[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLength) {
      bestStart = i;
      bestLength = j - i;
    }
    i = j;
  }
  const hex = (from: number, to: number): string => groups.slice(from, to).map((g) => g.toString(16)).join(':');
  if (bestStart < 0) return hex(0, 8);
  return `${hex(0, bestStart)}::${hex(bestStart + bestLength, 8)}`;
}

/**
 * Formatted IPv4 addresses by value. Every finished conversation and many findings name their two
 * addresses, and a capture has far fewer distinct hosts than conversations: formatting each once
 * saves the work and lets all summaries share one string. Bounded, so a scan of random addresses
 * costs at most this many entries.
 */
const IPV4_CACHE_LIMIT = 1 << 16;
let ipv4Cache = new Map<number, string>();

/** A 32-bit IPv4 address as a dotted quad. */
export function ipv4Text(word: number): string {
  let text = ipv4Cache.get(word);
  if (text === undefined) {
    if (ipv4Cache.size >= IPV4_CACHE_LIMIT) ipv4Cache = new Map();
    text = dottedQuad(word);
    ipv4Cache.set(word, text);
  }
  return text;
}

function dottedQuad(word: number): string {
  return `${word >>> 24}.${(word >>> 16) & 0xff}.${(word >>> 8) & 0xff}.${word & 0xff}`;
}
