# confidoc: the front door. `make check` installs what is missing, builds and tests.
BUILD      ?= build
ASAN_BUILD ?= build-asan
TSAN_BUILD ?= build-tsan
JOBS       ?= $(shell nproc)

.PHONY: all build deps web check test asan-check tsan-check format format-check lint clean fuzz fuzz-smoke up down bench \
        print-fuzz-targets images check-images check-distributed

all: build

deps:
	@bash scripts/install-deps.sh

build: deps web
	cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
	cmake --build $(BUILD) -j $(JOBS)

# The web application (web/, docs/web.md): its npm packages (devDependencies,
# from the registry, exactly as web/package-lock.json says) into web/node_modules,
# the bundle into $(BUILD)/web/, never into the source tree. Node 20 or newer.
WEB_SRC := web/build.mjs web/tsconfig.json $(wildcard web/src/*)
web: $(BUILD)/web/index.html

web/node_modules/.package-lock.json: web/package.json web/package-lock.json
	npm ci --prefix web --no-audit --no-fund
	@touch $@

$(BUILD)/web/index.html: web/node_modules/.package-lock.json $(WEB_SRC)
	node web/build.mjs --outdir $(BUILD)/web

test: build
	cd $(BUILD) && ctest --output-on-failure -j 2

asan-check: deps
	cmake -S . -B $(ASAN_BUILD) -DCMAKE_BUILD_TYPE=Debug -DCONFIDOC_SANITIZE=ON >/dev/null
	cmake --build $(ASAN_BUILD) -j $(JOBS)
	@$(MAKE) --no-print-directory web BUILD=$(ASAN_BUILD) # test_web serves $(ASAN_BUILD)/web
	cd $(ASAN_BUILD) && ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
	  UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 ctest --output-on-failure -j 2 \
	    -E fuzz_smoke # the fuzz build is ASan+UBSan already

# The same tests built with ThreadSanitizer (CONFIDOC_TSAN=ON), servers included:
# TSAN_OPTIONS (halt_on_error=1:second_deadlock_stack=1, tests/tsan.supp for
# uninstrumented third-party libraries only) are set on every test by
# tests/CMakeLists.txt, and tests/lib/tsan_run.sh fails an integration test when
# any process it started wrote a report. setarch -R (no ASLR for this process
# tree, nothing changed on the machine) keeps gcc 12's TSan working on kernels
# whose vm.mmap_rnd_bits is above 28 ("FATAL: ThreadSanitizer: unexpected memory
# mapping"); where personality() is refused, the tests run without it.
# Excluded: fuzz_smoke: it builds and runs a clang ASan+UBSan tree of its own
# (libFuzzer; TSan cannot be combined with ASan), so nothing of the TSan build
# runs in it, and `test` runs it already.
TSAN_SETARCH = $(shell setarch "$$(uname -m)" -R true 2>/dev/null && echo setarch "$$(uname -m)" -R)
tsan-check: deps
	cmake -S . -B $(TSAN_BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCONFIDOC_TSAN=ON >/dev/null
	cmake --build $(TSAN_BUILD) -j $(JOBS)
	@$(MAKE) --no-print-directory web BUILD=$(TSAN_BUILD) # test_web serves $(TSAN_BUILD)/web
	cd $(TSAN_BUILD) && $(TSAN_SETARCH) ctest --output-on-failure -j 2 \
	    -E fuzz_smoke # see above

# The README's test command: the normal build and its tests, the same tests
# built with AddressSanitizer and UndefinedBehaviorSanitizer, then with
# ThreadSanitizer, and the static checks.
check: test asan-check tsan-check lint

# The distributed topology on network namespaces (tests/distributed/run.sh,
# docs/internals/distributed-test.md): the CAS, node agents, two API replicas,
# nginx, a 3-node Galera cluster and two memcached, each on its own address;
# faults under load. Root only; one run at a time; bounded (CONFIDOC_DIST_TIMEOUT).
check-distributed: deps
	cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
	cmake --build $(BUILD) -j $(JOBS) --target confidoc-api confidoc-cas
	CONFIDOC_BUILD_DIR=$(abspath $(BUILD)) bash tests/distributed/run.sh

format:
	clang-format -i $$(git ls-files 'src/*.c' 'src/*.h' 'tests/*.c' 'tests/*.h')

format-check:
	clang-format --dry-run -Werror $$(git ls-files 'src/*.c' 'src/*.h' 'tests/*.c' 'tests/*.h')

# Static checks of the committed configuration: clang-format, cppcheck, clang-tidy,
# the module boundaries that include paths cannot fence (scripts/check-boundaries.sh),
# and the web application's types (tsc --noEmit).
lint: build format-check
	bash scripts/check-boundaries.sh $(BUILD)
	cd web && node_modules/.bin/tsc --noEmit -p .
	cppcheck --quiet --error-exitcode=1 --enable=warning,portability,performance \
	  --inline-suppr -I src $$(git ls-files 'src/*.c')
	clang-tidy -p $(BUILD) --quiet $$(git ls-files 'src/*.c') 2>/dev/null

# libFuzzer harnesses (fuzz/, docs/internals/fuzzing.md), in a clang build of their own.
# Each target runs on a temporary copy of its committed corpus (fuzz/corpus/<target>/),
# so that corpus is never written to; crash inputs are kept in $(FUZZ_BUILD)/crashes/.
FUZZ_BUILD   ?= build-fuzz
FUZZ_SECONDS ?= 60
# target:max_len (a little over the largest input each parser accepts)
FUZZ_TARGETS ?= router:512 basic:2048 validate:2048 config:4096 recovery_code:256 \
                json_body:4096 keyring:4096 codec:2048 num:64 policy:2048 audit:8192 \
                release_proto:8192 ipc:4096 rest:20000 cookie:9000 node:8192
FUZZ_CONFIGURE = cmake -S . -B $(FUZZ_BUILD) -DCMAKE_C_COMPILER=clang \
	  -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCONFIDOC_SANITIZE=ON -DCONFIDOC_FUZZ=ON >/dev/null && \
	cmake --build $(FUZZ_BUILD) --target fuzzers -j $(JOBS)
# $(call FUZZ_RUN,seconds): replays each committed corpus, then fuzzes each target
# for that many seconds; fails when any target crashes, leaks or breaks an invariant.
FUZZ_RUN = @work=$$(mktemp -d /tmp/confidoc-fuzz.XXXXXX); trap 'rm -rf "$$work"' EXIT; \
	mkdir -p $(FUZZ_BUILD)/crashes $(FUZZ_BUILD)/fuzz-logs; failed=""; \
	for tl in $(FUZZ_TARGETS); do \
	  t=$${tl%%:*}; len=$${tl\#*:}; \
	  mkdir -p "$$work/$$t" && cp fuzz/corpus/$$t/* "$$work/$$t/"; \
	  dict=; if [ -f fuzz/dict/$$t.dict ]; then dict=-dict=fuzz/dict/$$t.dict; fi; \
	  log=$(FUZZ_BUILD)/fuzz-logs/$$t.log; \
	  printf 'fuzz_%s: corpus, then %s s ... ' $$t $(1); \
	  if $(FUZZ_BUILD)/fuzz/fuzz_$$t -runs=0 "$$work/$$t" >$$log 2>&1 && \
	     $(FUZZ_BUILD)/fuzz/fuzz_$$t $$dict -max_len=$$len -max_total_time=$(1) -timeout=10 \
	       -print_final_stats=1 -artifact_prefix=$(FUZZ_BUILD)/crashes/$$t- "$$work/$$t" \
	       >>$$log 2>&1; then \
	    echo "ok ($$(grep -o 'stat::number_of_executed_units: *[0-9]*' $$log | grep -o '[0-9]*$$') runs)"; \
	  else echo "FAILED (see $$log)"; tail -n 30 $$log; failed="$$failed $$t"; fi; \
	done; \
	if [ -n "$$failed" ]; then echo "fuzz: failed:$$failed"; exit 1; fi

print-fuzz-targets:
	@echo $(FUZZ_TARGETS)

fuzz: deps
	$(FUZZ_CONFIGURE)
	$(call FUZZ_RUN,$(FUZZ_SECONDS))

fuzz-smoke: deps
	$(FUZZ_CONFIGURE)
	$(call FUZZ_RUN,5)

clean:
	rm -rf $(BUILD) $(ASAN_BUILD) $(TSAN_BUILD)

# The whole stack on this machine (nginx, confidoc-api, MariaDB, memcached,
# keys from confidoc-cas); state in $(CONFIDOC_STATE_DIR), default var/.
# See docs/operations.md. nginx serves the web application of $(BUILD)/web at /app/.
up: web
	@bash scripts/stack.sh up

down:
	@bash scripts/stack.sh down

# The whole-system benchmark (not part of make check): its own stack on free ports,
# wrk through nginx beside a trivial-upstream ceiling; writes bench/results/latest.*.
# BENCH_DURATION=3 for a quick run. See docs/performance.md.
bench:
	@bash scripts/install-deps.sh --bench
	@bash bench/run.sh

# The OCI images of the Helm chart (docs/images.md): a debootstrap'd Debian
# bookworm base (cached in $(BUILD)/images/rootfs), podman import, one image
# per component from deploy/images/*/Containerfile; prints each image's id and
# digest and the programs' SHA-256, writes $(BUILD)/images/measurements.yaml
# (the chart's cas.measurements). Root only; not part of make check.
images: build
	@bash scripts/install-deps.sh --images
	@bash scripts/images/build.sh $(BUILD)

# make images, then start each image with podman (read-only, its uid, no
# capability) and check that it answers, most through the real launch
# (a CAS and a node agent of the CAS image). tests/images/test_images.sh.
check-images: images
	@bash tests/images/test_images.sh $(BUILD)
