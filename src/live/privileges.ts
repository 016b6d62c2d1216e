import { readFileSync } from 'node:fs';
import { LiveError } from './errors.js';

/** The unprivileged identity a root capture continues as once its capture handle is open. */
export interface DropTarget {
  uid: number;
  gid: number;
  /** User name (for tcpdump -Z). */
  user: string;
  /** The user who ran sudo: files written with -w are given to them. */
  fromSudo: boolean;
}

interface PasswdEntry {
  name: string;
  uid: number;
  gid: number;
}

function passwd(): PasswdEntry[] {
  let text: string;
  try {
    text = readFileSync('/etc/passwd', 'utf8');
  } catch {
    return [];
  }
  const entries: PasswdEntry[] = [];
  for (const line of text.split('\n')) {
    const fields = line.split(':');
    if (fields.length < 4) continue;
    const uid = Number(fields[2]);
    const gid = Number(fields[3]);
    if (Number.isInteger(uid) && Number.isInteger(gid)) entries.push({ name: fields[0], uid, gid });
  }
  return entries;
}

export function isRoot(): boolean {
  return typeof process.geteuid === 'function' && process.geteuid() === 0;
}

/**
 * Whom to become, as tcpdump does with -Z: the user who ran sudo (SUDO_UID/SUDO_GID), else `nobody`.
 * null when not running as root (capabilities granted with setcap: nothing to drop).
 */
export function dropTarget(env: NodeJS.ProcessEnv = process.env): DropTarget | null {
  if (!isRoot()) return null;
  const uid = Number(env.SUDO_UID);
  const gid = Number(env.SUDO_GID);
  if (env.SUDO_UID !== undefined && Number.isInteger(uid) && uid > 0 && Number.isInteger(gid) && gid >= 0) {
    const user = env.SUDO_USER || passwd().find((e) => e.uid === uid)?.name || String(uid);
    return { uid, gid, user, fromSudo: true };
  }
  const nobody = passwd().find((e) => e.name === 'nobody');
  if (nobody === undefined) {
    throw new LiveError('usage', 'cannot drop root privileges after opening the capture: there is no user "nobody"; run with sudo from your own account, or keep root with --no-drop-privileges');
  }
  return { uid: nobody.uid, gid: nobody.gid, user: 'nobody', fromSudo: false };
}

/** setgroups, then setgid, then setuid (the order that leaves no way back to root). */
export function dropPrivileges(target: DropTarget): void {
  try {
    process.setgroups?.([target.gid]);
    process.setgid?.(target.gid);
    process.setuid?.(target.uid);
  } catch (error) {
    throw new LiveError('other', `cannot drop root privileges to ${target.user} (${target.uid}:${target.gid}): ${(error as Error).message}; use --no-drop-privileges to keep them`);
  }
  if (process.getuid?.() !== target.uid || process.geteuid?.() !== target.uid) {
    throw new LiveError('other', `dropping root privileges to ${target.user} did not take effect; use --no-drop-privileges to keep them`);
  }
}
