import { existsSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

/** Tests run from dist/test/...; the repository root is found by its package.json. */
function findRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(dir, 'package.json'))) dir = dirname(dir);
  return dir;
}

export const REPO_ROOT = findRoot();
/** The public capture corpus beside the repository (`../shared/corpus`), absent on some machines. */
export const CORPUS_DIR = resolve(REPO_ROOT, '..', 'shared', 'corpus');
export const CAPTURES_DIR = join(REPO_ROOT, 'fixtures', 'captures');
export const CLI = join(REPO_ROOT, 'bin', 'connscope.js');

export function capture(name: string): string {
  return join(CAPTURES_DIR, name);
}

/** Facts measured from a lab capture with tshark when it was generated. */
/** One conversation of a lab capture as fixtures/lab/labfacts.py measured it with tshark. */
export interface LabConversationFacts {
  stream: number;
  client: string;
  server: string;
  first_frame: number;
  last_frame: number;
  start: number;
  end: number;
  frames_client_to_server: number;
  frames_server_to_client: number;
  syn: number;
  fin: number;
  rst: number;
  retransmissions: number;
}

export function facts<T = Record<string, unknown>>(name: string): T {
  return JSON.parse(readFileSync(join(CAPTURES_DIR, `${name}.facts.json`), 'utf8')) as T;
}

export interface CorpusRow {
  path: string;
  container: string;
  byte_order: string;
  linktypes: string;
  packets: number;
  tcp_packets: number;
  tcp_streams: number;
  syn: number;
  rst: number;
  retransmission: number;
  zero_window: number;
  keep_alive: number;
  reused_ports: number;
  tshark_error: string;
}

/** expected.tsv, computed by tshark; [] when the corpus is not beside the repository. */
export function corpusRows(): CorpusRow[] {
  const file = join(CORPUS_DIR, 'expected.tsv');
  if (!existsSync(file)) return [];
  const [header, ...lines] = readFileSync(file, 'utf8').trimEnd().split('\n');
  const names = header.split('\t');
  return lines.map((line) => {
    const cells = line.split('\t');
    const row: Record<string, string | number> = {};
    names.forEach((name, i) => {
      const cell = cells[i] ?? '';
      row[name] = /^\d+$/.test(cell) && name !== 'linktypes' ? Number(cell) : cell;
    });
    return row as unknown as CorpusRow;
  });
}
