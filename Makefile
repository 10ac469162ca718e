# Portico build.  `make` builds build/portico; see README.md for the rest.
#
#   make                 release build (-O2)
#   make run             install missing packages, build, start the demo (examples/shop)
#   make test            unit + integration + fuzz-corpus replay, all under ASan+UBSan
#   make bench           benchmark against nginx and HAProxy (bench/)
#   make fuzz            run every libFuzzer target for FUZZ_SECONDS (60)
#   make install         install to $(PREFIX)/bin (PREFIX=/usr/local)
#
# Variants: SAN=1 (ASan+UBSan, into build/asan), BUILD=dir, CC=clang.

BUILD   ?= build
PREFIX  ?= /usr/local
CC      ?= cc
SAN     ?= 0
FUZZ_SECONDS ?= 60
PYTHON  ?= /usr/bin/python3

PKGS    := yaml-0.1 libpcre2-8 jansson libssl libcrypto
VERSION := $(shell cat VERSION 2>/dev/null || echo 0.0.0)
GIT_REV := $(shell git rev-parse --short HEAD 2>/dev/null || echo unknown)

WARN    := -Wall -Wextra -Werror -Wshadow -Wformat=2 -Wvla -Wimplicit-fallthrough \
           -Wstrict-prototypes -Wno-missing-field-initializers
CPPFLAGS += -D_GNU_SOURCE -Iinclude -Isrc -DPT_VERSION='"$(VERSION)"' -DPT_GIT_REV='"$(GIT_REV)"'
OPT     ?= -O2 -g
EXTRA_CFLAGS ?=
CFLAGS  := $(OPT) $(EXTRA_CFLAGS) -std=c17 -pthread -fno-strict-aliasing $(WARN) \
           $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
LDLIBS  += $(shell pkg-config --libs $(PKGS) 2>/dev/null) -pthread -lm

ifeq ($(SAN),1)
CFLAGS  += -O1 -g -fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer
LDFLAGS += -fsanitize=address,undefined
endif

SRCS     := $(shell find src -name '*.c' ! -path src/main.c | sort)
OBJS     := $(SRCS:%.c=$(BUILD)/obj/%.o)
LIB      := $(BUILD)/libportico.a
BIN      := $(BUILD)/portico
UNIT_SRC := $(shell find tests/unit -name '*.c' 2>/dev/null | sort)
UNIT_BIN := $(patsubst tests/unit/%.c,$(BUILD)/unit/%,$(UNIT_SRC))
FUZZ_SRC := $(shell find tests/fuzz -maxdepth 1 -name '*.c' 2>/dev/null | sort)
FUZZ_NAMES := $(patsubst tests/fuzz/%.c,%,$(FUZZ_SRC))

.PHONY: all deps run test unit integration fuzz-build fuzz-replay fuzz bench install clean format check-format

all: $(BIN)

ifeq ($(V),1)
Q :=
else
Q := @
endif

$(BUILD)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  CC      $<")
	$(Q)$(CC) $(CPPFLAGS) $(CFLAGS) -MMD -MP -c $< -o $@

$(LIB): $(OBJS)
	@rm -f $@
	$(Q)ar rcs $@ $^

$(BIN): $(BUILD)/obj/src/main.o $(LIB)
	@$(if $(Q),echo "  LINK    $@")
	$(Q)$(CC) $(CFLAGS) $(LDFLAGS) $^ -o $@ $(LDLIBS)

$(BUILD)/unit/%: tests/unit/%.c $(LIB) tests/unit/test.h
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  UNIT    $<")
	$(Q)$(CC) $(CPPFLAGS) -Itests/unit $(CFLAGS) $(LDFLAGS) $< $(LIB) -o $@ $(LDLIBS)

-include $(OBJS:.o=.d) $(BUILD)/obj/src/main.d

deps:
	@scripts/deps.sh

run: deps
	@$(MAKE) --no-print-directory all
	@exec examples/shop/run.sh $(BIN)

# The whole suite, under AddressSanitizer + UndefinedBehaviorSanitizer.
test:
	@scripts/deps.sh test
	@$(MAKE) --no-print-directory SAN=1 BUILD=build/asan all unit-build
	@$(MAKE) --no-print-directory SAN=1 BUILD=build/asan unit
	@$(MAKE) --no-print-directory fuzz-replay
	@$(MAKE) --no-print-directory SAN=1 BUILD=build/asan integration

unit-build: $(UNIT_BIN)

unit: $(UNIT_BIN)
	@scripts/run-unit.sh $(UNIT_BIN)

integration: $(BIN)
	PORTICO_BIN=$(abspath $(BIN)) $(PYTHON) -m pytest -q tests/integration $(PYTEST_ARGS)

# libFuzzer targets are built with clang into build/fuzz.
fuzz-build:
	@$(MAKE) --no-print-directory CC=clang BUILD=build/fuzz OPT="-O1 -g" \
	    EXTRA_CFLAGS="-fsanitize=fuzzer-no-link,address,undefined -fno-omit-frame-pointer -DPT_FUZZING" \
	    build/fuzz/libportico.a
	@mkdir -p build/fuzz/bin
	@for n in $(FUZZ_NAMES); do \
	    if [ ! build/fuzz/bin/$$n -nt tests/fuzz/$$n.c ] || [ build/fuzz/libportico.a -nt build/fuzz/bin/$$n ]; then \
	        echo "fuzz: building $$n"; \
	        clang $(CPPFLAGS) -O1 -g -std=c17 -fsanitize=fuzzer,address,undefined -fno-omit-frame-pointer \
	            $(shell pkg-config --cflags $(PKGS)) tests/fuzz/$$n.c build/fuzz/libportico.a \
	            -o build/fuzz/bin/$$n $(shell pkg-config --libs $(PKGS)) -pthread -lm || exit 1; \
	    fi; \
	done

fuzz-replay: fuzz-build
	@scripts/fuzz.sh replay $(FUZZ_NAMES)

fuzz: fuzz-build
	@FUZZ_SECONDS=$(FUZZ_SECONDS) scripts/fuzz.sh run $(FUZZ_NAMES)

bench: deps
	@scripts/deps.sh bench
	@$(MAKE) --no-print-directory all
	@bench/run.sh

install: $(BIN)
	install -d $(DESTDIR)$(PREFIX)/bin
	install -m 755 $(BIN) $(DESTDIR)$(PREFIX)/bin/portico

format:
	clang-format -i $$(find src include tests -name '*.[ch]')

check-format:
	@clang-format --dry-run -Werror $$(find src include tests -name '*.[ch]')

clean:
	rm -rf build
