# shellcheck shell=bash
# Shared helpers for scripts/run and scripts/test. Source it; do not run it.

# Prints a step banner on stderr.
step() { printf '\n==> %s\n' "$*" >&2; }

# Prints a note on stderr.
note() { printf '%s: %s\n' "${0##*/}" "$*" >&2; }

# Prints an error on stderr and exits.
die() {
    printf '%s: error: %s\n' "${0##*/}" "$*" >&2
    exit 1
}

# Puts rustup's cargo on PATH when the login shell has not done it (CI, sudo).
ensure_cargo_on_path() {
    if ! command -v cargo >/dev/null 2>&1 && [[ -f "$HOME/.cargo/env" ]]; then
        # shellcheck source=/dev/null
        . "$HOME/.cargo/env"
    fi
}

# Installs Debian packages with apt-get when running as root; otherwise exits
# with the command to run.
apt_install() {
    if [[ $EUID -ne 0 ]] || ! command -v apt-get >/dev/null 2>&1; then
        die "missing $*; install it first, e.g.: sudo apt-get install -y $*"
    fi
    step "apt-get install -y $*"
    # The lock timeout lets this wait for another apt-get instead of failing.
    DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=300 update -q \
        || die "apt-get update failed"
    DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=300 install -y -q "$@" \
        || die "apt-get install $* failed"
}

# Makes sure a redis-server binary is available: $REDIS_SERVER if set, else
# one on PATH, else installs the Debian package.
ensure_redis_server() {
    if [[ -n ${REDIS_SERVER:-} ]]; then
        [[ -x $REDIS_SERVER ]] || die "REDIS_SERVER=$REDIS_SERVER is not an executable file"
        return
    fi
    command -v redis-server >/dev/null 2>&1 || apt_install redis-server
    command -v redis-server >/dev/null 2>&1 || die "redis-server is still not on PATH"
}

# Prints the path of libfaketime's preload library (Debian's package puts it
# in /usr/lib/<arch>/faketime/); fails when there is none.
find_libfaketime() {
    local lib
    for lib in /usr/lib/*/faketime/libfaketime.so.1 /usr/lib/faketime/libfaketime.so.1; do
        if [[ -f $lib ]]; then
            printf '%s\n' "$lib"
            return 0
        fi
    done
    return 1
}

# Makes sure libfaketime is available for the skewed-clock test and exports
# LIBFAKETIME (the test then requires it): $LIBFAKETIME if set, else the
# installed library, else installs the Debian package (as root). Without root
# it says so and goes on: the test then skips itself, saying so too.
ensure_libfaketime() {
    if [[ -n ${LIBFAKETIME:-} ]]; then
        [[ -f $LIBFAKETIME ]] || die "LIBFAKETIME=$LIBFAKETIME is not a file"
        export LIBFAKETIME
        return
    fi
    if ! find_libfaketime >/dev/null; then
        if [[ $EUID -ne 0 ]] || ! command -v apt-get >/dev/null 2>&1; then
            note "libfaketime is missing, so the skewed-clock test will be skipped; install it with: sudo apt-get install -y libfaketime"
            return
        fi
        apt_install libfaketime
    fi
    LIBFAKETIME=$(find_libfaketime) || die "libfaketime is still not installed"
    export LIBFAKETIME
}

# Loads KEY=value lines from a dotenv file into the environment (exported).
# A variable already set to a non-empty value in the environment wins over the
# file, as with `docker compose` and most dotenv loaders, so
# `RUST_LOG=debug scripts/run` works with a .env present.
load_env_file() {
    local _lef_file=$1 _lef_line _lef_name _lef_kv
    local -a _lef_keep=()
    while IFS= read -r _lef_line || [[ -n $_lef_line ]]; do
        if [[ $_lef_line =~ ^[[:space:]]*(export[[:space:]]+)?([A-Za-z_][A-Za-z0-9_]*)= ]]; then
            _lef_name=${BASH_REMATCH[2]}
            if [[ -n ${!_lef_name:-} ]]; then
                _lef_keep+=("$_lef_name=${!_lef_name}")
            fi
        fi
    done <"$_lef_file"
    set -a
    # shellcheck source=/dev/null
    . "$_lef_file"
    set +a
    for _lef_kv in "${_lef_keep[@]}"; do
        export "${_lef_kv%%=*}=${_lef_kv#*=}"
    done
}

# Splits a redis:// or rediss:// URL into REDIS_HOST, REDIS_PORT and
# REDIS_PASSWORD (empty when none). Returns 1 for other URLs (unix sockets).
# shellcheck disable=SC2034 # the variables are the result, read by callers
parse_redis_url() {
    local re='^rediss?://(([^:@/]*)(:([^@/]*))?@)?(\[[^]/]*\]|[^:/?#]*)(:([0-9]+))?([/?#].*)?$'
    [[ $1 =~ $re ]] || return 1
    REDIS_PASSWORD=${BASH_REMATCH[4]}
    REDIS_HOST=${BASH_REMATCH[5]:-127.0.0.1}
    REDIS_HOST=${REDIS_HOST#[}
    REDIS_HOST=${REDIS_HOST%]}
    REDIS_PORT=${BASH_REMATCH[7]:-6379}
}

# True when something accepts TCP connections at host:port.
tcp_open() {
    # shellcheck disable=SC2016 # $1 and $2 expand in the inner bash
    timeout 2 bash -c 'exec 3<>"/dev/tcp/$1/$2"' _ "$1" "$2" 2>/dev/null
}

# True when a Redis server answers PING at the URL. Without redis-cli, falls
# back to "something listens on the port".
redis_answers() {
    local url=$1
    if command -v redis-cli >/dev/null 2>&1; then
        [[ $(timeout 3 redis-cli --no-auth-warning -u "$url" ping 2>/dev/null) == PONG ]]
    else
        parse_redis_url "$url" && tcp_open "$REDIS_HOST" "$REDIS_PORT"
    fi
}

# The URL with any password replaced by ***, for messages.
redact_url() {
    # shellcheck disable=SC2001 # a sed is clearer than nested expansions here
    sed -E 's#^([a-z+]+://[^:@/]*:)[^@/]*@#\1***@#' <<<"$1"
}
