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
$sudo_cmd apt-get update -qq >&2
DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq $packages >&2
have_vulkan || { echo "Installed $packages but still no Vulkan driver manifest found." >&2; exit 1; }
