"""``weavegraph graph``: print a graph as mermaid or dot."""

from __future__ import annotations

import argparse
import sys

from ._target import load_app


def cmd_graph(args: argparse.Namespace) -> int:
    app = load_app(args.target)
    text = app.to_mermaid() if args.format == "mermaid" else app.to_dot()
    sys.stdout.write(text.rstrip("\n") + "\n")
    return 0
