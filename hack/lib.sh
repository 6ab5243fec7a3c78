# Shared set-up steps for hack/ scripts. Each installs or starts a dependency only when it is missing.

log() { printf '==> %s\n' "$*" >&2; }

apt_install() {
  log "installing $* from Debian packages"
  if [ -z "${BERTH_APT_UPDATED:-}" ]; then
    DEBIAN_FRONTEND=noninteractive apt-get update -qq
    export BERTH_APT_UPDATED=1
  fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

ensure_git() {
  command -v git >/dev/null 2>&1 || apt_install git
  # git daemon and git http-backend ship in Debian's git package (git-core libexec); the tests look them up there.
  [ -x "$(git --exec-path)/git-daemon" ] || apt_install git
}

# ensure_sshd installs OpenSSH's server and key tools; tests start their own sshd on a free 127.0.0.1 port with
# their own configuration (no system service is used), and sign commits with ssh-keygen and gpg.
ensure_sshd() {
  [ -x /usr/sbin/sshd ] || apt_install openssh-server
  command -v ssh-keygen >/dev/null 2>&1 || apt_install openssh-client
  command -v gpg >/dev/null 2>&1 || apt_install gnupg
}

# ensure_docker makes sure a Docker engine answers, starting one when the machine has none running.
# ensure_registry installs the CNCF distribution server (Debian's docker-registry); tests start their own on
# loopback, never the system service.
ensure_registry() {
  command -v docker-registry >/dev/null 2>&1 || apt_install docker-registry
}

ensure_docker() {
  if docker info >/dev/null 2>&1; then return 0; fi
  command -v dockerd >/dev/null 2>&1 || apt_install docker.io
  command -v docker >/dev/null 2>&1 || apt_install docker-cli
  log "starting dockerd"
  (dockerd >/tmp/berth-dockerd.log 2>&1 &)
  for _ in $(seq 1 60); do
    docker info >/dev/null 2>&1 && return 0
    sleep 1
  done
  log "dockerd did not start; its log:"; tail -50 /tmp/berth-dockerd.log >&2
  return 1
}

# on_exit adds a command to what runs when the calling script exits, keeping the ones added before (a plain
# `trap ... EXIT` would replace them).
berth_exit_cmds=()
on_exit() {
  berth_exit_cmds+=("$1")
  trap 'for c in "${berth_exit_cmds[@]}"; do eval "$c"; done' EXIT
}

# ensure_swarm puts the engine in swarm mode (one manager on 127.0.0.1) for the swarm tests, when it is not in it
# already, and leaves the swarm again when the calling script exits: the engine is left as found.
ensure_swarm() {
  local state
  state=$(docker info --format '{{.Swarm.LocalNodeState}}' 2>/dev/null || echo unknown)
  [ "$state" = "active" ] && return 0
  log "initialising swarm mode on 127.0.0.1 for the tests"
  docker swarm init --advertise-addr 127.0.0.1 --listen-addr 127.0.0.1:2377 >/dev/null
  on_exit 'docker swarm leave --force >/dev/null 2>&1 || true'
}
