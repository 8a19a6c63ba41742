#!/usr/bin/env bash
# DocC coverage: count the public (and open) symbols of each library module that have no `///` doc comment.
#
#   Scripts/doc-coverage.sh [--list] [--no-build] [--docc] [MODULE...]
#
# It builds the package (`swift build`, incremental; `--no-build` uses what `.build` already holds), extracts each
# library module's symbol graph with the toolchain's `swift-symbolgraph-extract` at access level public, and counts
# the symbols without a `docComment`. Not counted, because DocC documents them from elsewhere or not at all:
# compiler-synthesized and implicit members (no source location), members that implement a protocol requirement
# whose own documentation is inherited (`init(from:)`, `encode(to:)`, `description`, `hash(into:)`, `==`, … — but a
# requirement of one of our own protocols counts when that requirement is undocumented), and underscored names.
# `--list` prints each undocumented symbol with its file and line. `--docc` also builds each module's documentation
# with the toolchain's `docc` and counts its warnings (links that don't resolve, parameters left undocumented, a
# catalog's structure), listed with `--list`. Exits 1 when anything remains, 2 on a tool failure.
set -euo pipefail
cd "$(dirname "$0")/.."

list=0
build=1
docc=0
modules=()
for argument in "$@"; do
    case "$argument" in
        --list) list=1 ;;
        --no-build) build=0 ;;
        --docc) docc=1 ;;
        -h | --help) sed -n '2,14p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        -*) echo "doc-coverage: unknown option $argument" >&2; exit 2 ;;
        *) modules+=("$argument") ;;
    esac
done

# Library modules: Swift targets under Sources/ without an entry point (`@main` or main.swift).
if [ ${#modules[@]} -eq 0 ]; then
    for directory in Sources/*/; do
        name=$(basename "$directory")
        [ -n "$(find "$directory" -name '*.swift' -print -quit)" ] || continue
        [ -e "$directory/main.swift" ] && continue
        grep -rqE '^@main' --include='*.swift' "$directory" && continue
        modules+=("$name")
    done
fi

if [ "$build" -eq 1 ]; then
    echo "==> swift build" >&2
    swift build >&2
fi
bin=$(swift build --show-bin-path)
module_dir="$bin/Modules"
[ -d "$module_dir" ] || module_dir="$bin"

# The C modules the Swift modules import (our own and the dependencies').
clang_args=()
for map in "$bin"/*.build/module.modulemap; do
    [ -e "$map" ] && clang_args+=(-Xcc "-fmodule-map-file=$map")
done
while IFS= read -r map; do
    clang_args+=(-Xcc "-fmodule-map-file=$PWD/$map")
done < <(find .build/checkouts/*/Sources Sources -name module.modulemap 2>/dev/null)
while IFS= read -r include; do
    clang_args+=(-Xcc "-I$PWD/$include")
done < <(find .build/checkouts/*/Sources Sources -type d -name include 2>/dev/null)

graphs=$(mktemp -d)
trap 'rm -rf "$graphs"' EXIT
triple=$(swift -print-target-info | python3 -c 'import json, sys; print(json.load(sys.stdin)["target"]["triple"])')
built=()
for module in "${modules[@]}"; do
    if [ "$build" -eq 0 ] && [ ! -e "$module_dir/$module.swiftmodule" ]; then
        echo "doc-coverage: $module is not built; skipped (run without --no-build)" >&2
        continue
    fi
    built+=("$module")
    mkdir -p "$graphs/$module"
    if ! swift-symbolgraph-extract -module-name "$module" -I "$module_dir" -target "$triple" \
        -minimum-access-level public -skip-inherited-docs -output-dir "$graphs/$module" "${clang_args[@]}" \
        >"$graphs/$module.log" 2>&1; then
        echo "doc-coverage: could not extract the symbol graph of $module (is it built?):" >&2
        cat "$graphs/$module.log" >&2
        exit 2
    fi
done

# DocC's own diagnostics, per module: the catalog (if any) with the module's symbol graph.
modules=("${built[@]}")
if [ "$docc" -eq 1 ]; then
    for module in "${modules[@]}"; do
        catalog=()
        [ -d "Sources/$module/Docs.docc" ] && catalog=("Sources/$module/Docs.docc")
        if ! docc convert "${catalog[@]}" --additional-symbol-graph-dir "$graphs/$module" \
            --output-path "$graphs/$module.doccarchive" --diagnostics-file "$graphs/$module.diagnostics.json" \
            --fallback-display-name "$module" --fallback-bundle-identifier "$module" \
            >"$graphs/$module.docc.log" 2>&1; then
            echo "doc-coverage: docc failed on $module:" >&2
            cat "$graphs/$module.docc.log" >&2
            exit 2
        fi
    done
fi

LIST=$list DOCC=$docc ROOT=$PWD python3 - "$graphs" "${modules[@]}" <<'PYTHON'
import glob, json, os, sys

graphs, modules = sys.argv[1], sys.argv[2:]
show_list = os.environ["LIST"] == "1"
root = os.environ["ROOT"] + "/"
total = 0
for module in modules:
    symbols, relationships = {}, []
    for path in sorted(glob.glob(os.path.join(graphs, module, "*.symbols.json"))):
        with open(path) as file:
            graph = json.load(file)
        for symbol in graph["symbols"]:
            symbols[symbol["identifier"]["precise"]] = symbol
        relationships += graph["relationships"]

    # Members that implement a protocol requirement: their documentation is the requirement's, unless the
    # requirement is ours and undocumented (then the requirement itself is reported).
    implements = {}
    for relationship in relationships:
        origin = relationship.get("sourceOrigin")
        if origin:
            implements[relationship["source"]] = origin["identifier"]

    missing = []
    for identifier, symbol in symbols.items():
        if "docComment" in symbol or "::SYNTHESIZED::" in identifier:
            continue
        if symbol["kind"]["identifier"] == "swift.extension" or "location" not in symbol:
            continue
        if any(component.startswith("_") for component in symbol["pathComponents"]):
            continue
        if identifier in implements:
            continue
        location = symbol["location"]
        path = location["uri"].removeprefix("file://").removeprefix(root)
        line = location["position"]["line"] + 1
        kind = symbol["kind"]["displayName"].lower()
        missing.append((path, line, kind, ".".join(symbol["pathComponents"])))

    total += len(missing)
    summary = f"{module}: {len(missing)} undocumented of {len(symbols)} public symbols"
    warnings = []
    if os.environ["DOCC"] == "1":
        with open(os.path.join(graphs, module + ".diagnostics.json")) as file:
            diagnostics = json.load(file)["diagnostics"]
        for diagnostic in diagnostics:
            if diagnostic["severity"] not in ("warning", "error"):
                continue
            path = (diagnostic.get("source") or "").removeprefix("file://").removeprefix(root)
            line = diagnostic.get("range", {}).get("start", {}).get("line", 0)
            warnings.append((path, line, diagnostic["summary"]))
        total += len(warnings)
        summary += f", {len(warnings)} docc warnings"
    print(summary)
    if show_list:
        for path, line, kind, name in sorted(missing):
            print(f"  {path}:{line}: {kind} {name}")
        for path, line, text in sorted(warnings):
            print(f"  {path}:{line}: docc: {text}")
print(f"total: {total}")
sys.exit(1 if total else 0)
PYTHON
