#!/usr/bin/env bash
# A scratch ext4 file system with a journal, for the benches to write their backups on (Linux, root).
#
#   bash bench/scratch-ext4.sh /bench-ext4 [SIZE]   # makes and mounts it (SIZE default 32G); prints it
#   BENCH_DIR=/bench-ext4 node --import tsx bench/backup-throughput.ts
#   bash bench/scratch-ext4.sh --remove /bench-ext4 # unmounts it and deletes its image
#
# Why: these build machines' own disk is ext4 without a journal, where creating a file skips every
# recently deleted inode nearby (bench/lib/measure.ts, describeFileSystem), so small-file figures
# depend on what the run before deleted. A user's ext4 has a journal. The image is a file beside
# the mount point (MOUNTPOINT.img), written through once so that no first write to it allocates
# blocks underneath; the loop device uses direct I/O, so its pages are not cached twice.
set -euo pipefail

usage() {
  echo "usage: bash bench/scratch-ext4.sh MOUNTPOINT [SIZE] | --remove MOUNTPOINT" >&2
  exit 2
}

if [[ "${1:-}" == "--remove" ]]; then
  mnt="${2:-}"
  [[ -n "$mnt" && "$mnt" == /* ]] || usage
  img="$mnt.img"
  # Only what this script made: a mount of a loop device whose file is MOUNTPOINT.img.
  dev="$(findmnt -n -o SOURCE --mountpoint "$mnt" || true)"
  back="$( [[ "$dev" == /dev/loop* ]] && losetup -n -O BACK-FILE "$dev" || true)"
  if [[ -z "$dev" || "$(realpath -m "$back")" != "$(realpath -m "$img")" ]]; then
    echo "scratch-ext4.sh: $mnt is not a scratch file system made from $img; nothing removed" >&2
    exit 1
  fi
  umount "$mnt"
  losetup -d "$dev"
  rm -f "$img"
  rmdir "$mnt" 2>/dev/null || true
  exit 0
fi

mnt="${1:-}"
size="${2:-32G}"
[[ -n "$mnt" && "$mnt" == /* ]] || usage
if [[ "$(id -u)" != 0 ]]; then
  echo "scratch-ext4.sh: needs root (losetup, mount)" >&2
  exit 1
fi
for tool in mkfs.ext4 losetup mountpoint findmnt numfmt; do
  command -v "$tool" >/dev/null || {
    echo "scratch-ext4.sh: $tool is missing (apt-get install e2fsprogs util-linux coreutils)" >&2
    exit 1
  }
done
img="$mnt.img"
# Never over something that is there already: a file of that name, or a folder with files in it.
if [[ -e "$img" ]]; then
  echo "scratch-ext4.sh: $img exists; choose another MOUNTPOINT, or --remove the one made before" >&2
  exit 1
fi
if [[ -e "$mnt" && -n "$(ls -A "$mnt" 2>/dev/null)" ]] || mountpoint -q "$mnt"; then
  echo "scratch-ext4.sh: $mnt is not an empty folder; choose another MOUNTPOINT" >&2
  exit 1
fi
bytes="$(numfmt --from=iec "$size")"

dev=""
cleanup() {
  # Only on failure: what this run made, and nothing else.
  if [[ -n "$dev" ]]; then losetup -d "$dev" 2>/dev/null || true; fi
  rm -f "$img"
}
trap cleanup ERR
# Written once through (zeros), not sparse: first writes would otherwise allocate under the bench.
dd if=/dev/zero of="$img" bs=16M count="$((bytes / 16777216))" oflag=direct status=none
# Inode tables and journal written now, not by a background thread during the benches.
mkfs.ext4 -q -F -E lazy_itable_init=0,lazy_journal_init=0 "$img"
dev="$(losetup --direct-io=on -f --show "$img")"
mkdir -p "$mnt"
mount "$dev" "$mnt"
trap - ERR
echo "$mnt"
