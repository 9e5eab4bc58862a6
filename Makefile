# ebpftop: set-up, run, test.  Every target is idempotent: a second run skips
# what is already done.  Run as root (sudo make ...).

SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
KREL := $(shell uname -r)
ARCH := $(shell dpkg --print-architecture 2>/dev/null)
# What ebpftop needs to run: BCC and its Python bindings, bpftool, venv.
RUN_PACKAGES := python3-bpfcc bpfcc-tools libbpfcc bpftool python3-venv
# What the tests and the benchmark add: gcc builds the workloads; bpftrace and
# strace are the benchmark's peers; the Prometheus server is what the
# exporter's end-to-end test scrapes with (its service is not left running);
# tmux and rsvg-convert serve the start-up benchmark and the screenshots;
# nft drops segments on loopback for the TCP retransmit test; docker.io (with
# libc6-dev for a static workload) runs the container tests; pipx installs the
# wheel as a user would (tests/kernel/test_install.py), and groff checks that
# the man page renders without a warning.
TEST_PACKAGES := gcc libc6-dev bpftrace strace prometheus tmux librsvg2-bin debootstrap nftables docker.io pipx groff-base
SYSTEM_PYTHON := /usr/bin/python3

.PHONY: setup packages test-packages headers tracefs venv path manpage completion generated userspaces run lint test test-unit test-kernel screenshots snapshots bench clean

setup: packages headers tracefs venv path manpage completion

# Other Debian userspaces (their own BCC and Python) for the compatibility
# matrix of the kernel tests (tests/kernel/test_compat.py): built once, kept
# outside the repository, a few minutes each the first time.
USERSPACE_CACHE ?= /var/cache/ebpftop/userspace
USERSPACES := bullseye trixie

# $(call apt_install,PACKAGES,WHAT): install those not installed yet.  A
# Prometheus server that Debian's package starts (systemd) is stopped and
# disabled again: the tests start their own, on loopback.
define apt_install
	@missing=""; for p in $(1); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "install ok installed" || missing="$$missing $$p"; \
	done; \
	if [ -z "$$missing" ]; then echo "setup: $(2) already installed"; exit 0; fi; \
	echo "setup: installing$$missing"; \
	apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
	case " $$missing " in *" prometheus "*) \
	  if [ -d /run/systemd/system ]; then \
	    systemctl disable --now prometheus.service >/dev/null 2>&1 && echo "setup: stopped and disabled the prometheus service the package started"; \
	  fi;; \
	esac
endef

# Without apt: say what to install, by package manager, instead of failing
# obscurely further on.
packages:
	@if ! command -v apt-get >/dev/null; then \
	  if python3 -c 'import bcc' 2>/dev/null && command -v bpftool >/dev/null; then echo "setup: BCC and bpftool present"; exit 0; fi; \
	  echo "setup: error: no apt-get here; install BCC's Python bindings, bpftool, kernel headers and python3 venv with:" >&2; \
	  echo "  Fedora/RHEL: dnf install python3-bcc bcc-tools bpftool kernel-devel-\$$(uname -r)" >&2; \
	  echo "  Arch:        pacman -S python-bcc bcc-tools bpf linux-headers" >&2; \
	  echo "  openSUSE:    zypper install python3-bcc bcc-tools bpftool kernel-default-devel" >&2; \
	  echo "then run make setup again." >&2; exit 1; \
	fi
	$(call apt_install,$(RUN_PACKAGES),packages to run ebpftop)

test-packages:
	$(call apt_install,$(TEST_PACKAGES),test and benchmark tools)

# BCC compiles against /lib/modules/$(uname -r)/build.  Use the headers of the
# running kernel when the distribution has them; otherwise link its generic
# headers there (fine for ebpftop, which reads no kernel struct) and say so.
headers:
	@build=/lib/modules/$(KREL)/build; \
	if [ -e $$build/Makefile ]; then echo "setup: kernel headers present at $$build"; exit 0; fi; \
	apt-get update -qq; \
	if apt-cache show linux-headers-$(KREL) >/dev/null 2>&1; then \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq linux-headers-$(KREL) >/dev/null; \
	  echo "setup: installed linux-headers-$(KREL)"; exit 0; \
	fi; \
	for meta in linux-headers-$(ARCH) linux-headers-generic; do \
	  apt-cache show $$meta >/dev/null 2>&1 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$meta >/dev/null && break; \
	done; \
	tree=$$(ls -d /usr/src/linux-headers-*-$(ARCH) /usr/src/linux-headers-*-generic 2>/dev/null | sort -V | tail -n 1); \
	if [ -z "$$tree" ]; then echo "setup: error: no kernel headers package found for $(KREL)" >&2; exit 1; fi; \
	common=$$(ls -d $${tree%-*}-common 2>/dev/null || true); \
	mkdir -p /lib/modules/$(KREL); \
	ln -sfn $$tree $$build; \
	[ -n "$$common" ] && ln -sfn $$common /lib/modules/$(KREL)/source; \
	echo "setup: WARNING: no headers package for kernel $(KREL); linked the generic $$tree at $$build." ; \
	echo "setup: WARNING: ebpftop reads only tracepoint arguments, so this works for it; other BCC tools that read kernel structs may not."

