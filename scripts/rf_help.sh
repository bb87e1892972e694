# Sourced by the scripts here: `-h`/`--help` prints the calling script's
# header comment (its lines 2.. up to the first non-comment line) and exits.
case "${1:-}" in -h | --help)
	sed -n '2,/^[^#]/{/^#/s/^# \{0,1\}//p}' "$0"
	exit 0 ;;
esac
