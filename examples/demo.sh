#!/usr/bin/env bash
# `make demo`: a real extraction through the command line — a text file, then a small CSV
# fill, then the same rows in a styled workbook (answered from the cache this time).
# Uses OpenRouter when OPENROUTER_API_KEY is set, else the offline local model.
set -euo pipefail
cd "$(dirname "$0")"
FW=${FIELDWISE:-../.venv/bin/fieldwise}
PY=${PYTHON:-../.venv/bin/python}
export FIELDWISE_CACHE_DIR=${FIELDWISE_CACHE_DIR:-$(mktemp -d)}
OUT=$(mktemp -d)

echo "== fieldwise extract demo/form.txt --schema schemas.py:SimpleForm"
"$FW" extract demo/form.txt --schema schemas.py:SimpleForm --usage

echo
echo "== fieldwise fill demo/people.csv --schema schemas.py:SimpleForm --from notes"
"$FW" fill demo/people.csv --schema schemas.py:SimpleForm --from notes -o "$OUT/people.filled.csv"
echo
cat "$OUT/people.filled.csv"

echo
echo "== fieldwise fill demo/people.xlsx --schema schemas.py:SimpleForm --from notes"
"$FW" fill demo/people.xlsx --schema schemas.py:SimpleForm --from notes -o "$OUT/people.filled.xlsx"
echo
"$PY" - "$OUT/people.filled.xlsx" <<'PRINT'
import sys

import openpyxl

for row in openpyxl.load_workbook(sys.argv[1]).active.iter_rows(values_only=True):
    print(row)
PRINT
