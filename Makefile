# confidoc: the front door. `make check` installs what is missing, builds and tests.
BUILD      ?= build
ASAN_BUILD ?= build-asan
JOBS       ?= $(shell nproc)

.PHONY: all build deps check test asan-check format format-check lint clean up down bench

all: build

deps:
	@bash scripts/install-deps.sh

build: deps
	cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
	cmake --build $(BUILD) -j $(JOBS)

test: build
	cd $(BUILD) && ctest --output-on-failure -j 2

asan-check: deps
	cmake -S . -B $(ASAN_BUILD) -DCMAKE_BUILD_TYPE=Debug -DCONFIDOC_SANITIZE=ON >/dev/null
	cmake --build $(ASAN_BUILD) -j $(JOBS)
	cd $(ASAN_BUILD) && ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
	  UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 ctest --output-on-failure -j 2

# The README's test command: the normal build and its tests, the same tests
# built with AddressSanitizer and UndefinedBehaviorSanitizer, and the static checks.
check: test asan-check lint

format:
	clang-format -i $$(git ls-files 'src/*.c' 'src/*.h' 'tests/*.c' 'tests/*.h')

format-check:
	clang-format --dry-run -Werror $$(git ls-files 'src/*.c' 'src/*.h' 'tests/*.c' 'tests/*.h')

# Static checks of the committed configuration: clang-format, cppcheck, clang-tidy.
lint: build format-check
	cppcheck --quiet --error-exitcode=1 --enable=warning,portability,performance \
	  --inline-suppr -I src $$(git ls-files 'src/*.c')
	clang-tidy -p $(BUILD) --quiet $$(git ls-files 'src/*.c') 2>/dev/null

clean:
	rm -rf $(BUILD) $(ASAN_BUILD)

# The whole stack on this machine (nginx, confidoc-api, MariaDB, memcached,
# keys from confidoc-cas); state in $(CONFIDOC_STATE_DIR), default var/.
# See docs/operations.md.
up:
	@bash scripts/stack.sh up

down:
	@bash scripts/stack.sh down

# The whole-system benchmark (not part of make check): its own stack on free ports,
# wrk through nginx beside a trivial-upstream ceiling; writes bench/results/latest.*.
# BENCH_DURATION=3 for a quick run. See docs/performance.md.
bench:
	@bash scripts/install-deps.sh --bench
	@bash bench/run.sh
