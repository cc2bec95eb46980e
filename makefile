# raftkv — the two commands a new user needs are `make run` and `make test`.
SHELL := /bin/bash
export NODE_ID ?= app1
export PORT ?= 8080
export RAFT_BIND_ADDR ?= 127.0.0.1:7000

.PHONY: install build run test test-unit sim sim-mutants faults bench docker docker-down test-containers certs clean lint

node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund
	@touch $@

install: node_modules/.installed

build: install
	npx tsc -p tsconfig.json

run: build
	./main.sh

# The suites of `make test`. Not in .mocharc.json: mocha adds a config's spec to the files given on
# the command line, so `npx mocha test/unit/foo.test.ts` would run everything.
TEST_SPECS = 'test/unit/**/*.test.ts' 'test/sim/**/*.test.ts' 'test/integration/**/*.test.ts' 'test/faults/**/*.test.ts'

test: build
	npx mocha $(TEST_SPECS)

test-unit: install
	npx mocha 'test/unit/**/*.test.ts'

sim: install
	npm run sim -- --seeds 1000
	npm run sim -- --seeds 1000 --interleave
	npm run sim -- --seeds 1000 --leases
	npm run sim -- --seeds 1000 --interleave --leases

sim-mutants: install
	npm run sim:mutants

# Throughput and latency of raftkv against a bare Koa app and a 3-node etcd on this machine.
bench: build
	@command -v wrk >/dev/null 2>&1 || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends wrk; }
	@command -v etcd >/dev/null 2>&1 || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends etcd-server; }
	npx tsx bench/run.ts

# Fault injection (needs root, iproute2, iptables): every scenario on 3- and 5-node clusters in
# private network namespaces; one summary line each. Options: FAULTS_ARGS='--only kill-all --dur 20'.
faults: build
	npx tsx test/faults/run.ts $(FAULTS_ARGS)

clean:
	rm -rf dist node_modules

# Four nodes in containers (docker-compose.yml): app1 bootstraps, app2..app4 join; API on :8081..:8084.
COMPOSE = $(shell if docker compose version >/dev/null 2>&1; then echo "docker compose"; else echo docker-compose; fi)

docker:
	$(COMPOSE) up -d --build app1 app2 app3 app4

docker-down:
	$(COMPOSE) down

# The image and the compose files for real (needs root; podman + docker-compose in a private network
# namespace, installed when missing): build, cluster, failover, restart with volumes, TLS. See README.
test-containers: install
	test/containers/run.sh

# Development CA and node certificates (app1..app4; SANs appN, localhost, 127.0.0.1) in deploy/certs;
# the CA key goes to deploy/certs-ca (never mounted); node keys 0640 with group 1000 (the containers' node user).
certs:
	CERTS_GID=1000 scripts/gen-certs.sh deploy/certs app1 app2 app3 app4
