#!/bin/sh
# SARLANG Studio installer for Linux workstations: no network, no Python needed.
#
#   ./install.sh              per user: ~/.local/share/sarlang-studio, links in ~/.local/bin
#   sudo ./install.sh --system  for everyone: /opt/sarlang-studio, links in /usr/local/bin
#   ./install.sh --uninstall [--system]   (also: <install folder>/uninstall.sh)
#
# Options: --prefix DIR (install folder), --bindir DIR (where the sarlang/sarlang-cli links go),
# --datadir DIR (where applications/ and icons/ go). An install over an older version replaces
# the program folder only: settings (~/.config/sarlang-studio), the per-user models.json and
# caches are never touched. What was made outside the program folder is listed in its
# .install-manifest, and --uninstall removes exactly that.
set -eu

APP=sarlang-studio
HERE=$(cd "$(dirname "$0")" && pwd)
MODE=user
ACTION=install
PREFIX=
BINDIR=
DATADIR=

say() { printf '%s\n' "$*"; }
die() { printf 'install.sh: %s\n' "$*" >&2; exit 1; }

usage() {
    sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//'
    exit "${1:-0}"
}

parse_args() {
    while [ $# -gt 0 ]; do
        case "$1" in
            --user) MODE=user ;;
            --system) MODE=system ;;
            --uninstall) ACTION=uninstall ;;
            --prefix) [ $# -ge 2 ] || die "--prefix needs a folder"; PREFIX=$2; shift ;;
            --bindir) [ $# -ge 2 ] || die "--bindir needs a folder"; BINDIR=$2; shift ;;
            --datadir) [ $# -ge 2 ] || die "--datadir needs a folder"; DATADIR=$2; shift ;;
            -h|--help) usage 0 ;;
            *) printf 'install.sh: unknown option %s\n\n' "$1" >&2; usage 2 ;;
        esac
        shift
    done
}

set_paths() {
    if [ "$MODE" = system ]; then
        : "${PREFIX:=/opt/$APP}" "${BINDIR:=/usr/local/bin}" "${DATADIR:=/usr/local/share}"
    else
        [ -n "${HOME:-}" ] || die "HOME is not set: give --prefix, --bindir and --datadir"
        data_home=${XDG_DATA_HOME:-$HOME/.local/share}
        : "${PREFIX:=$data_home/$APP}" "${BINDIR:=$HOME/.local/bin}" "${DATADIR:=$data_home}"
    fi
    MANIFEST=$PREFIX/.install-manifest
    DESKTOP=$DATADIR/applications/$APP.desktop
    ICON=$DATADIR/icons/hicolor/256x256/apps/$APP.png
}

# A folder we can create and write in, or one plain sentence saying why not and what to do.
writable() {
    dir=$1
    probe=$dir
    while [ ! -e "$probe" ]; do probe=$(dirname "$probe"); done
    if ! mkdir -p "$dir" 2>/dev/null || ! ( : > "$dir/.write-test" ) 2>/dev/null; then
        hint="run it as root (sudo ./install.sh --system), or install for yourself only with --user"
        [ "$MODE" = user ] && hint="choose a folder you own with --prefix/--bindir/--datadir"
        die "cannot write to $dir (no write permission in $probe): nothing was installed; $hint"
    fi
    rm -f "$dir/.write-test"
}

find_program() {
    for candidate in "$HERE/$APP" "$HERE"; do
        if [ -x "$candidate/sarlang-cli" ] && [ -x "$candidate/sarlang" ] && [ -d "$candidate/_internal" ]; then
            PROGRAM=$candidate
            return
        fi
    done
    die "no built program beside this script (expected $HERE/$APP/sarlang and sarlang-cli): unpack the whole archive"
}

