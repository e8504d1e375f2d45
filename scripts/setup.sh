# Sourced by the entry points: one-time set-up of a fresh Debian/Ubuntu machine.
#  - a virtual environment in .venv with the project and its Python dependencies;
#  - the Arm toolchain (and, for the tests, gdb-multiarch, dfu-util, usbip) from the distribution.
# Re-running is cheap: each step checks first.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

PY="${PYTHON:-python3}"
if ! "$PY" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)' 2>/dev/null; then
    echo "error: Python 3.11 or newer is needed ($PY is $("$PY" --version 2>&1))" >&2
    exit 2
fi

apt_install() {  # apt_install PKG... : install Debian packages, as root or through sudo (exit 2 if not)
    local missing=()
    for p in "$@"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
    [ ${#missing[@]} -eq 0 ] && return 0
    local SUDO=""
    if [ "$(id -u)" -ne 0 ]; then
        if command -v sudo >/dev/null && sudo -n true 2>/dev/null; then SUDO="sudo"; else
            echo "error: missing Debian packages: ${missing[*]}" >&2
            echo "       run: sudo apt-get install --no-install-recommends ${missing[*]}" >&2
            exit 2
        fi
    fi
    echo "== installing ${missing[*]} (apt-get, --no-install-recommends)"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

need_python_env() {
    local stamp=.venv/.h743sim-installed
    if [ ! -x .venv/bin/python ]; then
        echo "== creating .venv"
        "$PY" -m venv .venv
    fi
    if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
        echo "== installing Python dependencies into .venv"
        .venv/bin/python -m pip install -q --upgrade pip >/dev/null 2>&1 || true
        .venv/bin/python -m pip install -q -e ".[dev,gdb]" 2>&1 | grep -v '^WARNING: Location' || true
        .venv/bin/python -c 'import unicorn, usb, usbip, robot, elftools' || {
            echo "error: Python dependencies failed to install" >&2; exit 2; }
        touch "$stamp"
    fi
}

need_toolchain() {
    command -v arm-none-eabi-gcc >/dev/null || apt_install gcc-arm-none-eabi libnewlib-arm-none-eabi
    command -v make >/dev/null || apt_install make
}

need_test_tools() {
    # optional: the tests that need them skip with a reason when they are missing
    if ! (apt_install gdb-multiarch dfu-util usbip); then
        echo "warning: gdb-multiarch/dfu-util/usbip missing: the tests using them will be skipped" >&2
    fi
}

build_firmware() {
    echo "== building firmware (make -C firmware)"
    make -s -C firmware -j"$(nproc)"
}
