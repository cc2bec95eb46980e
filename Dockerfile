# syntax=docker/dockerfile:1
# raftkv container image: build with dev dependencies, run with production dependencies only.
# Node 24 is the current LTS line (what .ci/run tests besides 22 and 20). The RocksDB binding ships an
# N-API prebuild for linux-x64 (glibc), so no compiler is needed there; other architectures build it
# from source in the prod-deps stage, which needs python3, make and g++ added to that stage.
ARG NODE_IMAGE=node:24-bookworm-slim

FROM ${NODE_IMAGE} AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json ./
COPY src ./src
RUN npx tsc -p tsconfig.json

FROM ${NODE_IMAGE} AS prod-deps
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund && npm cache clean --force

FROM ${NODE_IMAGE} AS runtime
ENV NODE_ENV=production \
    PORT=8080 \
    RAFT_BIND_ADDR=0.0.0.0:7000 \
    RAFT_DIR=/data
WORKDIR /app
COPY --from=prod-deps /app/node_modules ./node_modules
COPY --from=build /app/dist/src ./dist/src
COPY package.json ./
# The data directory belongs to the unprivileged user; a fresh named volume inherits this ownership.
RUN mkdir -p /data && chown node:node /data
USER node
VOLUME ["/data"]
# 8080: client API, /health, /ready, /metrics. 7000: Raft peer RPC.
EXPOSE 8080 7000
# Slim images have no curl: probe /health with node's own http client.
HEALTHCHECK --interval=10s --timeout=3s --start-period=15s --retries=3 \
  CMD ["node", "-e", "require('http').get({host:'127.0.0.1',port:process.env.PORT||8080,path:'/health',timeout:2500},r=>process.exit(r.statusCode===200?0:1)).on('error',()=>process.exit(1)).on('timeout',()=>process.exit(1))"]
# Exec form: node is PID 1 and receives SIGTERM itself (main.ts drains and closes RocksDB).
CMD ["node", "dist/src/main.js"]
