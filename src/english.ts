/** Wording shared by detectors, correlation, reports and the CLI, so that every message counts alike. */

const counts = new Intl.NumberFormat('en-US');

/** "1 conversation", "2 conversations", "12,345 packets": every noun connscope counts takes a plain -s. */
export function plural(n: number, noun: string): string {
  return `${counts.format(n)} ${noun}${n === 1 ? '' : 's'}`;
}
