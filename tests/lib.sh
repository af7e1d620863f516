# What tests/run.sh and the benchmarks in tests/bench/ share (sourced, not run).

# need_pkg COMMAND PACKAGE: installs the Debian package when the command is missing
# (apt-get update once per run); exits when it still is.
apt_updated=
need_pkg() {
  command -v "$1" >/dev/null 2>&1 && return 0
  if [ -z "$apt_updated" ]; then apt-get update -qq >/dev/null; apt_updated=1; fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$2" >/dev/null
  command -v "$1" >/dev/null 2>&1 || { echo "could not install $2"; exit 1; }
}
