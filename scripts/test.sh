#!/usr/bin/env bash
# The whole test suite, as CI runs it. Works on a fresh Debian machine: installs what the tests
# need (a C toolchain and make, openssl, nginx, prometheus/promtool, python3-yaml, and the
# foreign TLS servers gnutls-bin, stunnel4, haproxy, apache2, the STARTTLS daemons postfix,
# dovecot, slapd, prosody, postgresql, mariadb-server, vsftpd, inn2, and chromium + chromium-driver
# for the status page's browser test), then runs
# formatting, lints, the single-crypto-provider guard, every test, and the deploy checks.
set -euo pipefail
cd "$(dirname "$0")/.."

need_pkgs=()
command -v cc >/dev/null || need_pkgs+=(gcc libc6-dev)   # ring's and jemalloc's C parts
command -v make >/dev/null || need_pkgs+=(make)            # jemalloc's build
command -v openssl >/dev/null || need_pkgs+=(openssl)
command -v nginx >/dev/null || [ -x /usr/sbin/nginx ] || need_pkgs+=(nginx-light)
command -v promtool >/dev/null || need_pkgs+=(prometheus)
command -v curl >/dev/null || need_pkgs+=(curl)
command -v systemd-analyze >/dev/null || need_pkgs+=(systemd)
python3 -c 'import yaml' 2>/dev/null || need_pkgs+=(python3-yaml)
# The real kustomize (`kubectl kustomize`) renders the Kubernetes manifests for check-deploy.
# This machine kind ships kubectl 1.32 (kustomize v5). Debian 12's kubernetes-client is the
# fallback, but its kubectl 1.20 embeds kustomize v2.0.3, which predates the `labels:` field
# the manifests use (they target Kubernetes >= 1.28 anyway, for the pod-index label): with it
# check-deploy reports "unknown field labels" and fails.
command -v kubectl >/dev/null || need_pkgs+=(kubernetes-client)
# Foreign TLS stacks for tests/it/fidelity.rs (servers nobody here wrote).
command -v gnutls-serv >/dev/null || need_pkgs+=(gnutls-bin)
command -v stunnel4 >/dev/null || need_pkgs+=(stunnel4)
command -v haproxy >/dev/null || [ -x /usr/sbin/haproxy ] || need_pkgs+=(haproxy)
command -v apache2 >/dev/null || [ -x /usr/sbin/apache2 ] || need_pkgs+=(apache2)
# Real STARTTLS daemons for tests/it/starttls.rs.
[ -x /usr/sbin/postfix ] || need_pkgs+=(postfix)
[ -x /usr/sbin/dovecot ] || need_pkgs+=(dovecot-imapd dovecot-pop3d dovecot-lmtpd dovecot-managesieved)
[ -x /usr/sbin/slapd ] || need_pkgs+=(slapd)
[ -x /usr/bin/prosody ] || need_pkgs+=(prosody)
[ -x /usr/lib/postgresql/15/bin/postgres ] || need_pkgs+=(postgresql)
[ -x /usr/sbin/mariadbd ] || need_pkgs+=(mariadb-server)
[ -x /usr/sbin/vsftpd ] || need_pkgs+=(vsftpd)
# A real DNS server for tests/it/discovery_dns.rs (SRV/A/AAAA/CNAME zone, unbound-control reload).
[ -x /usr/sbin/unbound ] && [ -x /usr/sbin/unbound-control ] || need_pkgs+=(unbound)
# kubectl kustomize renders the manifests for tests/it/healthcheck.rs. It needs kustomize v4+
# (the base uses `labels:`): the machine image's kubectl (v1.32, kustomize v5.5) does; Debian
# bookworm's kubernetes-client (v1.20, kustomize v2.0.3) fails with 'unknown field "labels"',
# so it is only the fallback when no kubectl is installed.
command -v kubectl >/dev/null || need_pkgs+=(kubernetes-client)
# A real browser for tests/it/statuspage_browser.rs: Debian's chromium, driven headless through
# its WebDriver (chromium-driver ships /usr/bin/chromedriver of the same version).
command -v chromium >/dev/null || need_pkgs+=(chromium)
command -v chromedriver >/dev/null || need_pkgs+=(chromium-driver)
# Proxies for tests/it/proxy.rs.
[ -x /usr/bin/tinyproxy ] || need_pkgs+=(tinyproxy)
[ -x /usr/sbin/danted ] || need_pkgs+=(dante-server)
if [ ${#need_pkgs[@]} -gt 0 ]; then
  echo "== installing: ${need_pkgs[*]}"
  export DEBIAN_FRONTEND=noninteractive
  # postfix and slapd ask questions on install: no system configuration (the tests write their
  # own).
  echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections
  echo "slapd slapd/no_configuration boolean true" | debconf-set-selections
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need_pkgs[@]}" >/dev/null
fi
# INN's innd for the NNTP case of tests/it/starttls.rs. inn2's postinst fails twice on a fresh
# machine: it runs newaliases when /etc/aliases lacks `usenet:` (postfix installed with "No
# configuration" has no main.cf, so newaliases fails), and it needs a domain in inn.conf (this
# machine's hostname is not an FQDN). So: the alias first, the install (whose configure step
# fails), the domain, then configure again.
if [ ! -x /usr/lib/news/bin/innd ] || ! dpkg -s inn2 2>/dev/null | grep -q '^Status: install ok installed'; then
  echo "== installing: inn2"
  export DEBIAN_FRONTEND=noninteractive
  grep -q '^usenet:' /etc/aliases 2>/dev/null || echo 'usenet: root' >> /etc/aliases
  [ ${#need_pkgs[@]} -gt 0 ] || apt-get update -qq
  apt-get install -y -qq --no-install-recommends inn2 >/dev/null 2>&1 || true
  grep -q '^domain:' /etc/news/inn.conf || sed -i 's/^#domain:.*/domain: localdomain/' /etc/news/inn.conf
  dpkg --configure -a
fi
# Debian starts the packaged services on install; the tests start their own on loopback ports
# of their choosing, so stop the packaged ones (by service, never by process name).
svcs="nginx prometheus haproxy apache2 stunnel4 postfix dovecot slapd prosody postgresql mariadb vsftpd tinyproxy danted inn2"
systemctl stop $svcs 2>/dev/null || true
for svc in $svcs; do
  service "$svc" stop 2>/dev/null || true
done

echo "== cargo fmt --check"
cargo fmt --all -- --check

echo "== one crypto provider (ring): aws-lc-rs must not be in the tree"
if cargo tree --locked -i aws-lc-rs >/dev/null 2>&1; then
  echo "aws-lc-rs entered the dependency tree:"; cargo tree --locked -i aws-lc-rs; exit 1
fi
if cargo tree --locked -i openssl-sys >/dev/null 2>&1; then
  echo "openssl-sys entered the dependency tree"; exit 1
fi

echo "== cargo deny (licences, bans, sources; deny.toml)"
# The advisories check needs the RustSec database, a git repository on GitHub that this CI
# machine cannot reach; licences, banned crates and sources are checked offline.
if ! cargo deny --version >/dev/null 2>&1; then
  cargo install --locked cargo-deny@0.20.2
fi
cargo deny --locked check licenses bans sources
echo "== cargo clippy"
cargo clippy --locked --all-targets -- -D warnings

echo "== cargo test"
cargo test --locked --all-targets 2>&1 | tee /tmp/certprobe-test.log
echo "== doc tests"
cargo test --locked --doc
echo "== cargo doc (warnings are errors: broken intra-doc links)"
RUSTDOCFLAGS="-D warnings" cargo doc --locked --no-deps

if [ -x scripts/check-deploy.sh ]; then
  echo "== deploy artefacts (promtool rules/tests, dashboard, manifests)"
  scripts/check-deploy.sh --binary target/debug/certprobe
fi
if [ -x scripts/build-release.sh ]; then
  # No docker engine here: run the exact steps the Dockerfile's build stage runs.
  echo "== the container's build steps (release build, strip, smoke run)"
  scripts/build-release.sh --check
  release_out=$(mktemp -d)
  scripts/build-release.sh --out "$release_out"
  rm -rf "$release_out"
fi
if [ -x scripts/e2e.sh ]; then
  echo "== end to end with a real Prometheus"
  scripts/e2e.sh
fi
if [ -x scripts/e2e-shards.sh ]; then
  echo "== shards end to end: 3 daemons --shard i/3, one real Prometheus"
  scripts/e2e-shards.sh
fi
echo "== all checks passed"
