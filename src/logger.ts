/** One JSON line per event (pino), tagged with the node id. Created once by main.ts. */
import { pino, type Logger } from 'pino';

export function createLogger(cfg: { nodeId: string; logLevel: string }): Logger {
  return pino({ level: cfg.logLevel, base: { node: cfg.nodeId } });
}
