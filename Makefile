# paddock: GNU Make + pkg-config, C17.
#   make            release build: build/release/paddock
#   make run        set up, build, start `paddock serve` on the defaults
#   make test       set up, build with ASan+UBSan, run every test
#   make lint       clang-format check, banned functions
#   make bench      benchmarks against references measured in the same run
#   make install    PREFIX=/usr/local DESTDIR=: binary, systemd unit, docs
#   make fuzz       fuzz FUZZ_TARGET (probe, http, form, log) for FUZZ_TIME s (60)
#   BUILD=release|debug|asan|tsan selects the flavour; CC=clang works too;
#   O=DIR puts the objects elsewhere (default build/$(BUILD)).

BUILD ?= release
CC ?= cc
# The builds make test, make run and make bench start use every core,
# unless the command line chose (make -jN: then its jobserver is shared).
# Deferred: MAKEFLAGS shows -j only when a recipe runs.
JOBS = $(if $(findstring jobserver,$(MAKEFLAGS)),,-j$(shell nproc 2>/dev/null || echo 1))
O ?= build/$(BUILD)

PKGS := jansson sqlite3 libcrypto libcurl libpq \
        libavformat libavcodec libavutil libswscale libswresample

WARN := -Wall -Wextra -Wshadow -Wstrict-prototypes -Werror
CFLAGS_COMMON := -std=c17 -D_GNU_SOURCE -g $(WARN) -pthread \
                 $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
LDLIBS := $(shell pkg-config --libs $(PKGS) 2>/dev/null) -pthread -lm

ifeq ($(BUILD),release)
OPT := -O2
else ifeq ($(BUILD),asan)
OPT := -O1 -fno-omit-frame-pointer -fsanitize=address,undefined \
       -fno-sanitize-recover=undefined
LDFLAGS += -fsanitize=address,undefined
else ifeq ($(BUILD),tsan)
OPT := -O1 -fsanitize=thread
LDFLAGS += -fsanitize=thread
else
OPT := -O0
endif

CFLAGS += $(CFLAGS_COMMON) $(OPT)

