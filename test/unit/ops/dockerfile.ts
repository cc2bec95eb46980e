/** Reads pieces of the Dockerfile for the ops tests. */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

const root = join(import.meta.dirname, '../../..');

/** The Dockerfile's HEALTHCHECK command as an exec-form array; throws when it is missing or not valid JSON. */
export function healthcheckCommand(): string[] {
  const text = readFileSync(join(root, 'Dockerfile'), 'utf8').replace(/\\\n\s*/g, '');
  const m = /^HEALTHCHECK .*?CMD (\[.*\])$/m.exec(text);
  if (!m) throw new Error('the Dockerfile has no HEALTHCHECK with an exec-form CMD');
  const cmd: unknown = JSON.parse(m[1]);
  if (!Array.isArray(cmd) || !cmd.every((x) => typeof x === 'string')) throw new Error('HEALTHCHECK CMD is not an array of strings');
  return cmd as string[];
}
