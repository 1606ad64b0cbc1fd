"""The spine: workspace, catalog, lineage, artifacts, refs, errors. Imports no other capability."""
