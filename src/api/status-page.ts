/**
 * The live cluster status page served at `GET /` by every node: one self-contained HTML document
 * (inline CSS and script, no CDN, no build step) that polls `/cluster?view=all` every second and
 * shows each member's role, term, commit and applied index, replication lag and health, with the
 * leader highlighted, a key browser: list a prefix page by page through `GET /keys` and show a
 * value with its index, and a live view of the changes under a prefix read from `GET /watch`
 * (streamed with fetch, so a token can be sent, resumed with Last-Event-ID after a drop).
 * Served by the API routes in app.ts.
 */
import { CompactedError } from '../errors.js';

/** The code the watch stream ends with when its history is gone, from the error registry. */
const COMPACTED_CODE = new CompactedError(0, 0).code;

export const STATUS_PAGE_HTML = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>raftkv cluster</title>
<style>
  :root { --bg: #f5f6f8; --card: #fff; --ink: #1d2330; --muted: #667085; --line: #e3e6ec;
          --lead: #0f7b4a; --lead-bg: #e8f6ee; --warn: #b25e09; --warn-bg: #fff4e0; --bad: #b42318; --bad-bg: #fdecea; }
  * { box-sizing: border-box; }
  body { margin: 0; font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; background: var(--bg); color: var(--ink); }
  header { padding: 18px 28px; background: #1d2330; color: #fff; display: flex; align-items: baseline; gap: 16px; flex-wrap: wrap; }
  header h1 { font-size: 20px; margin: 0; font-weight: 650; letter-spacing: .2px; }
  header .sub { color: #b8c0cc; }
  main { padding: 20px 28px; max-width: 1200px; }
  .summary { display: flex; gap: 12px; flex-wrap: wrap; margin-bottom: 16px; }
  .stat { background: var(--card); border: 1px solid var(--line); border-radius: 8px; padding: 10px 16px; min-width: 140px; }
  .stat .label { color: var(--muted); font-size: 12px; text-transform: uppercase; letter-spacing: .5px; }
  .stat .value { font-size: 20px; font-weight: 650; font-variant-numeric: tabular-nums; }
  #banner { display: none; margin-bottom: 16px; padding: 10px 14px; border-radius: 8px; background: var(--bad-bg); color: var(--bad); border: 1px solid #f5c2bd; }
  #banner.show { display: block; }
  table { width: 100%; border-collapse: separate; border-spacing: 0; background: var(--card); border: 1px solid var(--line); border-radius: 8px; overflow: hidden; }
  th, td { padding: 10px 14px; text-align: left; border-bottom: 1px solid var(--line); white-space: nowrap; }
  th { background: #fafbfc; color: var(--muted); font-size: 12px; text-transform: uppercase; letter-spacing: .5px; font-weight: 600; }
  td.num { text-align: right; font-variant-numeric: tabular-nums; }
  th.num { text-align: right; }
  tr:last-child td { border-bottom: none; }
  tr.leader td { background: var(--lead-bg); }
  tr.leader td:first-child { box-shadow: inset 4px 0 0 var(--lead); font-weight: 650; }
  tr.down td { color: var(--muted); }
  .pill { display: inline-block; padding: 2px 9px; border-radius: 999px; font-size: 12px; font-weight: 600; }
  .role-leader { background: var(--lead); color: #fff; }
  .role-follower { background: #e7ecf5; color: #344054; }
  .role-learner, .role-candidate, .role-precandidate { background: var(--warn-bg); color: var(--warn); }
  .role-unknown { background: #eef0f3; color: var(--muted); }
  .h-ok { background: var(--lead-bg); color: var(--lead); border: 1px solid #b7e1c8; }
  .h-lagging, .h-no-contact, .h-unknown { background: var(--warn-bg); color: var(--warn); }
  .h-unreachable { background: var(--bad-bg); color: var(--bad); }
  .addr { color: var(--muted); font-size: 12px; }
  footer { color: var(--muted); margin-top: 12px; font-size: 12px; }
  h2 { font-size: 16px; margin: 28px 0 10px; }
  .browse { display: flex; gap: 8px; margin-bottom: 10px; align-items: center; flex-wrap: wrap; }
  .browse input { font: inherit; padding: 6px 10px; border: 1px solid var(--line); border-radius: 6px; min-width: 260px; }
  button { font: inherit; padding: 6px 14px; border: 1px solid var(--line); border-radius: 6px; background: var(--card); cursor: pointer; }
  #keys tr { cursor: pointer; }
  #keys td.val { max-width: 480px; overflow: hidden; text-overflow: ellipsis; }
  #key-error { color: var(--bad); }
  #key-detail { display: none; margin-top: 12px; background: var(--card); border: 1px solid var(--line); border-radius: 8px; padding: 12px 16px; }
  #key-detail.show { display: block; }
  #key-detail pre { white-space: pre-wrap; word-break: break-all; margin: 6px 0 0; }
  #changes td.val { max-width: 480px; overflow: hidden; text-overflow: ellipsis; }
  #changes tr.ev-delete td { color: var(--bad); }
  #watch-error { color: var(--bad); }
</style>
</head>
<body>
<header><h1>raftkv cluster</h1><span class="sub" id="served-by">connecting…</span></header>
<main>
  <div id="banner" role="alert"></div>
  <div class="summary">
    <div class="stat"><div class="label">Leader</div><div class="value" id="leader">–</div></div>
    <div class="stat"><div class="label">Term</div><div class="value" id="term">–</div></div>
    <div class="stat"><div class="label">Commit index</div><div class="value" id="commit">–</div></div>
    <div class="stat"><div class="label">Nodes up</div><div class="value" id="up">–</div></div>
  </div>
  <table>
    <thead><tr>
      <th>Node</th><th>Role</th><th>Suffrage</th><th class="num">Term</th><th class="num">Match</th>
      <th class="num">Commit</th><th class="num">Applied</th><th class="num">Lag</th><th class="num">Last contact</th><th>Health</th>
    </tr></thead>
    <tbody id="nodes"></tbody>
  </table>
  <footer>Refreshes every second from <code>/cluster?view=all</code>. Last update: <span id="updated">never</span>.</footer>
  <h2>Keys</h2>
  <form class="browse" id="browse">
    <input id="prefix" placeholder="prefix (empty: all keys)" aria-label="prefix">
    <button type="submit" id="list">List</button>
    <button type="button" id="more" disabled>Next page</button>
    <span class="addr" id="page-info"></span>
    <span id="key-error" role="alert"></span>
  </form>
  <table>
    <thead><tr><th>Key</th><th class="num">Index</th><th>Value</th></tr></thead>
    <tbody id="keys"></tbody>
  </table>
  <div id="key-detail"><div><strong id="detail-key"></strong> <span class="addr">index <span id="detail-index"></span></span></div><pre id="detail-value"></pre></div>
  <h2>Live changes</h2>
  <form class="browse" id="watch-form">
    <input id="watch-prefix" placeholder="prefix (empty: all keys)" aria-label="watch prefix">
    <input id="watch-token" type="password" placeholder="token (when the cluster uses tokens)" aria-label="token" autocomplete="off">
    <button type="submit" id="watch-start">Watch</button>
    <button type="button" id="watch-stop" disabled>Stop</button>
    <span class="addr" id="watch-status">not watching</span>
    <span id="watch-error" role="alert"></span>
  </form>
  <table>
    <thead><tr><th class="num">Index</th><th>Event</th><th>Key</th><th>Value</th></tr></thead>
    <tbody id="changes"></tbody>
  </table>
</main>
<script>
(function () {
  'use strict';
  var REFRESH_MS = 1000;
  function $(id) { return document.getElementById(id); }
  function cell(tr, text, cls) {
    var td = document.createElement('td');
    if (cls) td.className = cls;
    if (text instanceof Node) td.appendChild(text); else td.textContent = text;
    tr.appendChild(td);
    return td;
  }
  function pill(text, cls) {
    var s = document.createElement('span');
    s.className = 'pill ' + cls;
    s.textContent = text;
    return s;
  }
  function show(v) { return v === null || v === undefined ? '–' : String(v); }
  function ago(ms) {
    if (ms === null || ms === undefined) return '–';
    return ms < 1000 ? ms + ' ms' : (ms / 1000).toFixed(1) + ' s';
  }
  function render(view) {
    $('served-by').textContent = 'served by ' + view.id;
    $('leader').textContent = view.leader ? view.leader.id : 'none';
    $('term').textContent = show(view.term);
    $('commit').textContent = show(view.commitIndex);
    var up = 0;
    var body = $('nodes');
    body.textContent = '';
    view.nodes.slice().sort(function (a, b) { return a.id < b.id ? -1 : a.id > b.id ? 1 : 0; }).forEach(function (n) {
      if (n.reachable) up++;
      var isLeader = view.leader !== null && view.leader.id === n.id;
      var tr = document.createElement('tr');
      tr.setAttribute('data-node-id', n.id);
      tr.setAttribute('data-role', n.role || 'unknown');
      tr.setAttribute('data-health', n.health);
      tr.className = (isLeader ? 'leader' : '') + (n.reachable ? '' : ' down');
      var name = document.createElement('div');
      name.textContent = n.id;
      var addr = document.createElement('div');
      addr.className = 'addr';
      addr.textContent = n.apiAddr;
      var who = document.createElement('div');
      who.appendChild(name);
      who.appendChild(addr);
      cell(tr, who);
      var role = n.role || 'unknown';
      cell(tr, pill(role, 'role-' + role));
      cell(tr, n.suffrage);
      cell(tr, show(n.term), 'num');
      cell(tr, show(n.matchIndex), 'num');
      cell(tr, show(n.commitIndex), 'num');
      cell(tr, show(n.appliedIndex), 'num');
      cell(tr, show(n.lag), 'num');
      cell(tr, ago(n.lastContactMs), 'num');
      var h = cell(tr, pill(n.health, 'h-' + n.health));
      if (n.error) h.title = n.error;
      body.appendChild(tr);
    });
    $('up').textContent = up + ' / ' + view.nodes.length;
    $('updated').textContent = new Date().toLocaleTimeString();
  }
  function fail(message) {
    var b = $('banner');
    b.textContent = message;
    b.className = 'show';
  }
  function poll() {
    var ctl = typeof AbortController === 'function' ? new AbortController() : null;
    var timer = ctl ? setTimeout(function () { ctl.abort(); }, 5000) : null;
    fetch('/cluster?view=all', { cache: 'no-store', signal: ctl ? ctl.signal : undefined })
      .then(function (res) {
        if (!res.ok) throw new Error('HTTP ' + res.status);
        return res.json();
      })
      .then(function (view) {
        $('banner').className = '';
        render(view);
      })
      .catch(function (err) { fail('This node did not answer /cluster: ' + (err && err.message ? err.message : String(err))); })
      .then(function () {
        if (timer) clearTimeout(timer);
        setTimeout(poll, REFRESH_MS);
      });
  }
  poll();

  // Key browser: one page of GET /keys at a time; "Next page" follows the continuation token.
  var PAGE = 50;
  var listing = { prefix: '', token: null };
  function showKey(item) {
    $('detail-key').textContent = item.key;
    $('detail-index').textContent = String(item.index);
    $('detail-value').textContent = item.value;
    $('key-detail').className = 'show';
  }
  function loadPage(isFirst) {
    var q = new URLSearchParams({ prefix: listing.prefix, limit: String(PAGE), count: 'true' });
    if (!isFirst && listing.token) q.set('continue', listing.token);
    $('key-error').textContent = '';
    fetch('/keys?' + q.toString(), { cache: 'no-store' })
      .then(function (res) {
        return res.json().then(function (body) {
          if (!res.ok) throw new Error(body && body.error ? body.error.code + ': ' + body.error.message : 'HTTP ' + res.status);
          return body;
        });
      })
      .then(function (page) {
        var body = $('keys');
        body.textContent = '';
        page.items.forEach(function (item) {
          var tr = document.createElement('tr');
          tr.setAttribute('data-key', item.key);
          cell(tr, item.key);
          cell(tr, String(item.index), 'num');
          cell(tr, item.value, 'val');
          tr.addEventListener('click', function () { showKey(item); });
          body.appendChild(tr);
        });
        listing.token = page.more ? page.continue : null;
        $('more').disabled = !page.more;
        $('page-info').textContent = page.items.length + ' of ' + page.count + ' keys at index ' + page.index;
      })
      .catch(function (err) { $('key-error').textContent = err && err.message ? err.message : String(err); });
  }
  $('browse').addEventListener('submit', function (ev) {
    ev.preventDefault();
    listing = { prefix: $('prefix').value, token: null };
    $('key-detail').className = '';
    loadPage(true);
  });
  $('more').addEventListener('click', function () { loadPage(false); });

  // Live changes: GET /watch read with fetch (an EventSource can send no token, and would reconnect
  // blindly after COMPACTED), parsed as SSE; a dropped stream resumes on this node with
  // Last-Event-ID = the last index shown, so no change is shown twice or skipped.
  var MAX_ROWS = 200;
  var watching = null;
  function addChange(index, ev) {
    var tr = document.createElement('tr');
    tr.setAttribute('data-index', String(index));
    tr.setAttribute('data-type', ev.type);
    tr.setAttribute('data-key', ev.key);
    tr.className = 'ev-' + ev.type;
    cell(tr, String(index), 'num');
    cell(tr, ev.type + (ev.reason ? ' (' + ev.reason + (ev.lease ? ' ' + ev.lease : '') + ')' : ''));
    cell(tr, ev.key);
    cell(tr, ev.type === 'put' ? ev.value : '', 'val');
    var body = $('changes');
    body.insertBefore(tr, body.firstChild);
    while (body.childNodes.length > MAX_ROWS) body.removeChild(body.lastChild);
  }
  function watchStatus(text) { $('watch-status').textContent = text; }
  function onFrame(w, frame) {
    var event = 'message', data = [];
    frame.split('\\n').forEach(function (line) {
      if (line === '' || line.charAt(0) === ':') return;
      var i = line.indexOf(':');
      var field = i < 0 ? line : line.slice(0, i);
      var value = i < 0 ? '' : line.slice(i + 1).replace(/^ /, '');
      if (field === 'event') event = value;
      else if (field === 'data') data.push(value);
    });
    if (data.length === 0) return;
    var msg = JSON.parse(data.join('\\n'));
    if (event === 'error') {
      var e = msg.error || {};
      if (e.code === ${JSON.stringify(COMPACTED_CODE)}) {
        stopWatch();
        $('watch-error').textContent = 'COMPACTED: ' + e.message;
      } else {
        watchStatus('stream ended (' + e.code + '); resuming…');
      }
      return;
    }
    if (typeof msg.index !== 'number' || (w.last !== null && msg.index <= w.last)) return;
    w.last = msg.index;
    if (event === 'change') msg.events.forEach(function (ev) { addChange(msg.index, ev); });
    watchStatus('watching ' + JSON.stringify(w.prefix) + ' on this node, up to index ' + msg.index);
  }
  function connect(w) {
    if (w.isStopped) return;
    var q = new URLSearchParams({ prefix: w.prefix });
    var headers = { Accept: 'text/event-stream' };
    if (w.token) headers.Authorization = 'Bearer ' + w.token;
    if (w.last !== null) headers['Last-Event-ID'] = String(w.last);
    w.ctl = new AbortController();
    var decoder = new TextDecoder();
    var buffer = '';
    fetch('/watch?' + q.toString(), { headers: headers, cache: 'no-store', signal: w.ctl.signal })
      .then(function (res) {
        if (!res.ok) {
          return res.json().then(function (body) {
            var e = body && body.error ? body.error : { code: 'HTTP_' + res.status, message: '' };
            var err = new Error(e.code + ': ' + e.message);
            err.isFinal = res.status < 500 && res.status !== 429;
            throw err;
          });
        }
        w.failures = 0;
        $('watch-error').textContent = '';
        if (w.last === null) watchStatus('watching ' + JSON.stringify(w.prefix) + ' on this node');
        var reader = res.body.getReader();
        function pump() {
          return reader.read().then(function (r) {
            if (r.done) return;
            buffer += decoder.decode(r.value, { stream: true }).replace(/\\r\\n?/g, '\\n');
            var end;
            while ((end = buffer.indexOf('\\n\\n')) >= 0) {
              var frame = buffer.slice(0, end);
              buffer = buffer.slice(end + 2);
              onFrame(w, frame);
              if (w.isStopped) return reader.cancel();
            }
            return pump();
          });
        }
        return pump();
      })
      .then(function () { retry(w, null); }, function (err) { retry(w, err); });
  }
  function retry(w, err) {
    if (w.isStopped) return;
    if (err && err.isFinal) {
      stopWatch();
      $('watch-error').textContent = err.message;
      return;
    }
    w.failures++;
    var delay = Math.min(5000, 250 * Math.pow(2, w.failures - 1));
    watchStatus('reconnecting in ' + delay + ' ms' + (err ? ' (' + (err.message || String(err)) + ')' : '') + (w.last !== null ? ', from index ' + (w.last + 1) : ''));
    w.timer = setTimeout(function () { connect(w); }, delay);
  }
  function stopWatch() {
    if (watching) {
      watching.isStopped = true;
      if (watching.ctl) watching.ctl.abort();
      if (watching.timer) clearTimeout(watching.timer);
      if (watching.last !== null) watchStatus('stopped at index ' + watching.last);
      else watchStatus('not watching');
    }
    watching = null;
    $('watch-stop').disabled = true;
  }
  $('watch-form').addEventListener('submit', function (ev) {
    ev.preventDefault();
    stopWatch();
    $('changes').textContent = '';
    $('watch-error').textContent = '';
    watching = { prefix: $('watch-prefix').value, token: $('watch-token').value, last: null, failures: 0, ctl: null, timer: null, isStopped: false };
    $('watch-stop').disabled = false;
    watchStatus('connecting…');
    connect(watching);
  });
  $('watch-stop').addEventListener('click', stopWatch);
})();
</script>
</body>
</html>
`;
