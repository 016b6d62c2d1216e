import type { Writable } from 'node:stream';
import type { AnalysisResult } from '../core/session.js';
import { TOOL } from '../version.js';
import { drained, SCHEMA_VERSION } from './json.js';

/**
 * NDJSON: one JSON object per line, each with a `type` — `report` (schema and tool), `input`,
 * `finding`, `conversation`, then `summary` — the same objects as the JSON report, so `jq -c`
 * pipelines and log shippers can take them one at a time. Live capture emits the same `finding`
 * lines while it runs.
 */
export async function writeNdjsonReport(result: AnalysisResult, out: Writable): Promise<void> {
  const write = async (line: object): Promise<void> => {
    // A reader that went away (`| head`) destroys the stream: 'drain' would never come.
    if (out.destroyed) return;
    if (!out.write(`${JSON.stringify(line)}\n`)) await drained(out);
  };
  await write({ type: 'report', schemaVersion: SCHEMA_VERSION, tool: TOOL });
  for (const input of result.inputs) await write({ type: 'input', ...input });
  for (const finding of result.findings) await write({ type: 'finding', ...finding });
  for (const conversation of result.conversations) await write({ type: 'conversation', ...conversation });
  await write({ type: 'summary', ...result.summary, ...(result.baseline ? { baseline: result.baseline } : {}) });
}
