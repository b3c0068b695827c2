#!/usr/bin/env bash
# Makes sure a Vulkan driver is present, so wgpu finds an adapter.
# When none is found it installs Mesa's lavapipe (software Vulkan on the CPU) with apt-get:
# directly as root, through sudo otherwise (saying so first), or stops with what to install.
set -euo pipefail

# wgpu/Mesa warn without a runtime dir; headless machines and CI often lack one.
if [ -z "${XDG_RUNTIME_DIR:-}" ]; then
    export XDG_RUNTIME_DIR="${TMPDIR:-/tmp}/wgpu-quant-xdg-$(id -u)"
    mkdir -p "$XDG_RUNTIME_DIR" && chmod 700 "$XDG_RUNTIME_DIR"
fi

have_vulkan() {
    # A Vulkan loader plus at least one installed driver (ICD) manifest.
    ldconfig -p 2>/dev/null | grep 'libvulkan\.so\.1' >/dev/null || return 1
    # Manifests named by the loader's own variables count too.
    local f
    for f in $(printf '%s' "${VK_DRIVER_FILES:-${VK_ICD_FILENAMES:-}}" | tr ':' ' '); do
        [ -f "$f" ] && return 0
    done
    for dir in /usr/share/vulkan/icd.d /etc/vulkan/icd.d /usr/local/share/vulkan/icd.d; do
        compgen -G "$dir/*.json" >/dev/null && return 0
    done
    return 1
}

if [ "$(uname -s)" != "Linux" ]; then
    return 0 2>/dev/null || exit 0 # Metal/DX12 need no extra driver.
fi

if have_vulkan; then
    return 0 2>/dev/null || exit 0
fi

packages="mesa-vulkan-drivers libvulkan1"
if ! command -v apt-get >/dev/null 2>&1; then
    echo "No Vulkan driver found and apt-get is unavailable. Install Mesa's Vulkan drivers" >&2
    echo "(lavapipe, e.g. 'mesa-vulkan-drivers' / 'vulkan-swrast') or a GPU driver, then rerun." >&2
    exit 1
fi
if [ "$(id -u)" -eq 0 ]; then
    sudo_cmd=""
elif command -v sudo >/dev/null 2>&1; then
    sudo_cmd="sudo"
else
    echo "No Vulkan driver found. As root, run: apt-get install -y $packages" >&2
    exit 1
fi
echo "No Vulkan driver found: installing Mesa's lavapipe software Vulkan ($packages) with ${sudo_cmd:-root} apt-get." >&2

# Another apt/dpkg (unattended-upgrades on a freshly booted VM, a second shell) may hold the
# package locks. Wait for them, up to WGPU_QUANT_APT_LOCK_TIMEOUT seconds (default 300), and
# say so, instead of failing on the first "Could not get lock".
apt_lock_timeout="${WGPU_QUANT_APT_LOCK_TIMEOUT:-300}"
apt_get_waiting() {
    local deadline=$((SECONDS + apt_lock_timeout)) said="" out status
    while :; do
        status=0
        # DPkg::Lock::Timeout makes apt itself wait for the dpkg frontend lock (apt >= 1.9.11;
        # older versions ignore it); the loop covers the lists lock of 'update' and old apt.
        out=$($sudo_cmd env DEBIAN_FRONTEND=noninteractive apt-get \
            -o DPkg::Lock::Timeout="$apt_lock_timeout" "$@" 2>&1) || status=$?
        if [ "$status" -eq 0 ]; then
            [ -n "$out" ] && printf '%s\n' "$out" >&2
            return 0
        fi
        if printf '%s' "$out" | grep -qiE 'could not get lock|unable to acquire the dpkg frontend lock|unable to lock|is another process using it'; then
            if [ "$SECONDS" -lt "$deadline" ]; then
                if [ -z "$said" ]; then
                    echo "Another apt/dpkg process holds the package lock (unattended upgrades?); waiting up to ${apt_lock_timeout} s for it to finish..." >&2
                    said=1
                fi
                sleep 5
                continue
            fi
            printf '%s\n' "$out" >&2
            echo "Gave up after ${apt_lock_timeout} s: the apt/dpkg lock is still held. Rerun when the other package operation has finished (or set WGPU_QUANT_APT_LOCK_TIMEOUT)." >&2
            return 1
        fi
        printf '%s\n' "$out" >&2
        return "$status"
    done
}
apt_get_waiting update -qq
apt_get_waiting install -y -qq $packages
have_vulkan || { echo "Installed $packages but still no Vulkan driver manifest found." >&2; exit 1; }