tracefs:
	@mountpoint -q /sys/kernel/tracing || { mount -t tracefs nodev /sys/kernel/tracing && echo "setup: mounted tracefs"; }
	@mountpoint -q /sys/kernel/debug || { mount -t debugfs nodev /sys/kernel/debug && echo "setup: mounted debugfs"; }
	@echo "setup: tracefs and debugfs mounted"

# The system Python (it has BCC) with --system-site-packages, so the venv sees BCC.
$(VENV)/.installed: pyproject.toml
	@[ -x $(PY) ] || $(SYSTEM_PYTHON) -m venv --system-site-packages $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check -e '.[test]'
	@touch $@

venv: $(VENV)/.installed
	@echo "setup: $(VENV) ready"

# sudo searches only its secure_path (/usr/local/sbin:/usr/local/bin:...):
# a link there makes "sudo ebpftop" work as typed.
path: venv
	@ln -sfn "$(CURDIR)/$(VENV)/bin/ebpftop" /usr/local/bin/ebpftop
	@echo "setup: /usr/local/bin/ebpftop -> $(CURDIR)/$(VENV)/bin/ebpftop"

# The man page and the bash completion, generated from the argument parser
# and committed (tests/unit/test_install.py fails when they are stale: then
# make generated).  Installed where man and bash-completion look under
# /usr/local; install(1) replaces the file, it never writes through a link.
MAN_PAGE := /usr/local/share/man/man8/ebpftop.8
COMPLETION := /usr/local/share/bash-completion/completions/ebpftop

manpage:
	@if cmp -s docs/ebpftop.8 $(MAN_PAGE); then echo "setup: $(MAN_PAGE) up to date"; \
	else install -D -m 0644 docs/ebpftop.8 $(MAN_PAGE) && echo "setup: installed $(MAN_PAGE) (man ebpftop)"; fi

completion:
	@if cmp -s docs/ebpftop.bash $(COMPLETION); then echo "setup: $(COMPLETION) up to date"; \
	else install -D -m 0644 docs/ebpftop.bash $(COMPLETION) && echo "setup: installed $(COMPLETION)"; fi

generated: venv
	$(PY) -m ebpftop.manpage > docs/ebpftop.8
	$(PY) -m ebpftop.completion > docs/ebpftop.bash

userspaces:
	@command -v debootstrap >/dev/null || $(MAKE) --no-print-directory TEST_PACKAGES=debootstrap test-packages
	@pids=""; for r in $(USERSPACES); do \
	  bash tests/compat/userspace.sh build $$r $(USERSPACE_CACHE)/$$r & pids="$$pids $$!"; \
	done; rc=0; for p in $$pids; do wait $$p || rc=1; done; exit $$rc

run: setup
	$(VENV)/bin/ebpftop $(ARGS)

# ruff (pinned in the test extras): configured in pyproject.toml
lint: venv
	$(PY) -m ruff check ebpftop tests

# The unit and UI tiers first, without privilege (they need none, and a UI
# failure then shows in about two minutes, before the kernel tests' five);
# then the kernel tier, as root.
UNPRIVILEGED := $(shell [ "$$(id -u)" = 0 ] && command -v setpriv >/dev/null && \
	echo setpriv --reuid=nobody --regid=nogroup --clear-groups env HOME=/tmp PYTHONDONTWRITEBYTECODE=1)

test: setup test-packages userspaces lint
	$(UNPRIVILEGED) $(PY) -m pytest -p no:cacheprovider tests/unit tests/ui
	$(PY) -m pytest tests/kernel

test-unit: venv
	$(PY) -m pytest tests/unit tests/ui

test-kernel: setup test-packages userspaces
	$(PY) -m pytest tests/kernel

# Refresh the UI's SVG snapshots after an intended change (review them first).
snapshots: venv
	$(PY) -m pytest tests/ui --snapshot-update

screenshots: venv
	$(PY) -m tests.ui.export_screenshots screenshots
	@# PNGs to look at (not committed; rsvg-convert collapses the SVGs' no-break spaces)
	@command -v rsvg-convert >/dev/null && for f in screenshots/*.svg; do rsvg-convert "$$f" -o "$${f%.svg}.png"; done || true

bench: setup test-packages
	$(PY) -m tests.bench.run

clean:
	rm -rf $(VENV) .pytest_cache
