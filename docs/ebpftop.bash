# bash completion for ebpftop, generated from its argument parser by
# python -m ebpftop.completion: do not edit.

# COMPREPLY: the words among the rest that start with $1, quoted for the shell.
_ebpftop_match() {
    local cur=$1 word q
    shift
    COMPREPLY=()
    for word in "$@"; do
        [[ $word == "$cur"* ]] || continue
        printf -v q '%q' "$word"
        COMPREPLY+=("$q")
    done
}

# The names of running processes (each read as a plain string, never expanded).
_ebpftop_processes() {
    local -a names=()
    local f name
    for f in /proc/[0-9]*/comm; do
        IFS= read -r name < "$f" 2>/dev/null && names+=("$name")
    done
    _ebpftop_match "$1" "${names[@]}"
}

# A comma-separated list: the word after the last comma among the rest.
_ebpftop_list() {
    local cur=$1 head=
    shift
    [[ $cur == *,* ]] && head=${cur%,*},
    _ebpftop_match "${cur##*,}" "$@"
    COMPREPLY=("${COMPREPLY[@]/#/$head}")
    compopt -o nospace 2>/dev/null  # another name may follow a comma
}

_ebpftop() {
    local cur=${COMP_WORDS[COMP_CWORD]} prev=
    (( COMP_CWORD > 0 )) && prev=${COMP_WORDS[COMP_CWORD-1]}
    # --option=value: bash splits at the = (COMP_WORDBREAKS)
    if [[ $cur == = ]]; then
        cur=
    elif [[ $prev == = ]] && (( COMP_CWORD > 1 )); then
        prev=${COMP_WORDS[COMP_CWORD-2]}
    fi
    COMPREPLY=()
    case $prev in
        -i|--interval) return 0 ;;
        -c|--comm) _ebpftop_processes "$cur"; return 0 ;;
        -p|--pid) return 0 ;;
        -P|--port) return 0 ;;
        -C|--container) return 0 ;;
        -n|--count) return 0 ;;
        --record) mapfile -t COMPREPLY < <(compgen -f -- "$cur"); compopt -o filenames 2>/dev/null; return 0 ;;
        --record-max-size) return 0 ;;
        --record-keep) return 0 ;;
        --replay) mapfile -t COMPREPLY < <(compgen -f -- "$cur"); compopt -o filenames 2>/dev/null; return 0 ;;
        --speed) return 0 ;;
        --history) return 0 ;;
        --flight-recorder) mapfile -t COMPREPLY < <(compgen -d -- "$cur"); compopt -o filenames 2>/dev/null; return 0 ;;
        --trigger) return 0 ;;
        --flight-after) return 0 ;;
        --flight-max-size) return 0 ;;
        --at) return 0 ;;
        --prometheus) return 0 ;;
        --openmetrics) [[ $cur == -* ]] || { return 0; } ;;
        --web-config) mapfile -t COMPREPLY < <(compgen -f -- "$cur"); compopt -o filenames 2>/dev/null; return 0 ;;
        --max-label-values) return 0 ;;
        --max-cpu) return 0 ;;
        --watch) mapfile -t COMPREPLY < <(compgen -f -- "$cur"); compopt -o filenames 2>/dev/null; return 0 ;;
        --profile-hz) return 0 ;;
        --folded) mapfile -t COMPREPLY < <(compgen -f -- "$cur"); compopt -o filenames 2>/dev/null; return 0 ;;
        --slow-io) return 0 ;;
        --probe-sets|--panes) _ebpftop_list "$cur" 'read_latency' 'syscalls' 'page_faults' 'file_opens' 'tcp' 'drops' 'tcp_traffic' 'udp' 'processes' 'cpu' 'profile' 'disk' 'oom'; return 0 ;;
        --config) mapfile -t COMPREPLY < <(compgen -f -- "$cur"); compopt -o filenames 2>/dev/null; return 0 ;;
    esac
    local -a options=('-h' '--help' '-i' '--interval' '-c' '--comm' '-p' '--pid' '-P' '--port' '-C' '--container' '--json' '-n' '--count' '--record' '--record-max-size' '--record-keep' '--replay' '--speed' '--history' '--flight-recorder' '--trigger' '--flight-after' '--flight-max-size' '--at' '--prometheus' '--openmetrics' '--web-config' '--max-label-values' '--probe-cost' '--max-cpu' '--watch' '--no-default-watch' '--syslog' '--profile-hz' '--folded' '--slow-io' '--probe-sets' '--panes' '--config' '--no-config' '--version')
    # no positional arguments: any other word is an option
    [[ -z $cur || $cur == -* ]] && _ebpftop_match "$cur" "${options[@]}"
    return 0
}

complete -F _ebpftop ebpftop
