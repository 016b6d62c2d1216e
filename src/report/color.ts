import { Chalk, type ChalkInstance } from 'chalk';

/**
 * Colour is decided here once, not by chalk: chalk ignores NO_COLOR, and our own --no-color must win
 * over everything. Order: --no-color, then NO_COLOR (any non-empty value, per no-color.org), then
 * FORCE_COLOR (0 disables; 1-3 pick the level), then whether the stream is a terminal.
 */
export function chooseColorLevel(
  stream: { isTTY?: boolean },
  flagEnabled: boolean,
  env: NodeJS.ProcessEnv = process.env,
): 0 | 1 | 2 | 3 {
  if (!flagEnabled) return 0;
  if (env.NO_COLOR !== undefined && env.NO_COLOR !== '') return 0;
  if (env.FORCE_COLOR !== undefined) {
    const level = env.FORCE_COLOR === '' || env.FORCE_COLOR === 'true' ? 1 : Number(env.FORCE_COLOR);
    if (level === 0 || env.FORCE_COLOR === 'false') return 0;
    return Number.isInteger(level) && level >= 1 && level <= 3 ? (level as 1 | 2 | 3) : 1;
  }
  if (stream.isTTY !== true) return 0;
  return env.COLORTERM === 'truecolor' || env.COLORTERM === '24bit' ? 3 : /256/.test(env.TERM ?? '') ? 2 : 1;
}

export function makeChalk(level: 0 | 1 | 2 | 3): ChalkInstance {
  return new Chalk({ level });
}
