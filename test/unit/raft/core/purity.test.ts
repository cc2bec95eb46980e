import { expect } from 'chai';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

const coreDir = join(import.meta.dirname, '../../../../src/raft/core');

/** Things the deterministic core must never touch: I/O, clocks, timers, global randomness. */
const forbidden: [RegExp, string][] = [
  [/from\s+['"]node:/, 'node:* import'],
  [/from\s+['"](fs|net|http|https|os|path|crypto|child_process|timers)['"]/, 'node builtin import'],
  [/\bDate\b/, 'Date'],
  [/Math\.random/, 'Math.random'],
  [/\bset(Timeout|Interval|Immediate)\b/, 'timers'],
  [/\bprocess\./, 'process'],
  [/\bawait\b|\basync\b/, 'async code'],
  [/\bperformance\b/, 'performance clock'],
];

describe('raft core purity', () => {
  it('no file of src/raft/core uses I/O, clocks, timers, async code or Math.random', () => {
    const files = readdirSync(coreDir).filter((f) => f.endsWith('.ts'));
    expect(files.length).to.be.greaterThan(2);
    const violations: string[] = [];
    for (const f of files) {
      const src = readFileSync(join(coreDir, f), 'utf8').replace(/\/\*[\s\S]*?\*\/|\/\/.*$/gm, '');
      for (const [re, what] of forbidden) if (re.test(src)) violations.push(`${f}: ${what}`);
    }
    expect(violations).to.deep.equal([]);
  });

  it('the purity check itself detects a forbidden use', () => {
    const sample = "import { x } from 'node:fs'; const t = Date.now();".replace(/\/\/.*$/gm, '');
    expect(forbidden.filter(([re]) => re.test(sample)).map(([, w]) => w)).to.include.members(['node:* import', 'Date']);
  });
});
