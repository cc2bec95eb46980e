/**
 * NEGATIVE CONTROL for the watch check; never part of raftkv. The fault harness loads it into the
 * node processes of `watch-control` only (NODE_OPTIONS=--import, set by scenario.ts): once per
 * process, the third `change` message of the first watch stream on a non-empty prefix that gets that
 * far is silently left out (a gap, the bug of etcd-io/etcd#18089). The stream's ids go on as if it
 * had been sent, so only a checker comparing the stream with the committed log can see it. Streams
 * on the empty prefix are left alone: the checker's reference reads all use it, so the skip lands in
 * a watcher's stream, which is what this control must prove the checker flags (watch_ok=false).
 *
 * Where it acts: Readable.from, through which src/api/watch.ts turns its frame generator into the
 * response stream (the generator and its frames are module-private; Readable is the shared class).
 * Only iterables whose first chunk is the stream's `: watching "<prefix>" from N` comment are
 * touched. Plain JavaScript (see ack-before-sync.mjs for why).
 */
import { Readable } from 'node:stream';
import { isMainThread } from 'node:worker_threads';

if (isMainThread) {
  const from = Readable.from;
  if (typeof from !== 'function') throw new Error('watch-skip: Readable.from is gone; retarget this control');
  let hasSkipped = false;

  async function* skipOne(source) {
    let prefix = null;
    let changes = 0;
    for await (const chunk of source) {
      if (prefix === null) {
        const m = typeof chunk === 'string' ? /^: watching ("(?:[^"\\]|\\.)*") from/.exec(chunk) : null;
        prefix = m ? JSON.parse(m[1]) : '';
      }
      if (hasSkipped || prefix === '' || typeof chunk !== 'string' || !chunk.includes('event: change\n')) {
        yield chunk;
        continue;
      }
      // A chunk may hold several frames, each ending with a blank line.
      const frames = chunk.split(/(?<=\n\n)/);
      const kept = [];
      for (const f of frames) {
        if (!hasSkipped && f.includes('\nevent: change\n') && ++changes === 3) {
          hasSkipped = true;
          process.stderr.write(`NEGATIVE CONTROL: watch stream on ${JSON.stringify(prefix)} skipped change ${/^id: (\d+)/.exec(f)?.[1] ?? '?'} (test/faults/watch-skip.mjs)\n`);
          continue;
        }
        kept.push(f);
      }
      if (kept.length > 0) yield kept.join('');
    }
  }

  Readable.from = function (iterable, opts) {
    if (hasSkipped || iterable === null || typeof iterable !== 'object' || typeof iterable[Symbol.asyncIterator] !== 'function') return from.call(this, iterable, opts);
    return from.call(this, skipOne(iterable), opts);
  };
  process.stderr.write('NEGATIVE CONTROL: one watch change event is skipped per process (test/faults/watch-skip.mjs)\n');
}
