#!/bin/sh
# Entry point of every container of the image (web, worker, beat, migrate): prepares the directory
# where this container's processes write their Prometheus samples, then runs the given command.
set -eu
if [ -n "${PROMETHEUS_MULTIPROC_DIR:-}" ]; then
  mkdir -p "$PROMETHEUS_MULTIPROC_DIR"
  # Samples of processes from a previous start of this container are meaningless now.
  find "$PROMETHEUS_MULTIPROC_DIR" -name '*.db' -delete
fi
exec "$@"
