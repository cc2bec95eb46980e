# raftkv — the two commands a new user needs are `make run` and `make test`.
SHELL := /bin/bash
export NODE_ID ?= app1
export PORT ?= 8080
export RAFT_BIND_ADDR ?= 127.0.0.1:7000

.PHONY: install build run test test-unit sim sim-mutants faults bench docker docker-down certs clean lint

node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund
	@touch $@

install: node_modules/.installed

build: install
	npx tsc -p tsconfig.json

run: build
	./main.sh

test: build
	npx mocha

test-unit: install
	npx mocha 'test/unit/**/*.test.ts'

sim: install
	npm run sim -- --seeds 1000

sim-mutants: install
	npm run sim:mutants

clean:
	rm -rf dist node_modules

# Development CA and node certificates (app1..app4; SANs appN, localhost, 127.0.0.1) in deploy/certs.
certs:
	CERTS_WORLD_READABLE=1 scripts/gen-certs.sh deploy/certs app1 app2 app3 app4
