#!/bin/sh
# greet.sh GREETING N NAMES_FILE: prints the greeting for the N-th name of NAMES_FILE.
name=$(sed -n "${2}p" "$3")
echo "$1 ${name:-world} (task $2)"