SRCS := $(sort $(wildcard src/*/*.c))
OBJS := $(SRCS:%.c=$(O)/%.o)
# docs/openapi.json, served at GET /openapi.json, goes into the library as
# a C array written by od and awk (no xxd on a plain Debian).
OBJS += $(O)/gen/openapi.o
# The store's schema migrations, src/store/sql/BACKEND_NNN_NAME.sql, go in
# the same way: store_BACKEND_migrations[NNN - 1], each a C string of the
# file's bytes (src/store/sql/README.md). The directory is a prerequisite
# too, so that adding or removing a file regenerates.
STORE_SQL := $(sort $(wildcard src/store/sql/*.sql))
STORE_SQL_BACKENDS := pg sqlite
OBJS += $(O)/gen/store_sql.o
# The web console's files, web/console/NAME, served at /console/NAME: each
# a C array in api_console_assets[] with its name and an ETag (the first
# 16 hex digits of its SHA-256), written the same way.
CONSOLE_FILES := $(sort $(wildcard web/console/*))
OBJS += $(O)/gen/console_assets.o
UNIT_SRCS := $(sort $(wildcard tests/unit/test_*.c))
UNIT_BINS := $(UNIT_SRCS:%.c=$(O)/%)

.PHONY: all run test tests fakes setup lint bench clean fuzz fuzz-prep fuzz-short \
        install

all: $(O)/paddock

# The archive is made afresh whenever the list of objects changes: `ar r`
# would keep a member whose source was removed or renamed.
OBJLIST := $(O)/objs.list
$(shell mkdir -p $(O) && echo '$(OBJS)' | cmp -s - $(OBJLIST) || \
        echo '$(OBJS)' >$(OBJLIST))
$(O)/libpaddock.a: $(OBJS) $(OBJLIST)
	@mkdir -p $(@D)
	@rm -f $@
	$(AR) rcs $@ $(OBJS)

$(O)/paddock: $(O)/src/main.o $(O)/libpaddock.a
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(O)/%.o: %.c
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) -MMD -MP -c -o $@ $<

$(O)/gen/openapi.c: docs/openapi.json
	@mkdir -p $(@D)
	@{ echo '/* Generated from docs/openapi.json by the Makefile. */'; \
	  echo '#include <stddef.h>'; \
	  echo 'extern const unsigned char api_openapi_json[];'; \
	  echo 'extern const size_t api_openapi_json_len;'; \
	  echo 'const unsigned char api_openapi_json[] = {'; \
	  od -An -v -tx1 docs/openapi.json | \
	      awk '{ s = ""; for (i = 1; i <= NF; i++) s = s "0x" $$i ","; \
	             print "    " s }'; \
	  echo '};'; \
	  echo 'const size_t api_openapi_json_len = sizeof(api_openapi_json);'; \
	} >$@.tmp && mv $@.tmp $@

$(O)/gen/openapi.o: $(O)/gen/openapi.c
	$(CC) $(CFLAGS) -c -o $@ $<

$(O)/gen/console_assets.c: $(CONSOLE_FILES) web/console
	@mkdir -p $(@D)
	@{ echo '/* Generated from web/console/ by the Makefile. */'; \
	  echo '#include "api_int.h"'; \
	  n=0; list=''; \
	  for f in $(CONSOLE_FILES); do \
	    case $${f##*/} in *[!a-z0-9._-]*) \
	      echo "$$f: name not [a-z0-9._-]" >&2; exit 1 ;; esac; \
	    n=$$((n + 1)); \
	    echo "static const unsigned char console_$$n[] = {"; \
	    od -An -v -tx1 $$f | \
	        awk '{ s = ""; for (i = 1; i <= NF; i++) s = s "0x" $$i ","; \
	               print "    " s }'; \
	    echo '    0x00'; \
	    echo '};'; \
	    tag=$$(sha256sum $$f | cut -c1-16); \
	    list="$$list { \"$${f##*/}\", \"$$tag\", console_$$n, sizeof(console_$$n) - 1 },"; \
	  done; \
	  echo "const struct console_asset api_console_assets[] = {$$list };"; \
	  echo "const size_t api_console_assets_n = $$n;"; \
	} >$@.tmp && mv $@.tmp $@

$(O)/gen/console_assets.o: $(O)/gen/console_assets.c src/api/api_int.h
	$(CC) $(CFLAGS) -Isrc/api -c -o $@ $<

# Each backend's files must be numbered 001, 002, ... with no gap: the nth
# is what takes a database from schema version n - 1 to n.
$(O)/gen/store_sql.c: $(STORE_SQL) src/store/sql
	@mkdir -p $(@D)
	@for f in $(STORE_SQL); do \
	  case $${f##*/} in \
	    $(foreach b,$(STORE_SQL_BACKENDS),$(b)_[0-9][0-9][0-9]_*.sql|) \
	    none) ;; \
	    *) echo "$$f: not BACKEND_NNN_NAME.sql" >&2; exit 1 ;; \
	  esac; \
	done
	@{ echo '/* Generated from src/store/sql/ by the Makefile. */'; \
	  echo '#include <stddef.h>'; \
	  for b in $(STORE_SQL_BACKENDS); do \
	    n=0; list=''; \
	    for f in $(STORE_SQL); do \
	      case $${f##*/} in $${b}_[0-9][0-9][0-9]_*.sql) ;; *) continue ;; esac; \
	      n=$$((n + 1)); \
	      case $${f##*/} in $${b}_$$(printf %03d $$n)_*) ;; \
	        *) echo "$$f: expected number $$(printf %03d $$n)" >&2; \
	           exit 1 ;; \
	      esac; \
	      echo "static const unsigned char $${b}_$$n[] = {"; \
	      od -An -v -tx1 $$f | \
	          awk '{ s = ""; for (i = 1; i <= NF; i++) s = s "0x" $$i ","; \
	                 print "    " s }'; \
	      echo '    0x00'; \
	      echo '};'; \
	      list="$$list (const char *)$${b}_$$n,"; \
	    done; \
	    [ $$n -gt 0 ] || { echo "src/store/sql: no $$b migrations" >&2; \
	                       exit 1; }; \
	    echo "extern const char *const store_$${b}_migrations[];"; \
	    echo "extern const size_t store_$${b}_migrations_n;"; \
	    echo "const char *const store_$${b}_migrations[] = {$$list };"; \
	    echo "const size_t store_$${b}_migrations_n = $$n;"; \
	  done; \
	} >$@.tmp && mv $@.tmp $@

$(O)/gen/store_sql.o: $(O)/gen/store_sql.c
	$(CC) $(CFLAGS) -c -o $@ $<

$(O)/tests/unit/%: tests/unit/%.c $(O)/libpaddock.a
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) -MMD -MP -o $@ $< $(O)/libpaddock.a $(LDFLAGS) $(LDLIBS)

# Fakes the API tests and the bench start: a HappyHorse provider.
FAKE_BINS := $(O)/tests/fakes/provider
$(O)/tests/fakes/%: tests/fakes/%.c $(O)/libpaddock.a
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) -MMD -MP -o $@ $< $(O)/libpaddock.a $(LDFLAGS) $(LDLIBS)

