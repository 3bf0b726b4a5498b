"""Derives the sandbox's copy of GitHub's public GraphQL schema.

Source: octokit/graphql-schema `schema.graphql` (MIT, see LICENSE.md here), as kept in
`../shared/github/schema.graphql`. The copy drops descriptions (half the size, half the load
time) and is gzipped. Run: `python -m ghmetrics_dagster.sandbox.schema.derive SOURCE`.
"""

from __future__ import annotations

import gzip
import hashlib
import sys
from pathlib import Path

import graphql

HERE = Path(__file__).parent
COPY = HERE / "github.graphql.gz"


def derive(source: Path, dest: Path = COPY) -> str:
    text = source.read_text()
    document = graphql.parse(text, no_location=True)

    class DropDescriptions(graphql.language.Visitor):
        def enter(self, node, *_):
            if getattr(node, "description", None) is not None:
                node.description = None

    graphql.visit(document, DropDescriptions())
    stripped = graphql.print_ast(document) + "\n"
    # mtime=0 keeps the gzip bytes reproducible.
    dest.write_bytes(gzip.compress(stripped.encode(), mtime=0))
    return hashlib.sha256(text.encode()).hexdigest()


if __name__ == "__main__":
    print(derive(Path(sys.argv[1])))
