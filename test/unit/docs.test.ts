/** The documents: every relative link resolves (file and heading), and the README's configuration table lists every variable once. */
import fs from 'node:fs';
import path from 'node:path';
import { expect } from 'chai';

const ROOT = path.resolve(import.meta.dirname, '../..');

function markdownFiles(): string[] {
  const docs = fs.readdirSync(path.join(ROOT, 'docs')).filter((f) => f.endsWith('.md')).map((f) => `docs/${f}`);
  return ['README.md', ...docs];
}

/** Text outside fenced code blocks. */
function prose(text: string): string {
  return text.replace(/^```[\s\S]*?^```/gm, '');
}

/** GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens. */
function slug(heading: string): string {
  return heading
    .trim()
    .toLowerCase()
    .replace(/[^\p{L}\p{N} _-]/gu, '')
    .replace(/ /g, '-');
}

function anchors(file: string): Set<string> {
  const headings = prose(fs.readFileSync(path.join(ROOT, file), 'utf8')).match(/^#{1,6} .*$/gm) ?? [];
  return new Set(headings.map((h) => slug(h.replace(/^#+ /, ''))));
}

describe('documents', () => {
  it('every relative link in README.md and docs/ points at an existing file and heading', () => {
    const broken: string[] = [];
    let checked = 0;
    for (const file of markdownFiles()) {
      const text = prose(fs.readFileSync(path.join(ROOT, file), 'utf8'));
      for (const m of text.matchAll(/\]\(([^)\s]+)\)/g)) {
        const target = m[1];
        if (/^[a-z]+:/i.test(target)) continue; // http:, https:, mailto:
        checked++;
        const [rel, anchor] = target.split('#');
        const resolved = rel === '' ? file : path.posix.normalize(path.posix.join(path.posix.dirname(file), rel));
        if (!fs.existsSync(path.join(ROOT, resolved))) {
          broken.push(`${file}: ${target} (no such file)`);
          continue;
        }
        if (anchor !== undefined && resolved.endsWith('.md') && !anchors(resolved).has(anchor)) broken.push(`${file}: ${target} (no such heading)`);
      }
    }
    expect(checked, 'links found').to.be.greaterThan(20);
    expect(broken).to.deep.equal([]);
  });

  it("the README's configuration table names every variable src/config.ts reads, each once", () => {
    const config = fs.readFileSync(path.join(ROOT, 'src/config.ts'), 'utf8');
    const declared = [...config.matchAll(/^\s+([A-Z][A-Z0-9_]+): \w+\(/gm)].map((m) => m[1]);
    expect(declared.length, 'variables found in src/config.ts').to.be.greaterThan(30);
    const readme = fs.readFileSync(path.join(ROOT, 'README.md'), 'utf8');
    const section = readme.slice(readme.indexOf('## Configuration'), readme.indexOf('\n## ', readme.indexOf('## Configuration') + 1));
    const firstCells = section
      .split('\n')
      .filter((l) => l.startsWith('| `'))
      .map((l) => l.split('|')[1]);
    const named = firstCells.flatMap((cell) => [...cell.matchAll(/`([A-Z][A-Z0-9_]+)`/g)].map((m) => m[1]));
    const counts = new Map<string, number>();
    for (const v of named) counts.set(v, (counts.get(v) ?? 0) + 1);
    expect(declared.filter((v) => counts.get(v) !== 1), 'variables not listed exactly once').to.deep.equal([]);
    expect(named.filter((v) => !declared.includes(v)), 'listed but not read by src/config.ts').to.deep.equal([]);
  });
});
