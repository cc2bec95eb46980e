import { expect } from 'chai';
import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';
import { http, stopNode, waitFor, waitForLeader, type NodeProc } from '../../support/procs.js';
import { startThreeNodes, type ThreeNodes } from './three-nodes.js';

const CHROMIUM = '/usr/bin/chromium';
const artifacts = join(import.meta.dirname, '../../../test-artifacts');

/** What the page currently shows: the leader box and one entry per table row. */
async function shown(page: Page): Promise<{ leader: string; rows: { id: string; role: string; health: string; isLeader: boolean }[] }> {
  // A string, because this project compiles without the DOM library.
  return page.evaluate(`(() => {
    const rows = [...document.querySelectorAll('tr[data-node-id]')].map((tr) => ({
      id: tr.getAttribute('data-node-id') || '',
      role: tr.getAttribute('data-role') || '',
      health: tr.getAttribute('data-health') || '',
      isLeader: tr.classList.contains('leader'),
    }));
    const leader = document.getElementById('leader');
    return { leader: leader ? leader.textContent : '', rows };
  })()`);
}

describe('status page at GET / in headless Chromium', function () {
  this.timeout(180_000);
  let c: ThreeNodes;
  let browser: Browser | null = null;

  before(async function () {
    if (!existsSync(CHROMIUM)) {
      console.log(`      skipped: ${CHROMIUM} is absent (install the Debian package "chromium" to run the status page test)`);
      this.skip();
    }
    c = await startThreeNodes();
    browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] });
  });

  after(async () => {
    await browser?.close();
    await c?.stop();
  });

  it('is one self-contained HTML document: no external scripts, styles or CDN', async () => {
    const r = await http('GET', `${c.endpoints[0]}/`);
    expect(r.status).to.equal(200);
    expect(r.headers['content-type']).to.contain('text/html');
    expect(r.text).to.contain('<title>raftkv cluster</title>');
    expect(r.text).to.not.match(/<script[^>]+src=|<link[^>]+href=|https?:\/\//i);
  });

  it('the client library, bundled for the browser, works from a page on a node', async function () {
    type Build = (o: object) => Promise<{ outputFiles: { text: string }[] }>;
    let build: Build;
    try {
      // esbuild arrives with tsx (a dev dependency); without it this check cannot run.
      build = ((await import('esbuild')) as unknown as { build: Build }).build;
    } catch (err) {
      console.log(`      skipped: esbuild is not available to bundle the client (${String(err)})`);
      this.skip();
    }
    const out = await build({
      entryPoints: [join(import.meta.dirname, '../../../src/client/index.ts')],
      bundle: true,
      platform: 'browser',
      format: 'iife',
      globalName: 'raftkv',
      write: false,
    });
    const page = await (browser as Browser).newPage();
    await page.goto(`${c.endpoints[1]}/`);
    await page.addScriptTag({ content: out.outputFiles[0].text });
    const r = (await page.evaluate(`(async () => {
      const client = new raftkv.RaftKvClient({ endpoints: [location.origin] });
      const w = await client.set('from-browser', 'hi');
      const g = await client.get('from-browser');
      let notFound = '';
      try { await client.get('absent-in-browser'); } catch (e) { notFound = e.name + ' ' + (e instanceof raftkv.KeyNotFoundError); }
      const info = await client.cluster();
      // The watch streams through axios's fetch adapter in a browser.
      const ac = new AbortController();
      const watch = client.watch('from-browser', { from: w.index, signal: ac.signal });
      const first = (await watch.next()).value;
      await watch.return();
      return { index: w.index, leaderId: w.leaderId, value: g.value, notFound, nodes: info.nodes.length, first };
    })()`)) as { index: number; leaderId: string; value: string; notFound: string; nodes: number; first: unknown };
    expect(r.value).to.equal('hi');
    expect(r.index).to.be.a('number');
    expect(r.leaderId).to.match(/^app[123]$/);
    expect(r.notFound).to.equal('KeyNotFoundError true');
    expect(r.nodes).to.equal(3);
    expect(r.first).to.deep.equal({ type: 'change', index: r.index, events: [{ type: 'put', key: 'from-browser', value: 'hi', prevIndex: null }] });
    await page.close();
  });

  it('browses keys: lists a prefix page by page in byte order and shows a value with its index', async () => {
    const pairs: Record<string, string> = {};
    for (let i = 0; i < 120; i++) pairs[`kb/${String(i).padStart(3, '0')}`] = `value ${i}`;
    pairs['kb0'] = 'outside the prefix';
    pairs['ka/x'] = 'outside too';
    const w = await http('POST', `${c.endpoints[0]}/key`, JSON.stringify(pairs));
    expect(w.status).to.equal(200);
    const page = await (browser as Browser).newPage({ viewport: { width: 1200, height: 900 } });
    const errors: string[] = [];
    page.on('pageerror', (e) => errors.push(e.message));
    await page.goto(`${c.endpoints[2]}/`);
    await page.fill('#prefix', 'kb/');
    await page.click('#list');
    const keysShown = async (): Promise<string[]> => page.locator('#keys tr').evaluateAll((trs) => trs.map((tr) => tr.getAttribute('data-key') ?? ''));
    const first = await waitFor('the first page of keys', async () => ((await keysShown()).length === 50 ? keysShown() : null), 30_000, 100);
    expect(first).to.deep.equal(Object.keys(pairs).filter((k) => k.startsWith('kb/')).sort().slice(0, 50));
    expect(await page.textContent('#page-info')).to.match(/^50 of 120 keys at index \d+$/);
    await page.click('#more');
    await waitFor('the second page', async () => ((await keysShown())[0] === 'kb/050' ? true : null), 30_000, 100);
    await page.click('#more');
    const last = await waitFor('the last page', async () => ((await keysShown())[0] === 'kb/100' ? keysShown() : null), 30_000, 100);
    expect(last).to.have.length(20);
    expect(last[19]).to.equal('kb/119');
    expect(await page.isDisabled('#more')).to.equal(true);
    await page.click('tr[data-key="kb/107"]');
    expect(await page.textContent('#detail-key')).to.equal('kb/107');
    expect(await page.textContent('#detail-value')).to.equal('value 107');
    const g = await http('GET', `${c.endpoints[0]}/key/kb%2F107`);
    expect(await page.textContent('#detail-index')).to.equal(String(g.headers.etag).replace(/"/g, ''));
    await page.fill('#prefix', 'no-such-prefix/');
    await page.click('#list');
    await waitFor('an empty listing', async () => (/^0 of 0 keys at index \d+$/.test((await page.textContent('#page-info')) ?? '') ? true : null), 30_000, 100);
    expect(await keysShown()).to.deep.equal([]);
    expect(errors, errors.join('\n')).to.deep.equal([]);
    await page.close();
  });

  it('shows the live changes of a prefix from the watch stream, newest first, with the token sent', async () => {
    const page = await (browser as Browser).newPage({ viewport: { width: 1200, height: 900 } });
    const errors: string[] = [];
    page.on('pageerror', (e) => errors.push(e.message));
    const watchAuth: (string | undefined)[] = [];
    page.on('request', (r) => {
      if (r.url().includes('/watch?')) watchAuth.push(r.headers().authorization);
    });
    // Served by a follower: the watch is read from that node's own history.
    const leader = await waitForLeader(c.nodes);
    const follower = c.nodes.find((n) => n !== leader) as NodeProc;
    await page.goto(`${follower.api}/`);
    await page.fill('#watch-prefix', 'live/');
    await page.fill('#watch-token', 'page-token');
    await page.click('#watch-start');
    await waitFor('the watch to start', async () => (/^watching "live\/" on this node/.test((await page.textContent('#watch-status')) ?? '') ? true : null), 30_000, 100);
    const writes: { index: number; type: string; key: string; value: string }[] = [];
    const put = async (key: string, value: string) => {
      const r = await http('POST', `${c.endpoints[0]}/key`, JSON.stringify({ [key]: value }));
      expect(r.status).to.equal(200);
      if (key.startsWith('live/')) writes.push({ index: Number(r.headers['x-raft-index']), type: 'put', key, value });
    };
    await put('live/a', 'one');
    await put('elsewhere/x', 'not shown');
    await put('live/b', '<b>two</b>');
    const d = await http('DELETE', `${c.endpoints[1]}/key/live%2Fa`);
    expect(d.status).to.equal(200);
    writes.push({ index: Number(d.headers['x-raft-index']), type: 'delete', key: 'live/a', value: '' });
    const rows = async () =>
      page.locator('#changes tr').evaluateAll((trs) =>
        trs.map((tr) => ({ index: Number(tr.getAttribute('data-index')), type: tr.getAttribute('data-type') ?? '', key: tr.getAttribute('data-key') ?? '', value: tr.querySelectorAll('td')[3]?.textContent ?? '' })),
      );
    const shownRows = await waitFor('the three changes', async () => ((await rows()).length >= 3 ? rows() : null), 30_000, 100);
    expect(shownRows).to.deep.equal([...writes].reverse());
    expect(await page.textContent('#watch-status')).to.equal(`watching "live/" on this node, up to index ${writes[writes.length - 1].index}`);
    expect(watchAuth).to.deep.equal(['Bearer page-token']);
    await page.click('#watch-stop');
    expect(await page.textContent('#watch-status')).to.equal(`stopped at index ${writes[writes.length - 1].index}`);
    expect(watchAuth).to.have.length(1); // stopped, not reconnecting
    mkdirSync(artifacts, { recursive: true });
    await page.screenshot({ path: join(artifacts, 'status-page-watch.png'), fullPage: true });
    expect(errors, errors.join('\n')).to.deep.equal([]);
    await page.close();
  });

  it('lists every node with the leader highlighted, and shows the new leader after the leader is SIGKILLed', async () => {
    const page = await (browser as Browser).newPage({ viewport: { width: 1200, height: 480 } });
    const errors: string[] = [];
    page.on('pageerror', (e) => errors.push(e.message));
    // Served by a follower, so the page outlives the leader we kill (re-picked if leadership moves).
    let leader = await waitForLeader(c.nodes);
    let follower = c.nodes.find((n) => n !== leader) as NodeProc;
    await page.goto(`${follower.api}/`);
    const before = await waitFor('the page to list all three nodes', async () => {
      const current = await waitForLeader(c.nodes);
      if (current === follower) {
        leader = current;
        follower = c.nodes.find((n) => n !== leader) as NodeProc;
        await page.goto(`${follower.api}/`);
        return null;
      }
      leader = current;
      const s = await shown(page);
      return s.rows.length === 3 && s.leader === leader.id && s.rows.every((r) => r.health === 'ok') ? s : null;
    }, 30_000, 200);
    expect(before.rows.map((r) => r.id).sort()).to.deep.equal(['app1', 'app2', 'app3']);
    expect(before.rows.filter((r) => r.isLeader).map((r) => r.id)).to.deep.equal([leader.id]);
    expect(before.rows.find((r) => r.id === leader.id)?.role).to.equal('leader');
    const cells = await page.locator(`tr[data-node-id="${follower.id}"] td`).allInnerTexts();
    expect(cells).to.have.length(10);
    expect(cells[1]).to.equal('follower');
    expect(cells[2]).to.equal('voter');
    mkdirSync(artifacts, { recursive: true });
    await page.screenshot({ path: join(artifacts, 'status-page-before.png'), fullPage: true });

    await stopNode(leader, 'SIGKILL');
    const after = await waitFor('the page to show a new leader', async () => {
      const s = await shown(page);
      const isNew = s.leader !== leader.id && s.leader !== 'none' && s.leader !== '';
      return isNew && s.rows.some((r) => r.isLeader && r.id === s.leader) && s.rows.find((r) => r.id === leader.id)?.health === 'unreachable' ? s : null;
    }, 30_000, 200);
    const newLeader = await waitForLeader(c.nodes.filter((n) => n !== leader));
    expect(after.leader).to.equal(newLeader.id);
    expect(after.rows).to.have.length(3);
    expect(after.rows.filter((r) => r.isLeader)).to.have.length(1);
    await page.screenshot({ path: join(artifacts, 'status-page.png'), fullPage: true });
    expect(errors, errors.join('\n')).to.deep.equal([]);
  });
});
