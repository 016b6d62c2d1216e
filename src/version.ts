import { readFileSync } from 'node:fs';

/** package.json is the single source of the version; dist/src/version.js sits two levels below it. */
const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { name: string; version: string };

export const TOOL = { name: pkg.name, version: pkg.version } as const;
