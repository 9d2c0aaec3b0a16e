#!/bin/sh
# count.sh FILE: prints "FILE: N records" (lines after the CSV header).
lines=$(wc -l < "$1")
echo "$1: $((lines - 1)) records"