# Links in BINDIR: ours to replace, anybody else's file to leave alone.
check_link() {
    link=$BINDIR/$1
    if [ -e "$link" ] || [ -L "$link" ]; then
        target=$(readlink "$link" 2>/dev/null || true)
        case "$target" in
            "$PREFIX"/*) ;;
            *) die "$link exists and is not a link into $PREFIX: remove or rename it, then install again" ;;
        esac
    fi
}

write_desktop_entry() {
    mkdir -p "$(dirname "$DESKTOP")" "$(dirname "$ICON")"
    icon_src=$PREFIX/_internal/sarlang_resources/sarlang.png
    [ -f "$icon_src" ] && cp "$icon_src" "$ICON"
    cat > "$DESKTOP" <<EOF
[Desktop Entry]
Type=Application
Version=1.0
Name=SARLANG Studio
GenericName=SAR image interpretation
Comment=Open SAR scenes, preprocess them and ask vision-language models about them
Exec="$PREFIX/sarlang" %f
TryExec=$PREFIX/sarlang
Icon=$APP
Terminal=false
Categories=Science;Geography;Graphics;
MimeType=image/tiff;
StartupWMClass=sarlang
EOF
    if command -v update-desktop-database >/dev/null 2>&1; then
        update-desktop-database -q "$(dirname "$DESKTOP")" 2>/dev/null || true
    fi
}

remove_listed() {
    [ -f "$MANIFEST" ] || return 0
    while IFS= read -r path; do
        [ -n "$path" ] || continue
        if [ -L "$path" ] || [ -f "$path" ]; then rm -f "$path"; fi
    done < "$MANIFEST"
}

install_program() {
    find_program
    writable "$(dirname "$PREFIX")"
    writable "$BINDIR"
    writable "$DATADIR"
    check_link sarlang
    check_link sarlang-cli
    version=$("$PROGRAM/sarlang-cli" --version 2>/dev/null || echo "sarlang-cli (version unknown)")
    staging=$PREFIX.new.$$
    rm -rf "$staging"
    cp -a "$PROGRAM" "$staging" || { rm -rf "$staging"; die "copying the program to $staging failed (disk full?): nothing was changed"; }
    cp "$HERE/install.sh" "$staging/install.sh"
    upgrade=no
    if [ -d "$PREFIX" ]; then
        upgrade=yes
        remove_listed
        rm -rf "$PREFIX"
    fi
    mv "$staging" "$PREFIX"
    ln -sf "$PREFIX/sarlang" "$BINDIR/sarlang"
    ln -sf "$PREFIX/sarlang-cli" "$BINDIR/sarlang-cli"
    write_desktop_entry
    write_uninstaller
    printf '%s\n' "$BINDIR/sarlang" "$BINDIR/sarlang-cli" "$DESKTOP" "$ICON" > "$MANIFEST"
    [ "$upgrade" = yes ] && say "Replaced the previous version in $PREFIX (settings and per-user models kept)."
    say "Installed $version"
    say "  program:  $PREFIX"
    say "  commands: $BINDIR/sarlang, $BINDIR/sarlang-cli"
    say "  menu:     $DESKTOP"
    say "  check it: sarlang --self-test"
    say "  remove:   $PREFIX/uninstall.sh"
    case ":${PATH:-}:" in
        *":$BINDIR:"*) ;;
        *) say "Note: $BINDIR is not on your PATH; add it (e.g. in ~/.profile) to type sarlang and sarlang-cli." ;;
    esac
}

write_uninstaller() {
    flag=--user
    [ "$MODE" = system ] && flag=--system
    cat > "$PREFIX/uninstall.sh" <<EOF
#!/bin/sh
# Removes SARLANG Studio as installed into $PREFIX (settings and per-user models are kept).
exec sh "$PREFIX/install.sh" --uninstall $flag --prefix "$PREFIX" --bindir "$BINDIR" --datadir "$DATADIR"
EOF
    chmod 755 "$PREFIX/uninstall.sh"
}

uninstall_program() {
    [ -f "$MANIFEST" ] || die "no SARLANG Studio installation in $PREFIX (no $MANIFEST): nothing was removed"
    writable "$(dirname "$PREFIX")"
    remove_listed
    case "$PREFIX" in
        /|"$HOME"|/usr|/usr/local|/opt) die "refusing to remove $PREFIX" ;;
    esac
    rm -rf "$PREFIX"
    say "Removed SARLANG Studio from $PREFIX (settings in ~/.config/sarlang-studio and per-user models were kept)."
}

parse_args "$@"
set_paths
if [ "$ACTION" = uninstall ]; then uninstall_program; else install_program; fi