tests: $(O)/paddock $(UNIT_BINS) $(FAKE_BINS)
fakes: $(FAKE_BINS)

setup:
	@./scripts/setup.sh

run: setup
	@$(MAKE) --no-print-directory $(JOBS) BUILD=release all
	./build/release/paddock serve

test: setup
	@$(MAKE) --no-print-directory $(JOBS) BUILD=asan tests
	@$(MAKE) --no-print-directory $(JOBS) BUILD=release all fakes
	@$(MAKE) --no-print-directory $(JOBS) fuzz-prep
	@./tests/run.sh build/asan

lint: setup
	@./scripts/lint.sh

bench: setup
	@$(MAKE) --no-print-directory $(JOBS) BUILD=release all fakes
	@./bench/run.sh $(if $(filter command line,$(origin O)),$(O),build/release)

# Fuzzing: libFuzzer targets under fuzz/, built with clang and linked with
# the sources they reach, instrumented together. The seed corpus is made by
# fuzz/make_corpus.sh with the ffmpeg CLI (no committed binaries).
FUZZ_CC ?= clang
FUZZ_O := build/fuzz
FUZZ_TIME ?= 60
FUZZ_FLAGS := $(CFLAGS_COMMON) -O1 -fno-omit-frame-pointer \
              -fsanitize=fuzzer,address,undefined \
              -fno-sanitize-recover=undefined
