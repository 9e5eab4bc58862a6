# ebpftop in a container: Debian's BCC (python3-bpfcc) and bpftool, ebpftop
# in a venv that sees them.  At the repository's root so that
# `docker build -t ebpftop .` is the whole command; .dockerignore keeps the
# context to what the image installs.  How to run it (the host's pid and
# cgroup namespaces, /sys, the kernel headers, the capabilities): docs/deploy.md.
#
#   BASE            another Debian or Ubuntu with python3-bpfcc
#   PIP_INDEX_URL, PIP_FIND_LINKS, PIP_NO_INDEX
#                   pip's own settings, for a mirror or a wheelhouse (a build
#                   sees neither the host's pip.conf nor its environment)
ARG BASE=debian:trixie
FROM ${BASE}

# apt-get update only when a package is missing: a base that has them all
# (an offline mirror's image, the tests' Debian userspace) builds without a
# network.
RUN set -e; missing=""; \
    for p in python3-bpfcc bpftool python3-venv; do \
      dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"; \
    done; \
    if [ -n "$missing" ]; then \
      apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends $missing \
      && rm -rf /var/lib/apt/lists/*; \
    fi; \
    python3 -m venv --system-site-packages /opt/ebpftop/.venv

ARG PIP_INDEX_URL
ARG PIP_FIND_LINKS
ARG PIP_NO_INDEX
COPY . /src
RUN /opt/ebpftop/.venv/bin/pip install --no-cache-dir --disable-pip-version-check /src && rm -rf /src

ENTRYPOINT ["/opt/ebpftop/.venv/bin/ebpftop"]
