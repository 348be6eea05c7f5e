# confidoc: the front door. `make check` installs what is missing, builds and tests.
BUILD      ?= build
ASAN_BUILD ?= build-asan
JOBS       ?= $(shell nproc)

.PHONY: all build deps check test asan-check format format-check lint clean up down

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

# The README's test command: the normal build and its tests, then the same
# tests built with AddressSanitizer and UndefinedBehaviorSanitizer.
check: test asan-check

format:
	clang-format -i $$(git ls-files 'src/*.c' 'src/*.h' 'tests/*.c' 'tests/*.h')

format-check:
	clang-format --dry-run -Werror $$(git ls-files 'src/*.c' 'src/*.h' 'tests/*.c' 'tests/*.h')

lint: build
	cppcheck --quiet --error-exitcode=1 --enable=warning,portability,performance \
	  --inline-suppr -I src $$(git ls-files 'src/*.c')

clean:
	rm -rf $(BUILD) $(ASAN_BUILD)

# The whole stack on this machine (nginx, confidoc-api, MariaDB, memcached,
# keys from confidoc-cas); state in $(CONFIDOC_STATE_DIR), default var/.
# See docs/operations.md.
up:
	@bash scripts/stack.sh up

down:
	@bash scripts/stack.sh down