FUZZ_PROBE_SRCS := $(sort $(wildcard src/media/*.c src/task/*.c src/core/*.c \
                                      src/log/*.c))

$(FUZZ_O)/fuzz_probe: fuzz/fuzz_probe.c $(FUZZ_PROBE_SRCS) \
                      $(wildcard src/media/*.h src/task/*.h src/core/*.h \
                                 src/log/*.h)
	@mkdir -p $(@D)
	$(FUZZ_CC) $(FUZZ_FLAGS) -o $@ fuzz/fuzz_probe.c $(FUZZ_PROBE_SRCS) \
	    $(LDLIBS)

# The HTTP front's connection machine (conn.c, req.c and server.c are
# compiled into the target, stream.c's streamed replies with them) and
# the log escaping rule.
FUZZ_HTTP_SRCS := src/http/parse.c src/http/reply.c src/http/stream.c \
                  $(sort $(wildcard src/core/*.c src/log/*.c))
$(FUZZ_O)/fuzz_http: fuzz/fuzz_http.c src/http/conn.c src/http/req.c \
                     src/http/server.c $(FUZZ_HTTP_SRCS) \
                     $(wildcard src/http/*.h src/core/*.h src/log/*.h)
	@mkdir -p $(@D)
	$(FUZZ_CC) $(FUZZ_FLAGS) -o $@ fuzz/fuzz_http.c $(FUZZ_HTTP_SRCS) \
	    -pthread -lm

# The multipart/form-data parser alone (pure: no other source needed).
$(FUZZ_O)/fuzz_form: fuzz/fuzz_form.c src/http/form.c src/http/http.h \
                     src/core/core.h
	@mkdir -p $(@D)
	$(FUZZ_CC) $(FUZZ_FLAGS) -o $@ fuzz/fuzz_form.c src/http/form.c

$(FUZZ_O)/fuzz_log: fuzz/fuzz_log.c $(sort $(wildcard src/core/*.c \
                    src/log/*.c src/core/*.h src/log/*.h))
	@mkdir -p $(@D)
	$(FUZZ_CC) $(FUZZ_FLAGS) -o $@ fuzz/fuzz_log.c \
	    $(sort $(wildcard src/core/*.c src/log/*.c)) -pthread -lm

$(FUZZ_O)/corpus/probe/.made: fuzz/make_corpus.sh
	./fuzz/make_corpus.sh $(@D)
	@touch $@

# make fuzz FUZZ_TARGET=probe|http|form|log (default probe) FUZZ_TIME=SECONDS
FUZZ_TARGET ?= probe
FUZZ_SEEDS_probe := $(FUZZ_O)/corpus/probe
FUZZ_SEEDS_http := fuzz/seeds/http
FUZZ_SEEDS_form := fuzz/seeds/form
FUZZ_SEEDS_log := $(FUZZ_O)/corpus/log
fuzz: setup fuzz-prep
	./fuzz/run.sh $(FUZZ_O)/fuzz_$(FUZZ_TARGET) $(FUZZ_SEEDS_$(FUZZ_TARGET)) \
	    $(FUZZ_O)/work/$(FUZZ_TARGET) $(FUZZ_TIME)

# The targets and the probe's seeds; tests/run.sh runs each for seconds
# (fuzz.probe, fuzz.http, fuzz.form, fuzz.log).
fuzz-prep: $(FUZZ_O)/fuzz_probe $(FUZZ_O)/corpus/probe/.made \
           $(FUZZ_O)/fuzz_http $(FUZZ_O)/fuzz_form $(FUZZ_O)/fuzz_log

# The bounded run on its own: 10 s from the seeds alone.
fuzz-short: $(FUZZ_O)/fuzz_probe $(FUZZ_O)/corpus/probe/.made
	@rm -rf $(FUZZ_O)/work/probe-short
	@./fuzz/run.sh $(FUZZ_O)/fuzz_probe $(FUZZ_O)/corpus/probe \
	    $(FUZZ_O)/work/probe-short 10

# An operator's install: the binary, the systemd unit and its user, an
# example configuration (never over an existing one) and the docs.
#   make install PREFIX=/usr DESTDIR=/tmp/stage
PREFIX ?= /usr/local
BINDIR ?= $(PREFIX)/bin
SYSCONFDIR ?= $(if $(filter /usr,$(PREFIX)),/etc,$(PREFIX)/etc)
DOCDIR ?= $(PREFIX)/share/doc/paddock
UNITDIR ?= $(PREFIX)/lib/systemd/system
SYSUSERSDIR ?= $(PREFIX)/lib/sysusers.d
install:
	@$(MAKE) --no-print-directory BUILD=release all
	install -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(UNITDIR) \
	    $(DESTDIR)$(SYSUSERSDIR) $(DESTDIR)$(DOCDIR) \
	    $(DESTDIR)$(SYSCONFDIR)/paddock
	install -m 0755 build/release/paddock $(DESTDIR)$(BINDIR)/paddock
	sed -e 's|@BINDIR@|$(BINDIR)|g' -e 's|@SYSCONFDIR@|$(SYSCONFDIR)|g' \
	    -e 's|@DOCDIR@|$(DOCDIR)|g' contrib/systemd/paddock.service.in \
	    >$(DESTDIR)$(UNITDIR)/paddock.service
	chmod 0644 $(DESTDIR)$(UNITDIR)/paddock.service
	install -m 0644 contrib/systemd/paddock.sysusers \
	    $(DESTDIR)$(SYSUSERSDIR)/paddock.conf
	[ -e $(DESTDIR)$(SYSCONFDIR)/paddock/paddock.conf ] || \
	    install -m 0644 contrib/systemd/paddock.conf \
	        $(DESTDIR)$(SYSCONFDIR)/paddock/paddock.conf
	install -m 0644 docs/*.md docs/openapi.json $(DESTDIR)$(DOCDIR)/

clean:
	rm -rf build

-include $(OBJS:.o=.d) $(O)/src/main.d $(UNIT_BINS:=.d) $(FAKE_BINS:=.d)
