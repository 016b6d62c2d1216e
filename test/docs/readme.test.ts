import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { DETECTORS } from '../../src/detect/registry.js';
import { REPO_ROOT } from '../helpers/paths.js';

const readme = readFileSync(join(REPO_ROOT, 'README.md'), 'utf8');

test('README opens with the install-and-run command and the test command', () => {
  const opening = readme.split('\n').slice(0, 8).join('\n');
  assert.match(opening, /npm install && npm start/);
  assert.match(opening, /npm test/);
});

test('README documents every detector id and its thresholds are reachable through explain', () => {
  for (const spec of DETECTORS) assert.match(readme, new RegExp('`' + spec.id + '`'), spec.id);
});
