# Sourced by the bench scripts: wgpu needs the Vulkan loader (libvulkan.so.1), and a bare GPU
# machine may have the driver's ICD without it. A pack carries this machine's loader, and its
# run.sh uses it only where the system has none. NVIDIA's manifest names its GLX library, which
# finds no driver without an X server (headless: "Could not get 'vkCreateInstance'"); the EGL
# library is the same Vulkan driver without that need, so run.sh names it unless told otherwise.

# Copies the loader into DIR/lib (a note where this machine has none either).
pack_vulkan_loader() {
  local lib
  lib=$(ldconfig -p | awk '/libvulkan\.so\.1 .*x86-64/ {print $NF; exit}')
  if [ -n "$lib" ]; then
    mkdir -p "$1/lib" && cp -L "$lib" "$1/lib/libvulkan.so.1"
  else
    echo "pack: no Vulkan loader here to carry; run.sh relies on the GPU machine's"
  fi
}

# The lines a pack's run.sh starts with ("$here" is the pack's folder there).
vulkan_loader_fallback() {
  cat <<'LINES'
here=$(cd "$(dirname "$0")" && pwd)
if ! ldconfig -p | grep -q 'libvulkan\.so\.1 ' && [ -f "$here/lib/libvulkan.so.1" ]; then
  echo "run.sh: no Vulkan loader on this machine, using the packed one"
  export LD_LIBRARY_PATH="$here/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
fi
egl=$(ldconfig -p | awk '/libEGL_nvidia\.so\.0 .*x86-64/ {print $NF; exit}')
if [ -z "${VK_ICD_FILENAMES:-}" ] && [ -n "$egl" ]; then
  icd=$(mktemp --suffix=.json)
  printf '{"file_format_version": "1.0.1", "ICD": {"library_path": "%s", "api_version": "%s"}}\n' \
    "$egl" 1.3.0 > "$icd"
  export VK_ICD_FILENAMES="$icd"
  echo "run.sh: Vulkan through NVIDIA's EGL driver library ($egl)"
fi
LINES
}
