/**
 * The ceiling for `make bench`: a bare Koa app with raftkv's /key routes over an in-process Map, no
 * replication and no disk. Whatever raftkv does on top of this costs throughput; this measures what
 * any Koa service can do on this machine. Started as a child process by bench/run.ts.
 */
import Koa from 'koa';
import Router from '@koa/router';

const store = new Map<string, string>();
const app = new Koa();
const router = new Router();

async function readBody(req: AsyncIterable<Buffer>): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of req) chunks.push(c);
  return Buffer.concat(chunks).toString('utf8');
}

router.post('/key', async (ctx) => {
  const body: unknown = JSON.parse(await readBody(ctx.req));
  if (typeof body !== 'object' || body === null) ctx.throw(400, 'body must be an object');
  for (const [k, v] of Object.entries(body as Record<string, unknown>)) store.set(k, String(v));
  ctx.body = body;
});
router.get('/key/:key', (ctx) => {
  const v = store.get(ctx.params.key);
  if (v === undefined) ctx.throw(404, 'not found');
  ctx.body = { [ctx.params.key]: v };
});

app.use(router.routes());
const port = Number(process.argv[2] ?? '18080');
const server = app.listen(port, '127.0.0.1', () => process.stdout.write(`listening ${port}\n`));
server.keepAliveTimeout = 30_000;
process.on('SIGTERM', () => server.close(() => process.exit(0)));
