# Rapport — the two commands (`make run`, `make test`) and the developer targets.
PRESET ?= release
BUILD  := build/$(PRESET)
DATA   ?= var
PORT   ?= 8080
JOBS   ?= $(shell nproc)

.PHONY: run test build web bootstrap bench format test-asan fuzz clean

bootstrap:
	@scripts/bootstrap.sh

build: bootstrap
	@cmake --preset $(PRESET) >/dev/null
	@cmake --build $(BUILD) -j $(JOBS)

web: bootstrap
	@cd web && npm run build --silent

# Build, seed demo data on first start, and serve on http://127.0.0.1:$(PORT).
run: build web
	@if [ ! -f $(DATA)/rapport.db ]; then build/rapport demo --data $(DATA); fi
	@build/rapport serve --data $(DATA) --port $(PORT) --static web/dist

# Every test: unit (GoogleTest via CTest), API against the real binary, web unit tests (Vitest),
# browser tests in Debian's Chromium. Ends with "N passed, N failed".
test:
	@scripts/bootstrap.sh --test
	@PRESET=$(PRESET) JOBS=$(JOBS) scripts/test.sh

# AddressSanitizer + UBSan build; unit tests and the API suites (both backends) against it.
test-asan:
	@scripts/bootstrap.sh --test
	@PRESET=asan SUITES="unit api" JOBS=$(JOBS) scripts/test.sh

# Benchmarks (bench/README.md): BENCH_SCALE=small (default, about a minute) or full; writes
# bench/results/latest.json. bench-compare: change of every figure against OLD (default previous run).
bench: bootstrap
	@BENCH_SCALE=$(or $(BENCH_SCALE),small) PRESET=release JOBS=2 bench/run.sh

# Soak (bench/README.md): the mixed load with kill -9 and restart every SOAK_KILL_EVERY s for
# SOAK_SECONDS (default 300); fails when an acknowledged create is lost, on a 5xx, or on a bad
# integrity check. Not part of make test.
.PHONY: soak
soak: bootstrap
	@BENCH_SCALE=$(or $(BENCH_SCALE),small) PRESET=release bench/soak.sh

.PHONY: bench-compare
bench-compare:
	@node bench/compare.mjs $(OLD) $(NEW)

# libFuzzer targets (filter language, routing/query strings, request bodies), 5 minutes each.
fuzz: bootstrap
	@scripts/fuzz.sh long

format:
	@git ls-files '*.h' '*.cc' | xargs clang-format -i

clean:
	rm -rf build web/dist
